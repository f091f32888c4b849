import numpy as np
import pytest

from topoembed import datasets, ensemble, graph, homology, loops, pipeline, spectral


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


def test_a_count_of_zero_says_which_bar_the_largest_drop_missed():
    from topoembed import report

    # lifetimes 0.9, 0.6, 0.5: the largest drop (0.5 -> 0) is after the third, s_3 = 1, but the
    # third lives 0.5 of a scale of 20 (2.5 % < 5 %)
    dgm = np.array([[0.1, 1.0], [0.2, 0.8], [0.3, 0.8]])
    det = loops.detect(dgm, scale=20.0)
    assert det["n_loops"] == 0
    assert det["gap"] == {"m": 3, "s_m": 1.0, "lifetime_share": pytest.approx(0.025),
                          "min_score": loops.MIN_SCORE, "min_persistence": loops.MIN_PERSISTENCE}
    assert report._why_no_loop_stands_out(det["gap"]) == (
        "No loop stands out: the largest drop in the lifetimes comes after the 3 longest H1 features, and the "
        "shortest of them lives 2.5% of the median distance between points, under the 5% floor.")
    # lifetimes 0.9, 0.5, 0.45, 0.42, 0.4, 0.38: the largest drop is after the first (0.4 of 0.9:
    # s_1 = 0.44 < 0.5), which is long enough
    det = loops.detect(np.array([[0.1, 1.0], [0.2, 0.7], [0.2, 0.65], [0.2, 0.62], [0.2, 0.6], [0.2, 0.58]]), scale=1.0)
    assert det["n_loops"] == 0 and det["gap"]["m"] == 1
    assert report._why_no_loop_stands_out(det["gap"]) == (
        "No loop stands out: the largest drop in the lifetimes comes after the longest H1 feature, and "
        "s_1 = 0.44 is below 0.5.")
    # nothing passes the ratio filter; a fixed count has no reading to report
    assert loops.detect(np.array([[1.0, 1.1]]), scale=1.0)["gap"] is None
    assert "death/birth above 1.25" in report._why_no_loop_stands_out(None)
    assert "gap" not in loops.detect(dgm, n_loops=1)
    # a found loop keeps its reading, and summary.json and the table carry the note only without loops
    assert loops.detect(np.array([[0.1, 1.0], [0.2, 0.25]]), scale=1.0)["gap"]["m"] == 1
    summ = pipeline.summary(pipeline.run(datasets.make("blob", n=300, d=10, sigma=0.1, seed=0).X,
                                         k=15, prevalence_check=False))
    assert summ["detection"]["n_loops"] == 0 and "gap" in summ["detection"]
    assert report.verdict_notes(summ)[0].startswith("No loop stands out: the largest drop")
    # an ensemble's count is its subsamples' majority: one subsample's reading would mislead
    whole = pipeline.summary(ensemble.run(datasets.make("blob", n=400, d=10, sigma=0.1, seed=0).X, k=15, jobs=1,
                                          n_subsamples=3, subsample_size=200, parts=False))
    assert whole["detection"]["n_loops"] == 0 and "gap" in whole["detection"]
    assert not any(n.startswith("No loop stands out") for n in report.verdict_notes(whole))


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


def test_feature_pvalues_closed_form():
    """ℓ = log log π − γ − mean(log log π), p = exp(−e^ℓ) (Bobrowski and Skraba 2023)."""
    rng = np.random.default_rng(0)
    b = rng.uniform(1, 2, 40)
    ratio = 1 + rng.exponential(0.2, 40)
    dgm = np.c_[b, b * ratio]
    ll = np.log(np.log(ratio))
    want = np.exp(-np.exp(ll - np.euler_gamma - ll.mean()))
    np.testing.assert_allclose(loops.feature_pvalues(dgm), want, rtol=1e-12)
    # born at 0: p = 0; too few features to estimate the null: NaN
    with_zero = np.vstack([dgm, [0.0, 1.0]])
    assert loops.feature_pvalues(with_zero)[-1] == 0.0
    assert np.isnan(loops.feature_pvalues(dgm[:3])).all()


def _er_diagram(X, k=15):
    A = graph.knn_graph(X, k=k)
    D = spectral.distance_matrix("effective_resistance", A=A)
    return homology.persistence(D)


