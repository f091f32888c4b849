"""Loops that only a few percent of the points carry: a loop search inside each part of the data.

A uniform subsample of 700 of 20,000 points holds about 35 points of a circle that 5 % of
them carry (14 at 2 %): too few for a loop at the pipeline's k = 100, so the ensemble of
uniform subsamples (:mod:`topoembed.ensemble`) misses it. Above the ensemble:

1. **Partition.** The graph the ensemble extends its loops over
   (:mod:`topoembed.extension`: the union kNN graph of all points, or of the landmarks, each
   other point then in its nearest landmark's part) is split into communities by Leiden
   modularity optimisation (:func:`topoembed.graph.leiden`), at each
   of the :data:`RESOLUTIONS` (a finer and a coarser one: modularity cuts long loops into arcs).
2. **Search.** Every part nearly apart from the rest (conductance below
   :data:`MAX_CONDUCTANCE`) of at least :data:`MIN_PART` points and at most
   :data:`MAX_SHARE` of all points (at most :data:`MAX_PARTS` per resolution, the smallest;
   one part where two resolutions give nearly the same, :data:`SAME_PART`) is searched with
   its shell (:func:`with_shell`: for a part under ``subsample_size`` (700) points, each of its
   points' :data:`SHELL_NEIGHBOURS` nearest points within :data:`SURROUNDING_HOPS` edges; a
   loop through a part may close outside it). It is first screened by one run on at most 700 of those points,
   with the k the front door gives that many points (:func:`_inner`: a quarter of them below
   400), confirmed by the second spectral distance (the screens on the ``jobs`` local processes, or
   one cluster job each: :func:`plan`, :func:`screen`; ``topoembed parts`` and ``topoembed
   subsample --part``, ``workflows/ensemble.smk``).
   Where the screen finds a loop that the uniform subsamples do not already report as
   supported (step 4) and whose p-value is below :data:`SCREEN_MAX_P`, those points are
   analysed as a dataset of their own: a single run with its prevalence check up to 700
   points (``subsample_size``), an ensemble of uniform subsamples above (its consensus phase
   is steadier). A part larger than :data:`MAX_SHARE` of the data is seen well enough by the
   uniform subsamples themselves.
3. **Multiple testing.** Each loop's universal-null p-value is multiplied by the number
   of parts searched (Bonferroni; ``p_value_in_part`` keeps the part's own), so a search
   over many parts is not a search for a chance loop in one of them. Every part loop whose
   part's analysis measured no prevalence gets the prevalence check within the part
   (:func:`topoembed.prevalence.check_prevalence` on the points analysed), whatever its
   p-value: a loop that is one of the ensemble's unsupported loops (step 4), as its recurrence
   is measured where its evidence comes from and uniform subsamples of all points hold too few
   of a minority loop's points to see it every time; a new loop of a single run (step 4).
4. **New loops only.** A part's loop is given over all points: on the points analysed (the part
   and its shell; :func:`_global_loop`), NaN elsewhere (phase, confidence and distance; so
   ``on_loop`` only there). One that matches a
   loop the uniform ensemble already reports (|ρ| ≥ :data:`topoembed.subsamples.MATCH_MIN_CORR`
   on the part loop's points) is left out; where the verdict does not support that loop but
   supports it on the part's evidence (its Bonferroni-corrected p-value, and the prevalence
   measured within the part), that evidence becomes the loop's, and so does the membership
   measured there (:func:`apply_evidence`; ``part_evidence`` keeps both evidences; the ensemble's
   phase over all points stays):
   6 of 10 uniform subsamples of an IPC mixture (400 cycling cells among 3,668) find the cycle,
   p = 0.96, while its part gives p = 0.001. A new loop must recur, as the ensemble's loops
   must: where a single run found it, it is reported only if at least
   :data:`topoembed.params.MIN_PREVALENCE` of 10 random subsamples of the points analysed find
   it again (:func:`topoembed.prevalence.check_prevalence`, all 10 run; ``record["not_recurring"]``
   keeps the others). The part and its surroundings are chosen from the data, so the run's
   p-value alone does not make a finding: around a part of 429 of 5,000 IPC cells a run found a
   second loop with p = 0.0003 that none of the 10 subsamples found again; the IPC mixture's
   part loop recurs in 9 of 10, a 400-point circle's in 10 of 10. A new loop keeps its part
   (``part``, ``part_size``, ``n_analysed``, ``n_reached``: the points it is given on) and is
   judged by :mod:`topoembed.verdict` on its corrected p-value alone: subsamples of
   the points chosen share their holes, so its recurrence is the bar to report it, not support.

Cost: a Leiden partition of the graph per resolution (about 0.4 s at 20,000 points, 1-2 s for
50,000 landmarks), one screening run of at most 700 points per searched part (all of them on
the ``jobs`` local processes), and for a part whose screen finds a loop one analysis of its
points (a single run and its prevalence check of 10 runs on 70 % of its points, or up to 10
subsample runs of 700 points). The shell: one nearest-neighbour search of the part's points
among the points within two edges of it (float32 BLAS, at most 700 × that many distances).

Size (about 570 lines): the plan, the screens, the search and the evidence rules act on the same
records of parts and their loops (a part's loop is matched against the ensemble's and the other
parts' loops, its evidence applied to the ensemble's), so they are one module.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from . import pipeline, prevalence, verdict
from .params import ENSEMBLE_RUNS, MIN_PREVALENCE
from ._parallel import Pool, resolve_jobs
from ._progress import Progress
from ._validate import InputError, option
from .subsamples import MATCH_MIN_CORR, MATCH_MIN_POINTS, WORKER_PRELOAD, phase_corr, subsample_params

log = logging.getLogger(__name__)

__all__ = ["searched_parts", "plan", "Plan", "screen", "Screen", "screen_params", "check_screens", "search", "apply_evidence", "with_shell", "SHELL_NEIGHBOURS", "SURROUNDING_HOPS", "RESOLUTIONS", "SAME_PART",
           "MIN_PART", "MAX_SHARE", "MAX_PARTS", "SCREEN_MAX_P", "MAX_CONDUCTANCE"]

#: Leiden's modularity resolutions, finest first: 1 (the standard modularity; scanpy's
#: default) and a coarser 0.2. Modularity cuts a long loop into arcs (its resolution limit,
#: Fortunato and Barthélemy, PNAS 104, 2007: communities of a ring grow only as the square
#: root of the graph's edges): 2 % of 200,000 points, a circle of 4,000, became 4 arcs at 1
#: and one part at 0.2; 20,000 of 10^6 (1,000 landmarks) 3 arcs at 1, one part at 0.2.
RESOLUTIONS = (1.0, 0.2)
#: Parts of two resolutions that share at least this share of their points (Jaccard) are one part.
SAME_PART = 0.9
#: Only a part whose conductance in the graph (cut to the rest over the smaller volume) is below
#: this is searched. Without it, parts of a 1,500-point torus (conductance 0.046-0.15) each
#: reported the torus's second loop, 3 or 4 loops in 2 of 6 runs (with 0.2, 4 loops in 1 of 6;
#: with 0.03, 0.06 or 0.08 none); the minority circles' parts are components of their own (0.0);
#: the IPC cells' parts are 0.04-0.30; in the IPC mixtures (3,668 non-cycling cells and 400 or
#: 200 cycling ones, 8 draws each) the cycling cells' part is 0.037-0.053 (400) and 0.038-0.077
#: (200: 3 of 8 above the former 0.06).
MAX_CONDUCTANCE = 0.08
#: How far (edges of the extension graph) around a part :func:`with_shell` looks.
SURROUNDING_HOPS = 2
#: Nearest points outside a part that each of its points adds to the part's shell
#: (:func:`with_shell`). Whole runs, IPC mixtures of 200 / 400 cycling cells, 8 draws: a
#: supported loop in 7 / 8 with 8, 7 / 6 with 4 (before a part's new loop needed its p-value);
#: a 1.5 % circle touching a cluster takes fewer of the cluster's points into its membership
#: with 4 (F1 0.964 against 0.936).
SHELL_NEIGHBOURS = 8
#: Fewest points of a part searched alone: the smallest input the front door analyses with its own
#: k (a quarter of the points; below it the k = 10 graph). The 5 % IPC mixtures' cycling part
#: holds 132-165 cells (3 of 8 draws under the former 150).
MIN_PART = 100
#: Largest share of all points a searched part may hold: above it the uniform subsamples of
#: 700 points hold at least 175 of its points, as many as a part of the smallest size searched.
MAX_SHARE = 0.25
#: Most parts searched per resolution: the smallest of those apart from the rest. Before, the
#: largest 12 of all parts were taken, and only then those joined to the rest dropped: two circles
#: of 300 points among 12 clusters of 1,560-1,670 (20,000 points in R^50) were never searched, and
#: the run found no loop (BENCHMARKS.md, "Many parts: the smallest are searched").
MAX_PARTS = 12
#: A screen's loop with a universal-null p-value of at least this is not analysed further. On all
#: IPC cells two screens found loops with p = 1.0, whose full analyses (about 20 s of the run's
#: 34 s) then rejected them; the minority circles' screens had p < 1e-9, and the IPC cycle itself
#: has p = 0.0002-0.09 in subsamples of 500-2,000 cells (BENCHMARKS.md, the real-data panel).
SCREEN_MAX_P = 0.5


def searched_parts(*labelings: np.ndarray, apart=None) -> list[np.ndarray]:
    """The parts (row indices) that :func:`search` analyses, from one or more partitions (finest
    first): per partition its parts of MIN_PART ≤ size ≤ MAX_SHARE · n for which ``apart(P)`` holds
    (all without it), leaving out a part that shares SAME_PART of its points with one taken before;
    of those at most MAX_PARTS, the smallest (a larger part has more points in every uniform
    subsample), listed largest first."""
    out: list[np.ndarray] = []
    for labels in labelings:
        n = len(labels)
        sizes = np.bincount(labels)
        ok = [c for c in np.argsort(-sizes, kind="stable") if MIN_PART <= sizes[c] <= MAX_SHARE * n]
        taken = []
        for c in ok:
            P = np.flatnonzero(labels == c)
            if any(len(np.intersect1d(P, Q, assume_unique=True)) >= SAME_PART * len(np.union1d(P, Q)) for Q in out):
                continue
            if apart is None or apart(P):
                taken.append(P)
        out += taken[-MAX_PARTS:]
    return out


@dataclasses.dataclass
class Plan:
    """What :func:`search` screens (steps 1-2 of the module docstring), fixed by the extension
    graph and ``params.seed`` alone, so a cluster job per part (:func:`screen`) screens what a
    local run would: ``parts`` (rows of each searched part, largest first per resolution),
    ``data`` (each part with its shell: the points a full analysis sees), ``picks`` (at
    most ``subsample_size`` of them: the points screened) and ``record`` (the partition's
    figures for ``summary.json``)."""
    parts: list
    data: list
    picks: list
    record: dict

    @classmethod
    def empty(cls) -> "Plan":
        """No part searched (``params.parts`` off)."""
        return cls([], [], [], {})


def plan(ext_graph, params: pipeline.Params, X) -> Plan:
    """The parts searched and the points screened and analysed for each (:class:`Plan`): Leiden
    at each of :data:`RESOLUTIONS` on ``ext_graph``, the parts :func:`searched_parts` keeps that
    are apart from the rest (conductance below :data:`MAX_CONDUCTANCE`), each with its
    shell (:func:`with_shell`). No part with ``params.parts`` off."""
    if not params.parts:
        return Plan.empty()
    log.info("parts: Leiden communities of the %s at resolution%s %s…",
             "landmarks' graph" if ext_graph.uses_landmarks else "graph of all points",
             "s" if len(RESOLUTIONS) > 1 else "", ", ".join(f"{r:g}" for r in RESOLUTIONS))
    labelings = []
    for r in RESOLUTIONS:
        t0 = time.perf_counter()
        labelings.append(ext_graph.partition(r, params.seed))
        log.info("parts: resolution %g: %d parts (%.1f s)", r, labelings[-1].max() + 1, time.perf_counter() - t0)
    # a loop through a part joined to the rest by many edges may run on outside it (a torus's
    # second loop, in each of its bands): only a part nearly apart from the rest is searched
    joined = []

    def apart(P):
        if ext_graph.conductance(P) < MAX_CONDUCTANCE:
            return True
        joined.append(len(P))
        return False

    parts = searched_parts(*labelings, apart=apart)
    size = int(params.subsample_size)
    rng = np.random.default_rng(params.seed)
    # what is analysed of a part: the part with its shell, or (a large part) the part alone, and
    # what is screened of it: at most one subsample's worth
    data, picks = [], []
    for P in parts:
        D = with_shell(ext_graph, P, size, rng, X, params.metric)
        data.append(D)
        picks.append(D if len(D) <= size else np.sort(rng.choice(D, size, replace=False)))
    record = {"n_parts": int(labelings[0].max()) + 1, "resolutions": list(RESOLUTIONS),
              "n_parts_by_resolution": [int(lb.max()) + 1 for lb in labelings],
              "searched": [int(len(P)) for P in parts], "n_analysed": [int(len(D)) for D in data],
              "not_apart": len(joined), "max_conductance": MAX_CONDUCTANCE}
    return Plan(parts, data, picks, record)


@dataclasses.dataclass
class Screen:
    """One part's screen (a single run on the points ``index``), made by a cluster job
    (:func:`screen`; ``topoembed subsample --part``): ``result`` (a
    :class:`topoembed.pipeline.Result`), or None with ``skipped`` saying why the part could
    not be analysed (too few points for k). ``params``: the settings of the whole analysis;
    ``seconds``: the screen's time."""
    part: int
    index: np.ndarray
    params: dict
    result: pipeline.Result | None = None
    skipped: str | None = None
    seconds: float = 0.0


