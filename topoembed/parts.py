"""Loops that only a few percent of the points carry: a loop search inside each part of the data.

A uniform subsample of 700 of 20,000 points holds about 35 points of a circle that 5 % of
them carry (14 at 2 %): too few for a loop at the pipeline's k = 100, so the ensemble of
uniform subsamples (:mod:`topoembed.ensemble`) misses it. Above the ensemble:

1. **Partition.** The union kNN graph of all points (the one the ensemble extends its
   loops over, :func:`topoembed.pipeline.extension_graph`) is split into communities by
   Leiden modularity optimisation (Traag, Waltman and van Eck 2019; ``igraph``, seeded),
   at resolution :data:`RESOLUTION`.
2. **Search.** Every part of at least :data:`MIN_PART` points and at most
   :data:`MAX_SHARE` of all points (at most :data:`MAX_PARTS`, largest first) is first
   screened by one run on at most ``subsample_size`` (700) of its points, confirmed by the
   second spectral distance. Where the screen finds a loop that the uniform subsamples do not
   already report (step 4), the part is analysed alone as a dataset of its own: a single run
   with its prevalence check up to 1,000 points, an ensemble of uniform subsamples above. A larger part
   is seen well enough by the uniform subsamples themselves.
3. **Multiple testing.** Each loop's universal-null p-value is multiplied by the number
   of parts searched (Bonferroni; ``p_value_in_part`` keeps the part's own), so a search
   over many parts is not a search for a chance loop in one of them.
4. **New loops only.** A part's loop is given over all points, NaN outside its part (phase,
   confidence and distance; so ``on_loop`` only inside it); one that matches a loop the uniform ensemble
   already reports (|ρ| ≥ :data:`topoembed.subsamples.MATCH_MIN_CORR` on the part loop's
   points) is left out, so uniform results stay as they were. A new loop keeps its
   part (``part``, ``part_size``) and is judged by :mod:`topoembed.verdict` like any other.

Cost: one Leiden partition of the graph (about 0.4 s at 20,000 points), one screening run of at
most 700 points per searched part, and for a part whose screen finds a loop one analysis of its
points (a single run and its prevalence check, or up to 10 subsample runs of 700 points).
"""
from __future__ import annotations

import dataclasses
import logging
import random

import numpy as np

from . import pipeline
from ._validate import InputError
from .subsamples import MATCH_MIN_CORR, extend_loop, phase_corr, subsample_params

log = logging.getLogger(__name__)

__all__ = ["partition", "searched_parts", "search", "RESOLUTION", "MIN_PART", "MAX_SHARE", "MAX_PARTS"]

#: Leiden's modularity resolution: 1 (the standard modularity; scanpy's default).
RESOLUTION = 1.0
#: Fewest points of a part searched alone: a run with k = 100 needs a few times k points, and
#: 150 is the smallest size at which the defaults were checked on a circle.
MIN_PART = 150
#: Largest share of all points a searched part may hold: above it the uniform subsamples of
#: 700 points hold at least 175 of its points, as many as a part of the smallest size searched.
MAX_SHARE = 0.25
#: Most parts searched (the largest of the eligible ones).
MAX_PARTS = 12


def partition(A, resolution: float = RESOLUTION, seed: int = 0) -> np.ndarray:
    """Community labels (0, 1, ... by decreasing size) of the graph A by Leiden modularity
    (igraph's ``community_leiden``; A's nonzeros as unweighted edges), seeded."""
    import igraph

    A = A.tocoo()
    upper = A.row < A.col
    g = igraph.Graph(n=A.shape[0], edges=np.c_[A.row[upper], A.col[upper]])
    state = random.getstate()
    random.seed(int(seed))  # igraph draws from Python's random module
    try:
        labels = np.asarray(g.community_leiden(objective_function="modularity", resolution=resolution,
                                               n_iterations=-1).membership)
    finally:
        random.setstate(state)
    order = np.argsort(-np.bincount(labels), kind="stable")
    return np.argsort(order)[labels]


def searched_parts(labels: np.ndarray) -> list[np.ndarray]:
    """The parts (row indices) that :func:`search` analyses: MIN_PART ≤ size ≤ MAX_SHARE · n, largest first."""
    n = len(labels)
    sizes = np.bincount(labels)
    ok = [c for c in np.argsort(-sizes, kind="stable") if MIN_PART <= sizes[c] <= MAX_SHARE * n]
    return [np.flatnonzero(labels == c) for c in ok[:MAX_PARTS]]


