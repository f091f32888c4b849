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
   kNN graph of all points (k = 15; above :data:`topoembed.extension.LANDMARKS` points, of
   landmarks, each other point taking the mean of its nearest landmarks';
   :mod:`topoembed.extension`).
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
6. **A closed surface** on at most :data:`SURFACE_ALL_POINTS_MAX_N` points: where a subsample
   run looked for one, one run on all points follows, and its result is the answer if it finds
   the surface's loops (:func:`_surface_on_all_points`): subsamples short-cut a torus's tube.

Cost: B single runs of m points (O(m²) memory each, one per job at a time) plus the extension
graph (:mod:`topoembed.extension`) and sparse solves over it: O(n k) memory, no n × n array.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import warnings

import numpy as np

from . import extension, parts, pipeline, prevalence
from ._parallel import Pool, resolve_jobs
from .params import MIN_PREVALENCE  # noqa: F401 (ensemble.MIN_PREVALENCE for callers)
from .subsamples import (MATCH_MIN_CORR, MATCH_MIN_POINTS, WORKER_PRELOAD, assign, consensus_phase,  # noqa: F401
                         extend_loop, phase_corr, run_one, subsample_indices, subsample_params)
from ._progress import Progress, tentative_run
from ._validate import InputError, check_points, option

log = logging.getLogger(__name__)

__all__ = ["run", "run_subsample", "plan_parts", "run_part", "combine", "plan", "early_stop_runs", "match_loops", "consensus_phase",
           "MIN_PREVALENCE", "MATCH_MIN_CORR"]


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
        return phase_corr(phases[b][j], phases[c][k], None if members is None else members[c][k])

    for b in order:
        loops_b = phases[b]
        if not loops_b:
            continue
        assigned = {}
        if clusters:
            refs = [c[0] for c in clusters]
            assigned = assign(np.array([[corr(b, j, c, k) for c, k in refs] for j in range(len(loops_b))]), min_corr)
        for j in range(len(loops_b)):
            if j in assigned:
                clusters[assigned[j]].append((b, j))
            else:
                clusters.append([(b, j)])
    return clusters


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
        return prevalence.single_with_check(X, params, jobs, progress)
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
    with Pool(jobs, killed_hint=f"run again with fewer {option('jobs', 1)[:-2]} or a smaller {option('subsample_size', 500)[:-4]}",
              preload=WORKER_PRELOAD) as pool:
        t0 = time.perf_counter()
        bar.note(_graph_label(n, params) + "…")
        ext_graph = extension.build(X, params, include=idxs, progress=progress)
        t_graph = time.perf_counter() - t0
        bar.note(f"{_graph_label(n, params, with_k=False)}: {t_graph:.1f} s; now the subsamples")
        for batch in (range(0, first), range(first, B)):
            if not len(batch):
                continue
            t0 = time.perf_counter()
            done = {}
            for b, res in pool.imap(run_one, [(b, X[idxs[b]], single) for b in batch]):
                done[b] = res
                bar.step(f"subsample {b + 1}: {res.detection['n_loops']} loop(s), score {res.detection['score']:.2f}, "
                         f"{res.timings['wall']:.1f} s")
            runs += [done[b] for b in batch]
            t_runs += time.perf_counter() - t0
            t0 = time.perf_counter()
            ext += [[extend_loop(lp, ext_graph, idxs[b]) for lp in done[b].loops] for b in batch]
            combined = _combine(runs, ext)
            t_consensus += time.perf_counter() - t0
            if len(runs) < B and _unanimous(runs, combined["clusters"]):
                stopped_early = True
                log.info("ensemble: the first %d subsamples agree (%d loop(s) in each); the other %d could not "
                         "change the call (%s runs them)", len(runs),
                         runs[0].detection["n_loops"], B - len(runs), option("early_stop", False))
                break
    bar.close()
    return _finish(X, params, runs, ext, combined, idxs, B, stopped_early, jobs, progress,
                   {"graph_all_points": t_graph, "subsample_runs": t_runs, "consensus": t_consensus}, t_all,
                   ext_graph=ext_graph)