def _inner(params: pipeline.Params, n: int) -> pipeline.Params:
    """The settings of an analysis of n points inside a part: the part is the input (no part
    search in it, no ``subsample``; ``n_subsamples`` decided by its size), with the k that the
    front door gives n points (:meth:`topoembed.params.Params.for_small_input`: a quarter of
    them below 400 with the default k), so a part that is a component of 300 points is analysed
    as those 300 points given alone would be, not with a graph joining each to a third of them."""
    inner = dataclasses.replace(params, parts=False, n_subsamples="auto", subsample=None)
    return inner.for_small_input(n)[0]


def screen_params(params: pipeline.Params, n: int) -> pipeline.Params:
    """The settings of a part's screen on n points: a subsample's single run (no part search,
    no ensemble), confirmed by the second spectral distance."""
    return dataclasses.replace(subsample_params(_inner(params, n)), confirm=True)


def screen(X, part: int, picks: np.ndarray, params: pipeline.Params) -> Screen:
    """The screen of the part ``part`` whose screened points are ``picks`` (:attr:`Plan.picks`)."""
    t0 = time.perf_counter()
    _, res = _screen((part, X[picks], screen_params(params, len(picks))))
    return Screen(int(part), np.asarray(picks, dtype=np.int64), params.to_dict(),
                  result=None if isinstance(res, str) else res, skipped=res if isinstance(res, str) else None,
                  seconds=time.perf_counter() - t0)


