"""The extension graph (topoembed.extension): all points, or landmarks with leaves."""
import numpy as np
import pytest

from topoembed import datasets, ensemble, extension, localize, pipeline


def _brute(X, Y, k):
    d2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


def test_nearest_landmarks_are_exact_when_every_cell_is_probed():
    rng = np.random.default_rng(0)
    X, XL = rng.normal(size=(500, 6)), rng.normal(size=(200, 6))  # 28 cells, all 32 probed
    assert np.array_equal(extension.nearest_landmarks(X, XL, 5), _brute(X, XL, 5))


def test_nearest_landmarks_are_near_in_high_dimensional_noise():
    s = datasets.make("circle_in_clusters", n=12_000, d=40, sigma=0.3, seed=1, fraction=0.1)
    X, XL = s.X[:2000], s.X[2000:]  # 10,000 landmarks, 200 cells: 32 probed
    got, exact = extension.nearest_landmarks(X, XL, 5), _brute(X, XL, 5)
    dist = np.sqrt(((X[:, None, :] - XL[got]) ** 2).sum(-1)).mean(1)
    true = np.sqrt(((X[:, None, :] - XL[exact]) ** 2).sum(-1)).mean(1)
    assert np.mean(dist / true) <= 1.05  # 1.027: the ones found are nearly as near
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, exact)])
    assert recall >= 0.5  # 0.64 in 40-D noise; 0.99 on 200,000 points of the clusters without noise


def test_without_landmarks_the_extension_is_the_harmonic_one_over_all_points():
    s = datasets.make("circle", n=1500, d=10, sigma=0.05, seed=2)
    p = pipeline.Params()
    E = extension.build(s.X, p)
    assert not E.uses_landmarks
    A = pipeline.extension_graph(s.X, p)
    idx = np.arange(0, 1500, 7)
    assert np.allclose(E.phase(idx, s.angle[idx]), localize.extend_phase(A, idx, s.angle[idx]), equal_nan=True)


def test_landmark_extension_follows_the_graph_of_all_points():
    s = datasets.make("circle", n=6000, d=20, sigma=0.1, seed=3)
    p = pipeline.Params()
    idx = np.sort(np.random.default_rng(0).choice(6000, 300, replace=False))
    E = extension.build(s.X, p, include=[idx], n_landmarks=1500)
    assert E.uses_landmarks and len(E.landmarks) == 1500 and np.isin(idx, E.landmarks).all()
    theta = E.phase(idx, s.angle[idx])
    assert np.array_equal(theta[idx], np.mod(s.angle[idx], 2 * np.pi))  # known points keep their phase
    assert np.isfinite(theta).all()
    full = localize.extend_phase(pipeline.extension_graph(s.X, p), idx, s.angle[idx])
    assert abs(localize.circular_correlation(theta, full)) >= 0.99
    assert abs(localize.circular_correlation(theta, s.angle)) >= 0.98
    # a leaf is the mean of its landmarks' values
    dist = E.values(idx, np.arange(300, dtype=float))
    leaf = np.setdiff1d(np.arange(6000), E.landmarks)[:50]
    near = _brute(s.X[leaf], s.X[E.landmarks], extension.LEAF_K)
    on_landmarks = dist[E.landmarks]
    assert np.isclose(dist[leaf], on_landmarks[near].mean(axis=1)).mean() >= 0.9  # float32: near ties may swap
    conf = E.confidence(theta, np.zeros(6000), 1.0)
    assert np.all((conf >= 0) & (conf <= 1)) and np.median(conf) > 0.8
    with pytest.raises(ValueError, match="landmarks"):
        E.phase(leaf[:3], np.zeros(3))


