"""The ``summary.json`` contract (README: Output): what a machine reads of a run.

:func:`summary` turns a :class:`topoembed.pipeline.Result` into plain JSON types: sizes,
settings, graph, diagrams, the detection's evidence, the :class:`topoembed.verdict.Verdict`,
the loops (without their per-point arrays, :data:`PER_POINT`), warnings and timings.
"""
from __future__ import annotations

import numpy as np

from ._version import __version__

__all__ = ["summary", "environment", "PER_POINT", "per_cell_columns", "PHASE_MISSING_REASON", "NO_LOOP_REASON",
           "LOW_CONFIDENCE_REASON", "OUTSIDE_PART_REASON", "NO_LOOP_VALUES", "MISSING_REASONS"]

#: Per-point arrays of each loop: kept on the Result, not written to summary.json.
PER_POINT = ("phase", "phase_confidence", "phase_spread", "loop_distance", "on_loop")

#: ``phase_missing`` of a cell without a phase: no path in the kNN graph leads from it to the
#: loop's cells (an isolated cell, or another connected component), so the harmonic extension
#: that gives every other cell its phase does not reach it.
PHASE_MISSING_REASON = "not connected to the loop in the kNN graph"
#: ``phase_missing`` of every cell when the run found no loop.
NO_LOOP_REASON = "no loop found"
#: ``phase_missing`` of every cell of a loop without support, whose phase is withheld
#: (:func:`topoembed.pipeline.loop_support`; ``phase_low_confidence=True`` keeps it).
LOW_CONFIDENCE_REASON = "the loop has low confidence"
#: ``phase_missing`` of a cell beyond a part's loop: the loop was found inside one part of the data
#: (:mod:`topoembed.parts`), and its phase is given only on the points analysed there (the part and
#: the nearest points around it, its shell).
OUTSIDE_PART_REASON = "outside the part of the data (and its shell) where the loop was found"
#: Every value of ``phase_missing`` ("": the cell has a phase).
MISSING_REASONS = ("", PHASE_MISSING_REASON, NO_LOOP_REASON, LOW_CONFIDENCE_REASON, OUTSIDE_PART_REASON)
#: The per-cell columns' values when no loop is found: no phase, no confidence, not on a
#: loop, no distance to one (the columns exist, so code that reads them needs no KeyError branch).
NO_LOOP_VALUES = {"phase": np.nan, "phase_confidence": np.nan, "loop_distance": np.nan, "on_loop": False}


def per_cell_columns(found: list, n: int, numbered: bool = False) -> dict:
    """The per-cell results of the loops ``found`` on n cells, by column name: loop i's
    :data:`PER_POINT` arrays and ``phase_missing`` (a reason of :data:`MISSING_REASONS` per
    cell), with suffix ``_{i + 1}`` from the second loop on (``obs`` of :func:`topoembed.tl.run`
    after its ``key_added``), or on every loop with ``numbered`` (``cells.csv``: ``phase_1``).
    With no loop, the first loop's columns hold :data:`NO_LOOP_VALUES` and ``phase_missing``
    :data:`NO_LOOP_REASON`."""
    first = "_1" if numbered else ""
    if not found:
        return {**{f"{f}{first}": np.full(n, v) for f, v in NO_LOOP_VALUES.items()},
                f"phase_missing{first}": np.full(n, NO_LOOP_REASON, dtype=object)}
    cols = {}
    for i, lp in enumerate(found):
        suffix = first if i == 0 else f"_{i + 1}"
        for field in PER_POINT:
            if field in lp:
                cols[f"{field}{suffix}"] = np.asarray(lp[field])
        if "phase" in lp:  # every cell: a phase, or the reason it has none
            missing = ~np.isfinite(np.asarray(lp["phase"], dtype=float))
            why = (LOW_CONFIDENCE_REASON if "phase_withheld" in lp else
                   OUTSIDE_PART_REASON if lp.get("part") is not None else PHASE_MISSING_REASON)
            cols[f"phase_missing{suffix}"] = np.where(missing, why, "").astype(object)
    return cols


def _diagram_lists(dgms) -> dict:
    return {f"H{dim}": [[float(b), (float(d) if np.isfinite(d) else None)] for b, d in dgm]
            for dim, dgm in enumerate(dgms)}


#: The packages whose versions can change a result in its last digits (numpy, scipy: the
#: distances; the homology engines; scanpy and anndata: the recipes and graphs read).
RESULT_PACKAGES = ("numpy", "scipy", "giotto-ph", "ripser", "gudhi", "pynndescent", "scanpy", "anndata")


def environment() -> dict:
    """What ran: Python's version, :data:`RESULT_PACKAGES`' versions ("not installed" where
    absent) and the homology engine ("giotto-ph", or "ripser.py" where giotto-ph is missing,
    as on Python 3.13). The same seed gives the same result within one such environment;
    other versions of numpy or scipy can change a phase by a constant (GUIDE, "Repeatability")."""
    import platform
    from importlib import metadata

    from . import homology

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"python": platform.python_version(), **{name: version(name) for name in RESULT_PACKAGES},
            "homology_engine": {"gph": "giotto-ph", "ripser": "ripser.py"}[homology._engine("auto", cocycles=False)]}


def summary(result, input_desc: str = "") -> dict:
    """The ``summary.json`` contract (see README: Output)."""
    det = result.detection
    return {
        "version": __version__,
        "input": input_desc,
        "n_points": int(len(result.index)),
        "n_input": int(result.n_input),
        "params": result.params.to_dict(),
        "distance": result.params.distance,
        "graph": {"n_edges": int(result.A.nnz // 2), "n_components": result.n_components},
        "diagrams": _diagram_lists(result.ph["dgms"]),
        "detection": {"n_loops": int(det["n_loops"]),
                      "scores": {str(m): float(s) for m, s in det["scores"].items()},
                      "score": float(det["score"]),
                      **{k: det[k] for k in ("rule", "alpha", "p_values", "significant", "confirmation",
                                             "unconfirmed", "not_significant", "rescued", "surface", "surface_loops",
                                             "prevalence_check", "parts", "gap")
                         if k in det}},
        "verdict": result.verdict.to_dict(),
        "loops": [{k: v for k, v in lp.items() if k not in PER_POINT} for lp in result.loops],
        **({"auto": result.auto} if result.auto is not None else {}),
        **({"ensemble": result.ensemble} if result.ensemble is not None else {}),
        "warnings": list(result.warnings),
        "notes": list(result.notes),
        "timings_s": {k: float(v) for k, v in sorted(result.timings.items(), key=lambda kv: kv[0] == "total")},
        "environment": environment(),
    }
