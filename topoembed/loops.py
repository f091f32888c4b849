"""Stage 4: loop detection from the H1 persistence diagram.

Detection score (Damrich, Berens and Kobak, NeurIPS 2024). Keep the H1 features whose
death/birth ratio exceeds ``min_ratio`` (1.25), sort their lifetimes
p_1 ≥ p_2 ≥ … (p = death − birth), and for m loops define

    s_m = (p_m − p_{m+1}) / p_m,

with p_{m+1} = 0 when exactly m features pass the filter (s_m = 1) and s_m = 0 when fewer
than m pass. A feature born at 0 has an infinite ratio and always passes.

Number of loops (``n_loops="auto"``): take the m in 1..5 with the largest absolute drop
p_m − p_{m+1} between consecutive filtered lifetimes (the smallest m on ties). Report m
loops if that drop is also large in relative terms, s_m ≥ ``min_score`` (0.5: p_m is at
least twice p_{m+1}), and p_m is at least ``min_persistence`` (0.05) of the distance
scale (the median pairwise distance, :func:`topoembed.homology.distance_scale`, which a
few outlying points cannot inflate); otherwise report 0. Using
the absolute drop to pick m, rather than the largest s_m, matters because s_m = 1
whenever exactly m features pass the ratio filter, however tiny the m-th one is. With 0
loops the reported ``score`` is 1 − max_m s_m (how clearly no loop stands out).
"""
from __future__ import annotations

import numpy as np

__all__ = ["filtered_lifetimes", "detection_scores", "detect", "MIN_RATIO", "MAX_LOOPS"]

MIN_RATIO = 1.25
MAX_LOOPS = 5
MIN_SCORE = 0.5
MIN_PERSISTENCE = 0.05


def filtered_lifetimes(dgm: np.ndarray, min_ratio: float = MIN_RATIO,
                       binary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lifetimes of the features with death/birth > min_ratio, sorted descending, and their rows.

    ``binary=True`` is the all-or-nothing variant of the filter that the published
    benchmark figures use (eff-ph, ``filter_diagram(..., dob=1.25, binary=True)``): if
    any feature passes, *every* finite feature is kept, otherwise none. It scores lower
    whenever short-ratio features outlive the (m+1)-th passing one.
    """
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    birth, death = dgm[:, 0], dgm[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(birth > 0, death / birth, np.inf)
    passes = (ratio > min_ratio) & np.isfinite(death)
    if binary and passes.any():
        passes = np.isfinite(death)
    keep = np.flatnonzero(passes)
    life = death[keep] - birth[keep]
    order = np.argsort(-life, kind="stable")
    return life[order], keep[order]


def detection_scores(dgm: np.ndarray, max_loops: int = MAX_LOOPS, min_ratio: float = MIN_RATIO,
                     binary: bool = False) -> dict:
    """{m: s_m} for m = 1..max_loops (see module docstring; ``binary`` as in
    :func:`filtered_lifetimes`)."""
    life, _ = filtered_lifetimes(dgm, min_ratio, binary)
    scores = {}
    for m in range(1, max_loops + 1):
        if len(life) < m:
            scores[m] = 0.0
        else:
            nxt = life[m] if len(life) > m else 0.0
            scores[m] = float((life[m - 1] - nxt) / life[m - 1]) if life[m - 1] > 0 else 0.0
    return scores


def detect(dgm: np.ndarray, n_loops="auto", scale: float | None = None, max_loops: int = MAX_LOOPS,
           min_ratio: float = MIN_RATIO, min_score: float = MIN_SCORE,
           min_persistence: float = MIN_PERSISTENCE) -> dict:
    """Detection result for one H1 diagram.

    Parameters
    ----------
    dgm : (m, 2) H1 diagram.
    n_loops : "auto" or a fixed number m ≥ 0 (then ``score`` is s_m).
    scale : distance scale (median pairwise distance, ``persistence(D)["scale"]``) for the
        ``min_persistence`` rule; default: the largest finite death in ``dgm``.

    Returns ``{"n_loops", "scores", "score", "features"}`` where ``features`` are the row
    indices into ``dgm`` of the m detected loops, longest first.
    """
    scores = detection_scores(dgm, max_loops, min_ratio)
    life, rows = filtered_lifetimes(dgm, min_ratio)
    if n_loops == "auto":
        if scale is None:
            finite = np.asarray(dgm, dtype=float).reshape(-1, 2)[:, 1]
            finite = finite[np.isfinite(finite)]
            scale = float(finite.max()) if len(finite) else 0.0
        # the largest drop between consecutive filtered lifetimes (p_{m+1} = 0 past the end)
        gaps = [life[j - 1] - (life[j] if len(life) > j else 0.0) for j in range(1, min(len(life), max_loops) + 1)]
        m = int(np.argmax(gaps)) + 1 if gaps else 0
        if m and (scores[m] < min_score or life[m - 1] < min_persistence * scale):
            m = 0
    else:
        m = int(n_loops)
        if m < 0:
            raise ValueError(f"n_loops={n_loops!r} must be 'auto' or an integer >= 0")
    score = scores.get(m, 0.0) if m > 0 else (1.0 - max(scores.values()) if scores else 1.0)
    return {"n_loops": m, "scores": scores, "score": float(score), "features": rows[:m].tolist()}