def check_screens(screens: list, planned: Plan, params: pipeline.Params, n: int) -> list:
    """The screens of a plan's parts in part order, from :func:`screen` jobs in any order.
    Refuses screens made with other settings (:meth:`topoembed.params.Params.job_settings` for
    n points), of other points, or missing ones."""
    by_part = {}
    for s in screens:
        params.check_job(s.params, n, f"part screen {s.part}")
        if not 0 <= s.part < len(planned.picks) or not np.array_equal(s.index, planned.picks[s.part]):
            raise InputError(f"part screen {s.part} holds other points than this input's part {s.part} "
                             f"({len(planned.picks)} parts are searched); run `topoembed parts` and the part "
                             "screens again on the same input")
        by_part[s.part] = s
    missing = [i for i in range(len(planned.picks)) if i not in by_part]
    if missing:
        raise InputError(f"part screens {missing} are missing ({len(planned.picks)} parts are searched)")
    return [by_part[i] for i in range(len(planned.picks))]


def search(X, ext_graph, params: pipeline.Params, known: list, analyse, *, jobs="auto",
           progress: bool = False, planned: Plan | None = None, screens: list | None = None) -> tuple[list, dict]:
    """Loops inside the parts of X that the ensemble's loops ``known`` (consensus loops over all
    points) do not already hold (module docstring). ``ext_graph``: the ensemble's
    :class:`topoembed.extension.Extension`, whose graph is split. ``analyse(X_part, params, jobs=...)`` is the
    analysis of one part (:func:`topoembed.ensemble.run`, passed in by it: a single run with its
    prevalence check, or an ensemble). Returns (new loops over all points, record);
    ``record["evidence"]``: for unsupported loops of ``known`` that a part's loop is and that the
    part's evidence supports, that evidence (the caller applies it with :func:`apply_evidence`). ``progress``:
    a bar over the parts (:class:`topoembed._progress.Progress`), also into a part's analysis.
    ``planned``: :func:`plan`'s result where the caller made it; ``screens``: the parts' screens
    made by cluster jobs (:func:`screen`, in part order; :func:`check_screens`) instead of here."""
    planned = planned if planned is not None else plan(ext_graph, params, X)
    parts, data, picks = planned.parts, planned.data, planned.picks
    record = {**planned.record, "loops": [], "screened_loops": [], "evidence": [], "not_recurring": [],
              "same_loop": []}
    if not parts:
        log.info("parts: none of the %d parts of %d points or more is apart from the rest (conductance < %g)",
                 record.get("not_apart", 0), MIN_PART, MAX_CONDUCTANCE)
        return [], record
    log.info("parts: %d parts of the graph; looking for loops inside the %d of %d-%d points",
             record["n_parts"], len(parts), min(map(len, parts)), max(map(len, parts)))
    new, evidence = [], {}
    # the ensemble's loops the verdict supports (None for the others): a part's loop that is one
    # of these is not reported again; an unsupported one may get the part's evidence
    supported = [k if verdict.assess_loop(k).supported else None for k in known]
    bar = Progress(len(parts), "topoembed parts", "part", enabled=progress)
    # the screens, on the local processes (or made by cluster jobs); only a part whose screen finds
    # a loop gets the full analysis (on the IPC cells, 12 parts and no loop: 60 s of full analyses otherwise)
    made = (enumerate(s.result if s.result is not None else s.skipped for s in screens) if screens is not None
            else _screen_here(X, picks, params, jobs))
    outcome = {}  # part -> its screen's run, or why it was not searched
    for i, res in made:
        outcome[i] = res
        bar.step(f"part {i + 1}: " + (f"{res.detection['n_loops']} loop(s) in the screen"
                                      if not isinstance(res, str) else "not searched"))
    for i, (P, D, Ps) in enumerate(zip(parts, data, picks)):
        scr = outcome[i]
        if isinstance(scr, str):  # a part that cannot be analysed (too small for k) is not searched
            log.info("part %d (%d points) not searched: %s", i, len(P), scr)
            record["screened_loops"].append(None)
            continue
        record["screened_loops"].append(int(scr.detection["n_loops"]))
        log.info("part %d of %d (%d points): the screen finds %d loop(s)", i + 1, len(parts), len(P),
                 scr.detection["n_loops"])
        if not scr.detection["n_loops"] or all(
                _hopeless(lp) or (_has_phase(lp) and _known_match(lp, Ps, supported) is not None)
                for lp in scr.loops):
            continue  # no loop, only loops the uniform subsamples report already, or none with a chance
        bar.note(f"part {i + 1} ({len(P):,} points): a new loop in the screen; analysing the part")
        # more points than one subsample: an ensemble of subsamples of them, whose consensus phase
        # is steadier than one run's (a 1,000-point noisy circle: alignment 0.953 against 0.948)
        beyond_one_subsample = len(D) > int(params.subsample_size)
        inner = _inner(params, len(D))
        try:
            res = analyse(X[D], dataclasses.replace(inner, n_subsamples=ENSEMBLE_RUNS) if beyond_one_subsample else inner,
                          jobs=jobs, progress=progress)
        except InputError as err:  # a part that cannot be analysed (too small for k) is not searched
            log.info("part %d (%d points) not searched: %s", i, len(P), err)
            continue
        for lp in res.loops:
            if lp.get("loop_distance") is None or not _has_phase(lp):
                continue  # not localized, or unsupported within its part (phase withheld): not a finding
            lp["k_in_part"] = int(inner.k)  # the part's own k (_inner), which the report names
            j = _known_match(lp, D, known)
            if j is not None and (supported[j] is not None or j in evidence):
                continue  # a supported loop of the ensemble stays as it is
            # a prevalence not measured by the part's analysis is measured now, whatever the p-value
            unchecked = lp.get("prevalence") is None and inner.prevalence_check
            if unchecked and j is None:
                # a new loop of a single run: reported only if it recurs in a majority of random
                # subsamples of the points analysed, as the ensemble reports its loops. The part and
                # its surroundings were chosen from the data, so the run's p-value alone does not
                # make it a finding: 700 points around a part of 5,000 IPC cells gave a loop with
                # p = 0.0003 that none of 10 subsamples of them found again (its screen's phase
                # then ran along a small noise loop; since localize.is_small_loop that screen sees
                # the cell cycle, and the part is not analysed)
                log.info("part %d: a new loop (p = %.2g there); measuring its prevalence", i + 1, lp["p_value"]
                         if lp.get("p_value") is not None else float("nan"))
                prevalence.check_prevalence(X[D], [lp], dataclasses.replace(inner, early_stop=False), jobs=jobs,
                                            progress=progress)  # its n_runs of n_subsamples, where it ran
                if lp.get("prevalence") is not None and lp["prevalence"] < MIN_PREVALENCE:
                    log.info("part %d: its loop recurs in %d of %d subsamples (< %g): not reported", i + 1,
                             lp["n_runs"], lp["n_subsamples"], MIN_PREVALENCE)
                    record["not_recurring"].append({"part": i, "part_size": int(len(P)), "analysed": int(len(D)),
                                                    "p_value_in_part": lp.get("p_value"),
                                                    "prevalence": lp["prevalence"]})
                    continue
            elif unchecked:
                # evidence for the ensemble's unsupported loop j, whatever its p-value after the
                # Bonferroni factor: its recurrence is measured where the evidence comes from, within
                # the part. Uniform subsamples of all points hold too few of a minority loop's points
                # to see it every time (the IPC mixture of 400 cycling cells among 4,068: prevalence
                # 0.5-0.7 there, however clear the loop in its part)
                log.info("part %d: its loop is the ensemble's loop %d; measuring its prevalence within the part",
                         i + 1, j + 1)
                prevalence.check_prevalence(X[D], [lp], inner, jobs=jobs, progress=progress)
            if j is not None:  # an unsupported loop of the ensemble: the part's evidence, if it supports it
                _add_evidence(evidence, j, known[j], lp, i, P, D, len(parts), len(X))
                continue
            found = _global_loop(lp, D, len(X), len(parts), i, P)
            entry = {"part": i, "part_size": int(len(P)), "analysed": int(len(D)), "k_in_part": lp["k_in_part"],
                     "p_value_in_part": lp.get("p_value"), "prevalence": lp.get("prevalence")}
            same = _new_match(found, new)
            if same is not None:  # two parts (two resolutions, or overlapping shells) found one loop
                keep = _stronger(found, new[same])
                log.info("part %d: its loop is the loop of part %d; keeping %s", i + 1, new[same]["part"] + 1,
                         "this part's (stronger evidence)" if keep is found else "that one")
                record["same_loop"].append({**entry, "as_part": int(new[same]["part"]),
                                            "kept": "this" if keep is found else "other"})
                if keep is found:
                    record["loops"][same] = entry
                    new[same] = found
                continue
            new.append(found)
            record["loops"].append(entry)
    bar.close()
    record["evidence"] = [evidence[j] for j in sorted(evidence)]
    return new, record