def test_pvalues_are_roughly_uniform_under_the_null_and_tiny_for_a_circle():
    """Pure noise (Gaussian blobs): the pooled per-feature p-values are not concentrated near
    0 (at most the nominal share below 0.05, with slack), and no feature is significant
    after Bonferroni; a noisy circle's loop has p far below 0.01."""
    pooled, false_calls = [], 0
    for seed in range(8):
        X = np.random.default_rng(seed).normal(size=(200, 10))
        dgm = _er_diagram(X)["dgms"][1]
        p = loops.feature_pvalues(dgm)
        pooled.append(p)
        false_calls += int(np.any(p * len(p) < loops.ALPHA))
    pooled = np.concatenate(pooled)
    assert len(pooled) > 200
    assert np.mean(pooled < 0.05) <= 0.08 and 0.3 < np.median(pooled) < 0.7
    assert false_calls <= 1
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    ph = _er_diagram(X)
    det = loops.decide(ph["dgms"][1], scale=ph["scale"])
    assert det["n_loops"] == 1 and det["p_values"][0] < 1e-3


def test_decide_rules():
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    ph = _er_diagram(X)
    dgm, scale = ph["dgms"][1], ph["scale"]
    agree = {"distance": "diffusion", "n_loops": 1, "score": 0.9}
    disagree = {"distance": "diffusion", "n_loops": 0, "score": 0.2}
    assert loops.decide(dgm, scale=scale, confirmation=agree)["n_loops"] == 1
    rejected = loops.decide(dgm, scale=scale, rule="confirmed_gap", confirmation=disagree)
    assert rejected["n_loops"] == 0 and rejected["unconfirmed"]["n_loops"] == 1
    # the default keeps a loop this significant even so (p << 0.001: "rescued")
    kept = loops.decide(dgm, scale=scale, confirmation=disagree)
    assert kept["n_loops"] == 1 and kept["rescued"]["reason"] == "unconfirmed"
    assert loops.decide(dgm, scale=scale, rule="gap", confirmation=disagree)["n_loops"] == 1
    # a loop that is not significant is dropped by "significant", kept (flagged) by the default
    noise = np.c_[np.linspace(1, 2, 50), np.linspace(1, 2, 50) * 1.3]
    weak = np.vstack([noise, [10.0, 14.0]])  # by far the longest bar, but death/birth only 1.4
    d_old = loops.decide(weak, scale=1.0, rule="confirmed_gap", confirmation={"distance": "x", "n_loops": 1,
                                                                              "score": 1})
    d_new = loops.decide(weak, scale=1.0, rule="significant", confirmation={"distance": "x", "n_loops": 1,
                                                                            "score": 1})
    assert d_old["n_loops"] == 1 and d_old["p_values"][0] >= loops.ALPHA and d_old["significant"] == [False]
    assert d_new["n_loops"] == 0 and d_new["not_significant"][0]["p_value"] >= loops.ALPHA
    # a fixed count is scored, not decided
    assert loops.decide(weak, scale=1.0, n_loops=2)["n_loops"] == 2
    with pytest.raises(ValueError, match="rule"):
        loops.decide(dgm, rule="vote")


def test_evidence_rescues_very_significant_loops_the_gap_rule_misses():
    rng = np.random.default_rng(1)
    b = rng.uniform(1, 2, 60)
    noise = np.c_[b, b * (1 + rng.exponential(0.15, 60))]
    two = np.vstack([noise, [0.5, 40.0], [0.6, 38.0]])  # two clear loops, ratio ~70
    scale = 1e4  # the gap rule's floor (5 % of the median distance) rejects them
    assert loops.decide(two, scale=scale, rule="confirmed_gap")["n_loops"] == 0
    det = loops.decide(two, scale=scale)  # "evidence", the default
    assert det["n_loops"] == 2 and sorted(det["features"]) == [60, 61]
    assert det["rescued"]["reason"] == "below the gap rule" and all(p < loops.RESCUE_ALPHA for p in det["p_values"])
    # a disagreeing second distance does not stop features this clear
    det = loops.decide(two, scale=1.0, confirmation={"distance": "diffusion", "n_loops": 0, "score": 0.0})
    assert det["n_loops"] == 2 and det["rescued"]["reason"] == "unconfirmed"
    # pure noise: nothing to rescue
    assert loops.decide(noise, scale=scale)["n_loops"] == 0


