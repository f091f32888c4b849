"""Tests of topoembed.ensemble: subsamples, loop matching, prevalence and the consensus phase."""
from functools import lru_cache

import numpy as np
import pytest

from topoembed import datasets, ensemble, pipeline, prevalence, subsamples
from topoembed import localize as L
from topoembed._validate import InputError

SMALL = {"k": 30, "symmetrize": "or", "subsample_size": 300, "n_subsamples": 4}


@lru_cache(maxsize=None)
def _ens(name, n=1200, sigma=0.1, seed=0, jobs=1):
    ds = datasets.make(name, n=n, d=10, sigma=sigma, seed=seed)
    return ds, ensemble.run(ds.X, seed=seed, jobs=jobs, **SMALL)


def test_subsample_indices_are_seeded_distinct_and_sorted():
    a = subsamples.subsample_indices(1000, 100, 3, seed=5)
    b = subsamples.subsample_indices(1000, 100, 3, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(len(np.unique(x)) == 100 and np.all(np.diff(x) > 0) for x in a)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], subsamples.subsample_indices(1000, 100, 3, seed=6)[0])


def test_consensus_phase_undoes_rotation_and_reflection():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 2 * np.pi, 500)
    copies = [truth, np.mod(truth + 1.0, 2 * np.pi), np.mod(-truth + 2.5, 2 * np.pi)]
    theta, spread = ensemble.consensus_phase(copies)
    assert L.circular_alignment(truth, theta)[0] > 1 - 1e-12
    np.testing.assert_allclose(spread, 0.0, atol=1e-12)
    noisy = [np.mod(truth + rng.normal(scale=s, size=500), 2 * np.pi) for s in (0.5, 0.5, 0.5)]
    _, spread_noisy = ensemble.consensus_phase(noisy)
    assert np.median(spread_noisy) > 0.05  # disagreement shows up as spread
    with_nan = [truth.copy(), truth.copy()]
    with_nan[1][:10] = np.nan
    th, sp = ensemble.consensus_phase(with_nan)
    assert np.isfinite(th).all()  # one run is enough for a point
    allnan = [np.full(5, np.nan)]
    assert np.isnan(ensemble.consensus_phase(allnan)[0]).all()


def test_match_loops_pairs_the_same_loop_across_runs():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 2 * np.pi, (2, 400))  # two unrelated loops' phases
    jitter = lambda x: np.mod(x + rng.normal(scale=0.2, size=400), 2 * np.pi)  # noqa: E731
    phases = [[a, b], [jitter(b), jitter(a)], [np.mod(-a, 2 * np.pi)], []]
    clusters = ensemble.match_loops(phases, order=[0, 1, 2, 3])
    got = sorted(sorted(c) for c in clusters)
    assert got == [[(0, 0), (1, 1), (2, 0)], [(0, 1), (1, 0)]]
    noise = [[rng.uniform(0, 2 * np.pi, 400)] for _ in range(3)]  # unrelated: three clusters of one
    assert [len(c) for c in ensemble.match_loops(noise, order=[0, 1, 2])] == [1, 1, 1]


def test_match_loops_compares_two_loops_on_their_own_points():
    """Two loops on disjoint points (as linked circles): off its loop a phase is only its
    extension (here: noise), which halves |ρ| between runs that found the same loop. Compared
    on the reference loop's members, every run's two loops join the right clusters; compared
    on all points they do not (the old matching, which reported 4 loops here)."""
    rng = np.random.default_rng(3)
    n = 800
    on_a, on_b = np.arange(n) < 400, np.arange(n) >= 400
    true = rng.uniform(0, 2 * np.pi, n)

    def loop(on):  # a run's phase: the truth (with jitter) on its loop, noise elsewhere
        return np.where(on, np.mod(true + rng.normal(scale=0.5, size=n), 2 * np.pi), rng.uniform(0, 2 * np.pi, n))

    runs = [[loop(on_a), loop(on_b)] if b % 2 else [loop(on_b), loop(on_a)] for b in range(6)]
    members = [[on_b, on_a] if b % 2 == 0 else [on_a, on_b] for b in range(6)]
    members = [[m.copy() for m in ms] for ms in members]
    for ms in members:  # memberships are noisy too: a few points of the other loop
        for m in ms:
            m[rng.choice(n, 20, replace=False)] = True
    clusters = ensemble.match_loops(runs, order=list(range(6)), members=members)
    assert sorted(len(c) for c in clusters) == [6, 6]
    for c in clusters:
        first = members[c[0][0]][c[0][1]][:400].mean() > 0.5
        assert all((members[b][j][:400].mean() > 0.5) == first for b, j in c)
    assert len(ensemble.match_loops(runs, order=list(range(6)))) > 2  # on all points they fragment


