"""A single run's prevalence check: does a doubtful loop reappear in random subsamples?

On at most :data:`topoembed.params.ENSEMBLE_MIN_N` points (:func:`check_prevalence`), a loop whose universal-null p-value is
inconclusive (≥ :data:`CHECK_P`) is looked for in 10 subsamples of 70 % of the points (90 % of
101-399 points, :func:`check_fraction`), and its
prevalence is reported with it; where the run finds no loop, its longest H1 feature is looked
for the same way and reported if it recurs in 90 % of them (:func:`prevalence_stage`,
``Params.prevalence_check``).

Every run of at most :data:`topoembed.params.ENSEMBLE_MIN_N` points makes it where it applies
(:func:`single_with_check`, called by :func:`topoembed.analysis.run` and the staged
``topoembed localize``); the loop's ``prevalence`` is then evidence for the verdict
(:mod:`topoembed.verdict`).
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from . import extension, loops, pipeline, verdict
from ._parallel import Pool, resolve_jobs
from ._progress import Progress
from ._validate import check_points, option
from .params import MIN_PREVALENCE, takes_quarter_k
from .subsamples import (WORKER_PRELOAD, assign, consensus_phase, extend_loop, phase_corr, run_one, subsample_indices,
                         subsample_params)

log = logging.getLogger(__name__)

__all__ = ["single_with_check", "prevalence_stage", "check_prevalence", "needs_prevalence_check",
           "needs_recurrence_check", "check_fraction", "check_subsamples", "CHECK_MIN_CORR", "CHECK_P", "CHECK_NO_P_MAX_N",
           "CHECK_FRACTION", "CHECK_FRACTION_SMALL"]

#: A prevalence check counts a subsample's loop as the run's loop only from this |ρ| on: a
#: subsample run without the confirmation may report several noise loops, and on a noisy
#: sphere (n = 1,000, σ = 0.225) the best of them reached |ρ| = 0.52-0.76 with the run's
#: longest feature in 9 of 10 subsamples, while the IPC loop's matches are 0.97-0.99.
CHECK_MIN_CORR = 0.8
#: A single run's loop with a universal-null p-value of at least this gets its prevalence
#: measured (:func:`check_prevalence`): below it the p-value is evidence enough.
CHECK_P = verdict.P_CONCLUSIVE
#: Up to this many points a loop without a universal-null p-value is checked too: below the
#: default k's 100 points (the small-input graph, :meth:`topoembed.params.Params.for_small_input`)
#: few H1 features leave most loops without one, and without the check 6 of 30 no-loop sets of 50
#: points (blobs, uniform noise, small spheres) got a supported loop.
CHECK_NO_P_MAX_N = 100
#: Share of the points in each subsample of :func:`check_prevalence` (:func:`check_fraction`).
CHECK_FRACTION = 0.7
#: The share on 101-399 points (:func:`check_fraction`).
CHECK_FRACTION_SMALL = 0.9


def check_fraction(n: int) -> float:
    """The share of n points that each subsample of :func:`check_prevalence` holds:
    :data:`CHECK_FRACTION_SMALL` (0.9) on the inputs whose default graph takes a quarter of them
    as k (101-399 points, :func:`topoembed.params.takes_quarter_k`), :data:`CHECK_FRACTION` (0.7)
    otherwise.

    A check asks whether the loop is found again in smaller data; 70 % of 300 IPC cells is 210,
    the size at which the cell cycle is found in about half of the draws whatever the graph
    (BENCHMARKS.md "Small inputs"), so the check failed loops the run itself had found. IPC
    cells, 10 draws at each size, supported loops with 0.7 / 0.9: 150 cells 6 / 6, 200 cells
    7 / 9, 250 cells 9 / 8, 300 cells 6 / 9, 350 cells 10 / 10 (R² of CellCycle 0.77-0.90 where
    found); no supported loop with either on 120 no-loop sets of 150 and 300 points (blob, sphere,
    uniform) and 30 random sets of 150-350 pbmc68k_reduced cells; checked on fresh draws
    (BENCHMARKS.md "The prevalence check on small inputs"). At most 100 points it stays 0.7:
    there 0.9 gave 7 supported loops on 120 no-loop sets of 30-100 points against 4."""
    return CHECK_FRACTION_SMALL if takes_quarter_k(n) else CHECK_FRACTION


def single_with_check(X, params: pipeline.Params, jobs="auto", progress: bool = False, A=None) -> pipeline.Result:
    """One run on all points (on the graph ``A`` where given), then :func:`prevalence_stage`,
    and only then the withholding of unsupported phases.

    The check reads the run's *resolved* settings (``result.params``): with ``distance="auto"``
    they hold the chosen distance, k and loop count, so the check looks in the subsamples with
    that choice, and a count that ``auto`` decided is never decided again by another rule (it
    had turned ``auto``'s 0 loops into a loop with prevalence 0)."""
    res = pipeline.run(X, params, progress=progress, withhold=False, A=A)
    t0 = time.perf_counter()
    given = params.n_loops != "auto"  # the user's count, not one that a rule (or auto) decided
    with pipeline.collect_warnings() as caught:
        check = None
        if len(res.index) == X.shape[0]:  # not a subsample of X
            res.detection, res.loops, res.ph, check = prevalence_stage(
                X, res.A, res.D, res.ph, res.detection, res.loops, res.params, jobs=jobs, progress=progress,
                given_count=given)
        elif needs_prevalence_check(res.loops, res.params, len(res.index), given_count=given):
            check = _check_on_subsample(X, res, jobs, progress)
        if check is not None:
            res.timings["prevalence_check"] = time.perf_counter() - t0
            res.timings["total"] = res.timings.get("total", 0.0) + res.timings["prevalence_check"]
        pipeline.withhold_unsupported_phases(res.loops, res.detection, params)
    res.warnings += [w for w in caught if w not in res.warnings]
    return res


def _check_on_subsample(X, res: pipeline.Result, jobs, progress: bool) -> dict | None:
    """:func:`check_prevalence` of a ``subsample`` run's loops on the subsample's points, as
    if they had been given alone (the same 1,000 IPC cells as ``--subsample 1000`` and as a
    file of their own gave "possible loop" and "1 loop": the check was skipped). The loops'
    per-point arrays cover all n points (extended over the graph); the check reads them on the
    subsample's rows, and their prevalence is copied back. (A run that found no loop is not
    checked for a recurring feature here, as it is on all points: :func:`prevalence_stage`.)"""
    idx = res.index
    on_sub = [{**lp, **{f: np.asarray(lp[f])[idx] for f in pipeline.PER_POINT if f in lp}} for lp in res.loops]
    check = check_prevalence(X[idx], on_sub, res.params, jobs=jobs, progress=progress)
    if check is None:
        return None
    for lp, sub in zip(res.loops, on_sub):
        for key in ("prevalence", "n_runs", "n_subsamples"):
            if key in sub:
                lp[key] = sub[key]
    res.detection = {**res.detection, "prevalence_check": check}
    return check


def prevalence_stage(X, A, D, ph: dict, detection: dict, found: list, params: pipeline.Params, *,
                     jobs="auto", progress: bool = False, given_count: bool = False
                     ) -> tuple[dict, list, dict, dict | None]:
    """Prevalence as evidence for a run on all n points of X (its graph ``A``, distances ``D``,
    diagrams ``ph``, ``detection`` and localized loops ``found``, phases not yet withheld):

    * a loop with an inconclusive p-value (:func:`needs_prevalence_check`) gets its
      prevalence (:func:`check_prevalence`);
    * where no loop was found (:func:`needs_recurrence_check`), the longest H1 feature
      (:func:`topoembed.loops.recurrence_candidate`) is localized and checked, and
      :func:`topoembed.loops.decide` reports it if it recurs in at least 90 % of the subsamples.

    Only on at most :data:`topoembed.pipeline.ENSEMBLE_MIN_N` points (a larger input's
    confidence is an ensemble's prevalence; subsample runs of 0.7 n points would each cost
    O(n³)). Returns (detection, found, ph, check): updated where the check changed them;
    ``check`` None where none ran. Used by :func:`run` and the staged ``topoembed localize``.
    """
    index = np.arange(X.shape[0])
    if X.shape[0] > pipeline.ENSEMBLE_MIN_N:
        return detection, found, ph, None
    if needs_prevalence_check(found, params, X.shape[0], given_count=given_count):
        check = check_prevalence(X, found, params, jobs=jobs, progress=progress)
        if check is not None:
            detection = {**detection, "prevalence_check": check}
        return detection, found, ph, check
    if not needs_recurrence_check(ph, detection, params):
        return detection, found, ph, None
    dgm1, scale = ph["dgms"][1], ph["scale"]
    row = loops.recurrence_candidate(dgm1, scale)
    candidate = loops.decide(dgm1, scale=scale, n_loops=1, rule=params.loop_rule)
    assert candidate["features"] == [row]
    cand = pipeline.describe_loops(ph, candidate, index)
    log.info("no loop by the detection rule; looking for the longest H1 feature (row %d) in subsamples "
             "(%s skips this)", row, option("prevalence_check", False))
    ph_cand = pipeline.localization_stage(cand, X, index, A, D, ph, candidate, params, withhold=False)
    check = check_prevalence(X, cand, params, jobs=jobs, progress=progress)
    if check is None:
        return detection, found, ph, None
    check["candidate"] = row
    recurrence = {"feature": row, "prevalence": cand[0]["prevalence"], "n_subsamples": check["n_subsamples"]}
    decided = loops.decide(dgm1, scale=scale, n_loops=params.n_loops, rule=params.loop_rule,
                                    confirmation=detection.get("confirmation"), surface=detection.get("surface"),
                                    recurrence=recurrence)
    for key in ("unconfirmed", "surface_loops"):  # as decide_loops annotated them
        if key in detection and key in decided:
            decided[key] = detection[key]
    decided["prevalence_check"] = check
    if decided["n_loops"] == 0:
        log.info("the longest H1 feature recurs in %d of %d subsamples (< %.0f %%): no loop", cand[0]["n_runs"],
                 check["n_subsamples"], 100 * loops.RECURRENCE_MIN)
        return decided, found, ph, check
    cand[0]["p_value"] = decided["p_values"][0]
    log.warning("the detection rule finds no loop, but its longest H1 feature recurs in %d of %d random "
                "subsamples of %d points: reported as a loop (%s does not)", cand[0]["n_runs"],
                check["n_subsamples"], check["subsample_size"], option("prevalence_check", False))
    return decided, cand, ph_cand, check


def staged_localization(X, A, D, ph: dict, detection: dict, params: pipeline.Params, *, jobs="auto",
                        progress: bool = False) -> tuple[dict, list, dict, dict | None, float]:
    """What :func:`topoembed.pipeline.run` does after the detection, for the staged steps that
    start from a stored detection (``topoembed localize``, ``te.tl.detect_loops``): describe and
    localize the loops (the groups on each cycle counted on X), :func:`prevalence_stage`, then
    withhold the phases no evidence supports. X None (the points are not at hand): no
    prevalence check and no groups count. Returns (detection, found, ph, check, seconds of the check)."""
    index = np.arange(D.shape[0])
    found = pipeline.describe_loops(ph, detection, index)
    if params.localize and found:
        ph = pipeline.localization_stage(found, X, index, A, D, ph, detection, params, withhold=False)
    check, t0 = None, time.perf_counter()
    if X is not None:  # as run: prevalence as evidence, and the phases withheld only after it had its say
        detection, found, ph, check = prevalence_stage(X, A, D, ph, detection, found, params, jobs=jobs,
                                                       progress=progress, given_count=params.n_loops != "auto")
    pipeline.withhold_unsupported_phases(found, detection, params)
    return detection, found, ph, check, (time.perf_counter() - t0 if check is not None else 0.0)


def needs_recurrence_check(ph: dict, detection: dict, params: pipeline.Params) -> bool:
    """Whether a run that found no loop should have its longest H1 feature checked for
    recurrence (:func:`prevalence_stage`): ``params.prevalence_check`` and ``localize`` are on,
    the count is decided by rule "evidence" (``n_loops="auto"``), and there is a
    :func:`topoembed.loops.recurrence_candidate`."""
    return (bool(params.prevalence_check) and bool(params.localize) and params.n_loops == "auto"
            and params.loop_rule == "evidence" and detection["n_loops"] == 0 and len(ph["dgms"]) > 1
            and loops.recurrence_candidate(ph["dgms"][1], ph["scale"]) is not None)


def needs_prevalence_check(found: list, params: pipeline.Params, n: int | None = None,
                           given_count: bool = False) -> bool:
    """Whether a single run's loops ``found`` (on ``n`` points) need :func:`check_prevalence`:
    ``params.prevalence_check`` is on and a reported loop with a phase has a universal-null
    p-value of at least :data:`CHECK_P`, or none at all on at most :data:`CHECK_NO_P_MAX_N`
    points or where the user gave the count (``given_count``: ``n_loops`` not "auto"). A loop of
    a closed surface has the void as its evidence. A loop without a p-value on more points whose
    count a rule decided, as on a clean circle with too few H1 features, has nothing to doubt;
    with a given count it is only the longest feature: scanpy's toggleswitch (200 points in 2-D,
    two branches, no loop, 5 H1 features) with ``n_loops=1`` was "1 loop" (death/birth 1.26)."""
    small = n is not None and n <= CHECK_NO_P_MAX_N
    return bool(params.prevalence_check) and any(
        (lp["p_value"] >= CHECK_P if lp.get("p_value") is not None else small or given_count)
        and "surface_void_p" not in lp and "phase" in lp for lp in found)


def check_prevalence(X, found: list, params: pipeline.Params | None = None, *, jobs="auto",
                     progress: bool = False) -> dict | None:
    """The prevalence of a single run's loops on X (all n points): the share of
    :data:`topoembed.pipeline.ENSEMBLE_RUNS` random subsamples of :func:`check_fraction` · n
    points, each analysed alone (:func:`subsample_params`, deciding its own count), that find
    the same loop.

    The loops ``found`` carry phases and ``on_loop`` over all n points (:func:`topoembed.pipeline.run`
    with ``withhold=False``). Each run's loops are extended to all points over
    :func:`topoembed.pipeline.extension_graph` and assigned to them one to one (Hungarian) by
    |ρ| of the phases on the points of the run's loop (≥ :data:`CHECK_MIN_CORR`, stricter than
    the ensemble's :data:`MATCH_MIN_CORR`: these runs may report several noise loops each, and
    one of them then matches by chance). Only the run's loops are references: a subsample that splits the loop
    into two features (the IPC cells, 1 in 10) counts once and does not pull the others away.
    Adds ``prevalence`` (matched runs / runs made), ``n_runs`` and ``n_subsamples`` (runs made)
    to each loop; where at least half the runs found it (:data:`topoembed.params.MIN_PREVALENCE`),
    its phase becomes the consensus of the run and those runs (:func:`_consensus`, with
    ``phase_spread``), as an ensemble's is its runs'. The prevalence is what
    :func:`topoembed.pipeline.loop_support` then reads (≥ 0.9: supported whatever its
    p-value), and returns the check's record (B, m, each run's count, the prevalences), or
    None where a subsample would be too small for the graph's k.

    The issue's evidence from subsamples (García-Redondo, Monod and Song 2024; Mousley and
    Bendich 2024): a real loop reappears in most subsamples, a loop made by a few points does
    not.

    With ``params.early_stop`` (default) the check stops once every loop's support is decided:
    9 of the 10 subsamples found it, or 2 missed it (it cannot reach 0.9); the prevalence is
    then over the runs made (``n_subsamples``, of ``n_planned``). On at most
    :data:`CHECK_NO_P_MAX_N` points all 10 run (a few seconds at most): there the prevalence is
    most of a loop's evidence, and a stopped check read "found in 0 of 2" for a COIL-20 object
    (16, 20 PCs) whose loop 5 of the 10 runs find (BENCHMARKS.md, "Why COIL-20's possible loops
    stay possible"). Runs are taken in subsample
    order whatever the number of jobs, so the result does not depend on it. Cost: up to 10
    single runs of 0.7 n (0.9 n) points with their localization, without the closed surface (2.5-4.7
    times the run itself on 2 CPUs where a loop is checked; on noise it stops after 2 runs,
    1.1-2 times).
    """
    params = params or pipeline.Params()
    X = check_points(X, min_points=3)
    n = X.shape[0]
    idxs, single = check_subsamples(n, params)
    m = len(idxs[0])
    if int(params.k) >= m - 1:
        log.info("no prevalence check: subsamples of %d points are too small for k = %d", m, params.k)
        return None
    B = len(idxs)
    jobs = resolve_jobs(jobs, B)
    weak = ", ".join(f"{lp['p_value']:.2g}" for lp in found if lp.get("p_value") is not None)
    log.info("prevalence check: universal-null p = %s; analysing %d subsamples of %d of the %d points "
             "(%s skips this)", weak, B, m, n, option("prevalence_check", False))
    bar = Progress(B, "topoembed prevalence check", "run", enabled=progress)
    need = int(np.ceil(loops.RECURRENCE_MIN * B - 1e-9))  # matched runs for support: 9 of 10
    stop = bool(params.early_stop) and n > CHECK_NO_P_MAX_N  # all 10 on small inputs: the count is the evidence
    hits = np.zeros(len(found), dtype=int)
    agreeing: list[list[np.ndarray]] = [[] for _ in found]  # the phases of each loop's matches, over all points
    runs: dict = {}
    done = B
    with Pool(jobs, killed_hint=f"run again with fewer jobs or {option('prevalence_check', False)}",
              preload=WORKER_PRELOAD) as pool:
        bar.note(f"kNN graph of all {n:,} points…")
        ext_graph = extension.build(X, params, include=idxs)
        for start in range(0, B, jobs):  # one batch per round of the workers, so that it can stop
            batch = list(range(start, min(B, start + jobs)))
            for b, res in pool.imap(run_one, [(b, X[idxs[b]], single) for b in batch]):
                runs[b] = res
                bar.step(f"subsample {b + 1}: {res.detection['n_loops']} loop(s)")
            for b in batch:  # in subsample order, whatever the number of jobs: the same stop, the same result
                for j, e in _matched(found, [extend_loop(lp, ext_graph, idxs[b]) for lp in runs[b].loops]).items():
                    hits[j] += 1
                    agreeing[j].append(e["phase"])
                if stop and all(h >= need or (b + 1 - h) > B - need for h in hits):
                    done = b + 1  # every loop's support is decided
                    break
            if done < B:
                break
    bar.close()
    runs = [runs[b] for b in range(done)]
    prevalence = []
    for j, lp in enumerate(found):
        lp["n_runs"], lp["n_subsamples"] = int(hits[j]), done
        lp["prevalence"] = lp["n_runs"] / done
        prevalence.append(lp["prevalence"])
        if lp["prevalence"] >= MIN_PREVALENCE:  # a loop most runs miss keeps its own phase, as the ensemble
            _consensus(lp, agreeing[j])           # reports only a loop that half its runs find
    log.info("prevalence check: %s", ", ".join(f"loop {j + 1} in {lp['n_runs']} of {done} subsamples"
                                               for j, lp in enumerate(found)))
    return {"n_subsamples": done, "n_planned": B, "stopped_early": done < B, "subsample_size": m,
            "p_at_least": CHECK_P, "prevalence": prevalence,
            "runs": [{"n_loops": int(r.detection["n_loops"]), "score": float(r.detection["score"])} for r in runs],
            "jobs": jobs}


def check_subsamples(n: int, params: pipeline.Params) -> tuple[list[np.ndarray], pipeline.Params]:
    """What :func:`check_prevalence` analyses of n points: the rows of its
    :data:`topoembed.pipeline.ENSEMBLE_RUNS` subsamples of :func:`check_fraction` · n points
    (drawn from ``params.seed``), and the settings of each subsample's run."""
    m = int(round(check_fraction(n) * n))
    idxs = subsample_indices(n, m, pipeline.ENSEMBLE_RUNS, params.seed)
    # the subsamples decide their own count: a fixed count would make every run report its longest
    # feature, and on a Gaussian blob (n = 400, n_loops=1) such noise loops then matched in 4-8 of 10.
    # No closed surface in them: a loop of a surface is never checked (its void is its evidence),
    # and on the IPC cells the surface's H2 was 45 % of the check's time, with no void found.
    single = dataclasses.replace(subsample_params(params), n_loops="auto", surface=False)
    if n <= CHECK_NO_P_MAX_N:  # a graph of 10 neighbours spans a fifth of a 50-point loop and hides it
        single = dataclasses.replace(single, k=max(3, int(params.k) // 2))
    return idxs, single


def _matched(found: list, ext_b: list) -> dict:
    """{j: the loop of ``ext_b`` that matches loop j of ``found``}: a subsample run's loops
    (extended to all points) matched to the run's (:data:`CHECK_MIN_CORR`, one to one)."""
    if not ext_b:
        return {}
    # each run's loops against this run's, on the points of this run's loop
    cm = np.array([[phase_corr(e["phase"], lp["phase"], lp["on_loop"]) for lp in found] for e in ext_b])
    return {j: ext_b[i] for i, j in assign(cm, CHECK_MIN_CORR).items()}


def _consensus(lp: dict, agreeing: list) -> None:
    """The run's phase made the consensus of the run and the check's runs that found its loop
    (``agreeing``: their phases, extended to all points), as an ensemble's phase is its runs'
    (:func:`topoembed.subsamples.consensus_phase`, aligned onto the run's phase): ``phase`` on
    the points the run gave one, ``phase_spread`` (circular variance across them) and
    ``phase_confidence`` times 1 − spread (BENCHMARKS.md, "A small input's phase: the consensus
    of its prevalence check")."""
    if not agreeing or "phase" not in lp:
        return
    own = np.asarray(lp["phase"], dtype=np.float64)
    theta, spread = consensus_phase([own, *agreeing])
    off = ~np.isfinite(own)  # no phase where the run gave none (another component of its graph)
    theta[off], spread[off] = np.nan, np.nan
    lp.update(phase=theta, phase_spread=spread)
    if "phase_confidence" in lp:
        conf = np.asarray(lp["phase_confidence"], dtype=np.float64) * (1 - spread)
        lp.update(phase_confidence=conf,
                  median_phase_confidence=float(np.nanmedian(conf)) if np.isfinite(conf).any() else float("nan"))