#: Up to this many points, an ensemble in which a subsample run looked for a closed surface (its
#: diagram could hide a second loop, :func:`topoembed.loops.may_hide_loops`) is followed by one
#: run on all points (:func:`_surface_on_all_points`). Subsamples of 700 points of a torus
#: short-cut its tube: on 1,500-point tori (σ = 0.05-0.15, seeds 0-2) 0-8 of 10 subsample runs
#: found the void and the ensemble reported 1 loop in 5 of 6 (BENCHMARKS.md, "A torus's tube
#: loop"), while one run on all 1,200 or 1,500 points found both loops in 18 of 18; no subsample
#: of IPC cells (1,500 and 2,000), a sphere, a blob or a circle reported a surface's loops. One
#: run costs 5-17 s at 1,500 points and 18-49 s at 2,000 (its dense distances grow as n²).
SURFACE_ALL_POINTS_MAX_N = 2000


def _surface_on_all_points(X, params, runs: list, jobs, progress: bool, timings: dict,
                           t_all: float) -> pipeline.Result | None:
    """One run on all points of X (at most :data:`SURFACE_ALL_POINTS_MAX_N`) where a subsample
    run looked for a closed surface: its result if it finds the surface's loops itself (its
    void is their evidence), with a note saying why; None otherwise (the ensemble's result
    stands). ``timings``, ``t_all``: the ensemble's so far, kept in the result's timings."""
    n = X.shape[0]
    looked = sum(r.detection.get("surface") is not None for r in runs)
    seen = sum(bool(r.detection.get("surface_loops")) for r in runs)
    if not looked or n > SURFACE_ALL_POINTS_MAX_N or not params.surface:
        return None
    bar = Progress(1, "topoembed ensemble", "run", enabled=progress)
    bar.note(f"{looked} of {len(runs)} subsamples looked for a closed surface ({seen} found one): one run on all "
             f"{n:,} points, whose resolution keeps a torus's tube, looks for it there")
    t0 = time.perf_counter()
    with tentative_run():  # its warnings are said only if its result is the answer
        res = prevalence.single_with_check(X, dataclasses.replace(params, n_subsamples=1), jobs, progress)
    bar.close()
    surface = res.detection.get("surface_loops")
    if not surface:
        log.info("ensemble: the run on all points finds no closed surface; the subsamples' result stands")
        timings["surface_check"] = time.perf_counter() - t0  # the answer took its time too
        return None
    for said in res.warnings:
        log.warning(said)
    res.detection["surface_on_all_points"] = {"subsamples_looked": looked, "subsamples_with_surface": seen,
                                              "n_subsamples": len(runs)}
    # the subsamples were analysed first: the answer took their time too
    res.timings = {**res.timings, **{f"ensemble_{k}": v for k, v in timings.items()},
                   "total": time.perf_counter() - t_all}
    res.notes.append(f"{looked} of {len(runs)} subsamples looked for a closed surface ({seen} found one), so all "
                     f"{n} points were analysed in one run (subsamples of {len(runs[0].index)} points short-cut a "
                     f"torus's tube): its void (p = {surface['void_p']:.2g}) gives {surface['n_loops']} loops")
    return res


def _graph_label(n: int, params, with_k: bool = True) -> str:
    """What the extension graph of n points is (:func:`topoembed.extension.build`), for progress;
    ``with_k``: and its k."""
    k = f" (k = {pipeline.extension_k(params)})" if with_k else ""
    if not extension.landmarks_planned(n, params.metric):
        return f"kNN graph of all {n:,} points{k}"
    return f"kNN graph of {extension.LANDMARKS:,} landmarks{k} and the nearest landmarks of all {n:,} points"


