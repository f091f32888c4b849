"""Many samples' results in one table: the last step of the samples workflow.

:func:`table` reads each sample's ``summary.json`` (from ``topoembed run`` or ``topoembed
report``) into one row: the call, how sure it is, and what it cost. ``topoembed collect``
writes the rows as CSV and Markdown, and :func:`plot` draws each sample's detection score
s_m of its call, coloured by the number of loops.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._validate import InputError

#: Columns of the table, in order (README: Snakemake workflow).
COLUMNS = ("sample", "n_input", "n_points", "distance", "n_loops", "score", "p_value_1", "prevalence_1",
           "confirmed", "median_phase_confidence_1", "n_on_loop_1", "warnings", "time_s")


def row(sample: str, summ: dict) -> dict:
    """One sample's row from its summary (see :data:`COLUMNS`); missing values are None."""
    det = summ["detection"]
    first = summ["loops"][0] if summ.get("loops") else {}
    confirmed = None
    if "confirmation" in det:
        confirmed = det["confirmation"]["n_loops"] == det["n_loops"]
    if "unconfirmed" in det:
        confirmed = False
    return {"sample": sample, "n_input": summ["n_input"], "n_points": summ["n_points"], "distance": summ["distance"],
            "n_loops": det["n_loops"], "score": det["score"], "p_value_1": first.get("p_value"),
            "prevalence_1": first.get("prevalence"), "confirmed": confirmed,
            "median_phase_confidence_1": first.get("median_phase_confidence"), "n_on_loop_1": first.get("n_on_loop"),
            "warnings": len(summ.get("warnings", [])), "time_s": summ["timings_s"].get("total")}


def table(summaries: dict) -> list[dict]:
    """Rows for ``{sample: path to summary.json}``, in the given order."""
    rows = []
    for sample, path in summaries.items():
        path = Path(path)
        try:
            summ = json.loads(path.read_text())
            rows.append(row(sample, summ))
        except FileNotFoundError:
            raise InputError(f"{path} does not exist; run the sample first") from None
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
    return "\n".join([",".join(COLUMNS)] + [",".join(_cell(r[c]) for c in COLUMNS) for r in rows]) + "\n"


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], ax=None):
    """Bar per sample: its detection score, coloured by the number of loops found."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(rows) + 2), 3.2))
    colours = plt.get_cmap("tab10")
    m = [int(r["n_loops"]) for r in rows]
    ax.bar(np.arange(len(rows)), [r["score"] for r in rows], color=[colours(k) for k in m])
    for i, (r, k) in enumerate(zip(rows, m)):
        ax.text(i, r["score"], f"{k} loop{'s' if k != 1 else ''}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(rows)), [r["sample"] for r in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("detection score of the call")
    ax.set_title("loops per sample")
    ax.figure.tight_layout()
    return ax
