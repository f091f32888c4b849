"""The docs cannot go stale: every code block of README.md runs here, and every printed output
in README.md and docs/TUTORIALS.md is what its code prints today (docs/make_docs.py)."""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
spec = importlib.util.spec_from_file_location("make_docs", ROOT / "docs" / "make_docs.py")
make_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_docs)


def _blocks(path, lang):
    return [m["code"] for m in make_docs.CODE.finditer(path.read_text()) if m["lang"] == lang]


def test_the_readme_outputs_are_what_its_code_prints():
    got = make_docs.outputs(README)
    assert set(got) == {"demo", "python"}
    for name, (shown, produced) in got.items():
        assert shown == produced, f"README's {name!r} output is stale: run python docs/make_docs.py"


def test_the_output_markers_find_their_code():
    text = "```bash\necho hi\n```\n\n<!-- output: demo -->\n```\nold\n```\n<!-- /output -->\n"
    (m,) = make_docs.MARK.finditer(text)
    assert m["name"] == "demo" and m["body"] == "old\n"
    assert make_docs.code_above(text, m.start()) == ("bash", "echo hi\n")


def test_the_readme_commands_run_on_files_as_users_have_them(tmp_path):
    """The README's "Your data" and staged-chain blocks, word for word, on files made here:
    an h5ad with a representation in obsm, one of raw counts, the same counts as a gzipped
    gene × cell table, a pandas CSV with cell names, and a .npy."""
    import anndata
    import pandas as pd

    from topoembed import datasets

    ds = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0)
    np.save(tmp_path / "data.npy", ds.X)
    cells = anndata.AnnData(np.zeros((300, 1), dtype=np.float32), obsm={"X_scVI": ds.X})
    cells.obs["sample"] = np.tile(["s1", "s2"], 150)  # two samples, each the whole circle
    cells.write_h5ad(tmp_path / "cells.h5ad")
    counts = datasets.demo_adata(n_cells=300)
    counts.write_h5ad(tmp_path / "counts.h5ad")
    pd.DataFrame(np.asarray(counts.X.toarray() if hasattr(counts.X, "toarray") else counts.X, dtype=np.int64).T,
                 index=counts.var_names, columns=counts.obs_names).to_csv(tmp_path / "counts.csv.gz")  # GEO's way round
    pd.DataFrame(ds.X, index=[f"cell{i}" for i in range(300)],
                 columns=[f"PC{j + 1}" for j in range(10)]).to_csv(tmp_path / "cells.csv")
    bash = _blocks(README, "bash")
    yours = next(b for b in bash if "topoembed run cells.h5ad" in b)
    staged = next(b for b in bash if "topoembed graph data.npy" in b)
    for block in (yours, staged):
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    for out in ("results/cells", "results/counts", "results/geo", "results/csv", "results/mine", "results/staged",
                "results/by_sample/s1", "results/by_sample/s2"):
        assert (tmp_path / out / "summary.json").exists(), out
    assert (tmp_path / "results/by_sample/groups.tsv").read_text().count("1 loop") == 2
    geo, h5ad = (json.loads((tmp_path / f"results/{o}/summary.json").read_text()) for o in ("geo", "counts"))
    assert geo["verdict"]["level"] == "loop" and geo["diagrams"] == h5ad["diagrams"]  # the same counts, either file
    assert "verdict       1 loop" in subprocess.run(
        [sys.executable, "-m", "topoembed", "run", "cells.csv", "--out", "again", "-q"], cwd=tmp_path,
        capture_output=True, text=True).stdout


@pytest.mark.slow
def test_the_tutorials_outputs_are_what_their_code_prints():
    if not (SHARED_DATA / "neural_ipc_scvi.h5ad").exists():
        pytest.skip(f"the tutorials read {SHARED_DATA / 'neural_ipc_scvi.h5ad'} (the ../shared folder)")
    for name, (shown, produced) in make_docs.outputs(ROOT / "docs" / "TUTORIALS.md").items():
        assert shown == produced, f"TUTORIALS' {name!r} output is stale: run python docs/make_docs.py"


def test_no_internal_words_in_the_user_docs():
    """What a user reads says nothing of this project's issues or machines."""
    for path in (README, ROOT / "docs" / "TUTORIALS.md", ROOT / "docs" / "GUIDE.md"):
        text = path.read_text()
        assert not re.search(r"\bissue \d+|this project's machines", text), path.name
    assert len(README.read_text().splitlines()) <= 200


def test_ci_runs_the_readmes_test_command():
    """.ci/run is the README's "Install and run the tests" command, nothing more."""
    command = next(b for b in _blocks(README, "bash") if ".[test]" in b).strip()
    assert "-n auto" in command  # the tests over every core (pytest-xdist, in the test extra)
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert ci == [command]
