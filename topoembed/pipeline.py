"""The chained run: points → kNN graph → distances → persistence → loops.

:class:`Params` holds every setting that shapes a result; each default is read from the
signature of the core function that uses it, so a parameter has one default
everywhere (Python API, command line, workflow config). :func:`run` validates the
input and the parameters *before* any work, then calls the core stages in order and
times each one. :func:`summary` turns a :class:`Result` into the ``summary.json``
contract.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from . import _device, graph, homology, loops, spectral, verdict
from ._version import __version__
from ._lazy import module as _lazy_module

sp = _lazy_module("scipy.sparse")
from . import localize as localization
from ._progress import Progress
from ._validate import InputError, check_choice, check_k, check_points, check_positive

log = logging.getLogger(__name__)

__all__ = ["Params", "Result", "run", "summary", "subsample_index", "H2_MAX_N", "ENSEMBLE_MIN_N"]

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
    Luxburg 2009). Pass smaller k for small inputs (k must be < n).

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
    in 10 subsamples of 70 % of the points (:func:`topoembed.ensemble.check_prevalence`); a
    prevalence of at least 0.9 supports the loop. Where such a run finds no loop, its longest
    H1 feature is checked the same way and reported if it recurs in at least 90 % of them
    (:func:`topoembed.ensemble.prevalence_stage`). Cost, only then: 2.5-4.7 times the run where
    a loop is checked, 4.5-6 where a hidden loop is found, 1.1-2 on noise (BENCHMARKS.md).
    ``confirm`` applies to single runs: the runs of an ensemble or of a prevalence check skip it,
    since the prevalence across subsamples is their second opinion
    (:func:`topoembed.ensemble.subsample_params`).
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

    def n_runs(self, n: int) -> int:
        """Single runs the analysis of n points makes: ``n_subsamples`` if an integer, else
        (``"auto"``) 1 when ``subsample`` is set or n ≤ :data:`ENSEMBLE_MIN_N`, and
        :data:`ENSEMBLE_RUNS` subsamples of ``subsample_size`` points above."""
        if self.n_subsamples != "auto":
            return int(self.n_subsamples)
        return 1 if self.subsample is not None or n <= ENSEMBLE_MIN_N else ENSEMBLE_RUNS

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
        for name in ("localize", "confirm", "early_stop", "phase_low_confidence", "surface", "prevalence_check"):
            if getattr(self, name) not in (True, False):  # also accepts 0 and 1 (the CLI's form)
                raise InputError(f"{name}={getattr(self, name)!r} must be True/False (on the command line 1 or 0)")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise InputError(f"seed={self.seed!r} must be an integer")
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
                             f"subsample, e.g. --subsample {H2_MAX_N}")
        spectral.check_dense_feasible(n_used, max_n=self.max_points)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Result:
    """Everything a run produced (array objects; no AnnData, no files)."""

    params: Params
    n_input: int
    index: np.ndarray            # rows of the input the run used (all, or the subsample)
    A: sp.csr_matrix             # kNN adjacency on the used points
    D: np.ndarray                # distance matrix the persistence ran on
    ph: dict                     # homology.persistence output
    detection: dict              # loops.detect output
    loops: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    n_components: int = 1        # connected components of the kNN graph
    auto: dict | None = None     # topoembed.auto.select's choice when distance="auto"
    ensemble: dict | None = None  # topoembed.ensemble: subsamples, each run's reading, prevalence
    warnings: list = field(default_factory=list)  # the run's logged warnings, for summary.json and the report

    @property
    def verdict(self) -> "verdict.Verdict":
        """The one verdict on the loops found (:func:`topoembed.verdict.decide`): what the
        summary, the command line, ``adata.uns`` and the report render."""
        return verdict.decide(self.loops, self.detection)


#: The settings each stage of the staged command line depends on (each includes the earlier
#: stages'): they are recorded in the stage's output file, and a later stage refuses an
#: input whose record disagrees with its own options (:func:`topoembed.io.check_record`).
STAGE_PARAMS: dict[str, tuple[str, ...]] = {"graph": ("k", "metric", "symmetrize", "weights", "seed", "knn_method")}
STAGE_PARAMS["distances"] = STAGE_PARAMS["graph"] + ("distance", "t", "n_components")
STAGE_PARAMS["homology"] = STAGE_PARAMS["distances"] + ("maxdim",)
STAGE_PARAMS["detect"] = STAGE_PARAMS["homology"] + ("n_loops", "loop_rule", "confirm", "surface")
STAGE_PARAMS["localize"] = STAGE_PARAMS["detect"] + ("localize", "theta_filtration", "phase_method",
                                                     "phase_low_confidence", "prevalence_check")


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


#: The distance that must agree with each spectral distance (same graph) when
#: ``Params.confirm`` is on: two differently built distances share fewer artefacts.
CONFIRM_WITH = {"effective_resistance": "diffusion", "effective_resistance_uncorrected": "diffusion",
                "diffusion": "effective_resistance"}


def confirmation_reading(A: sp.spmatrix, params: Params, spectra: list | None = None,
                         n_loops: int | None = None) -> dict:
    """Second opinion on a loop count: H1 of ``CONFIRM_WITH[params.distance]`` on the same
    graph ``A`` read by the same rule (:func:`topoembed.loops.detect`, ``n_loops="auto"``).
    ``spectra`` (:func:`topoembed.spectral.component_spectra` of A) saves a second
    eigendecomposition. With ``n_loops`` = 1 (the first distance's count) the filtration
    stops as soon as the answer "1" can no longer change (:func:`_one_loop_decided`; the
    score is then a lower bound). Returns ``{"distance", "n_loops", "score"}``;
    :func:`topoembed.loops.decide` weighs it.
    """
    other = CONFIRM_WITH[params.distance]
    D2 = spectral.distance_matrix(other, A=A, t=params.t, spectra=spectra)
    scale2 = homology.distance_scale(D2)
    decided = (lambda dgm, t: _one_loop_decided(dgm, t, scale2)) if n_loops == 1 else None
    ph2 = homology.persistence(D2, maxdim=1, decided=decided)
    dgm2 = ph2["dgms"][1] if ph2["exact"] else _at_truncation(ph2["dgms"][1], ph2["thresh"])
    det2 = loops.detect(dgm2, n_loops="auto", scale=ph2["scale"])
    check = {"distance": other, "n_loops": int(det2["n_loops"]), "score": float(det2["score"])}
    if not ph2["exact"]:
        check["score_is_lower_bound"] = True
    return check


def _at_truncation(dgm1: np.ndarray, t: float) -> np.ndarray:
    """The diagram with the classes alive at truncation t given death t (their least death)."""
    out = np.array(dgm1, dtype=np.float64)
    out[~np.isfinite(out[:, 1]), 1] = t
    return out


def _one_loop_decided(dgm1: np.ndarray, t: float, scale: float) -> bool:
    """Can the confirmation's count (:func:`topoembed.loops.detect`) still change as the
    filtration grows past t? Not if exactly one class is alive at t (no class is born later,
    :func:`topoembed.homology.persistence`) and, with its death at the least value t, the
    rule already reports that class as the one loop: a later death only lengthens it, which
    widens its gap to the next lifetime and its s_1, so the count stays 1."""
    alive = np.flatnonzero(~np.isfinite(dgm1[:, 1]))
    if len(alive) != 1:
        return False
    det = loops.detect(_at_truncation(dgm1, t), n_loops="auto", scale=scale)
    return det["n_loops"] == 1 and det["features"] == [int(alive[0])]


#: A top-level single run of at most this many points computes the confirmation's second opinion
#: in a forked process while its own persistence runs (:class:`_Speculation`).
SPECULATE_MAX_N = 2000


class _Speculation:
    """:func:`confirmation_reading` for a count of 1 (the usual one), computed in a forked child
    process while the parent computes the first distance's persistence, on the second CPU.

    The child works on the parent's memory as it was at the fork (A, the spectra: nothing is
    copied or pickled on the way in) and sends back the reading and its log records, which
    :meth:`result` hands to the parent's loggers where the sequential run would have logged
    them, so the output, ``summary["warnings"]`` included, is the same. Anything unexpected
    (no fork, the child dies or fails) gives None, and the caller computes the reading itself.
    Linux only (fork after BLAS use is safe there; macOS's frameworks are not fork-safe), with
    at least 2 usable CPUs, and not inside an ensemble's workers (which already fill the CPUs).
    n = 1,000 (circle): 0.3 s of the confirmation off the critical path."""

    def __init__(self, A, params: Params, spectra):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_speculative_child, args=(child, A, params, spectra), daemon=True)
        self._proc.start()
        child.close()

    @staticmethod
    def usable(params: Params, n: int, final: bool) -> bool:
        import multiprocessing
        import sys

        from ._parallel import usable_cpus

        return (final and n <= SPECULATE_MAX_N and sys.platform.startswith("linux") and usable_cpus() >= 2
                and not multiprocessing.current_process().daemon  # a daemonic worker may not have children
                and params.confirm and params.n_loops == "auto" and params.loop_rule != "gap"
                and params.distance in CONFIRM_WITH)

    @classmethod
    def start(cls, A, params: Params, spectra, n: int, final: bool):
        """A running speculation, or None where it does not apply or cannot start (then the
        run computes the confirmation itself, as it would anyway)."""
        if not cls.usable(params, n, final):
            return None
        try:
            return cls(A, params, spectra)
        except Exception as exc:  # noqa: BLE001 - no fork here, too many processes, ...: run sequentially
            log.debug("no speculative confirmation (%s)", exc)
            return None

    def result(self) -> dict | None:
        try:
            status, payload, records = self._conn.recv()
        except (EOFError, OSError):
            return None
        if status != "ok":
            log.debug("the speculative confirmation failed (%s); computing it here", payload)
            return None
        for rec in records:
            logging.getLogger(rec.name).handle(rec)
        return payload

    def close(self) -> None:
        if self._proc is not None:
            self._conn.close()
            self._proc.join(timeout=1)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
            self._proc = None


def _speculative_child(conn, A, params, spectra) -> None:
    records: list = []

    class _Keep(logging.Handler):
        def emit(self, record):
            record.msg, record.args, record.exc_info = record.getMessage(), None, None
            records.append(record)

    logging.getLogger().handlers = []  # the parent's handlers would print the records twice
    pkg = logging.getLogger("topoembed")
    pkg.handlers, pkg.propagate = [_Keep()], False
    try:
        conn.send(("ok", confirmation_reading(A, params, spectra, n_loops=1), records))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which recomputes
        conn.send(("error", repr(exc), []))
    finally:
        conn.close()


def with_surface(detection: dict, dgm1: np.ndarray, scale: float, params: Params, distances,
                 confirmation: dict | None = None) -> tuple[dict, dict | None]:
    """(detection, surface): :func:`topoembed.loops.decide` again with the closed surface of the
    distances (:func:`topoembed.loops.surface_evidence`) where it could change the count (rule "evidence",
    ``n_loops="auto"``, ``params.surface``, :func:`topoembed.loops.may_hide_loops`); else the
    detection unchanged and None. ``distances``: the matrix, or a function returning it (called
    only then), or None (no surface)."""
    if (distances is None or not params.surface or params.loop_rule != "evidence" or params.n_loops != "auto"
            or not loops.may_hide_loops(loops.filtered_lifetimes(dgm1)[0], detection["n_loops"], scale)):
        return detection, None
    surface = loops.surface_evidence(distances() if callable(distances) else distances, seed=params.seed)
    return loops.decide(dgm1, scale=scale, n_loops=params.n_loops, rule=params.loop_rule,
                        confirmation=confirmation, surface=surface), surface


def decide_loops(ph: dict, A: sp.spmatrix | None, params: Params, spectra: list | None = None,
                 confirm: bool = True, speculation: _Speculation | None = None, D: np.ndarray | None = None) -> dict:
    """The detection stage: read the H1 diagram (:func:`topoembed.loops.detect`), ask the other
    spectral distance on the same graph ``A`` for a second opinion when the count is positive
    (:func:`confirmation_reading`; only with ``params.confirm``, ``n_loops="auto"`` and a rule
    other than "gap"), look for a closed surface when a second loop may have been left out
    (:func:`with_surface` on the distances ``D``), and let :func:`topoembed.loops.decide` weigh the evidence. ``A`` None
    (or ``confirm`` False) skips the second opinion, ``D`` None the surface. Logs what the
    user should know."""
    dgm1 = ph["dgms"][1] if params.maxdim >= 1 else np.zeros((0, 2))
    rule = params.loop_rule  # confirm=False: no second distance is computed, so none can reject
    reading = loops.detect(dgm1, n_loops=params.n_loops, scale=ph["scale"])
    check = None
    if (confirm and A is not None and params.confirm and rule != "gap" and params.n_loops == "auto"
            and reading["n_loops"] > 0 and params.distance in CONFIRM_WITH):
        if speculation is not None and reading["n_loops"] == 1:
            check = speculation.result()
        if check is None:
            check = confirmation_reading(A, params, spectra, n_loops=reading["n_loops"])
    detection = loops.decide(dgm1, scale=ph["scale"], n_loops=params.n_loops, rule=rule, confirmation=check)
    detection, surface = with_surface(detection, dgm1, ph["scale"], params, D, confirmation=check)
    if "surface_loops" in detection:
        log.warning("a closed surface stands behind the loops: a void (H2, %s, on %d landmarks) with %d "
                    "H1 classes alive at its birth; reporting %d loops instead of %d (a torus's second loop is "
                    "short-cut by spectral distances; surface=False keeps %d)", loops.void_evidence(surface),
                    surface["n_landmarks"], surface["n_loops"], detection["n_loops"],
                    detection["surface_loops"]["previous"], detection["surface_loops"]["previous"])
    if "rescued" in detection:
        log.warning("the detection rule finds no loop (%s), but %d H1 feature(s) are significant at p < %g "
                    "(universal null, Bonferroni): reported as loop(s) (loop_rule='confirmed_gap' does not)",
                    detection["rescued"]["reason"], detection["n_loops"], detection["rescued"]["alpha"])
    if "unconfirmed" in detection:
        detection["unconfirmed"]["distance"] = params.distance
        log.warning("%s finds %d loop(s) (s = %.2f) but %s on the same graph finds %d: reporting 0 loops "
                    "(--confirm 0, confirm=False in Python, keeps the first reading)", params.distance, reading["n_loops"],
                    reading["score"], check["distance"], check["n_loops"])
    for ns in detection.get("not_significant", []):
        log.warning("H1 feature %d is not significant under the universal null (p = %.3g >= %.2g, Bonferroni): "
                    "not reported as a loop (loop_rule='significant'; the default 'confirmed_gap' keeps it)",
                    ns["feature"], ns["p_value"], detection["alpha"])
    for f, p in zip(detection["features"], detection["p_values"]):
        if p is not None and p >= detection["alpha"]:
            log.warning("the loop of H1 feature %d has low confidence: its death/birth ratio is within what noise "
                        "produces (universal-null p = %.3g, Bonferroni)", f, p)
    return detection


def subsample_index(n: int, size: int | None, seed: int = 0) -> np.ndarray:
    """Sorted random subset of range(n) of the given size (all rows if size is None or >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(size), replace=False))