def test_circle_prevalence_one_and_consensus_phase():
    ds, res = _ens("circle")
    assert res.detection["n_loops"] == 1 and len(res.loops) == 1
    lp = res.loops[0]
    assert lp["prevalence"] == 1.0 and res.ensemble["clusters"][0]["prevalence"] == 1.0
    # unanimous after 3 of 4 runs: the 4th could not change the call (early stop)
    assert res.ensemble["n_subsamples"] == 3 and res.ensemble["n_planned"] == 4 and res.ensemble["stopped_early"]
    assert (lp["n_runs"], lp["n_subsamples"]) == (3, 3)  # the count behind the prevalence, on the loop itself
    assert res.ensemble["subsample_size"] == 300
    assert len(lp["phase"]) == 1200 and np.isfinite(lp["phase"]).all()
    assert L.circular_alignment(ds.angle, lp["phase"])[0] >= 0.95
    assert np.nanmedian(lp["phase_spread"]) < 0.05
    assert np.all((lp["phase_confidence"] >= 0) & (lp["phase_confidence"] <= 1))
    assert lp["on_loop"].mean() > 0.9 and lp["n_on_loop"] == int(lp["on_loop"].sum())
    assert set(lp["cycle"]) <= set(range(1200)) and res.index.shape == (300,)
    # the loop's points are rows of the full input (the runs' local ids are mapped back)
    assert L.circular_alignment(ds.angle[lp["cycle"]], lp["phase"][lp["cycle"]])[0] > 0.9


def test_blob_reports_no_loop():
    _, res = _ens("blob", sigma=0.0)
    # no supported loop: a part of 234 points with its shell holds a "loop" that 10 of 10 subsamples
    # of those points find again, but a loop found only inside a part stands on its corrected
    # p-value (0.095 here), so it stays possible and gets no phase
    assert res.verdict.n_loops == 0
    assert all("part" in lp and not np.isfinite(lp["phase"]).any() for lp in res.loops)
    assert all(c["prevalence"] < ensemble.MIN_PREVALENCE for c in res.ensemble["clusters"])


def test_two_linked_circles_two_consensus_phases():
    ds, res = _ens("linked_circles", n=1600)
    assert res.detection["n_loops"] == 2
    own = []
    for lp in res.loops:
        al = [L.circular_alignment(ds.angle[ds.label == c], lp["phase"][ds.label == c])[0] for c in (0, 1)]
        own.append(int(np.argmax(al)))
        assert max(al) >= 0.9 and lp["prevalence"] >= 0.5
    assert sorted(own) == [0, 1]


def test_same_seed_same_result_and_jobs_do_not_change_it():
    _, one = _ens("circle")
    _, again = _ens.__wrapped__("circle")
    np.testing.assert_array_equal(one.loops[0]["phase"], again.loops[0]["phase"])
    _, two_jobs = _ens("circle", jobs=2)
    np.testing.assert_array_equal(one.loops[0]["phase"], two_jobs.loops[0]["phase"])
    assert one.ensemble["runs"] == [{**r, "time_s": one.ensemble["runs"][i]["time_s"]}
                                    for i, r in enumerate(two_jobs.ensemble["runs"])]


