import numpy as np
import pytest
from scipy.spatial.distance import cdist

from topoembed import datasets, homology

HAVE_GPH = homology._gph_core(2) is not None
#: giotto-ph has no wheel for Python 3.13 in the package index: there ripser.py runs (tested below)
needs_gph = pytest.mark.skipif(not HAVE_GPH, reason="giotto-ph is not installed (no wheel for this Python); "
                                                    "ripser.py stands in for it")


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


def _key(a):
    return a[np.lexsort((a[:, 1], a[:, 0]))]


def _spectral(name, n=300, kind="effective_resistance", k=30, symmetrize="and", seed=0):
    from topoembed import graph, spectral

    X = datasets.make(name, n=n, d=20, sigma=0.2, seed=seed).X
    A = graph.knn_graph(X, k=k, symmetrize=symmetrize)
    return spectral.distance_matrix(kind, A=A)


@pytest.mark.parametrize("name,kind,symmetrize", [("circle", "effective_resistance", "and"),
                                                  ("circle", "diffusion", "or"),
                                                  ("eyeglasses", "effective_resistance", "or"),
                                                  ("blob", "effective_resistance", "and")])
def test_truncated_filtration_gives_the_full_diagrams(name, kind, symmetrize):
    """The birth bound and growth stop early and still match ripser.py on the full filtration."""
    from ripser import ripser

    D = _spectral(name, kind=kind, symmetrize=symmetrize)
    full = ripser(D, distance_matrix=True, maxdim=1)["dgms"]  # no threshold at all: the oracle
    fast = homology.persistence(D)
    assert fast["exact"] and fast["thresh"] < D.max()
    np.testing.assert_array_equal(_key(fast["dgms"][1]), _key(full[1].astype(np.float64)))
    np.testing.assert_allclose(np.sort(fast["dgms"][0][:, 1]), np.sort(full[0][:, 1]), rtol=1e-6)
    # no H1 class is born above the bound (the edge-by-edge apex argument)
    assert full[1][:, 0].max() <= np.float32(homology.birth_bound(D))
    # both engines, and ripser.py on the cocycle run, agree bar by bar
    slow = homology.persistence(D, engine="ripser")
    np.testing.assert_array_equal(slow["dgms"][1], fast["dgms"][1])
    np.testing.assert_array_equal(slow["birth_edges"], fast["birth_edges"])
    with_co = homology.add_cocycles(D, fast, coeff=47)
    assert len(with_co["cocycles"][1]) == len(fast["dgms"][1])
    for (b, _), (i, j) in zip(fast["dgms"][1], with_co["birth_edges"]):
        assert np.float32(D[i, j]) == np.float32(b)


def test_birth_bound_catches_a_late_birth():
    """A square of side 1 with its diagonals at 1.5: H1 is born at 1 and dies at 1.5; the
    bound must not fall below the birth (and the truncation must find the death)."""
    D = np.array([[0, 1, 1.5, 1], [1, 0, 1, 1.5], [1.5, 1, 0, 1], [1, 1.5, 1, 0]], dtype=float)
    assert homology.birth_bound(D) == pytest.approx(1.0)
    ph = homology.persistence(D)
    np.testing.assert_allclose(ph["dgms"][1], [[1.0, 1.5]])
    _, _, w = homology.minimum_spanning_tree(D)
    np.testing.assert_allclose(sorted(w), [1, 1, 1])


def test_truncation_with_components_and_early_decision():
    D = _spectral("circle", n=200, k=15, symmetrize="or")
    n = len(D)
    Dc = np.full((n + 30, n + 30), np.inf)
    Dc[:n, :n] = D
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(30, 2))
    Dc[n:, n:] = cdist(Y, Y)
    full = homology.persistence(Dc, truncate=False)
    fast = homology.persistence(Dc)
    np.testing.assert_array_equal(_key(fast["dgms"][1]), _key(full["dgms"][1]))
    assert np.sum(np.isinf(fast["dgms"][0][:, 1])) == 2
    # a caller that is satisfied as soon as one class is alive stops early, with exact=False
    early = homology.persistence(D, decided=lambda dgm, t: np.isinf(dgm[:, 1]).sum() == 1)
    if not early["exact"]:
        assert np.isinf(early["dgms"][1][:, 1]).sum() == 1 and early["thresh"] < full["thresh"]


