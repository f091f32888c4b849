"""The one verdict (topoembed.verdict) and the front door (topoembed.analysis): every way in
gives the same call, and nothing renders a loop the evidence does not support as found."""
import json

import numpy as np
import pytest

import topoembed.params
import topoembed.prevalence
from topoembed import analysis, cli, datasets, pipeline, report, verdict
from topoembed._validate import InputError


@pytest.mark.parametrize("lp, level", [
    ({"p_value": 0.004}, verdict.LOOP),                                    # conclusive p alone
    ({"p_value": None}, verdict.LOOP),                                     # no null: nothing against it
    ({"p_value": float("nan")}, verdict.LOOP),
    ({"p_value": 0.017}, verdict.POSSIBLE),                                # inconclusive, nothing measured
    ({"p_value": 0.033, "prevalence": 0.9}, verdict.LOOP),                 # the subsamples decide
    ({"p_value": 0.033, "prevalence": 0.8}, verdict.POSSIBLE),
    ({"p_value": 0.44, "prevalence": 0.0}, verdict.POSSIBLE),              # pbmc68k_reduced's loop
    ({"p_value": 0.44, "prevalence": 1.0}, verdict.LOOP),                  # a thick real loop (IPC)
    ({"p_value": 0.005, "prevalence": 0.0}, verdict.LOOP),                 # a conclusive p stands
    ({"p_value": 0.7, "surface_void_p": 1e-4}, verdict.LOOP),              # a loop of a closed surface
])
def test_each_loop_gets_its_level_from_the_evidence(lp, level):
    call = verdict.assess_loop(lp)
    assert call.level == level and call.supported == (level == verdict.LOOP)
    assert (call.why_not() is None) == call.supported
    assert all(isinstance(r, verdict.Reason) for r in call.reasons) and call.reasons
    # the reasons say which threshold each piece of evidence was held to
    for r in call.reasons:
        if r.evidence == "prevalence":
            assert r.threshold == verdict.SUPPORT_PREVALENCE and r.supports == (r.value >= r.threshold)
        if r.evidence == "p_value" and r.value is not None:
            assert r.supports == (r.value < r.threshold)


@pytest.mark.parametrize("lp, text", [
    # a single run's check that stopped once 90 % was out of reach: 2 subsamples, not 10
    ({"p_value": 0.44, "prevalence": 0.0, "n_runs": 0, "n_subsamples": 2}, "found in only 0 of 2 subsamples (< 90%)"),
    ({"p_value": 0.03, "prevalence": 0.9, "n_runs": 9, "n_subsamples": 10}, "found in 9 of 10 subsamples (≥ 90%)"),
    ({"p_value": 0.03, "prevalence": 0.8, "n_runs": 8}, "found in only 8 of 10 subsamples (< 90%)"),  # an ensemble's
    # supported within its part: the part's count, not the ensemble's 4 runs (kept in n_runs)
    ({"p_value": 0.2, "prevalence": 1.0, "n_runs": 4, "part_evidence": {"prevalence": 1.0, "n_runs": 10,
                                                                        "n_subsamples": 10}},
     "found in 10 of 10 subsamples (≥ 90%)"),
    ({"p_value": 0.2, "prevalence": 0.5}, "found in only 50% of the subsamples (< 90%)"),  # no count known
    ({"p_value": 0.2, "prevalence": 0.5, "n_runs": 4, "n_subsamples": 10}, "found in only 50% of the subsamples"),
])
def test_a_prevalence_says_how_many_subsamples_found_the_loop_of_how_many(lp, text):
    sentence = verdict.assess_loop(lp).sentence()
    assert text in sentence, sentence


def test_the_verdict_levels_and_headline():
    none = verdict.decide([], {"alpha": 0.05})
    assert none.level == verdict.NONE and none.headline() == "No loop" and none.n_loops == 0
    weak = verdict.decide([{"p_value": 0.44, "prevalence": 0.0}])
    assert weak.level == verdict.POSSIBLE and weak.headline() == "1 possible loop (not supported)"
    mixed = verdict.decide([{"p_value": 1e-4}, {"p_value": 0.2, "prevalence": 0.1}, {"p_value": 0.001}])
    assert mixed.level == verdict.LOOP and (mixed.n_loops, mixed.n_possible) == (2, 1)
    assert mixed.headline() == "2 loops, 1 possible"
    d = mixed.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON
    assert [x["level"] for x in d["loops"]] == [verdict.LOOP, verdict.POSSIBLE, verdict.LOOP]
    with pytest.raises(Exception):  # frozen
        mixed.level = verdict.NONE


