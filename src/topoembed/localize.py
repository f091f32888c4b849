"""Stage 4b: where is the loop? Representative cycles, loop membership and a circular
coordinate (phase) for every point, for each detected H1 class.

Input: the dense distance matrix ``D`` the persistent homology ran on, the kNN adjacency
``A`` on the same points, ``ph = homology.persistence(D, cocycles=True, coeff=p)`` with a
prime p > 2 (:data:`DEFAULT_COEFF` = 47) and ``detection = loops.detect(...)``.
:func:`localize_loops` returns one dict per detected loop.

Notation: for a filtration value r, the Rips graph G_r has an edge {i, j} when
D_ij ≤ r (compared in float32, as ripser does). A class of the H1 diagram is born at b
and dies at d. Its representative cocycle (ripser, Z_p coefficients) is lifted to the
integers by taking each value in (−p/2, p/2]; α(u, v) is the lifted value on the edge
oriented from the smaller to the larger vertex id (α(v, u) = −α(u, v)).

The steps, in the order :func:`localize_loops` runs them:

1. Circular coordinate θ. Two methods (``phase_method``); both start from the class's
   cocycle at r_θ = b + f·(d − b) (``theta_filtration`` = f, default 0.5).

   ``"cycle"`` (default). The representative cycle at r_θ (step 2, without the phase
   rule), oriented so that the cocycle sums to +1 along it, gets θ = 2π j / L at its
   j-th of L vertices; every other point gets the harmonic extension of e^{iθ} over the
   kNN graph A (:func:`cycle_phase`); then θ is smoothed locally by the screened Poisson
   problem of :func:`screened_phase` (λ = 0.1). θ thus measures how far round the loop a
   point is, whatever the density of points along it. The cocycle's representative may
   also be ±1 on a small noise loop still alive at r_θ through the birth edge; the shortest
   walk is then that small loop, and θ spaced along it is nearly one value everywhere (a
   noisy circle of 888 points in R^5, σ = 0.35, diffusion distance: a supported loop whose θ
   aligned 0.08 with the true angle). So where the walk has fewer than half the points of
   the cycle at the lowest filtration value that has one and passes within r_θ of fewer
   than half of them (:func:`is_small_loop`, :data:`MIN_CYCLE_COVERAGE`), θ is spaced along
   that cycle instead (``phase_cycle`` = "lowest_filtration"; 0.92 there). Measured: on
   noisy circles of 888 points in R^5 with σ = 0.4 (effective resistance and diffusion,
   seeds 0-3) 5 of 8 walks were such small loops (6-21 points against 42-155, coverage
   0.09-0.31), whose θ went from 0.06-0.74 to 0.90; every other walk had at least 0.74 of
   the points, or coverage 0.78 or more. Coverage alone would also have replaced one walk
   of 11 points against 14 (coverage 0.36) in an IPC mixture, and lowered its R² from
   0.707 to 0.678: both conditions are asked.

   Why not the harmonic coordinate below: it is the circle map of least Dirichlet
   energy, which puts the winding where the graph is thinnest. On a loop whose density
   varies, as in cells that spend most of their cycle in G1, nearly every point gets one
   phase: on 1,000 neural IPCs (seeds 0-4) 71-100 % of the cells fell into one 30° bin,
   and the cell-cycle score had R² = 0.01-0.11 on (cos θ, sin θ). Neither the filtration
   value (f = 0 … 0.9: largest bin 0.50-0.80 on the Rips graph) nor the graph it is
   refined on (mutual k = 100, union k = 15 or 30) removes that. The cycle method: largest
   bin 0.28-0.33, R² = 0.86-0.87 (benchmarks/bench_phase.py, benchmarks/LOCALIZE.md).

   ``"harmonic"`` (de Silva, Morozov and Vejdemo-Johansson, *Persistent cohomology and
   circular coordinates*, DCG 45, 2011), kept for comparison:
   a. At r_θ = b + f·(d − b) (``theta_filtration`` = f, default 0.5) take the edges E of
      G_{r_θ} (strictly below r_θ) and solve the least-squares problem

          z* = argmin_z Σ_{(u,v) ∈ E} (α(u, v) − (z_v − z_u))²

      with scipy's ``lsmr`` (minimum-norm solution; z is defined up to a constant per
      component); θ = 2π (z* mod 1). The residual ᾱ = α − δz* is the harmonic cocycle:
      θ is the smoothest circle-valued map in the class, all edges weighted equally.
      Points outside the anchor's component of G_{r_θ} get θ by :func:`extend_phase`
      over A.
   b. ``smooth="knn"`` (default): θ is refined to the harmonic circle map on the kNN
      graph A in the same homotopy class (:func:`smooth_phase`). The Rips graph of a
      spectral distance is uneven (hub points get many edges, others few), so the plain
      Rips solution carries per-point scatter; on A every point has ≥ k neighbours.
      Measured on the noisy circle (n = 1000, σ = 0.2, k = 15): |ρ| 0.88–0.93 (Rips
      only) → 0.946–0.952 (refined), against ≈ 0.953 for the oracle that averages the
      *true* angles over each point's kNN neighbourhood. ``smooth="rips"`` keeps 1a.

2. Representative cycle. The shortest closed walk through the birth-edge vertex a whose
   cocycle sum Σ α = ±1, found by Dijkstra in the integer cover of G_r (≤ r): vertices
   (v, w), winding w ∈ {−2, …, 2}, edges (u, w) → (v, w + α(u, v)) of cost (D_uv/r)².
   The walk from (a, 0) to (a, ±1) is projected to G_r and cut at repeated vertices,
   keeping the simple piece with winding ±1. A cocycle vanishes on boundaries, so a
   cycle with Σ α ≠ 0 (mod p) is not a boundary at r: it provably goes round the hole
   the cocycle detects (the plain "birth edge + shortest path" can return a cycle that
   bounds when several classes are alive). Only edges whose phase change
   |θ_v − θ_u| ≤ ``max_step`` (5°) are allowed, so the cycle samples the loop at least
   every 5° of phase rather than jumping across it on the noisy long edges of a spectral
   Rips graph. r is the smallest of b + {0, .25, .5, .75, .9}(d − b) at which such a
   walk exists (else the step is doubled, up to no limit); it is reported as
   ``cycle_filtration``.

3. Membership. ``loop_distance[i] = min_{c ∈ cycle} D[i, c]``, in the units of D (so it
   compares directly with b and d). Rule (``on_loop_rule="theta"``, the default):
   ``on_loop = loop_distance ≤ r_θ``, i.e. i is joined to the cycle by an edge of the
   complex in which θ was computed: a tube around the cycle of the radius at which the
   loop is firmly established but has not yet filled in (r_θ < d). ``"birth"`` uses b, the
   sampling gap along the loop (a thin tube: right for noiseless data, misses most of a
   noisy loop: 12–40 % on the σ = 0.1–0.2 circles); a float is an absolute threshold.

Extension to points outside the complex (:func:`extend_phase`): the harmonic
(Dirichlet) extension of the unit complex number e^{iθ} over the graph: with L = Deg − A,
known set K and unknown set U, solve L_UU x_U = A_UK x_K (a sparse SPD system) by
θ_U = arg x_U (conjugate gradients). Each extended point's e^{iθ} is the weighted average of its neighbours'
(the circular mean, iterated to convergence); |x_U| < 1 measures how much they agree.

Circular correlation: :func:`circular_correlation` (Fisher and Lee 1983, default;
Jammalamadaka and SenGupta 1988 on request).

Size (about 830 lines): the localization stage is one computation from one cocycle: its
lift, the representative cycle, the membership, the two phase methods and their extension to
other points share the Rips edges and the lifted cochain; the circular statistics that
compare phases stay beside them.
"""
from __future__ import annotations

