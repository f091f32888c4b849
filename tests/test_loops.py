import numpy as np
import pytest

from topoembed import datasets, graph, homology, loops, pipeline, spectral


def test_scores_definition():
    # lifetimes 0.9, 0.3, 0.1 (all pass the ratio filter); one tiny feature that does not pass
    dgm = np.array([[0.1, 1.0], [0.2, 0.5], [0.35, 0.45], [1.0, 1.2]])
    s = loops.detection_scores(dgm)
    assert s[1] == pytest.approx((0.9 - 0.3) / 0.9)
    assert s[2] == pytest.approx((0.3 - 0.1) / 0.3)
    assert s[3] == pytest.approx(1.0)  # exactly 3 pass -> p_4 = 0
    assert s[4] == 0.0 and s[5] == 0.0  # fewer than m pass


def test_scores_edge_cases():
    assert loops.detection_scores(np.zeros((0, 2))) == {m: 0.0 for m in range(1, 6)}
    # ratio exactly 1.25 does not pass (strict inequality); birth 0 always passes
    dgm = np.array([[1.0, 1.25], [0.0, 0.01]])
    life, rows = loops.filtered_lifetimes(dgm)
    assert rows.tolist() == [1] and life.tolist() == [0.01]
    assert loops.detection_scores(dgm)[1] == 1.0
    # infinite deaths never count as loops
    assert loops.detection_scores(np.array([[0.5, np.inf]]))[1] == 0.0


def test_binary_filter_keeps_all_features_once_one_passes():
    # the published benchmark's all-or-nothing filter (eff-ph filter_diagram(dob=1.25, binary=True)):
    # one clear loop (ratio 10) and a long-lived feature with a low ratio (2.0 -> 2.4: ratio 1.2)
    dgm = np.array([[0.1, 1.0], [2.0, 2.4], [0.5, 0.55], [0.3, np.inf]])
    assert loops.detection_scores(dgm)[1] == 1.0  # only the loop passes
    s = loops.detection_scores(dgm, binary=True)  # all three finite features count
    assert s[1] == pytest.approx((0.9 - 0.4) / 0.9) and s[2] == pytest.approx((0.4 - 0.05) / 0.4)
    assert s[3] == 1.0 and s[4] == 0.0
    # nothing passes: both filters keep nothing
    low = np.array([[2.0, 2.4], [0.5, 0.55]])
    assert loops.detection_scores(low, binary=True) == loops.detection_scores(low) == {m: 0.0 for m in range(1, 6)}


def test_fixed_n_loops():
    dgm = np.array([[0.1, 1.0], [0.2, 0.5], [0.35, 0.45]])
    det = loops.detect(dgm, n_loops=2)
    assert det["n_loops"] == 2 and det["score"] == pytest.approx((0.3 - 0.1) / 0.3)
    assert det["features"] == [0, 1]
    with pytest.raises(ValueError):
        loops.detect(dgm, n_loops=-1)


def test_auto_ignores_tiny_lone_feature():
    # exactly one feature passes the filter, but it is tiny relative to the scale
    dgm = np.array([[0.1, 0.13], [0.2, 0.21]])
    det = loops.detect(dgm, scale=1.0)
    assert det["scores"][1] == 1.0 and det["n_loops"] == 0


def _auto(X, k=15, distance="effective_resistance"):
    return pipeline.run(X, k=k, distance=distance).detection


@pytest.mark.parametrize("name,expected", [("circle", 1), ("linked_circles", 2), ("blob", 0)])
def test_auto_on_shapes(name, expected):
    ds = datasets.make(name, n=300, d=10, sigma=0.0, seed=0)
    assert _auto(ds.X)["n_loops"] == expected


def test_auto_on_two_disjoint_circles():
    a = datasets.make("circle", n=200, d=3, seed=0).clean
    b = datasets.make("circle", n=200, d=3, seed=0).clean + np.array([5.0, 0, 0])
    assert _auto(np.vstack([a, b]), distance="euclidean")["n_loops"] == 2