def with_shell(ext_graph, P: np.ndarray, size: int, rng, X, metric: str = "euclidean") -> np.ndarray:
    """The part P with its shell (sorted ids): for each point of P its :data:`SHELL_NEIGHBOURS`
    nearest points (by ``metric`` on the rows of X) among those within :data:`SURROUNDING_HOPS`
    edges of P, a random sample of them where P and the shell hold more than ``size`` points.

    A minority loop closes in the points next to its part: in the IPC mixtures the cycling
    cells' part holds 132-165 of 200 cycling cells, the G1 end of the cycle lying in the
    non-cycling mass. Each point's nearest outside points take in the cycling cells the part
    left out and the cells next to it on every side, where a random fill of 700 points dilutes
    150 cycling cells with 550 others (BENCHMARKS.md, "A part's shell"). A part that is a
    component of its own has none."""
    P = np.asarray(P, dtype=np.int64)
    room = int(size) - len(P)
    around = ext_graph.neighbourhood(P, SURROUNDING_HOPS)
    if room <= 0 or not len(around):
        return P
    around = around[np.unique(_nearest_of(X, P, around, min(SHELL_NEIGHBOURS, len(around)), metric))]
    if len(around) > room:
        around = rng.choice(around, room, replace=False)
    return np.union1d(P, around)


