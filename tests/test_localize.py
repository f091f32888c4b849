"""Tests of topoembed.localize against independent oracles (closed forms, brute force, truth)."""
from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp

from topoembed import datasets, graph, homology, loops, spectral
from topoembed import localize as L

P = L.DEFAULT_COEFF


@lru_cache(maxsize=None)
def _run(name, n, sigma, seed=0, k=15, kind="effective_resistance"):
    s = datasets.make(name, n=n, d=50, sigma=sigma, seed=seed)
    A = graph.knn_graph(s.X, k=k)
    D = spectral.distance_matrix(kind, X=s.X, A=A)
    ph = homology.persistence(D, cocycles=True, coeff=P)
    det = loops.detect(ph["dgms"][1], scale=ph["scale"])
    return s, A, D, ph, det, L.localize_loops(D, A, ph, det)


def _bins_hit(angle, cycle, width=np.pi / 9):
    return len(np.unique((np.asarray(angle)[cycle] // width).astype(int)))


def _true_winding(angle, cycle):
    c = np.asarray(cycle)
    steps = np.angle(np.exp(1j * (angle[np.roll(c, -1)] - angle[c])))
    return steps.sum() / (2 * np.pi)


# ------------------------------------------------------------------ circular statistics
def _fisher_lee_naive(a, b):
    da = np.sin(a[:, None] - a[None, :])
    db = np.sin(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), 1)
    return (da[iu] @ db[iu]) / np.sqrt((da[iu] @ da[iu]) * (db[iu] @ db[iu]))


def test_fisher_lee_matches_pairwise_formula():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 2 * np.pi, 150)
    b = a + rng.normal(0, 0.8, 150)
    assert L.circular_correlation(a, b) == pytest.approx(_fisher_lee_naive(a, b), rel=1e-10)


def test_js_matches_definition():
    rng = np.random.default_rng(2)
    a = rng.vonmises(1.0, 2.0, 200)
    b = a + rng.normal(0, 0.5, 200)
    ma, mb = np.arctan2(np.sin(a).sum(), np.cos(a).sum()), np.arctan2(np.sin(b).sum(), np.cos(b).sum())
    x, y = np.sin(a - ma), np.sin(b - mb)
    expected = (x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum())
    assert L.circular_correlation(a, b, method="js") == pytest.approx(expected, rel=1e-10)


def test_circular_correlation_rotation_reflection_independence():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 2 * np.pi, 500)
    assert L.circular_correlation(a, np.mod(a + 2.0, 2 * np.pi)) == pytest.approx(1.0)
    assert L.circular_correlation(a, np.mod(-a + 0.3, 2 * np.pi)) == pytest.approx(-1.0)
    assert abs(L.circular_correlation(a, rng.uniform(0, 2 * np.pi, 500))) < 0.15
    R, sign, shift = L.circular_alignment(np.mod(-a + 0.3, 2 * np.pi), a)
    assert R == pytest.approx(1.0) and sign == -1 and np.angle(np.exp(1j * (shift - 0.3))) == pytest.approx(0, abs=1e-9)


# ------------------------------------------------------------------ cochains
def test_lift_cocycle_range_and_orientation():
    co = np.array([[5, 2, 1], [1, 3, P - 1], [4, 0, 23], [0, 6, 24], [7, 8, 0]])
    edges, vals = L.lift_cocycle(co, P)
    assert (edges[:, 0] < edges[:, 1]).all()
    assert vals.tolist() == [1, -1, 23, -23]


def test_ripser_cocycle_is_a_cocycle_at_every_value_in_its_bar():
    """Oracle: δα = 0 mod p on every triangle of the Rips complex at r ∈ [b, d) (brute force)."""
    s = datasets.make("circle", n=60, d=3, sigma=0.05, seed=4)
    D = spectral.euclidean_distance(s.X)
    ph = homology.persistence(D, cocycles=True, coeff=P)
    row = int(np.argmax(ph["dgms"][1][:, 1] - ph["dgms"][1][:, 0]))
    b, d = ph["dgms"][1][row]
    edges, vals = L.lift_cocycle(ph["cocycles"][1][row], P)
    alpha = np.zeros((60, 60))
    alpha[edges[:, 0], edges[:, 1]] = vals
    alpha = alpha - alpha.T
    D32 = D.astype(np.float32)
    for r in (b, (b + d) / 2, b + 0.95 * (d - b)):
        inside = D32 <= np.float32(r) if r == b else D32 < np.float32(r)
        i, j, k = np.nonzero(inside[:, :, None] & inside[None, :, :] & inside[:, None, :])
        tri = (i < j) & (j < k)
        i, j, k = i[tri], j[tri], k[tri]
        assert len(i) > 0
        cob = (alpha[j, k] - alpha[i, k] + alpha[i, j]) * inside[i, j] * inside[j, k] * inside[i, k]
        assert np.all(np.mod(cob, P) == 0)


