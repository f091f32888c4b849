import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import pairwise_distances

from topoembed import graph


def brute_knn(X, k):
    D = pairwise_distances(X)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(120, 6))


def test_or_graph_matches_brute_force(X):
    k = 7
    A = graph.knn_graph(X, k)
    nn = brute_knn(X, k)
    B = np.zeros((len(X), len(X)))
    B[np.repeat(np.arange(len(X)), k), nn.ravel()] = 1
    B = np.maximum(B, B.T)
    assert sp.isspmatrix_csr(A) or isinstance(A, sp.csr_array)
    np.testing.assert_array_equal(A.toarray(), B)
    assert A.diagonal().sum() == 0


def test_and_graph_is_mutual(X):
    k = 7
    A = graph.knn_graph(X, k, symmetrize="and").toarray()
    nn = brute_knn(X, k)
    B = np.zeros_like(A)
    B[np.repeat(np.arange(len(X)), k), nn.ravel()] = 1
    np.testing.assert_array_equal(A, B * B.T)


def test_weights(X):
    k = 5
    Ad = graph.knn_graph(X, k, weights="distance")
    D = pairwise_distances(X)
    r, c = Ad.nonzero()
    np.testing.assert_allclose(Ad.data, D[r, c], rtol=1e-10)
    Ag = graph.knn_graph(X, k, weights="gaussian")
    assert (Ag != Ag.T).nnz == 0
    assert np.all((Ag.data > 0) & (Ag.data <= 1))
    assert Ag.nnz == Ad.nnz


@pytest.mark.slow  # pynndescent compiles its numba kernels for 30-80 s in each new process
def test_approx_agrees_with_exact(X):
    Xl = np.random.default_rng(1).normal(size=(600, 5))
    exact = graph.knn_graph(Xl, 10, method="exact")
    approx = graph.knn_graph(Xl, 10, method="approx", random_state=0)
    overlap = exact.multiply(approx).nnz / exact.nnz
    assert overlap > 0.95
    again = graph.knn_graph(Xl, 10, method="approx", random_state=0)
    assert (approx != again).nnz == 0


def test_duplicates_do_not_create_self_loops():
    X = np.repeat(np.random.default_rng(2).normal(size=(20, 3)), 2, axis=0)
    A = graph.knn_graph(X, 3)
    assert A.diagonal().sum() == 0
    assert np.all(np.asarray(A.sum(1)).ravel() >= 3)


def test_components():
    X = np.r_[np.zeros((10, 2)) + np.arange(10)[:, None] * 0.01, 100 + np.zeros((10, 2)) + np.arange(10)[:, None] * 0.01]
    n, labels = graph.components(graph.knn_graph(X, 3))
    assert n == 2 and len(set(labels[:10])) == 1 and labels[0] != labels[-1]


def test_exact_search_on_tied_distances_does_not_depend_on_the_blas(monkeypatch):
    # equally spaced points on a circle in R^10: every point has two neighbours at each
    # distance, so the k-th neighbour is a tie that the matrix-product ranking of the
    # brute-force search breaks by its rounding. The re-ranked search breaks it by index.
    t = 2 * np.pi * np.arange(200) / 200
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))
    X = np.c_[np.cos(t), np.sin(t)] @ Q[:2]
    idx, dist = graph.knn_search(X, 3, method="exact")
    oracle = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, np.take_along_axis(oracle, idx, 1), rtol=1e-12)
    assert np.all(np.diff(dist, axis=1) >= 0)
    np.testing.assert_allclose(dist[:, 2], np.sort(oracle, 1)[:, 3], rtol=1e-9)  # the right distance ranks
    # a perturbed candidate order (another BLAS's rounding, another tree) gives the same neighbours
    import scipy.spatial

    real = scipy.spatial.cKDTree

    class Shuffled:
        def __init__(self, data, **kw):
            self.tree = real(data, **kw)

        def query(self, x, k, workers=1):
            d, i = self.tree.query(x, k=k, workers=workers)
            perm = np.random.default_rng(1).permuted(np.tile(np.arange(i.shape[1]), (len(i), 1)), axis=1)
            return np.take_along_axis(d, perm, 1), np.take_along_axis(i, perm, 1)

    monkeypatch.setattr(scipy.spatial, "cKDTree", Shuffled)
    idx2, _ = graph.knn_search(X, 3, method="exact")
    np.testing.assert_array_equal(idx2, idx)
    monkeypatch.undo()
    # the brute-force candidates (more than KDTREE_MAX_DIM features) give the same neighbours
    monkeypatch.setattr(graph, "KDTREE_MAX_DIM", 5)
    idx3, _ = graph.knn_search(X, 3, method="exact")
    np.testing.assert_array_equal(idx3, idx)
    # small chunks give the same result as one block
    monkeypatch.undo()
    small_idx, small_dist = graph._exact_euclidean(X, 4, chunk_bytes=1)
    big_idx, big_dist = graph._exact_euclidean(X, 4)
    np.testing.assert_array_equal(small_idx, big_idx)
    np.testing.assert_array_equal(small_dist, big_dist)