def test_evidence_reports_a_longest_feature_that_recurs_in_subsamples():
    rng = np.random.default_rng(2)
    b = rng.uniform(1, 2, 60)
    noise = np.c_[b, b * (1 + rng.exponential(0.1, 60))]
    # one loop and two more features 60 % and 40 % as long: no gap twice its next (s_1 = 0.4)
    split = np.vstack([noise, [1.5, 3.5], [1.5, 2.7], [1.5, 2.3]])
    assert loops.decide(split, scale=10.0)["n_loops"] == 0
    assert loops.recurrence_candidate(split, scale=10.0) == 60
    assert loops.recurrence_candidate(split, scale=1e3) is None  # below the lifetime floor
    assert loops.recurrence_candidate(noise[:0]) is None
    seen = {"feature": 60, "prevalence": 0.9, "n_subsamples": 10}
    det = loops.decide(split, scale=10.0, recurrence=seen)
    assert det["n_loops"] == 1 and det["features"] == [60] and len(det["p_values"]) == 1
    assert det["rescued"] == {"rows": [60], "reason": "recurrence", "prevalence": 0.9, "n_subsamples": 10}
    assert loops.decide(split, scale=10.0, recurrence={**seen, "prevalence": 0.8})["n_loops"] == 0
    # only rule "evidence" with a count to decide reads it
    assert loops.decide(split, scale=10.0, recurrence=seen, rule="confirmed_gap")["n_loops"] == 0
    assert loops.decide(split, scale=10.0, recurrence=seen, n_loops=2)["n_loops"] == 2
    # a count already found is not changed
    clear = np.vstack([noise, [1.0, 9.0]])
    assert "rescued" not in loops.decide(clear, scale=10.0, recurrence={**seen, "feature": 60})


def test_surface_reading_counts_the_loops_alive_when_the_void_is_born():
    # the clean torus on 150 landmarks has a third, short-lived H1 class (Rips at a coarse
    # sampling) that lives longer than the void but is dead before the void is born
    X = datasets.make("torus", n=600, d=3, seed=0).clean
    ph = homology.landmark_persistence(spectral.euclidean_distance(X), n_landmarks=150)
    dgms = ph["dgms"]
    life1 = np.sort(np.diff(dgms[1], axis=1).ravel())[::-1]
    assert life1[2] > np.diff(dgms[2], axis=1).max()
    r = loops.surface_reading(dgms, scale=ph["scale"])
    assert r["void"] and r["n_loops"] == 2 and r["void_p"] < loops.ALPHA
    # by hand: a void born at 5, loops (1, 9) and (2, 6) alive then, (1, 4.5) dead, (6, 8) not yet born
    noise2 = np.c_[np.linspace(5.0, 6.0, 30), np.linspace(5.0, 6.0, 30) * 1.02]
    h2 = np.vstack([noise2, [5.0, 50.0]])
    h1 = np.array([[1.0, 9.0], [2.0, 6.0], [1.0, 4.5], [6.0, 8.0]])
    assert loops.surface_reading([None, h1, h2])["n_loops"] == 2
    assert loops.surface_reading([None, h1, noise2])["void"] is False
    # too few H2 features for the null (a clean surface): the void must stand out by the gap rule
    few = loops.surface_reading([None, h1, np.array([[5.0, 50.0], [5.0, 6.0]])], scale=20.0)
    assert few["void"] and few["void_p"] is None and few["n_loops"] == 2
    assert not loops.surface_reading([None, h1, np.array([[5.0, 50.0], [5.0, 40.0]])], scale=20.0)["void"]


def test_surface_reading_holds_the_void_and_its_loops_to_the_lifetime_floor():
    # the very noisy sphere's false reading on 300 landmarks, by hand: a void living 2 % of the
    # scale, significant among H2 noise, with short H1 noise classes alive at its birth
    rng = np.random.default_rng(0)
    b = rng.uniform(40.0, 50.0, 200)
    noise2 = np.c_[b, b * (1 + rng.exponential(0.002, 200))]
    void = [46.5, 48.5]
    h1 = np.array([[46.0, 46.8], [46.2, 47.0], [45.9, 47.0], [20.0, 60.0], [30.0, 47.0]])
    h2 = np.vstack([noise2, void])
    r = loops.surface_reading([None, h1, h2], scale=100.0)
    assert r["void_p"] < loops.ALPHA and r["void"] is False and r["n_loops"] == 0
    # the same void at a scale it clears: only the H1 classes above the floor count (the
    # three of 3-4 % are noise; (20, 60) and (30, 47) are loops)
    r = loops.surface_reading([None, h1, h2], scale=30.0)
    assert r["void"] is True and r["n_loops"] == 2
    assert loops.surface_reading([None, h1, h2], scale=30.0, min_persistence=0.0)["n_loops"] == 5


