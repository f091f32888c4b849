"""The settings contract: :class:`Params`, every setting that shapes a result, with its checks.

Each default is read from the signature of the core function that uses it, so a parameter
has one name and one default everywhere (Python API, command line, workflow config).
:meth:`Params.validate` checks every setting against the number of points *before* any
work; :data:`STAGE_PARAMS` says which settings each stage of the staged command line
depends on, and :func:`stage_resources` what a cluster job of each stage should ask for.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Union

import numpy as np

from . import _device, graph, homology, loops, spectral
from . import localize as localization
from ._validate import InputError, check_choice, check_k, check_positive, meant_name, option

__all__ = ["Params", "STAGE_PARAMS", "stage_resources", "H2_MAX_N", "ENSEMBLE_MIN_N", "ENSEMBLE_RUNS", "MIN_PREVALENCE",
           "SUBSAMPLE_SIZE", "SMALL_INPUT_K", "SMALL_INPUT_SHARE", "takes_quarter_k"]

#: k of the union graph for inputs of at most the default k points (:meth:`Params.for_small_input`),
#: where the default mutual k = 100 graph cannot be built. Before the prevalence check of loops
#: without a p-value (:data:`topoembed.prevalence.CHECK_NO_P_MAX_N`), on the 20 COIL-20 objects
#: (72 rotation images each, 20 PCs): a loop in 17 of 20 with k = 10 (union k = 15: 13, k = 20:
#: 10; mutual k = 15: 15, k = 23: 9), none on 20 noise sets of 72 points but with mutual k = 23
#: (2); with the check 9 of 20, and 1 of 120 no-loop sets of 30-100 points (BENCHMARKS.md; sets
#: made by hand; the blob, sphere and uniform sets of ``benchmarks/bench_check_fraction.py``: 4 of 120).
SMALL_INPUT_K = 10
#: Below this many times the default k (400 points), a run with the default k uses a quarter of
#: its points as k (:meth:`Params.for_small_input`): the default mutual k = 100 graph joins each
#: point to half of 200 points and shortcuts the loop. IPC cells (10 random draws each, same
#: draws; BENCHMARKS.md "Small inputs"), supported loops with k = 100 / n // 3 / n // 4: 150
#: cells 0 / 5 / 6 of 10, 200 cells 1 / 6 / 7, 250 cells 5 / 8 / 9, 300 and 350 cells (n // 4)
#: 6 and 10 against 6 and 9; 200 cycling cells alone (8 draws, 5 seeds): 6 of 40 with k = 100,
#: 22 with k = 70, 18 with k = 50. No supported loop with n // 4 on 150 no-loop sets of 150-350
#: points (blob, sphere, uniform; 10 seeds each), and noisy circles of 150-250 points found as before.
#: (Measured with the prevalence check's subsamples of 70 %; with its 90 % on these sizes since,
#: :func:`topoembed.prevalence.check_fraction`: k = 100 4 of 10 and n // 4 9 of 10 at 200 cells.)
SMALL_INPUT_SHARE = 4

#: scanpy's names for topoembed's settings, and where a scanpy argument goes instead
SCANPY_NAMES = {"n_neighbors": "k (neighbours besides the cell itself: scanpy's n_neighbors - 1)",
                "random_state": "seed", "n_pcs": "use_rep (a representation with the PCs to use)",
                "layer": "te.pp.recipe_cell_cycle(adata, layer=...), whose PCA te.tl.run then analyses"}
#: Largest n for which H2 (maxdim=2) is allowed: ripser took 34 s at n = 500 on the sphere (2 cores).
H2_MAX_N = 600
#: Above this many points (and with no ``subsample``) ``n_subsamples="auto"`` analyses the data
#: as an ensemble of subsamples of ``subsample_size`` (:mod:`topoembed.ensemble`). The single run
#: (k = 100, mutual graph) was checked right at 300 and 1,000 points (noisy circle, Gaussian blob,
#: IPC cells; 3 seeds each); at 2,000 points it loses the IPC loop (seed 0 here; seeds 0 and 1
#: in issue 13) and its confirmation takes minutes on a noisy circle (170 s, 2 cores).
ENSEMBLE_MIN_N = 1000
#: Subsamples of an ensemble with ``n_subsamples="auto"``.
ENSEMBLE_RUNS = 10
#: A loop found in subsamples is reported when at least this share of them found it (a
#: majority; :mod:`topoembed.ensemble`, and a new loop inside a part, :mod:`topoembed.parts`):
#: a loop found in one subsample out of ten is not a finding.
MIN_PREVALENCE = 0.5
#: Points per subsample of an ensemble (``Params.subsample_size``). 700, not the published
#: protocol's 1,000: on the IPC cells (every subsample run made, seeds 0-7) the loop was found
#: in 68 of 70 700-point runs (R² of CellCycle on the consensus phase 0.87-0.88) and 76 of 80
#: 500-point ones, with p-values as small; but on two linked circles (σ = 0.15, n = 5,000)
#: 500-point runs lose the loops (0-1 per run, 0 reported) where 700- and 1,000-point runs find
#: both. A 700-point run costs about 40 % of a 1,000-point one (BENCHMARKS.md "Whole datasets").
SUBSAMPLE_SIZE = 700


def _default(func, name):
    return inspect.signature(func).parameters[name].default


@dataclass
class Params:
    """Every setting of a pipeline run (names are the same in ``tl``, the CLI and YAML).

    The pipeline's graph differs from :func:`topoembed.graph.knn_graph`'s generic
    defaults (k=15, union graph): a *mutual* kNN graph with k = 100. On the neural IPC
    cell-cycle data (1,000-cell subsamples, seeds 0-4) it lifts the corrected effective
    resistance's detection score from 0.57 (k=15, union) to 0.83, and it keeps the noisy
    circle's loop (sigma = 0.25-0.3) found; see BENCHMARKS.md. Mutual kNN graphs drop the
    one-sided edges that noise adds between distant parts of a loop (Maier, Hein and von
    Luxburg 2009). Inputs of fewer than 400 points get a smaller k with the default
    (:meth:`for_small_input`); any other k is used as given (k must be < n).

    ``confirm`` (default True): with ``n_loops="auto"``, a loop count found with a
    spectral distance must be confirmed by the other spectral kind on the same graph
    (effective resistance ↔ diffusion at time ``t``; :data:`CONFIRM_WITH`), else the run
    reports 0 loops and keeps the reading as ``detection["unconfirmed"]``. On Gaussian
    noise (noise benchmark, 45 runs) effective resistance alone reported a loop in 15 runs,
    confirmed in none; on the IPC cell-cycle data it was confirmed in every subsample.
    Cost: one more distance matrix and H1 persistence, only when a loop was found.

    ``knn_method`` ("auto", "exact", "approx"): the kNN search (:func:`topoembed.graph.knn_search`;
    "exact" removes the approximate search's dependence on pynndescent at large n).
    ``device`` ("cpu", "auto", "cuda"): where the kNN search and the eigendecomposition run
    (:mod:`topoembed._device`; the CPU fallback gives the same graph). ``n_subsamples`` /
    ``subsample_size`` / ``early_stop``: how :func:`topoembed.ensemble.run`
    analyses a whole dataset (:meth:`n_runs`; a unanimous ensemble stops after 6 of 10 runs); ``phase_method``: the circular coordinate
    (:func:`topoembed.localize.localize_loops`). ``phase_low_confidence`` (default False): also
    give a phase for loops without support (:func:`loop_support`), whose phases are otherwise
    withheld (NaN, with the reason in the loop's ``phase_withheld``). ``surface`` (default
    True): where the H1 diagram could hold a second loop that the count leaves out, look for
    a closed surface behind it (:func:`topoembed.loops.surface_evidence`; 0.1-0.4 s, only then).
    ``prevalence_check`` (default True): a run on all of at most :data:`ENSEMBLE_MIN_N`
    points whose loop has an inconclusive p-value (≥ 0.01) also measures the loop's prevalence
    in 10 subsamples of 70 % of the points (90 % of 101-399 points;
    :func:`topoembed.prevalence.check_prevalence`); a
    prevalence of at least 0.9 supports the loop. Where such a run finds no loop, its longest
    H1 feature is checked the same way and reported if it recurs in at least 90 % of them
    (:func:`topoembed.prevalence.prevalence_stage`). Cost, only then: 2.5-4.7 times the run where
    a loop is checked, 4.5-6 where a hidden loop is found, 1.1-2 on noise (BENCHMARKS.md).
    ``parts`` (default True): an ensemble (more than :data:`ENSEMBLE_MIN_N` points) also looks
    for loops inside each part of the graph that holds 100 points to a quarter of them
    (:mod:`topoembed.parts`): a loop that only a few percent of the points carry, which
    uniform subsamples miss; p-values are corrected for the number of parts searched.
    ``confirm`` applies to single runs: the runs of an ensemble or of a prevalence check skip it,
    since the prevalence across subsamples is their second opinion
    (:func:`topoembed.subsamples.subsample_params`).
    """

    k: int = 100
    metric: str = _default(graph.knn_graph, "metric")
    symmetrize: str = "and"
    weights: str = _default(graph.knn_graph, "weights")
    distance: str = spectral.DEFAULT_DISTANCE
    t: float = _default(spectral.distance_matrix, "t")
    n_components: int = _default(spectral.distance_matrix, "n_components")
    maxdim: int = _default(homology.persistence, "maxdim")
    n_loops: Union[str, int] = _default(loops.detect, "n_loops")
    subsample: Union[int, None] = None
    seed: int = 0
    max_points: int = spectral.DENSE_MAX_N
    localize: bool = True
    confirm: bool = True
    loop_rule: str = _default(loops.decide, "rule")
    theta_filtration: float = _default(localization.localize_loops, "theta_filtration")
    phase_method: str = _default(localization.localize_loops, "phase_method")
    n_subsamples: Union[str, int] = "auto"
    subsample_size: int = SUBSAMPLE_SIZE
    early_stop: bool = True
    device: str = "auto"
    knn_method: str = _default(graph.knn_graph, "method")
    phase_low_confidence: bool = False
    surface: bool = True
    prevalence_check: bool = True
    parts: bool = True

    def n_runs(self, n: int) -> int:
        """Single runs the analysis of n points makes: ``n_subsamples`` if an integer, else
        (``"auto"``) 1 when ``subsample`` is set or n ≤ :data:`ENSEMBLE_MIN_N`, and
        :data:`ENSEMBLE_RUNS` subsamples of ``subsample_size`` points above."""
        if self.n_subsamples != "auto":
            return int(self.n_subsamples)
        return 1 if self.subsample is not None or n <= ENSEMBLE_MIN_N else ENSEMBLE_RUNS

    def for_small_input(self, n: int) -> tuple["Params", str | None, str | None]:
        """(settings, warning, note) for a run of n points (or of ``subsample`` of them) with the default k (100): at most k
        points (whose graph needs more) get the union kNN graph with :data:`SMALL_INPUT_K`
        neighbours, and a warning that says so; fewer than :data:`SMALL_INPUT_SHARE` × k points
        get k = n // :data:`SMALL_INPUT_SHARE` (its mutual graph), and a note that says so; at most
        :data:`SMALL_INPUT_K` points are refused (InputError) with how to proceed. Otherwise, or
        with another k, these settings unchanged and neither. (In Python a k of exactly 100 asked
        for on purpose cannot be told from the default: pass 99 or 101; the command line keeps an
        explicit ``--k 100``, :func:`topoembed.analysis.run`'s ``small_input``.)"""
        default_k = Params.__dataclass_fields__["k"].default
        if self.subsample is not None:  # a run on a subsample: its points are what the graph joins
            n = min(int(self.subsample), n)
        if self.k == default_k and n <= SMALL_INPUT_K:  # the default k's check would blame a k nobody chose
            raise InputError(f"{n} points are too few to look for a loop with the default settings, whose graph for "
                             f"small inputs joins each point to {SMALL_INPUT_K} others; pass more points (the defaults "
                             f"were checked from 30 points up; below that a loop cannot be told from noise), or, to "
                             f"try anyway, choose a k below {n} (e.g. {option('k', max(1, n // 3))})")
        if self.k != default_k or n >= SMALL_INPUT_SHARE * default_k:
            return self, None, None
        if not takes_quarter_k(n):  # at most the default k points
            warning = (f"{n} points are too few for the default k = {default_k} graph: using the union graph with "
                       f"k = {SMALL_INPUT_K}; pass another k below {n} (e.g. {option('k', max(2, n // 4))}) to choose "
                       "otherwise. At this size a loop rests on little evidence: 2-D Gaussian blobs of 72-100 "
                       "points get a supported loop 1 time in 5 (BENCHMARKS.md, \"The graph of 100 points or "
                       "fewer\")")
            return dataclasses.replace(self, k=SMALL_INPUT_K, symmetrize="or"), warning, None
        k = n // SMALL_INPUT_SHARE
        note = (f"k = {k}: a quarter of the {n} points (the default k = {default_k} is for "
                f"{SMALL_INPUT_SHARE * default_k} points or more; its graph would join each point to "
                f"{default_k / n:.0%} of the others); pass another k to choose otherwise (--k 100 keeps 100 on the "
                "command line; in Python, where k=100 is the default, k=99 or k=101)")
        return dataclasses.replace(self, k=k), None, note

    @classmethod
    def from_options(cls, options: dict, where: str) -> "Params":
        """``Params(**options)``, or an InputError for a name that is not a setting, with the
        setting a scanpy user meant (``n_neighbors`` is ``k``) or the nearest name."""
        unknown = [name for name in options if name not in cls.__dataclass_fields__]
        if unknown:
            hints = []
            for name in unknown:
                meant = meant_name(name, cls.__dataclass_fields__, SCANPY_NAMES)
                hints.append(f"{name!r}" + (f" (did you mean {meant}?)" if meant else ""))
            raise InputError(f"{where} got unknown option(s) {', '.join(hints)}; its options are the settings of "
                             f"topoembed.params.Params: {', '.join(cls.__dataclass_fields__)}")
        return cls(**options)

    def validate(self, n: int) -> "Params":
        """Check every setting against the number of input points n; raise InputError."""
        check_choice(self.distance, [*spectral.DISTANCES, "auto"], "distance")
        check_choice(self.symmetrize, ("or", "and"), "symmetrize")
        check_choice(self.weights, graph.WEIGHTS, "weights")
        check_positive(self.t, "t", allow_zero=True)
        check_positive(self.n_components, "n_components", integer=True)
        check_positive(self.max_points, "max_points", integer=True)
        if self.maxdim not in (0, 1, 2):
            raise InputError(f"maxdim={self.maxdim!r} must be 0, 1 or 2")
        if self.n_loops != "auto":
            check_positive(self.n_loops, "n_loops", integer=True, allow_zero=True)
            if int(self.n_loops) > loops.MAX_LOOPS:
                raise InputError(f"n_loops={self.n_loops} is more than the {loops.MAX_LOOPS} loops the detection "
                                 f"score is defined for; pass 0-{loops.MAX_LOOPS} or 'auto'")
        check_choice(self.phase_method, localization.PHASE_METHODS, "phase_method")
        check_choice(self.loop_rule, loops.LOOP_RULES, "loop_rule")
        check_choice(self.knn_method, ("auto", "exact", "approx"), "knn_method")
        _device.resolve(self.device)  # "cuda" without CUDA fails here, before any work
        if not 0 <= self.theta_filtration < 1:
            raise InputError(f"theta_filtration={self.theta_filtration!r} must be in [0, 1)")
        for name in ("localize", "confirm", "early_stop", "phase_low_confidence", "surface", "prevalence_check", "parts"):
            if getattr(self, name) not in (True, False):  # also accepts 0 and 1 (the CLI's form)
                raise InputError(f"{name}={getattr(self, name)!r} must be True/False (on the command line 1 or 0)")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed={self.seed!r} must be an integer >= 0")
        if self.metric != "euclidean":  # the kNN search's names (scikit-learn's), else it fails after loading
            from sklearn.neighbors import VALID_METRICS  # only here: the default needs no scikit-learn

            check_choice(self.metric, set(VALID_METRICS["brute"]) - {"precomputed"}, "metric")
        if self.n_subsamples != "auto":
            check_positive(self.n_subsamples, "n_subsamples", integer=True)
        check_positive(self.subsample_size, "subsample_size", integer=True)
        n_used = n
        if self.n_runs(n) > 1:
            if self.subsample is not None:
                raise InputError("subsample (one random subset) and n_subsamples > 1 (an ensemble of subsets) "
                                 "exclude each other; pass one of them")
            n_used = min(n, int(self.subsample_size))
        if self.subsample is not None:
            check_positive(self.subsample, "subsample", integer=True)
            if self.subsample < 3:
                raise InputError(f"subsample={self.subsample} is too small; use at least k + 1 points")
            n_used = min(n, int(self.subsample))
        if self.distance == "auto":
            if n_used < 20:
                raise InputError(f"distance='auto' needs at least 20 points, got {n_used}")
        else:
            check_k(self.k, n_used)
        if self.distance == "laplacian_eigenmaps" and self.n_components >= n_used - 1:
            raise InputError(f"n_components={self.n_components} must be < n - 1 = {n_used - 1}")
        if self.maxdim == 2 and n_used > H2_MAX_N:
            raise InputError(f"maxdim=2 (voids) on {n_used} points would take very long (limit {H2_MAX_N}); "
                             f"subsample, e.g. {option('subsample', H2_MAX_N)}")
        spectral.check_dense_feasible(n_used, max_n=self.max_points)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def job_settings(self, n: int) -> dict:
        """The settings a cluster job's result (a subsample run, a part's screen or plan) depends
        on, for an input of n points: all but ``device`` (where it ran) and ``early_stop`` (the
        combining step makes every run), with ``n_subsamples`` resolved (:meth:`n_runs`: "auto"
        and 10 are the same above 1,000 points), compared as the command line writes them (1 for True)."""
        out = {k: v for k, v in self.to_dict().items() if k not in ("device", "early_stop")}
        out["n_subsamples"] = self.n_runs(n)
        return {k: int(v) if isinstance(v, bool) else v for k, v in out.items()}

    def check_job(self, made: dict, n: int, what: str) -> None:
        """Refuse the result ``what`` of a cluster job made with the settings ``made`` (a
        :meth:`to_dict`) where its :meth:`job_settings` for n points differ from these, naming
        each difference ("k 30 there, 25 here")."""
        there, here = Params(**made).job_settings(n), self.job_settings(n)
        diff = "; ".join(f"{k} {there.get(k)} there, {here[k]} here" for k in sorted(here) if there.get(k) != here[k])
        if diff:
            raise InputError(f"{what} was made with other settings ({diff}); rerun it with the same options")


#: The settings each stage of the staged command line depends on (each includes the earlier
#: stages'): they are recorded in the stage's output file, and a later stage refuses an
#: input whose record disagrees with its own options (:func:`topoembed.stage_files.check_record`).
STAGE_PARAMS: dict[str, tuple[str, ...]] = {"graph": ("k", "metric", "symmetrize", "weights", "seed", "knn_method")}
STAGE_PARAMS["distances"] = STAGE_PARAMS["graph"] + ("distance", "t", "n_components")
STAGE_PARAMS["homology"] = STAGE_PARAMS["distances"] + ("maxdim",)
STAGE_PARAMS["detect"] = STAGE_PARAMS["homology"] + ("n_loops", "loop_rule", "confirm", "surface")
STAGE_PARAMS["localize"] = STAGE_PARAMS["detect"] + ("localize", "theta_filtration", "phase_method",
                                                     "phase_low_confidence", "prevalence_check")


def takes_quarter_k(n: int) -> bool:
    """Whether n points with the default k get k = n // :data:`SMALL_INPUT_SHARE`
    (:meth:`Params.for_small_input`): more than the default k and fewer than
    :data:`SMALL_INPUT_SHARE` times it (101-399 points)."""
    default_k = Params.__dataclass_fields__["k"].default
    return default_k < n < SMALL_INPUT_SHARE * default_k


def stage_resources(stage: str, n: int, params: Params | None = None) -> dict:
    """What to ask a cluster scheduler for one stage on n points: ``{"mem_mb", "runtime"}``
    (minutes), and 1 thread (every stage runs on one BLAS thread).

    Memory: the dense n × n stages hold a few float64 matrices (distances, eigenvectors,
    workspace: 4 · 8 n² bytes) and persistence adds at most
    :func:`topoembed.homology.ripser_memory_estimate` over a third of the edges (the
    truncated filtration's worst case measured here); graph, embedding and report are
    O(n k). Time: about what n = 1,000 took on this project's 2-core machine (graph 5 s,
    distances 2 s, homology 10 s, detect 10 s, localize 5 s, embedding 60 s, report 10 s),
    scaled by n^3 for the dense stages and n for the others, times 3; the floor is 10
    minutes. An ensemble (n > :data:`ENSEMBLE_MIN_N`) runs a whole single run on each of its
    ``subsample_size``-point subsamples (``stage="subsample"``), and its ``combine`` job is O(n k).
    """
    params = params or Params()
    if stage == "subsample":
        n, stage = int(params.subsample_size), "single"
    scale = max(n, 1) / 1000
    dense = 4 * 8 * n**2 + homology.ripser_memory_estimate(n * n / 6)
    mem = {"graph": 5e-5 * n * params.k, "embed": 1e-4 * n * 100, "report": 1e-4 * n * params.k,
           "combine": 1e-4 * n * params.k}.get(stage, dense / 2**20)  # MB: about 50-100 bytes per graph edge
    linear = {"graph": 5, "embed": 60, "report": 10, "combine": 30}
    cubic = {"distances": 2, "homology": 10, "detect": 10, "localize": 5, "single": 30}
    seconds = linear[stage] * scale if stage in linear else cubic.get(stage, 30) * scale**3
    runtime = 3 * seconds / 60
    return {"mem_mb": int(1000 + mem), "runtime": int(max(10, 3 * runtime)), "threads": 1}