def test_collect_counts_loops_as_the_verdict_does():
    # a possible loop is no loop found: collect put detection's 1 next to "1 possible loop" (McDavid's MDA-MB-231)
    from topoembed import collect

    summ = {"detection": {"n_loops": 2, "score": 0.6, "alpha": 0.05}, "loops": [{"p_value": 0.44}, {"p_value": 1e-4}],
            "n_input": 300, "n_points": 300, "distance": "effective_resistance", "timings_s": {"total": 1.0}}
    r = collect.row("s", summ)
    assert (r["verdict"], r["n_loops"], r["n_possible"]) == ("1 loop, 1 possible", 1, 1)
    summ["loops"] = summ["loops"][:1]
    r = collect.row("s", summ)
    assert (r["verdict"], r["n_loops"], r["n_possible"]) == ("1 possible loop (not supported)", 0, 1)
    assert list(r) == list(collect.COLUMNS)


def test_the_report_never_calls_an_unsupported_loop_found():
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    s = pipeline.summary(pipeline.run(X, k=30, localize=False))
    assert s["verdict"]["level"] == verdict.LOOP and s["verdict"]["headline"] == "1 loop"
    assert "1 loop found" in report.render_html(s)
    check = {"n_subsamples": 2, "n_planned": 10, "stopped_early": True, "subsample_size": 210, "p_at_least": 0.01,
             "prevalence": [0.0]}
    weak = {**s, "loops": [{**s["loops"][0], "p_value": 0.44, "prevalence": 0.0, "n_runs": 0}],
            "detection": {**s["detection"], "prevalence_check": check}}
    page = report.render_html(weak)
    assert "loop found" not in page and "1 possible loop (not supported)" in page and "Possible loop 1" in page
    assert "headline possible" in page
    assert 'id="g-prevalence"' in page  # the check's prevalence is explained in the glossary


def test_the_report_does_not_promise_a_withheld_phase():
    # a possible loop's page said "Every point gets a phase θ" while cells.csv had none
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    res = pipeline.run(X, k=30)
    s = pipeline.summary(res)
    per_point = [{f: lp[f] for f in pipeline.PER_POINT if f in lp} for lp in res.loops]
    assert "Every point gets a" in report.render_html(s, points=X, per_point=per_point)
    weak = {**s, "loops": [{**s["loops"][0], "p_value": 0.44, "phase_withheld": "low confidence"}]}
    page = report.render_html(weak, points=X, per_point=per_point)
    assert "Every point gets a" not in page and "is withheld: the loop is not supported" in page


def test_the_front_door_checks_the_precomputed_graph_and_the_options():
    X = datasets.make("circle", n=100, d=5, sigma=0.05, seed=0).X
    with pytest.raises(InputError, match="shape"):
        analysis.run(X, k=10, A=np.eye(50))
    with pytest.raises(InputError, match="subsample"):
        analysis.run(X, k=10, A=np.eye(100), subsample=50)
    with pytest.raises(InputError, match="exclude"):
        analysis.run(X, k=10, A=np.eye(100), from_runs=[])


def test_every_way_in_gives_the_same_verdict_on_a_circle_and_a_blob(tmp_path):
    """topoembed run, te.tl.run, te.tl.run(neighbors_key=...) on the same graph and the staged
    chain: the same verdict, count, p-values and phases."""
    import anndata

    import topoembed as te
    from topoembed import graph

    for name, spec in (("circle", "circle?n=300&d=10&sigma=0.1&seed=0"), ("blob", "blob?n=300&d=10&sigma=0.2&seed=0")):
        X = datasets.make(spec.split("?")[0], **{k: (float(v) if "." in v else int(v)) for k, v in
                                                 (kv.split("=") for kv in spec.split("?")[1].split("&"))}).X
        np.save(tmp_path / f"{name}.npy", X)
        out = tmp_path / f"{name}_run"
        assert cli.main(["run", str(tmp_path / f"{name}.npy"), "--k", "30", "--out", str(out), "-q"]) == 0
        by_run = json.loads((out / "summary.json").read_text())
        a = anndata.AnnData(X.astype(np.float32))
        te.tl.run(a, k=30)
        by_tl = a.uns["topoembed"]
        # scanpy's graph route on the same kNN graph: the front door adds the same prevalence check
        b = anndata.AnnData(X.astype(np.float32))
        A = graph.knn_graph(X, k=30, symmetrize="and")
        b.obsp["connectivities"], b.obsp["distances"] = A, A
        b.uns["neighbors"] = {"connectivities_key": "connectivities", "distances_key": "distances",
                              "params": {"n_neighbors": 31, "method": "umap"}}  # scanpy counts the cell itself
        te.tl.run(b, k=30, neighbors_key="neighbors")
        by_nk = b.uns["topoembed"]
        staged = _staged(tmp_path / name, tmp_path / f"{name}.npy")
        for other in (by_tl, by_nk, staged):
            assert _call(other["verdict"]) == _call(by_run["verdict"]), name
            assert int(other["detection"]["n_loops"]) == by_run["detection"]["n_loops"]
        p_run = [lp["p_value"] for lp in by_run["loops"]]
        for p_other in ([lp["p_value"] for lp in te.tl.get_loops(a)], [lp["p_value"] for lp in te.tl.get_loops(b)],
                        [lp["p_value"] for lp in staged["loops"]]):
            assert len(p_other) == len(p_run) and np.allclose(p_other, p_run)
        if by_run["loops"]:
            assert np.allclose(a.obs["topoembed_phase"], b.obs["topoembed_phase"], equal_nan=True)