def _nearest_of(X, rows, among, m: int, metric: str) -> np.ndarray:
    """Positions in ``among`` of each of ``rows``' m nearest points of ``among`` (rows of X)."""
    if metric in ("euclidean", "cosine"):
        from .extension import nearest_rows, unit_rows

        A, B = np.asarray(X[rows], dtype=np.float32), np.asarray(X[among], dtype=np.float32)
        if metric == "cosine":
            A, B = unit_rows(A), unit_rows(B)
        return nearest_rows(A, B, m)
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=m, metric=metric).fit(X[among]).kneighbors(X[rows], return_distance=False)


def _screen_here(X, picks: list, params: pipeline.Params, jobs):
    """(part, its screen's run or why not) for every part, on the ``jobs`` local processes."""
    with Pool(resolve_jobs(jobs, len(picks)), preload=WORKER_PRELOAD,
              killed_hint=f"run again with fewer {option('jobs')} or {option('parts', False)}") as pool:
        yield from pool.imap(_screen, [(i, X[Ps], screen_params(params, len(Ps))) for i, Ps in enumerate(picks)])


def _screen(args):
    """One part's screen (top level: picklable for worker processes): (part, run), or (part,
    the message) where the part cannot be analysed."""
    i, Xs, params = args
    try:
        return i, pipeline.run(Xs, params, final=False)
    except InputError as err:
        return i, str(err)