# ------------------------------------------------------------------ harmonic pieces
def test_circular_coordinate_linear_on_planar_circle():
    """Oracle: for equally spaced points on a planar circle the harmonic map is the angle itself."""
    n = 80
    t = 2 * np.pi * np.arange(n) / n
    X = np.c_[np.cos(t), np.sin(t)] * (1 + 1e-4 * np.sin(7 * t))[:, None]  # break ripser's ties
    D = spectral.euclidean_distance(X)
    ph = homology.persistence(D, cocycles=True, coeff=P)
    row = int(np.argmax(ph["dgms"][1][:, 1] - ph["dgms"][1][:, 0]))
    b, d = ph["dgms"][1][row]
    edges, vals = L.lift_cocycle(ph["cocycles"][1][row], P)
    theta, info = L.circular_coordinate(D, edges, vals, (b + d) / 2)
    R, _, _ = L.circular_alignment(theta, t)
    assert R > 0.9999
    assert info["residual"] > 0  # α is not exact: the class is non-trivial


def test_smooth_phase_on_ring_graph_is_equally_spaced():
    n = 50
    i = np.arange(n)
    A = sp.csr_matrix((np.ones(n), (i, (i + 1) % n)), shape=(n, n))
    A = A + A.T
    rng = np.random.default_rng(5)
    truth = 2 * np.pi * i / n
    noisy = np.mod(truth + rng.uniform(-0.5, 0.5, n) * 2 * np.pi / n * 3, 2 * np.pi)
    out, _ = L.smooth_phase(A, noisy)
    assert L.circular_alignment(out, truth)[0] > 1 - 1e-10
    # orientation is kept (no reflection)
    assert L.circular_alignment(out, truth)[1] == 1


def test_harmonic_extension_matches_dense_dirichlet_solve():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(60, 3))
    A = graph.knn_graph(X, k=5, weights="gaussian")
    known = np.arange(0, 60, 3)
    vals = rng.normal(size=len(known))
    got = L.harmonic_extension(A, known, vals)
    Ad = A.toarray()
    Lap = np.diag(Ad.sum(1)) - Ad
    unk = np.setdiff1d(np.arange(60), known)
    x = np.linalg.solve(Lap[np.ix_(unk, unk)], Ad[np.ix_(unk, known)] @ vals)
    np.testing.assert_allclose(got[unk], x, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got[known], vals)


def test_extend_phase_path_midpoints_and_unreachable():
    # path 0-1-2 plus an isolated pair 3-4: θ(1) is the circular mean of its neighbours
    A = sp.csr_matrix((np.ones(4), ([0, 1, 3, 1], [1, 2, 4, 0])), shape=(5, 5))
    A = ((A + A.T) > 0).astype(float)
    th = L.extend_phase(A, [0, 2], [0.1, 2 * np.pi - 0.3])
    assert np.angle(np.exp(1j * (th[1] - (2 * np.pi - 0.1)))) == pytest.approx(0, abs=1e-12)
    assert np.isnan(th[3]) and np.isnan(th[4])
    assert th[0] == pytest.approx(0.1) and 0 <= th[1] < 2 * np.pi


def test_extend_loop_distance_interpolates():
    n = 5
    i = np.arange(n - 1)
    A = sp.csr_matrix((np.ones(n - 1), (i, i + 1)), shape=(n, n))
    out = L.extend_loop_distance(A + A.T, [0, 4], [0.0, 4.0])
    np.testing.assert_allclose(out, np.arange(5.0))


# ------------------------------------------------------------------ end to end
def test_circle_phase_cycle_and_membership():
    s, A, D, ph, det, res = _run("circle", 300, 0.1)
    assert det["n_loops"] == 1 and len(res) == 1
    r = res[0]
    assert abs(L.circular_correlation(r["phase"], s.angle)) >= 0.95
    assert np.all((r["phase"] >= 0) & (r["phase"] < 2 * np.pi))
    cyc = r["cycle"]
    assert cyc[0] != cyc[-1] and len(set(cyc)) == len(cyc)
    c = np.asarray(cyc)
    assert np.all(D[c, np.roll(c, -1)].astype(np.float32) <= np.float32(r["cycle_filtration"]))
    assert r["cycle_filtration"] < r["death"]
    assert abs(r["winding"]) == 1
    assert abs(_true_winding(s.angle, cyc)) == pytest.approx(1.0)  # winds once around the true circle
    assert _bins_hit(s.angle, cyc) >= 17
    assert r["n_on_loop"] == r["on_loop"].sum() and r["on_loop"].dtype == bool
    np.testing.assert_allclose(r["loop_distance"][c], 0.0)


def test_noiseless_circle_membership():
    s, A, D, ph, det, res = _run("circle", 300, 0.0)
    assert res[0]["n_on_loop"] >= 0.95 * 300
    assert abs(L.circular_correlation(res[0]["phase"], s.angle)) >= 0.99