import logging

import numpy as np
from . import _lazy, homology

sp = _lazy.module("scipy.sparse")
csgraph = _lazy.module("scipy.sparse.csgraph")
splinalg = _lazy.module("scipy.sparse.linalg")

log = logging.getLogger(__name__)

__all__ = [
    "localize_loops", "representative_cycle", "circular_coordinate", "loop_membership",
    "extend_phase", "extend_loop_distance", "harmonic_extension", "lift_cocycle",
    "circular_correlation", "circular_alignment", "orient_by_markers", "phase_method_for", "cycle_winding", "smooth_phase", "cycle_phase",
    "canonical_cycle", "cycle_coverage", "is_small_loop",
    "screened_phase", "phase_confidence", "cocycle_filtration", "with_loop_cocycles", "DEFAULT_COEFF", "THETA_FILTRATION", "ON_LOOP_RULES", "MAX_STEP",
    "PHASE_METHODS", "PHASE_SCREENING",
]

#: Prime coefficient field for the cocycles (must be > 2 so that the lift to Z is faithful).
DEFAULT_COEFF = 47
#: Default position of r_θ in [b, d): r_θ = b + THETA_FILTRATION · (d − b).
THETA_FILTRATION = 0.5
ON_LOOP_RULES = ("theta", "birth")
#: Largest phase change along one edge of the representative cycle (radians): 5°.
MAX_STEP = 2 * np.pi / 72
#: How the circular coordinate is made (see the module docstring, step 1).
PHASE_METHODS = ("cycle", "harmonic")
#: λ of :func:`screened_phase`: the anchor weight relative to a point's degree (about 1/√λ ≈ 3 hops of smoothing).
PHASE_SCREENING = 0.1
_MAX_WINDING = 2
_CYCLE_FILTRATIONS = (0.0, 0.25, 0.5, 0.75, 0.9)
#: θ's cycle at r_θ must have this share of the points of the cycle at the lowest filtration
#: value that has one, or pass within r_θ of this share of them, else θ comes from that one
#: (:func:`is_small_loop`; module docstring).
MIN_CYCLE_COVERAGE = 0.5


