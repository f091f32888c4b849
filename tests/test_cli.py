import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topoembed import cli, datasets, stage_files

SPEC = "synthetic:circle?n=200&d=10&sigma=0.05&seed=0"


def _w(path, text):
    path.write_text(text)
    return path


def run_cli(*args):
    return cli.main([str(a) for a in args])


def test_run_end_to_end_contract(tmp_path, capsys):
    out = tmp_path / "res"
    assert run_cli("run", SPEC, "--out", out, "-q") == 0
    printed = capsys.readouterr().out
    assert "verdict       1 loop\n" in printed and "Confirmed: diffusion on the same graph" in printed and "time (s)" in printed
    assert sorted(p.name for p in out.iterdir()) == ["cells.csv", "diagrams.npz", "report.html", "summary.json"]
    s = json.loads((out / "summary.json").read_text())
    assert set(s) >= {"version", "input", "n_points", "params", "distance", "diagrams", "detection", "loops", "timings_s"}
    assert s["input"] == SPEC and s["n_points"] == 200
    # 200 points: a quarter of them as k (the default k = 100 is for 400 points or more), said as a note
    assert s["params"]["k"] == 50 and s["params"]["symmetrize"] == "and" and s["params"]["distance"] == "effective_resistance"
    assert s["notes"][0].startswith("k = 50: a quarter of the 200 points") and "note          k = 50" in printed
    assert set(s["detection"]) == {"n_loops", "scores", "score", "confirmation", "rule", "alpha", "p_values", "significant",
                                  "gap"}
    assert s["detection"]["rule"] == "evidence" and len(s["detection"]["p_values"]) == s["detection"]["n_loops"]
    assert s["detection"]["confirmation"]["distance"] == "diffusion" and s["detection"]["confirmation"]["n_loops"] == 1
    assert set(s["detection"]["scores"]) == {"1", "2", "3", "4", "5"}
    assert s["detection"]["n_loops"] == len(s["loops"]) == 1
    assert set(s["loops"][0]) >= {"birth", "death", "persistence", "birth_edge", "cycle", "n_on_loop"}
    assert len(s["loops"][0]["cycle"]) >= 3 and 0 < s["loops"][0]["n_on_loop"] <= 200
    cells = np.genfromtxt(out / "cells.csv", delimiter=",", names=True)
    assert cells.dtype.names == ("id", "phase_1", "phase_confidence_1", "loop_distance_1", "on_loop_1",
                                 "phase_missing_1") and len(cells) == 200
    why = pd.read_csv(out / "cells.csv", keep_default_na=False)["phase_missing_1"]
    assert ((why == "") == np.isfinite(cells["phase_1"])).all()
    conf = cells["phase_confidence_1"]
    assert np.all((conf[np.isfinite(conf)] >= 0) & (conf[np.isfinite(conf)] <= 1))
    assert cells["on_loop_1"].sum() == s["loops"][0]["n_on_loop"]
    assert np.all((cells["phase_1"] >= 0) & (cells["phase_1"] < 2 * np.pi))
    assert all(len(bar) == 2 for bar in s["diagrams"]["H1"])
    assert s["diagrams"]["H0"][-1][1] is None
    assert set(s["timings_s"]) >= {"graph", "distances", "homology", "detection", "total"}
    with np.load(out / "diagrams.npz") as z:
        np.testing.assert_allclose(z["H1"][:, 0], [b for b, _ in s["diagrams"]["H1"]])
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7 and "<table>" in html  # + θ views (first screen, loop section), θ histogram


def test_run_on_files(tmp_path):
    X = datasets.make("circle", n=150, d=4, sigma=0.02, seed=1).X
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",", header="a,b,c,d", comments="")
    np.savetxt(tmp_path / "x.tsv", X, delimiter="\t")
    results = []
    for name in ["x.npy", "x.csv", "x.tsv"]:
        out = tmp_path / ("out_" + name)
        assert run_cli("run", tmp_path / name, "--out", out, "--k", 10, "-q") == 0
        results.append(json.loads((out / "summary.json").read_text())["diagrams"])
    assert results[0] == results[1] == results[2]


def test_run_says_when_a_loop_is_not_confirmed(tmp_path, capsys):
    # Gaussian noise on which effective resistance alone sees a loop (see test_pipeline)
    blob = "synthetic:blob?n=1000&d=50&sigma=0.15&seed=0"
    assert run_cli("run", blob, "--out", tmp_path / "b", "--localize", 0, "-q") == 0
    printed = capsys.readouterr().out
    note = ("Not confirmed: effective_resistance proposes 1 loop(s) (s = 0.85), but diffusion on the same graph "
            "finds 0, so the verdict is no loop")
    assert "verdict       No loop\n" in printed and note in printed
    # the HTML report words it the same way (one source: report.verdict_notes)
    assert note in (tmp_path / "b" / "report.html").read_text()
    assert run_cli("run", blob, "--out", tmp_path / "c", "--localize", 0, "--confirm", 0, "-q") == 0
    # without the second distance the noise loop is reported (p = 0.017), but nothing supports it
    printed = capsys.readouterr().out
    assert "verdict       1 possible loop (not supported)\n" in printed and "no prevalence across" in printed


def _stage_chain(tmp_path, spec, *options):
    f = {name: tmp_path / name for name in ["g.npz", "d.npz", "h.npz", "det.json", "l.npz"]}
    assert run_cli("graph", spec, "--out", f["g.npz"], *options) == 0
    assert run_cli("distances", spec, "--graph", f["g.npz"], "--out", f["d.npz"]) == 0
    assert run_cli("homology", f["d.npz"], "--out", f["h.npz"]) == 0
    assert run_cli("detect", f["h.npz"], "--graph", f["g.npz"], "--distances", f["d.npz"], "--out", f["det.json"]) == 0
    files = ["--graph", f["g.npz"], "--distances", f["d.npz"], "--diagrams", f["h.npz"], "--detection", f["det.json"]]
    assert run_cli("localize", spec, *files, "--out", f["l.npz"]) == 0
    assert run_cli("report", spec, *files, "--loops", f["l.npz"], "--out", tmp_path / "staged") == 0
    return f, files