def _call(v: dict) -> tuple:
    """(level, headline, each loop's level and evidence) of a verdict from summary.json or adata.uns
    (where h5ad stores lists as {"0": ...})."""
    loops_ = v["loops"] if isinstance(v["loops"], list) else [v["loops"][k] for k in sorted(v["loops"], key=int)]
    return str(v["level"]), str(v["headline"]), int(v["n_loops"]), [(str(c["level"]), str(c["text"])) for c in loops_]


def _staged(folder, points, graph_options=("--k", "30"), detect_options=()):
    """The staged command line's six steps on ``points`` (the graph with ``graph_options``, the
    detection with ``detect_options``): summary.json."""
    folder.mkdir()
    f = {k: str(folder / v) for k, v in dict(g="g.npz", D="D.npz", H="H.npz", det="det.json", L="L.npz").items()}
    for argv in (["graph", points, *graph_options, "--out", f["g"]],
                 ["distances", points, "--graph", f["g"], "--out", f["D"]],
                 ["homology", f["D"], "--out", f["H"]],
                 ["detect", f["H"], "--graph", f["g"], "--distances", f["D"], *detect_options, "--out", f["det"]],
                 ["localize", points, "--graph", f["g"], "--distances", f["D"], "--diagrams", f["H"],
                  "--detection", f["det"], "--out", f["L"]],
                 ["report", points, "--graph", f["g"], "--distances", f["D"], "--diagrams", f["H"],
                  "--detection", f["det"], "--loops", f["L"], "--out", str(folder / "res")]):
        assert cli.main([str(x) for x in argv]) == 0, argv
    return json.loads((folder / "res" / "summary.json").read_text())