def _landmark_dgms(name, sigma, seed=0, d=50):
    X = datasets.make(name, n=1000, d=d, sigma=sigma, seed=seed).X
    D = spectral.euclidean_distance(X)
    return homology.landmark_persistence(D, n_landmarks=150, seed=seed)["dgms"]


@pytest.mark.parametrize("name, sigma, void, n_loops", [
    ("torus", 0.05, True, 2),       # the void and the two loops alive at its birth
    ("sphere", 0.1, True, 0),       # a void, but no loop
    ("eyeglasses", 0.1, False, 0),  # two lenses, no void
    ("blob", 0.0, False, 0),        # noise
])
def test_surface_reading_tells_a_torus_from_a_sphere_and_from_two_loops(name, sigma, void, n_loops):
    reading = loops.surface_reading(_landmark_dgms(name, sigma))
    assert reading["void"] is void and reading["n_loops"] == n_loops
    if void:
        assert reading["void_p"] < loops.ALPHA


def test_surface_evidence_tries_more_landmarks_only_where_the_first_show_no_void(monkeypatch):
    # a sphere's void shows on the first count: no second try; noise shows none: the second
    # count is read; fewer points than landmarks: every point once, nothing more to try
    monkeypatch.setattr(loops, "SURFACE_LANDMARKS", (120, 200))
    sphere = spectral.euclidean_distance(datasets.make("sphere", n=400, d=10, sigma=0.05, seed=0).X)
    got = loops.surface_evidence(sphere)
    assert got["void"] and got["n_loops"] == 0 and got["landmarks_tried"] == [120] and got["n_landmarks"] == 120
    blob = spectral.euclidean_distance(datasets.make("blob", n=400, d=10, sigma=0.0, seed=0).X)
    got = loops.surface_evidence(blob)
    assert not got["void"] and got["landmarks_tried"] == [120, 200] and got["n_landmarks"] == 200
    # the reading is the one of the last count tried, as computed by hand
    ph = homology.landmark_persistence(blob, n_landmarks=200)
    assert got["void_p"] == loops.surface_reading(ph["dgms"], scale=ph["scale"])["void_p"]
    small = spectral.euclidean_distance(datasets.make("blob", n=90, d=10, sigma=0.0, seed=0).X)
    assert loops.surface_evidence(small)["landmarks_tried"] == [90]


def test_decide_reports_the_loops_of_a_surface():
    rng = np.random.default_rng(2)
    b = rng.uniform(1, 2, 60)
    noise = np.c_[b, b * (1 + rng.exponential(0.1, 60))]
    dgm = np.vstack([noise, [1.0, 9.0], [4.0, 8.0]])  # a long loop, a second half as long
    base = loops.decide(dgm, scale=10.0, confirmation={"distance": "diffusion", "n_loops": 1, "score": 0.5})
    torus = {"void": True, "void_p": 1e-4, "void_lifetime": 1.0, "n_loops": 2}
    det = loops.decide(dgm, scale=10.0, confirmation={"distance": "diffusion", "n_loops": 1, "score": 0.5},
                       surface=torus)
    assert base["n_loops"] == 1 and det["n_loops"] == 2 and sorted(det["features"]) == [60, 61]
    assert det["surface_loops"] == {"n_loops": 2, "void_p": 1e-4, "previous": 1}
    # no void, or a void that no second loop outlives (a sphere), changes nothing
    for reading in ({**torus, "void": False, "n_loops": 0}, {**torus, "n_loops": 0}):
        assert loops.decide(dgm, scale=10.0, surface=reading)["n_loops"] == base["n_loops"]
    # the main diagram must hold the loops: a second feature below the lifetime floor is not one
    assert loops.decide(dgm, scale=200.0, surface=torus)["n_loops"] < 2
    # only the default rule reads the surface
    assert loops.decide(dgm, scale=10.0, rule="confirmed_gap", surface=torus,
                        confirmation={"distance": "diffusion", "n_loops": 1, "score": 0.5})["n_loops"] == 1


def test_a_fixed_count_above_the_features_that_pass_says_so(caplog):
    # --n-loops 2 on one circle: 1 loop listed and score s_2 = 0, without a word
    dgm = np.array([[0.1, 1.0], [0.2, 0.22], [0.3, 0.33]])  # one feature with death/birth > 1.25
    with caplog.at_level("WARNING"):
        det = loops.decide(dgm, scale=1.0, n_loops=2)
    assert len(det["features"]) == len(det["p_values"]) == 1 and det["score"] == det["scores"][2]  # s_m as asked
    assert "n_loops=2 asked for, but only 1 H1 feature(s)" in caplog.text

