"""The benchmark: grid, one task, aggregation (AUC oracle), tables, plots and the CLI."""
import csv
import json

import numpy as np
import pytest

import noise_benchmark as B
from topoembed import evidence, pipeline
from topoembed._validate import InputError
from topoembed.cli import main

N = 150  # smallest n for which k = 100 (a published setting) is valid and fast


def test_grid_matches_the_published_protocol():
    assert len(B.SIGMAS) == 29 and B.SIGMAS[0] == 0.0 and B.SIGMAS[-1] == 0.35
    assert np.allclose(B.SIGMAS, np.linspace(0, 0.35, 29), atol=1e-9)
    assert B.sigma_grid("eyeglasses")[-1] == 0.15 and len(B.sigma_grid("eyeglasses")) == 13
    full = B.grid()
    assert len(full) == (5 * 29 + 13) * 3 and len(set(full)) == len(full)
    quick = B.grid(quick=True)
    assert {t[0] for t in quick} == set(B.QUICK["datasets"]) and {t[2] for t in quick} == {0}
    assert sorted({t[1] for t in quick if t[0] == "circle"}) == [round(x, 4) for x in np.linspace(0, 0.35, 8)]
    assert B.grid(datasets_=["torus"], seeds=[1], sigma_step=14) == [("torus", 0.0, 1), ("torus", 0.175, 1),
                                                                      ("torus", 0.35, 1)]


def test_methods_cover_the_protocol_and_default_follows_params():
    p = pipeline.Params()
    assert B.METHODS["default"][:2] == (p.distance, p.k) and B.METHODS["default"][-1] == p.symmetrize
    kinds = {(c[0], c[1], c[2]) for c in B.METHODS.values()}
    for k in (15, 100):
        assert ("effective_resistance", k, None) in kinds
        for t in (8, 64):
            assert ("diffusion", k, t) in kinds
    assert ("euclidean", None, None) in kinds and B.METHODS["le_k15_p2"] == ("laplacian_eigenmaps", 15, None, 2)


@pytest.fixture(scope="module")
def circle_task():
    return B.run_task("circle", 0.1, 0, n=N, d=10)


def test_task_rows_scores_and_reproducibility(circle_task):
    rows = {r["method"]: r for r in circle_task["rows"]}
    assert set(rows) == set(B.METHODS) | {"auto", "auto_m"}
    for r in rows.values():
        assert 0.0 <= r["score"] <= 1.0 and r["m_true"] == 1 and r["time_s"] >= 0
    # "default" is what pipeline.Params() runs, graph rule included
    p = pipeline.Params()
    assert rows["default"]["setting"] == "er_k100_mutual" if (p.k, p.symmetrize) == (100, "and") else True
    assert circle_task["candidates"][rows["default"]["setting"]]["symmetrize"] == p.symmetrize
    # the stored summaries reproduce the row scores
    c = circle_task["candidates"]["er_k15"]
    life = np.array(c["life1"])
    assert rows["er_k15"]["score"] == pytest.approx((life[0] - life[1]) / life[0] if len(life) > 1 else 1.0)
    # a clean-ish circle: the spectral methods see the loop
    assert rows["er_k15"]["score"] > 0.8 and rows["auto"]["m_pred"] == 1
    again = B.run_task("circle", 0.1, 0, n=N, d=10)
    assert [r["score"] for r in again["rows"]] == [r["score"] for r in circle_task["rows"]]


def _row(ds, method, sigma, seed, score, m_pred=1, m_true=1):
    return {"dataset": ds, "method": method, "sigma": sigma, "seed": seed, "score": score, "m_pred": m_pred,
            "m_true": m_true, "loops_true": m_true, "time_s": 1.0}


def test_auc_is_mean_over_sigma_of_seed_means():
    rows = [_row("circle", "x", 0.0, 0, 1.0), _row("circle", "x", 0.0, 1, 1.0),
            _row("circle", "x", 0.1, 0, 0.5), _row("circle", "x", 0.1, 1, 0.0),
            _row("circle", "x", 0.2, 0, 0.0, m_pred=0)]  # unequal seed counts per sigma
    (t,) = B.auc_table(rows)
    assert t["auc"] == pytest.approx((1.0 + 0.25 + 0.0) / 3)
    assert t["m_accuracy"] == pytest.approx(4 / 5) and t["n_sigma"] == 3 and t["seeds"] == "0 1"


