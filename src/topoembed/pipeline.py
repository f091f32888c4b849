"""The stage chain: points → kNN graph → distances → persistence → loops, one single run.

:func:`run` validates the input and the settings (:class:`topoembed.params.Params`) *before*
any work, then calls the core stages in order and times each one, and returns a
:class:`Result`; its count comes from :func:`topoembed.evidence.decide_loops`, its verdict
from :mod:`topoembed.verdict`, its ``summary.json`` from :func:`topoembed.summary.summary`.
Whole datasets (:mod:`topoembed.ensemble`) and a single run's prevalence check
(:mod:`topoembed.prevalence`) sit above it, and every way in goes through
:func:`topoembed.analysis.run`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from . import extension, graph, homology, loops, spectral, verdict
from . import localize as localization
from ._lazy import module as _lazy_module
from ._progress import Progress, inner_run
from ._validate import InputError, check_points, option
# the settings contract and the summary have modules of their own; the names that every caller
# of the chain uses stay reachable here (pipeline.Params, pipeline.summary, ...)
from .evidence import _Speculation, decide_loops
from .params import (ENSEMBLE_MIN_N, ENSEMBLE_RUNS, H2_MAX_N, SMALL_INPUT_K, STAGE_PARAMS, SUBSAMPLE_SIZE, Params,  # noqa: F401
                     _default, stage_resources)
from .summary import PER_POINT, summary  # noqa: F401 (PER_POINT: pipeline.PER_POINT for callers)
from .extension import extension_graph, extension_k  # noqa: F401 (pipeline.extension_k for callers)

sp = _lazy_module("scipy.sparse")

log = logging.getLogger(__name__)

__all__ = ["Params", "Result", "run", "summary", "subsample_index", "H2_MAX_N", "ENSEMBLE_MIN_N"]


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
    notes: list = field(default_factory=list)  # settings chosen for this input (not problems), for summary.json and the report

    @property
    def verdict(self) -> "verdict.Verdict":
        """The one verdict on the loops found (:func:`topoembed.verdict.decide`): what the
        summary, the command line, ``adata.uns`` and the report render."""
        return verdict.decide(self.loops, self.detection)


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
    with run_context() as caught, (contextlib.nullcontext() if final else inner_run()):
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
    handler.collects_only = True  # not a place the user reads: unheard records still reach stderr
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
    bar.now(stages[0])

    def tick(name, t0):
        timings[name] = time.perf_counter() - t0
        log.debug("%s: %.2f s", name, timings[name])
        bar.step(f"{name}: {timings[name]:.1f} s")
        if bar.done < len(stages):
            bar.now(stages[bar.done])  # what runs next, while it runs

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
        ph = localization_stage(found, X, index, A, D, ph, detection, params, withhold=withhold, groups=final)
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


def localization_stage(found, X, index, A, D, ph, detection, params: Params, withhold: bool = True,
                       groups: bool = True) -> dict:
    """The localization stage of :func:`run`, the staged ``topoembed localize`` and
    ``te.tl.detect_loops``: the found loops' cocycles (:func:`topoembed.homology.add_cocycles`,
    unless ``ph`` has them), :func:`localize_loops`, and, with ``withhold`` and without
    ``params.phase_low_confidence``, :func:`withhold_unsupported_phase`. ``groups``: count each
    loop's groups on its cycle (:func:`mark_groups_on_cycle`; not in a run inside an ensemble,
    whose loops are counted on the graph of all points). Returns ``ph`` with the cocycles."""
    # truncated where the localization needs them (it runs ripser.py further if it must)
    ph = localization.with_loop_cocycles(D, ph, detection["features"], params.theta_filtration)
    localize_loops(found, X, index, A, D, ph, detection, params, groups=groups)
    if withhold:
        withhold_unsupported_phases(found, detection, params)
    return ph


def localize_loops(found, X, index, A, D, ph, detection, params: Params, groups: bool = True) -> None:
    """Add cycle, phase, phase_confidence, on_loop and loop_distance (per input point) to each found loop.

    The circular coordinate and membership come from :func:`topoembed.localize.localize_loops`
    on the points the persistence ran on; with a subsample, the other points get them by
    harmonic extension over the kNN graph of all points (see :mod:`topoembed.localize`).
    """
    placed = localization.localize_loops(D, A, ph, detection, theta_filtration=params.theta_filtration,
                                         phase_method=localization.phase_method_for(params.phase_method, detection))
    n_in = len(index) if X is None else X.shape[0]
    ext_graph = extension.build(X, params, include=[index]) if len(index) < n_in else None  # cells outside the subsample
    for lp, pl in zip(found, placed):
        lp["cycle"] = [int(index[v]) for v in pl["cycle"]]
        lp["n_on_loop"] = int(pl["n_on_loop"])
        lp["theta_radius"] = float(pl["theta_filtration"])  # r_θ: the Rips value θ was solved at
        lp["on_loop_threshold"] = float(pl["on_loop_threshold"])
        if ext_graph is None:
            phase, dist, on, conf = pl["phase"], pl["loop_distance"], pl["on_loop"], pl["phase_confidence"]
        else:
            phase = ext_graph.phase(index, pl["phase"])
            dist = ext_graph.values(index, pl["loop_distance"])
            on = dist <= pl["on_loop_threshold"]
            conf = ext_graph.confidence(phase, dist, pl["on_loop_threshold"])
            lp["n_on_loop"] = int(on.sum())
        lp["phase"], lp["loop_distance"], lp["on_loop"] = phase, dist, np.asarray(on, dtype=bool)
        lp["phase_confidence"] = conf
        lp["phase_method"] = pl["phase_method"]
        if pl.get("phase_cycle") is not None:  # which cycle θ was spaced along (localize, step 1)
            lp["phase_cycle"] = pl["phase_cycle"]
        lp["median_phase_confidence"] = float(np.nanmedian(conf)) if np.isfinite(conf).any() else float("nan")
    if groups and X is not None and found:
        if ext_graph is None:  # all points were analysed: their own union k = 15 graph
            ext_graph = extension.Extension(n=n_in, landmarks=np.arange(n_in), A=extension.extension_graph(X, params))
        mark_groups_on_cycle(found, ext_graph)


def mark_groups_on_cycle(found: list, ext_graph) -> None:
    """``lp["groups_on_cycle"]`` for each loop with a cycle: how many separate groups of points
    (connected components of the union kNN graph of :func:`topoembed.extension.extension_graph`,
    k = 15, held in ``ext_graph``) its representative cycle passes through. The analysis graph
    (k = 100) joins clusters that lie apart, so a ring of separate clusters has a loop in it;
    the verdict does not support a loop whose cycle jumps between groups
    (:func:`topoembed.verdict.assess_loop`)."""
    for lp in found:
        if lp.get("cycle"):
            lp["groups_on_cycle"] = ext_graph.groups_crossed(lp["cycle"])


#: The support thresholds live with the verdict (:mod:`topoembed.verdict`), the one place that reads them.
SUPPORT_PREVALENCE = verdict.SUPPORT_PREVALENCE
P_CONCLUSIVE = verdict.P_CONCLUSIVE


def loop_support(lp: dict, alpha: float) -> str | None:
    """None when the data support loop ``lp`` (:func:`topoembed.verdict.assess_loop`), else why
    not, with the way to get its phase anyway."""
    why = verdict.assess_loop(lp, alpha).why_not()
    return None if why is None else f"{why}; no phase is given ({option('phase_low_confidence', True)} gives it)"


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