def test_stage_commands_give_what_run_gives(tmp_path):
    # graph -> distances -> homology -> detect (with the confirmation) -> localize -> report: the
    # settings travel in the files (--k only at the first step), and the result is run's
    f, _ = _stage_chain(tmp_path, SPEC, "--k", 12)
    assert run_cli("run", SPEC, "--k", 12, "--out", tmp_path / "r", "-q") == 0
    staged = json.loads((tmp_path / "staged" / "summary.json").read_text())
    full = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert staged["detection"]["confirmation"]["n_loops"] == staged["detection"]["n_loops"] == 1
    assert set(staged["timings_s"]) == set(full["timings_s"])
    staged.pop("timings_s"), full.pop("timings_s")
    assert staged == full
    assert (tmp_path / "staged" / "cells.csv").read_text() == (tmp_path / "r" / "cells.csv").read_text()
    with np.load(tmp_path / "staged" / "diagrams.npz") as a, np.load(tmp_path / "r" / "diagrams.npz") as b:
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_stage_commands_keep_run_s_warnings_on_a_graph_that_falls_apart(tmp_path, capsys):
    # a mutual k = 10 graph of clusters: 17 components. The staged summary lacked run's warning about them
    spec = "synthetic:circle_in_clusters?n=600&d=5&seed=0"
    _stage_chain(tmp_path, spec, "--k", 10)
    assert run_cli("run", spec, "--k", 10, "--out", tmp_path / "r", "-q") == 0
    staged = json.loads((tmp_path / "staged" / "summary.json").read_text())
    full = json.loads((tmp_path / "r" / "summary.json").read_text())
    falls_apart = [w for w in full["warnings"] if "17 connected components" in w or "infinite bars" in w]
    assert len(falls_apart) == 1 and "each component is an H0 bar that never dies" in falls_apart[0]
    assert staged["warnings"] == full["warnings"]
    assert "localize: 1 loop(s), loop 1: " in capsys.readouterr().out  # no stray comma


def test_stage_commands_and_te_pp_neighbors_warn_about_repeated_points_as_run_does(tmp_path, caplog):
    # 40 of 250 points one point (cells with no counts in the genes used): every way in says so
    X = datasets.make("circle", n=250, d=5, sigma=0.1, seed=0).X
    X[:40] = X[0]
    path = tmp_path / "x.npy"
    np.save(path, X)
    _stage_chain(tmp_path, str(path), "--k", 30)
    assert run_cli("run", path, "--k", 30, "--out", tmp_path / "r", "-q") == 0
    staged = json.loads((tmp_path / "staged" / "summary.json").read_text())
    full = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert any(w.startswith("40 of the 250 points are one point") for w in full["warnings"])
    assert staged["warnings"] == full["warnings"]
    import anndata

    import topoembed as te

    te.pp.neighbors(anndata.AnnData(X), k=30)
    assert "40 of the 250 points are one point" in caplog.text


def test_stage_commands_make_run_s_prevalence_check(tmp_path, capsys):
    # Gaussian noise, no loop: `localize` checks the longest H1 feature's recurrence as `run`
    # does (found in few subsamples: still no loop), and `report` writes the same summary
    blob = "synthetic:blob?n=400&d=50&sigma=0&seed=0"
    f = {name: tmp_path / name for name in ["g.npz", "d.npz", "h.npz", "det.json", "l.npz"]}
    assert run_cli("graph", blob, "--out", f["g.npz"]) == 0
    assert run_cli("distances", blob, "--graph", f["g.npz"], "--out", f["d.npz"]) == 0
    assert run_cli("homology", f["d.npz"], "--out", f["h.npz"]) == 0
    assert run_cli("detect", f["h.npz"], "--graph", f["g.npz"], "--distances", f["d.npz"], "--out", f["det.json"]) == 0
    files = ["--graph", f["g.npz"], "--distances", f["d.npz"], "--diagrams", f["h.npz"], "--detection", f["det.json"]]
    assert run_cli("localize", blob, *files, "--jobs", 1, "--out", f["l.npz"]) == 0
    assert run_cli("report", blob, *files, "--loops", f["l.npz"], "--out", tmp_path / "staged") == 0
    assert run_cli("run", blob, "--jobs", 1, "--out", tmp_path / "r") == 0
    printed = capsys.readouterr().out
    staged = json.loads((tmp_path / "staged" / "summary.json").read_text())
    full = json.loads((tmp_path / "r" / "summary.json").read_text())
    check = full["detection"]["prevalence_check"]
    assert full["detection"]["n_loops"] == 0 and check["subsample_size"] == 280 and check["prevalence"][0] < 0.5
    assert "Checked for a hidden loop: the longest H1 feature" in printed
    assert set(staged["timings_s"]) == set(full["timings_s"]) and "prevalence_check" in full["timings_s"]
    staged.pop("timings_s"), full.pop("timings_s")
    assert staged == full
    assert (tmp_path / "staged" / "cells.csv").exists() == (tmp_path / "r" / "cells.csv").exists()