def _corrected(p: float | None, n_searched: int) -> float | None:
    """A part's p-value over the whole search (step 3): Bonferroni over the ``n_searched`` parts."""
    return None if p is None else float(min(1.0, p * n_searched))


def _add_evidence(evidence: dict, j: int, known_loop: dict, lp: dict, part: int, P, D, n_searched: int, n: int) -> None:
    """Record the evidence of the part's loop ``lp`` (its Bonferroni-corrected p-value and the
    prevalence measured within the part) for the ensemble's unsupported loop j that it is
    (module docstring, step 4), where the verdict supports the loop on that evidence, and its
    membership on the points analysed ``D`` of all n (``loop_distance``, ``on_loop``: arrays that
    :func:`apply_evidence` takes out of the record)."""
    p = lp.get("p_value")
    ev = {"p_value": _corrected(p, n_searched), "prevalence": lp.get("prevalence")}
    if not verdict.assess_loop(ev).supported or (p is None and ev["prevalence"] is None):
        return
    if ev["prevalence"]:  # the part's prevalence check: n_runs of n_subsamples (prevalence = their ratio)
        ev["n_runs"] = int(lp["n_runs"])
        ev["n_subsamples"] = int(lp["n_subsamples"])  # recorded by the ensemble and by the check alike
    dist, on_loop = _membership_on(lp, D, n)
    evidence[j] = {"loop": int(j), **ev, "p_value_in_part": p, "k_in_part": lp.get("k_in_part"),
                   "part": int(part), "part_size": int(len(P)),
                   "n_analysed": int(len(D)), "n_parts_searched": int(n_searched),
                   "ensemble_p_value": known_loop.get("p_value"), "ensemble_prevalence": known_loop.get("prevalence"),
                   "loop_distance": dist, "on_loop": on_loop}
    log.info("part %d: its loop is the ensemble's loop %d (not supported there: universal-null p = %s, prevalence "
             "%s); within the part p = %s (times %d parts), prevalence %s: now its evidence", part + 1, j + 1,
             known_loop.get("p_value"), known_loop.get("prevalence"), ev["p_value"], n_searched, ev["prevalence"])


