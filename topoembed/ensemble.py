"""Whole datasets: an ensemble of subsamples above the single run.

The single run (:func:`topoembed.pipeline.run`) is tuned for 300 to 1,000 points (the
published protocol uses 1,000; subsamples of 700 find the IPC loop and two noisy linked
circles as often at 40 % of the cost, :data:`topoembed.pipeline.SUBSAMPLE_SIZE`), and building the graph on a subsample keeps the loop, whereas a
dense distance matrix of all cells does not fit and subsampling one loses the loop. So a
dataset with more than :data:`topoembed.pipeline.ENSEMBLE_MIN_N` points is analysed as B subsamples of m points
(``Params.n_subsamples``, ``Params.subsample_size``; defaults 10 × 700):

1. Each subsample b (seeded by ``SeedSequence(seed).spawn``) goes through the same single
   run, locally in ``jobs`` processes, or as one Snakemake job each (:func:`run_subsample`,
   then :func:`combine`; ``topoembed subsample`` and ``topoembed run --from-runs``,
   ``workflows/ensemble.smk``); the run knows nothing of the ensemble. It skips the second
   spectral distance's confirmation (:func:`subsample_params`): step 4's prevalence is the
   second opinion.
2. Each loop's phase and distance to the loop are extended to all n points over one union
   kNN graph of all points (:func:`topoembed.pipeline.extension_graph`, k = 15;
   :func:`topoembed.localize.extend_phase`).
3. Loops are matched across runs by their phases on the points of the cluster's first loop
   (its run's relative loop distance ≤ 1 over all points): runs are visited by decreasing
   detection score; a loop joins the cluster whose first loop it correlates with best (|ρ|, Fisher-Lee
   circular correlation, ≥ :data:`MATCH_MIN_CORR`, one loop per cluster and run, Hungarian
   assignment), or opens a new cluster.
4. **Prevalence** of a cluster = the share of the B runs that found it. A loop is reported
   when its prevalence is ≥ :data:`MIN_PREVALENCE` (a majority of subsamples); a loop found
   in one subsample out of ten is not a finding.
5. Per point and reported loop: the **consensus phase** is the circular mean of the runs'
   phases, each first rotated/reflected onto the cluster's first loop
   (:func:`topoembed.localize.circular_alignment`); ``phase_spread`` is its circular
   variance 1 − |mean e^{iθ_b}| (0: the runs agree); ``phase_confidence`` the runs' mean
   confidence times that agreement; ``loop_distance`` the median over runs of each run's
   distance divided by its on-loop threshold (≤ 1: on the loop); ``on_loop`` that median ≤ 1.
   The loop's ``p_value`` is the median of the runs' universal-null p-values
   (:func:`topoembed.loops.decide`; each run reports only significant loops).

**A single run's prevalence check** (:func:`check_prevalence`): on at most
:data:`topoembed.pipeline.ENSEMBLE_MIN_N` points, a loop whose universal-null p-value is
inconclusive (≥ :data:`CHECK_P`) is looked for in 10 subsamples of 70 % of the points, and its
prevalence is reported with it; where the run finds no loop, its longest H1 feature is looked
for the same way and reported if it recurs in 90 % of them (:func:`prevalence_stage`,
``Params.prevalence_check``).

Cost: B single runs of m points (O(m²) memory each, one per job at a time) plus one kNN graph of
all points and sparse solves over it: O(n k) memory, no n × n array.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from . import pipeline
from . import localize as localization
from ._parallel import Pool, resolve_jobs
from ._progress import Progress
from ._validate import InputError, check_points

log = logging.getLogger(__name__)

__all__ = ["run", "single_with_check", "run_subsample", "combine", "plan", "check_prevalence", "needs_prevalence_check", "needs_recurrence_check", "prevalence_stage", "subsample_params", "early_stop_runs", "subsample_indices", "match_loops", "consensus_phase", "MIN_PREVALENCE", "MATCH_MIN_CORR"]

#: A loop is reported when at least this share of the subsamples found it.
MIN_PREVALENCE = 0.5
#: Two runs' loops are the same loop when their phases correlate at least this much (on the
#: reference loop's points, :func:`match_loops`).
MATCH_MIN_CORR = 0.5
#: Fewest points on two loops for :func:`match_loops` to compare them there (else on all points).
MATCH_MIN_POINTS = 20
#: A prevalence check counts a subsample's loop as the run's loop only from this |ρ| on: a
#: subsample run without the confirmation may report several noise loops, and on a noisy
#: sphere (n = 1,000, σ = 0.225) the best of them reached |ρ| = 0.52-0.76 with the run's
#: longest feature in 9 of 10 subsamples, while the IPC loop's matches are 0.97-0.99.
CHECK_MIN_CORR = 0.8
#: A single run's loop with a universal-null p-value of at least this gets its prevalence
#: measured (:func:`check_prevalence`): below it the p-value is evidence enough.
CHECK_P = pipeline.P_CONCLUSIVE
#: Share of the points in each subsample of :func:`check_prevalence`.
CHECK_FRACTION = 0.7


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
    prevalence is the second opinion (MIN_PREVALENCE to report a loop), and a run that
    vetoes a clear loop because diffusion reads the thick IPC loop differently
    (0 or 2 loops) would lower the prevalence of a real loop (BENCHMARKS.md, "Evidence for
    each loop")."""
    return dataclasses.replace(params, subsample=None, n_subsamples=1, confirm=False)