def test_detect_looks_for_the_surface_on_the_distances_it_is_given(tmp_path):
    torus = "synthetic:torus?n=800&d=50&sigma=0.05&seed=1"
    f = {name: tmp_path / name for name in ["g.npz", "d.npz", "h.npz"]}
    assert run_cli("graph", torus, "--out", f["g.npz"]) == 0
    assert run_cli("distances", torus, "--graph", f["g.npz"], "--out", f["d.npz"]) == 0
    assert run_cli("homology", f["d.npz"], "--out", f["h.npz"]) == 0
    common = [f["h.npz"], "--graph", f["g.npz"]]
    assert run_cli("detect", *common, "--distances", f["d.npz"], "--out", tmp_path / "with.json") == 0
    assert run_cli("detect", *common, "--out", tmp_path / "without.json") == 0
    with_d = json.loads((tmp_path / "with.json").read_text())["detection"]
    without = json.loads((tmp_path / "without.json").read_text())["detection"]
    assert with_d["n_loops"] == 2 and with_d["surface_loops"]["previous"] == without["n_loops"] < 2
    # distances of other points are refused
    assert run_cli("distances", SPEC, "--out", tmp_path / "other.npz") == 0
    assert run_cli("detect", *common, "--distances", tmp_path / "other.npz", "--out", tmp_path / "x.json") == 2
    assert not (tmp_path / "x.json").exists()


def test_stage_commands_refuse_inputs_made_otherwise(tmp_path, capsys):
    f, files = _stage_chain(tmp_path, SPEC, "--k", 12)
    other = SPEC.replace("seed=0", "seed=1")
    capsys.readouterr()
    assert run_cli("distances", SPEC, "--graph", f["g.npz"], "--k", 15, "--out", tmp_path / "x.npz") == 2
    assert "made by `topoembed graph` with --k 12 (here 15)" in capsys.readouterr().err
    assert run_cli("distances", other, "--graph", f["g.npz"], "--out", tmp_path / "x.npz") == 2
    assert "made from other points" in capsys.readouterr().err
    assert run_cli("detect", f["h.npz"], "--distance", "diffusion", "--out", tmp_path / "x.json") == 2
    assert "--distance effective_resistance (here diffusion)" in capsys.readouterr().err
    assert run_cli("report", SPEC, *files, "--loops", f["l.npz"], "--theta-filtration", 0.3, "--out",
                   tmp_path / "x") == 2
    assert "`topoembed localize` with --theta-filtration" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.npz").exists()
    # the same option given again is accepted; a bare .npy matrix still works (no record to check)
    assert run_cli("distances", SPEC, "--graph", f["g.npz"], "--k", 12, "--out", tmp_path / "d.npy") == 0
    assert run_cli("homology", tmp_path / "d.npy", "--out", tmp_path / "h2.npz") == 0


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_path_that_cannot_be_made_is_refused_before_any_work(tmp_path, capsys):
    # as root, permissions allowed /proc/x, and the run failed with a traceback after all its work
    assert run_cli("run", "synthetic:circle?n=150&d=3", "--k", 20, "--out", "/proc/x") == 2
    err = capsys.readouterr().err
    assert "--out '/proc/x' cannot be written" in err and "Traceback" not in err


def test_a_rerun_into_the_same_folder_leaves_none_of_the_earlier_run_s_files(tmp_path, caplog):
    # an earlier run's embedding.npy sat beside a later run's "No loop", as if it were its embedding
    out = tmp_path / "o"
    (tmp_path / "o").mkdir()
    (out / "embedding.npy").write_bytes(b"from an earlier run")
    (out / "notes.txt").write_text("the user's own")
    with caplog.at_level("WARNING"):
        assert run_cli("run", "synthetic:blob?n=150&d=4", "--k", 20, "--out", out, "-q") == 0
    assert not (out / "embedding.npy").exists() and (out / "notes.txt").read_text() == "the user's own"
    assert "removed the earlier embedding.npy, which this run does not write" in caplog.text
    assert "replaced the earlier embedding.npy" not in caplog.text  # the files replaced and removed apart
    assert (out / "summary.json").exists() and (out / "cells.csv").exists()


def test_a_fixed_loop_count_is_reported_as_fixed(tmp_path):
    # the report said the count "was decided by the rule evidence" when --n-loops fixed it
    assert run_cli("run", "synthetic:circle?n=200&d=5&sigma=0.05", "--k", 20, "--n-loops", 2, "--out",
                   tmp_path / "o", "-q") == 0
    page = (tmp_path / "o" / "report.html").read_text()
    assert "was fixed at 2 (--n-loops 2), not decided by a rule; only 1 H1 feature(s) pass" in page
    assert "was decided by the rule" not in page


def test_options_that_cannot_apply_are_said(tmp_path, capsys, caplog):
    spec = "synthetic:circle?n=200&d=5&sigma=0.05"
    assert run_cli("run", spec, "--use-rep", "X_pca", "--out", tmp_path / "a") == 2  # was silently ignored
    assert "--use-rep 'X_pca' only applies to AnnData input (.h5ad" in capsys.readouterr().err
    with caplog.at_level("WARNING"):
        assert run_cli("run", spec, "--k", 20, "--subsample", 5000, "--out", tmp_path / "b", "-q") == 0
    assert "--subsample 5000 is at least the 200 points: all of them are analysed" in caplog.text


def test_jobs_must_be_a_count(capsys):
    for bad in ("0", "-3"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["run", "--jobs", bad])
        assert "must be 'auto' or an integer >= 1" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["run", "--n-loops", "0"]).n_loops == 0  # a count of loops may be 0


def test_v_and_q_work_after_any_subcommand(tmp_path):
    # `run -v` was "unrecognized arguments: -v"; `embed -q` was refused and `-q embed` still printed its epochs
    assert cli.build_parser().parse_args(["run", "-v", "-q"]).verbose_sub == 1
    assert cli.build_parser().parse_args(["graph", "-q", "--out", "g.npz"]).quiet
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-m", "topoembed", "embed", "synthetic:circle?n=120&d=4", "--n-epochs", "2",
                          "--out", str(tmp_path / "e.npy"), "-q"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "loss" not in out.stdout + out.stderr, out.stderr[-500:]


def test_distance_auto_says_what_it_chose(tmp_path, capsys):
    # the table and report showed the chosen distance as if the user had picked it
    assert run_cli("run", "synthetic:circle?n=300&d=10&sigma=0.1", "--distance", "auto", "--out", tmp_path / "a") == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    printed = capsys.readouterr().out
    assert f"chosen by --distance auto: setting {s['auto']['key']}" in printed
    assert f"the setting {s['auto']['key']} that --distance auto chose" in (tmp_path / "a" / "report.html").read_text()


