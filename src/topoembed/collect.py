"""Many samples' results in one table: the last step of the samples workflow.

:func:`table` reads each sample's ``summary.json`` (from ``topoembed run`` or ``topoembed
report``) into one row: the call, how sure it is, and what it cost. ``topoembed collect``
writes the rows as CSV and Markdown (with :data:`LEGEND`), and :func:`plot` draws each
sample's s_m of the loops counted, coloured by their number (no bar where none is counted).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from . import verdict
from ._validate import InputError

#: Columns of the table, in order (README: Snakemake workflow). ``verdict``: the run's
#: :class:`topoembed.verdict.Verdict` headline, "failed" for a sample whose run failed
#: (``error``: the last line of its log), or "skipped" for one left out on purpose (``error``: why).
COLUMNS = ("sample", "verdict", "n_input", "n_points", "distance", "n_loops", "n_possible", "score", "p_value_1",
           "prevalence_1",
           "confirmed", "median_phase_confidence_1", "n_on_loop_1", "warnings", "time_s", "error")
FAILED = "failed"
#: The verdict column of a sample left out on purpose (``topoembed collect --skipped``).
SKIPPED = "skipped"


def row(sample: str, summ: dict) -> dict:
    """One sample's row from its summary (see :data:`COLUMNS`); missing values are None."""
    det = summ["detection"]
    first = summ["loops"][0] if summ.get("loops") else {}
    confirmed = None
    if "confirmation" in det:
        confirmed = det["confirmation"]["n_loops"] == det["n_loops"]
    if "unconfirmed" in det:
        confirmed = False
    v = verdict.decide(summ["loops"], det)  # its counts, not detection's: a possible loop is no loop found
    return {"sample": sample, "verdict": v.headline(), "n_input": summ["n_input"], "n_points": summ["n_points"],
            "distance": summ["distance"], "n_loops": v.n_loops, "n_possible": v.n_possible,
            # s_m of the m loops counted; without a count detection's score is 1 − max s_m, another measure
            "score": det["score"] if int(det["n_loops"]) > 0 else None, "p_value_1": first.get("p_value"),
            "prevalence_1": first.get("prevalence"), "confirmed": confirmed,
            "median_phase_confidence_1": first.get("median_phase_confidence"), "n_on_loop_1": first.get("n_on_loop"),
            "warnings": len(summ.get("warnings", [])), "time_s": summ["timings_s"].get("total"), "error": None}


def failed_row(sample: str, error: str) -> dict:
    """The row of a sample whose run failed: its verdict is :data:`FAILED`, ``error`` says why."""
    return {**dict.fromkeys(COLUMNS), "sample": sample, "verdict": FAILED, "error": error}


def skipped_row(sample: str, why: str) -> dict:
    """The row of a sample not analysed on purpose (an optional sample whose file is absent)."""
    return {**dict.fromkeys(COLUMNS), "sample": sample, "verdict": SKIPPED, "error": why}


#: Why a sample without summary.json and without a word in its logs has none.
STOPPED = ("the workflow may have stopped on another sample's failure; snakemake --keep-going finishes the "
           "other samples")


#: The samples workflow's per-sample config keys for the command-line options its jobs pass.
SAMPLE_OPTIONS = ("use_rep", "recipe", "layer", "gene_symbols", "transpose", "groupby")


def in_config_words(line: str) -> str:
    """A job's error line with the config keys meant by the command-line options it names
    (``--use-rep`` is a sample's ``use_rep:``, ``--k`` is ``params: {k: ...}``), where it names any:
    the user of the samples workflow edits its config, not a command."""
    from .params import Params

    fields = set(Params.__dataclass_fields__)
    said = []
    for flag in dict.fromkeys(re.findall(r"--([a-z][a-z0-9-]*)", line)):
        key = flag.replace("-", "_")
        where = (f"the sample's {key}:" if key in SAMPLE_OPTIONS else f"params: {key}" if key in fields else None)
        if where and where not in said:
            said.append(where)
    return line + (f" (in the workflow's config: {', '.join(said)})" if said else "")


def last_error(log_dir) -> str:
    """The last non-empty line of the newest log under ``log_dir`` (a failed sample's logs), with
    the config keys its options mean (:func:`in_config_words`); where the logs are empty or absent
    (a step stopped with the workflow, or never started), that and :data:`STOPPED`."""
    logs = sorted(Path(log_dir).glob("*.log"), key=lambda f: f.stat().st_mtime) if Path(log_dir).is_dir() else []
    for log in reversed(logs):
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return f"{log.name}: {in_config_words(lines[-1])}"
    if logs:
        return f"unfinished, its logs empty ({', '.join(log.name for log in logs)}): {STOPPED}"
    return f"not run (no summary.json, no log): {STOPPED}"


def table(summaries: dict, logs=None) -> list[dict]:
    """Rows for ``{sample: path to summary.json}``, in the given order. ``logs`` (a folder
    with one log folder per sample, as the samples workflow writes): a missing summary is a
    failed sample, whose row carries its log's last line; without it a missing summary is an error."""
    rows = []
    for sample, path in summaries.items():
        path = Path(path)
        try:
            summ = json.loads(path.read_text())
            rows.append(row(sample, summ))
        except FileNotFoundError:
            if logs is None:
                raise InputError(f"{path} does not exist; run the sample first") from None
            rows.append(failed_row(sample, last_error(Path(logs) / sample)))
        except (ValueError, KeyError) as exc:
            raise InputError(f"{path} is not a topoembed summary.json ({exc})") from None
    return rows


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def to_csv(rows: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # quotes a cell with a comma (an error message)
    writer.writerow(COLUMNS)
    writer.writerows([_cell(r[c]) for c in COLUMNS] for r in rows)
    return buf.getvalue()


#: What the Markdown table's less obvious columns hold, said under it.
LEGEND = ("`n_loops`: supported loops, `n_possible`: loops found but not supported (the verdict's counts); "
          "`score`: s_m, how clearly the m loops the detection counted stand out (0-1; empty where it counted none); "
          "`p_value_1`, `prevalence_1`, `median_phase_confidence_1`, `n_on_loop_1`: the first loop's; `confirmed`: "
          "whether the other spectral distance found the same count (False: it did not, and the count was dropped "
          "to 0; empty where no check ran); `n_points`: the points of the run whose graph and diagrams these are "
          "(an ensemble's reference subsample); `error`: why a sample failed or was skipped.")


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r[c]).replace("|", "\\|") for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + LEGEND + "\n"


def plot(rows: list[dict], ax=None):
    """Bar per sample: its detection score, coloured by the number of loops found, labelled
    with the verdict ("failed" for a failed sample)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(rows) + 2), 3.2))
    colours = plt.get_cmap("tab10")
    ok = [r["verdict"] not in (FAILED, SKIPPED) for r in rows]
    m = [int(r["n_loops"]) if good else 0 for r, good in zip(rows, ok)]
    score = [r["score"] if good and r["score"] is not None else 0.0 for r, good in zip(rows, ok)]
    ax.bar(np.arange(len(rows)), score, color=[colours(k) for k in m])
    for i, (r, good) in enumerate(zip(rows, ok)):
        ax.text(i, score[i], r["verdict"], ha="center", va="bottom", fontsize=8,
                color="black" if good else "0.5" if r["verdict"] == SKIPPED else "firebrick")
    ax.set_xticks(np.arange(len(rows)), [r["sample"] for r in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("s_m of the loops counted")  # none counted: no bar, the verdict at 0
    ax.set_title("loops per sample")
    ax.figure.tight_layout()
    return ax
