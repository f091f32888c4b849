"""Stage 3: persistent homology of a distance matrix (Vietoris–Rips, via ripser).

``persistence(D, maxdim=1)`` runs ripser (Bauer 2021; ripser.py by Tralie, Saul and
Bar-On 2018) on a precomputed dense distance matrix and returns the diagrams per
dimension as (birth, death) arrays, death = inf for classes that never die.

The filtration is truncated at the *enclosing radius* r = min_i max_j D_ij: at that
value one vertex is joined to all others, the complex is a cone and every class of
dimension ≥ 1 has died, so the diagrams are exactly those of the full filtration while
far fewer edges are processed. Points in different connected components (D = inf) are
never joined, so H0 has one infinite bar per component.

ripser works in float32: births and deaths are float32 values stored as float64.
Cost: memory ≈ 4·n² bytes for the float32 copy plus the reduction; time grows quickly
with n and noise (H1 of n = 1,000 noisy points takes seconds; n = 2,000 up to a minute
on 2 cores). H2 costs much more: 34 s at n = 500 (sphere, 2 cores); the pipeline refuses above 600.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["persistence", "enclosing_radius", "birth_edge", "distance_scale", "ripser_memory_estimate"]


def ripser_memory_estimate(n_edges: int) -> float:
    """Bytes ripser may need for an H1 run over ``n_edges`` filtration edges: 60 · n_edges^1.2.

    Calibrated on the worst case measured on this project's machine, diffusion distances of a
    noisy circle (σ = 0.2, k = 100): 2.15 GB over the input at n = 2,000 (2.0 M edges) and
    19.7 GB, where it aborted with std::bad_alloc, at n = 5,000 (12.5 M edges); corrected
    effective resistance needed about a third of that (0.65 GB at n = 2,000), a Gaussian
    blob a fourteenth. An upper bound, so a run it allows does not abort.
    """
    return 60.0 * float(n_edges) ** 1.2


def enclosing_radius(D: np.ndarray) -> float:
    """min_i max_j D_ij over finite entries (inf if no point reaches all others)."""
    rowmax = np.max(D, axis=1)
    return float(np.min(rowmax))


def distance_scale(D: np.ndarray) -> float:
    """The median of the finite off-diagonal distances: a scale for lifetimes that, unlike
    the enclosing radius, is not set by a few outlying points."""
    iu = np.triu_indices(D.shape[0], 1)
    vals = D[iu]
    vals = vals[np.isfinite(vals)]
    return float(np.median(vals)) if len(vals) else 0.0


def birth_edge(D32: np.ndarray, birth: float, cocycle: np.ndarray | None = None) -> tuple[int, int]:
    """The edge (a, b), a < b, whose length is the birth value of an H1 class.

    With ripser's representative cocycle the edge is taken from its support (the birth
    edge is the cocycle's leading edge); without, from all edges of that exact length.
    """
    if cocycle is not None and len(cocycle):
        ij = cocycle[:, :2].astype(np.int64)
        lengths = D32[ij[:, 0], ij[:, 1]]
        a, b = ij[int(np.argmin(np.abs(lengths - birth)))]
    else:
        iu = np.argwhere(np.triu(D32 == np.float32(birth), 1))
        if len(iu) == 0:
            iu = np.argwhere(np.triu(np.isclose(D32, birth, rtol=1e-6, atol=0), 1))
        a, b = iu[0]
    return (int(min(a, b)), int(max(a, b)))


def _check_memory(D: np.ndarray, thresh: float) -> None:
    """Refuse, with a clear message, a filtration that ripser could not hold in memory."""
    from ._validate import InputError, available_memory_bytes

    n = D.shape[0]
    n_edges = (int(np.count_nonzero(D <= thresh)) - n) // 2
    need, have = ripser_memory_estimate(n_edges), available_memory_bytes()
    if need > have:
        raise InputError(f"persistent homology of {n} points ({n_edges:,} filtration edges) may need about "
                         f"{need / 2**30:.1f} GiB, but {have / 2**30:.1f} GiB are available; analyse the data as "
                         "an ensemble of subsamples (the default above 1,000 points: --n-subsamples auto) or "
                         "pass --subsample")


def persistence(D: np.ndarray, maxdim: int = 1, cocycles: bool = False, coeff: int = 2,
                thresh: float | None = None) -> dict:
    """Vietoris–Rips persistence diagrams of the distance matrix ``D``.

    Returns a dict with ``dgms`` (list, one (m, 2) float64 array per dimension 0..maxdim),
    ``thresh`` (the truncation value used), ``scale`` (:func:`distance_scale`), ``birth_edges`` (for H1: one (a, b) pair per
    bar, in diagram order) and, when ``cocycles=True``, ``cocycles`` (ripser's
    representative cocycles per dimension: arrays of (i, j, value) rows for H1).
    """
    from ripser import ripser

    D = np.asarray(D)
    finite = np.isfinite(D)
    if thresh is None:
        if finite.all():
            thresh = enclosing_radius(D)
        else:
            thresh = float(D[finite].max())
    Dr = np.where(finite, D, thresh * 2 + 1.0)
    if maxdim >= 1:
        _check_memory(Dr, thresh)
    res = ripser(Dr, maxdim=maxdim, distance_matrix=True, do_cocycles=cocycles or maxdim >= 1,
                 coeff=coeff, thresh=thresh)
    dgms = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in res["dgms"]]
    # Classes still alive at the truncation value can only be H0 components (see docstring);
    # report them with death = inf.
    for dgm in dgms:
        dgm[dgm[:, 1] > thresh, 1] = np.inf
    D32 = Dr.astype(np.float32)
    edges = []
    if maxdim >= 1:
        for (b, _), cocycle in zip(dgms[1], res["cocycles"][1]):
            edges.append(birth_edge(D32, b, cocycle))
    out = {"dgms": dgms, "thresh": float(thresh), "scale": distance_scale(D), "birth_edges": np.array(edges, dtype=np.int64).reshape(-1, 2)}
    if cocycles:
        out["cocycles"] = res["cocycles"]
    return out