def test_a_run_without_a_loop_writes_cells_csv_saying_so(tmp_path, capsys):
    # the README lists cells.csv among a run's outputs; it was missing where no loop was found
    out = tmp_path / "blob"
    assert run_cli("run", "synthetic:blob?n=150&d=5&seed=0", "--k", 20, "--out", out) == 0
    assert "cells.csv" in capsys.readouterr().out
    cells = pd.read_csv(out / "cells.csv", keep_default_na=False)
    assert list(cells.columns) == ["id", "phase_1", "phase_confidence_1", "loop_distance_1", "on_loop_1",
                                   "phase_missing_1"]
    assert len(cells) == 150 and (cells["phase_missing_1"] == "no loop found").all() and cells["on_loop_1"].sum() == 0


def test_stages_above_the_ensemble_size_warn_and_refuse_what_they_cannot_hold(tmp_path, capsys, caplog):
    """The stages are one run on all points: above 1,000 points `run` makes an ensemble instead
    (a warning, kept in the stage file), and a distance matrix above --max-points is refused
    before any work (before, the ensemble's 700-point subsamples were checked, and 26,625 IPC
    cells started a dense eigendecomposition of 11 GB)."""
    spec = "synthetic:circle?n=1200&d=5&sigma=0.05&seed=0"
    with caplog.at_level("WARNING"):
        assert run_cli("graph", spec, "--k", 10, "--out", tmp_path / "g.npz") == 0
    assert "analyse all 1200 points in one run" in caplog.text
    rec = stage_files.read_stage(tmp_path / "g.npz", "graph", "topoembed graph")[1]
    assert any("ensemble of subsamples" in w for w in rec["warnings"])
    caplog.clear()
    with caplog.at_level("WARNING"):  # distances that build their own graph say it once, and keep it
        assert run_cli("distances", spec, "--k", 10, "--out", tmp_path / "own.npz") == 0
    assert caplog.text.count("analyse all 1200 points in one run") == 1
    assert any("ensemble of subsamples" in w for w in stage_files.read_stage(tmp_path / "own.npz", "d", "x")[1]["warnings"])
    capsys.readouterr()
    assert run_cli("distances", spec, "--graph", tmp_path / "g.npz", "--max-points", 1100,
                   "--out", tmp_path / "d.npz") == 2
    err = capsys.readouterr().err
    assert "exceed the limit of 1100 points" in err and "topoembed run" in err
    assert not (tmp_path / "d.npz").exists()


def test_detect_without_graph_says_it_is_unconfirmed(tmp_path, caplog):
    f, _ = _stage_chain(tmp_path, SPEC, "--k", 12)
    assert run_cli("detect", f["h.npz"], "--out", tmp_path / "j.json") == 0
    assert "not confirmed by the other spectral distance" in caplog.text
    doc = json.loads((tmp_path / "j.json").read_text())
    assert doc["params"]["confirm"] is False and "confirmation" not in doc["detection"]


