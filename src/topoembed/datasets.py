"""Synthetic shapes with known topology, placed in R^d with isotropic noise.

Each generator returns a :class:`Synthetic` holding the noisy points and the ground
truth (true number of loops/voids, the intrinsic coordinates, and which circle a
point lies on). The protocol follows the benchmark of Damrich, Berens and Kobak,
*Persistent homology for high-dimensional data based on spectral methods*
(NeurIPS 2024): points are equally spaced along 1-D curves (circle, linked circles,
eyeglasses) and uniform on surfaces (sphere, torus); the shape is embedded into R^d
through a random orthonormal basis and Gaussian noise of scale ``sigma`` is added in
all d dimensions.

The command line reads them as ``synthetic:NAME?n=1000&d=50&sigma=0.25&seed=0``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl

import numpy as np

from ._validate import InputError

__all__ = ["Synthetic", "make", "SHAPES", "parse_spec", "from_spec", "demo_adata", "cell_cycle_genes", "torus_tube_angle",
           "TORUS_R"]


@dataclass
class Synthetic:
    """Noisy points and what is true about them.

    Attributes
    ----------
    X : (n, d) float array, the noisy points in R^d.
    clean : (n, d) float array, the same points before noise.
    intrinsic : (n, 2 or 3) the shape in its own coordinates, before the random basis.
    name : shape name.
    betti : true Betti numbers ``{1: loops, 2: voids}``.
    angle : (n,) intrinsic circular coordinate in [0, 2π) of each point along its
        loop (NaN where the shape has no such coordinate).
    label : (n,) int, which component/circle a point belongs to (0 if one).
    params : the generator's parameters, for provenance.
    """

    X: np.ndarray
    clean: np.ndarray
    intrinsic: np.ndarray
    name: str
    betti: dict
    angle: np.ndarray
    label: np.ndarray
    params: dict = field(default_factory=dict)


def _circle(n, rng):
    theta = 2 * np.pi * np.arange(n) / n
    Y = np.c_[np.cos(theta), np.sin(theta)]
    return Y, theta, np.zeros(n, int), {1: 1, 2: 0}


def _linked_circles(n, rng):
    """Two unit circles forming a Hopf link in R^3 (n/2 equally spaced points each)."""
    n1 = n // 2
    n2 = n - n1
    t1 = 2 * np.pi * np.arange(n1) / n1
    t2 = 2 * np.pi * np.arange(n2) / n2
    c1 = np.c_[np.cos(t1), np.sin(t1), np.zeros(n1)]
    c2 = np.c_[1 + np.cos(t2), np.zeros(n2), np.sin(t2)]
    Y = np.vstack([c1, c2])
    return Y, np.r_[t1, t2], np.r_[np.zeros(n1, int), np.ones(n2, int)], {1: 2, 2: 0}


# Eyeglasses: two unit circles centred at (±C, 0), cut where |y| = H, joined by two
# horizontal bridges at y = ±H. The bridge length is 2 (C - sqrt(1 - H^2)).
# C = 1.5, H = 0.35 is the geometry of the published benchmark (lens centres ±1.5,
# bridges at y = ±0.35, about 1.1 long): the bottleneck (0.7 wide) is narrower than a
# lens (2 wide) and long, so moderate noise closes it into two loops.
_EYE_C, _EYE_H = 1.5, 0.35


def _eyeglasses_outline(s):
    """Map arc-length fraction s in [0, 1) to a point on the eyeglasses outline."""
    C, H = _EYE_C, _EYE_H
    a = np.arcsin(H)  # angle (from the inner axis) where an arc meets a bridge
    arc = 2 * (np.pi - a)  # length of each lens arc (radius 1)
    bridge = 2 * (C - np.sqrt(1 - H**2))
    total = 2 * arc + 2 * bridge
    u = np.asarray(s) * total
    out = np.empty((len(u), 2))
    # piece 1: right lens arc, from angle π - a (top inner end) going clockwise...
    # Walk counter-clockwise: right arc from angle -(π - a) to (π - a) around (C, 0),
    # top bridge from right to left, left arc, bottom bridge from left to right.
    m1 = u < arc
    ang = -(np.pi - a) + u[m1]
    out[m1] = np.c_[C + np.cos(ang), np.sin(ang)]
    m2 = (u >= arc) & (u < arc + bridge)
    x = (C - np.sqrt(1 - H**2)) - (u[m2] - arc)
    out[m2] = np.c_[x, np.full(m2.sum(), H)]
    m3 = (u >= arc + bridge) & (u < 2 * arc + bridge)
    ang = a + (u[m3] - arc - bridge)
    out[m3] = np.c_[-C + np.cos(ang), np.sin(ang)]
    m4 = u >= 2 * arc + bridge
    x = -(C - np.sqrt(1 - H**2)) + (u[m4] - 2 * arc - bridge)
    out[m4] = np.c_[x, np.full(m4.sum(), -H)]
    return out


def _eyeglasses(n, rng):
    s = np.arange(n) / n
    return _eyeglasses_outline(s), 2 * np.pi * s, np.zeros(n, int), {1: 1, 2: 0}


def _sphere(n, rng):
    Y = rng.standard_normal((n, 3))
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    return Y, np.full(n, np.nan), np.zeros(n, int), {1: 0, 2: 1}


#: Radius of the torus's core circle (its tube's radius is 1).
TORUS_R = 2.0


def torus_tube_angle(Y: np.ndarray) -> np.ndarray:
    """The tube angle φ ∈ [0, 2π) of points ``Y`` (n × 3) of the torus (``make("torus").intrinsic``,
    whose ``angle`` is the ring angle θ): Y = ((R + cos φ) cos θ, (R + cos φ) sin θ, sin φ)."""
    Y = np.asarray(Y, dtype=float)
    return np.mod(np.arctan2(Y[:, 2], np.hypot(Y[:, 0], Y[:, 1]) - TORUS_R), 2 * np.pi)


def _torus(n, rng, R=TORUS_R, r=1.0):
    """Uniform by area: the tube angle φ is accepted with probability (R + r cos φ)/(R + r)."""
    phis = []
    while sum(len(p) for p in phis) < n:
        phi = rng.uniform(0, 2 * np.pi, 2 * n)
        keep = rng.uniform(0, 1, 2 * n) < (R + r * np.cos(phi)) / (R + r)
        phis.append(phi[keep])
    phi = np.concatenate(phis)[:n]
    theta = rng.uniform(0, 2 * np.pi, n)
    Y = np.c_[(R + r * np.cos(phi)) * np.cos(theta), (R + r * np.cos(phi)) * np.sin(theta), r * np.sin(phi)]
    return Y, theta, np.zeros(n, int), {1: 2, 2: 1}


def _blob(n, rng):
    """Standard Gaussian in 2-D: no loop."""
    return rng.standard_normal((n, 2)), np.full(n, np.nan), np.zeros(n, int), {1: 0, 2: 0}


#: Share of the points on the circle of "circle_in_clusters" (``fraction=`` changes it).
CIRCLE_FRACTION = 0.05


def _circle_in_clusters(n, rng, fraction=CIRCLE_FRACTION):
    """A unit circle carried by ``fraction`` of the points, among 6 Gaussian clusters (σ = 0.5 in
    5-D, centres ±4 on three axes orthogonal to the circle's plane): a loop that few points carry.
    Label 0 is the circle, 1-6 the clusters; the angle is NaN off the circle."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction={fraction} must be in [0, 1]")
    n_circle = int(round(fraction * n))
    theta = 2 * np.pi * np.arange(n_circle) / max(n_circle, 1)
    Y = np.zeros((n, 5))
    Y[:n_circle, 0], Y[:n_circle, 1] = np.cos(theta), np.sin(theta)
    cluster = rng.integers(0, 6, n - n_circle)
    centres = np.zeros((6, 5))
    centres[np.arange(6), 2 + np.arange(6) // 2] = np.where(np.arange(6) % 2 == 0, 4.0, -4.0)
    Y[n_circle:] = centres[cluster] + 0.5 * rng.standard_normal((n - n_circle, 5))
    angle = np.r_[theta, np.full(n - n_circle, np.nan)]
    return Y, angle, np.r_[np.zeros(n_circle, int), cluster + 1], {1: int(n_circle > 0), 2: 0}


SHAPES = {
    "circle": _circle,
    "linked_circles": _linked_circles,
    "eyeglasses": _eyeglasses,
    "sphere": _sphere,
    "torus": _torus,
    "blob": _blob,
    "circle_in_clusters": _circle_in_clusters,
}


def make(name: str = "circle", n: int = 1000, d: int = 50, sigma: float = 0.0, seed: int = 0,
         fraction: float | None = None) -> Synthetic:
    """Generate shape ``name`` with ``n`` points in R^``d`` plus N(0, sigma^2 I_d) noise.

    The shape (intrinsic dimension 2 or 3) is mapped isometrically into R^d by a random
    orthonormal basis drawn from ``seed``; the same seed always gives the same points.
    ``fraction``: the circle's share of the points in "circle_in_clusters" (default 0.05).
    """
    if name not in SHAPES:
        raise ValueError(f"unknown synthetic shape {name!r}; choose one of {sorted(SHAPES)}")
    n, d = int(n), int(d)
    if n < 3:
        raise ValueError(f"n={n}: a synthetic shape needs at least 3 points")
    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f"sigma={sigma}: the noise scale must be a finite number >= 0")
    rng = np.random.default_rng(seed)
    if fraction is not None and name != "circle_in_clusters":
        raise ValueError(f"fraction is a parameter of circle_in_clusters, not of {name!r}")
    extra = {} if fraction is None else {"fraction": float(fraction)}  # the one shape parameter beyond n
    Y, angle, label, betti = SHAPES[name](n, rng, **extra)
    if d < Y.shape[1]:
        raise ValueError(f"d={d} is smaller than the intrinsic dimension {Y.shape[1]} of {name!r}")
    Q, _ = np.linalg.qr(rng.standard_normal((d, Y.shape[1])))
    clean = Y @ Q.T
    X = clean + sigma * rng.standard_normal((n, d))
    params = dict(n=n, d=d, sigma=float(sigma), seed=int(seed), **extra)
    return Synthetic(X=X, clean=clean, intrinsic=Y, name=name, betti=betti, angle=angle, label=label, params=params)


