"""Device-side sampling helpers: kNN edge lists, far-point thresholds and far-point draws."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["edge_list", "far_thresholds", "sample_far", "n_far_points"]


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