def _finish(X, params, runs, ext, combined, idxs, B, stopped_early, jobs, progress, timings, t_all,
            ext_graph, part_screens=None) -> pipeline.Result:
    """Prevalence, consensus loops and the reference run from the runs made (see :func:`run`),
    then, with ``params.parts``, the loops inside parts of the extension graph ``ext_graph``
    (:class:`topoembed.extension.Extension`; :mod:`topoembed.parts`), whose screens are
    ``part_screens`` where cluster jobs made them (:func:`run_part`)."""
    on_all = _surface_on_all_points(X, params, runs, jobs, progress, timings, t_all)
    if on_all is not None:
        return on_all
    t0 = time.perf_counter()
    n = X.shape[0]
    n_done = len(runs)
    clusters, order = combined["clusters"], combined["order"]
    prevalence = [len(c) / n_done for c in clusters]
    reported = [c for c, p in zip(clusters, prevalence) if p >= MIN_PREVALENCE]
    loops_out = [_consensus_loop(c, ext, runs, idxs, n_done) for c in reported]
    pipeline.mark_groups_on_cycle(loops_out, ext_graph)  # on the graph of all points (its runs count none)
    ref_b = _reference_run(runs, reported, order)
    ref = runs[ref_b]
    part_record = None
    if params.parts:
        t_parts = time.perf_counter()
        planned = screens = None
        if part_screens is not None:
            planned = parts.plan(ext_graph, params, X)
            screens = parts.check_screens(part_screens, planned, params, n)
        found, part_record = parts.search(X, ext_graph, params, loops_out, run, jobs=jobs, progress=progress,
                                          planned=planned, screens=screens)
        parts.apply_evidence(loops_out, part_record)  # a part's evidence for an unsupported loop it found again
        pipeline.mark_groups_on_cycle(found, ext_graph)
        loops_out += found
        timings = {**timings, "parts": time.perf_counter() - t_parts}
    pipeline.withhold_unsupported_phases(loops_out, ref.detection, params)
    counts = [int(r.detection["n_loops"]) for r in runs]
    # the ensemble's count, and per reported loop: its row in the reference run's H1 diagram (None
    # where that run missed it) and its consensus p-value, so that no list describes another count
    alpha = ref.detection.get("alpha", pipeline.loops.ALPHA)
    rows = [next((ref.detection["features"][j] for b, j in c if b == ref_b), None) for c in reported]
    rows += [None] * (len(loops_out) - len(rows))  # a part's loop has no row in the reference run's diagram
    p_values = [lp["p_value"] for lp in loops_out]
    detection = {**ref.detection, "n_loops": len(loops_out), "features": rows, "p_values": p_values,
                 "significant": [None if p is None else bool(p < alpha) for p in p_values],
                 "score": float(ref.detection["scores"].get(len(reported), ref.detection["score"]))
                 if len(reported) else ref.detection["score"]}
    if part_record is not None:
        detection["parts"] = part_record
    if len(loops_out) != ref.detection["n_loops"]:
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
    timings = {**timings, "consensus": timings.get("consensus", 0.0) + time.perf_counter() - t0 - timings.get("parts", 0.0),
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
    _, res = run_one((int(b), X[idxs[b]], subsample_params(params)))
    res.ensemble = {"run": int(b), "index": idxs[b], "params": params.to_dict()}
    return res


def plan_parts(X, params: pipeline.Params | None = None, *, progress: bool = False, **overrides) -> parts.Plan:
    """The part search's plan for the ensemble of X (:func:`topoembed.parts.plan`: which parts are
    screened, on which points), as one job (``topoembed parts``): the same extension graph as
    :func:`run` builds, so the same parts. No part where ``params.parts`` is off."""
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    idxs = plan(X.shape[0], params)
    if not params.parts:  # no graph to build
        return parts.Plan.empty()
    log.info("%s…", _graph_label(X.shape[0], params))
    return parts.plan(extension.build(X, params, include=idxs, progress=progress), params, X)


def run_part(X, part: int, params: pipeline.Params | None = None, *, picks=None, **overrides) -> parts.Screen:
    """The screen of part ``part`` of the ensemble of X as one job (``topoembed subsample
    --part``): the single run :func:`run` makes on that part's points. ``picks``: the points
    screened of each part, from :func:`plan_parts` (a job reads them from its file); without
    them the plan is made here."""
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    if picks is None:
        picks = plan_parts(X, params).picks
    if not 0 <= int(part) < len(picks):
        raise InputError(f"part index {part} is out of range: this search screens {len(picks)} parts"
                         + (f" (0-{len(picks) - 1})" if len(picks) else ""))
    return parts.screen(X, int(part), picks[int(part)], params)


def combine(X, runs: list, params: pipeline.Params | None = None, *, jobs=1, progress: bool = False,
            **overrides) -> pipeline.Result:
    """The ensemble's result from the runs of :func:`run_subsample` (one per subsample, any
    order) and, optionally, the part screens of :func:`run_part` (one per part of
    :func:`plan_parts`, any order; without them the parts are screened here): the same as
    :func:`run` with ``early_stop=False``. Refuses runs made with other settings or of other
    subsamples or parts. ``jobs``: local processes for the part search; ``progress``: feedback
    on the graph and the parts."""
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    idxs = plan(X.shape[0], params)
    t_all = time.perf_counter()
    screens = [r for r in runs if isinstance(r, parts.Screen)]
    runs = [r for r in runs if not isinstance(r, parts.Screen)]
    by_b = {}
    for r in runs:
        info = r.ensemble or {}
        if "run" not in info:
            raise InputError("a run given to combine was not made by run_subsample (topoembed subsample)")
        params.check_job(info["params"], X.shape[0], f"subsample run {info['run']}")
        if not np.array_equal(info["index"], idxs[info["run"]]):
            raise InputError(f"subsample run {info['run']} holds other points than this input's subsample "
                             f"{info['run']}; rerun it on the same input")
        by_b[info["run"]] = r
    missing = [b for b in range(len(idxs)) if b not in by_b]
    if missing:
        raise InputError(f"subsample runs {missing} are missing (this ensemble has {len(idxs)}): make each with "
                         f"`topoembed subsample INPUT --index I` (the same options), or give every command the same "
                         f"--n-subsamples {len(by_b)}")
    # every subsample is made here: the same as a local run with early_stop=False, also for the
    # ensembles of the part search's analyses (a part of more than 700 points)
    params = dataclasses.replace(params, early_stop=False)
    ordered = [by_b[b] for b in range(len(idxs))]
    t0 = time.perf_counter()
    log.info("%s…", _graph_label(X.shape[0], params))
    ext_graph = extension.build(X, params, include=idxs, progress=progress)
    t_graph = time.perf_counter() - t0
    t0 = time.perf_counter()
    ext = [[extend_loop(lp, ext_graph, idxs[b]) for lp in r.loops] for b, r in enumerate(ordered)]
    combined = _combine(ordered, ext)
    runs_s = float(sum(r.timings["wall"] for r in ordered))
    timings = {"graph_all_points": t_graph, "subsample_runs": runs_s, "consensus": time.perf_counter() - t0}
    res = _finish(X, params, ordered, ext, combined, idxs, len(idxs), False, resolve_jobs(jobs, len(idxs)), progress,
                  timings, t_all, ext_graph=ext_graph, part_screens=screens or None)
    # the subsample (and part) jobs ran elsewhere: the analysis took their time too, not only this combine job's
    screens_s = float(sum(s.seconds for s in screens))
    if screens:
        res.timings["part_screens"] = screens_s
    res.timings["total"] += runs_s + screens_s
    return res


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


def _consensus_loop(cluster, ext, runs, idxs, B) -> dict:
    b0, j0 = cluster[0]
    first = runs[b0].loops[j0]
    members = [ext[b][j] for b, j in cluster]
    theta, spread = consensus_phase([e["phase"] for e in members])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        # a point no member run reached (NaN in all) stays NaN, without numpy's empty-slice warning
        warnings.simplefilter("ignore", RuntimeWarning)
        conf = np.nanmean(np.stack([e["phase_confidence"] for e in members]), axis=0) * (1 - spread)
        dist = np.nanmedian(np.stack([e["loop_distance"] for e in members]), axis=0)
    idx0 = idxs[b0]
    lp = {k: v for k, v in first.items() if k not in pipeline.PER_POINT}
    lp.update(
        cycle=[int(idx0[v]) for v in first["cycle"]],  # the run's ids are rows of its subsample
        birth_edge=[int(idx0[v]) for v in first["birth_edge"]],
        prevalence=len(cluster) / B, n_runs=len(cluster), n_subsamples=int(B), representative_run=int(b0),
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