def run(X, params: Params | None = None, *, progress: bool = False, A: sp.spmatrix | None = None,
        final: bool = True, withhold: bool | None = None, **overrides) -> Result:
    """Run every stage on points X (n × p) and return a :class:`Result`.

    ``params`` or keyword overrides (``k=30, distance="diffusion"``) set the options.
    ``A`` may pass a precomputed adjacency on the same points (e.g. scanpy's graph); it
    is then used instead of building a kNN graph (``subsample`` must be None).

    The run uses one BLAS thread: LAPACK's and the sparse solvers' results change in their
    last digits with the thread count, and the same seed must give the same result on any
    machine (tested: byte-identical ``summary.json`` with 1 and 2 threads). Cost at 1,000
    points: the eigendecomposition takes about 0.5 s instead of 0.3 s.

    ``final`` False: a run inside an ensemble, which keeps every loop's phase (the ensemble
    matches loops across runs by their phases and decides support on all of them).
    ``withhold`` (default: ``final``): withhold the phase of loops without support here
    (:func:`withhold_unsupported_phase`); False leaves that to the caller
    (:func:`topoembed.ensemble.run` measures a prevalence first).
    """
    with run_context() as caught:
        result = _run(X, params, progress=progress, A=A, final=final,
                      withhold=final if withhold is None else withhold, **overrides)
    result.warnings = caught
    return result


