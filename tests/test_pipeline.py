import numpy as np
import pytest

from topoembed import datasets, evidence, homology, pipeline, report, spectral
from topoembed._validate import InputError


def test_paper_central_effect():
    """Damrich et al. 2024: corrected effective resistance (k=100) finds the loop of a noisy
    circle in R^50 (sigma=0.25) where the Euclidean distance fails."""
    er, eu = [], []
    for seed in range(3):
        X = datasets.make("circle", n=1000, d=50, sigma=0.25, seed=seed).X
        er.append(pipeline.run(X, k=100, distance="effective_resistance", n_loops=1).detection["score"])
        eu.append(pipeline.run(X, distance="euclidean", n_loops=1).detection["score"])
    assert np.mean(er) >= 0.8, er
    assert np.mean(eu) <= 0.3, eu


def test_run_result_and_summary_contract():
    X = datasets.make("circle", n=300, d=10, sigma=0.05, seed=0).X
    r = pipeline.run(X, k=15)
    s = pipeline.summary(r, "test")
    for key in ["version", "input", "n_points", "params", "distance", "diagrams", "detection", "loops", "timings_s"]:
        assert key in s
    assert set(s["timings_s"]) == {"graph", "distances", "homology", "detection", "localization", "total"}
    # what ran: the versions that can change a result, and the engine that computed the diagrams
    import platform
    from importlib import metadata

    env = s["environment"]
    assert env["python"] == platform.python_version() and env["numpy"] == np.__version__
    assert env["scipy"] == metadata.version("scipy") and env["ripser"] == metadata.version("ripser")
    assert env["homology_engine"] == {"gph": "giotto-ph", "ripser": "ripser.py"}[r.ph["engine"]]
    assert "phase" not in s["loops"][0] and len(r.loops[0]["phase"]) == 300  # per-point arrays stay off the JSON
    assert s["detection"]["n_loops"] == 1 and len(s["loops"]) == 1
    lp = s["loops"][0]
    a, b = lp["birth_edge"]
    assert np.float32(r.D[a, b]) == pytest.approx(lp["birth"], rel=1e-6)
    assert s["diagrams"]["H0"][-1][1] is None  # one infinite H0 bar


def test_subsample_maps_ids_back_and_is_seeded():
    X = datasets.make("circle", n=600, d=5, sigma=0.05, seed=0).X
    r1 = pipeline.run(X, subsample=250, seed=1)
    r2 = pipeline.run(X, subsample=250, seed=1)
    np.testing.assert_array_equal(r1.index, r2.index)
    assert pipeline.summary(r1)["loops"] == pipeline.summary(r2)["loops"]
    np.testing.assert_array_equal(r1.loops[0]["phase"], r2.loops[0]["phase"])
    a, b = r1.loops[0]["birth_edge"]
    pos = {v: i for i, v in enumerate(r1.index)}
    assert np.float32(r1.D[pos[a], pos[b]]) == pytest.approx(r1.loops[0]["birth"], rel=1e-6)


@pytest.mark.parametrize("bad,match", [
    (dict(k=300), "smaller than the number of points"),
    (dict(k=0), "positive integer"),
    (dict(distance="nope"), "distance"),
    (dict(maxdim=3), "maxdim"),
    (dict(n_loops=-2), "n_loops"),
    (dict(t=-1.0), "t="),
    (dict(max_points=100), "dense limit"),
])
def test_bad_parameters_fail_early(bad, match):
    X = np.random.default_rng(0).normal(size=(200, 3))
    with pytest.raises(InputError, match=match):
        pipeline.run(X, **bad)


def test_bad_points():
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        pipeline.run(X)
    X[3, 1] = np.inf
    with pytest.raises(InputError, match="infinite"):
        pipeline.run(X)
    with pytest.raises(InputError, match="at least"):
        pipeline.run(np.zeros((2, 3)))
    with pytest.raises(InputError, match="not numeric"):
        pipeline.run(np.array([["a", "b"], ["c", "d"], ["e", "f"]]))


