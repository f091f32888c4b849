"""The ``summary.json`` contract (README: Output): what a machine reads of a run.

:func:`summary` turns a :class:`topoembed.pipeline.Result` into plain JSON types: sizes,
settings, graph, diagrams, the detection's evidence, the :class:`topoembed.verdict.Verdict`,
the loops (without their per-point arrays, :data:`PER_POINT`), warnings and timings.
"""
from __future__ import annotations

import numpy as np

from ._version import __version__

__all__ = ["summary", "PER_POINT"]

#: Per-point arrays of each loop: kept on the Result, not written to summary.json.
PER_POINT = ("phase", "phase_confidence", "phase_spread", "loop_distance", "on_loop")


def _diagram_lists(dgms) -> dict:
    return {f"H{dim}": [[float(b), (float(d) if np.isfinite(d) else None)] for b, d in dgm]
            for dim, dgm in enumerate(dgms)}


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
                                             "prevalence_check", "parts")
                         if k in det}},
        "verdict": result.verdict.to_dict(),
        "loops": [{k: v for k, v in lp.items() if k not in PER_POINT} for lp in result.loops],
        **({"auto": result.auto} if result.auto is not None else {}),
        **({"ensemble": result.ensemble} if result.ensemble is not None else {}),
        "warnings": list(result.warnings),
        "timings_s": {k: float(v) for k, v in result.timings.items()},
    }
