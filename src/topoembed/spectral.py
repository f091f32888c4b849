"""Stage 2: spectral distances from the eigendecomposition of the graph Laplacian.

Notation (A symmetric adjacency, no self-loops): degrees d_i = Σ_j A_ij,
vol = Σ_i d_i, L_sym = I − D^{-1/2} A D^{-1/2} with eigenpairs (λ_k, u_k),
0 = λ_1 ≤ λ_2 ≤ … ≤ λ_n ≤ 2 (for a connected graph λ_2 > 0).

Every distance here is the Euclidean distance (squared for effective resistance)
between rows of a matrix of *spectral coordinates*
Y = D^{-1/2} U_{≥2} diag(f(λ)) for a spectral filter f:

=================================  ==========================  =========================
kind                               f(λ)                        distance
=================================  ==========================  =========================
``effective_resistance``           (1 − λ)/√λ                  ‖y_i − y_j‖² (corrected)
``effective_resistance_uncorrected`` 1/√λ                      ‖y_i − y_j‖²
``diffusion`` (time t)             √vol · (1 − λ)^t            ‖y_i − y_j‖
``laplacian_eigenmaps`` (p dims)   first p columns of U_{≥2}   ‖y_i − y_j‖ (no D^{-1/2})
``euclidean``                      (input points)              ‖x_i − x_j‖
=================================  ==========================  =========================

* Effective resistance R_ij = L⁺_ii + L⁺_jj − 2 L⁺_ij with L = D − A.
* Corrected effective resistance (von Luxburg, Radl and Hein, JMLR 2014):
  R̃_ij = R_ij − 1/d_i − 1/d_j + 2 A_ij/(d_i d_j), R̃_ii = 0; the spectral form above is
  the same quantity. It removes the 1/d_i + 1/d_j term that dominates R for large n.
  This is the default distance of the pipeline.
* Diffusion distance (Coifman and Lafon 2006), P = D^{-1}A:
  D_t(i, j) = √vol · ‖(P^t_{i·} − P^t_{j·}) D^{-1/2}‖₂.
* Laplacian eigenmaps (Belkin and Niyogi 2003): rows of the first p non-trivial
  eigenvectors u_2 … u_{p+1} of L_sym.

Disconnected graphs: each connected component is handled on its own (its own
Laplacian, degrees and volume); the distance between points of different components is
``inf``. Persistent homology then never merges the components, so H0 has one infinite
bar per component. A warning is logged.

Cost: the dense path stores the n×n Laplacian, its n×n eigenvectors and the n×n
distance matrix in float64 (about 8·n² bytes each) and the eigensolver takes O(n³)
time: ≈ 0.1 s at n = 1,000, 6 s at 4,000 and ≈ 1.5 min at 10,000 on 2 cores.
:func:`dense_cost` estimates both; :func:`check_dense_feasible` refuses above
``DENSE_MAX_N`` points or the memory that is available.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._validate import InputError, available_memory_bytes, option
from ._lazy import module as _lazy_module

sp = _lazy_module("scipy.sparse")
from .graph import components, disconnected_warning

log = logging.getLogger(__name__)

__all__ = [
    "Spectrum", "laplacian_spectrum", "component_spectra", "spectral_coordinates", "distance_matrix",
    "effective_resistance", "diffusion_distance", "eigenmap_distance", "euclidean_distance",
    "pairwise_euclidean", "DISTANCES", "DEFAULT_DISTANCE", "dense_cost", "check_dense_feasible",
    "DENSE_MAX_N",
]

#: Largest n for the dense eigendecomposition (the default; callers may pass their own).
DENSE_MAX_N = 10_000
DEFAULT_DISTANCE = "effective_resistance"


@dataclass
class Spectrum:
    """Eigenpairs of L_sym for one connected graph: eigvals ascending, eigvecs columns."""

    eigvals: np.ndarray
    eigvecs: np.ndarray
    degrees: np.ndarray
    vol: float


def laplacian_spectrum(A: sp.spmatrix, dtype=np.float64, device: str = "cpu") -> Spectrum:
    """Dense eigendecomposition of L_sym = I − D^{-1/2} A D^{-1/2} of a connected graph
    (``device`` "cuda"/"auto": torch.linalg.eigh on the GPU, float64; :mod:`topoembed._device`)."""
    A = sp.csr_matrix(A, dtype=dtype)
    deg = np.asarray(A.sum(axis=1)).ravel()
    if np.any(deg <= 0):
        raise InputError("the graph has isolated vertices (degree 0); increase k or drop those points")
    s = 1.0 / np.sqrt(deg)
    L = -(sp.diags(s) @ A @ sp.diags(s)).toarray()
    L[np.diag_indices_from(L)] += 1.0
    lam, U = _eigh(L, device)
    lam = np.clip(lam, 0.0, 2.0)
    lam[0] = 0.0
    return Spectrum(eigvals=lam, eigvecs=U, degrees=deg, vol=float(deg.sum()))


def _eigh(L: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of a dense symmetric matrix, on ``device``."""
    from . import _device

    device = _device.resolve(device)
    if device == "cpu":
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # LAPACK's result depends on its thread count: one, everywhere
            return np.linalg.eigh(L)
    import torch

    lam, U = torch.linalg.eigh(torch.as_tensor(L, device=device))
    return lam.cpu().numpy(), U.cpu().numpy()


