"""The second opinions a single run gathers before the count is decided (:func:`decide_loops`).

* the other spectral distance on the same graph (:func:`confirmation_reading`;
  ``Params.confirm``), computed in a forked process while the first distance's persistence
  runs where it can (:class:`_Speculation`);
* a closed surface behind the loops (:func:`with_surface`; ``Params.surface``).

:func:`topoembed.loops.decide` weighs them; :mod:`topoembed.verdict` then says how sure the
run is of each loop.
"""
from __future__ import annotations

import logging

import numpy as np

from . import homology, loops, spectral
from ._lazy import module as _lazy_module
from ._validate import option
from .params import Params

sp = _lazy_module("scipy.sparse")

log = logging.getLogger(__name__)

__all__ = ["CONFIRM_WITH", "confirmation_reading", "with_surface", "decide_loops", "SPECULATE_MAX_N"]

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

#: Seconds the parent waits for the forked child's reading once it needs it, before computing
#: the reading itself. A child forked from a process with other threads (Jupyter's, a BLAS pool)
#: can in principle block on a lock one of them held at the fork (Python ≥ 3.12 warns so); it
#: must not stall the run. The reading takes well under this (0.3 s at 1,000 points).
SPECULATION_WAIT_S = 60.0


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
            if not self._conn.poll(SPECULATION_WAIT_S):
                log.debug("the speculative confirmation sent nothing in %.0f s; computing it here", SPECULATION_WAIT_S)
                return None
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
                    "(universal null, Bonferroni): reported as loop(s) (%s does not)",
                    detection["rescued"]["reason"], detection["n_loops"], detection["rescued"]["alpha"],
                    option("loop_rule", "confirmed_gap"))
    if "unconfirmed" in detection:
        detection["unconfirmed"]["distance"] = params.distance
        log.warning("%s finds %d loop(s) (s = %.2f) but %s on the same graph finds %d: reporting 0 loops "
                    "(%s keeps the first reading)", params.distance, reading["n_loops"],
                    reading["score"], check["distance"], check["n_loops"], option("confirm", False))
    for ns in detection.get("not_significant", []):
        log.warning("H1 feature %d is not significant under the universal null (p = %.3g >= %.2g, Bonferroni): "
                    "not reported as a loop (%s; %s keeps it)",
                    ns["feature"], ns["p_value"], detection["alpha"], option("loop_rule", "significant"),
                    option("loop_rule", "confirmed_gap"))
    for f, p in zip(detection["features"], detection["p_values"]):
        if p is not None and p >= detection["alpha"]:  # a prevalence may still support it: the verdict warns
            log.info("the loop of H1 feature %d has a death/birth ratio within what noise produces (universal-null "
                     "p = %.3g, Bonferroni)", f, p)
    return detection