# ---------------------------------------------------------------------------- cochains
def lift_cocycle(cocycle: np.ndarray, coeff: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer lift of a ripser Z_p 1-cocycle.

    Returns ``edges`` (m, 2) with u < v and ``values`` (m,) in (−p/2, p/2], the value on
    the edge oriented u → v. Zero values are dropped.
    """
    cocycle = np.asarray(cocycle).reshape(-1, 3)
    u = np.minimum(cocycle[:, 0], cocycle[:, 1]).astype(np.int64)
    v = np.maximum(cocycle[:, 0], cocycle[:, 1]).astype(np.int64)
    val = np.mod(cocycle[:, 2].astype(np.int64), coeff)
    val = np.where(val > coeff // 2, val - coeff, val)
    keep = val != 0
    return np.c_[u[keep], v[keep]], val[keep].astype(np.float64)


def _cochain_on(edges_u: np.ndarray, edges_v: np.ndarray, n: int, co_edges: np.ndarray,
                co_vals: np.ndarray) -> np.ndarray:
    """Values of the cochain (co_edges, co_vals) on the edges (u < v); 0 off its support."""
    out = np.zeros(len(edges_u))
    if len(co_edges) == 0 or len(edges_u) == 0:
        return out
    keys = np.asarray(edges_u, dtype=np.int64) * n + np.asarray(edges_v, dtype=np.int64)
    ckeys = co_edges[:, 0].astype(np.int64) * n + co_edges[:, 1]
    order = np.argsort(ckeys, kind="stable")
    ckeys, cvals = ckeys[order], co_vals[order]
    pos = np.minimum(np.searchsorted(ckeys, keys), len(ckeys) - 1)
    hit = ckeys[pos] == keys
    out[hit] = cvals[pos[hit]]
    return out


def _rips_edges(D32: np.ndarray, r: float, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edges u < v of the Rips graph at r (D_uv < r if strict, else ≤ r; float32)."""
    r32 = np.float32(r)
    mask = (D32 < r32) if strict else (D32 <= r32)
    u, v = np.nonzero(np.triu(mask, 1))
    return u.astype(np.int64), v.astype(np.int64)


def cycle_winding(cycle, co_edges: np.ndarray, co_vals: np.ndarray, n: int) -> float:
    """Σ α over the closed walk ``cycle`` (c_0 → c_1 → … → c_0), with α(v, u) = −α(u, v)."""
    c = np.asarray(cycle, dtype=np.int64)
    a, b = c, np.roll(c, -1)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    vals = _cochain_on(lo, hi, n, co_edges, co_vals)
    return float(np.sum(np.where(a < b, vals, -vals)))


# ---------------------------------------------------------------------------- cycle
def _split_walk(walk: list[int], wind: np.ndarray) -> tuple[list[int], float]:
    """Cut a closed walk (vertex list, per-step windings) at repeated vertices.

    Returns the simple cycle piece with winding ±1 (or the piece with the largest |winding|).
    """
    pieces = []
    stack_v: list[int] = []  # open path; stack_w[k] is the winding of the step leaving stack_v[k]
    stack_w: list[float] = []
    seen: dict[int, int] = {}
    for v, w in zip(walk, wind):
        if v in seen:  # the walk returned to v: cut out the closed piece v -> ... -> v
            j = seen[v]
            pieces.append((stack_v[j:], float(np.sum(stack_w[j:]))))
            for x in stack_v[j + 1:]:
                del seen[x]
            del stack_v[j + 1:], stack_w[j + 1:]
            stack_w[j] = w
            continue
        seen[v] = len(stack_v)
        stack_v.append(v)
        stack_w.append(w)
    pieces.append((stack_v, float(np.sum(stack_w))))
    pieces = [p for p in pieces if len(p[0]) >= 3 or abs(p[1]) > 0]
    good = [p for p in pieces if abs(abs(p[1]) - 1) < 1e-9]
    best = good if good else sorted(pieces, key=lambda p: -abs(p[1]))
    return best[0]


def _delta(u: np.ndarray, v: np.ndarray, n: int, weights: np.ndarray | None = None) -> sp.csr_matrix:
    """Coboundary (m × n): (δz)(u, v) = z_v − z_u, rows scaled by √weights when given."""
    m = len(u)
    s = np.ones(m) if weights is None else np.sqrt(np.asarray(weights, dtype=np.float64))
    rows = np.r_[np.arange(m), np.arange(m)]
    return sp.csr_matrix((np.r_[-s, s], (rows, np.r_[u, v])), shape=(m, n))


def _wrap(x: np.ndarray) -> np.ndarray:
    """Angle differences wrapped into [−π, π)."""
    return np.mod(np.asarray(x) + np.pi, 2 * np.pi) - np.pi


def representative_cycle(D: np.ndarray, co_edges: np.ndarray, co_vals: np.ndarray, r: float,
                         start: int, phase: np.ndarray | None = None, max_step: float | None = None,
                         power: float = 2.0) -> tuple[list[int], float]:
    """Shortest closed walk through ``start`` in G_r whose cocycle sum is ±1 (module doc, step 2).

    Edge cost (D_uv / r)^power (power 2 favours chains of short steps). With ``phase``
    and ``max_step`` only edges whose wrapped phase change |θ_v − θ_u| ≤ max_step are used,
    so the cycle samples the loop at least every ``max_step`` radians of phase.

    Returns (cycle, winding): vertex ids (first != last; consecutive ids, and last → first,
    joined by edges of length ≤ r) and Σ α along it. ([], 0.0) if no such walk exists. The
    cycle is listed the way its cocycle sum is positive, from its lowest vertex
    (:func:`canonical_cycle`): the walk and its reverse cost the same up to rounding, so which
    of the two Dijkstra returns differs between machines.
    """
    n = D.shape[0]
    D32 = np.asarray(D, dtype=np.float32)
    u, v = _rips_edges(D32, r, strict=False)
    if phase is not None and max_step is not None:
        ok = np.abs(_wrap(phase[v] - phase[u])) <= max_step
        ok &= ~(np.isnan(phase[u]) | np.isnan(phase[v]))
        u, v = u[ok], v[ok]
    alpha = np.rint(_cochain_on(u, v, n, co_edges, co_vals)).astype(np.int64)
    scale = float(r) if r > 0 else 1.0
    # from the float32 distances, as the edges are: rounding that differs between BLAS kernels then
    # rarely changes a weight, and a tie between two walks is broken the same way on every machine
    w = (np.asarray(D32[u, v], dtype=np.float64) / scale) ** power + 1e-12  # zero-length edges must stay edges
    L = _MAX_WINDING
    rows, cols, data = [], [], []
    for k in range(-L, L + 1):  # integer cover: layer k holds the walks with winding k so far
        for src, dst, step in ((u, v, alpha), (v, u, -alpha)):
            k2 = k + step
            ok = (k2 >= -L) & (k2 <= L)
            rows.append((k + L) * n + src[ok])
            cols.append((k2[ok] + L) * n + dst[ok])
            data.append(w[ok])
    size = (2 * L + 1) * n
    G = sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    source = L * n + start
    dist, pred = csgraph.dijkstra(G, directed=True, indices=source, return_predecessors=True)
    target = min(((L + 1) * n + start, (L - 1) * n + start), key=lambda t: (dist[t], t))
    if not np.isfinite(dist[target]):
        return [], 0.0
    path = [target]
    while path[-1] != source:
        path.append(int(pred[path[-1]]))
    path = path[::-1]
    verts = [p % n for p in path]
    steps = np.diff([p // n for p in path]).astype(float)
    cycle, winding = _split_walk(verts[:-1], steps)
    return canonical_cycle(cycle, winding)


def canonical_cycle(cycle, winding: float) -> tuple[list[int], float]:
    """(cycle, winding) listed the way its winding is positive (reversed, and the winding
    negated, where it is negative), starting at its lowest vertex: one listing of one cycle,
    however a walk found it."""
    c = [int(x) for x in cycle]
    if winding < 0:
        c, winding = c[::-1], -winding
    if c:
        c = np.roll(c, -int(np.argmin(c))).tolist()
    return c, float(winding)


# ---------------------------------------------------------------------------- membership
def loop_membership(D: np.ndarray, cycle, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``loop_distance[i] = min_{c ∈ cycle} D[i, c]`` and ``on_loop = loop_distance ≤ threshold``."""
    if len(cycle) == 0:
        dist = np.full(D.shape[0], np.inf)
    else:
        dist = np.asarray(D)[:, np.asarray(cycle, dtype=np.int64)].min(axis=1).astype(np.float64)
    return dist, dist <= threshold


# ---------------------------------------------------------------------------- coordinate
def _harmonic_lift(delta: sp.csr_matrix, target: np.ndarray, tol: float) -> tuple[np.ndarray, dict]:
    """Minimum-norm least-squares z* = argmin ‖target − δz‖ (scipy lsmr) and diagnostics."""
    res = splinalg.lsmr(delta, target, atol=tol, btol=tol, maxiter=20 * delta.shape[1])
    z = res[0]
    norm_t = float(np.linalg.norm(target))
    resid = float(np.linalg.norm(target - delta @ z) / norm_t) if norm_t > 0 else float("nan")
    return z, {"residual": resid, "lsmr_istop": int(res[1]), "lsmr_iters": int(res[2])}


def circular_coordinate(D: np.ndarray, co_edges: np.ndarray, co_vals: np.ndarray, r: float,
                        tol: float = 1e-10) -> tuple[np.ndarray, dict]:
    """de Silva et al. circular coordinate on the Rips graph G_r (module docstring, step 3a).

    z* = argmin_z Σ_{(u,v) ∈ G_r} (α(u, v) − (z_v − z_u))² (edges D_uv < r, lsmr,
    minimum-norm), θ = 2π (z* mod 1). Returns θ (n,) and ``info`` with ``n_edges``,
    ``residual`` (‖α − δz*‖ / ‖α‖: the share of the cocycle that is harmonic, not
    smoothed away), ``labels`` (components of G_r) and lsmr's stopping code.
    θ is only meaningful on the component(s) of G_r where α is supported.
    """
    n = D.shape[0]
    u, v = _rips_edges(np.asarray(D, dtype=np.float32), r, strict=True)
    alpha = _cochain_on(u, v, n, co_edges, co_vals)
    z, info = _harmonic_lift(_delta(u, v, n), alpha, tol)
    theta = np.mod(2 * np.pi * z, 2 * np.pi)
    adj = sp.csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    info["labels"] = csgraph.connected_components(adj, directed=False)[1]
    info["n_edges"] = int(len(u))
    return theta, info


def smooth_phase(A: sp.spmatrix, phase: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, dict]:
    """Harmonic circle map on the graph A in the homotopy class of ``phase`` (step 3b).

    The class is pulled back from θ itself: on each edge (u < v) of A the integer jump
    β(u, v) = (θ_v − θ_u − wrap(θ_v − θ_u)) / 2π (wrap into [−π, π)), i.e. θ*[S¹]. Then
    z* = argmin Σ_{(u,v) ∈ A} w_uv (β(u, v) − (z_v − z_u))² (lsmr, minimum norm, A's
    weights w) and θ' = 2π (z* mod 1): every point's phase becomes the (weighted) mean of
    its neighbours' in the lifted sense, with the winding of θ kept. Points with NaN
    phase are left out (and stay NaN).
    """
    phase = np.asarray(phase, dtype=np.float64)
    n = len(phase)
    C = sp.triu(sp.csr_matrix(A), 1).tocoo()
    u, v, w = C.row.astype(np.int64), C.col.astype(np.int64), C.data.astype(np.float64)
    ok = ~(np.isnan(phase[u]) | np.isnan(phase[v])) & (w > 0)
    u, v, w = u[ok], v[ok], w[ok]
    dth = phase[v] - phase[u]
    beta = np.rint((dth - _wrap(dth)) / (2 * np.pi))
    sw = np.sqrt(w)
    z, info = _harmonic_lift(_delta(u, v, n, w), beta * sw, tol)
    out = np.mod(2 * np.pi * z, 2 * np.pi)
    out[np.isnan(phase)] = np.nan
    info["n_edges"] = int(len(u))
    return out, info


def cycle_coverage(D: np.ndarray, reference, cycle, r: float) -> float:
    """The share of the ``reference`` cycle's points within ``r`` (in D) of a point of ``cycle``:
    1 where ``cycle`` runs all round the same loop, small where it is a small loop through one
    place of it (module docstring, step 1)."""
    ref, cyc = np.asarray(reference, dtype=np.int64), np.asarray(cycle, dtype=np.int64)
    if len(ref) == 0 or len(cyc) == 0:
        return 0.0
    return float(np.mean(D[np.ix_(ref, cyc)].min(axis=1) <= r))


def is_small_loop(D: np.ndarray, reference, cycle, r: float) -> bool:
    """Whether ``cycle`` is a small loop at one place of the loop that ``reference`` runs round:
    it has fewer than :data:`MIN_CYCLE_COVERAGE` times the points of ``reference`` and passes
    within ``r`` of fewer than that share of them (:func:`cycle_coverage`)."""
    return (len(cycle) < MIN_CYCLE_COVERAGE * len(reference)
            and cycle_coverage(D, reference, cycle, r) < MIN_CYCLE_COVERAGE)


def _lowest_cycle(D: np.ndarray, cocycle_at, b: float, d: float, anchor: int):
    """(cycle, winding) of :func:`representative_cycle` through ``anchor`` at the lowest
    r = b + f·(d − b), f in :data:`_CYCLE_FILTRATIONS`, that has one (``cocycle_at(r)``: the
    cocycle's edges and values on G_r); None where none has."""
    for f in _CYCLE_FILTRATIONS:
        r = b + f * (d - b)
        cycle, winding = representative_cycle(D, *cocycle_at(r), r, anchor)
        if cycle:
            return cycle, winding
    return None


def cycle_phase(A: sp.spmatrix, cycle, winding: float = 1.0) -> np.ndarray:
    """Circular coordinate from a representative cycle (module docstring, step 1, ``"cycle"``).

    The cycle's vertices c_0 … c_{L−1} get θ(c_j) = 2π j / L, increasing in the direction
    in which the cocycle sums to +1 (``winding`` is Σ α along ``cycle`` as given; −1 reverses
    it), counted from the cycle's vertex of lowest index. Every other point gets the harmonic
    extension of e^{iθ} over A (:func:`extend_phase`): its e^{iθ} is the neighbour-weighted mean
    of its neighbours'. Spacing the vertices evenly by index measures progress in D: the cycle
    is a shortest walk under Σ (D_uv/r)², which spreads its length evenly over its steps.

    θ = 0 at the lowest index (:func:`canonical_cycle`), not at the walk's start: the walk from
    the birth edge's vertex may go either way round (the two ways tie up to rounding, which BLAS
    kernels break differently), and reversed by its winding the cycle then started one vertex
    off. OpenBLAS's Haswell and SkylakeX kernels turned the IPC cells' phase by a constant
    0.153 rad so, one step of a 41-vertex cycle (``tests/test_localize.py``).
    """
    c = np.asarray(canonical_cycle(cycle, winding)[0], dtype=np.int64)
    return extend_phase(A, c, 2 * np.pi * np.arange(len(c)) / len(c))


def screened_phase(A: sp.spmatrix, phase: np.ndarray, screening: float = PHASE_SCREENING,
                   tol: float = 1e-10) -> tuple[np.ndarray, dict]:
    """Local smoothing of a circle-valued ``phase`` on the graph A, its global shape kept.

    θ' = θ + 2π y with y* = argmin_y Σ_{(u,v) ∈ A} w_uv (y_v − y_u + g_uv)² + λ Σ_i deg_i y_i²,
    g_uv = wrap(θ_v − θ_u)/2π (wrap into [−π, π)), λ = ``screening``: the screened Poisson
    equation (L + λ Deg) y = −δᵀW g, solved by conjugate gradients. λ → 0 gives the harmonic
    circle map of :func:`smooth_phase` (which lets all the winding gather where the graph
    is thinnest); λ → ∞ keeps θ. In between, θ is averaged over about 1/√λ hops while its
    distribution along the loop stays that of ``phase``. NaN phases stay NaN.
    """
    phase = np.asarray(phase, dtype=np.float64)
    A = sp.csr_matrix(A)
    n = len(phase)
    C = sp.triu(A, 1).tocoo()
    u, v, w = C.row.astype(np.int64), C.col.astype(np.int64), C.data.astype(np.float64)
    ok = ~(np.isnan(phase[u]) | np.isnan(phase[v])) & (w > 0)
    u, v, w = u[ok], v[ok], w[ok]
    g = _wrap(phase[v] - phase[u]) / (2 * np.pi)
    rhs = np.bincount(u, w * g, minlength=n) - np.bincount(v, w * g, minlength=n)
    deg = np.bincount(u, w, minlength=n) + np.bincount(v, w, minlength=n)
    W = sp.csr_matrix((np.r_[w, w], (np.r_[u, v], np.r_[v, u])), shape=(n, n))
    diag = (1.0 + screening) * deg
    known = ~np.isnan(phase) & (diag > 0)
    y = np.zeros(n)
    if known.any():
        M = (sp.diags(diag) - W)[known][:, known].tocsr()
        y_k, code = splinalg.cg(M, rhs[known], rtol=tol, atol=0.0, maxiter=10 * int(known.sum()),
                       M=sp.diags(1.0 / diag[known]))
        if code != 0:
            log.warning("screened phase: conjugate gradients stopped with code %d", code)
        y[known] = y_k
    out = np.mod(phase + 2 * np.pi * y, 2 * np.pi)
    out[np.isnan(phase)] = np.nan
    return out, {"n_edges": int(len(u)), "screening": float(screening)}


def phase_confidence(A: sp.spmatrix, phase: np.ndarray, loop_distance: np.ndarray | None = None,
                     threshold: float | None = None, neighbour_phase: np.ndarray | None = None) -> np.ndarray:
    """Per-point confidence in θ, in [0, 1] (NaN where θ is NaN).

    c_i = R_i · min(1, threshold / loop_distance_i), with R_i = |Σ_j w_ij e^{iθ_j}| / Σ_j w_ij
    over i's neighbours in A (1 − the local circular variance): 1 where the neighbours agree
    on the phase, near 0 where they point all round the circle (the middle of the hole, a
    crossing of two loops). The second factor discounts points farther from the loop's
    cycle than the on-loop threshold (see step 3). Without ``loop_distance`` only R_i.
    ``neighbour_phase``: the θ_j of A's columns where they are other points than its rows
    (A an n × M matrix: points to their landmarks, :mod:`topoembed.extension`).
    """
    phase = np.asarray(phase, dtype=np.float64)
    A = sp.csr_matrix(A)
    ok = ~np.isnan(phase)
    nb = phase if neighbour_phase is None else np.asarray(neighbour_phase, dtype=np.float64)
    ok_nb = ~np.isnan(nb)
    e = np.where(ok_nb, np.exp(1j * np.where(ok_nb, nb, 0.0)), 0.0)
    num = np.abs(A @ e)
    den = A @ ok_nb.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(den > 0, num / den, 0.0)
        if loop_distance is not None and threshold is not None:
            dist = np.asarray(loop_distance, dtype=np.float64)
            conf = conf * np.where(dist > threshold, threshold / dist, 1.0)
    conf = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)
    conf[~ok] = np.nan
    return conf


# ---------------------------------------------------------------------------- extension
def harmonic_extension(A: sp.spmatrix, known: np.ndarray, values: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Dirichlet harmonic extension of ``values`` (real or complex) given on ``known`` ids.

    With L = Deg − A (A's weights), unknown set U: solve L_UU x_U = A_UK x_K, i.e. every
    unknown value is the A-weighted mean of its neighbours' (scipy ``cg``, relative
    tolerance ``tol``). Known ids with a NaN value
    are treated as unknown; unknown ids in a component of A without a known id get NaN.
    """
    A = sp.csr_matrix(A)
    n = A.shape[0]
    known = np.asarray(known, dtype=np.int64)
    values = np.asarray(values)
    ok = ~np.isnan(values)
    known, values = known[ok], values[ok]
    out = np.full(n, np.nan, dtype=np.result_type(values.dtype, np.float64))
    out[known] = values
    is_known = np.zeros(n, bool)
    is_known[known] = True
    _, labels = csgraph.connected_components(A, directed=False)
    reach = np.isin(labels, np.unique(labels[known]))
    unk = np.flatnonzero(~is_known & reach)
    if len(unk) == 0:
        return out
    deg = np.asarray(A.sum(axis=1)).ravel()
    A_uu = A[unk][:, unk]
    L_uu = (sp.diags(deg[unk]) - A_uu).tocsr()
    rhs = A[unk][:, known] @ values
    # L_uu is symmetric positive definite (every unknown component touches a known id):
    # conjugate gradients with a Jacobi preconditioner, real and imaginary parts separately.
    # (A direct factorisation fills in badly on kNN graphs of tens of thousands of points.)
    M = sp.diags(1.0 / L_uu.diagonal())
    parts = [rhs.real, rhs.imag] if np.iscomplexobj(rhs) else [rhs]
    sol = []
    for b in parts:
        x, info = splinalg.cg(L_uu, b, rtol=tol, atol=0.0, maxiter=10 * len(unk), M=M)
        if info != 0:
            log.warning("harmonic extension: conjugate gradients stopped with code %d", info)
        sol.append(x)
    out[unk] = sol[0] + 1j * sol[1] if len(sol) == 2 else sol[0]
    return out


def extend_phase(A_full: sp.spmatrix, idx_sub, phase_sub) -> np.ndarray:
    """θ for all points of A_full from θ on the points ``idx_sub`` (phase_sub, radians).

    Harmonic extension of e^{iθ} (:func:`harmonic_extension`), then θ = arg. Points with a
    known θ keep it exactly; points A_full cannot connect to a known one get NaN.
    """
    z = harmonic_extension(A_full, idx_sub, np.exp(1j * np.asarray(phase_sub, dtype=np.float64)))
    theta = np.mod(np.angle(z), 2 * np.pi)
    theta[np.isnan(z)] = np.nan
    known = np.asarray(idx_sub, dtype=np.int64)
    ph = np.asarray(phase_sub, dtype=np.float64)
    theta[known[~np.isnan(ph)]] = np.mod(ph[~np.isnan(ph)], 2 * np.pi)
    return theta


def extend_loop_distance(A_full: sp.spmatrix, idx_sub, dist_sub) -> np.ndarray:
    """loop_distance for all points by harmonic extension of the known values (real Dirichlet problem).

    Infinite known values (other component) are treated as unknown. The extension is an
    interpolation (a neighbour-weighted mean), so it never exceeds the known range; apply the
    same ``on_loop`` threshold to it.
    """
    d = np.asarray(dist_sub, dtype=np.float64).copy()
    d[~np.isfinite(d)] = np.nan
    out = harmonic_extension(A_full, idx_sub, d)
    return out


# ---------------------------------------------------------------------------- statistics
def circular_correlation(a, b, method: str = "fisher_lee") -> float:
    """Circular–circular correlation of two angle arrays (radians), in [−1, 1].

    ``"fisher_lee"`` (Fisher and Lee, Biometrika 70, 1983):
        ρ = Σ_{i<j} sin(a_i − a_j) sin(b_i − b_j) / √(Σ_{i<j} sin²(a_i − a_j) Σ_{i<j} sin²(b_i − b_j)),
    computed in O(n) from Σ_{i,j} sin(a_i−a_j) sin(b_i−b_j) = 2[(Σ s_a s_b)(Σ c_a c_b) − (Σ s_a c_b)(Σ c_a s_b)]
    (s = sin, c = cos). It needs no mean direction, so it is stable for uniformly spread
    angles (a cell cycle), is invariant to rotating either variable, and changes sign under
    reflection; ρ = ±1 iff b = ±a + const.

    ``"js"`` (Jammalamadaka and SenGupta 1988):
        ρ = Σ sin(a_i − ā) sin(b_i − b̄) / √(Σ sin²(a_i − ā) Σ sin²(b_i − b̄)), ā, b̄ circular means.
    Unreliable when the angles are near-uniform (the means are then ill-defined).
    NaNs are dropped pairwise.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if method == "fisher_lee":
        sa, ca, sb, cb = np.sin(a), np.cos(a), np.sin(b), np.cos(b)
        num = (sa @ sb) * (ca @ cb) - (sa @ cb) * (ca @ sb)
        va = (sa @ sa) * (ca @ ca) - (sa @ ca) ** 2
        vb = (sb @ sb) * (cb @ cb) - (sb @ cb) ** 2
    elif method == "js":
        ma = np.angle(np.mean(np.exp(1j * a)))
        mb = np.angle(np.mean(np.exp(1j * b)))
        xa, xb = np.sin(a - ma), np.sin(b - mb)
        num, va, vb = xa @ xb, xa @ xa, xb @ xb
    else:
        raise ValueError(f"method={method!r} must be 'fisher_lee' or 'js'")
    den = np.sqrt(va * vb)
    return float(num / den) if den > 0 else 0.0


def circular_alignment(a, b) -> tuple[float, int, float]:
    """Best rotation/reflection of b onto a: returns (R, sign, shift) maximising
    R = |mean e^{i(a − sign·b)}|, with a ≈ sign·b + shift. R = 1 iff a = ±b + const exactly.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    best = None
    for sign in (1, -1):
        z = np.mean(np.exp(1j * (a - sign * b)))
        cand = (float(np.abs(z)), sign, float(np.angle(z)))
        if best is None or cand[0] > best[0]:
            best = cand
    return best


def orient_by_markers(phase, s_score, g2m_score) -> tuple[np.ndarray, dict]:
    """Turn a cell-cycle phase so that it reads like the cycle: S before G2/M along θ, and
    θ = 0 at the G1/S boundary (the convention of tricycle, Zheng et al. 2022), so that
    phases compare across samples.

    θ_S and θ_G2M are the circular means of θ weighted by each cell's S and G2/M score (its
    positive part). They split the circle into two arcs: the one from S to G2/M holds cells
    scoring high on both (late S, G2), the other the G1 cells, low on both. θ is reflected
    where the arc forward from θ_S to θ_G2M has the lower mean score (S + G2/M) of its cells;
    then it is rotated so that the G1/S boundary, θ_S − δ/2 with δ the arc from θ_S to θ_G2M
    (the S phase is centred on θ_S), lands at 0. Returns (θ', info): info holds
    ``reflected``, ``shift`` (θ' = ±θ − shift, mod 2π), the peaks ``theta_S``/``theta_G2M`` in θ'
    ``resultant`` (how concentrated each score is on the loop, |weighted mean of e^{iθ}|, next to
    ``theta_resultant``, that of θ alone: where most cells share one phase, as on a forced loop
    through noise, the scores' resultants are near 1 whatever they say) and
    ``score_angle_corr``: |ρ| (Fisher–Lee, :func:`circular_correlation`) of θ with the *score
    angle* atan2(G2/M − its mean, S − its mean), a phase read from the genes alone (what a
    scanpy user would compute): on simulated cycling counts 0.86 (θ against the truth 0.97); on
    McDavid's sorted lines, whose loops are not supported, 0.02-0.15 (BENCHMARKS.md, "The phases
    biologists compute from genes").
    """
    theta = np.asarray(phase, dtype=np.float64)
    ok = np.isfinite(theta)

    def peak(score, th):
        w = np.clip(np.nan_to_num(np.asarray(score, dtype=np.float64)), 0, None)[ok]
        z = np.sum(w * np.exp(1j * th[ok])) / max(np.sum(w), 1e-300)
        return float(np.angle(z)) % (2 * np.pi), float(np.abs(z))

    (t_s, r_s), (t_g, r_g) = peak(s_score, theta), peak(g2m_score, theta)
    total = np.nan_to_num(np.asarray(s_score, dtype=np.float64) + np.asarray(g2m_score, dtype=np.float64))[ok]
    forward = (theta[ok] - t_s) % (2 * np.pi) < (t_g - t_s) % (2 * np.pi)  # on the arc from θ_S to θ_G2M
    mean_on = [total[forward].mean() if forward.any() else -np.inf,
               total[~forward].mean() if (~forward).any() else -np.inf]
    reflected = bool(mean_on[0] < mean_on[1])  # G1 (low on both) lies forward of S: the loop runs backwards
    if reflected:
        theta, t_s, t_g = (-theta) % (2 * np.pi), (-t_s) % (2 * np.pi), (-t_g) % (2 * np.pi)
    delta = (t_g - t_s) % (2 * np.pi)
    shift = (t_s - delta / 2) % (2 * np.pi)
    out = (theta - shift) % (2 * np.pi)
    s = np.asarray(s_score, dtype=np.float64)[ok]
    g = np.asarray(g2m_score, dtype=np.float64)[ok]
    angle = np.arctan2(g - np.nanmean(g), s - np.nanmean(s))
    return out, {"by": "S and G2/M scores", "reflected": bool(reflected), "shift": float(shift),
                 "theta_S": float((t_s - shift) % (2 * np.pi)), "theta_G2M": float((t_g - shift) % (2 * np.pi)),
                 "resultant": {"S": r_s, "G2M": r_g},
                 "theta_resultant": float(np.abs(np.mean(np.exp(1j * out[ok])))),
                 "score_angle_corr": float(abs(circular_correlation(out[ok], angle)))}


# ---------------------------------------------------------------------------- entry point
def _threshold(rule, birth: float, r_theta: float) -> float:
    if isinstance(rule, str):
        if rule == "birth":
            return float(birth)
        if rule == "theta":
            return float(r_theta)
        raise ValueError(f"on_loop_rule={rule!r} must be one of {ON_LOOP_RULES} or a number")
    return float(rule)


def cocycle_filtration(ph: dict, rows, theta_filtration: float = THETA_FILTRATION) -> float:
    """Where the cocycle run of :func:`localize_loops` stops first (ripser.py's cost grows
    steeply towards a loop's death): the largest, over ``rows``, of b + max(f_θ, 1/2)(d − b),
    which covers θ at r_θ and the cycle search up to half the lifetime. A search that goes
    further (f = 0.75, 0.9: on 4 of 6 IPC subsamples, never on the circles) runs ripser.py
    once more, up to 0.9 of the lifetime (the full death is never needed)."""
    dgm1 = ph["dgms"][1]
    out = 0.0
    for row in rows:
        b, d = (float(x) for x in dgm1[row])
        d = d if np.isfinite(d) else float(ph["thresh"])
        out = max(out, b + max(float(theta_filtration), 0.5) * (d - b))
    return out


def with_loop_cocycles(D: np.ndarray, ph: dict, rows, theta_filtration: float = THETA_FILTRATION,
                       coeff: int = DEFAULT_COEFF) -> dict:
    """``ph`` with the cocycles of the H1 bars ``rows``: unchanged if it has them all, else
    :func:`topoembed.homology.add_cocycles` truncated at :func:`cocycle_filtration`."""
    rows = list(rows)
    if "cocycles" in ph and all(len(ph["cocycles"][1][r]) for r in rows):
        return ph
    return homology.add_cocycles(D, ph, coeff=coeff, rows=rows, thresh=cocycle_filtration(ph, rows, theta_filtration))


def phase_method_for(phase_method: str, detection: dict) -> str:
    """The phase method for the loops of ``detection``: ``"harmonic"`` where the count comes
    from a closed surface (``detection["surface_loops"]``, :func:`topoembed.loops.surface_reading`)
    and the default ``"cycle"`` was asked for, else ``phase_method``.

    The cycle method spreads θ from one representative cycle. A torus's tube has a short
    cycle round one place of the tube (one meridian), and e^{iθ} extended harmonically from it
    fades along the ring, so away from it θ is noise: on tori in R^50 (σ = 0.05-0.1, 700-1,500
    points, 7 single runs) the tube loop's θ had |ρ| = 0.01-0.10 with the tube angle, the
    harmonic coordinate 0.40-0.79; the ring 0.90-0.99 against 0.99-1.00 (BENCHMARKS.md, "A
    torus's tube loop"). The harmonic coordinate's weakness, the winding put where the
    points are thinnest (the cell cycle, above), does not arise on a surface sampled evenly
    enough for its void to be found."""
    return "harmonic" if phase_method == "cycle" and detection.get("surface_loops") else phase_method


def localize_loops(D: np.ndarray, A: sp.spmatrix, ph: dict, detection: dict, *,
                   phase_method: str = "cycle", theta_filtration: float = THETA_FILTRATION,
                   screening: float = PHASE_SCREENING, smooth: str = "knn",
                   on_loop_rule="theta", max_step: float = MAX_STEP, coeff: int | None = None) -> list[dict]:
    """Cycle, membership and circular coordinate of every detected loop.

    Parameters
    ----------
    D : (n, n) the distance matrix the persistence ran on (inf between components allowed).
    A : (n, n) kNN adjacency on the same points.
    ph : ``homology.persistence(D, coeff=p)``, p prime > 2, with or without cocycles (the
        loops' cocycles are added by ripser.py, truncated at :func:`cocycle_filtration` and
        run further only if the cycle search needs it; ``ph["cocycle_limit"]`` says up to
        where a cocycle is valid, see :func:`topoembed.homology.add_cocycles`).
    detection : ``loops.detect(ph["dgms"][1], scale=ph["scale"])``.
    phase_method : "cycle" (default: θ spaced evenly along the representative cycle at
        r_θ, extended over A and smoothed by :func:`screened_phase`) or "harmonic" (the
        de Silva et al. harmonic coordinate at r_θ, refined as ``smooth`` says).
    theta_filtration : f in [0, 1): θ comes from the complex at r_θ = b + f (d − b).
    screening : λ of :func:`screened_phase` (``phase_method="cycle"``).
    smooth : with ``phase_method="harmonic"``: "knn" (refine θ by :func:`smooth_phase` on
        A) or "rips" (θ of the Rips solve only, de Silva et al. as published).
    on_loop_rule : "theta" (loop_distance ≤ r_θ, default), "birth" (≤ b) or a number.
    max_step : largest phase change (radians) along one cycle edge (see step 2).
    coeff : the prime ph was computed with (default :data:`DEFAULT_COEFF`).

    Returns one dict per entry of ``detection["features"]`` (same order) with ``cycle``
    (list[int]), ``phase`` (n,) in [0, 2π) (NaN where undefined: points in another
    component of A), ``phase_confidence`` (n,) in [0, 1] (:func:`phase_confidence`),
    ``loop_distance`` (n,), ``on_loop`` (n,) bool, ``n_on_loop`` and
    provenance: ``feature`` (row in dgms[1]), ``birth``, ``death``, ``theta_filtration``
    (r_θ), ``cycle_filtration`` (r of the cycle), ``cycle_max_step``, ``on_loop_threshold``,
    ``winding`` (Σ α along the cycle as listed: +1, :func:`canonical_cycle`), ``cycle_length``
    (Σ D along it), ``n_edges`` (of G_{r_θ}), ``harmonic_residual``, ``phase_method``, ``smooth``, ``coeff``.
    """
    p = DEFAULT_COEFF if coeff is None else int(coeff)
    if not 0 <= theta_filtration < 1:
        raise ValueError(f"theta_filtration={theta_filtration!r} must be in [0, 1)")
    if smooth not in ("knn", "rips"):
        raise ValueError(f"smooth={smooth!r} must be 'knn' or 'rips'")
    if phase_method not in PHASE_METHODS:
        raise ValueError(f"phase_method={phase_method!r} must be one of {PHASE_METHODS}")
    if not screening > 0:
        raise ValueError(f"screening={screening!r} must be > 0")
    D = np.asarray(D, dtype=np.float64)
    n = D.shape[0]
    dgm1 = ph["dgms"][1]
    rows = list(detection["features"])
    ph = with_loop_cocycles(D, ph, rows, theta_filtration, p)
    out = []
    for row in rows:
        b, d_raw = (float(x) for x in dgm1[row])
        d = d_raw if np.isfinite(d_raw) else float(ph["thresh"])
        limit = float(np.asarray(ph.get("cocycle_limit", np.full(len(dgm1), np.inf)))[row])
        lifted = lift_cocycle(ph["cocycles"][1][row], p)

        def cocycle_at(r, row=row, b=b, d=d):
            """The lifted cocycle, valid on G_r (a run truncated further if ph's stops below r)."""
            nonlocal ph, limit, lifted
            if np.float32(r) > limit:
                ph = homology.add_cocycles(D, ph, coeff=p, rows=[row], thresh=b + _CYCLE_FILTRATIONS[-1] * (d - b))
                limit = float(ph["cocycle_limit"][row])
                lifted = lift_cocycle(ph["cocycles"][1][row], p)
            return lifted

        anchor = int(ph["birth_edges"][row][0])
        # 3a. harmonic coordinate on the Rips graph at r_θ
        r_theta = b + theta_filtration * (d - b)
        if theta_filtration == 0:  # edges strictly below r_θ: step past b so the birth edge is in
            r_theta = float(np.nextafter(np.float32(b), np.float32(np.inf)))
        co_edges, co_vals = cocycle_at(r_theta)
        if phase_method == "cycle":
            # 1 ("cycle"): evenly along the representative cycle at r_θ, over A, screened
            cyc0, wind0 = representative_cycle(D, co_edges, co_vals, r_theta, anchor)
            phase_cycle = "theta_filtration"
            low = _lowest_cycle(D, cocycle_at, b, d, anchor)
            if low is not None and is_small_loop(D, low[0], cyc0, r_theta):
                cyc0, wind0, phase_cycle = low[0], low[1], "lowest_filtration"  # r_θ's walk is a small loop
                log.info("H1 feature %d: the cycle at r_θ passes near only part of the loop; θ from the cycle at "
                         "the lowest filtration value that has one (%d points)", row, len(cyc0))
            theta, info = screened_phase(A, cycle_phase(A, cyc0, wind0), screening)
            info["phase_cycle"] = phase_cycle
            info["residual"] = float("nan")  # no harmonic solve on the Rips graph
        else:
            theta, info = circular_coordinate(D, co_edges, co_vals, r_theta)
            inside = info["labels"] == info["labels"][anchor]
            if not inside.all():  # points off the anchor's component of G_r: extend over A
                theta = extend_phase(A, np.flatnonzero(inside), theta[inside])
            # 3b. refine on the kNN graph in the same class
            if smooth == "knn":
                theta, _ = smooth_phase(A, theta)
        # 2. cycle: smallest r in [b, d) and phase step allowing a winding-±1 walk
        cycle, winding, r_cyc, step = [], 0.0, b, max_step
        for step in (max_step, 2 * max_step, 4 * max_step, None):
            for f in _CYCLE_FILTRATIONS:
                r_cyc = b + f * (d - b)
                co_edges, co_vals = cocycle_at(r_cyc)
                cycle, winding = representative_cycle(D, co_edges, co_vals, r_cyc, anchor, phase=theta,
                                                      max_step=step)
                if cycle:
                    break
            if cycle:
                break
        if not cycle:
            log.warning("no cycle with winding ±1 found for H1 feature %d (birth %.4g)", row, b)
        thr = _threshold(on_loop_rule, b, r_theta)
        dist, on_loop = loop_membership(D, cycle, thr)
        cyc = np.asarray(cycle, dtype=np.int64)
        cyc_len = float(D[cyc, np.roll(cyc, -1)].sum()) if len(cyc) else 0.0
        log.info("loop %d (H1 feature %d, [%.4g, %.4g)): cycle of %d points at r=%.4g, winding %+g; θ (%s) at "
                 "r=%.4g, %d edges; %d/%d points on the loop", len(out), row, b, d, len(cycle), r_cyc, winding,
                 phase_method, r_theta, info["n_edges"], int(on_loop.sum()), n)
        out.append({
            "cycle": [int(x) for x in cycle], "phase": theta, "loop_distance": dist, "on_loop": on_loop,
            "phase_confidence": phase_confidence(A, theta, dist, thr),
            "n_on_loop": int(on_loop.sum()), "feature": int(row), "birth": b, "death": d_raw,
            "theta_filtration": float(r_theta), "cycle_filtration": float(r_cyc),
            "cycle_max_step": None if step is None else float(step), "on_loop_threshold": thr,
            "winding": float(winding), "cycle_length": cyc_len, "n_edges": info["n_edges"],
            "harmonic_residual": info["residual"], "phase_method": phase_method,
            "phase_cycle": info.get("phase_cycle"),
            "smooth": smooth if phase_method == "harmonic" else None, "coeff": p,
        })
    return out
