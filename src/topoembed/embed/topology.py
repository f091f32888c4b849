"""Does the embedding keep the loop? Persistent homology of the 2-D picture vs the data's."""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["embedding_topology", "VERDICTS", "MAX_POINTS"]

#: At most this many embedding points enter ripser (a seeded subsample above it).
MAX_POINTS = 1000

VERDICTS = {
    "shows": "the embedding shows the loop",
    "hides": "the embedding hides the loop",
    "spurious": "the embedding shows a loop the data does not support",
    "none": "neither the data nor the embedding shows a loop",
}


def embedding_topology(Y: np.ndarray, high_result: dict, max_points: int = MAX_POINTS, seed: int = 0,
                       n_loops="auto") -> dict:
    """Compare the loops of an embedding Y (n, d) with those found in high dimension.

    Runs Vietoris–Rips persistence (Euclidean) on Y, subsampled to ``max_points`` points
    (seeded) when larger, and :func:`topoembed.loops.detect` on its H1 diagram at the
    median distance scale. ``high_result`` is the high-dimensional detection result (a dict with
    at least ``n_loops``; ``score`` is carried over when present).

    Verdict (m_high, m_low the two loop counts):
    ``"shows"`` if m_low == m_high ≥ 1; ``"hides"`` if m_low < m_high; ``"spurious"`` if
    m_low > m_high; ``"none"`` if both are 0. Returns ``{"verdict", "message", "high":
    {"n_loops", "score"}, "low": {"n_loops", "score", "scores", "dgm1", "thresh"},
    "n_points", "subsampled"}``.
    """
    from .._validate import InputError, check_points
    from ..homology import persistence
    from ..loops import detect
    from ..spectral import pairwise_euclidean

    Y = check_points(Y, name="Y (embedding)", min_points=3)
    if "n_loops" not in high_result:
        raise InputError("high_result must be a loop-detection result with 'n_loops' "
                         "(the output of topoembed.loops.detect)")
    n = Y.shape[0]
    sub = n > max_points
    idx = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False)) if sub else np.arange(n)
    ph = persistence(pairwise_euclidean(Y[idx]), maxdim=1)
    low = detect(ph["dgms"][1], n_loops=n_loops, scale=ph["scale"])
    m_high, m_low = int(high_result["n_loops"]), int(low["n_loops"])
    if m_high == 0 and m_low == 0:
        verdict = "none"
    elif m_low == m_high:
        verdict = "shows"
    elif m_low < m_high:
        verdict = "hides"
    else:
        verdict = "spurious"
    message = VERDICTS[verdict]
    if verdict in ("shows", "hides") and m_high > 1:
        message = (message.replace("hides the loop", f"hides {m_high - m_low} of the {m_high} loops")
                   .replace("shows the loop", f"shows the {m_high} loops"))
    log.info("embedding topology: %d loop(s) in the data, %d in the embedding: %s", m_high, m_low, message)
    return {
        "verdict": verdict,
        "message": message,
        "high": {"n_loops": m_high, "score": float(high_result.get("score", np.nan))},
        "low": {"n_loops": m_low, "score": low["score"], "scores": low["scores"], "dgm1": ph["dgms"][1],
                "thresh": ph["thresh"]},
        "n_points": int(len(idx)),
        "subsampled": bool(sub),
        "indices": idx,
    }
