"""Device-side sampling helpers: kNN edge lists, far-point thresholds and far-point draws."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["edge_list", "far_thresholds", "sample_far", "n_far_points", "perplexity_affinity", "perplexity_rows", "fuzzy_affinity",
           "calibrate_rows"]


def edge_list(A: sp.spmatrix, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Heads and tails (int64 tensors on ``device``) of every directed edge of the symmetric A."""
    C = sp.coo_matrix(A)
    keep = C.row != C.col
    return (torch.as_tensor(C.row[keep].astype(np.int64), device=device),
            torch.as_tensor(C.col[keep].astype(np.int64), device=device))


def n_far_points(n_far, n: int) -> int:
    """``n_far`` as a count: an int is used as is (capped at n − 1), a float in (0, 1) is a fraction of n."""
    if isinstance(n_far, float) and 0 < n_far < 1:
        return max(1, int(round(n_far * n)))
    return int(min(max(int(n_far), 1), n - 1))


@torch.no_grad()
def far_thresholds(X: torch.Tensor, n_far: int, chunk: int = 2048) -> torch.Tensor:
    """τ_i such that exactly the n_far points farthest from x_i have d(x_i, ·) ≥ τ_i.

    τ_i is the (n − n_far + 1)-th smallest distance of row i (the point itself counts, at
    distance 0). Rows are processed in chunks: O(n²p) time, O(chunk·n) memory.
    """
    n = X.shape[0]
    kth = n - n_far + 1  # 1-based rank of the nearest of the far points
    out = torch.empty(n, dtype=X.dtype, device=X.device)
    for s in range(0, n, chunk):
        d = torch.cdist(X[s:s + chunk], X)
        out[s:s + chunk] = torch.kthvalue(d, kth, dim=1).values
    return out


def sample_far(X: torch.Tensor, anchors: torch.Tensor, tau: torch.Tensor, n_samples: int,
               generator: torch.Generator, tries: int = 8) -> torch.Tensor:
    """(b, n_samples) indices of points drawn uniformly among each anchor's far points.

    Rejection sampling: ``tries`` uniform candidates per slot, the first with
    d(x_a, x_c) ≥ τ_a is taken (uniform over the far set); if none passes (probability
    (1 − n_far/n)^tries) the farthest candidate is used.
    """
    n = X.shape[0]
    b = anchors.shape[0]
    cand = torch.randint(n, (b, n_samples, tries), generator=generator, device=X.device)
    with torch.no_grad():
        d = torch.linalg.vector_norm(X[cand] - X[anchors][:, None, None, :], dim=-1)
        ok = d >= tau[anchors][:, None, None]
        first = torch.where(ok.any(-1), ok.to(torch.int8).argmax(-1), d.argmax(-1))
    return torch.gather(cand, 2, first[..., None]).squeeze(-1)


def calibrate_rows(mass, target: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 50) -> np.ndarray:
    """Per-row scale σ in [lo, hi] with mass(σ) = target, by bisection on log σ for all rows at
    once; ``mass`` maps (n,) scales to (n,) values and must increase with σ. Rows whose target
    is out of reach end at the nearer bound."""
    a, b = np.log(lo), np.log(hi)
    for _ in range(iters):
        mid = 0.5 * (a + b)
        low = mass(np.exp(mid)) < target
        a, b = np.where(low, mid, a), np.where(low, b, mid)
    return np.exp(0.5 * (a + b))


def _symmetric(idx: np.ndarray, W: np.ndarray, union) -> sp.csr_matrix:
    """Symmetric CSR matrix from directed row weights W (n, k) on the neighbours idx, combined
    with its transpose by ``union(M, Mᵀ)``; self-edges (duplicates listed as neighbours) dropped."""
    n, k = idx.shape
    M = sp.csr_matrix((W.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    M.setdiag(0)
    M.eliminate_zeros()
    S = sp.csr_matrix(union(M, M.T.tocsr()))
    S.eliminate_zeros()
    return S


def perplexity_rows(dist: np.ndarray, perplexity: float) -> np.ndarray:
    """Conditional p_{j|i} ∝ exp(−d_ij²/(2σ_i²)) over each row of kNN distances (n, k), σ_i
    set so that the perplexity exp(H(p_{·|i})) equals ``perplexity``; rows sum to 1."""
    n, k = dist.shape
    if not 1.0 <= perplexity < k:
        raise ValueError(f"perplexity={perplexity!r} must be in [1, k) for k = {k} neighbours")
    d2 = dist.astype(np.float64) ** 2
    d2 = d2 - d2.min(1, keepdims=True)

    def rows(sigma):
        W = np.exp(-d2 / (2.0 * sigma[:, None] ** 2))
        return W / W.sum(1, keepdims=True)

    def entropy(sigma):
        P = rows(sigma)
        return -(P * np.log(np.maximum(P, 1e-300))).sum(1)

    scale = np.sqrt(np.maximum(d2.max(1), 1e-300))
    return rows(calibrate_rows(entropy, np.full(n, np.log(perplexity)), 1e-4 * scale, 1e4 * scale))


def perplexity_affinity(idx: np.ndarray, dist: np.ndarray, perplexity: float = 30.0) -> sp.csr_matrix:
    """t-SNE's input affinities on a kNN graph (van der Maaten and Hinton 2008; k = 3·perplexity
    neighbours as in openTSNE): :func:`perplexity_rows` symmetrised, p_ij = (p_{j|i} +
    p_{i|j})/(2n). Returns the symmetric (n, n) CSR matrix (sum 1)."""
    P = _symmetric(idx, perplexity_rows(dist, perplexity), lambda A, B: A + B)
    return P / P.sum()


def fuzzy_affinity(idx: np.ndarray, dist: np.ndarray) -> sp.csr_matrix:
    """UMAP's fuzzy simplicial set on a kNN graph (McInnes, Healy and Melville 2018): directed
    memberships w_{j|i} = exp(−(d_ij − ρ_i)/σ_i) with ρ_i the distance to i's nearest
    neighbour (at a positive distance) and σ_i set so that Σ_j w_{j|i} = log2(k), combined by
    the fuzzy union w_ij = w_{j|i} + w_{i|j} − w_{j|i}·w_{i|j}. Returns the symmetric (n, n) CSR
    matrix (weights in (0, 1])."""
    n, k = idx.shape
    d = dist.astype(np.float64)
    rho = np.where(d > 0, d, np.inf).min(1)
    rho = np.where(np.isfinite(rho), rho, 0.0)
    excess = np.maximum(d - rho[:, None], 0.0)

    def mass(sigma):
        return np.exp(-excess / sigma[:, None]).sum(1)

    scale = np.maximum(excess.max(1), 1e-12)
    sigma = calibrate_rows(mass, np.full(n, np.log2(k)), 1e-6 * scale, 1e6 * scale)
    W = np.exp(-excess / sigma[:, None])
    return _symmetric(idx, W, lambda A, B: A + B - A.multiply(B))