def test_engine_cores_match_their_wrappers_and_skip_scikit_learn():
    """The compiled cores, called directly, give what gph.ripser_parallel and ripser.ripser
    give on the same matrix (diagrams, generators, cocycles); a run imports no scikit-learn."""
    import subprocess
    import sys

    import ripser

    D = _spectral("eyeglasses", n=200, k=15, symmetrize="or")
    t = float(np.quantile(D, 0.3))
    t32 = float(np.nextafter(np.float32(t), np.float32(np.inf)))
    for coeff in (2, 47) if HAVE_GPH else ():
        import gph

        dgms, edges, _ = homology._run_engine(D, 1, t, "gph", False, coeff)
        ref = gph.ripser_parallel(D, maxdim=1, thresh=t32, coeff=coeff, metric="precomputed", return_generators=True)
        for mine, theirs in zip(dgms, ref["dgms"]):
            np.testing.assert_array_equal(mine, np.asarray(theirs, dtype=np.float64).reshape(-1, 2))
        fin = np.isfinite(dgms[1][:, 1])
        np.testing.assert_array_equal(edges[fin], np.sort(ref["gens"][1][0][:, :2], axis=1))
    for coeff in (2, 47):
        dgms, _, cocs = homology._run_engine(D, 1, t, "ripser", True, coeff)
        ref = ripser.ripser(D, maxdim=1, thresh=t32, coeff=coeff, distance_matrix=True, do_cocycles=True)
        for mine, theirs in zip(dgms, ref["dgms"]):
            np.testing.assert_array_equal(mine, theirs.astype(np.float64))
        for mine, theirs in zip(cocs[1], ref["cocycles"][1]):
            np.testing.assert_array_equal(mine, theirs)
    code = ("import sys; from topoembed import datasets, pipeline; "
            "pipeline.run(datasets.make('circle', n=150, d=5, sigma=0.1, seed=0).X, k=15); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'gph', 'ripser', 'pyRipser')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "sklearn" not in out and "pyRipser" in out and ("gph.modules.gph_ripser_coeff" in out) == HAVE_GPH


def test_without_giotto_ph_ripser_gives_the_same_diagrams_and_says_so_once(monkeypatch, caplog):
    """Where giotto-ph is missing (Python 3.13) the engine "auto" is ripser.py, with the same
    diagrams as the full filtration, and one log line per process says so."""
    import logging

    from ripser import ripser

    D = _spectral("circle", n=150, k=15, symmetrize="or")
    want = homology.persistence(D)
    monkeypatch.setattr(homology, "_gph_module", lambda name: None)
    homology._note_without_gph.cache_clear()
    with caplog.at_level(logging.INFO, logger="topoembed.homology"):
        got = homology.persistence(D)
        again = homology.persistence(D, maxdim=2)
    assert got["engine"] == again["engine"] == "ripser"
    assert sum("giotto-ph is not installed" in r.getMessage() for r in caplog.records) == 1
    ref = ripser(D, distance_matrix=True, maxdim=1)["dgms"]
    for dim in (0, 1):
        for dgms in (want["dgms"], got["dgms"]):
            np.testing.assert_allclose(np.sort(dgms[dim], axis=0), np.sort(ref[dim], axis=0), rtol=1e-6)


def test_maxmin_landmarks_is_the_greedy_cover():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    D = cdist(X, X)
    L = homology.maxmin_landmarks(D, 15, seed=3)
    assert len(set(L.tolist())) == 15
    # each next landmark is the point farthest from those before it (brute force)
    for i in range(1, 15):
        far = D[:, L[:i]].min(axis=1)
        assert far[L[i]] == pytest.approx(far.max())
    # the cover radius of max-min sampling is within 2x of any set of the same size
    radius = D[:, L].min(axis=1).max()
    for seed in range(20):
        other = np.random.default_rng(seed).choice(120, 15, replace=False)
        assert radius <= 2 * D[:, other].min(axis=1).max() + 1e-12
    assert homology.maxmin_landmarks(D, 500).shape == (120,)  # m > n: every point


def test_landmark_persistence_is_ripser_on_the_landmarks():
    from ripser import ripser

    X = datasets.make("torus", n=600, d=3, seed=0).clean
    D = cdist(X, X)
    ph = homology.landmark_persistence(D, n_landmarks=120, seed=0)
    L = ph["landmarks"]
    ref = ripser(D[np.ix_(L, L)], distance_matrix=True, maxdim=2)["dgms"]
    for dim in (1, 2):
        got = np.sort(ph["dgms"][dim], axis=0)
        want = np.sort(ref[dim][np.isfinite(ref[dim][:, 1])], axis=0)
        np.testing.assert_allclose(got[np.isfinite(got[:, 1])], want, rtol=1e-5, atol=1e-6)
    life2 = np.sort(np.diff(ph["dgms"][2], axis=1).ravel())[::-1]
    assert life2[0] > 2 * life2[1]  # the torus's void, on 120 landmarks


@pytest.mark.parametrize("collapse", ["gph", "gudhi"])
@pytest.mark.parametrize("name, sigma", [("sphere", 0.1), ("blob", 0.0), ("torus", 0.15)])
def test_edge_collapse_keeps_every_diagram(name, sigma, collapse, monkeypatch):
    # Boissonnat and Pritam 2020: removing dominated edges leaves H0, H1 and H2 unchanged;
    # the reference is the full complex (giotto-ph's where it runs the collapse, else ripser.py's)
    if collapse == "gph" and not HAVE_GPH:
        pytest.skip("giotto-ph is not installed (no wheel for this Python)")
    if collapse == "gudhi":
        pytest.importorskip("gudhi", reason="gudhi (the collapse on Python 3.13) is in the test extra")
        monkeypatch.setattr(homology, "_gph_module", lambda name: None)
    X = datasets.make(name, n=400, d=10, sigma=sigma, seed=1).X
    D = cdist(X, X)[:150, :150]
    got = homology.collapsed_persistence(D, maxdim=2)
    want = homology.persistence(D, maxdim=2, engine="gph" if collapse == "gph" else "ripser")
    assert got["engine"] == f"{collapse}-collapse" and got["scale"] == want["scale"]
    for dim in (0, 1, 2):
        a = got["dgms"][dim]
        b = want["dgms"][dim][np.lexsort((want["dgms"][dim][:, 1], want["dgms"][dim][:, 0]))]
        assert a.shape == b.shape and len(a) > 0
        np.testing.assert_array_equal(a, b)


@needs_gph
def test_landmark_persistence_without_the_collapser_falls_back(monkeypatch):
    X = datasets.make("torus", n=600, d=3, seed=0).clean
    D = cdist(X, X)
    fast = homology.landmark_persistence(D, n_landmarks=100)
    monkeypatch.setattr(homology, "_gph_module", lambda name: None)
    monkeypatch.setattr(homology, "_gudhi", lambda: None)
    slow = homology.landmark_persistence(D, n_landmarks=100)
    assert fast["engine"] == "gph-collapse" and slow["engine"] == "ripser"
    np.testing.assert_array_equal(fast["landmarks"], slow["landmarks"])
    for dim in (1, 2):
        np.testing.assert_allclose(np.sort(fast["dgms"][dim], axis=0), np.sort(slow["dgms"][dim], axis=0), rtol=1e-6)