def test_aggregate_writes_tables_and_plot(tmp_path, circle_task):
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    (tdir / B.task_filename("circle", 0.1, 0)).write_text(json.dumps(circle_task))
    B.aggregate(sorted(tdir.glob("*.json")), tmp_path, command="test")
    with open(tmp_path / "auc.csv") as fh:
        table = list(csv.DictReader(fh))
    assert {"dataset", "method", "auc", "m_accuracy", "time_s"} <= set(table[0])
    assert {r["method"] for r in table} == set(B.METHODS) | {"auto", "auto_m"}
    md = (tmp_path / "auc.md").read_text()
    assert "| circle |" in md and "published" in md
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "meta.json").read_text())["n_tasks"] == 1


def test_cli_task_and_aggregate(tmp_path, capsys):
    out = tmp_path / "tasks" / B.task_filename("blob", 0.3, 2)
    assert main(["benchmark", "--task", "blob", "0.3", "2", "--n", str(N), "--d", "10", "--out", str(out)]) == 0
    task = json.loads(out.read_text())
    assert task["sigma"] == 0.3 and task["seed"] == 2
    blob = {r["method"]: r for r in task["rows"]}
    assert all(r["score"] == float(r["m_pred"] == 0) for r in blob.values())
    assert main(["benchmark", "--aggregate", "--out", str(tmp_path)]) == 0
    assert "| blob |" in capsys.readouterr().out
    # the sphere through the command line, H1 only: its H1 check joins the tables
    sph = tmp_path / "tasks" / B.task_filename("sphere", 0.1, 0)
    assert main(["benchmark", "--task", "sphere", "0.1", "0", "--n", str(N), "--d", "10", "--h1-only",
                 "--out", str(sph)]) == 0
    assert json.loads(sph.read_text())["maxdim"] == 1
    assert main(["benchmark", "--aggregate", "--out", str(tmp_path)]) == 0
    assert "| sphere_h1 |" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["--task", "donut", "0.1", "0"],
    ["--task", "circle", "-0.1", "0"],
    ["--task", "circle", "abc", "0"],
    ["--aggregate"],                      # nothing to aggregate
    ["--quick", "--jobs", "0"],
    ["--datasets", "donut"],
])
def test_cli_bad_input_exits_2(tmp_path, argv, capsys):
    assert main(["benchmark", "--out", str(tmp_path / "o"), *argv]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "o" / "auc.csv").exists()