def test_small_inputs_are_a_single_run_and_the_summary_carries_the_ensemble():
    ds = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0)
    single = ensemble.run(ds.X, k=30, symmetrize="or")
    assert single.ensemble is None and len(single.index) == 300  # n <= ENSEMBLE_MIN_N: one run
    _, res = _ens("circle")
    s = pipeline.summary(res, "circle")
    assert s["ensemble"]["n_subsamples"] == 3 and s["ensemble"]["n_planned"] == 4 and s["loops"][0]["prevalence"] == 1.0
    assert s["n_input"] == 1200 and "phase" not in s["loops"][0]
    # the report names the subsample whose graph and diagram it shows (it read as all 1,200 points')
    from topoembed import report

    page = report.render_html(s)
    b, size = s["ensemble"]["reference_run"] + 1, s["n_points"]
    assert f"connected component in subsample {b}, whose diagram is shown" in page
    assert f"Subsample {b}'s diagram ({size:,} of the 1,200 points" in page


def test_default_switches_to_the_ensemble_above_the_threshold():
    p = pipeline.Params()
    assert p.n_runs(pipeline.ENSEMBLE_MIN_N) == 1
    assert p.n_runs(pipeline.ENSEMBLE_MIN_N + 1) == pipeline.ENSEMBLE_RUNS
    assert pipeline.Params(subsample=500).n_runs(10**6) == 1
    assert pipeline.Params(n_subsamples=3).n_runs(100) == 3
    # the dense stages are checked at the subsample size, not at n
    pipeline.Params().validate(10**6)
    with pytest.raises(InputError, match="exclude each other"):
        pipeline.Params(subsample=500, n_subsamples=3).validate(5000)
    with pytest.raises(InputError, match="n_subsamples"):
        pipeline.Params(n_subsamples=0).validate(5000)
    with pytest.raises(InputError, match="subsample_size"):
        pipeline.Params(subsample_size=-1).validate(5000)


def test_reference_run_agrees_with_the_consensus():
    class R:  # the fields _reference_run reads
        def __init__(self, m):
            self.detection = {"n_loops": m}

    runs = [R(1), R(0), R(0), R(1)]
    order = [3, 0, 1, 2]  # by score: the runs with a loop first
    assert ensemble._reference_run(runs, [], order) == 1  # no loop reported: a run that found none
    assert ensemble._reference_run(runs, [[(3, 0), (0, 0)]], order) == 3
    assert ensemble._reference_run([R(2), R(1)], [[(0, 0), (1, 0)]], [0, 1]) == 1  # exactly the reported loops


def test_early_stop_runs_is_the_first_count_that_fixes_the_call():
    assert ensemble.early_stop_runs(10) == 6  # 6/10 >= 0.5 and the other 4/10 < 0.5
    assert ensemble.early_stop_runs(4) == 3 and ensemble.early_stop_runs(3) == 2 and ensemble.early_stop_runs(1) == 1
    for B in range(1, 30):
        b = ensemble.early_stop_runs(B)
        # brute force: unanimous b runs fix the call whatever the remaining runs find
        assert b / B >= ensemble.MIN_PREVALENCE and (B - b) / B < ensemble.MIN_PREVALENCE
        assert b == 1 or not ((b - 1) / B >= ensemble.MIN_PREVALENCE and (B - b + 1) / B < ensemble.MIN_PREVALENCE)


def test_early_stop_off_runs_every_subsample_with_the_same_call():
    ds, res = _ens("circle")
    full = ensemble.run(ds.X, seed=0, jobs=1, early_stop=False, **SMALL)
    assert full.ensemble["n_subsamples"] == 4 and not full.ensemble["stopped_early"]
    assert full.detection["n_loops"] == res.detection["n_loops"] == 1
    assert abs(L.circular_correlation(full.loops[0]["phase"], res.loops[0]["phase"])) > 0.95