def apply_evidence(found: list, record: dict) -> None:
    """Give each of the ensemble's unsupported loops ``found`` that a part's analysis supports
    (``record["evidence"]`` of :func:`search`) that analysis's p-value (and its prevalence where
    it measured one), keeping the ensemble's own in ``part_evidence`` with the part's record, and
    that analysis's membership: ``loop_distance`` and ``on_loop`` on the points it analysed (the
    part and its shell), NaN and False elsewhere (``part_evidence["ensemble_n_on_loop"]`` keeps the
    subsamples' count). The subsamples' loops are the weak ones the verdict did not support, and
    their tube round the cycle took in nearly every point: 3,600-3,935 of the 4,068 cells of the
    IPC mixtures of 400 cycling cells (F1 0.19-0.20 against the cycling cells), against 459-492
    and F1 0.74-0.80 within the part. The phase, ``n_runs`` and consensus stay the ensemble's,
    so every point keeps a phase. Takes the arrays out of ``record["evidence"]``, which then
    holds only what ``summary.json`` writes."""
    for ev in record.get("evidence", []):
        lp = found[ev["loop"]]
        member = {k: ev.pop(k) for k in ("loop_distance", "on_loop") if k in ev}
        lp["p_value"] = ev["p_value"]
        if ev["prevalence"] is not None:
            lp["prevalence"] = ev["prevalence"]
        lp["part_evidence"] = {k: v for k, v in ev.items() if k != "loop"}
        if member:
            lp["part_evidence"]["ensemble_n_on_loop"] = int(np.sum(lp["on_loop"])) if "on_loop" in lp else None
            lp.update(member, on_loop_threshold=1.0, n_on_loop=int(member["on_loop"].sum()))


def _hopeless(lp: dict) -> bool:
    """Whether a screen's loop has a universal-null p-value of at least :data:`SCREEN_MAX_P`."""
    p = lp.get("p_value")
    return p is not None and p >= SCREEN_MAX_P


