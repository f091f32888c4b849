"""Stage 4: loop detection from the H1 persistence diagram.

Detection score (Damrich, Berens and Kobak, NeurIPS 2024). Keep the H1 features whose
death/birth ratio exceeds ``min_ratio`` (1.25), sort their lifetimes
p_1 ≥ p_2 ≥ … (p = death − birth), and for m loops define

    s_m = (p_m − p_{m+1}) / p_m,

with p_{m+1} = 0 when exactly m features pass the filter (s_m = 1) and s_m = 0 when fewer
than m pass. A feature born at 0 has an infinite ratio and always passes.

Number of loops (``n_loops="auto"``): take the m in 1..5 with the largest absolute drop
p_m − p_{m+1} between consecutive filtered lifetimes (the smallest m on ties). Report m
loops if that drop is also large in relative terms, s_m ≥ ``min_score`` (0.5: p_m is at
least twice p_{m+1}), and p_m is at least ``min_persistence`` (0.05) of the distance
scale (the median pairwise distance, :func:`topoembed.homology.distance_scale`, which a
few outlying points cannot inflate); otherwise report 0. Using
the absolute drop to pick m, rather than the largest s_m, matters because s_m = 1
whenever exactly m features pass the ratio filter, however tiny the m-th one is. With 0
loops the reported ``score`` is 1 − max_m s_m (how clearly no loop stands out).
"""
from __future__ import annotations

import logging

import numpy as np

from . import homology

__all__ = ["filtered_lifetimes", "detection_scores", "detect", "feature_pvalues", "surface_reading", "void_evidence", "surface_count",
           "may_hide_loops", "recurrence_candidate", "decide", "LOOP_RULES",
           "MIN_RATIO", "MAX_LOOPS", "ALPHA"]

log = logging.getLogger(__name__)

MIN_RATIO = 1.25
MAX_LOOPS = 5
MIN_SCORE = 0.5
MIN_PERSISTENCE = 0.05
#: Significance level of a loop's universal-null p-value (Bonferroni over the H1 features).
ALPHA = 0.05
#: Fewest H1 features for which :func:`feature_pvalues` estimates the null (its mean log log π).
NULL_MIN_FEATURES = 10
#: Rules of :func:`decide` (the first is the default).
LOOP_RULES = ("evidence", "confirmed_gap", "significant", "gap")
#: ``rule="evidence"``: where the confirmed gap rule finds nothing, features this significant
#: (Bonferroni) ...
RESCUE_ALPHA = 1e-3
#: ... and living at least this share as long as the longest of them are reported.
RESCUE_MIN_SHARE = 0.5
#: ``rule="evidence"``: where nothing else finds a loop, the longest feature is reported if it
#: recurs in at least this share of subsamples (:func:`recurrence_candidate`).
RECURRENCE_MIN = 0.9