def test_one_job_per_subsample_then_combine_equals_the_local_ensemble(tmp_path):
    """The cluster path (ensemble.run_subsample per job, then combine) gives the local result."""
    from topoembed import io

    ds, _ = _ens("circle")
    local = ensemble.run(ds.X, seed=0, jobs=1, early_stop=False, **SMALL)
    runs = [ensemble.run_subsample(ds.X, b, seed=0, **SMALL) for b in (2, 0, 3, 1)]  # any order
    for b, r in zip((2, 0, 3, 1), runs):
        io.write_run(tmp_path / f"{b}.run", r)
    back = [io.read_run(tmp_path / f"{b}.run") for b in range(4)]
    combined = ensemble.combine(ds.X, back, seed=0, **SMALL)
    assert combined.detection["n_loops"] == local.detection["n_loops"] == 1
    np.testing.assert_array_equal(combined.loops[0]["phase"], local.loops[0]["phase"])
    assert combined.ensemble["clusters"] == local.ensemble["clusters"]
    with pytest.raises(InputError, match="other settings"):
        ensemble.combine(ds.X, back, seed=0, **{**SMALL, "k": 20})
    with pytest.raises(InputError, match="missing"):
        ensemble.combine(ds.X, back[:3], seed=0, **SMALL)
    with pytest.raises(InputError, match="out of range"):
        ensemble.run_subsample(ds.X, 4, seed=0, **SMALL)
    (tmp_path / "x.run").write_bytes(b"\x80\x04not a run")
    with pytest.raises(InputError, match="not a subsample run"):
        io.read_run(tmp_path / "x.run")


