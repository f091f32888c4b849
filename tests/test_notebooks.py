"""The example notebooks (notebooks/*.ipynb, written by notebooks/make_notebooks.py).

Fast: the committed notebooks were executed (every code cell ran, in order) and their outputs
show no error, no machine path and no warning. Slow (`pytest -m slow`, ~4 minutes on 2 cores):
each notebook is executed again from top to bottom with nbclient, in a temporary copy, and
its fresh outputs are checked the same way; the notebooks on real cells (01, 04) also without
the shared data (they must fall back to a synthetic stand-in with a note).
"""
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from conftest import SHARED_DATA

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(/work/|/root/|/tmp/|/home/|/check/|/Users/|[A-Za-z]:\\\\)")
WARNING = re.compile(r"\b[A-Z]\w*Warning\b")

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[notebooks]')")


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", NB_DIR / "make_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _texts(nb):
    """(cell index, kind, text) of every text output; images are skipped."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                yield i, out.name, out.text
            elif out.output_type == "error":
                yield i, "error", f"{out.ename}: {out.evalue}"
            else:
                for mime, value in out.get("data", {}).items():
                    if mime.startswith("text/") or mime == "application/json":
                        yield i, mime, value if isinstance(value, str) else str(value)


def check_outputs(nb, name):
    problems = []
    for i, kind, text in _texts(nb):
        if kind == "error":
            problems.append(f"cell {i} raised {text}")
        if MACHINE_PATH.search(text):
            problems.append(f"cell {i} ({kind}) shows a machine path: {MACHINE_PATH.search(text).group(0)!r} "
                            f"in {text[:200]!r}")
        if WARNING.search(text):
            problems.append(f"cell {i} ({kind}) shows a warning: {text[:300]!r}")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_three_or_more_notebooks_in_sync_with_the_generator():
    assert len(NOTEBOOKS) >= 3
    assert sorted(_make_notebooks().NOTEBOOKS) == [p.name for p in NOTEBOOKS], \
        "notebooks/*.ipynb and make_notebooks.NOTEBOOKS differ: run python notebooks/make_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_was_executed_and_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), f"{path.name}: not every code cell was executed ({counts})"
    assert counts == sorted(counts), f"{path.name}: cells were not executed top to bottom ({counts})"
    assert sum(len(c.outputs) for c in code) >= len(code) // 2, f"{path.name} has almost no outputs"
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), f"{path.name} has no figure"
    check_outputs(nb, path.name)


def _execute(path, tmp_path, monkeypatch, data_dir):
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[notebooks]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[notebooks]')")
    copy = tmp_path / path.name
    shutil.copy(path, copy)  # run in a temporary copy: the committed notebook stays as it is
    nb = nbformat.read(copy, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv("TOPOEMBED_DATA", str(data_dir))
    _make_notebooks().execute(nb, tmp_path, timeout=600)
    check_outputs(nb, path.name)
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_top_to_bottom(path, tmp_path, monkeypatch):
    # the shared data when this checkout has it (the quick start falls back without it)
    nb = _execute(path, tmp_path, monkeypatch, SHARED_DATA if SHARED_DATA.is_dir() else tmp_path / "no_data")
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["01", "04", "05"])
def test_real_data_notebooks_fall_back_to_synthetic_data_with_a_note(tmp_path, monkeypatch, prefix):
    path = next(p for p in NOTEBOOKS if p.name.startswith(prefix))
    empty = tmp_path / "empty"
    empty.mkdir()
    nb = _execute(path, tmp_path, monkeypatch, empty)
    text = "\n".join(t for _, _, t in _texts(nb))
    assert "SYNTHETIC STAND-IN" in text and "not found" in text
    assert "FileNotFoundError" not in text
