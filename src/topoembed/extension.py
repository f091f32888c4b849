"""Results on subsamples reach every point: the extension graph of all points.

An ensemble (:mod:`topoembed.ensemble`) finds its loops on subsamples of 700 points and
gives each loop's phase, distance and confidence to all n points by harmonic extension
(:func:`topoembed.localize.harmonic_extension`: each unknown value is the mean of its graph
neighbours'). :func:`build` makes the graph; :class:`Extension` extends over it, and
splits it into parts for :mod:`topoembed.parts`. Two forms, one interface:

* **All points** (n ≤ :data:`LANDMARKS`): the union kNN graph of all points
  (:func:`extension_graph`, k = 15).
* **Landmarks** (n > :data:`LANDMARKS`): M = :data:`LANDMARKS` landmarks, a uniform random
  subset that holds every planned subsample's points, with the union kNN graph among them
  (k = 15); every other point is a leaf joined to its :data:`LEAF_K` nearest landmarks
  (weight 1 each). A leaf has no other edge, so on that graph its harmonic value is the mean
  of its landmarks' values; the landmarks' values come from the landmark graph alone
  (the leaves do not feed back, which would only add their own landmarks' means). So one
  extension is one sparse solve over M points and one sparse product over n, where the
  graph of all points took one solve over n: at 10^6 points in R^10 the graph of all points
  took 361 s and the extensions 229 s (issue 29).

The nearest landmarks are searched in cells (an inverted file, as in Jégou et al., IEEE
TPAMI 33, 2011): :data:`CELLS_PER_ROOT` · √M landmarks drawn as cell centres, every landmark
in the cell of its nearest centre, and each point compared with the landmarks in the cells
of the :data:`PROBE` centres nearest to its own centre: approximate, O(n (√M + PROBE · √M) p)
instead of O(n M p). The landmarks' own graph is searched the same way above
:data:`topoembed.graph.KDTREE_MAX_DIM` features, exactly (a k-d tree) up to it.

Cost, landmarks: O(M k) graph memory plus the n × LEAF_K leaf matrix; each extension one
conjugate-gradient solve over M points and O(n · LEAF_K).
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from . import _lazy, graph
from . import localize as localization

sp = _lazy.module("scipy.sparse")

log = logging.getLogger(__name__)

__all__ = ["Extension", "build", "extension_graph", "extension_k", "landmarks_planned", "nearest_landmarks", "unit_rows", "LANDMARKS", "LEAF_K", "PROBE", "CELLS_PER_ROOT"]

#: Above this many points the extension runs over landmarks (this many of them).
LANDMARKS = 50_000
#: Nearest landmarks a leaf (a point that is no landmark) takes its values from.
LEAF_K = 5
#: Cell centres per √M landmarks in :func:`nearest_landmarks`.
CELLS_PER_ROOT = 2
#: Cells searched per point in :func:`nearest_landmarks`: those of the nearest centres to its own.
#: On 200,000 points of ``circle_in_clusters`` against 50,000 landmarks: 99 % of the 5 nearest
#: found (8: 83 %, 16: 94 %), 3.1 s on 2 cores (8: 1.3 s). In 40-D noise (σ = 0.3, 10,000
#: landmarks) 64 % of them, but the ones found are on average 1.03 times as far as the true 5.
PROBE = 32


@dataclasses.dataclass
class Extension:
    """The graph over which values known on some points reach all ``n`` points.

    ``landmarks``: sorted ids of the points in the graph ``A`` (all points, ``arange(n)``,
    when ``leaves`` is None); ``leaves``: n × M CSR, row i the weights of point i's nearest
    landmarks (a landmark's row: itself); ``nearest``: each point's nearest landmark (position
    in ``landmarks``)."""

    n: int
    landmarks: np.ndarray
    A: object
    leaves: object = None
    nearest: np.ndarray | None = None
    _components: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def uses_landmarks(self) -> bool:
        return self.leaves is not None

    def _local(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if not self.uses_landmarks:
            return idx
        pos = np.searchsorted(self.landmarks, idx)
        pos = np.minimum(pos, len(self.landmarks) - 1)
        if not np.array_equal(self.landmarks[pos], idx):
            raise ValueError("values can only be extended from landmarks; build the extension with "
                             "include= the points they are known on")
        return pos

    def _to_all(self, values_on_landmarks: np.ndarray) -> np.ndarray:
        """Each point's leaf mean of the landmarks' values (NaN where all of them are NaN)."""
        v = np.asarray(values_on_landmarks)
        ok = ~np.isnan(v)
        num = self.leaves @ np.where(ok, v, 0)
        den = self.leaves @ ok.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        out[self.landmarks] = v  # a landmark is its own
        return out

    def phase(self, idx, phase) -> np.ndarray:
        """θ on all points from θ on the points ``idx`` (radians; :func:`topoembed.localize.extend_phase`)."""
        theta = localization.extend_phase(self.A, self._local(idx), phase)
        if not self.uses_landmarks:
            return theta
        z = self._to_all(np.where(np.isnan(theta), np.nan, np.exp(1j * np.nan_to_num(theta))))
        out = np.mod(np.angle(z), 2 * np.pi)
        out[np.isnan(z)] = np.nan
        out[self.landmarks] = theta
        return out

    def values(self, idx, values) -> np.ndarray:
        """A real value (a loop distance) on all points from its values on ``idx``
        (:func:`topoembed.localize.extend_loop_distance`)."""
        v = localization.extend_loop_distance(self.A, self._local(idx), values)
        return self._to_all(v) if self.uses_landmarks else v

    def confidence(self, phase, loop_distance, threshold: float) -> np.ndarray:
        """:func:`topoembed.localize.phase_confidence` of a phase on all points: over each
        point's graph neighbours, a leaf's over its landmarks."""
        if not self.uses_landmarks:
            return localization.phase_confidence(self.A, phase, loop_distance, threshold)
        phase, dist = np.asarray(phase, dtype=np.float64), np.asarray(loop_distance, dtype=np.float64)
        L = self.landmarks
        conf = localization.phase_confidence(self.leaves, phase, dist, threshold, neighbour_phase=phase[L])
        conf[L] = localization.phase_confidence(self.A, phase[L], dist[L], threshold)
        return conf

    def _in_graph(self, rows) -> np.ndarray:
        """Mask over the graph's nodes (all points, or the landmarks) of those among ``rows``."""
        return np.isin(self.landmarks, np.asarray(rows))

    def conductance(self, rows) -> float:
        """cut(S, rest) / min(vol S, vol rest) of the points ``rows`` in the graph (their
        landmarks where it is one of landmarks): 0 for a component of its own."""
        inside = self._in_graph(rows)
        deg = np.asarray(self.A.sum(axis=1)).ravel()
        vol = min(deg[inside].sum(), deg[~inside].sum())
        return float(self.A[inside][:, ~inside].sum() / vol) if vol > 0 else 0.0

    def neighbourhood(self, rows, hops: int) -> np.ndarray:
        """Sorted ids of the points within ``hops`` edges of the points ``rows`` in the graph,
        ``rows`` left out (landmarks only where it is one of landmarks)."""
        inside = self._in_graph(rows)
        reached = inside.copy()
        for _ in range(hops):
            reached |= (self.A @ reached.astype(np.float64)) > 0
        return self.landmarks[reached & ~inside]

    def groups_crossed(self, rows) -> int:
        """How many connected components of the graph the points ``rows`` lie in (a point off
        the landmarks in its nearest landmark's): 1 for points the graph joins, more where
        they lie in groups it keeps apart (:mod:`topoembed.verdict` reads it for a loop's cycle)."""
        if self._components is None:
            self._components = graph.components(self.A)[1]
        rows = np.asarray(rows, dtype=np.int64)
        nodes = self.nearest[rows] if self.uses_landmarks else rows
        return int(len(np.unique(self._components[nodes]))) if len(nodes) else 0

    def partition(self, resolution: float, seed: int) -> np.ndarray:
        """Leiden labels of the graph (:func:`topoembed.graph.leiden`), a leaf taking its
        nearest landmark's."""
        labels = graph.leiden(self.A, resolution=resolution, seed=seed)
        return labels if not self.uses_landmarks else labels[self.nearest]


def extension_k(params) -> int:
    """k of :func:`extension_graph`: the generic k (15), or ``params.k`` if smaller."""
    from .params import _default

    return min(params.k, _default(graph.knn_graph, "k"))


def extension_graph(X, params, progress: bool = False):
    """The union kNN graph of all points over which results on a subsample are extended to
    the others (a subsampled run, each run of an ensemble). An interpolation graph: a small
    k (:func:`extension_k`) suffices and keeps the sparse solves cheap. ``progress``: feedback on
    a long search (:func:`topoembed.graph.knn_search`)."""
    return graph.knn_graph(X, k=extension_k(params), metric=params.metric, symmetrize="or",
                           random_state=params.seed, device=params.device, method=params.knn_method,
                           progress=progress)


def landmarks_planned(n: int, metric: str, n_landmarks: int = LANDMARKS) -> bool:
    """Does :func:`build` make landmarks for n points? Above ``n_landmarks`` points, where it
    measures Euclidean (or cosine) distances."""
    return n > n_landmarks and metric in ("euclidean", "cosine")


def build(X, params, include=None, n_landmarks: int = LANDMARKS, progress: bool = False) -> Extension:
    """The :class:`Extension` of X under ``params`` (k, metric, seed): the kNN graph of all
    points up to ``n_landmarks`` points, else landmarks that hold the points ``include``
    (the subsamples' points, which values are extended from). Landmarks measure Euclidean
    distances (cosine: between the rows scaled to unit length); another metric builds the
    graph of all points. ``progress``: a bar over the kNN search of all points, or over the
    nearest-landmark search (a log line per tenth off a terminal)."""
    n = X.shape[0]
    fixed = np.unique(np.concatenate([np.asarray(i, dtype=np.int64) for i in include])) if include is not None \
        else np.zeros(0, dtype=np.int64)
    n_landmarks = max(int(n_landmarks), len(fixed))  # every subsample's point is a landmark
    if n > n_landmarks and not landmarks_planned(n, params.metric, n_landmarks):  # another metric
        log.warning("the landmark extension measures Euclidean (or cosine) distances, not metric=%r: "
                    "building the kNN graph of all %d points instead (slower)", params.metric, n)
    if not landmarks_planned(n, params.metric, n_landmarks):
        return Extension(n=n, landmarks=np.arange(n), A=extension_graph(X, params, progress=progress))
    if params.metric == "cosine":  # the same neighbours as Euclidean distance between unit vectors
        X = unit_rows(X)
    rng = np.random.default_rng(np.random.SeedSequence([int(params.seed), 0x1A4D]))
    free = np.setdiff1d(np.arange(n), fixed, assume_unique=True)
    L = np.sort(np.concatenate([fixed, rng.choice(free, n_landmarks - len(fixed), replace=False)]))
    XL = X[L]  # each search takes the precision it needs
    k = extension_k(params)
    if XL.shape[1] <= graph.KDTREE_MAX_DIM:
        A = graph.knn_graph(XL, k=k, symmetrize="or", method="exact")  # Euclidean, as above
    else:
        idx = nearest_landmarks(XL, XL, k + 1, seed=params.seed, progress=progress, what="landmarks")
        A = graph.adjacency_from_knn(idx[graph.without_self(idx)].reshape(len(L), k), symmetrize="or")
    near = nearest_landmarks(X, XL, LEAF_K, seed=params.seed, progress=progress, what="all points")
    near[L] = np.arange(len(L))[:, None]  # a landmark is its own (and only) neighbour
    rows = np.repeat(np.arange(n), LEAF_K)
    leaves = sp.csr_matrix((np.ones(n * LEAF_K), (rows, near.ravel())), shape=(n, len(L)))
    leaves.sum_duplicates()
    leaves.data[:] = 1.0
    return Extension(n=n, landmarks=L, A=A, leaves=leaves, nearest=near[:, 0].copy())


def nearest_landmarks(X, XL, k: int, seed: int = 0, chunk_bytes: int = 128 * 2**20, progress: bool = False,
                      what: str = "points") -> np.ndarray:
    """Positions (n, k) in XL of each row of X's k nearest landmarks, nearest first, searched
    in cells (module docstring): approximate where a nearer landmark lies in a cell not probed.
    Squared distances ‖y‖² − 2x·y in float32 (BLAS); ``progress``: a bar over the cells,
    ``what`` naming the rows of X."""
    from ._progress import Progress

    XL = np.asarray(XL, dtype=np.float32)
    M = XL.shape[0]
    n_cells = int(min(M, max(1, round(CELLS_PER_ROOT * np.sqrt(M)))))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xCE11]))
    centres = XL[np.sort(rng.choice(M, n_cells, replace=False))]
    cell_L = nearest_rows(XL, centres, 1, chunk_bytes)[:, 0]
    probe = nearest_rows(centres, centres, min(PROBE, n_cells), chunk_bytes)
    order = np.argsort(cell_L, kind="stable")
    bounds = np.searchsorted(cell_L[order], np.arange(n_cells + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(n_cells)]
    cell_X = nearest_rows(X, centres, 1, chunk_bytes)[:, 0]
    out = np.empty((X.shape[0], k), dtype=np.int64)
    sqL = np.einsum("ij,ij->i", XL, XL)
    by_cell = np.argsort(cell_X, kind="stable")
    qb = np.searchsorted(cell_X[by_cell], np.arange(n_cells + 1))
    bar = Progress(n_cells, f"topoembed nearest landmarks of {what}", "cell", enabled=progress,
                   log_every=max(1, n_cells // 10))
    for c in range(n_cells):
        q = by_cell[qb[c]:qb[c + 1]]
        bar.step(f"{qb[c + 1]:,} of {len(cell_X):,} {what}")
        if not len(q):
            continue
        cand = np.concatenate([members[j] for j in probe[c]])
        if len(cand) < k:  # too few landmarks near: compare with all of them
            cand = np.arange(M)
        d2 = sqL[cand][None, :] - 2.0 * (np.asarray(X[q], dtype=np.float32) @ XL[cand].T)  # + ‖x‖², the same for all
        out[q] = cand[_smallest(d2, k)]
    bar.close()
    return out


def unit_rows(X) -> np.ndarray:
    """The rows of X scaled to unit length (float32; a zero row stays zero): Euclidean distances
    between them order neighbours as cosine distances do."""
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def nearest_rows(X, Y, k: int, chunk_bytes: int = 64 * 2**20) -> np.ndarray:
    """Positions (n, k) in Y of each row of X's k nearest rows of Y, nearest first (brute force
    in float32, in blocks of rows)."""
    Y = np.asarray(Y, dtype=np.float32)
    sqY = np.einsum("ij,ij->i", Y, Y)
    rows = max(1, int(chunk_bytes // (4 * max(1, Y.shape[0]))))
    out = np.empty((X.shape[0], k), dtype=np.int64)
    for s in range(0, X.shape[0], rows):
        d2 = sqY[None, :] - 2.0 * (np.asarray(X[s:s + rows], dtype=np.float32) @ Y.T)
        out[s:s + rows] = _smallest(d2, k)
    return out


def _smallest(d2: np.ndarray, k: int) -> np.ndarray:
    """Column positions of each row's k smallest values, smallest first: torch's top-k where
    torch is installed (about 10x numpy's partition on 2 cores), else numpy."""
    try:
        import torch
    except ImportError:  # torch is optional (the embed extra)
        torch = None
    if torch is not None:
        return torch.topk(torch.from_numpy(np.ascontiguousarray(d2)), k, dim=1, largest=False,
                          sorted=True).indices.numpy()
    part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else \
        np.tile(np.arange(d2.shape[1]), (d2.shape[0], 1))
    return np.take_along_axis(part, np.argsort(np.take_along_axis(d2, part, axis=1), axis=1, kind="stable"), axis=1)