def _has_phase(lp: dict) -> bool:
    """Whether a run's loop carries a phase (none where it was withheld as unsupported)."""
    return "phase" in lp and bool(np.isfinite(np.asarray(lp["phase"], float)).any())


def _known_match(lp: dict, rows: np.ndarray, known: list) -> int | None:
    """Which of the loops ``known`` over all points (None entries skipped) a loop found on the
    points ``rows`` is: the first with |ρ| of the phases on the loop's own points (else on all
    of ``rows``, :func:`topoembed.subsamples.phase_corr`) ≥ MATCH_MIN_CORR; None if none."""
    where = np.asarray(lp["on_loop"], bool)
    return next((j for j, k in enumerate(known) if k is not None and "phase" in k
                 and phase_corr(k["phase"][rows], lp["phase"], where) >= MATCH_MIN_CORR), None)


def _new_match(lp: dict, new: list) -> int | None:
    """Which of the part loops ``new`` (over all points, NaN off their part) the part loop ``lp``
    is: the first whose phase has |ρ| ≥ MATCH_MIN_CORR with its own on the points both reach
    (at least :data:`topoembed.subsamples.MATCH_MIN_POINTS` of them); None if none."""
    a = np.asarray(lp["phase"], dtype=np.float64)
    for j, other in enumerate(new):
        b = np.asarray(other["phase"], dtype=np.float64)
        both = np.isfinite(a) & np.isfinite(b)
        if both.sum() >= MATCH_MIN_POINTS and phase_corr(a[both], b[both]) >= MATCH_MIN_CORR:
            return j
    return None


def _stronger(a: dict, b: dict) -> dict:
    """Of two part loops that are one loop, the one with the smaller corrected p-value (then the
    larger prevalence)."""
    def key(lp):
        p = lp.get("p_value")
        return (1.0 if p is None else p, -(lp.get("prevalence") or 0.0))
    return a if key(a) < key(b) else b


def _membership_on(lp: dict, P: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A part analysis's loop distance (in units of its on-loop threshold) and ``on_loop`` over
    all n points: on the points analysed ``P``, NaN and False elsewhere."""
    dist = np.full(n, np.nan)
    dist[P] = np.asarray(lp["loop_distance"], dtype=np.float64) / lp["on_loop_threshold"]
    return dist, np.nan_to_num(dist, nan=np.inf) <= 1.0


def _global_loop(lp: dict, P: np.ndarray, n: int, n_searched: int, part: int, part_points: np.ndarray) -> dict:
    """A part's loop over all n points, its ids and p-value those of the whole data: its phase,
    confidence, loop distance and ``on_loop`` on the points analysed (``P``: the part
    ``part_points`` with its shell), NaN elsewhere. The shell holds the points nearest the part,
    so a harmonic extension beyond it reaches mostly other cells: around the IPC mixtures' parts
    (3,668 non-cycling cells, 200 or 400 cycling), extending the phase to all points within two
    edges gave it to 2-19 more cycling cells and 320-860 more non-cycling ones, with a confidence
    near 1 (median 1.0) because the extended phase is smooth; the distances spread into a
    neighbouring cluster the same way (a 1.5 % circle touching one: 106 of its points "on the loop")."""
    out = {k: v for k, v in lp.items() if k not in pipeline.PER_POINT}
    p = lp.get("p_value")

    def on_all(values):
        full = np.full(n, np.nan)
        full[P] = values
        return full

    dist, on_loop = _membership_on(lp, P, n)
    out.update(
        cycle=[int(P[v]) for v in lp.get("cycle", [])], birth_edge=[int(P[v]) for v in lp.get("birth_edge", [])],
        p_value=_corrected(p, n_searched), p_value_in_part=p,
        n_parts_searched=int(n_searched), part=int(part), part_size=int(len(part_points)), n_analysed=int(len(P)),
        phase=on_all(lp["phase"]), phase_confidence=on_all(lp["phase_confidence"]), loop_distance=dist,
        on_loop=on_loop, on_loop_threshold=1.0,
    )
    conf = out["phase_confidence"]
    out["median_phase_confidence"] = float(np.nanmedian(conf)) if np.isfinite(conf).any() else float("nan")
    out["n_on_loop"] = int(out["on_loop"].sum())
    out["n_reached"] = int(np.isfinite(out["phase"]).sum())  # analysed points its phase reaches
    if "phase_spread" in lp:  # the ensemble's spread over its runs: on the points analysed only
        out["phase_spread"] = on_all(lp["phase_spread"])
    return out
