"""Write the printed outputs into README.md and docs/TUTORIALS.md by running their own code.

Each output block sits between ``<!-- output: NAME -->`` and ``<!-- /output -->``; NAME says
which code produces it (:data:`PRODUCERS`). The code that runs is the code block right above
the marker in the same file, so what the docs show is what that code prints today:

    python docs/make_docs.py            # rewrite the outputs
    python docs/make_docs.py --check    # exit 1 and name the blocks whose output changed

``tests/test_docs.py`` runs the README's blocks on every test run and the tutorials' (which
read the IPC cells in ../shared/data, about a minute) with ``pytest -m slow``. Times and paths
are left out of the outputs, since they differ between runs and machines.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MARK = re.compile(r"<!-- output: (?P<name>[\w-]+) -->\n```\n(?P<body>.*?)```\n<!-- /output -->", re.S)
CODE = re.compile(r"```(?P<lang>python|bash)\n(?P<code>.*?)```", re.S)


def code_above(text: str, pos: int) -> tuple[str, str]:
    """(language, code) of the last code block before position ``pos``."""
    blocks = [m for m in CODE.finditer(text) if m.end() <= pos]
    if not blocks:
        raise ValueError("an output block without a code block above it")
    return blocks[-1]["lang"], blocks[-1]["code"]


def _table_lines(out: str) -> str:
    """The run's table without what differs between runs (times, the output folder)."""
    keep = [ln for ln in out.splitlines() if not ln.startswith(("  time (s)", "  written to"))]
    return "\n".join(keep) + "\n"


def run_code(lang: str, code: str, cwd: Path) -> str:
    """Run a block in ``cwd`` (where the IPC file's name links to ../shared/data) and return its stdout."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    if "neural_ipc_scvi.h5ad" in code:  # the file as the tutorial names it, read from ../shared/data
        (cwd / "neural_ipc_scvi.h5ad").symlink_to(SHARED / "neural_ipc_scvi.h5ad")
    code = re.sub(r"^pip install [^&]*&& ", "", code, flags=re.M)  # the package is installed already
    cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the {lang} block failed:\n{code}\n{done.stderr[-3000:]}")
    return done.stdout


#: How each named block's output is produced from the code above it: plain stdout, or the run's table.
PRODUCERS = {"demo": _table_lines, "python": lambda out: out, "tutorial-python": lambda out: out,
             "tutorial-cli": _table_lines}
#: Blocks that read the real cells (run with the slow tests).
NEEDS_SHARED = {"tutorial-python", "tutorial-cli"}


def outputs(path: Path, names=None) -> dict:
    """{name: (shown, produced)} for the output blocks of ``path`` (those in ``names``, or all)."""
    text = path.read_text()
    found = {}
    for m in MARK.finditer(text):
        name = m["name"]
        if names is not None and name not in names:
            continue
        lang, code = code_above(text, m.start())
        with tempfile.TemporaryDirectory() as tmp:
            found[name] = (m["body"], PRODUCERS[name](run_code(lang, code, Path(tmp))))
    return found


def rewrite(path: Path, produced: dict) -> None:
    def sub(m):
        body = produced.get(m["name"], m["body"])
        return f"<!-- output: {m['name']} -->\n```\n{body}```\n<!-- /output -->"

    path.write_text(MARK.sub(sub, path.read_text()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 where an output changed")
    args = ap.parse_args(argv)
    stale = []
    for path in (ROOT / "README.md", ROOT / "docs" / "TUTORIALS.md"):
        names = None if SHARED.exists() else set(PRODUCERS) - NEEDS_SHARED
        got = outputs(path, names)
        stale += [f"{path.name}: {n}" for n, (shown, new) in got.items() if shown != new]
        if not args.check:
            rewrite(path, {n: new for n, (_, new) in got.items()})
    if args.check and stale:
        print("outputs that changed: " + ", ".join(stale))
        return 1
    print(("checked" if args.check else "written") + f": {', '.join(stale) or 'no change'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
