"""Stage 1: the k-nearest-neighbour graph.

``knn_graph(X, k)`` returns a symmetric sparse adjacency matrix A (CSR, no self-loops):

* ``symmetrize="or"`` (default): A_ij = 1 if j is among the k nearest neighbours of i
  *or* i among those of j (the union graph, as in UMAP/scanpy connectivities);
* ``symmetrize="and"``: the mutual kNN graph (both directions needed);
* ``weights="distance"``: A_ij holds the kNN distance instead of 1; ``weights="gaussian"``
  a self-tuning Gaussian affinity (a weighted graph for the Laplacian).

Search is exact for n <= ``EXACT_MAX_N`` or at most ``KDTREE_MAX_DIM`` features (a k-d tree,
scipy's, on all usable CPUs: 26,625 scVI cells in 10-D take about 1.2 s on 2 cores, scikit-learn's
tree took 4.8 s, while pynndescent spends about a minute compiling its numba kernels in each new
process), and approximate (pynndescent, the index scanpy uses) above. The exact Euclidean search
re-ranks its candidates by coordinate differences, so tied distances are broken the same
way whatever the BLAS and its thread count (smaller index first). Cost: the k-d tree roughly
O(n log n) for few features (its queries degrade towards O(n^2) as p grows, hence the 15-feature
limit), the brute force O(n^2 p) time; O(n k) memory either way (the distance blocks are chunked);
pynndescent is roughly O(n^1.14 p k).
"""
from __future__ import annotations

import logging

import numpy as np
from . import _lazy
from ._progress import Progress

sp = _lazy.module("scipy.sparse")
csgraph = _lazy.module("scipy.sparse.csgraph")

log = logging.getLogger(__name__)

__all__ = ["knn_graph", "knn_search", "without_self", "adjacency_from_knn", "components", "leiden", "WEIGHTS", "EXACT_MAX_N", "KDTREE_MAX_DIM"]

#: Largest n for which the exact kNN search is used by default (``method="auto"``). In a new
#: process (every command, workflow job and kernel's first call) the brute force beats
#: pynndescent up to here on 2 cores, 50 features, k = 15: 9.6 s against 62 s at 30,000 points,
#: 34 s against about 47 s at 50,000 (pynndescent: 1.5 s and 2.8 s once its numba kernels are
#: compiled, 44 s). Above 50,000 points the pipeline's graph of all points is one of landmarks
#: (:mod:`topoembed.extension`), so pynndescent serves only a direct call on more points.
EXACT_MAX_N = 50_000
#: Up to this many features the exact search (a k-d tree) is used at any n (scikit-learn's own k-d tree rule).
KDTREE_MAX_DIM = 15
#: Leaf size of that tree (scipy's default 16 was 1.3x slower on 26,625 scVI cells in 10-D).
KDTREE_LEAF = 32