def test_linked_circles_disconnected_graph_two_coordinates():
    s, A, D, ph, det, res = _run("linked_circles", 400, 0.0)
    assert graph.components(A)[0] == 2 and np.isinf(D).any()
    assert len(res) == 2
    own = []
    for r in res:
        corr = [abs(L.circular_correlation(r["phase"][s.label == c], s.angle[s.label == c])) for c in (0, 1)]
        c = int(np.argmax(corr))
        own.append(c)
        assert corr[c] >= 0.9
        assert np.isnan(r["phase"][s.label != c]).all()  # the other circle is another component
        assert not r["on_loop"][s.label != c].any()
        assert set(s.label[r["cycle"]]) == {c}
    assert sorted(own) == [0, 1]


def test_linked_circles_connected_graph():
    s, A, D, ph, det, res = _run("linked_circles", 400, 0.1)
    assert graph.components(A)[0] == 1
    assert len(res) == 2
    corr = np.array([[abs(L.circular_correlation(r["phase"][s.label == c], s.angle[s.label == c])) for c in (0, 1)]
                     for r in res])
    own = corr.argmax(axis=1)
    assert sorted(own.tolist()) == [0, 1]  # one coordinate per circle
    assert corr.max(axis=1).min() >= 0.9


def test_eyeglasses_give_the_outline():
    s, A, D, ph, det, res = _run("eyeglasses", 300, 0.02)
    assert len(res) == 1
    assert abs(L.circular_correlation(res[0]["phase"], s.angle)) >= 0.95
    assert _bins_hit(s.angle, res[0]["cycle"]) >= 17  # the cycle goes round both lenses


def test_no_loop_gives_no_localisation():
    s = datasets.make("blob", n=200, d=10, sigma=0.0, seed=0)
    A = graph.knn_graph(s.X, k=15)
    D = spectral.distance_matrix(A=A)
    ph = homology.persistence(D, cocycles=True, coeff=P)
    det = loops.detect(ph["dgms"][1], scale=ph["scale"])
    assert L.localize_loops(D, A, ph, {**det, "features": []}) == []


def test_requires_cocycles_and_valid_parameters():
    s, A, D, ph, det, _ = _run("circle", 300, 0.1)
    with pytest.raises(ValueError, match="cocycles"):
        L.localize_loops(D, A, {k: v for k, v in ph.items() if k != "cocycles"}, det)
    with pytest.raises(ValueError, match="theta_filtration"):
        L.localize_loops(D, A, ph, det, theta_filtration=1.0)


def test_same_input_gives_identical_result():
    s, A, D, ph, det, res = _run("circle", 300, 0.1)
    again = L.localize_loops(D, A, ph, det)
    np.testing.assert_array_equal(again[0]["phase"], res[0]["phase"])
    assert again[0]["cycle"] == res[0]["cycle"]
    ph2 = homology.persistence(D, cocycles=True, coeff=P)  # rerun the persistence too
    again2 = L.localize_loops(D, A, ph2, det)
    np.testing.assert_array_equal(again2[0]["phase"], res[0]["phase"])


def test_phase_is_equivariant_to_point_numbering():
    s, A, D, ph, det, res = _run("circle", 300, 0.1)
    perm = np.random.default_rng(7).permutation(300)
    Xp = s.X[perm]
    Ap = graph.knn_graph(Xp, k=15)
    Dp = spectral.distance_matrix(A=Ap)
    php = homology.persistence(Dp, cocycles=True, coeff=P)
    detp = loops.detect(php["dgms"][1], scale=php["thresh"])
    resp = L.localize_loops(Dp, Ap, php, detp)
    R, sign, shift = L.circular_alignment(resp[0]["phase"], res[0]["phase"][perm])
    assert R > 1 - 1e-8
    np.testing.assert_array_equal(resp[0]["on_loop"], res[0]["on_loop"][perm])


def test_subsample_then_extend():
    s = datasets.make("circle", n=600, d=50, sigma=0.1, seed=1)
    A_full = graph.knn_graph(s.X, k=15)
    idx = np.sort(np.random.default_rng(0).choice(600, 300, replace=False))
    A = graph.knn_graph(s.X[idx], k=15)
    D = spectral.distance_matrix(A=A)
    ph = homology.persistence(D, cocycles=True, coeff=P)
    det = loops.detect(ph["dgms"][1], scale=ph["scale"])
    r = L.localize_loops(D, A, ph, det)[0]
    full = L.extend_phase(A_full, idx, r["phase"])
    rest = np.setdiff1d(np.arange(600), idx)
    assert not np.isnan(full).any()
    np.testing.assert_array_equal(full[idx], r["phase"])
    assert abs(L.circular_correlation(full[rest], s.angle[rest])) >= 0.95
    dist = L.extend_loop_distance(A_full, idx, r["loop_distance"])
    assert np.isfinite(dist).all() and dist.min() >= 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_acceptance_circle_n1000(seed):
    s, A, D, ph, det, res = _run("circle", 1000, 0.2, seed=seed, k=30)
    r = res[0]
    assert abs(L.circular_correlation(r["phase"], s.angle)) >= 0.95
    assert _bins_hit(s.angle, r["cycle"]) >= 17