def test_precomputed_graph_is_used():
    from topoembed import graph

    X = datasets.make("circle", n=200, d=5, sigma=0.05, seed=0).X
    A = graph.knn_graph(X, 12)
    r = pipeline.run(X, A=A)
    assert (r.A != A).nnz == 0
    np.testing.assert_allclose(r.D, pipeline.run(X, k=12, symmetrize="or").D)


def test_defaults_come_from_core_signatures():
    import inspect

    from topoembed import graph, spectral

    assert pipeline.Params().metric == inspect.signature(graph.knn_graph).parameters["metric"].default
    assert pipeline.Params().t == inspect.signature(spectral.distance_matrix).parameters["t"].default
    assert pipeline.Params().distance == spectral.DEFAULT_DISTANCE == "effective_resistance"
    # the pipeline's own graph defaults (see Params docstring), shared by te.pp.neighbors
    import topoembed as te

    assert (pipeline.Params().k, pipeline.Params().symmetrize) == (100, "and")
    assert inspect.signature(te.pp.neighbors).parameters["k"].default == 100


def test_distance_auto_resolves_settings():
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    r = pipeline.run(X, distance="auto")
    s = pipeline.summary(r)
    assert s["auto"]["n_loops"] == 1 and s["auto"]["support"] >= 2
    assert s["distance"] in ("effective_resistance", "diffusion") and s["params"]["distance"] == s["distance"]
    assert s["detection"]["n_loops"] == 1 and "auto" in s["timings_s"]
    # the chosen setting reproduces when given explicitly
    p = s["params"]
    again = pipeline.run(X, distance=p["distance"], k=p["k"], t=p["t"], symmetrize=p["symmetrize"], n_loops=1)
    np.testing.assert_allclose(again.D, r.D)
    with pytest.raises(InputError, match="at least 20"):
        pipeline.run(np.random.default_rng(0).normal(size=(10, 3)), distance="auto")


def test_report_names_an_unconfirmed_reading():
    from topoembed import report

    X = datasets.make("circle", n=200, d=5, sigma=0.05, seed=0).X
    s = pipeline.summary(pipeline.run(X, k=15, localize=False))
    assert "alone proposes" not in report.render_html(s)
    s["auto"] = {"key": "er_k15", "n_loops": 0, "support": 5,
                 "unconfirmed": {"key": "er_k15", "n_loops": 2, "score": 0.8, "support": 1}}
    html = report.render_html(s)
    assert "er_k15 alone proposes 2 loop(s) (s = 0.80)" in html