_SPEC_TYPES = {"n": int, "d": int, "sigma": float, "seed": int, "fraction": float}


def parse_spec(spec: str) -> tuple[str, dict]:
    """Parse ``synthetic:NAME?n=..&d=..&sigma=..&seed=..`` into (name, kwargs)."""
    if not spec.startswith("synthetic:"):
        raise ValueError(f"{spec!r} is not a synthetic spec; write synthetic:NAME?n=1000&d=50&sigma=0.1&seed=0")
    body = spec[len("synthetic:"):]
    name, _, query = body.partition("?")
    kwargs = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _SPEC_TYPES:
            raise ValueError(f"unknown parameter {key!r} in {spec!r}; allowed: {sorted(_SPEC_TYPES)}")
        try:
            kwargs[key] = _SPEC_TYPES[key](value)
        except ValueError:
            raise ValueError(f"parameter {key}={value!r} in {spec!r} is not a valid {_SPEC_TYPES[key].__name__}") from None
    if name not in SHAPES:
        raise ValueError(f"unknown synthetic shape {name!r} in {spec!r}; choose one of {sorted(SHAPES)}")
    return name, kwargs


def from_spec(spec: str) -> Synthetic:
    """Generate the dataset a ``synthetic:...`` spec describes."""
    name, kwargs = parse_spec(spec)
    return make(name, **kwargs)


