"""The Snakemake workflow: it runs the same tasks as the local runner, through the CLI."""
import importlib.util
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from topoembed import _device

import noise_benchmark as B

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("snakemake") is None or shutil.which("snakemake") is None,
    reason="snakemake is not installed (optional: pip install 'topoembed[workflow]')")

SNAKEFILE = Path(__file__).resolve().parents[1] / "workflows" / "benchmark.smk"


def _snakemake(tmp_path, config: dict, *extra):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in config.items()))
    return subprocess.run(["snakemake", "-s", str(SNAKEFILE), "--configfile", str(cfg), "--cores", "1", *extra],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_dry_run_plans_one_job_per_task_of_the_quick_grid(tmp_path):
    res = _snakemake(tmp_path, {"out": str(tmp_path / "out"), "quick": True}, "-n")
    assert res.returncode == 0, res.stderr
    lines = (res.stdout + res.stderr).splitlines()
    counts = dict(ln.split()[:2] for ln in lines if len(ln.split()) == 2 and ln.split()[0] in ("task", "aggregate")
                  and ln.split()[1].isdigit())
    assert int(counts["task"]) == len(B.grid(quick=True)) and int(counts["aggregate"]) == 1


def test_tiny_real_run_matches_the_local_runner(tmp_path):
    out = tmp_path / "out"
    res = _snakemake(tmp_path, {"out": str(out), "datasets": ["blob"], "sigma_step": 28, "seeds": [0], "n": 150,
                                "d": 10})
    assert res.returncode == 0, res.stderr
    assert (out / "auc.csv").exists() and (out / "scores.png").exists()
    files = sorted((out / "tasks").glob("*.json"))
    assert [f.name for f in files] == [B.task_filename("blob", 0.0, 0), B.task_filename("blob", 0.35, 0)]
    local = B.run_task("blob", 0.35, 0, n=150, d=10)
    wf = json.loads(files[1].read_text())
    assert [(r["method"], r["score"], r["m_pred"]) for r in wf["rows"]] == \
        [(r["method"], r["score"], r["m_pred"]) for r in local["rows"]]


def test_h2_tasks_ask_the_scheduler_for_their_memory_and_time(tmp_path):
    res = _snakemake(tmp_path, {"out": str(tmp_path / "out"), "quick": False, "datasets": ["sphere", "blob"],
                                "sigma_step": 28, "seeds": [0]}, "-n")
    assert res.returncode == 0, res.stderr
    text = res.stdout + res.stderr
    asked = {}
    for block in text.split("rule task:")[1:]:
        name = block.split("wildcards: dataset=")[1].split(",")[0]
        fields = dict(kv.split("=") for kv in block.split("resources: ")[1].splitlines()[0].split(", "))
        asked[name] = (int(fields["mem_mb"]), int(fields["runtime"]))
    assert asked["sphere"] == (B.task_resources("sphere")["mem_mb"], B.task_resources("sphere")["runtime"])
    assert asked["sphere"][0] > B.H2_TASK_GIB * 1024 and asked["blob"] == (4000, 120)


ENSEMBLE_SMK = Path(__file__).resolve().parents[1] / "workflows" / "ensemble.smk"


def test_whole_dataset_as_one_job_per_subsample_and_part(tmp_path):
    """workflows/ensemble.smk: B subsample jobs, a part plan and one screen job per part, and one
    combine job give `topoembed run`'s result (a circle that 8 % of the points carry, found in its part)."""
    import numpy as np

    from topoembed import datasets, ensemble

    X = datasets.make("circle_in_clusters", n=3000, d=50, sigma=0.2, seed=0, fraction=0.08).X
    np.save(tmp_path / "x.npy", X)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("input: x.npy\nout: res\nn_subsamples: 3\noptions: {k: 30, symmetrize: or, subsample_size: 300}\n")
    res = subprocess.run(["snakemake", "-s", str(ENSEMBLE_SMK), "--configfile", str(cfg), "--cores", "1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "res" / "runs").iterdir()) == ["0.run", "1.run", "2.run"]
    got = json.loads((tmp_path / "res" / "result" / "summary.json").read_text())
    local = ensemble.run(X, n_subsamples=3, subsample_size=300, k=30, symmetrize="or", early_stop=False, jobs=1)
    n_parts = len(local.detection["parts"]["searched"])
    assert n_parts >= 2
    assert sorted(p.name for p in (tmp_path / "res" / "parts").iterdir()) == sorted(
        [f"{i}.run" for i in range(n_parts)] + ["plan.npz"])
    assert got["detection"]["n_loops"] == local.detection["n_loops"] == 1
    assert got["ensemble"]["clusters"] == json.loads(json.dumps(local.ensemble["clusters"]))
    assert got["detection"]["parts"] == json.loads(json.dumps(local.detection["parts"]))
    assert got["loops"][0]["p_value"] == pytest.approx(local.loops[0]["p_value"])
    t = got["timings_s"]  # the subsample and part jobs' time counts in the total, not only the combine job's
    assert t["total"] >= t["subsample_runs"] + t["part_screens"] + t["graph_all_points"]
    # nothing to redo on a second call
    again = subprocess.run(["snakemake", "-s", str(ENSEMBLE_SMK), "--configfile", str(cfg), "--cores", "1", "-n"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Nothing to be done" in again.stdout + again.stderr
    # a changed option reruns every job (the options were only in the shell string: nothing reran);
    # the part screens are planned again once the plan job ran (a checkpoint)
    cfg.write_text(cfg.read_text().replace("k: 30", "k: 25"))
    changed = subprocess.run(["snakemake", "-s", str(ENSEMBLE_SMK), "--configfile", str(cfg), "--cores", "1", "-n"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    planned = _planned(changed)
    assert {k: planned.get(k) for k in ("all", "combine", "subsample", "parts")} == {
        "all": 1, "combine": 1, "subsample": 3, "parts": 1}, changed.stdout[-2000:]


SAMPLES_SMK = Path(__file__).resolve().parents[1] / "workflows" / "Snakefile"
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "workflows" / "config.yaml"


def _samples(tmp_path, config: str, *extra):
    cfg = tmp_path / "samples.yaml"
    cfg.write_text(config)
    return subprocess.run(["snakemake", "-s", str(SAMPLES_SMK), "--configfile", str(cfg), "--cores", "2", *extra],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)


def _planned(res) -> dict:
    """{rule: count} from a dry run's job table."""
    lines = (res.stdout + res.stderr).splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("job ") and "count" in ln)
    out = {}
    for ln in lines[start + 2:]:
        parts = ln.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        out[parts[0]] = int(parts[1])
    return out


TWO_SAMPLES = """out: res
samples:
  ring: "synthetic:circle?n=200&d=10&sigma=0.05&seed=0"
  noise: {path: "noise.npy"}
  absent: {path: "nowhere.h5ad", optional: true}
params: {k: 20}
embed: null
"""


def test_samples_workflow_runs_every_stage_and_tabulates(tmp_path):
    """workflows/Snakefile: per sample prepare -> graph -> ... -> report (what `topoembed run` gives), one
    table across samples; an optional sample whose file is absent is skipped; a changed setting reruns
    only the stages that depend on it."""
    import numpy as np

    from topoembed import datasets

    np.save(tmp_path / "noise.npy", datasets.make("blob", n=200, d=10, sigma=0.1, seed=0).X)
    res = _samples(tmp_path, TWO_SAMPLES)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sample 'absent' skipped" in res.stderr
    out = tmp_path / "res"
    for name in ("ring", "noise"):
        for f in ("summary.json", "report.html", "result.h5ad"):
            assert (out / name / "report" / f).exists(), (name, f)
    ring = json.loads((out / "ring" / "report" / "summary.json").read_text())
    assert ring["detection"]["n_loops"] == 1 and ring["params"]["k"] == 20
    assert ring["input"] == "synthetic:circle?n=200&d=10&sigma=0.05&seed=0"  # the sample, not its prepared.h5ad
    table = (out / "samples.csv").read_text().splitlines()
    assert table[0].startswith("sample,verdict,n_input") and [r.split(",")[0] for r in table[1:]] == [
        "ring", "noise", "absent"]
    assert table[3].split(",")[1] == "skipped" and "optional, and nowhere.h5ad is absent" in table[3]  # it was left out
    assert (out / "samples.md").exists() and (out / "samples.png").stat().st_size > 1000
    # the same as topoembed run on the same points and settings
    from topoembed import cli

    assert cli.main(["run", "synthetic:circle?n=200&d=10&sigma=0.05&seed=0", "--k", "20", "--out",
                     str(tmp_path / "direct"), "-q"]) == 0
    direct = json.loads((tmp_path / "direct" / "summary.json").read_text())
    assert ring["detection"] == direct["detection"] and ring["diagrams"] == direct["diagrams"]
    assert ring["loops"] == direct["loops"]
    # a setting of the localization changes: only localize, report and collect rerun
    res = _samples(tmp_path, TWO_SAMPLES.replace("params: {k: 20}", "params: {k: 20, theta_filtration: 0.3}"), "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _planned(res) == {"localize": 2, "report": 2, "collect": 1, "all": 1}
    # a graph setting: everything after prepare
    res = _samples(tmp_path, TWO_SAMPLES.replace("params: {k: 20}", "params: {k: 25}"), "-n")
    planned = _planned(res)
    assert "prepare" not in planned and planned["graph"] == 2 and planned["report"] == 2


def test_a_failed_sample_is_listed_and_the_others_collected(tmp_path):
    """With --keep-going, a sample whose input is bad (NaN) fails at prepare; the other samples finish,
    and samples.md/.csv list every sample, the failed one with its log's last line."""
    import numpy as np

    X = np.random.default_rng(0).normal(size=(50, 3))
    X[3, 1] = np.nan
    np.save(tmp_path / "bad.npy", X)
    config = TWO_SAMPLES.replace('noise: {path: "noise.npy"}', 'bad: {path: "bad.npy"}')
    res = _samples(tmp_path, config, "--keep-going")
    assert res.returncode != 0 and "samples.md lists every sample" in res.stderr
    rows = {r.split(",")[0]: r for r in (tmp_path / "res" / "samples.csv").read_text().splitlines()[1:]}
    assert rows["ring"].split(",")[1] == "1 loop"
    assert rows["bad"].split(",")[1] == "failed" and "NaN" in rows["bad"] and "prepare.log" in rows["bad"]
    md = (tmp_path / "res" / "samples.md").read_text()
    assert "| bad | failed |" in md and "| ring | 1 loop |" in md


def test_samples_workflow_refuses_unknown_options(tmp_path):
    res = _samples(tmp_path, TWO_SAMPLES.replace("params: {k: 20}", "params: {kk: 20}"), "-n")
    assert res.returncode != 0 and "unknown option(s) ['kk']" in res.stdout + res.stderr
    # a sample's own keys: a typo ran on X without a word; a name with a space broke the shell command
    res = _samples(tmp_path, TWO_SAMPLES.replace('noise: {path: "noise.npy"}', 'noise: {path: "noise.npy", userep: X}'),
                   "-n")
    said = res.stdout + res.stderr
    assert res.returncode != 0 and "sample 'noise': unknown key(s) userep (did you mean use_rep?)" in said
    res = _samples(tmp_path, TWO_SAMPLES.replace('noise: {path: "noise.npy"}', '"no ise": {path: "noise.npy"}'), "-n")
    assert res.returncode != 0 and "sample name 'no ise': use letters, digits" in res.stdout + res.stderr
    # a setting no sample can run with is refused when the config is read, not in each job
    res = _samples(tmp_path, TWO_SAMPLES.replace("params: {k: 20}", "params: {k: -5}"), "-n")
    said = res.stdout + res.stderr
    assert res.returncode != 0 and "sample 'ring' (200 points), params: k" in said and "Nothing to be done" not in said


def test_a_sample_stopped_with_the_workflow_is_said_so():
    # without --keep-going a healthy sample, stopped when another failed, read "no summary.json and no log"
    from topoembed import collect

    with tempfile.TemporaryDirectory() as d:
        assert collect.last_error(Path(d) / "absent").startswith("not run (no summary.json, no log): the workflow may")
        (Path(d) / "prepare.log").write_text("")
        (Path(d) / "graph.log").write_text("\n")
        said = collect.last_error(d)
        assert said.startswith("unfinished, its logs empty (") and "snakemake --keep-going" in said
        (Path(d) / "graph.log").write_text("topoembed graph: error: k = 5 must be < n\n")
        assert collect.last_error(d) == "graph.log: topoembed graph: error: k = 5 must be < n"
        # a job's options named as the config's keys, which the workflow's user edits
        (Path(d) / "graph.log").write_text("error: pass --use-rep KEY or --recipe cell_cycle; --k 5 is too large\n")
        assert collect.last_error(d).endswith("(in the workflow's config: the sample's use_rep:, the sample's recipe:, "
                                              "params: k)")



def test_the_demo_without_pytorch_analyses_the_loops_and_leaves_out_the_embedding(tmp_path):
    # a new user's venv (`pip install -e ".[workflow]"`, no torch): the demo config asks for an
    # embedding; the samples are still analysed, the embedding is left out with the install line.
    # torch is hidden by patching topoembed._device.torch_installed in the snakemake process
    import sys

    code = ("import sys, topoembed._device as d; d.torch_installed = lambda: False; "
            "from snakemake.cli import main; sys.argv = ['snakemake'] + sys.argv[1:]; main()")
    repo = Path(__file__).resolve().parents[1]
    args = ["-s", str(SAMPLES_SMK), "--configfile", str(DEMO_CONFIG), "--config", f"out={tmp_path / 'demo'}",
            "--cores", "1", "-n"]
    hidden = subprocess.run([sys.executable, "-c", code, *args], cwd=repo, capture_output=True, text=True, timeout=300)
    assert hidden.returncode == 0, hidden.stderr[-3000:]
    assert "embed: infonce skipped for every sample" in hidden.stderr and "pip install torch" in hidden.stderr
    planned = _planned(hidden)
    assert "embed" not in planned and planned["report"] >= 3
    if _device.torch_installed():  # with torch the same demo plans its embeddings
        shown = subprocess.run(["snakemake", *args], cwd=repo, capture_output=True, text=True, timeout=300)
        assert _planned(shown)["embed"] >= 3

@pytest.mark.slow
def test_demo_config_end_to_end(tmp_path):
    """The README's demo: three synthetic samples (+ the IPC cells, through the ensemble rules, when present)."""
    import shutil as sh

    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run(["snakemake", "--cores", "2", "-s", str(SAMPLES_SMK), "--configfile", str(DEMO_CONFIG),
                          "--config", f"out={tmp_path / 'demo'}"], cwd=repo, capture_output=True, text=True,
                         timeout=1500)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = (tmp_path / "demo" / "samples.csv").read_text().splitlines()[1:]
    got = {r.split(",")[0]: int(r.split(",")[5]) for r in rows}
    assert got["circle"] == 1 and got["eyeglasses"] == 2 and got["blob"] == 0
    if (repo.parent / "shared" / "data" / "neural_ipc_scvi.h5ad").exists():
        assert got["neural_ipc"] == 1
    sh.rmtree(tmp_path / "demo", ignore_errors=True)


def test_a_sample_with_groupby_is_one_sample_per_group(tmp_path, capsys):
    """`groupby: COLUMN` in a sample's config: one sample per group of that obs column (NAME.GROUP), each
    prepared by `topoembed prepare --groupby --group` with that group's cells only."""
    import anndata
    import numpy as np
    import pandas as pd

    from topoembed import cli, datasets

    X = datasets.make("circle", n=300, d=10, sigma=0.05, seed=0).X
    a = anndata.AnnData(np.zeros((300, 1), dtype=np.float32), obsm={"X_rep": X})
    a.obs["donor"] = pd.Categorical(np.tile(["d 1", "d2", "d2"], 100), categories=["d 1", "d2"])  # a space
    a.write_h5ad(tmp_path / "cells.h5ad")
    config = TWO_SAMPLES.replace('noise: {path: "noise.npy"}',
                                 'cells: {path: "cells.h5ad", use_rep: X_rep, groupby: donor}')
    res = _samples(tmp_path, config, "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _planned(res)["prepare"] == 3 and "res/cells.d_1/prepared.h5ad" in res.stdout + res.stderr
    assert "res/cells.d2/prepared.h5ad" in res.stdout + res.stderr
    out = tmp_path / "d2.h5ad"
    assert cli.main(["prepare", str(tmp_path / "cells.h5ad"), "--use-rep", "X_rep", "--groupby", "donor", "--group",
                     "d2", "--out", str(out)]) == 0
    prepared = anndata.read_h5ad(out)
    np.testing.assert_array_equal(prepared.obsm["X_topoembed_input"], X[a.obs["donor"].to_numpy() == "d2"])
    assert prepared.uns["topoembed_input"]["source"].endswith("cells.h5ad (donor = d2)")
    for extra, message in ((["--group", "d3", "--groupby", "donor"], "the groups are ['d 1', 'd2']"),
                           (["--groupby", "donor"], "go together")):
        assert cli.main(["prepare", str(tmp_path / "cells.h5ad"), "--use-rep", "X_rep", *extra, "--out",
                         str(tmp_path / "no.h5ad")]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "no.h5ad").exists()