def test_an_input_too_small_for_the_default_k_gets_the_small_union_graph(tmp_path):
    circle = datasets.make("circle", n=72, d=20, sigma=0.05, seed=0).X
    res = analysis.run(circle, jobs=1)
    assert (res.params.k, res.params.symmetrize) == (pipeline.SMALL_INPUT_K, "or")
    assert res.verdict.level == "loop" and "too few for the default k = 100" in res.warnings[0]
    blob = datasets.make("blob", n=72, d=20, sigma=0.2, seed=1).X
    assert analysis.run(blob, jobs=1).verdict.level != "loop"
    assert analysis.run(circle, jobs=1, k=20).params.k == 20  # a k the user chose is kept
    with pytest.raises(InputError, match="8 points are too few to look for a loop"):
        analysis.run(circle[:8], jobs=1)  # too few even for k = 10, and the message does not blame k = 100
    out = tmp_path / "small"
    np.save(tmp_path / "c.npy", circle)
    assert cli.main(["run", str(tmp_path / "c.npy"), "--out", str(out), "-q", "--jobs", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["params"]["k"] == pipeline.SMALL_INPUT_K
    assert any("too few for the default k" in w for w in summary["warnings"])


def test_an_input_of_fewer_than_400_points_gets_a_quarter_of_them_as_k(tmp_path, capsys):
    circle = datasets.make("circle", n=200, d=20, sigma=0.1, seed=0).X
    res = analysis.run(circle, jobs=1)
    assert (res.params.k, res.params.symmetrize) == (50, "and")  # n // 4, still the mutual graph
    assert res.verdict.level == "loop" and res.warnings == []  # a choice, said as a note, not a warning
    assert res.notes and res.notes[0].startswith("k = 50: a quarter of the 200 points")
    assert analysis.run(circle, jobs=1, k=30).params.k == 30 and analysis.run(circle, jobs=1, k=30).notes == []
    big = datasets.make("circle", n=2000, d=20, sigma=0.1, seed=0).X
    assert analysis.run(big, jobs=1, subsample=200).params.k == 50  # the points analysed count
    assert pipeline.Params().for_small_input(400) == (pipeline.Params(), None, None)  # 400 and more: k = 100
    assert pipeline.Params().for_small_input(399)[0].k == 99
    with pytest.raises(InputError, match=r"10 points are too few .* choose a k below 10 \(e\.g\. k=3\)"):
        pipeline.Params().for_small_input(10)  # not "k=100 must be smaller than n": nobody chose k = 100
    assert pipeline.Params(k=5).for_small_input(10) == (pipeline.Params(k=5), None, None)
    np.save(tmp_path / "c.npy", circle)
    assert cli.main(["run", str(tmp_path / "c.npy"), "--out", str(tmp_path / "res"), "--jobs", "1"]) == 0
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert summary["params"]["k"] == 50 and summary["notes"] == res.notes and summary["warnings"] == []
    assert "note          k = 50: a quarter" in capsys.readouterr().out
    assert "Note: k = 50: a quarter of the 200 points" in (tmp_path / "res" / "report.html").read_text()


def test_the_staged_chain_takes_the_same_small_input_k_as_run(tmp_path, capsys):
    """`topoembed graph` without --k on 200 points makes run's graph (k = 50), and the chain's
    summary carries run's note and verdict."""
    X = datasets.make("circle", n=200, d=20, sigma=0.1, seed=0).X
    np.save(tmp_path / "c.npy", X)
    points = str(tmp_path / "c.npy")
    staged = _staged(tmp_path / "chain", points, graph_options=())
    run = analysis.run(X, jobs=1)
    assert staged["params"]["k"] == run.params.k == 50 and staged["notes"] == run.notes
    assert _call(staged["verdict"]) == _call(run.verdict.to_dict())
    assert np.allclose([lp["p_value"] for lp in staged["loops"]], [lp["p_value"] for lp in run.loops])
    # the graph step says its k and the note; a k given on the command line is kept
    assert "k = 50 (mutual)" in capsys.readouterr().out
    assert cli.main(["graph", points, "--k", "30", "--out", str(tmp_path / "g30.npz")]) == 0
    printed = capsys.readouterr().out
    assert "k = 30 (mutual)" in printed and "note:" not in printed
    with np.load(tmp_path / "g30.npz") as z:
        assert json.loads(str(z["topoembed_stage"]))["params"]["k"] == 30


def test_the_small_input_k_leaves_an_explicit_k_and_runs_made_elsewhere_alone(tmp_path):
    from topoembed import ensemble

    X = datasets.make("circle", n=250, d=20, sigma=0.1, seed=0).X
    np.save(tmp_path / "c.npy", X)
    # the command line can tell --k 100 from the default, and keeps it (as the staged steps do)
    assert cli.main(["run", str(tmp_path / "c.npy"), "--k", "100", "--out", str(tmp_path / "k100"), "-q", "--jobs", "1"]) == 0
    summary = json.loads((tmp_path / "k100" / "summary.json").read_text())
    assert summary["params"]["k"] == 100 and summary["notes"] == []
    # subsample runs made elsewhere (workflows/ensemble.smk on a small input) keep the k they were
    # made with: the combining step refused them as "made with other settings (k)" before
    runs = [ensemble.run_subsample(X, b, n_subsamples=3, subsample_size=200) for b in range(3)]
    res = analysis.run(X, from_runs=runs, n_subsamples=3, subsample_size=200, jobs=1)
    assert res.params.k == 100 and res.notes == []


def test_the_staged_chain_names_cells_csv_rows_by_the_tables_cell_names(tmp_path):
    """`topoembed report` on a CSV with cell names writes them into cells.csv, as `run` does."""
    import pandas as pd

    X = datasets.make("circle", n=120, d=5, sigma=0.05, seed=0).X
    names = [f"cell{i}" for i in range(len(X))]
    pd.DataFrame(X, index=names).to_csv(tmp_path / "c.csv")
    _staged(tmp_path / "chain", str(tmp_path / "c.csv"), graph_options=())
    staged = pd.read_csv(tmp_path / "chain" / "res" / "cells.csv")
    assert staged.iloc[:, 0].astype(str).tolist() == names


def test_small_ipc_samples_find_the_cycle_with_the_small_input_k(ipc_path, monkeypatch):
    """200 random IPC cells (10 draws): the default k = 100 graph joins each cell to half of the
    others and finds a supported loop in 1 of 10; k = n // 4 = 50 in 7 (BENCHMARKS.md, "Small
    inputs", with the check's subsamples of 70 %); with the check's 90 % (the default since) 4
    and 9. The phase follows CellCycle where found (R² ≥ 0.7 on (cos θ, sin θ))."""
    import anndata

    a = anndata.read_h5ad(ipc_path)
    X, cc = np.asarray(a.obsm["X_scVI"], float), a.obs["CellCycle"].to_numpy(float)

    def supported(share):
        monkeypatch.setattr(topoembed.params, "SMALL_INPUT_SHARE", share)
        found = 0
        for seed in range(10):
            idx = np.sort(np.random.default_rng(seed).choice(len(X), 200, replace=False))
            res = analysis.run(X[idx], jobs=1)
            if res.verdict.level == "loop":
                found += 1
                th = np.asarray(res.loops[0]["phase"], float)
                ok = np.isfinite(th)  # a cell without a mutual neighbour has no phase
                assert ok.mean() >= 0.95
                y, Z = cc[idx][ok], np.c_[np.ones(ok.sum()), np.cos(th[ok]), np.sin(th[ok])]
                fit = Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
                assert 1 - ((y - fit) ** 2).sum() / ((y - y.mean()) ** 2).sum() >= 0.7
        return found

    assert supported(1) <= 4 and supported(4) >= 8


@pytest.mark.slow
def test_the_check_of_300_ipc_cells_keeps_nine_tenths_of_them(ipc_path, monkeypatch):
    """The panel's 300-cell draws 2-4: the run finds the cycle (p = 0.12-0.64), and the check's
    subsamples of 70 % (210 cells, near the size where the cycle is found at all) find it again
    in only 3-7 of 10: possible loops. With 90 % (the default for 101-399 points) all three are
    supported, and their phases follow CellCycle (R² ≥ 0.75)."""
    import anndata

    a = anndata.read_h5ad(ipc_path)
    X, cc = np.asarray(a.obsm["X_scVI"], float), a.obs["CellCycle"].to_numpy(float)

    def levels(share):
        monkeypatch.setattr(topoembed.prevalence, "CHECK_FRACTION_SMALL", share)
        out = []
        for seed in (2, 3, 4):
            idx = np.sort(np.random.default_rng(seed).choice(len(X), 300, replace=False))
            res = analysis.run(X[idx], jobs=1)
            out.append(res.verdict.level)
            if res.verdict.level == "loop":
                th = np.asarray(res.loops[0]["phase"], float)
                ok = np.isfinite(th)
                y, Z = cc[idx][ok], np.c_[np.ones(ok.sum()), np.cos(th[ok]), np.sin(th[ok])]
                fit = Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
                assert 1 - ((y - fit) ** 2).sum() / ((y - y.mean()) ** 2).sum() >= 0.75
        return out

    assert levels(0.7) == ["possible loop"] * 3
    assert levels(0.9) == ["loop"] * 3


def test_auto_s_no_loop_is_never_turned_into_a_loop_by_the_check():
    """distance="auto" decides its own count; the prevalence check that follows looks in the
    subsamples with auto's choice and never re-decides the count by another rule. Before, on this
    blob (and on 400 pbmc68k_reduced cells, seed 2, and McDavid's H9 cells) auto's 0 loops came
    out as 1-5 loops with prevalence 0."""
    X = datasets.make("blob", n=400, d=50, sigma=0.2, seed=0).X
    res = analysis.run(X, distance="auto", jobs=1)
    assert res.auto["n_loops"] == 0 == res.detection["n_loops"] and res.loops == []
    assert res.verdict.level == verdict.NONE and "rescued" not in res.detection


@pytest.mark.filterwarnings("ignore:Observation names are not unique")  # scanpy's toggleswitch file, as it is
def test_a_given_count_is_checked_where_its_loop_has_no_p_value(tmp_path):
    """With n_loops given, the longest feature is reported whatever it is; where the diagram has
    too few features for a p-value it was supported by default. scanpy's toggleswitch (200 points
    in 2-D, two branches, no loop) with n_loops=1 was "1 loop"; a clean circle's second
    feature with n_loops=2 was a second loop. Now their recurrence is measured, as on the
    staged chain with `detect --n-loops`."""
    import scanpy as sc

    toggle = np.asarray(sc.datasets.toggleswitch().X, float)
    assert analysis.run(toggle, jobs=1).verdict.level == verdict.NONE
    forced = analysis.run(toggle, jobs=1, n_loops=1)
    (lp,) = forced.loops
    assert lp["p_value"] is None and lp["prevalence"] < 0.5 and forced.verdict.level == verdict.POSSIBLE
    circle = datasets.make("circle", n=300, d=10, sigma=0.05, seed=0).X
    assert [lp.get("prevalence") for lp in analysis.run(circle, jobs=1).loops] == [None]  # a rule's count: not doubted
    two = analysis.run(circle, jobs=1, n_loops=2)
    assert [lp["p_value"] for lp in two.loops] == [None, None] and [lp["prevalence"] for lp in two.loops] == [1.0, 0.0]
    assert [v.level for v in two.verdict.loops] == [verdict.LOOP, verdict.POSSIBLE]
    np.save(tmp_path / "t.npy", toggle)
    staged = _staged(tmp_path / "chain", str(tmp_path / "t.npy"), graph_options=(), detect_options=("--n-loops", "1"))
    assert _call(staged["verdict"]) == _call(forced.verdict.to_dict())


def test_a_message_names_the_fix_for_the_interface_in_use(tmp_path, capsys, caplog):
    """The same warning says symmetrize='or' in Python and --symmetrize or on the command line."""
    from topoembed import _validate

    X = datasets.make("circle", n=200, d=10, sigma=0.05, seed=0).X
    X = np.vstack([X, X.max() * 20 + 0.01 * np.eye(3, 10)])  # a side component of three points
    np.save(tmp_path / "x.npy", X)
    with caplog.at_level("WARNING", logger="topoembed"):
        pipeline.run(X, k=20, localize=False)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "symmetrize='or'" in said and "--symmetrize" not in said and "3 points outside" in said
    assert cli.main(["run", str(tmp_path / "x.npy"), "--k", "20", "--out", str(tmp_path / "o"), "-q"]) == 0
    assert "--symmetrize or" in capsys.readouterr().err + " ".join(r.getMessage() for r in caplog.records)
    assert _validate.option("prevalence_check", False) == "prevalence_check=False"


@pytest.mark.slow
def test_every_way_in_gives_the_same_verdict_on_1000_ipc_cells(tmp_path, ipc_path):
    """The issue's case: the README chain on 1,000 IPC cells with --k 30 (it stopped at detect on a
    side component), topoembed run and te.tl.run on the same cells: one verdict, count, p-values, phases."""
    import anndata

    import topoembed as te

    full = anndata.read_h5ad(ipc_path)
    idx = np.sort(np.random.default_rng(0).choice(full.n_obs, 1000, replace=False))
    X = np.asarray(full.obsm["X_scVI"], dtype=np.float64)[idx]
    np.save(tmp_path / "ipc.npy", X)
    assert cli.main(["run", str(tmp_path / "ipc.npy"), "--k", "30", "--out", str(tmp_path / "run"), "-q"]) == 0
    by_run = json.loads((tmp_path / "run" / "summary.json").read_text())
    staged = _staged(tmp_path / "staged", tmp_path / "ipc.npy")
    a = anndata.AnnData(X.astype(np.float32))
    te.tl.run(a, k=30, progress=False)
    assert by_run["verdict"] == staged["verdict"] and _call(a.uns["topoembed"]["verdict"]) == _call(by_run["verdict"])
    assert staged["loops"] == by_run["loops"]
    assert [lp["p_value"] for lp in by_run["loops"]] == [lp["p_value"] for lp in te.tl.get_loops(a)]



def _tl_staged(X, **neighbors_kw):
    """te.pp.neighbors, te.tl.spectral_distances, te.tl.persistent_homology, te.tl.detect_loops."""
    import anndata

    import topoembed as te

    a = anndata.AnnData(X.astype(np.float32))
    te.pp.neighbors(a, **neighbors_kw)
    te.tl.spectral_distances(a)
    te.tl.persistent_homology(a)
    te.tl.detect_loops(a)
    return a


@pytest.mark.parametrize("case", ["blob", "ipc"])
def test_te_tl_s_steps_decide_as_te_tl_run(case, request):
    """te.tl's steps decided the count from the diagram alone: the blob (800 points, seed 0) read
    "1 possible loop" (p = 1.0), which the other distance's reading rejects in run; 1,000 IPC cells
    (seed 1, p = 0.018) read "possible" without the prevalence check that supports it in run; 300
    IPC cells got k = 100 instead of run's 75. Now the same verdict, p-values and phases."""
    import anndata

    import topoembed as te

    if case == "blob":
        cells = [datasets.make("blob", n=800, d=10, sigma=0.2, seed=0).X]
    else:
        X = np.asarray(anndata.read_h5ad(request.getfixturevalue("ipc_path")).obsm["X_scVI"], dtype=np.float64)
        cells = [X[np.sort(np.random.default_rng(s).choice(len(X), n, replace=False))] for s, n in ((1, 1000), (0, 300))]
    for X in cells:
        staged = _tl_staged(X)
        by_run = anndata.AnnData(X.astype(np.float32))
        te.tl.run(by_run, progress=False)
        assert _call(staged.uns["topoembed"]["verdict"]) == _call(by_run.uns["topoembed"]["verdict"]), case
        assert int(staged.uns["topoembed"]["graph"]["k"]) == int(by_run.uns["topoembed"]["params"]["k"])
        p_staged, p_run = ([lp.get("prevalence", lp["p_value"]) for lp in te.tl.get_loops(b)] for b in (staged, by_run))
        assert np.allclose(p_staged, p_run)
        if case == "ipc":
            assert te.tl.get_verdict(staged)["n_loops"] == 1
            assert np.allclose(staged.obs["topoembed_phase"], by_run.obs["topoembed_phase"], equal_nan=True)

def test_subsample_gets_the_prevalence_check_its_points_get_alone(ipc_path):
    """1,000 IPC cells as `subsample=1000` (seed 1) and the same cells given alone: both "1 loop"
    (p = 0.018, supported by its prevalence). The subsample run skipped the check and called the
    loop possible, with no phase."""
    import anndata

    X = np.asarray(anndata.read_h5ad(ipc_path).obsm["X_scVI"], dtype=np.float64)
    sub = analysis.run(X, subsample=1000, seed=1, jobs=1)
    alone = analysis.run(X[sub.index], seed=1, jobs=1)
    assert _call(sub.verdict.to_dict()) == _call(alone.verdict.to_dict())
    assert sub.verdict.level == verdict.LOOP and sub.loops[0]["prevalence"] >= verdict.SUPPORT_PREVALENCE
    assert sub.detection["prevalence_check"]["subsample_size"] == 700
    assert np.isfinite(np.asarray(sub.loops[0]["phase"])[sub.index]).all()  # given, not withheld


def test_a_new_loop_of_a_part_stands_on_its_corrected_p_value_alone():
    # subsamples of a part's own points share its holes: their recurrence is no support there
    found_again = {"p_value": 0.03, "prevalence": 1.0, "n_runs": 10, "n_subsamples": 10}
    assert verdict.assess_loop(found_again).supported
    assert not verdict.assess_loop({**found_again, "part": 0}).supported
    assert verdict.assess_loop({**found_again, "part": 0, "p_value": 0.004}).supported
    # the ensemble's loop that a part's analysis supports keeps its prevalence as evidence
    assert verdict.assess_loop({**found_again, "part_evidence": {"prevalence": 1.0}}).supported


@pytest.mark.parametrize("lp", [
    {"p_value": 1e-6},                                                       # conclusive p
    {"p_value": 0.12, "prevalence": 0.9, "n_runs": 9, "n_subsamples": 10},   # recurring
    {"p_value": None},                                                       # nothing against it
    {"p_value": 0.7, "surface_void_p": 1e-4},                                # a closed surface's
])
def test_a_loop_whose_cycle_jumps_between_separate_groups_is_not_supported(lp):
    # 30 separate planar clusters of 1,737 points in R^20: the k = 100 graph joins neighbouring
    # clusters, and a cycle through 10 of them recurred in 9 of 10 subsamples (p = 0.12)
    assert verdict.assess_loop({**lp, "groups_on_cycle": 1}).level == verdict.assess_loop(lp).level
    call = verdict.assess_loop({**lp, "groups_on_cycle": 10})
    assert call.level == verdict.POSSIBLE and not call.supported
    first = call.reasons[0]
    assert (first.evidence, first.value, first.supports) == ("groups", 10, False)
    assert "jumps between 10 groups of points" in call.why_not()
    assert call.reasons[1:] == verdict.assess_loop(lp).reasons  # the other evidence is still shown


def _ring_of_clusters(n_clusters=8, per=60, seed=0):
    """Tight planar clusters on a ring of radius 10 in R^10: the union k = 15 graph keeps each
    cluster apart, the k = 100 graph joins each to its neighbours around the ring."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((10, 4)))[0]
    blocks = []
    for c in range(n_clusters):
        a = 2 * np.pi * c / n_clusters
        centre = 10 * (np.cos(a) * Q[:, 0] + np.sin(a) * Q[:, 1])
        blocks.append(centre + 0.3 * rng.standard_normal((per, 2)) @ Q[:, 2:].T + 0.05 * rng.standard_normal((per, 10)))
    return np.vstack(blocks)


def test_a_ring_of_separate_clusters_is_at_most_a_possible_loop_and_a_circle_stays_a_loop():
    X = _ring_of_clusters()
    res = analysis.run(X, jobs=1)
    assert res.loops, "the k = 100 graph joins the clusters into a ring: a loop is found"
    assert res.loops[0]["groups_on_cycle"] > 1
    assert res.verdict.n_loops == 0 and res.verdict.loops[0].reasons[0].evidence == "groups"
    assert np.isnan(res.loops[0]["phase"]).all()  # withheld, as for any unsupported loop
    notes = report.verdict_notes(pipeline.summary(res))
    said = [t for t in notes if "Loop 1" in t or "loop 1" in t]
    assert len(said) == 1 and "jumps between" in said[0] and "phase is withheld" in said[0], notes
    assert "not below 0.01" not in said[0]  # its p-value is conclusive: the groups are the reason
    circle = analysis.run(datasets.make("circle", n=480, d=10, sigma=0.1, seed=0).X, jobs=1)
    assert [lp["groups_on_cycle"] for lp in circle.loops] == [1] and circle.verdict.n_loops == 1


def test_every_way_in_counts_the_groups_on_a_ring_of_separate_clusters(tmp_path, caplog):
    """te.tl's steps read only the graph and the distances; they count the groups on the points
    the graph was built on, so the staged calls give run's verdict (before: "1 loop")."""
    import anndata

    import topoembed as te

    X = _ring_of_clusters()
    by_run = analysis.run(X, jobs=1)
    np.save(tmp_path / "ring.npy", X)
    staged_cli = _staged(tmp_path / "cli", tmp_path / "ring.npy", graph_options=())
    a = anndata.AnnData(np.zeros((len(X), 3), np.float32), obsm={"X_mine": X.astype(np.float32)})
    te.pp.neighbors(a, use_rep="X_mine")
    te.tl.spectral_distances(a)
    te.tl.persistent_homology(a)
    te.tl.detect_loops(a)
    expected = by_run.loops[0]["groups_on_cycle"]
    assert expected > 1 and by_run.verdict.n_loops == 0
    for loops_, v in ((staged_cli["loops"], staged_cli["verdict"]), (te.tl.get_loops(a), te.tl.get_verdict(a))):
        assert [lp["groups_on_cycle"] for lp in loops_] == [expected]
        assert int(v["n_loops"]) == 0 and str(v["level"]) == by_run.verdict.level
    assert np.isnan(a.obs["topoembed_phase"]).all()
    te.tl.detect_loops(a, phase_low_confidence=True)  # what the withheld phase's message offers, as in run
    assert np.isfinite(a.obs["topoembed_phase"]).sum() > len(X) / 2
    with pytest.raises(InputError, match="takes no \\['k'\\]"):  # the graph's settings are its step's
        te.tl.detect_loops(a, k=5)
    del a.obsm["X_mine"]  # the points gone: the loop is still reported, and the log says what is not checked
    with caplog.at_level("WARNING"):
        te.tl.detect_loops(a)
    assert "groups_on_cycle" not in te.tl.get_loops(a)[0] and "not checked for separate groups" in caplog.text


def test_an_ensemble_does_not_call_a_cycle_of_separate_clusters_a_loop():
    # held out (benchmarks/bench_panel.py --part part_nulls): 30 planar clusters of 40-80 points far
    # apart in R^20. Uniform subsamples of 700 hold ~23 points of each, the k = 100 graph joins each
    # cluster to its nearest ones, and a cycle through 10 clusters recurred in 9 of 10 subsamples
    import warnings

    rng = np.random.default_rng(1001)
    blocks = []
    for _ in range(30):
        m = int(rng.integers(40, 80))
        Y = rng.standard_normal((m, 2)) @ np.linalg.qr(rng.standard_normal((20, 2)))[0].T
        blocks.append(Y + 12 * rng.standard_normal(20) + 0.05 * rng.standard_normal((m, 20)))
    X = np.vstack(blocks)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # points no run reached stay NaN, silently
        res = analysis.run(X, jobs=1)
    assert res.ensemble is not None and res.loops
    assert res.loops[0]["prevalence"] >= verdict.SUPPORT_PREVALENCE  # the evidence alone would support it
    assert res.loops[0]["groups_on_cycle"] > 1 and res.verdict.n_loops == 0


def test_collect_gives_a_score_only_to_a_counted_loop_and_explains_its_columns():
    # samples.md showed 1.0 for one "No loop" (1 - max s_m) and 0 for another, as if scores of a call
    from topoembed import collect

    none = {"detection": {"n_loops": 0, "score": 1.0}, "loops": [], "n_input": 300, "n_points": 300,
            "distance": "effective_resistance", "timings_s": {"total": 1.0}}
    one = {**none, "detection": {"n_loops": 1, "score": 0.93, "alpha": 0.05}, "loops": [{"p_value": 1e-4}]}
    rows = [collect.row("a", none), collect.row("b", one)]
    assert rows[0]["score"] is None and rows[1]["score"] == 0.93
    md = collect.to_markdown(rows)
    assert "| a | No loop |" in md and md.rstrip().endswith(collect.LEGEND)
    ax = collect.plot(rows)
    assert [p.get_height() for p in ax.patches] == [0.0, 0.93]