def demo_adata(n_cells: int = 600, n_genes: int = 400, seed: int = 0):
    """A small AnnData of raw counts with a cell cycle in it, for tutorials and tests: no file needed.

    Each cell has a true position θ on the cycle (``obs["true_phase"]``, θ = 0 at G1/S). The
    S-phase genes of the bundled list (Tirosh et al. 2016) peak one after another over
    [0, 0.35]·2π and the G2/M genes over [0.4, 0.75]·2π, rate 1 + 20·exp(2(cos(θ − peak) − 1));
    the rest of the cycle is G1, where neither set is high. The other genes are Poisson(2) noise. ``X`` holds the integer counts (float32), so
    ``te.pp.recipe_cell_cycle`` applies as to real counts; ``var_names`` are human symbols.
    """
    import anndata
    import pandas as pd


    rng = np.random.default_rng(seed)
    s_genes, g2m_genes = cell_cycle_genes(phase="S"), cell_cycle_genes(phase="G2M")
    cyc = s_genes + g2m_genes
    if n_genes <= len(cyc):
        raise ValueError(f"n_genes={n_genes} must exceed the {len(cyc)} cell-cycle genes")
    peaks = 2 * np.pi * np.r_[np.linspace(0, 0.35, len(s_genes)), np.linspace(0.4, 0.75, len(g2m_genes))]
    theta = rng.uniform(0, 2 * np.pi, n_cells)
    rate = np.full((n_cells, n_genes), 2.0)
    rate[:, :len(cyc)] = 1 + 20 * np.exp(2 * (np.cos(theta[:, None] - peaks[None]) - 1))
    X = rng.poisson(rate).astype(np.float32)
    names = cyc + [f"GENE{i}" for i in range(n_genes - len(cyc))]
    obs = pd.DataFrame({"true_phase": theta}, index=[f"cell{i}" for i in range(n_cells)])
    return anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=names))


def cell_cycle_genes(organism: str = "human", phase: str | None = None) -> list[str]:
    """The bundled cell-cycle genes: S and G2/M markers of Tirosh et al., Science 2016.

    ``organism="mouse"`` gives the mouse orthologues, which for these genes are the human
    symbols in title case (Mcm5, Pcna, ...). ``phase``: "S", "G2M" or None (both).
    """
    if organism not in ("human", "mouse"):
        raise InputError(f"organism={organism!r} must be 'human' or 'mouse' (or pass your own gene list)")
    text = resources.files("topoembed").joinpath("data/cell_cycle_genes.txt").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    genes = [g.strip() for p, g in rows if phase is None or p == phase]
    return genes if organism == "human" else [g[0] + g[1:].lower() for g in genes]