def _filter(kind: str, lam: np.ndarray, vol: float, t: float) -> np.ndarray:
    if kind == "effective_resistance":
        return (1.0 - lam) / np.sqrt(lam)
    if kind == "effective_resistance_uncorrected":
        return 1.0 / np.sqrt(lam)
    if kind == "diffusion":
        return np.sqrt(vol) * (1.0 - lam) ** t
    raise KeyError(kind)


def spectral_coordinates(spec: Spectrum, kind: str = DEFAULT_DISTANCE, *, t: float = 8,
                         n_components: int = 2) -> np.ndarray:
    """Spectral coordinates Y (rows = points) whose Euclidean geometry gives ``kind``.

    The trivial eigenpair (λ_1 = 0, u_1 ∝ √d) is dropped: it is constant after the
    D^{-1/2} scaling and so cancels in every difference.
    """
    lam = spec.eigvals[1:]
    U = spec.eigvecs[:, 1:]
    if kind == "laplacian_eigenmaps":
        return U[:, :n_components].copy()
    if kind.startswith("effective_resistance") and np.any(lam <= 0):
        raise InputError("the Laplacian has more than one zero eigenvalue: the graph is disconnected")
    f = _filter(kind, lam, spec.vol, t)
    return (U / np.sqrt(spec.degrees)[:, None]) * f[None, :]


def pairwise_euclidean(Y: np.ndarray, squared: bool = False) -> np.ndarray:
    """Dense Euclidean (or squared) distances between rows of Y; exact zeros on the diagonal."""
    sq = np.einsum("ij,ij->i", Y, Y)
    G = Y @ Y.T
    D = sq[:, None] + sq[None, :] - 2.0 * G
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    D = 0.5 * (D + D.T)
    return D if squared else np.sqrt(D, out=D)


_SQUARED = {"effective_resistance": True, "effective_resistance_uncorrected": True,
            "diffusion": False, "laplacian_eigenmaps": False}


def component_spectra(A: sp.spmatrix, device: str = "cpu") -> list[tuple[np.ndarray, Spectrum | None]]:
    """(point indices, :class:`Spectrum`) per connected component of A (None for a lone point).

    The eigendecomposition is the costly part of every spectral distance (O(n³)); compute
    it once here and pass it as ``spectra`` to :func:`distance_matrix` for several kinds
    or times t on the same graph. ``device``: see :func:`laplacian_spectrum`.
    """
    A = sp.csr_matrix(A)
    n_comp, labels = components(A)
    if n_comp == 1:
        return [(np.arange(A.shape[0]), laplacian_spectrum(A, device=device))]
    log.warning(disconnected_warning(labels))
    out = []
    for c in range(n_comp):
        idx = np.flatnonzero(labels == c)
        out.append((idx, laplacian_spectrum(A[idx][:, idx], device=device) if len(idx) > 1 else None))
    return out


def _spectral_distance(A, kind, spectra=None, **params):
    """Distances of ``kind`` per connected component; inf between components."""
    spectra = component_spectra(A) if spectra is None else spectra

    def one(spec):
        return pairwise_euclidean(spectral_coordinates(spec, kind, **params), squared=_SQUARED[kind])

    if len(spectra) == 1:
        return one(spectra[0][1])
    n = A.shape[0]
    D = np.full((n, n), np.inf)
    for idx, spec in spectra:
        if spec is None:
            D[idx[0], idx[0]] = 0.0
        else:
            D[np.ix_(idx, idx)] = one(spec)
    return D


