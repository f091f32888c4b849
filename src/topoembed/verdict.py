"""The verdict: how sure the run is of each loop, in three levels, decided in one place.

Every way in (``topoembed run``, ``te.tl.run`` with or without ``neighbors_key``, the staged
command line, the Snakemake workflow, the real-data panel) ends in :func:`decide`, and
``summary.json``, the command-line table, ``adata.uns[key]["verdict"]`` and the HTML report
only render the :class:`Verdict` it returns. The levels:

* **loop**: found and supported by the evidence below (its phase is given);
* **possible loop**: found by the detection rule, but not supported (its cells on the loop
  are marked, its phase is withheld unless ``phase_low_confidence``);
* **no loop**: nothing was found.

A found loop is *supported* (:func:`assess_loop`) when any of these holds:

* it is one of the loops of a closed surface whose void passed its own test
  (``surface_void_p``; :func:`topoembed.loops.surface_reading`);
* its universal-null p-value (death/birth ratio, Bonferroni over the H1 features; Bobrowski
  and Skraba 2023, :func:`topoembed.loops.feature_pvalues`) is below :data:`P_CONCLUSIVE`;
* it was found again in at least :data:`SUPPORT_PREVALENCE` of random subsamples analysed
  alone (an ensemble's prevalence or a single run's prevalence check), unless it is a new loop
  found only inside a part of the data (``part``; :mod:`topoembed.parts`) with a p-value, which
  its corrected p-value alone supports: the part and its shell are chosen from the data, and subsamples of the
  same points share their holes (a 10-D Gaussian blob of 1,200 points, with subsamples of 300:
  a part's "loop" with corrected p = 1.0 recurred in 10 of 10);
* its p-value cannot be computed (fewer than :data:`topoembed.loops.NULL_MIN_FEATURES` H1
  features, as on a clean circle) and no prevalence was measured: nothing speaks against it
  (where one was measured, it decides; it is, where the user gave the count or the input has
  at most 100 points: :func:`topoembed.prevalence.needs_prevalence_check`).

Whatever the evidence, a loop whose representative cycle passes through more than one group of
points that the points' small kNN graph keeps apart (``groups_on_cycle`` > 1: connected
components of the union k = 15 graph, :func:`topoembed.pipeline.mark_groups_on_cycle`) is at
most a possible loop. The analysis graph (k = 100) joins clusters that lie apart, and a cycle
of such clusters is a loop of how they lie, not of the points: 30 separate planar clusters of
40-80 points (1,737 in R^20) gave a cycle through 10 of them that 9 of 10 subsamples found
again (p = 0.12); 8 clusters on a ring, p = 3e-11.

A p-value from :data:`P_CONCLUSIVE` up to :data:`ALPHA` is not enough on its own: on fresh
noise (benchmark blob, seeds 5-6) ``auto`` chose a noise loop with p = 0.033 that no subsample
found, and the default distance without its confirmation calls a loop with p = 0.017 in a
Gaussian blob (n = 1,000, σ = 0.15) that 1 of 3 subsamples found. Such a loop is a *possible
loop* until a prevalence of at least :data:`SUPPORT_PREVALENCE` supports it (a single run of
at most 1,000 points measures it for exactly these loops, an ensemble for every loop).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from . import loops

__all__ = ["LOOP", "POSSIBLE", "NONE", "LEVELS", "ALPHA", "P_CONCLUSIVE", "SUPPORT_PREVALENCE", "Reason",
           "LoopCall", "Verdict", "assess_loop", "decide", "runs_behind"]

LOOP, POSSIBLE, NONE = "loop", "possible loop", "no loop"
#: The verdict's levels, strongest first.
LEVELS = (LOOP, POSSIBLE, NONE)
#: Significance level of the universal-null p-values (Bonferroni over the H1 features).
ALPHA = loops.ALPHA
#: Below this p-value a loop is supported by its p-value alone, whatever else was measured.
P_CONCLUSIVE = 0.01
#: A loop found in at least this share of subsamples is supported whatever its p-value; the
#: same bar finds a hidden loop by its recurrence (:data:`topoembed.loops.RECURRENCE_MIN`).
SUPPORT_PREVALENCE = loops.RECURRENCE_MIN


@dataclass(frozen=True)
class Reason:
    """One piece of evidence about a loop: which (``evidence``: "surface", "p_value",
    "prevalence", "groups"), its value, the threshold it is held to, and whether it supports the
    loop ("groups", the separate groups of points its cycle passes through, never does)."""

    evidence: str
    value: float | None
    threshold: float | None
    supports: bool
    #: for "prevalence": the subsamples that found the loop, of those analysed (a check that
    #: stops once 90 % is out of reach analyses 2 where 2 miss)
    n_runs: int | None = None
    n_subsamples: int | None = None

    def text(self) -> str:
        """One sentence fragment, e.g. ``universal-null p = 0.0021 < 0.01``."""
        if self.evidence == "surface":
            return f"one of the loops of a closed surface whose void has p = {_num(self.value)}"
        if self.evidence == "groups":
            return (f"its cycle jumps between {int(self.value)} groups of points that no path joins in the "
                    "points' small kNN graph (k ≤ 15), so it goes round the gaps between them, not along the points")
        if self.evidence == "p_value" and self.value is None:
            return "no universal-null p-value (too few H1 features), so nothing speaks against it"
        if self.evidence == "p_value":
            return f"universal-null p = {_num(self.value)} {'<' if self.supports else '≥'} {self.threshold:g}"
        share = (f"{self.n_runs} of {self.n_subsamples} subsamples" if self.n_subsamples
                 else f"{self.value:.0%} of the subsamples")
        return f"found in {'' if self.supports else 'only '}{share} ({'≥' if self.supports else '<'} {self.threshold:.0%})"


@dataclass(frozen=True)
class LoopCall:
    """The verdict on one found loop: its level and the evidence behind it."""

    index: int
    level: str
    reasons: tuple[Reason, ...]

    @property
    def supported(self) -> bool:
        return self.level == LOOP

    def why_not(self) -> str | None:
        """None for a supported loop, else a sentence saying why it is only possible."""
        if self.supported:
            return None
        return "low confidence: " + " and ".join(r.text() for r in self.reasons)

    def sentence(self) -> str:
        """The evidence in plain words, supported or not."""
        return "; ".join(r.text() for r in self.reasons)


@dataclass(frozen=True)
class Verdict:
    """The run's answer. ``level``: :data:`LOOP` when at least one loop is supported,
    :data:`POSSIBLE` when loops were found but none is, :data:`NONE` otherwise. ``loops``:
    one :class:`LoopCall` per found loop, in the order of ``summary["loops"]``."""

    level: str
    loops: tuple[LoopCall, ...]

    @property
    def n_loops(self) -> int:
        """Supported loops."""
        return sum(c.supported for c in self.loops)

    @property
    def n_possible(self) -> int:
        """Loops found but not supported."""
        return len(self.loops) - self.n_loops

    def headline(self) -> str:
        """``"1 loop"``, ``"No loop"``, ``"1 possible loop (not supported)"``, ``"2 loops, 1 possible"``."""
        m, q = self.n_loops, self.n_possible
        if m == 0 and q == 0:
            return "No loop"
        if m == 0:
            return f"{q} possible loop{'s' if q > 1 else ''} (not supported)"
        return f"{m} loop{'s' if m > 1 else ''}" + (f", {q} possible" if q else "")

    def to_dict(self) -> dict:
        """The ``summary.json`` form (``summary["verdict"]``)."""
        return {"level": self.level, "n_loops": self.n_loops, "n_possible": self.n_possible,
                "headline": self.headline(),
                "loops": [{"loop": c.index + 1, "level": c.level,
                           "reasons": [asdict(r) for r in c.reasons], "text": c.sentence()} for c in self.loops]}


def _num(x) -> str:
    return "–" if x is None else f"{x:.2g}"


def _p_value(lp: dict) -> float | None:
    p = lp.get("p_value")
    return None if p is None or (isinstance(p, float) and math.isnan(p)) else float(p)


def assess_loop(lp: dict, alpha: float = ALPHA, index: int = 0) -> LoopCall:
    """The level of one found loop ``lp`` (a dict of ``summary["loops"]``: ``p_value``,
    optionally ``prevalence``, ``surface_void_p`` and ``groups_on_cycle``), by the rule of the
    module docstring."""
    call = _assess_evidence(lp, alpha, index)
    groups = lp.get("groups_on_cycle")
    if groups is None or int(groups) <= 1:
        return call
    return LoopCall(index, POSSIBLE, (Reason("groups", int(groups), 1, False),) + call.reasons)


def _assess_evidence(lp: dict, alpha: float, index: int) -> LoopCall:
    """:func:`assess_loop` by the evidence alone (surface, p-value, prevalence)."""
    p, prevalence = _p_value(lp), lp.get("prevalence")
    if "surface_void_p" in lp:
        reasons = (Reason("surface", lp["surface_void_p"], None, True),)
        return LoopCall(index, LOOP, reasons)
    if p is None and prevalence is None:
        return LoopCall(index, LOOP, (Reason("p_value", None, None, True),))
    if p is None:  # no null to test against, but the subsamples were asked
        recurs = float(prevalence) >= SUPPORT_PREVALENCE
        return LoopCall(index, LOOP if recurs else POSSIBLE, (_recurrence(lp, recurs),))
    conclusive = p < min(alpha, P_CONCLUSIVE)
    if prevalence is None or "part" in lp:  # a new loop of a part: its p-value alone (module docstring)
        return LoopCall(index, LOOP if conclusive else POSSIBLE,
                        (Reason("p_value", p, min(alpha, P_CONCLUSIVE), conclusive),))
    recurs = float(prevalence) >= SUPPORT_PREVALENCE
    reasons = (Reason("p_value", p, min(alpha, P_CONCLUSIVE), conclusive),
               _recurrence(lp, recurs))
    return LoopCall(index, LOOP if conclusive or recurs else POSSIBLE, reasons)


def runs_behind(lp: dict) -> tuple[int | None, int | None, bool]:
    """(runs, subsamples, whether they are its part's): the subsample runs behind loop ``lp``'s
    prevalence, ``n_runs`` of ``n_subsamples`` (None where not recorded), its part's where a
    part's analysis measured it (``part_evidence``, :func:`topoembed.parts.apply_evidence`)."""
    part = lp.get("part_evidence")
    in_part = isinstance(part, dict) and part.get("prevalence") is not None
    where = part if in_part else lp
    return where.get("n_runs"), where.get("n_subsamples"), in_part


def _recurrence(lp: dict, recurs: bool) -> Reason:
    """The prevalence reason of loop ``lp``, with its count where known (:func:`runs_behind`; a
    summary written before ensembles recorded ``n_subsamples``: its runs over its prevalence)."""
    prevalence = float(lp["prevalence"])
    runs, of, _ = runs_behind(lp)
    if of is None and runs and prevalence > 0:
        of = round(runs / prevalence)
    known = runs is not None and bool(of) and abs(runs / of - prevalence) < 1e-9  # the count of this prevalence
    return Reason("prevalence", prevalence, SUPPORT_PREVALENCE, recurs, int(runs) if known else None,
                  int(of) if known else None)


def decide(found: list, detection: dict | None = None) -> Verdict:
    """The verdict on the loops ``found`` (``Result.loops`` or ``summary["loops"]``) at the
    detection's ``alpha``: each loop's :func:`assess_loop`, and the strongest level among them."""
    alpha = float((detection or {}).get("alpha", ALPHA))
    calls = tuple(assess_loop(lp, alpha, i) for i, lp in enumerate(found))
    level = LOOP if any(c.supported for c in calls) else POSSIBLE if calls else NONE
    return Verdict(level, calls)