def test_cosine_landmarks_and_other_metrics():
    s = datasets.make("circle", n=3000, d=20, sigma=0.1, seed=6)
    X = s.X + 5.0  # away from the origin: cosine differs from Euclidean
    idx = np.arange(0, 3000, 10)
    E = extension.build(X, pipeline.Params(metric="cosine"), include=[idx], n_landmarks=1000)
    assert E.uses_landmarks
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    leaf = np.setdiff1d(np.arange(3000), E.landmarks)[:40]
    near = _brute(U[leaf], U[E.landmarks], extension.LEAF_K)  # the nearest by cosine
    dist = E.values(idx, np.arange(len(idx), dtype=float))
    # float32 distances between unit vectors may swap near-tied landmarks
    assert np.isclose(dist[leaf], dist[E.landmarks][near].mean(axis=1)).mean() >= 0.9
    assert not extension.build(X, pipeline.Params(metric="manhattan"), include=[idx], n_landmarks=1000).uses_landmarks
    # more subsample points than landmarks: all of them are landmarks
    assert len(extension.build(X, pipeline.Params(), include=[np.arange(1500)], n_landmarks=1000).landmarks) == 1500


def test_ensemble_over_landmarks_finds_and_places_a_minority_loop(monkeypatch):
    s = datasets.make("circle_in_clusters", n=5000, d=10, sigma=0.1, seed=4, fraction=0.1)
    monkeypatch.setattr(extension, "LANDMARKS", 2000)
    res = ensemble.run(s.X, jobs=2)
    assert res.detection["n_loops"] == 1
    lp = res.loops[0]
    truth = s.label == 0
    on = np.asarray(lp["on_loop"], bool)
    assert 2 * (on & truth).sum() / (on.sum() + truth.sum()) >= 0.9
    assert abs(localize.circular_correlation(lp["phase"][truth], s.angle[truth])) >= 0.95


def test_smallest_without_torch_is_the_same(monkeypatch):
    import sys

    d2 = np.random.default_rng(5).normal(size=(50, 300)).astype(np.float32)
    with_torch = extension._smallest(d2, 5)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert np.array_equal(extension._smallest(d2, 5), with_torch)
    assert np.array_equal(with_torch, np.argsort(d2, axis=1)[:, :5])


def test_conductance_against_a_ring_and_a_component():
    import scipy.sparse as sp

    n = 100
    ring = sp.csr_matrix((np.ones(2 * n), (np.r_[np.arange(n), (np.arange(n) + 1) % n],
                                           np.r_[(np.arange(n) + 1) % n, np.arange(n)])), shape=(n, n))
    E = extension.Extension(n=n, landmarks=np.arange(n), A=ring)
    assert E.conductance(np.arange(50)) == pytest.approx(2 / 100)  # 2 edges out, volume 100 each side
    two = extension.Extension(n=2 * n, landmarks=np.arange(2 * n), A=sp.block_diag([ring, ring]).tocsr())
    assert two.conductance(np.arange(n)) == 0.0


def test_groups_crossed_against_networkx_components_with_and_without_landmarks():
    import networkx as nx

    rng = np.random.default_rng(3)
    # four tight clusters far apart: the union k = 15 graph keeps them apart
    X = np.vstack([c + 0.1 * rng.standard_normal((60, 5)) for c in 20 * np.eye(5)[:4]])
    params = pipeline.Params()
    E = extension.build(X, params)
    comp = {v: i for i, cc in enumerate(nx.connected_components(nx.from_scipy_sparse_array(E.A))) for v in cc}
    assert len(set(comp.values())) == 4
    for rows in (np.arange(10), np.r_[0, 70], np.r_[5, 65, 130, 200], rng.choice(240, 30, replace=False)):
        assert E.groups_crossed(rows) == len({comp[int(r)] for r in rows})
    # over landmarks: a point off them counts in its nearest landmark's component
    L = extension.build(X, params, include=[np.arange(0, 240, 2)], n_landmarks=120)
    assert L.uses_landmarks and L.groups_crossed(np.arange(1, 240, 2)) == 4 and L.groups_crossed(np.r_[1, 3]) == 1