def filtered_lifetimes(dgm: np.ndarray, min_ratio: float = MIN_RATIO,
                       binary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lifetimes of the features with death/birth > min_ratio, sorted descending, and their rows.

    ``binary=True`` is the all-or-nothing variant of the filter that the published
    benchmark figures use (eff-ph, ``filter_diagram(..., dob=1.25, binary=True)``): if
    any feature passes, *every* finite feature is kept, otherwise none. It scores lower
    whenever short-ratio features outlive the (m+1)-th passing one.
    """
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    birth, death = dgm[:, 0], dgm[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(birth > 0, death / birth, np.inf)
    passes = (ratio > min_ratio) & np.isfinite(death)
    if binary and passes.any():
        passes = np.isfinite(death)
    keep = np.flatnonzero(passes)
    life = death[keep] - birth[keep]
    order = np.argsort(-life, kind="stable")
    return life[order], keep[order]


EULER_GAMMA = 0.5772156649015329


def feature_pvalues(dgm: np.ndarray, A: float = 1.0) -> np.ndarray:
    """p-value of every feature of a diagram under the universal null distribution
    (Bobrowski and Skraba, *A universal null-distribution for topological data analysis*,
    Scientific Reports 2023).

    For a feature (b, d) let π = d / b. Under the null, ℓ = A log log π + B, with A = 1 for
    Rips filtrations, B = −γ − A·L̄ (γ the Euler–Mascheroni constant, L̄ the mean of
    log log π over the diagram), follows the left-skewed Gumbel law, so
    p = P(ℓ' ≥ ℓ) = exp(−e^ℓ). Features born at 0 get p = 0; features with π ≤ 1 (or an
    infinite death) get p = 1. The p-values are *per feature*, not corrected for the number
    of features tested (multiply by it for Bonferroni). Whether the law holds for spectral
    distances is checked in BENCHMARKS.md ("Evidence for each loop").

    L̄ is a property of the noise, so a diagram with fewer than :data:`NULL_MIN_FEATURES`
    features (a noiseless circle has one) gives no p-values: all NaN.
    """
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    p = np.ones(len(dgm))
    if len(dgm) == 0:
        return p
    b, d = dgm[:, 0], dgm[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, d / b, np.inf)
    finite = np.isfinite(d)
    p[finite & ~np.isfinite(ratio)] = 0.0
    ok = finite & np.isfinite(ratio) & (ratio > 1)
    if ok.sum() + np.sum(finite & ~np.isfinite(ratio)) < NULL_MIN_FEATURES:
        return np.full(len(dgm), np.nan)
    ll = np.log(np.log(ratio[ok]))
    ell = A * ll - EULER_GAMMA - A * ll.mean()
    p[ok] = np.exp(-np.exp(ell))
    return p


def surface_reading(dgms: list, alpha: float = ALPHA, scale: float | None = None,
                    min_persistence: float = MIN_PERSISTENCE) -> dict:
    """Is there a closed surface (a torus) behind the loops? Evidence from H1 and H2 of one
    complex, in practice the landmarks' (:func:`topoembed.homology.landmark_persistence`).

    A torus's two loops are not independent accidents: the cup product of their cocycles
    is its void (H2), which the eyeglasses' two lenses, two linked circles or a loop with a
    bridge do not have. A cup product of two H1 classes is a class of the complex at a scale
    where both are alive, so the loops of a void must be alive when it is born. The reading
    is: the void is the longest H2 feature, significant under the universal null
    (:func:`feature_pvalues`, Bonferroni over H2, p < ``alpha``), and the loops are the H1
    features alive at its birth (born before it, dying after; ``n_loops``). A sphere has
    the void but its last H1 holes close as the void appears (``n_loops`` 0); noise has no
    significant void. This counts loops; it does not compute the cup product itself.

    The void and its loops must also clear the lifetime floor that every loop clears
    (``min_persistence`` of ``scale``, :data:`MIN_PERSISTENCE`): on 300 landmarks of a very
    noisy sphere (σ = 0.225) a void living 2 % of the scale passed the null (p = 0.02), with 5
    noise H1 classes of 1-6 % alive at its birth. The noise benchmark's torus (σ ≤ 0.175, seeds
    0-4): void 19-29 %, its two loops 16-62 %.

    Where H2 has too few features for the null (:data:`NULL_MIN_FEATURES`, e.g. a clean
    surface), ``void_p`` is None and the void must stand out as one loop would in H1: the
    detection score's rule (:func:`detect`, at the distance ``scale``) finds exactly one.

    Returns ``{"void", "void_p", "void_lifetime", "n_loops"}``.
    """
    h1 = np.asarray(dgms[1], dtype=np.float64).reshape(-1, 2) if len(dgms) > 1 else np.zeros((0, 2))
    h2 = np.asarray(dgms[2], dtype=np.float64).reshape(-1, 2) if len(dgms) > 2 else np.zeros((0, 2))
    h1, h2 = h1[np.isfinite(h1[:, 1])], h2[np.isfinite(h2[:, 1])]
    out = {"void": False, "void_p": None, "void_lifetime": 0.0, "n_loops": 0}
    if not len(h2):
        return out
    life2 = h2[:, 1] - h2[:, 0]
    j = int(np.argmax(life2))
    p = float(feature_pvalues(h2)[j] * len(h2))
    p = p if np.isnan(p) else min(1.0, p)  # min(1.0, nan) would be 1.0
    out.update(void_lifetime=float(life2[j]), void_p=None if np.isnan(p) else p)
    clear = detect(h2, scale=scale)["n_loops"] == 1 if np.isnan(p) else p < alpha
    floor = min_persistence * (scale if scale is not None else max(_scale(h1, None), _scale(h2, None)))
    if not clear or life2[j] < floor:
        return out
    born = h2[j, 0]
    alive = (h1[:, 0] <= born) & (h1[:, 1] > born) & (h1[:, 1] - h1[:, 0] >= floor)
    out.update(void=True, n_loops=int(np.sum(alive)))
    return out


#: Landmark counts of :func:`surface_evidence`, tried in turn until one shows a void. On the
#: noise benchmark's torus (n = 1,000, seeds 0-6) 300 landmarks find the void and its two loops
#: in 19 of 21 runs at σ = 0.1-0.15 and 1 of 14 at σ = 0.175-0.2, 500 in 21 and 5 (600: 21 and 8).
#: 500 from the start would cost a clean sphere 59 s instead of 11 s (1,000 points, 2 cores),
#: and 300 landmarks already find a sphere's void; where 300 show none (a torus at σ ≥ 0.15,
#: noise, real cells) 500 cost 0.4-0.8 s more. Noise keeps no void (BENCHMARKS.md, "The
#: torus's void on 500 landmarks").
SURFACE_LANDMARKS = (homology.N_LANDMARKS, 500)


def surface_evidence(D: np.ndarray, seed: int = 0) -> dict:
    """H1 and H2 of the distance ``D`` on its max-min landmarks
    (:func:`topoembed.homology.landmark_persistence`), read by :func:`surface_reading`: is
    there a void whose loops the count missed? The landmark counts of
    :data:`SURFACE_LANDMARKS` are tried in turn until one shows a void (or covers every point);
    ``n_landmarks`` is the one read, ``landmarks_tried`` all of them."""
    tried = []
    for m in SURFACE_LANDMARKS:
        ph = homology.landmark_persistence(D, n_landmarks=m, seed=seed)
        tried.append(len(ph["landmarks"]))
        out = {**surface_reading(ph["dgms"], scale=ph["scale"]), "n_landmarks": tried[-1], "landmarks_tried": tried}
        if out["void"] or tried[-1] < m:  # a void, or every point is a landmark already
            break
    return out


def void_evidence(surface: dict) -> str:
    """How the void of :func:`surface_reading` was found, in words: its universal-null p, or,
    where H2 had too few features for the null, the gap rule."""
    p = surface.get("void_p")
    return (f"universal-null p = {p:.2g}" if p is not None
            else "too few H2 features for the null; it stands out by the gap rule")


def surface_count(surface: dict | None, life: np.ndarray, scale: float) -> int:
    """The number of loops a closed surface stands for (:func:`surface_reading`: a
    significant void with m ≥ 2 H1 classes alive at its birth), if a diagram's filtered lifetimes
    ``life`` (longest first, :func:`filtered_lifetimes`) hold m features above the lifetime
    floor (``min_persistence`` of ``scale``); else 0."""
    if not surface or not surface.get("void"):
        return 0
    m = int(surface["n_loops"])
    return m if m >= 2 and len(life) >= m and life[m - 1] >= MIN_PERSISTENCE * scale else 0


#: :func:`may_hide_loops`: the second lifetime must be at least this share of the first.
SURFACE_MIN_SHARE = 0.25


def may_hide_loops(life: np.ndarray, n_loops: int, scale: float) -> bool:
    """Could a closed surface raise this count (is :func:`surface_reading` worth its cost)?
    Only if fewer than 2 loops are reported while the two longest filtered lifetimes
    ``life`` both clear the lifetime floor and the second is at least
    :data:`SURFACE_MIN_SHARE` of the first. A clean loop's diagram has one such feature, so
    a circle never pays for the check; the noise benchmark's torus has 0.38-0.54 (its tube
    against its ring, under the default distance), 1,000-cell IPC subsamples 0.08-0.25 in 7
    of 8 (seeds 0-7; the other, 0.54, finds no loop and no void)."""
    return (n_loops < 2 and len(life) >= 2 and life[1] >= MIN_PERSISTENCE * scale
            and life[1] >= SURFACE_MIN_SHARE * life[0])


def _scale(dgm: np.ndarray, scale: float | None) -> float:
    """``scale``, or where it is None the largest finite death of ``dgm`` (0 if none)."""
    if scale is not None:
        return scale
    death = np.asarray(dgm, dtype=float).reshape(-1, 2)[:, 1]
    return float(np.max(death[np.isfinite(death)], initial=0.0))


def detection_scores(dgm: np.ndarray, max_loops: int = MAX_LOOPS, min_ratio: float = MIN_RATIO,
                     binary: bool = False) -> dict:
    """{m: s_m} for m = 1..max_loops (see module docstring; ``binary`` as in
    :func:`filtered_lifetimes`)."""
    life, _ = filtered_lifetimes(dgm, min_ratio, binary)
    scores = {}
    for m in range(1, max_loops + 1):
        if len(life) < m:
            scores[m] = 0.0
        else:
            nxt = life[m] if len(life) > m else 0.0
            scores[m] = float((life[m - 1] - nxt) / life[m - 1]) if life[m - 1] > 0 else 0.0
    return scores


def detect(dgm: np.ndarray, n_loops="auto", scale: float | None = None, max_loops: int = MAX_LOOPS,
           min_ratio: float = MIN_RATIO, min_score: float = MIN_SCORE,
           min_persistence: float = MIN_PERSISTENCE) -> dict:
    """Detection result for one H1 diagram.

    Parameters
    ----------
    dgm : (m, 2) H1 diagram.
    n_loops : "auto" or a fixed number m ≥ 0 (then ``score`` is s_m, as the published
        benchmark scores a fixed count; ``features`` holds at most the features that pass the
        ratio filter, and :func:`decide` warns where they are fewer than m).
    scale : distance scale (median pairwise distance, ``persistence(D)["scale"]``) for the
        ``min_persistence`` rule; default: the largest finite death in ``dgm``.

    Returns ``{"n_loops", "scores", "score", "features"}`` where ``features`` are the row
    indices into ``dgm`` of the m detected loops, longest first; with ``n_loops="auto"`` also
    ``gap``: the largest drop's m, its s_m and the m-th lifetime as a share of ``scale``, with
    the two bars it must clear (None where no feature passes the ratio filter).
    """
    scores = detection_scores(dgm, max_loops, min_ratio)
    life, rows = filtered_lifetimes(dgm, min_ratio)
    if n_loops == "auto":
        scale = _scale(dgm, scale)
        # the largest drop between consecutive filtered lifetimes (p_{m+1} = 0 past the end)
        gaps = [life[j - 1] - (life[j] if len(life) > j else 0.0) for j in range(1, min(len(life), max_loops) + 1)]
        m = int(np.argmax(gaps)) + 1 if gaps else 0
        # the reading behind the count, so that a count of 0 can say which bar it missed
        gap = {"m": m, "s_m": float(scores[m]), "lifetime_share": float(life[m - 1] / scale) if scale > 0 else None,
               "min_score": float(min_score), "min_persistence": float(min_persistence)} if m else None
        if m and (scores[m] < min_score or life[m - 1] < min_persistence * scale):
            m = 0
    else:
        m = int(n_loops)
        if m < 0:
            raise ValueError(f"n_loops={n_loops!r} must be 'auto' or an integer >= 0")
    score = scores.get(m, 0.0) if m > 0 else (1.0 - max(scores.values()) if scores else 1.0)
    out = {"n_loops": m, "scores": scores, "score": float(score), "features": rows[:m].tolist()}
    if n_loops == "auto":
        out["gap"] = gap
    return out


def recurrence_candidate(dgm: np.ndarray, scale: float | None = None) -> int | None:
    """Row of the H1 feature whose recurrence across subsamples may decide a count of 0
    (``decide(recurrence=)``): the longest feature that passes the ratio filter and the
    lifetime floor (``min_persistence`` of the scale); None if there is none."""
    life, rows = filtered_lifetimes(np.asarray(dgm, dtype=np.float64).reshape(-1, 2))
    if not len(life) or life[0] < MIN_PERSISTENCE * _scale(dgm, scale):
        return None
    return int(rows[0])


def decide(dgm: np.ndarray, *, scale: float | None = None, n_loops="auto", rule: str = "evidence",
           confirmation: dict | None = None, alpha: float = ALPHA, surface: dict | None = None,
           recurrence: dict | None = None) -> dict:
    """The number of loops and the evidence for each: the one place that decides it.

    Evidence: the detection score's largest-gap reading (:func:`detect`); the reading of a
    second spectral distance on the same graph (``confirmation``: ``{"distance", "n_loops",
    "score"}``, computed by :func:`topoembed.evidence.confirmation_reading`); and each
    feature's universal-null p-value (:func:`feature_pvalues`), Bonferroni-corrected over
    the H1 features of the diagram. (An ensemble of subsamples adds each loop's
    prevalence, :mod:`topoembed.ensemble`.)

    Rules (``rule``):

    * ``"gap"``: the largest-gap reading alone (Damrich et al. 2024's score);
    * ``"confirmed_gap"``: the gap reading, kept only if the confirmation finds the same
      count, else 0 loops (the default before issue 14); each loop carries its p-value and
      ``significant`` flag but is not dropped for it: on the IPC cells the cell-cycle loop's
      death/birth ratio is too small for the universal null in 2 of 5 subsamples
      (BENCHMARKS.md, "Evidence for each loop"), so the p-value is a confidence, not a gate;
    * ``"evidence"`` (default): ``"confirmed_gap"``; where that finds no loop, the features
      with p < :data:`RESCUE_ALPHA` that live at least :data:`RESCUE_MIN_SHARE` as long as
      the longest of them are reported (``rescued``). The gap rule's lifetime floor (5 % of
      the median distance) and the second distance miss clear loops (two linked circles
      with p ≈ 0); on the noise benchmark this lifts the linked circles' right count from
      0.52 to 0.72 with no false loop on noise; and where a closed surface stands behind
      more loops than that (``surface``, :func:`surface_reading`: a significant void and
      m ≥ 2 loops alive when it is born), the m longest features of ``dgm`` are
      reported (``surface_loops``), provided they pass the ratio filter and the lifetime
      floor. A torus's tube is short-cut by the spectral distances, so its second loop
      rarely clears the gap rule or the confirmation on its own; and where all that still
      finds no loop, the :func:`recurrence_candidate` is reported if it recurs in at least
      :data:`RECURRENCE_MIN` of random subsamples analysed alone (``recurrence``:
      ``{"feature", "prevalence", "n_subsamples"}``, measured by
      :func:`topoembed.prevalence.check_prevalence`; ``rescued`` with reason "recurrence"). The
      IPC cell-cycle loop sometimes shows as a long feature with a second one more than half
      as long (s_1 = 0.2-0.5 in 3 of 24 1,000-cell subsamples); on the noise benchmark's
      no-loop runs (blob, box, sphere: 158 runs with a candidate) the longest feature
      recurred in at most 50 % (BENCHMARKS.md, "Evidence for each loop", sixth pass);
    * ``"significant"``: ``"confirmed_gap"``, then loops with p ≥ ``alpha`` are dropped
      (``not_significant``).

    With a fixed ``n_loops`` the count is not decided here: the m longest features are
    scored and reported with their p-values. Returns :func:`detect`'s dict plus
    ``p_values`` (one per reported loop; None where the diagram has too few features for
    the null, :data:`NULL_MIN_FEATURES`), ``significant`` (p < alpha, None where unknown),
    ``rule``, ``alpha``, ``gap`` (the detection score's reading, :func:`detect`) and, when the
    rule removed loops, ``unconfirmed`` (the rejected reading) or ``not_significant`` (their
    rows and p-values).
    """
    if rule not in LOOP_RULES:
        raise ValueError(f"rule={rule!r} must be one of {LOOP_RULES}")
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    p_adj = np.minimum(1.0, feature_pvalues(dgm) * max(1, len(dgm)))
    det = detect(dgm, n_loops=n_loops, scale=scale)
    if n_loops != "auto" and len(det["features"]) < int(n_loops):
        log.warning("n_loops=%d asked for, but only %d H1 feature(s) have death/birth > %g: %d loop(s) reported",
                    int(n_loops), len(det["features"]), MIN_RATIO, len(det["features"]))
    out = {**det, "rule": rule, "alpha": float(alpha)}
    if n_loops == "auto" and rule != "gap" and det["n_loops"] > 0 and confirmation is not None:
        out["confirmation"] = confirmation
        if int(confirmation["n_loops"]) != det["n_loops"]:
            rejected = detect(dgm, n_loops=0, scale=scale)
            out = {**rejected, "gap": det["gap"], "rule": rule, "alpha": float(alpha), "confirmation": confirmation,
                   "unconfirmed": {"n_loops": int(det["n_loops"]), "score": float(det["score"])}}
    if n_loops == "auto" and rule == "evidence" and out["n_loops"] == 0:
        strong = np.flatnonzero(p_adj < RESCUE_ALPHA)  # NaN compares False
        if len(strong):
            life = dgm[:, 1] - dgm[:, 0]
            keep = strong[life[strong] >= RESCUE_MIN_SHARE * life[strong].max()]
            keep = keep[np.argsort(-life[keep], kind="stable")][:MAX_LOOPS]
            m = len(keep)
            out.update(n_loops=m, features=[int(f) for f in keep], score=float(out["scores"].get(m, 0.0)),
                       rescued={"rows": [int(f) for f in keep], "alpha": RESCUE_ALPHA,
                                "reason": "unconfirmed" if "unconfirmed" in out else "below the gap rule"})
    if (n_loops == "auto" and rule == "evidence" and out["n_loops"] == 0 and recurrence is not None
            and recurrence["prevalence"] >= RECURRENCE_MIN):
        f = int(recurrence["feature"])
        out.update(n_loops=1, features=[f], score=float(out["scores"].get(1, 0.0)),
                   rescued={"rows": [f], "reason": "recurrence", "prevalence": float(recurrence["prevalence"]),
                            "n_subsamples": int(recurrence["n_subsamples"])})
    if n_loops == "auto" and rule == "evidence" and surface is not None:
        out["surface"] = surface
        life, rows = filtered_lifetimes(dgm)
        m = surface_count(surface, life, _scale(dgm, scale))
        if m > out["n_loops"]:
            out.update(n_loops=m, features=rows[:m].tolist(), score=float(out["scores"].get(m, 0.0)),
                       surface_loops={"n_loops": m, "void_p": surface["void_p"], "previous": int(out["n_loops"])})
    if n_loops == "auto" and rule == "significant" and out["n_loops"] > 0:
        # NaN (too few features to estimate the null): the loop stands on the other evidence
        keep = [f for f in out["features"] if not p_adj[f] >= alpha]
        dropped = [f for f in out["features"] if p_adj[f] >= alpha]
        if dropped:
            m = len(keep)
            scores = out["scores"]
            out.update(n_loops=m, features=keep,
                       score=float(scores.get(m, 0.0)) if m else float(1.0 - max(scores.values())),
                       not_significant=[{"feature": int(f), "p_value": float(p_adj[f])} for f in dropped])
    out["p_values"] = [float(p_adj[f]) if np.isfinite(p_adj[f]) else None for f in out["features"]]
    out["significant"] = [None if p is None else bool(p < alpha) for p in out["p_values"]]
    return out