def test_a_script_without_main_guard_runs_on_one_process_instead_of_breaking(tmp_path):
    # spawned workers import the script again: an unguarded top-level call would break the pool
    import subprocess
    import sys

    body = ("from topoembed import datasets, ensemble\n"
            "X = datasets.make('circle', n=1200, d=10, sigma=0.2, seed=0).X\n"
            "{indent}r = ensemble.run(X, k=30, symmetrize='or', n_subsamples=2, subsample_size=200, jobs=2)\n"
            "{indent}print('loops', r.detection['n_loops'])\n")
    (tmp_path / "bare.py").write_text(body.format(indent=""))
    (tmp_path / "guarded.py").write_text(body.format(indent="    ").replace(
        "X = datasets", "if __name__ == '__main__':\n    X = datasets"))
    bare = subprocess.run([sys.executable, "bare.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0 and "loops 1" in bare.stdout, bare.stderr[-2000:]
    assert bare.stderr.count("running on 1 process instead of 2") == 1
    twice = body.format(indent="") + ("r = ensemble.run(X, k=30, symmetrize='or', n_subsamples=2, "
                                      "subsample_size=200, jobs=2)\n")
    (tmp_path / "twice.py").write_text(twice)  # a second pool (the part search's, a second run): said once
    again = subprocess.run([sys.executable, "twice.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stderr.count("running on 1 process instead of 2") == 1, again.stderr[-2000:]
    guarded = subprocess.run([sys.executable, "guarded.py"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
    assert guarded.returncode == 0 and "loops 1" in guarded.stdout and "instead of" not in guarded.stderr


# ---------------------------------------------------------------- prevalence check of a single run
def test_needs_prevalence_check_only_for_inconclusive_loops():
    on, off = pipeline.Params(), pipeline.Params(prevalence_check=False)
    weak = {"p_value": 0.2, "phase": np.zeros(3)}
    assert prevalence.needs_prevalence_check([weak], on) and not prevalence.needs_prevalence_check([weak], off)
    assert not prevalence.needs_prevalence_check([{"p_value": 0.001, "phase": np.zeros(3)}], on)  # p says enough
    assert not prevalence.needs_prevalence_check([{"p_value": None, "phase": np.zeros(3)}], on)  # no null to doubt
    assert prevalence.needs_prevalence_check([{"p_value": None, "phase": np.zeros(3)}], on, n=72)  # too few points
    assert not prevalence.needs_prevalence_check([{**weak, "surface_void_p": 0.001}], on)  # the void is its evidence
    assert not prevalence.needs_prevalence_check([{"p_value": 0.2}], on)  # no phase to match (localize off)
    assert not prevalence.needs_prevalence_check([], on)
    assert prevalence.needs_prevalence_check([{"p_value": 0.001, "phase": np.zeros(3)}, weak], on)
    # above ENSEMBLE_MIN_N points the confidence is an ensemble's: no check, nothing changed
    big = np.zeros((pipeline.ENSEMBLE_MIN_N + 1, 2))
    det = {"n_loops": 1}
    assert prevalence.prevalence_stage(big, None, None, {}, det, [weak], on) == (det, [weak], {}, None)


def test_prevalence_check_finds_a_noisy_circles_loop_in_every_subsample():
    # the test: prevalence on a circle is 1 (here noisy, so each subsample decides for itself)
    X = datasets.make("circle", n=300, d=50, sigma=0.2, seed=0).X
    res = pipeline.run(X, withhold=False)
    (lp,) = res.loops
    check = prevalence.check_prevalence(X, res.loops, pipeline.Params(early_stop=False), jobs=1)
    # 90 % of 101-399 points in each subsample (prevalence.check_fraction), 70 % of more
    assert check["n_subsamples"] == check["n_planned"] == 10 and check["subsample_size"] == 270
    assert lp["prevalence"] == 1.0 and lp["n_runs"] == 10 and check["prevalence"] == [1.0]
    assert all(r["n_loops"] >= 1 for r in check["runs"])
    # the default stops once the support is decided (9 of 10), the same with 1 or 2 jobs
    for jobs in (1, 2):
        check = prevalence.check_prevalence(X, res.loops, pipeline.Params(), jobs=jobs)
        assert check["n_subsamples"] == 9 and check["stopped_early"] and check["prevalence"] == [1.0]
    # too few points for k: no check (90 % of 105 points: 94)
    assert prevalence.check_prevalence(X[:105], res.loops, pipeline.Params(), jobs=1) is None


def test_the_checked_loops_phase_is_the_consensus_of_the_run_and_its_matching_subsamples():
    # a small input's phase was its one run's, though the check had 9-10 more runs of the same
    # loop; an ensemble's phase is its runs' consensus. Replayed here by hand: the check's runs,
    # extended to all points, those matching the run's loop, and their circular mean
    import dataclasses

    from topoembed import extension

    ds = datasets.make("circle", n=150, d=10, sigma=0.3, seed=0)
    params = pipeline.Params().for_small_input(150)[0]
    res = pipeline.run(ds.X, params, withhold=False)
    (lp,) = res.loops
    own = lp["phase"].copy()
    own_conf = lp["phase_confidence"].copy()
    prevalence.check_prevalence(ds.X, res.loops, dataclasses.replace(params, early_stop=False), jobs=1)
    idxs, single = prevalence.check_subsamples(150, params)
    ext = extension.build(ds.X, params, include=idxs)
    matched = []
    for idx in idxs:
        ext_b = [subsamples.extend_loop(x, ext, idx) for x in pipeline.run(ds.X[idx], single, final=False).loops]
        r = [subsamples.phase_corr(e["phase"], own, lp["on_loop"]) for e in ext_b]
        if r and max(r) >= prevalence.CHECK_MIN_CORR:
            matched.append(ext_b[int(np.argmax(r))]["phase"])
    assert len(matched) == lp["n_runs"] == 10
    theta, spread = subsamples.consensus_phase([own, *matched])
    assert np.allclose(lp["phase"], theta) and np.allclose(lp["phase_spread"], spread)
    assert np.allclose(lp["phase_confidence"], own_conf * (1 - spread))
    assert 0 < np.mean(spread) < 0.5 and np.isfinite(lp["phase"]).all()
    assert L.circular_alignment(lp["phase"], ds.angle)[0] > 0.95  # 0.953 alone, 0.955 with its check
    again = pipeline.run(ds.X, params, withhold=False)  # the same with two processes
    prevalence.check_prevalence(ds.X, again.loops, dataclasses.replace(params, early_stop=False), jobs=2)
    assert np.array_equal(again.loops[0]["phase"], lp["phase"])


def test_the_check_runs_all_ten_subsamples_on_at_most_100_points():
    # there the count is most of a loop's evidence: a stopped check read "0 of 2" for a COIL-20
    # object whose loop 5 of 10 runs find; above 100 points it still stops once decided
    X = datasets.make("blob", n=72, d=10, sigma=0.0, seed=0).X
    params = pipeline.Params(n_loops=1).for_small_input(72)[0]
    res = pipeline.run(X, params, withhold=False)
    check = prevalence.check_prevalence(X, res.loops, params, jobs=1)
    assert check["n_subsamples"] == 10 and not check["stopped_early"] and res.loops[0]["prevalence"] < 0.9
    assert res.loops[0]["n_subsamples"] == 10


def test_the_checks_subsamples_keep_nine_tenths_of_101_to_399_points():
    # the share of the points in each of the check's subsamples (BENCHMARKS.md, "The prevalence
    # check on small inputs"): 0.7 up to 100 points and from 400 on, 0.9 between
    assert [prevalence.check_fraction(n) for n in (30, 100, 101, 300, 399, 400, 1000)] == [0.7, 0.7, 0.9, 0.9, 0.9, 0.7, 0.7]
    X = datasets.make("circle", n=500, d=50, sigma=0.2, seed=0).X
    res = pipeline.run(X, withhold=False)
    assert prevalence.check_prevalence(X, res.loops, pipeline.Params(), jobs=1)["subsample_size"] == 350


def test_the_prevalence_checks_subsample_runs_decide_alone_without_a_surface(monkeypatch):
    # each subsample decides its own count, without the confirmation and without the closed
    # surface (a loop of a surface is never checked; its H2 was 45 % of the check's time on IPC)
    X = datasets.make("circle", n=300, d=50, sigma=0.2, seed=0).X
    res = pipeline.run(X, withhold=False)
    seen, real = [], prevalence.run_one
    monkeypatch.setattr(prevalence, "run_one", lambda args: (seen.append(args[2]), real(args))[1])
    prevalence.check_prevalence(X, res.loops, pipeline.Params(n_loops=1), jobs=1)
    assert len(seen) == 9
    assert all(p.surface is False and p.n_loops == "auto" and p.confirm is False for p in seen)
    # check_subsamples names what the check analyses (benchmarks replay it): those settings, and
    # 10 subsamples of 270 of the 300 points, distinct, drawn from the seed
    idxs, single = prevalence.check_subsamples(300, pipeline.Params(n_loops=1))
    assert all(p == single for p in seen) and len(idxs) == 10
    assert all(len(i) == len(np.unique(i)) == 270 and i.max() < 300 for i in idxs)
    assert all(np.array_equal(a, b) for a, b in zip(idxs, prevalence.check_subsamples(300, pipeline.Params())[0]))
    # at most 100 points the subsamples' graph takes half the k (the union k = 10 graph: k = 5)
    assert prevalence.check_subsamples(72, pipeline.Params().for_small_input(72)[0])[1].k == 5


def test_a_forced_noise_loop_has_a_low_prevalence_and_no_phase():
    # n_loops=1 on a Gaussian blob reports its longest noise feature (p = 1); the subsamples,
    # deciding their own count, rarely find a loop and never the same one
    X = datasets.make("blob", n=400, d=50, sigma=0.0, seed=0).X
    res = ensemble.run(X, n_loops=1, jobs=1)
    (lp,) = res.loops
    assert lp["p_value"] >= 0.05 and lp["prevalence"] < 0.5
    assert "found in only" in lp["phase_withheld"] and np.isnan(lp["phase"]).all()
    check = res.detection["prevalence_check"]
    assert check["subsample_size"] == 280 and len(check["runs"]) == check["n_subsamples"] < 10  # 2 missed: decided
    assert "prevalence_check" in pipeline.summary(res)["detection"]
    off = ensemble.run(X, n_loops=1, jobs=1, prevalence_check=False)
    assert "prevalence" not in off.loops[0] and "prevalence_check" not in off.detection
    assert "phase_withheld" in off.loops[0]  # still withheld: p = 1


def test_ensemble_runs_skip_the_second_distance():
    p = subsamples.subsample_params(pipeline.Params(subsample=500, confirm=True))
    assert p.confirm is False and p.subsample is None and p.n_subsamples == 1


def test_the_graph_of_all_points_is_announced_off_a_terminal(caplog):
    """Feedback on the step outside the counted subsamples (on a million points it took minutes
    without a word): one progress line before and one after the kNN graph of all points."""
    X = datasets.make("circle", n=1200, d=10, sigma=0.1, seed=0).X
    with caplog.at_level("INFO", logger="topoembed.progress"):
        ensemble.run(X, k=30, symmetrize="or", n_subsamples=2, subsample_size=300, jobs=1, progress=True)
    said = [r.getMessage() for r in caplog.records if r.name == "topoembed.progress"]
    assert any("kNN graph of all 1,200 points (k = 15)…" in m for m in said)
    assert any("kNN graph of all 1,200 points: " in m and "now the subsamples" in m for m in said)


def test_a_torus_ensemble_is_analysed_on_all_points_once_a_subsample_looks_for_its_surface(monkeypatch):
    """1,200 torus points: subsamples of 700 short-cut the tube (the ensemble alone reported 1
    loop in 5 of 9 such tori); where a subsample looked for a closed surface, one run on all
    points finds its void and both loops (BENCHMARKS.md, "A torus's tube loop"), says so in a
    note, and the tube loop's phase follows the tube."""
    from topoembed import analysis
    from topoembed.localize import circular_correlation

    ds = datasets.make("torus", n=1200, d=50, sigma=0.1, seed=1)
    res = analysis.run(ds.X, jobs=1)
    assert res.detection["n_loops"] == 2 and res.verdict.level == "loop" and res.ensemble is None
    on_all = res.detection["surface_on_all_points"]
    assert on_all["subsamples_looked"] >= 1 and on_all["n_subsamples"] >= 6
    assert any("analysed in one run" in note for note in res.notes)
    assert res.timings["total"] > res.timings["ensemble_subsample_runs"] > 0  # the subsamples' time is counted
    tube = datasets.torus_tube_angle(ds.intrinsic)
    assert max(abs(circular_correlation(lp["phase"], tube)) for lp in res.loops) >= 0.6
    # above the limit the ensemble's own result stands
    monkeypatch.setattr(ensemble, "SURFACE_ALL_POINTS_MAX_N", 1000)
    res = analysis.run(ds.X, jobs=1)
    assert res.ensemble is not None and "surface_on_all_points" not in res.detection


def test_a_dropped_run_on_all_points_says_nothing_and_its_time_is_counted(monkeypatch, caplog):
    # 1,988 IPC cells (13wk): a subsample looked for a surface, the run on all points found none
    # and was dropped, but its "reporting 0 loops" reached the log next to the verdict "1 loop",
    # and its 9 s were missing from the timings
    import logging
    import types

    from topoembed import _progress

    def dropped(X, params, jobs, progress):
        logging.getLogger("topoembed.evidence").warning("finds 2 loop(s) but diffusion finds 0: reporting 0 loops")
        logging.getLogger("topoembed._progress").info("topoembed 1/5: graph: 0.1 s")
        return types.SimpleNamespace(detection={}, warnings=["finds 2 loop(s) ...: reporting 0 loops"])

    monkeypatch.setattr(prevalence, "single_with_check", dropped)
    runs = [types.SimpleNamespace(detection={"surface": {"void_p": 0.5}, "surface_loops": []})]
    timings = {}
    with caplog.at_level("INFO", logger="topoembed"):
        got = ensemble._surface_on_all_points(np.zeros((1988, 3)), pipeline.Params(), runs, 1, True, timings, 0.0)
    assert got is None and timings["surface_check"] >= 0
    assert "reporting 0 loops" not in caplog.text  # the dropped run's warning
    assert "topoembed 1/5: graph" in caplog.text and "1 of 1 subsamples looked for a closed surface" in caplog.text
    # a collector made inside the run keeps the warning (the run's own record), one made before does not
    with pipeline.collect_warnings() as outer, _progress.tentative_run(), pipeline.collect_warnings() as inner:
        logging.getLogger("topoembed.evidence").warning("held")
    assert inner == ["held"] and outer == []