def _single(args):
    """One subsample through the single run (top level: picklable for worker processes)."""
    b, Xs, params = args
    t0 = time.perf_counter()
    res = pipeline.run(Xs, params, final=False)  # one BLAS thread per run, whatever the number of jobs
    res.timings["wall"] = time.perf_counter() - t0
    return b, res


def match_loops(phases: list[list[np.ndarray]], order: list[int], min_corr: float = MATCH_MIN_CORR,
                members: list[list[np.ndarray]] | None = None) -> list[list]:
    """Clusters of the same loop across runs (module docstring, step 3).

    ``phases[b]`` holds run b's loops as phases on all points; runs are visited in ``order``.
    ``members[b][j]`` (optional, boolean per point): the points on run b's loop j. A loop is
    then compared with a cluster's first loop on that loop's points only: elsewhere a phase is
    just its extension over the graph, and on data with two loops the points of the other loop
    (half of them) carry no information and pulled |ρ| between runs that found the same loop
    down to 0.3 (linked circles, σ = 0.15, all 10 runs finding both loops, 4 clusters
    reported). The points of either loop did worse: a noisy run's members can spread over both.
    Returns clusters, each a list of (run, loop) pairs, its first pair the reference.
    """
    clusters: list[list] = []

    def corr(b, j, c, k):  # run b's loop j against the reference loop k of run c
        return _phase_corr(phases[b][j], phases[c][k], None if members is None else members[c][k])

    for b in order:
        loops_b = phases[b]
        if not loops_b:
            continue
        assigned = {}
        if clusters:
            refs = [c[0] for c in clusters]
            assigned = _assign(np.array([[corr(b, j, c, k) for c, k in refs] for j in range(len(loops_b))]), min_corr)
        for j in range(len(loops_b)):
            if j in assigned:
                clusters[assigned[j]].append((b, j))
            else:
                clusters.append([(b, j)])
    return clusters