def search(X, A_full, params: pipeline.Params, known: list, analyse, *, jobs="auto") -> tuple[list, dict]:
    """Loops inside the parts of X that the ensemble's loops ``known`` (consensus loops over all
    points) do not already hold (module docstring). ``analyse(X_part, params, jobs=...)`` is the
    analysis of one part (:func:`topoembed.ensemble.run`, passed in by it: a single run with its
    prevalence check, or an ensemble). Returns (new loops over all points, record)."""
    labels = partition(A_full, seed=params.seed)
    parts = searched_parts(labels)
    inner = dataclasses.replace(params, parts=False, n_subsamples="auto", subsample=None)
    record = {"n_parts": int(labels.max()) + 1, "searched": [int(len(P)) for P in parts], "loops": [],
              "screened_loops": []}
    if not parts:
        return [], record
    log.info("parts: %d parts of the graph; looking for loops inside the %d of %d-%d points",
             record["n_parts"], len(parts), len(parts[-1]), len(parts[0]))
    new = []
    screen_params = dataclasses.replace(subsample_params(inner), confirm=True)
    rng = np.random.default_rng(params.seed)
    for i, P in enumerate(parts):
        # the screen: one run on at most one subsample's worth of the part's points; only a part
        # whose screen finds a loop gets the full analysis (on the IPC cells, 12 parts and no loop:
        # 60 s of full analyses otherwise)
        m = min(len(P), int(params.subsample_size))
        Ps = P if m == len(P) else np.sort(rng.choice(P, m, replace=False))
        try:
            screen = pipeline.run(X[Ps], screen_params, final=False)
        except InputError as err:  # a part that cannot be analysed (too small for k) is not searched
            log.info("part %d (%d points) not searched: %s", i, len(P), err)
            record["screened_loops"].append(None)
            continue
        record["screened_loops"].append(int(screen.detection["n_loops"]))
        log.info("part %d of %d (%d points): the screen finds %d loop(s)", i + 1, len(parts), len(P),
                 screen.detection["n_loops"])
        if not screen.detection["n_loops"] or all(
                _has_phase(lp) and _matches_known(lp, extend_loop(lp, A_full, Ps), Ps, known) for lp in screen.loops):
            continue  # no loop, or only loops the uniform subsamples report already
        try:
            res = analyse(X[P], inner, jobs=jobs)
        except InputError as err:  # a part that cannot be analysed (too small for k) is not searched
            log.info("part %d (%d points) not searched: %s", i, len(P), err)
            continue
        for lp in res.loops:
            if lp.get("loop_distance") is None or not _has_phase(lp):
                continue  # not localized, or unsupported within its part (phase withheld): not a finding
            ext = extend_loop(lp, A_full, P)
            if _matches_known(lp, ext, P, known):
                continue
            new.append(_global_loop(lp, ext, P, len(parts), i))
            record["loops"].append({"part": i, "part_size": int(len(P)), "p_value_in_part": lp.get("p_value"),
                                    "prevalence": lp.get("prevalence")})
    return new, record


def _has_phase(lp: dict) -> bool:
    """Whether a run's loop carries a phase (none where it was withheld as unsupported)."""
    return "phase" in lp and bool(np.isfinite(np.asarray(lp["phase"], float)).any())


def _matches_known(lp: dict, ext: dict, rows: np.ndarray, known: list) -> bool:
    """Whether a loop found on the points ``rows`` (``ext``: its extension over the graph,
    :func:`topoembed.subsamples.extend_loop`) is one of the loops ``known`` over all points:
    |ρ| of the phases on its own points ≥ MATCH_MIN_CORR."""
    where = np.zeros(len(ext["phase"]), bool)
    where[rows[np.asarray(lp["on_loop"], bool)]] = True
    return any(phase_corr(k["phase"], ext["phase"], where) >= MATCH_MIN_CORR for k in known if "phase" in k)


def _global_loop(lp: dict, ext: dict, P: np.ndarray, n_searched: int, part: int) -> dict:
    """A part's loop over all points, its ids and p-value those of the whole data."""
    out = {k: v for k, v in lp.items() if k not in pipeline.PER_POINT}
    p = lp.get("p_value")
    # the loop belongs to its part: outside it the extension over the graph would only spread the
    # part's values into a neighbouring part (a cluster joined to the circle by a few edges)
    outside = np.ones(len(ext["phase"]), bool)
    outside[P] = False
    ext = {key: np.where(outside, np.nan, val) for key, val in ext.items()}
    dist = ext["loop_distance"]
    out.update(
        cycle=[int(P[v]) for v in lp.get("cycle", [])], birth_edge=[int(P[v]) for v in lp.get("birth_edge", [])],
        p_value=None if p is None else float(min(1.0, p * n_searched)), p_value_in_part=p,
        n_parts_searched=int(n_searched), part=int(part), part_size=int(len(P)),
        phase=ext["phase"], phase_confidence=ext["phase_confidence"], loop_distance=dist,
        on_loop=np.nan_to_num(dist, nan=np.inf) <= 1.0, on_loop_threshold=1.0,
    )
    conf = out["phase_confidence"]
    out["median_phase_confidence"] = float(np.nanmedian(conf)) if np.isfinite(conf).any() else float("nan")
    out["n_on_loop"] = int(out["on_loop"].sum())
    if "phase_spread" in lp:
        spread = np.full(len(dist), np.nan)
        spread[P] = lp["phase_spread"]
        out["phase_spread"] = spread
    return out