def test_confirmation_rejects_a_loop_on_noise_and_keeps_a_real_one(monkeypatch):
    # Gaussian blob: effective resistance on the default graph sees a loop (s_1 = 0.85),
    # diffusion on the same graph does not (noise benchmark, blob seed 0, sigma = 0.15)
    X = datasets.make("blob", n=1000, d=50, sigma=0.15, seed=0).X
    unchecked = pipeline.run(X, localize=False, confirm=False, loop_rule="gap")
    assert unchecked.detection["n_loops"] == 1 and "confirmation" not in unchecked.detection
    r = pipeline.run(X, localize=False)
    det = pipeline.summary(r)["detection"]
    assert det["n_loops"] == 0 and r.loops == []
    assert det["unconfirmed"] == {"distance": "effective_resistance", "n_loops": 1,
                                  "score": pytest.approx(unchecked.detection["score"])}
    assert det["confirmation"]["distance"] == "diffusion" and det["confirmation"]["n_loops"] == 0
    np.testing.assert_array_equal(r.D, unchecked.D)  # same distances; only the verdict changes
    # a real loop is confirmed, and a fixed n_loops is never second-guessed
    C = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    c = pipeline.run(C, k=30, localize=False)
    assert c.detection["n_loops"] == 1 and c.detection["confirmation"]["n_loops"] == 1
    assert "confirmation" not in pipeline.run(X, localize=False, n_loops=1).detection
    # the confirmation reuses the eigendecomposition of the distance stage: one per run
    calls = []
    real = spectral.laplacian_spectrum
    monkeypatch.setattr(spectral, "laplacian_spectrum", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    again = pipeline.run(X, localize=False)
    assert len(calls) == 1 and again.detection["confirmation"] == r.detection["confirmation"]
    # the report says which distance disagreed, or that the count was confirmed
    from topoembed import report

    assert "but diffusion on the same graph finds 0, so the verdict is no loop" in report.render_html(
        pipeline.summary(r))
    assert "Confirmed: diffusion on the same graph" in report.render_html(pipeline.summary(c))


@pytest.mark.parametrize("name", ["confirm", "localize", "surface"])
def test_switches_must_be_on_or_off(name):
    X = datasets.make("circle", n=60, d=3, sigma=0.0, seed=0).X
    with pytest.raises(InputError, match=f"{name}=2 must be True/False"):
        pipeline.run(X, k=10, **{name: 2})


@pytest.mark.parametrize("name", ["circle", "blob"])
def test_confirmation_stopped_early_gives_the_full_filtration_count(name):
    """The confirmation stops its filtration once the count cannot change
    (evidence._one_loop_decided); the count must equal that of the whole filtration."""
    from topoembed import graph, loops, spectral

    X = datasets.make(name, n=400, d=20, sigma=0.2, seed=1).X
    A = graph.knn_graph(X, k=40, symmetrize="and")
    D2 = spectral.distance_matrix("diffusion", A=A)
    scale = homology.distance_scale(D2)
    full = homology.persistence(D2, truncate=False)
    want = loops.detect(full["dgms"][1], scale=full["scale"])["n_loops"]
    early = homology.persistence(D2, decided=lambda dgm, t: evidence._one_loop_decided(dgm, t, scale))
    dgm = early["dgms"][1] if early["exact"] else evidence._at_truncation(early["dgms"][1], early["thresh"])
    got = loops.detect(dgm, scale=early["scale"])
    assert got["n_loops"] == want
    if not early["exact"]:  # the lower bound of s_1 is below the true score
        assert got["score"] <= loops.detect(full["dgms"][1], scale=full["scale"])["score"] + 1e-12


def test_loops_carry_p_values_and_the_report_words_the_confidence():
    from topoembed import report

    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    s = pipeline.summary(pipeline.run(X, k=30, localize=False))
    lp = s["loops"][0]
    assert lp["p_value"] < 1e-3 and s["detection"]["significant"] == [True]
    assert any(n.startswith("Loop 1 is significant") for n in report.verdict_notes(s))
    weak = {**s, "loops": [{**lp, "p_value": 0.4}]}
    assert any(n.startswith("Low confidence in loop 1") for n in report.verdict_notes(weak))
    # an inconclusive p (0.01 <= p < 0.05) that the subsamples did not confirm: low confidence
    unmatched = {**s, "loops": [{**lp, "p_value": 0.033, "prevalence": 0.0, "n_runs": 0}],
                 "detection": {**s["detection"], "prevalence_check": {
                     "n_subsamples": 2, "n_planned": 10, "stopped_early": True, "subsample_size": 210,
                     "p_at_least": 0.01, "prevalence": [0.0]}}}
    note = next(n for n in report.verdict_notes(unmatched) if n.startswith("Low confidence in loop 1"))
    assert "p = 0.033" in note and "0 of 2 subsamples" in note and "0%" in note
    assert not any(n.startswith("Loop 1 is significant") for n in report.verdict_notes(unmatched))
    confirmed = {**unmatched, "loops": [{**lp, "p_value": 0.033, "prevalence": 1.0, "n_runs": 2}]}
    notes = report.verdict_notes(confirmed)  # supported, but by its recurrence: p = 0.033 is not called significant
    assert any(n.startswith("Loop 1 is supported by its recurrence: its universal-null p = 0.033") for n in notes)
    assert not any("significant" in n for n in notes)
    dropped = {**s, "loops": [], "detection": {**s["detection"], "n_loops": 0,
                                               "not_significant": [{"feature": 3, "p_value": 0.4}]}}
    assert any(n.startswith("Not significant") for n in report.verdict_notes(dropped))
    with pytest.raises(InputError, match="loop_rule"):
        pipeline.run(X, k=30, loop_rule="vote")


def test_a_torus_gets_its_two_loops_from_its_void():
    """The default distance short-cuts the torus's tube: without the surface the run reports
    fewer than 2 loops; the void on the landmarks (H2) and the two H1 classes that outlive it
    give 2, and the summary and the report say why. A circle never computes the surface."""
    from topoembed import loops, report

    ds = datasets.make("torus", n=800, d=50, sigma=0.05, seed=1)
    X = ds.X
    plain = pipeline.run(X, localize=False, surface=False)
    res = pipeline.run(X)
    assert plain.detection["n_loops"] < 2 and "surface" not in plain.detection
    assert res.detection["n_loops"] == 2 and res.detection["surface"]["void"]
    s = pipeline.summary(res)
    assert s["detection"]["surface_loops"]["previous"] == plain.detection["n_loops"]
    notes = report.verdict_notes(s)
    assert any(n.startswith("A closed surface") for n in notes)
    # the void supports both loops: each gets a phase even where its own p-value is high
    for i, lp in enumerate(res.loops):
        assert lp["surface_void_p"] == res.detection["surface"]["void_p"] and "phase_withheld" not in lp
        assert np.isfinite(lp["phase"]).all()
        if lp["p_value"] >= loops.ALPHA:
            assert any(n.startswith(f"Loop {i + 1} on its own is within what noise produces") for n in notes)
    assert any("closed surface stands behind" in w for w in res.warnings)
    # a surface's loops get the harmonic coordinate: one follows the ring angle, the other the
    # tube angle (|ρ| 0.40 here; with the cycle method the tube loop's θ had 0.05)
    from topoembed.localize import circular_correlation

    ring = ds.angle
    tube = datasets.torus_tube_angle(ds.intrinsic)
    corr = np.array([[abs(circular_correlation(lp["phase"], a)) for a in (ring, tube)] for lp in res.loops])
    assert {lp["phase_method"] for lp in res.loops} == {"harmonic"}
    assert max(corr[0, 0], corr[1, 0]) >= 0.99 and max(corr[0, 1], corr[1, 1]) >= 0.3
    assert pipeline.run(X, phase_method="harmonic").loops[0]["phase_method"] == "harmonic"
    circle = pipeline.run(datasets.make("circle", n=400, d=20, sigma=0.1, seed=0).X, k=40, localize=False)
    assert circle.detection["n_loops"] == 1 and "surface" not in circle.detection


def test_the_noise_benchmarks_torus_keeps_its_void_on_500_landmarks():
    """σ = 0.15, seed 6 of the noise benchmark (n = 1,000 in R^50): 300 landmarks of the
    default distance miss the void (p ≈ 0.2), 500 find it with its two loops, and the
    default run, which tries 500 where 300 show no void, reports 2 loops (1 without the
    surface). Seed 0: 200 miss it, 300 (read first) and 500 find it."""
    from topoembed import homology, loops

    for seed, missed_on in ((6, 300), (0, 200)):
        X = datasets.make("torus", n=1000, d=50, sigma=0.15, seed=seed).X
        res = pipeline.run(X, localize=False)
        surface = res.detection["surface"]
        assert res.detection["n_loops"] == 2 and surface["n_landmarks"] == {6: 500, 0: 300}[seed]
        assert surface["landmarks_tried"] == {6: [300, 500], 0: [300]}[seed]
        said = "on 500 landmarks (the first 300 showed none) hold a void" if seed == 6 else "on 300 landmarks hold a void"
        assert said in " ".join(report.verdict_notes(pipeline.summary(res)))
        assert res.detection["surface_loops"]["previous"] < 2
        # the same distances the run read (res.D), on fewer landmarks and on the default 500
        readings = {m: loops.surface_reading(ph["dgms"], scale=ph["scale"])
                    for m in (missed_on, 500) for ph in [homology.landmark_persistence(res.D, n_landmarks=m)]}
        assert not readings[missed_on]["void"] and readings[missed_on]["void_p"] >= loops.ALPHA
        assert readings[500]["void"] and readings[500]["n_loops"] == 2
    assert loops.SURFACE_LANDMARKS == (300, 500)


def _summary_without_timings(res):
    out = pipeline.summary(res)
    out.pop("timings_s", None)
    return out


@pytest.mark.parametrize("name,extra", [("circle", None), ("blob", None), ("circle", "outlier")])
def test_speculative_confirmation_gives_the_sequential_result(monkeypatch, name, extra):
    """The confirmation computed in a forked child while the persistence runs gives the same
    summary (detection, confirmation, warnings, loops) as the sequential run; a child that
    fails is replaced by the sequential computation."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the speculative confirmation runs on Linux only")
    X = datasets.make(name, n=300, d=20, sigma=0.1, seed=0).X
    if extra == "outlier":  # a second component: its warnings must come back from the child
        X = np.vstack([X, np.full((1, X.shape[1]), 30.0)])
    monkeypatch.setattr("topoembed._parallel.usable_cpus", lambda: 2)
    started = []
    real = evidence._Speculation.__init__

    def spy(self, *a, **k):
        started.append(1)
        real(self, *a, **k)

    monkeypatch.setattr(evidence._Speculation, "__init__", spy)
    fast = pipeline.run(X, k=30)
    assert started  # the speculative path ran
    monkeypatch.setattr(evidence, "SPECULATE_MAX_N", 0)
    slow = pipeline.run(X, k=30)
    assert _summary_without_timings(fast) == _summary_without_timings(slow)
    if name == "circle":
        assert fast.detection["confirmation"]["n_loops"] == 1
    # a failing child: the parent computes the reading itself
    monkeypatch.setattr(evidence, "SPECULATE_MAX_N", 2000)
    parent, real_reading = os.getpid(), evidence.confirmation_reading

    def fails_in_child(*a, **k):
        if os.getpid() != parent:
            raise RuntimeError("child failure")
        return real_reading(*a, **k)

    monkeypatch.setattr(evidence, "confirmation_reading", fails_in_child)
    again = pipeline.run(X, k=30)
    assert _summary_without_timings(again) == _summary_without_timings(slow)
    if name != "circle" or extra is not None:
        return
    # a child that hangs (a lock held at the fork): the parent stops waiting and computes it
    import time

    def hangs_in_child(*a, **k):
        if os.getpid() != parent:
            time.sleep(600)
        return real_reading(*a, **k)

    monkeypatch.setattr(evidence, "confirmation_reading", hangs_in_child)
    monkeypatch.setattr(evidence, "SPECULATION_WAIT_S", 0.5)
    t0 = time.perf_counter()
    stalled = pipeline.run(X, k=30)
    assert time.perf_counter() - t0 < 60
    assert _summary_without_timings(stalled) == _summary_without_timings(slow)


def _run_in_worker(X):
    return pipeline.run(X, k=30).detection["n_loops"]


def test_a_run_inside_a_daemonic_pool_worker_does_not_fork_a_child(monkeypatch):
    """multiprocessing.Pool workers are daemonic and may not start processes: the run there
    computes its confirmation itself instead of failing."""
    import multiprocessing
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("fork start method")
    X = datasets.make("circle", n=200, d=10, sigma=0.1, seed=0).X
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_run_in_worker, (X,)) == 1