def test_tree_search_equals_brute_force_whatever_its_threads(monkeypatch):
    """scipy's k-d tree (at most KDTREE_MAX_DIM features) finds the brute-force neighbours, on one
    thread or several."""
    from topoembed import _parallel

    X = np.random.default_rng(4).normal(size=(3000, 10))
    oracle = brute_knn(X, 15)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(_parallel, "thread_budget", lambda t=threads: t)
        idx, dist = graph.knn_search(X, 15)
        results.append(idx)
        np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(oracle, axis=1))
        np.testing.assert_allclose(dist, np.linalg.norm(X[idx] - X[:, None], axis=-1), rtol=1e-12)
    np.testing.assert_array_equal(results[0], results[1])


def test_auto_search_is_exact_for_few_features_at_any_n(monkeypatch):
    """Above EXACT_MAX_N, low-dimensional data (scVI, PCA) still get the exact k-d tree search."""
    monkeypatch.setattr(graph, "EXACT_MAX_N", 50)
    rng = np.random.default_rng(3)
    low = rng.normal(size=(200, graph.KDTREE_MAX_DIM))
    idx, _ = graph.knn_search(low, 5)
    assert np.array_equal(np.sort(idx, axis=1), np.sort(brute_knn(low, 5), axis=1))
    calls, approx = [], []

    class NNDescent:  # records the call: pynndescent itself compiles for about 40 s in each new process
        def __init__(self, X, n_neighbors, **kwargs):
            approx.append(X.shape)
            self.neighbor_graph = (np.c_[np.arange(len(X)), brute_knn(X, n_neighbors - 1)], np.zeros((len(X), n_neighbors)))

    monkeypatch.setattr(graph, "_exact_euclidean", lambda *a, **k: calls.append(1))
    monkeypatch.setitem(sys.modules, "pynndescent", types.SimpleNamespace(NNDescent=NNDescent))
    high = rng.normal(size=(200, graph.KDTREE_MAX_DIM + 1))
    graph.knn_search(high, 5)  # approximate: pynndescent, not the exact search
    assert not calls and approx == [high.shape]


def test_the_brute_force_search_reports_its_blocks_and_finds_the_same(caplog, monkeypatch):
    # 30,000-50,000 points in 50-D took 10-35 s here without a line of output
    import functools

    X = np.random.default_rng(4).normal(size=(3000, 20))
    monkeypatch.setattr(graph, "_candidates", functools.partial(graph._candidates, chunk_bytes=8 * 3000 * 100))
    with caplog.at_level("INFO", logger="topoembed.progress"):
        idx, dist = graph.knn_search(X, 5, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "topoembed.progress"]
    assert len(lines) >= 5 and lines[-1].endswith("3,000 of 3,000 points")  # off a terminal: a line per tenth
    again, _ = graph.knn_search(X, 5)
    assert np.array_equal(idx, again) and np.array_equal(np.sort(idx, axis=1), np.sort(brute_knn(X, 5), axis=1))


def test_the_pipelines_graph_of_all_points_never_needs_pynndescent():
    # pynndescent compiles for 40-60 s in each new process; the graph of all points is exact up to
    # the size where the extension turns to landmarks
    from topoembed import extension

    assert graph.EXACT_MAX_N >= extension.LANDMARKS