def knn_search(X: np.ndarray, k: int, metric: str = "euclidean", method: str = "auto",
               random_state: int = 0, device: str = "cpu", progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances (n, k) of each point's k nearest neighbours, excluding itself.

    ``method`` is "exact", "approx" (pynndescent) or "auto" (exact for n <= EXACT_MAX_N or
    p <= KDTREE_MAX_DIM features, or at any n on a GPU). ``device`` ("cpu", "auto", "cuda"):
    where the exact Euclidean candidates are searched (:mod:`topoembed._device`).
    ``progress``: a bar over the brute-force search's blocks of rows (a log line per tenth off
    a terminal), a note before pynndescent's index (its numba kernels compile for 40-60 s in
    each new process). Duplicate points may appear as each other's neighbour at distance 0.
    """
    from . import _device

    n = X.shape[0]
    device = _device.resolve(device)
    if method == "auto":
        method = "exact" if (n <= EXACT_MAX_N or X.shape[1] <= KDTREE_MAX_DIM or device != "cpu") else "approx"
    if method == "exact" and metric == "euclidean":
        idx, dist = _exact_euclidean(X, k + 1, device=device, progress=progress)
    elif method == "exact":
        from sklearn.neighbors import NearestNeighbors

        dist, idx = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(X).kneighbors(X)
    elif method == "approx":
        from pynndescent import NNDescent

        bar = Progress(1, "topoembed kNN graph", "index", enabled=progress)
        bar.note(f"approximate search of {n:,} points (pynndescent; it compiles for 40-60 s in a new process)")
        index = NNDescent(X, n_neighbors=k + 1, metric=metric, random_state=random_state,
                          n_jobs=1 if random_state is not None else -1)
        idx, dist = index.neighbor_graph
        bar.step(f"{n:,} points")
        bar.close()
    else:
        raise ValueError(f"method={method!r} must be 'auto', 'exact' or 'approx'")
    keep = without_self(idx)
    return idx[keep].reshape(n, k), dist[keep].reshape(n, k)


def without_self(idx: np.ndarray) -> np.ndarray:
    """Mask of the (n, k + 1) neighbour lists ``idx`` (of the points 0..n-1 among themselves)
    that drops each point itself, k left per row. With duplicates it need not come first, so
    it goes by identity; a point not returned as its own neighbour loses its farthest."""
    self_hit = idx == np.arange(idx.shape[0])[:, None]
    keep = ~self_hit
    keep[~self_hit.any(axis=1), -1] = False
    return keep


#: Extra candidates the exact Euclidean search re-ranks (see :func:`_exact_euclidean`).
RERANK_MARGIN = 8


def _exact_euclidean(X: np.ndarray, k: int, chunk_bytes: int = 64 * 2**20,
                     device: str = "cpu", progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean kNN (the point itself included) whose result does not depend on the BLAS.

    A brute-force search ranks by ‖x‖² + ‖y‖² − 2x·y, computed with a matrix
    product whose rounding depends on the BLAS and its thread count; on tied distances
    (equally spaced points, duplicates) the chosen neighbours then change with the
    thread count. Here the k + :data:`RERANK_MARGIN` candidates of that search are
    re-ranked by the distance computed from the coordinate differences (no BLAS, so no
    dependence on its threads), ties going to the smaller index. Cost: O(n (k + margin) p)
    on top of the search (1.8–2.4× the search alone, ``benchmarks/bench_knn.py``); the
    differences are formed ``chunk_bytes`` at a time. The candidates come from scipy's k-d
    tree on the CPU in at most :data:`KDTREE_MAX_DIM` dimensions (its queries run on
    :func:`topoembed._parallel.thread_budget` threads, each query on its own, so the result
    does not depend on their number; 7x faster than the brute force on 10,000 scVI cells), else
    from :func:`_candidates` (brute force, numpy or on a GPU torch).
    """
    n = X.shape[0]
    X = np.asarray(X, dtype=np.float64)
    m = min(n, k + RERANK_MARGIN)
    if device == "cpu" and X.shape[1] <= KDTREE_MAX_DIM:  # a k-d tree beats O(n²)
        cand = kdtree_candidates(X, m)
    else:
        cand = _candidates(X, m, device, progress=progress)
    chunk = max(1, int(chunk_bytes // (8 * m * max(1, X.shape[1]))))
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        c = cand[rows]
        diff = X[c]
        diff -= X[rows, None, :]
        d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        order = np.lexsort((c, d), axis=-1)[:, :k]
        idx[rows] = np.take_along_axis(c, order, axis=1)
        dist[rows] = np.take_along_axis(d, order, axis=1)
    return idx, dist


def kdtree_candidates(X: np.ndarray, m: int) -> np.ndarray:
    """The m nearest points of every point of X (itself included, usually first), (n, m) int64, from
    scipy's k-d tree (leaf size :data:`KDTREE_LEAF`) queried on :func:`topoembed._parallel.thread_budget`
    threads; each query runs on its own, so the result does not depend on their number."""
    from scipy.spatial import cKDTree

    from ._parallel import thread_budget

    X = np.asarray(X, dtype=np.float64)
    _, idx = cKDTree(X, leafsize=KDTREE_LEAF).query(X, k=m, workers=thread_budget())
    return np.asarray(idx, dtype=np.int64).reshape(X.shape[0], m)


def _candidates(X: np.ndarray, m: int, device: str = "cpu", chunk_bytes: int = 256 * 2**20,
                progress: bool = False) -> np.ndarray:
    """The m nearest points of every point (itself included) by brute force over blocks of
    rows, ranking by ‖x‖² + ‖y‖² − 2 x·y: O(n² p) work, O(chunk + n p) memory. numpy in
    float64 on the CPU (no scikit-learn import: 2 s of every command and worker start), torch
    in float32 on a GPU; the exact re-ranking (:func:`_exact_euclidean`) follows either way.
    ``progress``: a bar over the blocks (a log line per tenth off a terminal)."""
    n = X.shape[0]
    out = np.empty((n, m), dtype=np.int64)
    if device == "cpu":
        Xd, sq = X, np.einsum("ij,ij->i", X, X)
    else:
        import torch

        Xd = torch.as_tensor(X, dtype=torch.float32, device=device)
        sq = (Xd * Xd).sum(dim=1)
    rows = max(1, int(chunk_bytes // (8 * max(1, n))))
    blocks = -(-n // rows)
    bar = Progress(blocks, "topoembed kNN search", "block", enabled=progress and blocks > 1,
                   log_every=max(1, blocks // 10))
    for start in range(0, n, rows):
        d2 = sq[start:start + rows, None] + sq[None, :] - 2.0 * (Xd[start:start + rows] @ Xd.T)
        if device == "cpu":
            out[start:start + rows] = np.argpartition(d2, m - 1, axis=1)[:, :m] if m < n else np.arange(n)
        else:
            out[start:start + rows] = torch.topk(d2, m, dim=1, largest=False).indices.cpu().numpy()
        bar.step(f"{min(n, start + rows):,} of {n:,} points")
    bar.close()
    return out


WEIGHTS = ("binary", "distance", "gaussian")


def adjacency_from_knn(idx: np.ndarray, dist: np.ndarray | None = None, symmetrize: str = "or",
                       weights: str = "binary") -> sp.csr_matrix:
    """Symmetric CSR adjacency from kNN indices (n, k); see module docstring for the rules.

    ``weights``: "binary" (A_ij = 1), "distance" (A_ij = d_ij; edges between duplicate
    points are kept as explicit zeros) or "gaussian" (A_ij = exp(-d_ij^2 / (s_i s_j)),
    with s_i the distance to i's k-th neighbour: the self-tuning affinity of
    Zelnik-Manor and Perona 2004).
    """
    n, k = idx.shape
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} must be one of {WEIGHTS}")
    if weights != "binary" and dist is None:
        raise ValueError(f"weights={weights!r} needs the kNN distances")
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = idx.ravel().astype(np.int64)
    vals = np.ones(n * k) if dist is None else dist.ravel().astype(np.float64)
    fwd = rows * n + cols
    if symmetrize == "or":
        keys = np.concatenate([fwd, cols * n + rows])
        vals = np.concatenate([vals, vals])
    elif symmetrize == "and":
        keep = np.isin(fwd, cols * n + rows)
        keys, vals = fwd[keep], vals[keep]
    else:
        raise ValueError(f"symmetrize={symmetrize!r} must be 'or' or 'and'")
    keys, first = np.unique(keys, return_index=True)
    vals = vals[first]
    r, c = np.divmod(keys, n)
    offdiag = r != c
    r, c, vals = r[offdiag], c[offdiag], vals[offdiag]
    if weights == "binary":
        vals = np.ones_like(vals)
    elif weights == "gaussian":
        scale = np.maximum(dist[:, -1].astype(np.float64), np.finfo(float).tiny)
        vals = np.exp(-vals**2 / (scale[r] * scale[c]))
    A = sp.csr_matrix((vals, (r, c)), shape=(n, n))
    A.sort_indices()
    return A


def knn_graph(X: np.ndarray, k: int = 15, metric: str = "euclidean", symmetrize: str = "or",
              weights: str = "binary", method: str = "auto", random_state: int = 0,
              device: str = "cpu", progress: bool = False) -> sp.csr_matrix:
    """Symmetric kNN adjacency matrix A (n x n CSR, float64, zero diagonal).

    Parameters
    ----------
    X : (n, p) points.
    k : neighbours per point (1 <= k < n).
    metric : any metric scikit-learn / pynndescent accept ("euclidean", "cosine", ...).
    symmetrize : "or" (union) or "and" (mutual kNN).
    weights : "binary" (default), "distance" or "gaussian"; see :func:`adjacency_from_knn`.
    method : "auto", "exact" or "approx" (pynndescent).
    random_state : seed of the approximate index.
    device : "cpu" (default), "auto" or "cuda": where the exact search runs (:func:`knn_search`).
    progress : feedback on a long search (:func:`knn_search`).
    """
    idx, dist = knn_search(X, k, metric=metric, method=method, random_state=random_state, device=device,
                           progress=progress)
    return adjacency_from_knn(idx, dist, symmetrize=symmetrize, weights=weights)


def components(A: sp.spmatrix) -> tuple[int, np.ndarray]:
    """Number of connected components and the component label of each vertex."""
    return csgraph.connected_components(A, directed=False)


def disconnected_warning(labels: np.ndarray) -> str | None:
    """What a graph whose vertices have these component ``labels`` means for the spectral
    distances and loops, or None where it is connected: one wording for the graph's step and
    the distances' (:func:`topoembed.spectral.component_spectra`)."""
    from ._validate import option

    sizes = np.sort(np.bincount(labels))[::-1]
    if len(sizes) == 1:
        return None
    rest = int(sizes[1:].sum())
    return (f"the kNN graph has {len(sizes)} connected components (sizes {sizes[:10].tolist()}); spectral distances "
            "are computed per component and are inf between components (each component is an H0 bar that never dies), "
            f"so the {rest} point{'' if rest == 1 else 's'} outside the largest one cannot lie on its loops. Most "
            "often a mutual kNN graph (the pipeline's default) leaves a few points without a mutual neighbour; a "
            f"larger k or the union graph joins them ({option('symmetrize', 'or')}).")


def leiden(A, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Community labels (0, 1, ... by decreasing size) of the graph A by Leiden modularity
    optimisation (Traag, Waltman and van Eck, Sci. Rep. 9, 2019; igraph's ``community_leiden``,
    A's nonzeros as unweighted edges) at ``resolution``, seeded."""
    import random

    import igraph

    A = sp.coo_matrix(A)
    upper = A.row < A.col
    g = igraph.Graph(n=A.shape[0], edges=np.c_[A.row[upper], A.col[upper]])
    state = random.getstate()
    random.seed(int(seed))  # igraph draws from Python's random module
    try:
        labels = np.asarray(g.community_leiden(objective_function="modularity", resolution=resolution,
                                               n_iterations=-1).membership)
    finally:
        random.setstate(state)
    order = np.argsort(-np.bincount(labels), kind="stable")
    return np.argsort(order)[labels]