def effective_resistance(A: sp.spmatrix, corrected: bool = True) -> np.ndarray:
    """(Corrected) effective resistance matrix of the graph A; see the module docstring."""
    kind = "effective_resistance" if corrected else "effective_resistance_uncorrected"
    return _spectral_distance(A, kind)


def diffusion_distance(A: sp.spmatrix, t: float = 8) -> np.ndarray:
    """Diffusion distance at time t: √vol · ‖(P^t_i· − P^t_j·) D^{-1/2}‖ with P = D^{-1}A."""
    return _spectral_distance(A, "diffusion", t=t)


def eigenmap_distance(A: sp.spmatrix, n_components: int = 2) -> np.ndarray:
    """Euclidean distance between rows of the first ``n_components`` non-trivial eigenvectors."""
    return _spectral_distance(A, "laplacian_eigenmaps", n_components=n_components)


def euclidean_distance(X: np.ndarray) -> np.ndarray:
    """The baseline: Euclidean distances between the input points."""
    return pairwise_euclidean(np.asarray(X, dtype=np.float64))


#: Registry of distance kinds: name -> (needs graph, description). The CLI and ``tl`` read it.
DISTANCES = {
    "effective_resistance": "corrected effective resistance (von Luxburg et al. 2014); default",
    "effective_resistance_uncorrected": "effective resistance R_ij = L+_ii + L+_jj - 2 L+_ij",
    "diffusion": "diffusion distance at time t",
    "laplacian_eigenmaps": "Euclidean distance in the first n_components Laplacian eigenvectors",
    "euclidean": "Euclidean distance between the input points (baseline)",
}


def distance_matrix(kind: str = DEFAULT_DISTANCE, *, X: np.ndarray | None = None,
                    A: sp.spmatrix | None = None, t: float = 8, n_components: int = 2,
                    spectra: list | None = None) -> np.ndarray:
    """Dense n×n distance matrix of the given ``kind`` (see :data:`DISTANCES`).

    ``euclidean`` needs the points ``X``; every other kind needs the kNN graph ``A``, and
    reuses ``spectra`` (:func:`component_spectra` of that same A) when given.
    """
    if kind not in DISTANCES:
        raise InputError(f"unknown distance {kind!r}; choose one of {sorted(DISTANCES)}")
    if kind == "euclidean":
        if X is None:
            raise InputError("the euclidean distance needs the points X")
        return euclidean_distance(X)
    if A is None:
        raise InputError(f"the {kind} distance needs the kNN graph A")
    if spectra is not None and sum(len(i) for i, _ in spectra) != A.shape[0]:
        raise InputError(f"spectra cover {sum(len(i) for i, _ in spectra)} points but the graph has "
                         f"{A.shape[0]}; compute them with component_spectra(A) of this graph")
    if kind == "laplacian_eigenmaps":
        return _spectral_distance(A, kind, spectra, n_components=n_components)
    if kind == "diffusion":
        return _spectral_distance(A, kind, spectra, t=t)
    return _spectral_distance(A, kind, spectra)


def dense_cost(n: int) -> dict:
    """Estimated peak memory (bytes) and time (s, 2 cores) of the dense spectral path.

    Memory: Laplacian, eigenvectors, LAPACK workspace, coordinates and distances, each
    ≈ 8·n² bytes. Time: eigh ≈ 8.5e-11 · n³ s measured on the 2-core reference machine.
    """
    return {"bytes": int(5 * 8 * n * n), "seconds": 8.5e-11 * n**3}


def check_dense_feasible(n: int, max_n: int = DENSE_MAX_N, memory_fraction: float = 0.8) -> None:
    """Refuse (InputError) before allocating anything n×n that the machine cannot hold."""
    cost = dense_cost(n)
    avail = available_memory_bytes()
    gib = cost["bytes"] / 1024**3
    advice = ("Analyse them as an ensemble of subsamples, the default of `topoembed run` and te.tl.run "
              f"above 1,000 points ({option('n_subsamples', 'auto')}), or run on one seeded subset "
              f"({option('subsample', min(1000, max_n))}).")
    if n > max_n:
        size = (f"estimated {gib:.1f} GiB and {cost['seconds'] / 60:.0f} min for the eigendecomposition alone; "
                if gib >= 0.1 else "")
        raise InputError(f"{n} points exceed the dense limit of {max_n} ({size}{option('max_points', n)} raises it). "
                         f"{advice}")
    if cost["bytes"] > memory_fraction * avail:
        raise InputError(f"{n} points need an estimated {gib:.1f} GiB but only "
                         f"{avail / 1024**3:.1f} GiB is available. {advice}")
