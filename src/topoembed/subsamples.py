"""Subsamples of one point set, and one single run on each: what the ensemble of a whole
dataset (:mod:`topoembed.ensemble`) and a single run's prevalence check
(:mod:`topoembed.prevalence`) share.

* :func:`subsample_indices`: seeded random subsets (one child seed per subsample);
* :func:`subsample_params`: the settings of a subsample's run (no second distance: the
  prevalence across subsamples is the second opinion);
* :func:`run_one`: one subsample through :func:`topoembed.pipeline.run` (picklable, for workers);
* :func:`extend_loop`: a run's loop over all points (harmonic extension over the kNN graph);
* :func:`phase_corr` and :func:`assign`: how two runs' loops are matched (|ρ| of their phases,
  one to one);
* :func:`consensus_phase`: the phase of the runs that found one loop, and its spread.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from . import pipeline
from . import localize as localization

__all__ = ["subsample_indices", "subsample_params", "run_one", "extend_loop", "phase_corr", "assign", "consensus_phase",
           "WORKER_PRELOAD", "MATCH_MIN_POINTS", "MATCH_MIN_CORR"]

#: Two runs' loops are the same loop when their phases correlate at least this much (on the
#: reference loop's points, :func:`topoembed.ensemble.match_loops`).
MATCH_MIN_CORR = 0.5
#: Fewest points on two loops for :func:`match_loops` to compare them there (else on all points).
MATCH_MIN_POINTS = 20

#: What each worker imports as it starts (the pipeline and the persistence engines' compiled
#: cores, about 0.7 s), which then overlaps with the parent's graph of all points.
WORKER_PRELOAD = ("topoembed.pipeline", "topoembed.homology:load_engines")


def subsample_indices(n: int, size: int, count: int, seed: int) -> list[np.ndarray]:
    """``count`` sorted random subsets of range(n) of ``size`` points, one child seed each."""
    children = np.random.SeedSequence(seed).spawn(count)
    return [np.sort(np.random.default_rng(c).choice(n, size=min(size, n), replace=False)) for c in children]


def subsample_params(params: pipeline.Params) -> pipeline.Params:
    """The settings of each subsample's single run: the user's, on all of the subsample's
    points, without the second spectral distance's confirmation: across subsamples the
    prevalence is the second opinion (:data:`topoembed.ensemble.MIN_PREVALENCE` to report a loop), and a run that
    vetoes a clear loop because diffusion reads the thick IPC loop differently
    (0 or 2 loops) would lower the prevalence of a real loop (BENCHMARKS.md, "Evidence for
    each loop")."""
    return dataclasses.replace(params, subsample=None, n_subsamples=1, confirm=False)


def run_one(args):
    """One subsample through the single run (top level: picklable for worker processes)."""
    b, Xs, params = args
    t0 = time.perf_counter()
    res = pipeline.run(Xs, params, final=False)  # one BLAS thread per run, whatever the number of jobs
    res.timings["wall"] = time.perf_counter() - t0
    return b, res


def phase_corr(phase, ref, where=None) -> float:
    """|ρ| (Fisher-Lee) of a loop's phase with a reference loop's, on the reference loop's
    points ``where`` when there are at least :data:`MATCH_MIN_POINTS` of them, else on all."""
    phase, ref = np.asarray(phase, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.sum() >= MATCH_MIN_POINTS:
            phase, ref = phase[where], ref[where]
    return abs(localization.circular_correlation(phase, ref))


def assign(cm: np.ndarray, min_corr: float) -> dict:
    """{loop: reference} from |ρ| of each loop (rows) with each reference (columns): one loop
    per reference and one reference per loop (Hungarian assignment), pairs with |ρ| ≥ min_corr."""
    from scipy.optimize import linear_sum_assignment  # here: 0.25 s of import that --help need not pay

    rows, cols = linear_sum_assignment(-cm)
    return {int(r): int(c) for r, c in zip(rows, cols) if cm[r, c] >= min_corr}


def consensus_phase(phases: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Circular mean and circular variance per point of phases aligned onto ``phases[0]``.

    Each phase is first rotated and, if that fits better, reflected onto the first
    (:func:`topoembed.localize.circular_alignment`). NaNs are left out per point.
    """
    ref = phases[0]
    acc = np.zeros(len(ref), dtype=np.complex128)
    cnt = np.zeros(len(ref))
    for th in phases:
        if not (np.isfinite(th) & np.isfinite(ref)).any():
            continue
        _, sign, shift = localization.circular_alignment(ref, th)
        z = np.exp(1j * (sign * th + shift))
        ok = np.isfinite(z)
        acc[ok] += z[ok]
        cnt[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = acc / cnt
    theta = np.mod(np.angle(mean), 2 * np.pi)
    spread = 1 - np.abs(mean)
    theta[cnt == 0] = np.nan
    spread[cnt == 0] = np.nan
    return theta, spread


def extend_loop(lp: dict, ext, idx) -> dict:
    """One run's loop over all points (``ext``: :class:`topoembed.extension.Extension`): phase,
    confidence and relative distance to the loop."""
    # the run's own loop dict is over its subsample (the single run has no other points)
    rel = np.asarray(lp["loop_distance"], dtype=np.float64) / lp["on_loop_threshold"]
    phase = ext.phase(idx, lp["phase"])
    dist = ext.values(idx, rel)
    conf = ext.confidence(phase, dist, 1.0)
    return {"phase": phase, "loop_distance": dist, "phase_confidence": conf}
