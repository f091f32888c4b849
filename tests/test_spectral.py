import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from topoembed import graph, spectral
from topoembed._validate import InputError


def random_connected_graph(seed, n=25):
    G = nx.connected_watts_strogatz_graph(n, 4, 0.3, seed=seed)
    return G, sp.csr_matrix(nx.to_scipy_sparse_array(G, format="csr", dtype=float))


def pinv_resistance(A):
    A = A.toarray()
    L = np.diag(A.sum(1)) - A
    Lp = np.linalg.pinv(L)
    return np.diag(Lp)[:, None] + np.diag(Lp)[None, :] - 2 * Lp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_effective_resistance_matches_networkx_and_pinv(seed):
    G, A = random_connected_graph(seed)
    R = spectral.effective_resistance(A, corrected=False)
    n = A.shape[0]
    nxR = np.array([[nx.resistance_distance(G, i, j) if i != j else 0.0 for j in range(n)] for i in range(n)])
    np.testing.assert_allclose(R, nxR, atol=1e-8)
    np.testing.assert_allclose(R, pinv_resistance(A), atol=1e-8)


def test_weighted_effective_resistance_matches_pinv():
    rng = np.random.default_rng(3)
    _, A = random_connected_graph(5, n=30)
    A = A.multiply(sp.triu(A).multiply(rng.uniform(0.5, 2.0, A.shape)) + 0).tocsr()
    A = (sp.triu(A) + sp.triu(A).T).tocsr()
    np.testing.assert_allclose(spectral.effective_resistance(A, corrected=False), pinv_resistance(A), atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_corrected_resistance_closed_form(seed):
    _, A = random_connected_graph(seed)
    R = spectral.effective_resistance(A, corrected=False)
    d = np.asarray(A.sum(1)).ravel()
    expected = R - 1 / d[:, None] - 1 / d[None, :] + 2 * A.toarray() / np.outer(d, d)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(spectral.effective_resistance(A, corrected=True), expected, atol=1e-10)


@pytest.mark.parametrize("t", [1, 4, 9])
def test_diffusion_matches_matrix_power(t):
    _, A = random_connected_graph(4)
    Ad = A.toarray()
    d = Ad.sum(1)
    Pt = np.linalg.matrix_power(Ad / d[:, None], t) / np.sqrt(d)[None, :]
    expected = np.sqrt(d.sum()) * np.linalg.norm(Pt[:, None, :] - Pt[None, :, :], axis=-1)
    np.testing.assert_allclose(spectral.diffusion_distance(A, t=t), expected, atol=1e-8)


def test_eigenmaps_match_dense_eigenvectors():
    _, A = random_connected_graph(6)
    Ad = A.toarray()
    d = Ad.sum(1)
    Lsym = np.eye(len(d)) - Ad / np.sqrt(np.outer(d, d))
    _, U = np.linalg.eigh(Lsym)
    Y = U[:, 1:3]
    expected = np.linalg.norm(Y[:, None] - Y[None], axis=-1)  # invariant to eigenvector signs
    np.testing.assert_allclose(spectral.eigenmap_distance(A, 2), expected, atol=1e-8)


def test_euclidean_matches_scipy():
    from scipy.spatial.distance import cdist

    X = np.random.default_rng(0).normal(size=(40, 7))
    np.testing.assert_allclose(spectral.distance_matrix("euclidean", X=X), cdist(X, X), atol=1e-10)


@pytest.mark.parametrize("kind", sorted(spectral.DISTANCES))
def test_distance_properties_and_permutation_invariance(kind):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(80, 4))
    A = graph.knn_graph(X, 8)
    D = spectral.distance_matrix(kind, X=X, A=A)
    assert np.allclose(D, D.T)
    assert np.all(np.diag(D) == 0)
    assert np.all(D >= 0)
    perm = rng.permutation(80)
    Dp = spectral.distance_matrix(kind, X=X[perm], A=A[perm][:, perm])
    if kind == "laplacian_eigenmaps":  # defined up to rotations in degenerate eigenspaces only
        pytest.skip("eigenvectors of a permuted graph are only equal up to sign/rotation")
    np.testing.assert_allclose(Dp, D[np.ix_(perm, perm)], atol=1e-8 * max(1.0, D.max()))


def two_components():
    """(A1, A2, A): two random connected graphs of 15 and 12 nodes, and A with both, no edge between."""
    _, A1 = random_connected_graph(0, n=15)
    _, A2 = random_connected_graph(1, n=12)
    return A1, A2, sp.block_diag([A1, A2]).tocsr()


def test_disconnected_graph_is_per_component_with_inf_between(caplog):
    A1, A2, A = two_components()
    with caplog.at_level("WARNING"):
        R = spectral.effective_resistance(A)
    assert "2 connected components" in caplog.text
    np.testing.assert_allclose(R[:15, :15], spectral.effective_resistance(A1), atol=1e-10)
    np.testing.assert_allclose(R[15:, 15:], spectral.effective_resistance(A2), atol=1e-10)
    assert np.all(np.isinf(R[:15, 15:]))


@pytest.mark.parametrize("connected", [True, False])
def test_precomputed_spectra_give_the_same_distances(connected):
    _, A1 = random_connected_graph(0, n=15)
    A = A1 if connected else sp.block_diag([A1, random_connected_graph(1, n=12)[1], sp.csr_matrix((1, 1))]).tocsr()
    spectra = spectral.component_spectra(A)
    assert sorted(np.concatenate([i for i, _ in spectra]).tolist()) == list(range(A.shape[0]))
    for kind, kw in [("effective_resistance", {}), ("diffusion", {"t": 3}), ("diffusion", {"t": 64}),
                     ("laplacian_eigenmaps", {"n_components": 2})]:
        fresh = spectral.distance_matrix(kind, A=A, **kw)
        np.testing.assert_array_equal(spectral.distance_matrix(kind, A=A, spectra=spectra, **kw), fresh)
    # and against the oracle: the dense pseudo-inverse on the connected part
    R = spectral.distance_matrix("effective_resistance_uncorrected", A=A, spectra=spectra)
    L = np.diag(np.asarray(A1.sum(1)).ravel()) - A1.toarray()
    Lp = np.linalg.pinv(L)
    np.testing.assert_allclose(R[:15, :15], np.diag(Lp)[:, None] + np.diag(Lp)[None] - 2 * Lp, atol=1e-9)
    with pytest.raises(InputError, match="spectra cover"):
        spectral.distance_matrix("diffusion", A=A, spectra=spectral.component_spectra(A1) if not connected else
                                 spectral.component_spectra(sp.block_diag([A1, A1]).tocsr()))


def test_dense_limit_refuses_before_allocating():
    with pytest.raises(InputError, match="subsample"):
        spectral.check_dense_feasible(50_000)
    with pytest.raises(InputError, match="GiB"):
        spectral.check_dense_feasible(5000, max_n=10**9, memory_fraction=1e-9)
    spectral.check_dense_feasible(1000)


def test_unknown_distance():
    with pytest.raises(InputError, match="unknown distance"):
        spectral.distance_matrix("manhattan", X=np.zeros((3, 2)))


def test_a_graph_that_falls_apart_is_warned_about_once_per_spectra(caplog):
    # the pipeline computes the spectra once and two distances from them (the run's and the
    # confirmation's): pbmc68k_reduced's graph of 11 components was warned about twice
    A = two_components()[2]
    with caplog.at_level("WARNING"):
        spectra = spectral.component_spectra(A)
        for kind in ("effective_resistance", "diffusion"):
            spectral.distance_matrix(kind, A=A, spectra=spectra)
    assert caplog.text.count("2 connected components") == 1