@pytest.mark.parametrize("make_input,extra,message", [
    (lambda p: p / "missing.npy", [], "does not exist"),
    (lambda p: _w(p / "x.txtx", "1 2"), [], "unsupported file type"),
    (lambda p: _w(p / "bad.csv", "a,b\n1,x\n2,3\n"), [], "column 2 ('b') holds text"),
    (lambda p: np.save(p / "nan.npy", np.r_[np.random.rand(20, 3), [[np.nan] * 3]]) or p / "nan.npy", [], "NaN"),
    (lambda p: np.save(p / "inf.npy", np.r_[np.random.rand(20, 3), [[np.inf] * 3]]) or p / "inf.npy", [], "infinite"),
    (lambda p: np.save(p / "few.npy", np.random.rand(10, 3)) or p / "few.npy", ["--k", "15"], "smaller than the number of points"),
    (lambda p: np.save(p / "ok.npy", np.random.rand(30, 3)) or p / "ok.npy", ["--k", "0"], "positive integer"),
    (lambda p: np.save(p / "ok.npy", np.random.rand(30, 3)) or p / "ok.npy", ["--use-rep", "X_pca"], "only applies to AnnData input (.h5ad"),
    (lambda p: _w(p / "x.h5ad", "not hdf5"), [], "could not be read as an .h5ad"),
    (lambda p: "synthetic:square", [], "unknown synthetic shape"),
])
def test_bad_inputs_fail_cleanly_without_outputs(tmp_path, capsys, make_input, extra, message):
    src = make_input(tmp_path)
    out = tmp_path / "out"
    code = run_cli("run", src, "--out", out, "-q", *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert not out.exists()


def test_failure_midway_leaves_no_file(tmp_path, monkeypatch):
    from topoembed import report

    def boom(*a, **k):
        raise RuntimeError("report failed")

    monkeypatch.setattr(report, "render_html", boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_cli("run", SPEC, "--out", out, "-q")
    assert not out.exists() or list(out.iterdir()) == []


def test_bad_choice_is_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        run_cli("run", SPEC, "--distance", "manhattan", "--out", tmp_path / "o")
    assert exc.value.code == 2


def test_console_script_demo(tmp_path):
    """`topoembed run` with no input runs the built-in demo (installed entry point)."""
    proc = subprocess.run([sys.executable, "-m", "topoembed", "run", "--out", str(tmp_path / "demo"), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verdict       1 loop\n" in proc.stdout


@pytest.mark.torch
def test_run_with_embedding_and_embed_command(tmp_path, capsys):
    out = tmp_path / "e"
    assert run_cli("run", SPEC, "--k", 30, "--embed", "infonce", "--n-epochs", 15, "--out", out, "-q") == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["embedding"]["loss"] == "infonce" and s["embedding"]["device"] == "cpu"
    assert s["embedding"]["verdict"] in {"the embedding shows the loop", "the embedding hides the loop",
                                         "the embedding shows a loop the data does not support"}
    # its epochs and its time are recorded (they were not), and the total counts the embedding
    t = s["timings_s"]
    assert s["embedding"]["n_epochs"] == 15 and list(t)[-2:] == ["embedding", "total"]
    assert t["total"] >= t["embedding"] > 0
    Y = np.load(out / "embedding.npy")
    assert Y.shape == (200, 2)
    assert "Embedding" in (out / "report.html").read_text()
    assert run_cli("embed", SPEC, "--loss", "neg", "--n-epochs", 5, "--device", "cpu", "--out", tmp_path / "y.npy") == 0
    assert np.load(tmp_path / "y.npy").shape == (200, 2)
    code = run_cli("run", SPEC, "--embed", "sketchmap", "--subsample", 100, "--k", 10, "--out", tmp_path / "bad", "-q")
    assert code == 2 and not (tmp_path / "bad").exists()
    assert run_cli("embed", SPEC, "--n-components", 0, "--out", tmp_path / "z.npy") == 2
    # the spectrum position reaches the estimator: s = 1 differs from the default s = 0
    assert run_cli("embed", SPEC, "--loss", "neg", "--spectrum", 1, "--n-epochs", 5, "--device", "cpu",
                   "--out", tmp_path / "y1.npy") == 0
    assert not np.allclose(np.load(tmp_path / "y1.npy"), np.load(tmp_path / "y.npy"))
    assert run_cli("embed", SPEC, "--loss", "triplet", "--spectrum", 1, "--out", tmp_path / "t.npy") == 2
    assert not (tmp_path / "t.npy").exists()


def test_run_whole_dataset_as_an_ensemble(tmp_path, capsys):
    X = datasets.make("circle", n=900, d=10, sigma=0.1, seed=0).X
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "res"
    assert run_cli("run", tmp_path / "x.npy", "--out", out, "-q", "--k", 30, "--symmetrize", "or",
                   "--n-subsamples", 3, "--subsample-size", 300, "--jobs", 1, "--early-stop", 0) == 0
    printed = capsys.readouterr().out
    assert "Whole dataset: 3 random subsamples of 300 of the 900 points" in printed
    assert "loop 1 in 3 of 3 (prevalence 1.00)" in printed
    s = json.loads((out / "summary.json").read_text())
    assert s["n_input"] == 900 and s["n_points"] == 300
    assert s["ensemble"]["n_subsamples"] == 3 and s["loops"][0]["prevalence"] == 1.0
    cells = np.genfromtxt(out / "cells.csv", delimiter=",", names=True)
    assert len(cells) == 900 and "phase_spread_1" in cells.dtype.names and np.isfinite(cells["phase_1"]).all()
    assert "prevalence (share of subsamples)" in (out / "report.html").read_text()
    with pytest.raises(SystemExit):  # argparse: not a number
        run_cli("run", tmp_path / "x.npy", "--out", tmp_path / "bad", "--n-subsamples", "many")
    assert run_cli("run", tmp_path / "x.npy", "--out", tmp_path / "bad", "--n-subsamples", 3, "--subsample", 300) == 2
    assert not (tmp_path / "bad").exists()


def test_csv_index_column_is_detected_and_can_be_kept(tmp_path):
    import pandas as pd

    from topoembed import io

    X = np.random.default_rng(0).normal(size=(20, 3))
    pd.DataFrame(X).to_csv(tmp_path / "with_index.csv")  # pandas' default: an unnamed index column
    np.savetxt(tmp_path / "counting.csv", np.c_[np.arange(20), X], delimiter=",")
    pd.DataFrame(X).to_csv(tmp_path / "plain.csv", index=False)
    for name in ("with_index.csv", "counting.csv", "plain.csv"):
        got, _ = io.load_points(tmp_path / name)
        np.testing.assert_allclose(got, X, err_msg=name)
    kept, _ = io.load_points(tmp_path / "counting.csv", index_col=False)
    assert kept.shape == (20, 4)
    forced, _ = io.load_points(tmp_path / "plain.csv", index_col=True)
    np.testing.assert_allclose(forced, X[:, 1:])


def test_unwritable_output_fails_before_any_work(tmp_path, capsys):
    import time

    (tmp_path / "afile").write_text("")
    t0 = time.perf_counter()
    assert run_cli("run", "synthetic:circle?n=300&d=5", "--out", tmp_path / "afile" / "sub", "-q", "--k", 20) == 2
    assert time.perf_counter() - t0 < 5  # refused before the analysis
    assert "is a file, not a folder" in capsys.readouterr().err
    assert run_cli("graph", "synthetic:circle?n=50&d=5", "--out", tmp_path, "--k", 5) == 2  # a folder, not a file
    assert "is a folder" in capsys.readouterr().err


def test_ctrl_c_ends_with_one_line(monkeypatch, tmp_path, capsys):
    from topoembed import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_graph", interrupted)
    out = tmp_path / "never.npz"
    assert cli.main(["graph", "synthetic:circle?n=50&d=5", "--out", str(out), "--k", "5"]) == 130
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "interrupted" in err and not out.exists()


def test_every_subcommand_has_help():
    """A parser that cannot be built (two options with one name) fails every command."""
    parser = cli.build_parser()
    names = list(parser._subparsers._group_actions[0].choices)
    assert {"run", "graph", "distances", "homology", "detect", "embed"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0


def test_same_seed_gives_the_same_summary_with_1_and_2_blas_threads(tmp_path):
    import os

    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        out = tmp_path / f"t{threads}"
        subprocess.run([sys.executable, "-m", "topoembed", "run", "synthetic:circle?n=400&d=10&sigma=0.2&seed=3",
                        "--k", "40", "--out", str(out), "-q"], env=env, check=True, capture_output=True)
        s = json.loads((out / "summary.json").read_text())
        s.pop("timings_s")
        outs.append((json.dumps(s, sort_keys=True), (out / "cells.csv").read_bytes()))
    assert outs[0] == outs[1]


def _openblas_kernels_forceable() -> str | None:
    """Why OPENBLAS_CORETYPE cannot pick the Haswell and SkylakeX kernels here (None if it can)."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        return f"OpenBLAS's x86 kernels need an x86-64 CPU ({platform.machine()})"
    if "openblas" not in json.dumps(np.show_config(mode="dicts")).lower():
        return "numpy's BLAS is not OpenBLAS"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if not ("avx2" in flags and "avx512f" in flags):
        return "the SkylakeX kernel needs a CPU with AVX-512"
    return None


@pytest.mark.slow
def test_same_seed_gives_the_same_phase_under_two_openblas_kernels(tmp_path, ipc_path):
    """Two machines round sums differently (OpenBLAS picks its kernel by the CPU). 1,000 IPC
    cells under the Haswell and SkylakeX kernels: the same summary and phases. The phase had
    turned by 0.19 rad (θ = 0 at the cycle walk's start, whose direction the rounding decided)."""
    import os

    import anndata

    why = _openblas_kernels_forceable()
    if why:
        pytest.skip(why)
    a = anndata.read_h5ad(ipc_path)
    idx = np.sort(np.random.default_rng(0).choice(a.n_obs, 1000, replace=False))
    np.save(tmp_path / "x.npy", np.asarray(a.obsm["X_scVI"], float)[idx])
    summaries, cells = [], []
    for kernel in ("Haswell", "SkylakeX"):
        out = tmp_path / kernel
        subprocess.run([sys.executable, "-m", "topoembed", "run", str(tmp_path / "x.npy"), "--out", str(out), "-q"],
                       env={**os.environ, "OPENBLAS_CORETYPE": kernel}, check=True, capture_output=True)
        s = json.loads((out / "summary.json").read_text())
        s.pop("timings_s")
        summaries.append(s)
        cells.append(pd.read_csv(out / "cells.csv"))
    _assert_same_up_to_rounding(summaries[0], summaries[1])
    pd.testing.assert_frame_equal(cells[0], cells[1], check_exact=False, rtol=1e-9, atol=1e-9)


def _assert_same_up_to_rounding(a, b, path="summary"):
    """Equal JSON trees, floats to 1e-9 (the kernels round the last bits of sums differently)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), path
        for key in a:
            _assert_same_up_to_rounding(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_up_to_rounding(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
def test_killed_run_leaves_no_output_and_a_rerun_finishes(tmp_path, sig):
    """SIGTERM or SIGKILL at several moments of `topoembed run`: no final output file exists
    afterwards (SIGTERM: nothing at all), and the same command then finishes."""
    import signal
    import time

    np.save(tmp_path / "x.npy", datasets.make("circle", n=1000, d=20, sigma=0.2, seed=0).X)
    cmd = [sys.executable, "-m", "topoembed", "run", str(tmp_path / "x.npy"), "--out", str(tmp_path / "res"), "-q"]
    finals = ("summary.json", "diagrams.npz", "report.html", "cells.csv")
    for delay in (1.0, 3.0, 5.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is not None:
            break  # finished before the signal: nothing to check at this moment
        proc.send_signal(getattr(signal, f"SIG{sig}"))
        proc.wait(timeout=120)
        res = tmp_path / "res"
        present = [f for f in finals if (res / f).exists()]
        if len(present) == len(finals):
            break  # the signal came after the commit (the interpreter was shutting down): the whole set
        assert not present, f"partial output after SIG{sig} at {delay} s: {present}"
        if sig == "TERM":  # caught once the command line is up (before that, Python's default ends it)
            assert not res.exists()
            assert proc.returncode == -signal.SIGTERM or b"interrupted" in proc.stderr.read()
    done = subprocess.run(cmd, capture_output=True)
    assert done.returncode == 0 and all((tmp_path / "res" / f).exists() for f in finals)


def test_help_is_fast_and_loss_names_agree():
    heavy = ["torch", "matplotlib", "sklearn", "scipy.optimize", "scipy.sparse", "anndata", "scanpy"]
    out = subprocess.run([sys.executable, "-c", "import sys; from topoembed import cli; cli.build_parser(); "
                          f"print([m for m in {heavy!r} if m in sys.modules])"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"  # building the parser imports none of the heavy packages
    import topoembed as te

    assert {"pp", "tl", "pl"} <= set(dir(te))
    pytest.importorskip("torch", reason="PyTorch is not installed: the embeddings' loss names are not checked")
    from topoembed import _losses, embed

    assert set(_losses.LOSS_NAMES) == set(embed.LOSSES)


def test_progress_is_one_plain_line_per_stage_off_a_terminal(tmp_path):
    # stderr is a pipe here, as in a cluster job's log: no tqdm redraws, one line per stage
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "topoembed", "run", SPEC, "--k", "12", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("topoembed ") and "/5: " in ln]
    assert [ln.split(": ")[1] for ln in lines] == ["graph", "distances", "homology", "detection", "localization"]
    assert lines[0].startswith("topoembed 1/5: graph: ") and "INFO" not in res.stderr  # plain lines, no logger names
    assert "\r" not in res.stderr and "it/s" not in res.stderr
    quiet = subprocess.run([sys.executable, "-m", "topoembed", "run", SPEC, "--k", "12", "-q", "--out",
                            str(tmp_path / "q")], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "/5: " not in quiet.stderr


def test_without_torch_the_loops_run_and_the_embedding_says_what_to_install(tmp_path):
    # torch is the optional `embed` extra: block its import in a fresh interpreter
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name="torch")
sys.meta_path.insert(0, Block())
import importlib.util
importlib.util.find_spec = lambda name, *a: None if name == "torch" else orig(name, *a)
from topoembed import cli
rc_run = cli.main(["run", {SPEC!r}, "--k", "12", "--out", {str(tmp_path / "loops")!r}, "-q"])
rc_emb = cli.main(["run", {SPEC!r}, "--k", "12", "--embed", "infonce", "--out", {str(tmp_path / "emb")!r}, "-q"])
print("codes", rc_run, rc_emb)
"""
    code = code.replace("import importlib.util\n", "import importlib.util\norig = importlib.util.find_spec\n", 1)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "codes 0 2" in res.stdout, res.stderr[-2000:]
    assert "download.pytorch.org/whl/cpu" in res.stderr and not (tmp_path / "emb").exists()
    assert (tmp_path / "loops" / "summary.json").exists()


def _chain(folder, points, rep=(), graph_opts=(), distance_opts=()):
    """The README's staged chain on ``points``: ``rep`` (--use-rep KEY) goes to every step that reads
    the points, ``graph_opts`` to the graph stage, ``distance_opts`` to the distances stage."""
    f = {k: str(folder / v) for k, v in dict(g="g.npz", D="D.npz", H="H.npz", det="det.json", L="L.npz").items()}
    F = ["--graph", f["g"], "--distances", f["D"], "--diagrams", f["H"], "--detection", f["det"]]
    for argv in (["graph", points, *rep, *graph_opts, "--out", f["g"]],
                 ["distances", points, *rep, *distance_opts, "--graph", f["g"], "--out", f["D"]],
                 ["homology", f["D"], "--out", f["H"]],
                 ["detect", f["H"], "--graph", f["g"], "--distances", f["D"], "--out", f["det"]],
                 ["localize", points, *rep, *F, "--out", f["L"]],
                 ["report", points, *rep, *F, "--loops", f["L"], "--out", str(folder / "staged")]):
        assert run_cli(*argv) == 0, argv
    return json.loads((folder / "staged" / "summary.json").read_text())


def test_the_staged_chain_handles_points_at_distance_zero(tmp_path):
    """Points at distance 0 (a duplicated cell under the Euclidean distance; under the corrected
    effective resistance two cells of degree 1 on a common neighbour, R - 1/d_i - 1/d_j = 0, as in
    the FUCCI data) give H0 bars of length 0, which the engines drop: H0 has fewer bars than points.
    `detect` took H0's length for n and refused the graph ("1000×1000 but the input has 999
    points", IPC cells with --k 30; FUCCI with the defaults); it now reads n from the file."""
    X = datasets.make("circle", n=200, d=10, sigma=0.05, seed=0).X
    X = np.vstack([X, X[:2]])
    np.save(tmp_path / "x.npy", X)
    staged = _chain(tmp_path, tmp_path / "x.npy", graph_opts=("--k", "20"), distance_opts=("--distance", "euclidean"))
    assert len(staged["diagrams"]["H0"]) == len(X) - 2
    assert run_cli("run", tmp_path / "x.npy", "--k", 20, "--distance", "euclidean", "--out", tmp_path / "run", "-q") == 0
    direct = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert staged["verdict"] == direct["verdict"] and staged["verdict"]["level"] == "loop"
    assert staged["detection"] == direct["detection"] and staged["loops"] == direct["loops"]


def test_the_staged_chain_runs_on_the_fucci_counts(tmp_path):
    """FUCCI iPSCs (888 cells, UMI counts) through prepare --recipe cell_cycle and the stages with the
    defaults: 8 graph components, one of two cells; the same call as `topoembed run`."""
    from conftest import SHARED_DATA

    src = SHARED_DATA / "fucci_ipsc_peco.h5ad"
    if not src.exists():
        pytest.skip(f"real data not found at {src} (the ../shared folder beside the repo)")
    prepared = tmp_path / "prepared.h5ad"
    assert run_cli("prepare", src, "--recipe", "cell_cycle", "--out", prepared) == 0
    rep = ["--use-rep", cli.PREPARED_REP]
    staged = _chain(tmp_path, prepared, rep)
    assert run_cli("run", prepared, *rep, "--out", tmp_path / "run", "-q") == 0
    direct = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert staged["verdict"] == direct["verdict"] and staged["detection"] == direct["detection"]


def test_a_run_into_an_earlier_runs_folder_says_it_replaced_its_files(tmp_path, caplog):
    out = tmp_path / "res"
    assert run_cli("run", SPEC, "--out", out, "-q", "--localize", 0) == 0
    assert "replaced the earlier" not in caplog.text
    assert run_cli("run", SPEC, "--out", out, "-q", "--localize", 0) == 0
    assert "replaced the earlier summary.json, diagrams.npz, report.html" in caplog.text


def test_the_bare_command_and_a_leading_quiet_flag(capsys):
    assert cli.main([]) == 2
    said = capsys.readouterr().out
    assert "usage: topoembed" in said and "Start with the demo: `topoembed run`" in said
    args = cli.build_parser().parse_args(["-q", "run"])
    assert args.quiet_all and not args.quiet  # main() carries it over to the subcommand's -q


def test_the_staged_chain_turns_the_phase_by_the_recipes_scores_as_run_does(tmp_path, capsys):
    # `topoembed prepare --recipe cell_cycle` stores each cell's S and G2/M scores; `run` turns the
    # loop's phase by them (θ = 0 at G1/S, S before G2/M) and `report` must give the same cells
    import topoembed as te

    te.datasets.demo_adata(n_cells=400).write_h5ad(tmp_path / "demo.h5ad")
    prep = tmp_path / "prep.h5ad"
    assert run_cli("prepare", tmp_path / "demo.h5ad", "--recipe", "cell_cycle", "--out", prep) == 0
    rep = ()  # a prepared file's points (obsm["X_topoembed_input"]) are the default, not its raw counts in X
    f = {name: tmp_path / name for name in ["g.npz", "d.npz", "h.npz", "det.json", "l.npz"]}
    assert run_cli("graph", prep, *rep, "--out", f["g.npz"]) == 0
    assert run_cli("distances", prep, *rep, "--graph", f["g.npz"], "--out", f["d.npz"]) == 0
    assert run_cli("homology", f["d.npz"], "--out", f["h.npz"]) == 0
    assert run_cli("detect", f["h.npz"], "--graph", f["g.npz"], "--distances", f["d.npz"], "--out", f["det.json"]) == 0
    files = ["--graph", f["g.npz"], "--distances", f["d.npz"], "--diagrams", f["h.npz"], "--detection", f["det.json"]]
    assert run_cli("localize", prep, *rep, *files, "--out", f["l.npz"]) == 0
    assert run_cli("report", prep, *rep, *files, "--loops", f["l.npz"], "--out", tmp_path / "staged") == 0
    assert run_cli("run", prep, "--out", tmp_path / "r", "-q") == 0
    staged = json.loads((tmp_path / "staged" / "summary.json").read_text())
    full = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert full["loops"][0]["phase_orientation"]["by"] == "S and G2/M scores"
    # what was analysed, in summary.json and the report's subtitle (only the table said it)
    rep = full["representation"]
    assert rep["use_rep"] == "X_pca_cell_cycle" and rep["prepared"] == "obsm['X_topoembed_input']"
    assert rep["recipe"]["steps"] == ["normalize_total", "log1p", "gene subset", "pca"]
    assert rep["recipe"]["n_genes"] > 10
    assert f"the cell-cycle recipe: {rep['recipe']['n_genes']} genes" in (tmp_path / "r" / "report.html").read_text()
    staged.pop("timings_s"), full.pop("timings_s")
    assert staged == full
    assert (tmp_path / "staged" / "cells.csv").read_text() == (tmp_path / "r" / "cells.csv").read_text()
    # the raw counts themselves are refused by a stage as by run, with the way to the points
    capsys.readouterr()
    code = run_cli("graph", tmp_path / "demo.h5ad", "--out", tmp_path / "raw.npz")
    err = " ".join(capsys.readouterr().err.split())
    assert code != 0 and not (tmp_path / "raw.npz").exists()
    assert "raw counts" in err and "topoembed prepare demo.h5ad --recipe cell_cycle" in err



def test_options_that_do_nothing_for_this_input_are_said_to_be_ignored(tmp_path, caplog):
    path = tmp_path / "pcs.npy"
    np.save(path, datasets.make("circle", n=120, d=5, sigma=0.1, seed=0).X)
    with caplog.at_level("WARNING"):
        assert run_cli("run", path, "--gene-symbols", "sym", "--key-added", "cc", "--n-epochs", 3, "--align-phases", 1,
                       "--subsample-size", 500, "--localize", 0, "--out", tmp_path / "r", "-q") == 0
    for flag in ("--gene-symbols acts with --recipe", "--key-added names the results", "--n-epochs trains",
                 "--align-phases turns the phases of the groups of --groupby"):
        assert f"{flag}" in caplog.text and "ignored here" in caplog.text
    idle = "--subsample-size 500 sets the size of an ensemble's subsamples, and these 120 points make none"
    assert idle in caplog.text  # and kept with the run's other warnings
    assert any(w.startswith(idle) for w in json.loads((tmp_path / "r" / "summary.json").read_text())["warnings"])
    caplog.clear()
    with caplog.at_level("WARNING"):  # the default is said only where it matters: with --groupby
        assert run_cli("run", path, "--localize", 0, "--out", tmp_path / "r2", "-q") == 0
    assert "ignored here" not in caplog.text and "subsample" not in caplog.text


def test_a_stage_without_input_and_a_turned_table_say_what_they_read(tmp_path, caplog):
    # a stage step with its input forgotten analysed the demo circle without a word; a table of
    # 10 PCs read with --transpose was refused as "10 points are too few", naming no option
    with caplog.at_level("WARNING"):
        assert run_cli("graph", "--out", tmp_path / "g.npz") == 0
    assert "no input given: `topoembed graph` analyses the demo synthetic:circle" in caplog.text
    caplog.clear()
    path = tmp_path / "pcs.csv"
    pd.DataFrame(np.random.default_rng(0).normal(size=(300, 10)), columns=[f"PC{i}" for i in range(1, 11)]).to_csv(
        path, index=False)
    with caplog.at_level("WARNING"):
        assert run_cli("run", path, "--transpose", "--out", tmp_path / "r", "-q") != 0
        assert "--transpose read the 10 columns of pcs.csv as the points" in caplog.text
        caplog.clear()
        assert run_cli("graph", path, "--out", tmp_path / "g2.npz") == 0
    assert "--transpose" not in caplog.text and "no input given" not in caplog.text


def test_the_tables_score_says_what_it_measures():
    # it read "score 1.000" both for a clear loop and for no loop (1 - max s_m)
    from topoembed.cli.outputs import _score_meaning

    assert _score_meaning({"n_loops": 1}) == "s_1, how clearly 1 loop stands out"
    assert _score_meaning({"n_loops": 2}) == "s_2, how clearly 2 loops stand out"
    assert _score_meaning({"n_loops": 0}).startswith("1 - max s_m")


def test_many_columns_without_a_pca_are_said_once_in_the_command_lines_words(tmp_path, caplog):
    import anndata

    path = tmp_path / "x.h5ad"
    anndata.AnnData(X=np.random.default_rng(0).normal(size=(120, 60)).astype(np.float32)).write_h5ad(path)
    with caplog.at_level("WARNING"):
        assert run_cli("run", path, "--prevalence-check", 0, "--out", tmp_path / "r", "-q") == 0
    said = [r.getMessage() for r in caplog.records if "no obsm['X_pca']" in r.getMessage()]
    assert len(said) == 1 and "--use-rep X to analyse X on purpose" in said[0]
