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
