"""Property-based tests (hypothesis) over the core functions of every stage (issue 15).

Inputs are drawn as (seed, n, p, shape parameters) and built with numpy, which keeps each
example fast; hypothesis shrinks a failure to the smallest seed and size. Each property
holds for every input, so a counterexample is a bug.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from topoembed import datasets, graph, homology, loops, spectral  # noqa: E402
from topoembed import localize as L  # noqa: E402

FAST = settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SPECTRAL = ("effective_resistance", "effective_resistance_uncorrected", "diffusion")


@st.composite
def point_clouds(draw, n_min=20, n_max=60):
    seed = draw(st.integers(0, 10_000))
    n = draw(st.integers(n_min, n_max))
    p = draw(st.integers(2, 6))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["gauss", "circle", "duplicates"]))
    if kind == "circle":
        X = datasets.make("circle", n=n, d=p, sigma=draw(st.floats(0.0, 0.3)), seed=seed).X
    else:
        X = rng.normal(size=(n, p))
        if kind == "duplicates":  # a few exact copies: ties and zero distances
            X[: n // 5] = X[n // 5: 2 * (n // 5)]
    return X, draw(st.integers(3, 8)), rng


def _distances(X, k, kind):
    return spectral.distance_matrix(kind, A=graph.knn_graph(X, k=k))


@st.composite
def spectral_cases(draw):
    """(kind, D) for a drawn point cloud and spectral distance kind."""
    X, k, _ = draw(point_clouds())
    kind = draw(st.sampled_from(SPECTRAL))
    return kind, _distances(X, k, kind)


def _ties_at_k(X, k) -> bool:
    """Some point's k-th and (k+1)-th neighbours are equally far (a noiseless circle, copies):
    the kNN graph then depends on the order of the points (ties go to the smaller index)."""
    _, d = graph.knn_search(X, k + 1)
    return bool(np.any(np.isclose(d[:, k - 1], d[:, k], rtol=1e-9, atol=1e-12)))


@FAST
@given(spectral_cases())
def test_spectral_distances_are_symmetric_with_zero_diagonal(case):
    kind, D = case
    fin = np.isfinite(D)
    assert np.array_equal(fin, fin.T)
    np.testing.assert_allclose(np.where(fin, D, 0), np.where(fin, D, 0).T, atol=1e-12)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    if kind != "effective_resistance":  # the corrected resistance may dip below 0 (see below)
        assert np.all(D[fin] >= -1e-12)


@FAST
@given(point_clouds(), st.sampled_from(SPECTRAL))
def test_distances_follow_a_permutation_of_the_points(data, kind):
    X, k, rng = data
    perm = rng.permutation(len(X))
    D = _distances(X, k, kind)
    Dp = _distances(X[perm], k, kind)
    if _ties_at_k(X, k):
        return  # which of two equally near points is a neighbour depends on the order
    # sqrt of a squared distance that rounds to ~1e-16 instead of 0 (copies): 1.5e-8
    np.testing.assert_allclose(Dp, D[np.ix_(perm, perm)], rtol=1e-7, atol=1e-7)


@FAST
@given(point_clouds(), st.sampled_from(SPECTRAL))
def test_distances_ignore_rotation_and_translation(data, kind):
    X, k, rng = data
    Q, _ = np.linalg.qr(rng.normal(size=(X.shape[1], X.shape[1])))
    Y = X @ Q + rng.normal(size=X.shape[1]) * 10
    if _ties_at_k(X, k) or _ties_at_k(Y, k):
        return
    np.testing.assert_allclose(_distances(Y, k, kind), _distances(X, k, kind), rtol=1e-6, atol=1e-9)


@FAST
@given(point_clouds())
def test_effective_resistance_is_a_metric(data):
    """Plain effective resistance is a metric (Klein and Randić 1993): triangle inequality.
    The corrected version (von Luxburg et al. 2014) subtracts 1/d_i + 1/d_j, which can break
    it (and make it negative) for points of very different degree; documented, not asserted."""
    X, k, _ = data
    D = _distances(X, k, "effective_resistance_uncorrected")
    fin = np.isfinite(D)
    Df = np.where(fin, D, np.inf)
    via = np.min(Df[:, :, None] + Df[None, :, :], axis=1)  # min_j D_ij + D_jl
    assert np.all(Df <= via + 1e-9)


@FAST
@given(spectral_cases())
def test_diagrams_truncation_and_scaling(case):
    _, D = case
    ph = homology.persistence(D)
    for dgm in ph["dgms"]:
        assert np.all(dgm[:, 0] <= dgm[:, 1])
    full = homology.persistence(D, truncate=False)
    key = lambda a: a[np.lexsort((a[:, 1], a[:, 0]))]  # noqa: E731
    np.testing.assert_array_equal(key(ph["dgms"][1]), key(full["dgms"][1]))
    det = loops.decide(ph["dgms"][1], scale=ph["scale"])
    assert all(0.0 <= s <= 1.0 for s in det["scores"].values()) and 0.0 <= det["score"] <= 1.0
    assert all(p is None or 0.0 <= p <= 1.0 for p in det["p_values"])
    # the loop count does not depend on the unit of the distances (a power of 2: exact in float)
    scaled = homology.persistence(D * 8.0)
    assert loops.decide(scaled["dgms"][1], scale=scaled["scale"])["n_loops"] == det["n_loops"]


@FAST
@given(point_clouds(n_min=40, n_max=80))
def test_phases_lie_in_the_circle_or_are_missing(data):
    X, k, _ = data
    A = graph.knn_graph(X, k=k)
    D = spectral.distance_matrix("effective_resistance", A=A)
    ph = homology.persistence(D, cocycles=True, coeff=L.DEFAULT_COEFF)
    det = loops.detect(ph["dgms"][1], n_loops=1, scale=ph["scale"])
    if not det["features"]:
        return
    for lp in L.localize_loops(D, A, ph, det):
        th = lp["phase"]
        ok = np.isfinite(th)
        assert np.all((th[ok] >= 0) & (th[ok] < 2 * np.pi))
        assert np.all((lp["phase_confidence"][ok] >= 0) & (lp["phase_confidence"][ok] <= 1))