@contextlib.contextmanager
def run_context():
    """How every stage of a run executes (:func:`run`, the staged command line): on one BLAS
    thread, with topoembed's warnings collected into the yielded list (:func:`collect_warnings`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), collect_warnings() as caught:
        yield caught


@contextlib.contextmanager
def collect_warnings():
    """Collect the messages of the WARNING (and worse) records that topoembed logs inside the
    block, in order and without repeats (they still reach the user's log as usual)."""
    caught: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg not in caught:
                caught.append(msg)

    handler = _Keep(level=logging.WARNING)
    pkg = logging.getLogger("topoembed")
    pkg.addHandler(handler)
    try:
        yield caught
    finally:
        pkg.removeHandler(handler)


def _run(X, params: Params | None = None, *, progress: bool = False, A: sp.spmatrix | None = None,
         final: bool = True, withhold: bool = True, **overrides) -> Result:
    # a single run: an ensemble of subsamples is topoembed.ensemble.run, which calls this per subsample
    params = dataclasses.replace(params or Params(), **{**overrides, "n_subsamples": 1})
    X = check_points(X, min_points=3)
    params.validate(X.shape[0])
    index = subsample_index(X.shape[0], params.subsample, params.seed)
    if A is not None and len(index) != X.shape[0]:
        raise InputError("a precomputed graph A cannot be combined with subsample; subsample the data first")
    Xs = X[index]
    n = Xs.shape[0]
    timings: dict[str, float] = {}
    stages = ["graph", "distances", "homology", "detection", "localization"]
    bar = Progress(len(stages), "topoembed", "stage", enabled=progress)

    def tick(name, t0):
        timings[name] = time.perf_counter() - t0
        log.debug("%s: %.2f s", name, timings[name])
        bar.step(f"{name}: {timings[name]:.1f} s")

    t_all = time.perf_counter()
    chosen = None
    if params.distance == "auto":
        # label-free choice of distance, k, t, graph rule and number of loops (topoembed.auto)
        from . import auto

        t0 = time.perf_counter()
        chosen = auto.select(Xs, seed=params.seed)
        params = dataclasses.replace(params, distance=chosen["distance"], k=int(chosen["k"]),
                                     t=params.t if chosen["t"] is None else chosen["t"],
                                     symmetrize=chosen["symmetrize"] or params.symmetrize,
                                     n_loops=int(chosen["n_loops"]) if params.n_loops == "auto" else params.n_loops)
        if A is not None:
            raise InputError("distance='auto' builds its own graphs; do not pass a precomputed graph A")
        timings["auto"] = time.perf_counter() - t0
        log.info("auto chose %s (%d loop(s), support %s)", chosen["key"], chosen["n_loops"], chosen["support"])
        if chosen.get("unconfirmed"):
            u = chosen["unconfirmed"]
            log.warning("auto: %s alone proposes %d loop(s) (s = %.2f), but no other distance kind agrees; "
                        "reporting 0 loops with its diagram", u["key"], u["n_loops"], u["score"])
    t0 = time.perf_counter()
    if A is None:
        A = graph.knn_graph(Xs, k=params.k, metric=params.metric, symmetrize=params.symmetrize,
                            weights=params.weights, random_state=params.seed, device=params.device,
                            method=params.knn_method)
    else:
        A = sp.csr_matrix(A, dtype=np.float64)
        if A.shape != (n, n):
            raise InputError(f"the graph has shape {A.shape} but there are {n} points")
    n_comp, _ = graph.components(A)
    tick("graph", t0)

    t0 = time.perf_counter()
    # one eigendecomposition per graph, shared with the confirmation below
    spectra = spectral.component_spectra(A, device=params.device) if params.distance != "euclidean" else None
    D = spectral.distance_matrix(params.distance, X=Xs, A=A, t=params.t, n_components=params.n_components,
                                 spectra=spectra)
    tick("distances", t0)

    # the confirmation's second opinion, on the other CPU while this process runs the persistence
    speculation = _Speculation.start(A, params, spectra, n, final) if chosen is None else None
    try:
        t0 = time.perf_counter()
        # Z_47 coefficients: the cocycles (added below only if a loop is found) lift to integers
        ph = homology.persistence(D, maxdim=params.maxdim, coeff=localization.DEFAULT_COEFF)
        if n_comp > 1 and params.distance != "euclidean":
            log.warning("H0 has %d infinite bars, one per connected component of the kNN graph", n_comp)
        tick("homology", t0)

        t0 = time.perf_counter()
        detection = decide_loops(ph, A, params, spectra=spectra, confirm=chosen is None, speculation=speculation, D=D)
    finally:
        if speculation is not None:
            speculation.close()
    found = describe_loops(ph, detection, index)
    tick("detection", t0)

    t0 = time.perf_counter()
    if params.localize and found:
        ph = localization_stage(found, X, index, A, D, ph, detection, params, withhold=withhold)
    tick("localization", t0)
    timings["total"] = time.perf_counter() - t_all
    bar.close()
    return Result(params=params, n_input=X.shape[0], index=index, A=A, D=D, ph=ph, detection=detection,
                  loops=found, timings=timings, n_components=int(n_comp),
                  auto=None if chosen is None else {"key": chosen["key"], "n_loops": int(chosen["n_loops"]),
                                                    "support": chosen["support"],
                                                    "unconfirmed": chosen.get("unconfirmed")})


def describe_loops(ph: dict, detection: dict, index: np.ndarray) -> list[dict]:
    """birth, death, persistence, birth edge (input ids via ``index``) and p-value (universal
    null, Bonferroni; :func:`topoembed.loops.decide`) per detected loop."""
    found = []
    p_values = detection.get("p_values") or [None] * len(detection["features"])
    surface = detection.get("surface_loops")
    for row, p in zip(detection["features"], p_values):
        b, d = ph["dgms"][1][row]
        a_, b_ = ph["birth_edges"][row]
        found.append({"birth": float(b), "death": float(d), "persistence": float(d - b),
                      "birth_edge": [int(index[a_]), int(index[b_])], "p_value": p})
        if surface:  # one of the loops of a void (loops.surface_reading): the void's p is theirs too
            found[-1]["surface_void_p"] = surface["void_p"]
    return found


def extension_k(params: Params) -> int:
    """k of :func:`extension_graph`: the generic k (15), or ``params.k`` if smaller."""
    return min(params.k, _default(graph.knn_graph, "k"))


def extension_graph(X, params: Params) -> sp.csr_matrix:
    """The union kNN graph of all points over which results on a subsample are extended to
    the others (a subsampled run, each run of an ensemble). An interpolation graph: a small
    k (:func:`extension_k`) suffices and keeps the sparse solves cheap."""
    return graph.knn_graph(X, k=extension_k(params), metric=params.metric, symmetrize="or",
                           random_state=params.seed, device=params.device, method=params.knn_method)


def localization_stage(found, X, index, A, D, ph, detection, params: Params, withhold: bool = True) -> dict:
    """The localization stage of :func:`run`, the staged ``topoembed localize`` and
    ``te.tl.detect_loops``: the found loops' cocycles (:func:`topoembed.homology.add_cocycles`,
    unless ``ph`` has them), :func:`localize_loops`, and, with ``withhold`` and without
    ``params.phase_low_confidence``, :func:`withhold_unsupported_phase`. Returns ``ph`` with
    the cocycles."""
    # truncated where the localization needs them (it runs ripser.py further if it must)
    ph = localization.with_loop_cocycles(D, ph, detection["features"], params.theta_filtration)
    localize_loops(found, X, index, A, D, ph, detection, params)
    if withhold:
        withhold_unsupported_phases(found, detection, params)
    return ph


def localize_loops(found, X, index, A, D, ph, detection, params: Params) -> None:
    """Add cycle, phase, phase_confidence, on_loop and loop_distance (per input point) to each found loop.

    The circular coordinate and membership come from :func:`topoembed.localize.localize_loops`
    on the points the persistence ran on; with a subsample, the other points get them by
    harmonic extension over the kNN graph of all points (see :mod:`topoembed.localize`).
    """
    placed = localization.localize_loops(D, A, ph, detection, theta_filtration=params.theta_filtration,
                                         phase_method=params.phase_method)
    n_in = len(index) if X is None else X.shape[0]
    A_full = extension_graph(X, params) if len(index) < n_in else None  # cells outside the subsample
    for lp, pl in zip(found, placed):
        lp["cycle"] = [int(index[v]) for v in pl["cycle"]]
        lp["n_on_loop"] = int(pl["n_on_loop"])
        lp["theta_radius"] = float(pl["theta_filtration"])  # r_θ: the Rips value θ was solved at
        lp["on_loop_threshold"] = float(pl["on_loop_threshold"])
        if A_full is None:
            phase, dist, on, conf = pl["phase"], pl["loop_distance"], pl["on_loop"], pl["phase_confidence"]
        else:
            phase = localization.extend_phase(A_full, index, pl["phase"])
            dist = localization.extend_loop_distance(A_full, index, pl["loop_distance"])
            on = dist <= pl["on_loop_threshold"]
            conf = localization.phase_confidence(A_full, phase, dist, pl["on_loop_threshold"])
            lp["n_on_loop"] = int(on.sum())
        lp["phase"], lp["loop_distance"], lp["on_loop"] = phase, dist, np.asarray(on, dtype=bool)
        lp["phase_confidence"] = conf
        lp["phase_method"] = pl["phase_method"]
        lp["median_phase_confidence"] = float(np.nanmedian(conf)) if np.isfinite(conf).any() else float("nan")


#: The support thresholds live with the verdict (:mod:`topoembed.verdict`), the one place that reads them.
SUPPORT_PREVALENCE = verdict.SUPPORT_PREVALENCE
P_CONCLUSIVE = verdict.P_CONCLUSIVE


def loop_support(lp: dict, alpha: float) -> str | None:
    """None when the data support loop ``lp`` (:func:`topoembed.verdict.assess_loop`), else why
    not, with the way to get its phase anyway."""
    why = verdict.assess_loop(lp, alpha).why_not()
    return None if why is None else f"{why}; no phase is given (--phase-low-confidence 1 gives it)"


def withhold_unsupported_phase(lp: dict, alpha: float) -> None:
    """Phase only where a loop is supported: for a loop without support (:func:`loop_support`)
    the per-point phase and its confidence become NaN and ``lp["phase_withheld"]`` says why;
    membership (on_loop, loop_distance) stays."""
    reason = loop_support(lp, alpha)
    if reason is None or "phase" not in lp:
        return
    lp["phase_withheld"] = reason
    for f in ("phase", "phase_confidence", "phase_spread"):
        if f in lp:
            lp[f] = np.full(len(lp[f]), np.nan)
    lp["median_phase_confidence"] = float("nan")
    log.warning("the loop born at %.4g and dying at %.4g has %s", lp["birth"], lp["death"], reason)


def withhold_unsupported_phases(found: list, detection: dict, params: Params) -> None:
    """:func:`withhold_unsupported_phase` for each loop, at the detection's alpha, unless
    ``params.phase_low_confidence`` asks for every phase."""
    if not params.phase_low_confidence:
        for lp in found:
            withhold_unsupported_phase(lp, detection.get("alpha", loops.ALPHA))


#: Per-point arrays of each loop: kept on the Result, not written to summary.json.
PER_POINT = ("phase", "phase_confidence", "phase_spread", "loop_distance", "on_loop")


def _diagram_lists(dgms) -> dict:
    return {f"H{dim}": [[float(b), (float(d) if np.isfinite(d) else None)] for b, d in dgm]
            for dim, dgm in enumerate(dgms)}


def summary(result: Result, input_desc: str = "") -> dict:
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
                                             "prevalence_check")
                         if k in det}},
        "verdict": result.verdict.to_dict(),
        "loops": [{k: v for k, v in lp.items() if k not in PER_POINT} for lp in result.loops],
        **({"auto": result.auto} if result.auto is not None else {}),
        **({"ensemble": result.ensemble} if result.ensemble is not None else {}),
        "warnings": list(result.warnings),
        "timings_s": {k: float(v) for k, v in result.timings.items()},
    }
