import numpy as np
import pytest
from scipy.spatial.distance import cdist

from topoembed import datasets, homology


def test_noiseless_circle_has_one_long_h1_bar():
    X = datasets.make("circle", n=100, d=2, seed=0).clean
    ph = homology.persistence(cdist(X, X))
    h1 = ph["dgms"][1]
    life = h1[:, 1] - h1[:, 0]
    assert np.sum(life > 0.5) == 1
    b, d = h1[np.argmax(life)]
    # Rips filtration of n equally spaced points on the unit circle: born at the chord of
    # one step, dies when the first triangle containing the centre appears: the most
    # nearly equilateral one, whose longest side spans ceil(n/3) steps
    assert b == pytest.approx(2 * np.sin(np.pi / 100), rel=1e-5)
    assert d == pytest.approx(2 * np.sin(np.pi * 34 / 100), rel=1e-5)
    # one infinite H0 bar for one connected set of points
    assert np.sum(np.isinf(ph["dgms"][0][:, 1])) == 1


def test_truncation_at_enclosing_radius_keeps_diagrams():
    rng = np.random.default_rng(0)
    X = datasets.make("circle", n=80, d=3, sigma=0.1, seed=1).X
    D = cdist(X, X)
    from ripser import ripser

    full = ripser(D, distance_matrix=True, maxdim=1)["dgms"][1]
    ours = homology.persistence(D)["dgms"][1]
    key = lambda a: a[np.lexsort((a[:, 1], a[:, 0]))]
    np.testing.assert_allclose(key(ours), key(full), rtol=1e-6)


def test_birth_edge_has_birth_length():
    X = datasets.make("circle", n=60, d=3, sigma=0.05, seed=2).X
    D = cdist(X, X)
    ph = homology.persistence(D)
    for (b, _), (i, j) in zip(ph["dgms"][1], ph["birth_edges"]):
        assert np.float32(D[i, j]) == pytest.approx(b, rel=1e-6)


def test_components_give_infinite_h0_bars():
    D = np.full((6, 6), np.inf)
    for block in (slice(0, 3), slice(3, 6)):
        D[block, block] = 1.0
    np.fill_diagonal(D, 0)
    ph = homology.persistence(D)
    assert np.sum(np.isinf(ph["dgms"][0][:, 1])) == 2


def test_h2_of_a_sphere():
    X = datasets.make("sphere", n=150, d=3, seed=0).clean
    ph = homology.persistence(cdist(X, X), maxdim=2)
    life = np.diff(ph["dgms"][2], axis=1).ravel()
    assert np.sum(life > 0.3) == 1


def test_ripser_memory_guard_refuses_before_ripser(monkeypatch):
    from topoembed import _validate
    from topoembed._validate import InputError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    D = cdist(X, X)
    assert homology.ripser_memory_estimate(2_000_000) == pytest.approx(2.15e9, rel=0.1)  # the calibration point
    monkeypatch.setattr(_validate, "available_memory_bytes", lambda: 1000)
    with pytest.raises(InputError, match="GiB are available"):
        homology.persistence(D)
    homology.persistence(D, maxdim=0)  # H0 alone builds no filtration of triangles: not checked