def _phase_corr(phase, ref, where=None) -> float:
    """|ρ| (Fisher-Lee) of a loop's phase with a reference loop's, on the reference loop's
    points ``where`` when there are at least :data:`MATCH_MIN_POINTS` of them, else on all."""
    phase, ref = np.asarray(phase, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.sum() >= MATCH_MIN_POINTS:
            phase, ref = phase[where], ref[where]
    return abs(localization.circular_correlation(phase, ref))


def _assign(cm: np.ndarray, min_corr: float) -> dict:
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


def early_stop_runs(B: int, min_prevalence: float = MIN_PREVALENCE) -> int:
    """Runs after which a unanimous ensemble stops: the smallest b with b / B ≥ min_prevalence
    (a loop all b runs found is reported whatever the others find) and (B − b) / B <
    min_prevalence (a loop none of them found cannot be): 6 of B = 10 at 0.5."""
    for b in range(1, B + 1):
        if b / B >= min_prevalence and (B - b) / B < min_prevalence:
            return b
    return B


def run(X, params: pipeline.Params | None = None, *, jobs="auto", progress: bool = False,
        **overrides) -> pipeline.Result:
    """Analyse all points of X: a single run up to :data:`topoembed.pipeline.ENSEMBLE_MIN_N`
    points (or when ``subsample`` is set; :meth:`topoembed.pipeline.Params.n_runs`), else the
    ensemble of the module docstring, in ``jobs`` local processes ("auto": one per usable CPU).

    With ``params.early_stop`` (default) the ensemble stops after :func:`early_stop_runs`
    subsamples (6 of 10) when they agree unanimously (the same loops in every run, or none
    in any): the remaining runs could not change which loops are reported, only lower a
    prevalence of 1 to at least 0.6. Otherwise all B runs are made.

    Returns a :class:`topoembed.pipeline.Result`. For an ensemble, its graph, distances and
    diagrams are those of the reference run (:func:`_reference_run`; ``index`` is its
    subsample), its loops the consensus over all points, and ``ensemble`` holds B, m, each
    run's reading and each loop cluster's prevalence.
    """
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    n = X.shape[0]
    params.validate(n)
    B = params.n_runs(n)
    if B <= 1:
        return single_with_check(X, params, jobs, progress)
    t_all = time.perf_counter()
    m = min(int(params.subsample_size), n)
    idxs = subsample_indices(n, m, B, params.seed)
    single = subsample_params(params)
    first = early_stop_runs(B) if params.early_stop else B
    jobs = resolve_jobs(jobs, first)
    log.info("ensemble: up to %d subsamples of %d of the %d points, %d job(s)", B, m, n, jobs)
    runs: list = []
    ext: list = []
    bar = Progress(B, "topoembed subsamples", "run", enabled=progress)
    t_runs = t_consensus = 0.0
    stopped_early = False
    # the workers start (and import the persistence engines) while this process builds the graph
    with Pool(jobs, killed_hint="run again with fewer --jobs or a smaller --subsample-size",
              preload=WORKER_PRELOAD) as pool:
        t0 = time.perf_counter()
        A_full = pipeline.extension_graph(X, params)
        t_graph = time.perf_counter() - t0
        for batch in (range(0, first), range(first, B)):
            if not len(batch):
                continue
            t0 = time.perf_counter()
            done = {}
            for b, res in pool.imap(_single, [(b, X[idxs[b]], single) for b in batch]):
                done[b] = res
                bar.step(f"subsample {b + 1}: {res.detection['n_loops']} loop(s), score {res.detection['score']:.2f}, "
                         f"{res.timings['wall']:.1f} s")
            runs += [done[b] for b in batch]
            t_runs += time.perf_counter() - t0
            t0 = time.perf_counter()
            ext += [[_extend(lp, A_full, idxs[b]) for lp in done[b].loops] for b in batch]
            combined = _combine(runs, ext)
            t_consensus += time.perf_counter() - t0
            if len(runs) < B and _unanimous(runs, combined["clusters"]):
                stopped_early = True
                log.info("ensemble: the first %d subsamples agree (%d loop(s) in each); the other %d could not "
                         "change the call (--early-stop 0, early_stop=False in Python, runs them)", len(runs),
                         runs[0].detection["n_loops"], B - len(runs))
                break
    bar.close()
    return _finish(X, params, runs, ext, combined, idxs, B, stopped_early, jobs,
                   {"graph_all_points": t_graph, "subsample_runs": t_runs, "consensus": t_consensus}, t_all)


def single_with_check(X, params: pipeline.Params, jobs="auto", progress: bool = False, A=None) -> pipeline.Result:
    """One run on all points (on the graph ``A`` where given), then :func:`prevalence_stage`,
    and only then the withholding of unsupported phases.

    The check reads the run's *resolved* settings (``result.params``): with ``distance="auto"``
    they hold the chosen distance, k and loop count, so the check looks in the subsamples with
    that choice, and a count that ``auto`` decided is never decided again by another rule (it
    had turned ``auto``'s 0 loops into a loop with prevalence 0)."""
    res = pipeline.run(X, params, progress=progress, withhold=False, A=A)
    t0 = time.perf_counter()
    with pipeline.collect_warnings() as caught:
        if len(res.index) == X.shape[0]:  # not a subsample of X
            res.detection, res.loops, res.ph, check = prevalence_stage(
                X, res.A, res.D, res.ph, res.detection, res.loops, res.params, jobs=jobs, progress=progress)
            if check is not None:
                res.timings["prevalence_check"] = time.perf_counter() - t0
                res.timings["total"] = res.timings.get("total", 0.0) + res.timings["prevalence_check"]
        pipeline.withhold_unsupported_phases(res.loops, res.detection, params)
    res.warnings += [w for w in caught if w not in res.warnings]
    return res


def prevalence_stage(X, A, D, ph: dict, detection: dict, found: list, params: pipeline.Params, *,
                     jobs="auto", progress: bool = False) -> tuple[dict, list, dict, dict | None]:
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
    if needs_prevalence_check(found, params):
        check = check_prevalence(X, found, params, jobs=jobs, progress=progress)
        if check is not None:
            detection = {**detection, "prevalence_check": check}
        return detection, found, ph, check
    if not needs_recurrence_check(ph, detection, params):
        return detection, found, ph, None
    dgm1, scale = ph["dgms"][1], ph["scale"]
    row = pipeline.loops.recurrence_candidate(dgm1, scale)
    candidate = pipeline.loops.decide(dgm1, scale=scale, n_loops=1, rule=params.loop_rule)
    assert candidate["features"] == [row]
    cand = pipeline.describe_loops(ph, candidate, index)
    log.info("no loop by the detection rule; looking for the longest H1 feature (row %d) in subsamples "
             "(--prevalence-check 0 skips this)", row)
    ph_cand = pipeline.localization_stage(cand, X, index, A, D, ph, candidate, params, withhold=False)
    check = check_prevalence(X, cand, params, jobs=jobs, progress=progress)
    if check is None:
        return detection, found, ph, None
    check["candidate"] = row
    recurrence = {"feature": row, "prevalence": cand[0]["prevalence"], "n_subsamples": check["n_subsamples"]}
    decided = pipeline.loops.decide(dgm1, scale=scale, n_loops=params.n_loops, rule=params.loop_rule,
                                    confirmation=detection.get("confirmation"), surface=detection.get("surface"),
                                    recurrence=recurrence)
    for key in ("unconfirmed", "surface_loops"):  # as decide_loops annotated them
        if key in detection and key in decided:
            decided[key] = detection[key]
    decided["prevalence_check"] = check
    if decided["n_loops"] == 0:
        log.info("the longest H1 feature recurs in %d of %d subsamples (< %.0f %%): no loop", cand[0]["n_runs"],
                 check["n_subsamples"], 100 * pipeline.loops.RECURRENCE_MIN)
        return decided, found, ph, check
    cand[0]["p_value"] = decided["p_values"][0]
    log.warning("the detection rule finds no loop, but its longest H1 feature recurs in %d of %d random "
                "subsamples of %d points: reported as a loop (--prevalence-check 0 does not)", cand[0]["n_runs"],
                check["n_subsamples"], check["subsample_size"])
    return decided, cand, ph_cand, check


def needs_recurrence_check(ph: dict, detection: dict, params: pipeline.Params) -> bool:
    """Whether a run that found no loop should have its longest H1 feature checked for
    recurrence (:func:`prevalence_stage`): ``params.prevalence_check`` and ``localize`` are on,
    the count is decided by rule "evidence" (``n_loops="auto"``), and there is a
    :func:`topoembed.loops.recurrence_candidate`."""
    return (bool(params.prevalence_check) and bool(params.localize) and params.n_loops == "auto"
            and params.loop_rule == "evidence" and detection["n_loops"] == 0 and len(ph["dgms"]) > 1
            and pipeline.loops.recurrence_candidate(ph["dgms"][1], ph["scale"]) is not None)


def needs_prevalence_check(found: list, params: pipeline.Params) -> bool:
    """Whether a single run's loops ``found`` need :func:`check_prevalence`: ``params.prevalence_check``
    is on and a reported loop with a phase has a universal-null p-value of at least
    :data:`CHECK_P` (a loop of a closed surface has the void as its evidence; a loop without a
    p-value, as on a clean circle with too few H1 features, has nothing to doubt)."""
    return bool(params.prevalence_check) and any(
        lp.get("p_value") is not None and lp["p_value"] >= CHECK_P and "surface_void_p" not in lp and "phase" in lp
        for lp in found)


def check_prevalence(X, found: list, params: pipeline.Params | None = None, *, jobs="auto",
                     progress: bool = False) -> dict | None:
    """The prevalence of a single run's loops on X (all n points): the share of
    :data:`topoembed.pipeline.ENSEMBLE_RUNS` random subsamples of :data:`CHECK_FRACTION` · n
    points, each analysed alone (:func:`subsample_params`, deciding its own count), that find
    the same loop.

    The loops ``found`` carry phases and ``on_loop`` over all n points (:func:`topoembed.pipeline.run`
    with ``withhold=False``). Each run's loops are extended to all points over
    :func:`topoembed.pipeline.extension_graph` and assigned to them one to one (Hungarian) by
    |ρ| of the phases on the points of the run's loop (≥ :data:`CHECK_MIN_CORR`, stricter than
    the ensemble's :data:`MATCH_MIN_CORR`: these runs may report several noise loops each, and
    one of them then matches by chance). Only the run's loops are references: a subsample that splits the loop
    into two features (the IPC cells, 1 in 10) counts once and does not pull the others away.
    Adds ``prevalence`` (matched runs / runs made) and ``n_runs`` to each loop, which
    :func:`topoembed.pipeline.loop_support` then reads (≥ 0.9: supported whatever its
    p-value), and returns the check's record (B, m, each run's count, the prevalences), or
    None where a subsample would be too small for the graph's k.

    The issue's evidence from subsamples (García-Redondo, Monod and Song 2024; Mousley and
    Bendich 2024): a real loop reappears in most subsamples, a loop made by a few points does
    not.

    With ``params.early_stop`` (default) the check stops once every loop's support is decided:
    9 of the 10 subsamples found it, or 2 missed it (it cannot reach 0.9); the prevalence is
    then over the runs made (``n_subsamples``, of ``n_planned``). Runs are taken in subsample
    order whatever the number of jobs, so the result does not depend on it. Cost: up to 10
    single runs of 0.7 n points with their localization, without the closed surface (2.5-4.7
    times the run itself on 2 CPUs where a loop is checked; on noise it stops after 2 runs,
    1.1-2 times).
    """
    params = params or pipeline.Params()
    X = check_points(X, min_points=3)
    n = X.shape[0]
    m = int(round(CHECK_FRACTION * n))
    if int(params.k) >= m - 1:
        log.info("no prevalence check: subsamples of %d points are too small for k = %d", m, params.k)
        return None
    B = pipeline.ENSEMBLE_RUNS
    idxs = subsample_indices(n, m, B, params.seed)
    # the subsamples decide their own count: a fixed count would make every run report its longest
    # feature, and on a Gaussian blob (n = 400, n_loops=1) such noise loops then matched in 4-8 of 10.
    # No closed surface in them: a loop of a surface is never checked (its void is its evidence),
    # and on the IPC cells the surface's H2 was 45 % of the check's time, with no void found.
    single = dataclasses.replace(subsample_params(params), n_loops="auto", surface=False)
    jobs = resolve_jobs(jobs, B)
    weak = ", ".join(f"{lp['p_value']:.2g}" for lp in found if lp.get("p_value") is not None)
    log.info("prevalence check: universal-null p = %s; analysing %d subsamples of %d of the %d points "
             "(--prevalence-check 0 skips this)", weak, B, m, n)
    bar = Progress(B, "topoembed prevalence check", "run", enabled=progress)
    need = int(np.ceil(pipeline.loops.RECURRENCE_MIN * B - 1e-9))  # matched runs for support: 9 of 10
    hits = np.zeros(len(found), dtype=int)
    runs: dict = {}
    done = B
    with Pool(jobs, killed_hint="run again with fewer --jobs or --prevalence-check 0",
              preload=WORKER_PRELOAD) as pool:
        A_full = pipeline.extension_graph(X, params)
        for start in range(0, B, jobs):  # one batch per round of the workers, so that it can stop
            batch = list(range(start, min(B, start + jobs)))
            for b, res in pool.imap(_single, [(b, X[idxs[b]], single) for b in batch]):
                runs[b] = res
                bar.step(f"subsample {b + 1}: {res.detection['n_loops']} loop(s)")
            for b in batch:  # in subsample order, whatever the number of jobs: the same stop, the same result
                hits += _matched(found, [_extend(lp, A_full, idxs[b]) for lp in runs[b].loops])
                if params.early_stop and all(h >= need or (b + 1 - h) > B - need for h in hits):
                    done = b + 1  # every loop's support is decided
                    break
            if done < B:
                break
    bar.close()
    runs = [runs[b] for b in range(done)]
    prevalence = []
    for j, lp in enumerate(found):
        lp["n_runs"] = int(hits[j])
        lp["prevalence"] = lp["n_runs"] / done
        prevalence.append(lp["prevalence"])
    log.info("prevalence check: %s", ", ".join(f"loop {j + 1} in {lp['n_runs']} of {done} subsamples"
                                               for j, lp in enumerate(found)))
    return {"n_subsamples": done, "n_planned": B, "stopped_early": done < B, "subsample_size": m,
            "p_at_least": CHECK_P, "prevalence": prevalence,
            "runs": [{"n_loops": int(r.detection["n_loops"]), "score": float(r.detection["score"])} for r in runs],
            "jobs": jobs}


def _matched(found: list, ext_b: list) -> np.ndarray:
    """1 for each loop of ``found`` that one of a subsample run's loops ``ext_b`` (extended to
    all points) matches (:data:`CHECK_MIN_CORR`, one to one), else 0."""
    out = np.zeros(len(found), dtype=int)
    if ext_b:  # each run's loops against this run's, on the points of this run's loop
        cm = np.array([[_phase_corr(e["phase"], lp["phase"], lp["on_loop"]) for lp in found] for e in ext_b])
        for j in _assign(cm, CHECK_MIN_CORR).values():
            out[j] = 1
    return out


def _finish(X, params, runs, ext, combined, idxs, B, stopped_early, jobs, timings, t_all) -> pipeline.Result:
    """Prevalence, consensus loops and the reference run from the runs made (see :func:`run`)."""
    t0 = time.perf_counter()
    n = X.shape[0]
    n_done = len(runs)
    clusters, order = combined["clusters"], combined["order"]
    prevalence = [len(c) / n_done for c in clusters]
    reported = [c for c, p in zip(clusters, prevalence) if p >= MIN_PREVALENCE]
    loops_out = [_consensus_loop(c, ext, runs, idxs, n_done) for c in reported]
    ref_b = _reference_run(runs, reported, order)
    ref = runs[ref_b]
    pipeline.withhold_unsupported_phases(loops_out, ref.detection, params)
    counts = [int(r.detection["n_loops"]) for r in runs]
    # the ensemble's count, and per reported loop: its row in the reference run's H1 diagram (None
    # where that run missed it) and its consensus p-value, so that no list describes another count
    alpha = ref.detection.get("alpha", pipeline.loops.ALPHA)
    rows = [next((ref.detection["features"][j] for b, j in c if b == ref_b), None) for c in reported]
    p_values = [lp["p_value"] for lp in loops_out]
    detection = {**ref.detection, "n_loops": len(reported), "features": rows, "p_values": p_values,
                 "significant": [None if p is None else bool(p < alpha) for p in p_values],
                 "score": float(ref.detection["scores"].get(len(reported), ref.detection["score"]))
                 if len(reported) else ref.detection["score"]}
    if len(reported) != ref.detection["n_loops"]:
        detection["reference_n_loops"] = int(ref.detection["n_loops"])
    ensemble = {
        "n_subsamples": n_done, "n_planned": B, "stopped_early": stopped_early, "subsample_size": len(idxs[0]),
        "reference_run": ref_b, "jobs": jobs,
        "extension_k": pipeline.extension_k(params),
        "min_prevalence": MIN_PREVALENCE,
        "runs": [{"n_loops": counts[b], "score": float(runs[b].detection["score"]),
                  "confirmed": "unconfirmed" not in runs[b].detection, "time_s": float(runs[b].timings["wall"])}
                 for b in range(n_done)],
        "clusters": [{"prevalence": float(p), "runs": [int(b) for b, _ in c],
                      "reported": bool(p >= MIN_PREVALENCE)} for c, p in zip(clusters, prevalence)],
    }
    timings = {**timings, "consensus": timings.get("consensus", 0.0) + time.perf_counter() - t0,
               "total": time.perf_counter() - t_all}
    seen: dict[str, int] = {}  # each subsample's warnings, once, with how many subsamples gave them
    for r in runs:
        for w in getattr(r, "warnings", []):
            seen[w] = seen.get(w, 0) + 1
    return pipeline.Result(params=params, n_input=n, index=idxs[ref_b], A=ref.A, D=ref.D, ph=ref.ph,
                           detection=detection, loops=loops_out, timings=timings, n_components=ref.n_components,
                           auto=ref.auto, ensemble=ensemble,
                           warnings=[f"{w} (in {c} of {n_done} subsamples)" for w, c in seen.items()])


# ---------------------------------------------------------------- one job per subsample (Snakemake)
def plan(n: int, params: pipeline.Params) -> list[np.ndarray]:
    """The subsamples (row indices) an ensemble of n points analyses with these params."""
    params.validate(n)
    B = params.n_runs(n)
    if B <= 1:
        raise InputError(f"{n} points with these settings are one run, not an ensemble of subsamples "
                         f"(more than {pipeline.ENSEMBLE_MIN_N} points, or n_subsamples > 1)")
    return subsample_indices(n, min(int(params.subsample_size), n), B, params.seed)


def run_subsample(X, b: int, params: pipeline.Params | None = None, **overrides) -> pipeline.Result:
    """Subsample ``b`` of the ensemble of X as one job (a Snakemake rule): the same single
    run as :func:`run` makes, with ``ensemble_run`` = (b, its row indices) attached."""
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    idxs = plan(X.shape[0], params)
    if not 0 <= int(b) < len(idxs):
        raise InputError(f"subsample index {b} is out of range: this ensemble has {len(idxs)} subsamples (0-{len(idxs) - 1})")
    _, res = _single((int(b), X[idxs[b]], subsample_params(params)))
    res.ensemble = {"run": int(b), "index": idxs[b], "params": params.to_dict()}
    return res


def combine(X, runs: list, params: pipeline.Params | None = None, **overrides) -> pipeline.Result:
    """The ensemble's result from the runs of :func:`run_subsample` (one per subsample, any
    order): the same as :func:`run` with ``early_stop=False``. Refuses runs made with other
    settings or of other subsamples."""
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    idxs = plan(X.shape[0], params)
    t_all = time.perf_counter()
    by_b = {}
    for r in runs:
        info = r.ensemble or {}
        if "run" not in info:
            raise InputError("a run given to combine was not made by run_subsample (topoembed subsample)")
        same = {k: v for k, v in params.to_dict().items() if k != "device"}  # where it ran does not matter
        if {k: v for k, v in info["params"].items() if k != "device"} != same:
            diff = sorted(k for k in same if info["params"].get(k) != same[k])
            raise InputError(f"subsample run {info['run']} was made with other settings ({', '.join(diff)}); "
                             "rerun it with the same options")
        if not np.array_equal(info["index"], idxs[info["run"]]):
            raise InputError(f"subsample run {info['run']} holds other points than this input's subsample "
                             f"{info['run']}; rerun it on the same input")
        by_b[info["run"]] = r
    missing = [b for b in range(len(idxs)) if b not in by_b]
    if missing:
        raise InputError(f"subsample runs {missing} are missing (this ensemble has {len(idxs)})")
    ordered = [by_b[b] for b in range(len(idxs))]
    t0 = time.perf_counter()
    A_full = pipeline.extension_graph(X, params)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    ext = [[_extend(lp, A_full, idxs[b]) for lp in r.loops] for b, r in enumerate(ordered)]
    combined = _combine(ordered, ext)
    timings = {"graph_all_points": t_graph, "subsample_runs": float(sum(r.timings["wall"] for r in ordered)),
               "consensus": time.perf_counter() - t0}
    return _finish(X, params, ordered, ext, combined, idxs, len(idxs), False, 1, timings, t_all)


def _combine(runs: list, ext: list) -> dict:
    """Loop clusters over the runs so far (:func:`match_loops`, best-scoring run first)."""
    scores = np.array([r.detection["score"] if r.detection["n_loops"] else -1.0 for r in runs])
    order = [int(b) for b in np.argsort(-scores, kind="stable")]
    members = [[np.nan_to_num(e["loop_distance"], nan=np.inf) <= 1.0 for e in loops_b] for loops_b in ext]
    clusters = match_loops([[e["phase"] for e in loops_b] for loops_b in ext], order, members=members)
    clusters.sort(key=lambda c: -len(c))  # most prevalent first (stable: best score first on ties)
    return {"clusters": clusters, "order": order}


def _unanimous(runs: list, clusters: list) -> bool:
    """Every run found the same loops: the same count L, and L clusters each holding every run."""
    counts = {int(r.detection["n_loops"]) for r in runs}
    if len(counts) != 1:
        return False
    L = counts.pop()
    return len(clusters) == L and all(len(c) == len(runs) for c in clusters)


def _extend(lp: dict, A_full, idx) -> dict:
    """One run's loop over all points: phase, confidence and relative distance to the loop."""
    # the run's own loop dict is over its subsample (the single run has no other points)
    rel = np.asarray(lp["loop_distance"], dtype=np.float64) / lp["on_loop_threshold"]
    phase = localization.extend_phase(A_full, idx, lp["phase"])
    dist = localization.extend_loop_distance(A_full, idx, rel)
    conf = localization.phase_confidence(A_full, phase, dist, 1.0)
    return {"phase": phase, "loop_distance": dist, "phase_confidence": conf}


def _consensus_loop(cluster, ext, runs, idxs, B) -> dict:
    b0, j0 = cluster[0]
    first = runs[b0].loops[j0]
    members = [ext[b][j] for b, j in cluster]
    theta, spread = consensus_phase([e["phase"] for e in members])
    with np.errstate(invalid="ignore"):
        conf = np.nanmean(np.stack([e["phase_confidence"] for e in members]), axis=0) * (1 - spread)
        dist = np.nanmedian(np.stack([e["loop_distance"] for e in members]), axis=0)
    idx0 = idxs[b0]
    lp = {k: v for k, v in first.items() if k not in pipeline.PER_POINT}
    lp.update(
        cycle=[int(idx0[v]) for v in first["cycle"]],  # the run's ids are rows of its subsample
        birth_edge=[int(idx0[v]) for v in first["birth_edge"]],
        prevalence=len(cluster) / B, n_runs=len(cluster), representative_run=int(b0),
        p_value=_median_p([runs[b].loops[j].get("p_value") for b, j in cluster]),
        phase=theta, phase_spread=spread, phase_confidence=conf, loop_distance=dist,
        on_loop=np.nan_to_num(dist, nan=np.inf) <= 1.0, on_loop_threshold=1.0,
        median_phase_confidence=float(np.nanmedian(conf)) if np.isfinite(conf).any() else float("nan"),
    )
    lp["n_on_loop"] = int(lp["on_loop"].sum())
    return lp


def _median_p(values) -> float | None:
    """The median p-value of a loop over the runs that found it (None where no run had one)."""
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else None


def _reference_run(runs, reported, order) -> int:
    """The run whose diagrams stand for the ensemble: the best-scoring run that found exactly
    the reported loops (with none reported, the first run that found none), else the
    best-scoring run that found them all, else the best-scoring run."""
    def holds_all(b):
        return all(any(bb == b for bb, _ in c) for c in reported)

    for b in order:
        if runs[b].detection["n_loops"] == len(reported) and holds_all(b):
            return b
    for b in order:
        if reported and holds_all(b):
            return b
    return order[0]