def test_cli_update_rejects_an_unknown_dataset(tmp_path, capsys, circle_task):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    path = tasks / B.task_filename("circle", 0.1, 0)
    path.write_text(json.dumps(circle_task))
    before = path.read_text()
    # a misspelt dataset would otherwise select no task file and only re-aggregate
    assert main(["benchmark", "--update", "--datasets", "circel", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'circel'" in capsys.readouterr().err
    assert path.read_text() == before and not (tmp_path / "auc.csv").exists()


def test_cli_list_prints_the_grid(tmp_path, capsys):
    assert main(["benchmark", "--quick", "--list", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(B.grid(quick=True)) and lines[-1].split()[1] == "0.0000"


def test_local_runner_parallel_equals_serial_and_resumes(tmp_path):
    tasks = [("blob", 0.35, 0)]
    serial = B.run_grid(tasks, tmp_path / "a", n=N, d=10, jobs=1, progress=False)
    parallel = B.run_grid(tasks, tmp_path / "b", n=N, d=10, jobs=2, progress=False)
    for s, p in zip(serial, parallel):
        rs, rp = json.loads(s.read_text())["rows"], json.loads(p.read_text())["rows"]
        assert [(r["method"], r["score"], r["m_pred"]) for r in rs] == [(r["method"], r["score"], r["m_pred"]) for r in rp]
    stamp = serial[0].stat().st_mtime_ns
    B.run_grid(tasks, tmp_path / "a", n=N, d=10, jobs=1, progress=False)  # done tasks are skipped
    assert serial[0].stat().st_mtime_ns == stamp


def test_loop_count_accuracy_where_the_best_fixed_method_detects():
    rows = []
    for sigma, (best, auto_m) in {0.0: (1.0, 1), 0.1: (0.9, 2), 0.2: (0.3, 0)}.items():
        rows.append(_row("circle", "er_k15", sigma, 0, best))
        rows.append(_row("circle", "euclidean", sigma, 0, 0.1))
        rows.append(_row("circle", "auto", sigma, 0, best, m_pred=auto_m))
    table = {t["method"]: t for t in B.auc_table(rows)}
    # er_k15 is best and scores > 0.5 at sigma 0 and 0.1; auto is right at 0 only
    assert table["auto"]["m_accuracy_detectable"] == pytest.approx(0.5)
    assert table["auto"]["m_accuracy"] == pytest.approx(1 / 3)
    # under the published scoring er_k15 clears 0.5 at sigma 0 only (and euclidean never)
    for r in rows:
        r["score_published"] = {"er_k15": 0.6 if r["sigma"] == 0.0 else 0.4, "euclidean": 0.1}.get(r["method"], 0.0)
    table = {t["method"]: t for t in B.auc_table(rows)}
    assert table["auto"]["m_accuracy_detectable_published"] == pytest.approx(1.0)
    assert table["auto"]["m_accuracy_detectable"] == pytest.approx(0.5)


def test_default_applies_the_pipelines_confirmation():
    assert B.CONFIRM == (evidence.CONFIRM_WITH[pipeline.Params().distance], pipeline.Params().k, pipeline.Params().t,
                         None, pipeline.Params().symmetrize)
    one = {"life1": [1.0, 0.1, 0.05], "thresh": 1.0}
    none = {"life1": list(np.linspace(0.1, 0.01, 10)), "thresh": 1.0}
    assert B._predicted_m(one) == 1 and B._predicted_m(one, confirm=one) == 1
    assert B._predicted_m(one, confirm=none) == 0 and B._predicted_m(none, confirm=one) == 0


def test_update_adds_only_missing_settings_and_reproduces_them(tmp_path, circle_task):
    path = tmp_path / "tasks" / B.task_filename("circle", 0.1, 0)
    path.parent.mkdir()
    confirm_key = "diff_k100_t8_mutual"
    assert confirm_key in circle_task["candidates"]
    old = json.loads(json.dumps(circle_task))
    for key in (confirm_key, "er_k15"):
        del old["candidates"][key]
    old["candidates"]["euclidean"]["life1"] = [9.0]  # kept as it is: not recomputed
    path.write_text(json.dumps(old))
    assert B.update_tasks([path]) == [path]
    new = json.loads(path.read_text())
    for key in (confirm_key, "er_k15"):
        assert new["candidates"][key]["life1"] == pytest.approx(circle_task["candidates"][key]["life1"])
    assert new["candidates"]["euclidean"]["life1"] == [9.0]
    assert B.update_tasks([path]) == []  # nothing missing any more


def test_sphere_h1_only_is_checked_for_false_loops_and_redone_when_h2_is_wanted(tmp_path, monkeypatch):
    tasks = [("sphere", 0.05, 0)]
    (path,) = B.run_grid(tasks, tmp_path, n=N, d=10, progress=False, h1_only=True)
    task = json.loads(path.read_text())
    assert task["maxdim"] == 1 and all("life2" not in c for c in task["candidates"].values())
    rows = task["rows"]
    # only the H1 check: rows "sphere_h1", scored like the blob (1 = the method's own rule saw no loop)
    assert {r["dataset"] for r in rows} == {"sphere_h1"}
    for r in rows:
        assert r["m_true"] == 0 and r["score"] == float(r["m_pred"] == 0)
    by = {r["method"]: r for r in rows}
    assert by["er_k15"]["m_pred"] == B.auto.detect_summary(task["candidates"]["er_k15"])["n_loops"]
    # S^2 has no H1 loop; auto must not report one (single settings may, at n = 150)
    assert by["auto"]["m_pred"] == 0 and by["auto"]["score"] == 1.0
    # the table lists the check after the sphere's own place
    assert [t["dataset"] for t in B.auc_table(rows)][0] == "sphere_h1"
    # an H1-only task is done for an H1-only run, but redone when H2 is wanted
    assert B._task_done(path, "sphere", h1_only=True) and not B._task_done(path, "sphere", h1_only=False)
    assert B._task_done(path, "circle", h1_only=False)
    seen = []
    monkeypatch.setattr(B, "_task_worker", lambda args: seen.append(args) or {"dataset": args[0], "sigma": args[1],
                                                                                 "seed": args[2], "wall_s": 0.0})
    B.run_grid(tasks, tmp_path, n=N, d=10, progress=False)
    assert [a[:3] for a in seen] == tasks and seen[0][5] is False


def _eff_ph_score(dgm, n_features):
    """Independent oracle: the published scoring written out from its definition (all-or-
    nothing death/birth > 1.25 filter, then the relative gap after the n-th lifetime)."""
    dgm = np.asarray(dgm, float).reshape(-1, 2)
    dgm = dgm[np.isfinite(dgm[:, 1])]
    if not (dgm[:, 1] / (dgm[:, 0] + 1e-10) > 1.25).any():
        dgm = dgm[:0]
    if n_features == 0:
        return 1 - _eff_ph_score(dgm, 1) if len(dgm) else 1.0
    life = np.sort(dgm[:, 1] - dgm[:, 0])[::-1]
    if len(life) == n_features:
        return 1.0
    if len(life) < n_features:
        return 0.0
    return (life[n_features - 1] - life[n_features]) / life[n_features - 1]


@pytest.mark.parametrize("dgm", [
    [[0.1, 1.0], [2.0, 2.4], [0.5, 0.55]],          # a loop and a long low-ratio feature
    [[0.1, 1.0], [0.2, 0.9], [2.0, 2.3], [1.0, 1.1]],  # two loops
    [[2.0, 2.4], [0.5, 0.55]],                      # nothing passes
    [[0.0, 0.3]],                                   # born at 0: always passes
    [],
])
def test_published_score_matches_the_published_definition(dgm):
    dgm = np.array(dgm, float).reshape(-1, 2)
    summ = B.auto.summarize({"dgms": [np.zeros((0, 2)), dgm], "thresh": 3.0}, maxdim=1)
    for m in (0, 1, 2):
        assert B._score_published(summ, 1, m) == pytest.approx(_eff_ph_score(dgm, m))
    del summ["all1"]  # a summary stored before the unfiltered lifetimes were kept
    assert np.isnan(B._score_published(summ, 1, 1))


def test_published_scoring_in_rows_and_comparison(circle_task):
    rows = {r["method"]: r for r in circle_task["rows"]}
    c = circle_task["candidates"]["er_k100"]
    assert rows["er_k100"]["score_published"] == pytest.approx(B._score_published(c, 1, 1))
    assert rows["er_k100"]["score_published"] <= rows["er_k100"]["score"] + 1e-12  # more features, never higher here
    table = B.auc_table(circle_task["rows"])
    text = B.comparison_table(table)
    er = next(line for line in text.splitlines() if "effective_resistance" in line)
    best = max(t["auc_published"] for t in table if t["method"] in ("er_k15", "er_k100"))
    assert f"{best:.2f}" in er and "0.88" in er


def test_update_recomputes_published_settings_without_unfiltered_lifetimes(tmp_path, circle_task):
    path = tmp_path / B.task_filename("circle", 0.1, 0)
    old = json.loads(json.dumps(circle_task))
    for key in ("er_k15", "diff_k15_t8"):
        del old["candidates"][key]["all1"]
    del old["candidates"]["le_k15_p2"]["all1"]  # not a published family: left alone
    path.write_text(json.dumps(old))
    assert B.update_tasks([path]) == [path]
    new = json.loads(path.read_text())
    for key in ("er_k15", "diff_k15_t8"):
        assert new["candidates"][key]["all1"] == pytest.approx(circle_task["candidates"][key]["all1"])
        assert new["candidates"][key]["time_s"] == old["candidates"][key]["time_s"]  # the original cost is kept
    assert "all1" not in new["candidates"]["le_k15_p2"]
    assert B.update_tasks([path]) == []


def test_update_selection_and_published_auc_over_the_runs_that_have_it():
    from pathlib import Path

    assert B._selected(Path("t/linked_circles_s0.1000_seed2.json"), ["linked_circles"], [2])
    assert not B._selected(Path("t/circle_s0.0000_seed0.json"), ["linked_circles"], None)
    assert B._selected(Path("t/circle_s0.0000_seed0.json"), None, [0]) and not B._selected(Path("t/notes.json"), None, None)
    rows = [_row("circle", "er_k15", s, seed, 1.0) for s in (0.0, 0.1) for seed in (0, 1)]
    for r in rows:  # seed 0 has the published score everywhere, seed 1 only at sigma 0
        r["score_published"] = {(0.0, 0): 0.8, (0.1, 0): 0.4, (0.0, 1): 0.6}.get((r["sigma"], r["seed"]), float("nan"))
    (t,) = B.auc_table(rows)
    assert t["auc_published"] == pytest.approx(((0.8 + 0.6) / 2 + 0.4) / 2) and t["n_runs_published"] == 3
    rows[1]["score_published"] = float("nan")  # sigma 0.1 then has no published score at all
    rows = [r for r in rows if not (r["sigma"] == 0.1 and r["seed"] == 0)] + [
        {**_row("circle", "er_k15", 0.1, 0, 1.0), "score_published": float("nan")}]
    assert np.isnan(B.auc_table(rows)[0]["auc_published"])


def test_a_killed_worker_stops_the_run_with_a_message_that_says_how_to_resume():
    # os._exit in a worker breaks the process pool, as the out-of-memory killer does
    import os

    with pytest.raises(InputError, match="fewer --jobs"):
        list(B._imap(os._exit, [1, 1], jobs=2))


def test_h2_tasks_run_with_as_many_jobs_as_fit_in_memory(caplog):
    sphere = [("sphere", 0.1, 0, 1000, 50, False, "x.json")] * 3
    gib = 2**30
    assert B._jobs_that_fit(sphere, 4, available=int(2.5 * B.H2_TASK_GIB) * gib) == 2
    assert "2 job(s) run instead of 4" in caplog.text
    assert B._jobs_that_fit(sphere, 4, available=gib) == 1
    # H1-only spheres, small n and other datasets are not limited
    assert B._jobs_that_fit([("sphere", 0.1, 0, 1000, 50, True, "x.json")], 4, available=gib) == 4
    assert B._jobs_that_fit([("sphere", 0.1, 0, 150, 10, False, "x.json")], 4, available=gib) == 4
    assert B._jobs_that_fit([("circle", 0.1, 0, 1000, 50, False, "x.json")], 4, available=gib) == 4


def test_task_resources_grow_with_h2_and_n():
    assert B.task_resources("circle") == {"mem_mb": 4000, "runtime": 120}
    assert B.task_resources("sphere", h1_only=True) == {"mem_mb": 4000, "runtime": 120}
    one, two = B.task_resources("sphere", 1000), B.task_resources("sphere", 2000)
    assert one["mem_mb"] > B.H2_TASK_GIB * 1024 and one["runtime"] > B.H2_TASK_MINUTES
    assert two["mem_mb"] - 2000 == 4 * (one["mem_mb"] - 2000) and two["runtime"] - 30 == 8 * (one["runtime"] - 30)


def test_the_grid_is_listed_without_an_output_folder(capsys):
    # --list writes nothing, yet --out was required
    from topoembed import cli

    assert cli.main(["benchmark", "--list", "--quick"]) == 0
    assert "blob 0.0000 0" in capsys.readouterr().out
