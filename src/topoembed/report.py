"""Stage 6: the human report, one self-contained HTML file with embedded PNG figures.

It shows the persistence diagram, the barcode, a 2-D PCA view of the points with each
detected loop's birth edge marked, the detection-score table and the run's parameters
and timings. Everything it prints comes from the ``summary.json`` dict, so the two
never disagree.

Size (about 880 lines): one self-contained page. Its sections, the sentences that word the
verdict (:func:`verdict_notes`, shared with the command line) and the glossary that each
number links to are written against the same summary dict; the figures themselves are drawn
by :mod:`topoembed.plotting`, the verdict is decided by :mod:`topoembed.verdict`.
"""
from __future__ import annotations

import base64
import html
import io

import numpy as np

from . import loops, plotting, verdict
from ._validate import option

__all__ = ["render_html", "figure_png", "verdict_notes", "summary_verdict", "loop_label", "groups_index_html"]


def figure_png(draw, figsize=(5, 4), margins=(0.14, 0.96, 0.14, 0.9)) -> str:
    """Run ``draw(ax)`` on a new figure and return the PNG as base64 text.

    A bare :class:`matplotlib.figure.Figure` (no pyplot: the user's backend and open figures
    are untouched) with fixed ``margins`` (left, right, bottom, top) and light compression: tight_layout and PNG
    optimisation took most of the report's time.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100)
    ax = fig.subplots()
    left, right, bottom, top = margins
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
    draw(ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _why_no_loop_stands_out(gap: dict | None) -> str | None:
    """Which bar of the detection score (:func:`topoembed.loops.detect`) the run's largest drop
    missed, so that a score like "s_4: 1.00" beside "no loop" reads without the glossary; None
    where it missed none (the count was then undone by a later check, which says so itself)."""
    if gap is None:
        return (f"No loop stands out: no H1 feature has death/birth above {loops.MIN_RATIO:g}, the detection "
                "score's filter.")
    m, missed = gap["m"], []
    if gap["s_m"] < gap["min_score"]:
        missed.append(f"s_{m} = {gap['s_m']:.2f} is below {gap['min_score']:g}")
    if gap["lifetime_share"] is not None and gap["lifetime_share"] < gap["min_persistence"]:
        missed.append(f"{'it' if m == 1 else 'the shortest of them'} lives {gap['lifetime_share']:.1%} of the "
                      f"median distance between points, under the {gap['min_persistence']:.0%} floor")
    if not missed:
        return None
    first = "the longest H1 feature" if m == 1 else f"the {m} longest H1 features"
    return (f"No loop stands out: the largest drop in the lifetimes comes after {first}, and "
            + " and ".join(missed) + ".")


def verdict_notes(summary: dict) -> list[str]:
    """Plain sentences on how the loop count was checked: which bar a single run's count of 0
    missed, ``distance="auto"``'s agreement rule, the second distance of ``Params.confirm``,
    and the evidence behind each loop. The command line, the HTML report and ``te.tl.run``'s
    log all print these, so they word the verdict the same way."""
    det = summary["detection"]
    notes = []
    # a single run's count of 0 (an ensemble's is the subsamples' majority, which its own note gives)
    if not summary["loops"] and det.get("n_loops") == 0 and "gap" in det and not summary.get("ensemble"):
        why = _why_no_loop_stands_out(det["gap"])
        if why:
            notes.append(why)
    unconfirmed = (summary.get("auto") or {}).get("unconfirmed")
    if unconfirmed:
        notes.append(f"Not confirmed: the setting {unconfirmed['key']} alone proposes {unconfirmed['n_loops']} "
                     f"loop(s) (s = {unconfirmed['score']:.2f}), but no other distance kind agrees, so the "
                     "verdict is no loop; its diagram is shown for inspection.")
    for ns in det.get("not_significant", []):
        notes.append(f"Not significant: an H1 feature passed the detection score, but its death/birth ratio is "
                     f"what noise of this kind produces (universal-null p = {ns['p_value']:.2g} ≥ "
                     f"{det.get('alpha', 0.05):g}, Bonferroni over the H1 features), so it is not reported as a "
                     f"loop and no phase is given ({option('loop_rule', 'confirmed_gap')} keeps it).")
    if det.get("rescued") and det["rescued"].get("reason") == "recurrence":
        r = det["rescued"]
        notes.append(f"Found by its recurrence: the detection score sees no clear loop (the longest H1 feature is "
                     f"not twice as long as the next), but the longest feature reappears in "
                     f"{r['prevalence']:.0%} of {r['n_subsamples']} random subsamples analysed alone, which noise's "
                     f"longest feature did not in any benchmark run, so it is reported ({option('prevalence_check', False)} would "
                     "report none).")
    elif det.get("rescued"):
        r = det["rescued"]
        why = ("the other spectral distance disagreed" if r["reason"] == "unconfirmed"
               else "their lifetimes are below the detection rule's floor")
        notes.append(f"Found by their significance: {why}, but {len(r['rows'])} H1 feature(s) have p < {r['alpha']:g} "
                     "under the universal null, which noise did not produce in any benchmark run, so they are "
                     f"reported ({option('loop_rule', 'confirmed_gap')} would report none).")
    alpha = det.get("alpha", verdict.ALPHA)
    calls = verdict.decide(summary["loops"], det).loops
    for i, lp in enumerate(summary["loops"]):
        p = lp.get("p_value")
        where = ("" if not summary.get("ensemble") else
                 f", times the number of parts searched ({lp['n_parts_searched']}; see Parts)" if "part" in lp else
                 f", from a part of the data that holds it, times the number of parts searched "
                 f"({lp['part_evidence']['n_parts_searched']}; see Parts)" if "part_evidence" in lp else
                 ", median over the subsamples that found it")
        if (lp.get("groups_on_cycle") or 0) > 1:  # the verdict's first reason, whatever the rest says
            rest = "; ".join(r.text() for r in calls[i].reasons[1:])
            notes.append(f"Low confidence in loop {i + 1}: {calls[i].reasons[0].text()}. The analysis graph (k = 100 "
                         "by default) joins clusters that lie apart, so such a cycle says how the clusters lie, not "
                         f"that the cells run round a loop, whatever its other evidence ({rest}).")
            if lp.get("phase_withheld"):
                notes[-1] += (" So it is a possible loop: its cells on the loop are marked, its phase is withheld "
                              f"({option('phase_low_confidence', True)} gives it).")
            continue
        if p is None:
            continue
        # one reading of p with both thresholds, as the run's warning gives the support threshold
        noise_p = (f"universal-null p = {p:.2g}{where}, not below {alpha:g}, while a p-value alone supports a loop "
                   f"below {verdict.P_CONCLUSIVE:g}")
        if p >= verdict.P_CONCLUSIVE and "surface_void_p" in lp:
            alone = (f"within what noise produces (universal-null p = {p:.2g} ≥ {alpha:g}{where})" if p >= alpha else
                     f"not conclusive (universal-null p = {p:.2g}{where}, not below {verdict.P_CONCLUSIVE:g})")
            notes.append(f"Loop {i + 1} on its own is {alone}, but it is one of the loops of the void above, which "
                         "is its evidence; its phase is given.")
        elif p < alpha and calls[i].supported and p >= verdict.P_CONCLUSIVE:  # supported by its recurrence
            notes.append(f"Loop {i + 1} is supported by its recurrence: its universal-null p = {p:.2g}{where} is "
                         f"below {alpha:g} but not below {verdict.P_CONCLUSIVE:g}, where a p-value alone is evidence "
                         f"enough, and {_found_in(lp, summary)} (prevalence {lp['prevalence']:.0%} ≥ "
                         f"{verdict.SUPPORT_PREVALENCE:.0%}): it is not an accident of a few points, so its phase "
                         "is given.")
        elif p < alpha and calls[i].supported:
            notes.append(f"Loop {i + 1} is significant: p = {p:.2g} under the universal null distribution of "
                         f"death/birth ratios (Bobrowski and Skraba 2023), Bonferroni-corrected{where}.")
        else:
            found_in = _found_in(lp, summary) if "prevalence" in lp else ""
            if p < alpha and "prevalence" in lp:  # inconclusive p, and the subsamples did not find the loop again
                notes.append(f"Low confidence in loop {i + 1}: its universal-null p = {p:.2g}{where} is below {alpha:g} "
                             f"but not below {verdict.P_CONCLUSIVE:g}, where a p-value alone is evidence enough, and "
                             f"only {found_in} (prevalence {lp['prevalence']:.0%} < "
                             f"{verdict.SUPPORT_PREVALENCE:.0%}). A loop that random subsamples do not find again "
                             "is likely an accident of these points.")
            elif p < alpha:  # inconclusive p, and no prevalence was measured
                notes.append(f"Low confidence in loop {i + 1}: its universal-null p = {p:.2g}{where} is below {alpha:g} "
                             f"but not below {verdict.P_CONCLUSIVE:g}, where a p-value alone is evidence enough, and "
                             "no prevalence across subsamples was measured (the check needs the loop's phase: "
                             "localize, on at most 1,000 points). Noise gives such p-values after a choice among "
                             "settings or without the second distance.")
            elif calls[i].supported:
                notes.append(f"Loop {i + 1}'s death/birth ratio is within what noise produces ({noise_p}), "
                             f"but {found_in} (prevalence {lp['prevalence']:.0%} "
                             f"≥ {verdict.SUPPORT_PREVALENCE:.0%}): the loop is not an accident of a few points, "
                             "so it is supported and its phase is given. Thick loops with unevenly spread cells, "
                             "such as the cell cycle, have small ratios (BENCHMARKS.md, 'Evidence for each loop').")
                continue
            else:
                notes.append(f"Low confidence in loop {i + 1}: its death/birth ratio is within what noise produces "
                             f"({noise_p})"
                             + (f", and only {found_in}" if "prevalence" in lp else "")
                             + ". It is reported, but check it against known biology (for the cell cycle: the "
                               "phase against cell-cycle scores) before trusting it. Thick loops with unevenly "
                               "spread cells can also have small ratios (BENCHMARKS.md, 'Evidence for each loop').")
            if lp.get("phase_withheld"):  # said once, with the note on its confidence
                notes[-1] += (" So it is a possible loop: its cells on the loop are marked, its phase is withheld "
                              f"({option('phase_low_confidence', True)} gives it).")
    surface = det.get("surface_loops")
    if surface:
        tried = det["surface"].get("landmarks_tried", [])
        fewer = f" (the first {tried[0]} showed none)" if len(tried) > 1 else ""
        notes.append(f"A closed surface: the distances on {det['surface'].get('n_landmarks', 200)} landmarks{fewer} hold a void "
                     f"(H2, {loops.void_evidence(det['surface'])}) with {det['surface']['n_loops']} H1 classes "
                     f"alive when it appears, as a torus's two loops are when its inside closes. So {surface['n_loops']} loops are reported "
                     f"where the other evidence gave {surface['previous']}: spectral distances short-cut a torus's "
                     "thinner loop, which then fails the detection score's gap or the second distance on its own "
                     f"({option('surface', False)} keeps the other reading).")
    check = det.get("confirmation")
    if check and "unconfirmed" in det and surface:
        u = det["unconfirmed"]
        notes.append(f"{u['distance']} proposed {u['n_loops']} loop(s) and {check['distance']} on the same graph "
                     f"{check['n_loops']}; the surface above decides the count.")
    elif check and "unconfirmed" in det:
        u = det["unconfirmed"]
        notes.append(f"Not confirmed: {u['distance']} proposes {u['n_loops']} loop(s) (s = {u['score']:.2f}), but "
                     f"{check['distance']} on the same graph finds {check['n_loops']}, so the verdict is no loop "
                     f"({option('confirm', False)} keeps the first reading); the diagram shown is the first distance's.")
    elif check:
        notes.append(f"Confirmed: {check['distance']} on the same graph finds the same number of loops "
                     f"(s = {check['score']:.2f}).")
    chk = det.get("prevalence_check")  # a candidate that recurred: "Found by its recurrence" above
    if chk and "candidate" in chk and not det["n_loops"]:
        n_runs = round(chk["prevalence"][0] * chk["n_subsamples"])
        notes.append(f"Checked for a hidden loop: the longest H1 feature was looked for in {chk['n_subsamples']} random "
                     f"subsamples of {chk['subsample_size']} of the {summary['n_points']} points, each analysed alone, "
                     f"and found in {n_runs} of them (prevalence {chk['prevalence'][0]:.2f} < "
                     f"{loops.RECURRENCE_MIN:.0%}): no loop ({option('prevalence_check', False)} skips this)." + _stopped(chk))
    elif chk and "candidate" not in chk:
        found = [f"loop {i + 1} in {lp['n_runs']} of {chk['n_subsamples']} (prevalence {lp['prevalence']:.2f})"
                 for i, lp in enumerate(summary["loops"]) if "prevalence" in lp]
        why = ("a loop had no universal-null p-value (too few H1 features among so few points)"
               if any(lp.get("p_value") is None for lp in summary["loops"] if "prevalence" in lp)
               else f"a loop's p-value was inconclusive (≥ {chk['p_at_least']:g})")
        notes.append(f"Prevalence check: {why}, so "
                     f"{chk['n_subsamples']} random subsamples of {chk['subsample_size']} of the "
                     f"{summary['n_points']} points were analysed alone and their loops matched to this run's: "
                     + "; ".join(found) + ". A real loop reappears in most subsamples; one made by a few points "
                     f"does not ({option('prevalence_check', False)} skips this)." + _stopped(chk))
    ens = summary.get("ensemble")
    if ens:
        B = ens["n_subsamples"]
        found = [f"loop {i + 1} in {lp['n_runs']} of {B} (prevalence "
                 f"{lp.get('part_evidence', {}).get('ensemble_prevalence', lp['prevalence']):.2f})"
                 for i, lp in enumerate(summary["loops"]) if "part" not in lp]
        dropped = [c for c in ens["clusters"] if not c["reported"]]
        notes.append(f"Whole dataset: {B} random subsamples of {ens['subsample_size']} of the {summary['n_input']} "
                     f"points, each analysed alone; " + ("; ".join(found) if found else "no loop in a majority of them")
                     + (f". Not reported (found in fewer than {ens['min_prevalence']:.0%} of the subsamples): "
                        + ", ".join(f"{len(c['runs'])} of {B}" for c in dropped) if dropped else "") + ".")
        prt = summary["detection"].get("parts")
        if prt and prt.get("searched"):
            in_parts = [(i, lp) for i, lp in enumerate(summary["loops"]) if "part" in lp]
            again = [(i, lp) for i, lp in enumerate(summary["loops"]) if "part_evidence" in lp]
            notes.append("Parts: community detection splits the graph into " + _parts_by_resolution(prt)
                         + (f"; the part of {prt['searched'][0]} points nearly apart from the rest was" if len(prt["searched"]) == 1
                            else f"; the {len(prt['searched'])} parts of {min(prt['searched'])}-{max(prt['searched'])} "
                                 "points nearly apart from the rest were each")
                         + " screened for a loop that too few of the random subsamples' points carry. "
                         + ("; ".join([_part_loop_note(i, lp) for i, lp in in_parts]
                                      + [_part_evidence_note(i, lp) for i, lp in again])
                            if in_parts or again else "None holds a loop that the subsamples did not report")
                         + "".join(_not_recurring_note(r) for r in prt.get("not_recurring", []))
                         + f" ({option('parts', False)} skips this).")
        if ens.get("stopped_early"):
            notes.append(f"The first {B} of the {ens['n_planned']} planned subsamples agreed unanimously, so the "
                         f"run stopped there: the other {ens['n_planned'] - B} could not have changed which loops "
                         f"are reported ({option('early_stop', False)} runs them all).")
    return notes


def _parts_by_resolution(prt: dict) -> str:
    """How many parts each Leiden resolution gave (:mod:`topoembed.parts`), in words."""
    levels = prt.get("n_parts_by_resolution", [prt["n_parts"]])
    if len(levels) == 1:
        return f"{levels[0]} parts"
    resolutions = " and ".join(f"{r:g}" for r in prt["resolutions"])
    if len(set(levels)) == 1:  # "7 parts or 7 parts" read as a slip
        return f"{levels[0]} parts at each of the resolutions {resolutions}"
    (count, res), *rest = zip(levels, prt["resolutions"])  # "10 parts or 3 parts" did not say which was which
    return f"{count} parts at resolution {res:g}" + "".join(f" and {c} at resolution {r:g}" for c, r in rest)


def _part_loop_note(i: int, lp: dict) -> str:
    """The report's sentence on loop i found inside a part (:mod:`topoembed.parts`)."""
    analysed = lp.get("n_analysed", lp["part_size"])
    where = (f"that part and the {analysed - lp['part_size']} points of its shell"
             if analysed > lp["part_size"] else "that part")
    again = (f", found again in {lp['n_runs']} of {lp['n_subsamples']} random subsamples of them"
             if lp.get("n_runs") is not None and lp.get("n_subsamples") else "")
    k = f" with k = {lp['k_in_part']}" if lp.get("k_in_part") is not None else ""  # the part's own (parts._inner)
    return (f"Loop {i + 1} lies in a part of {lp['part_size']} points (p = {verdict._num(lp.get('p_value_in_part'))} "
            f"there{k}, {_over_parts(lp.get('p_value'), lp['n_parts_searched'])}); its phase and membership are "
            f"given on {where} only{again}")


def _not_recurring_note(r: dict) -> str:
    """The report's sentence on a part's loop left out because it did not recur (:mod:`topoembed.parts`)."""
    return (f" A loop in a part of {r['part_size']} points (p = {verdict._num(r.get('p_value_in_part'))} on its "
            f"{r['analysed']} points analysed) recurs in only {r['prevalence']:.0%} of random subsamples of them "
            "and is not reported.")


def _over_parts(p, n_searched: int) -> str:
    """A part's Bonferroni-corrected p-value (:mod:`topoembed.parts`) in words."""
    return f"{verdict._num(p)} after multiplying by the {n_searched} part{'s' if n_searched != 1 else ''} searched"


def _part_evidence_note(i: int, lp: dict) -> str:
    """The report's sentence on loop i of the random subsamples that a part's analysis found again."""
    ev = lp["part_evidence"]
    around = (f" and the {ev['n_analysed'] - ev['part_size']} points of its shell"
              if ev["n_analysed"] > ev["part_size"] else "")
    own = f"p = {verdict._num(ev['ensemble_p_value'])}" + (
        f", in {ev['ensemble_prevalence']:.0%} of them" if ev.get("ensemble_prevalence") is not None else "")
    k = f"k = {ev['k_in_part']}; " if ev.get("k_in_part") is not None else ""
    there = f"p = {verdict._num(ev['p_value_in_part'])} ({k}{_over_parts(ev['p_value'], ev['n_parts_searched'])})" + (
                f", prevalence {ev['prevalence']:.0%} in subsamples of those points" if ev["prevalence"] is not None else "")
    before = ev.get("ensemble_n_on_loop")
    member = (f"; its membership is measured there too, on those {ev['n_analysed']} points only"
              + (f" (the subsamples had put {before:,} points on it)" if before is not None else "")
              if "ensemble_n_on_loop" in ev else "; its membership is still the subsamples' consensus")
    return (f"Loop {i + 1}, found by the random subsamples without support ({own}), is found again in a part of "
            f"{ev['part_size']} points{around} with {there}, which is now its evidence{member}; its phase is still "
            "the subsamples' consensus over all points")


def _stopped(chk: dict) -> str:
    """The prevalence check's early stop, in words (empty where all subsamples ran)."""
    if not chk.get("stopped_early"):
        return ""
    return (f" It stopped after {chk['n_subsamples']} of the {chk['n_planned']} planned subsamples, where the "
            f"call was decided ({option('early_stop', False)} runs them all).")


def _number(x) -> float | None:
    """x as a float, or None where it is missing (None in JSON, NaN in memory)."""
    return None if x is None or not np.isfinite(float(x)) else float(x)


def _found_in(lp: dict, summary: dict) -> str:
    """"k of B subsamples found it": the subsamples behind the loop's prevalence
    (:func:`topoembed.verdict.runs_behind`)."""
    runs, of, in_part = verdict.runs_behind(lp)
    if in_part:
        return f"{runs} of {of} subsamples of its part's points found it"
    return f"{runs} of {of or _n_subsamples(summary)} subsamples found it"


def _runs_behind(lp: dict) -> str:
    """"k of B" (:func:`topoembed.verdict.runs_behind`), "k" where B is not recorded."""
    runs, of, _ = verdict.runs_behind(lp)
    return f"{runs} of {of}" if of else f"{runs}"


def _n_subsamples(summary: dict) -> int:
    """Subsamples behind each loop's prevalence: the ensemble's, or a single run's prevalence check's."""
    if summary.get("ensemble"):
        return summary["ensemble"]["n_subsamples"]
    return summary["detection"]["prevalence_check"]["n_subsamples"]


def _img(b64, alt, cls="fig"):
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(rows, header):
    """HTML table; header cells are HTML (they may hold glossary links), body cells are escaped."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dgms_from_summary(summary):
    out = []
    for dim in range(len(summary["diagrams"])):
        bars = summary["diagrams"][f"H{dim}"]
        out.append(np.array([[b, np.inf if d is None else d] for b, d in bars], dtype=float).reshape(-1, 2))
    return out


def _detected_rows(summary, h1):
    """H1 rows of the reported loops, matched by (birth, death); loops not in the diagram
    (an ensemble's consensus loop missing from the reference run) are skipped."""
    rows = []
    for lp in summary["loops"]:
        death = np.inf if lp.get("death") is None else lp["death"]
        hit = np.flatnonzero(np.isclose(h1[:, 0], lp["birth"]) & np.isclose(h1[:, 1], death))
        if len(hit):
            rows.append(int(hit[0]))
    return rows


# --------------------------------------------------------------------------- glossary
#: term id -> (name, definition in HTML). Every number the report shows links to one of these.
GLOSSARY = {
    "distance": ("distance", "How far apart two points are. <i>Effective resistance</i> (default) and "
                 "<i>diffusion distance</i> are spectral distances on the kNN graph: they follow the data's "
                 "shape rather than straight lines, and stay meaningful in high dimension where the Euclidean "
                 "distance drowns in noise (Damrich, Berens and Kobak, NeurIPS 2024). All births, deaths and "
                 "thresholds are in this distance's units, which are not those of the input."),
    "knn": ("kNN graph", "Each point joined to its k nearest neighbours in the input space; <i>mutual</i> "
            "(symmetrize = and) keeps an edge only when both points count each other among their k nearest. "
            "The spectral distances are computed on this graph."),
    "h1": ("H0, H1", "Features of the growing family of shapes (Vietoris–Rips complexes) built by joining all "
           "points closer than r, as r grows: H0 features are connected groups of points, H1 features are "
           "loops (holes surrounded by points)."),
    "birth": ("birth", "The value of r at which a feature appears; for a loop, the length of the edge that "
              "closes it (its <i>birth edge</i>)."),
    "death": ("death", "The value of r at which the feature disappears; for a loop, when r is large enough to "
              "fill the hole. ∞: it did not die within the computed range."),
    "persistence": ("persistence", "death − birth: the feature's lifetime, the length of its bar in the "
                    "barcode and its height above the diagonal in the diagram. Noise makes many short-lived "
                    "loops; a real loop lives much longer than the rest."),
    "ratio": ("death/birth", "A loop's size relative to the gaps between its points, free of units. Loops with "
              "death/birth ≤ 1.25 are not scored (the dotted line in the diagram)."),
    "s_m": ("s_m", "The detection score for m loops: sort the lifetimes of the H1 features with "
            "death/birth > 1.25, p_1 ≥ p_2 ≥ …, then s_m = (p_m − p_(m+1)) / p_m, the relative drop after "
            "the m-th longest. 1 when exactly m features pass (nothing after them), 0 when fewer than m do. "
            "The number of loops is the m with the largest drop p_m − p_(m+1), if s_m ≥ 0.5 (the dashed "
            "line) and p_m is at least 5 % of the median distance between points."),
    "score": ("detection score", "The number given with the verdict: s_m of the chosen m when loops were found "
              "(1 = the loops stand far above the rest); when no loop was found, 1 − max_m s_m (near 1: no m "
              "stands out at all; small: some m almost passed)."),
    "p_value": ("p-value", "The chance that noise alone makes an H1 feature whose death/birth ratio is this "
                "large, under the universal null distribution of Bobrowski and Skraba (Scientific Reports "
                "2023), multiplied by the number of H1 features (Bonferroni). Below "
                f"{verdict.P_CONCLUSIVE:g} it supports the loop on its own; from {verdict.P_CONCLUSIVE:g} up to "
                f"{verdict.ALPHA:g} the loop stays a possible loop unless at least "
                f"{verdict.SUPPORT_PREVALENCE:.0%} of random subsamples find it again (its prevalence). Thick "
                "loops with unevenly spread points (e.g. the cell cycle) can be real with a larger p-value, so "
                "the p-value alone never drops a loop that the subsamples support. '–': fewer than "
                f"{loops.NULL_MIN_FEATURES} H1 features, too few to estimate the null."),
    "confirmation": ("confirmation", "The same number of loops must also be found by the other spectral "
                     "distance on the same graph (effective resistance ↔ diffusion); otherwise no loop is "
                     "reported. It removed every false loop of the default on Gaussian noise."),
    "prevalence": ("prevalence", "The share of random subsamples (each analysed alone) that found this loop. "
                   "For a whole dataset a loop is reported when a majority of subsamples find it; a loop whose "
                   "p-value is not conclusive (or that has none) is supported when at least 90 % do (the "
                   "prevalence check of up to 1,000 points, 70 % of them in each subsample, 90 % of 101-399 points)."),
    "cycle": ("representative cycle", "A closed path through data points that goes once round the loop "
              "(the shortest such path, at a radius between birth and death, stepping at most a few degrees "
              "of phase at a time). Its length is given in points."),
    "phase": ("phase θ", "For every point, where it lies round the loop, in [0, 2π): the cycle's points are "
              "spaced evenly round the circle and every other point takes the average of its neighbours "
              "in the kNN graph. For a whole dataset, and for a loop that a prevalence check found again in "
              "at least half its subsamples, it is the circular mean of the phases of the runs that found it "
              "(their circular variance at each point is its phase_spread in cells.csv). Where the cells' S and "
              "G2/M scores oriented it, θ = 0 is the G1/S boundary and S comes before G2/M; otherwise where "
              "θ = 0 lies and which way it runs are arbitrary (the same on every machine for the same seed)."),
    "phase_confidence": ("phase confidence", "Per point, in [0, 1]: how well its kNN neighbours agree on the "
                         "phase (1 − their circular variance), lowered for points farther from the cycle than "
                         "the on-loop threshold. Low in the middle of the hole and where loops cross. The "
                         "table gives the median over all points."),
    "loop_distance": ("loop distance", "The distance from a point to the nearest point of the representative "
                      "cycle, in the units of the chosen distance."),
    "on_loop": ("on the loop", "Points whose loop distance is at most the on-loop threshold r_θ = birth + "
                "½ (death − birth): a tube round the cycle as wide as the radius at which the loop is firmly "
                "formed but not yet filled. It marks the loop's core, not which points belong to the loop: "
                "every point it reaches gets a phase (all of them, but for a loop found inside a part of the data: "
                "the points analysed there). On a noisy loop a point's loop distance grows with its noise, and "
                "the threshold falls near the middle of that spread, so on a pure noisy circle about half of "
                "the points are 'on the loop' (472 of 1,000 on the demo circle) although all lie on the "
                "circle. Use the phase and its confidence to place points on the loop."),
    "threshold": ("on-loop threshold", "r_θ = birth + ½ (death − birth), the loop distance up to which a point "
                  "counts as on the loop (see <i>on the loop</i>)."),
    "phase_spread": ("phase spread", "The circular variance of a point's phase across the subsamples that found "
                     "the loop (a whole dataset's, or a prevalence check's with the run itself; 0: all agree, "
                     "1: no agreement)."),
}


class _Terms:
    """Glossary links made while the page is built; the glossary lists the terms used."""

    def __init__(self):
        self.used: list[str] = []

    def __call__(self, key: str, text: str | None = None) -> str:
        if key not in GLOSSARY:
            raise KeyError(f"no glossary entry {key!r}")
        if key not in self.used:
            self.used.append(key)
        return f'<a class="term" href="#g-{key}">{html.escape(text or GLOSSARY[key][0])}</a>'

    def html(self) -> str:
        items = "".join(f'<dt id="g-{k}">{html.escape(GLOSSARY[k][0])}</dt><dd>{GLOSSARY[k][1]}</dd>'
                        for k in GLOSSARY if k in self.used)
        return f"<dl class='glossary'>{items}</dl>"


# --------------------------------------------------------------------------- words
def _g(x) -> str:
    return f"{x:.3g}"


def _p(p) -> str:
    return "–" if p is None else f"{p:.2g}"


_RULES = {
    "gap": "the largest drop in the {s_m} alone",
    "confirmed_gap": "the largest drop in the {s_m}{confirmed}",
    "evidence": "the largest drop in the {s_m}{confirmed}; where that finds none, "
                f"loops with a very small {{p_value}} (&lt; {loops.RESCUE_ALPHA:g})",
    "significant": f"the largest drop in the {{s_m}}{{confirmed}}, keeping only loops with {{p_value}} &lt; {loops.ALPHA:g}",
}


def summary_verdict(summary: dict) -> verdict.Verdict:
    """The run's :class:`topoembed.verdict.Verdict`, from the loops of ``summary`` (the same
    rule that wrote ``summary["verdict"]``, so an edited or older summary is read the same way)."""
    return verdict.decide(summary["loops"], summary["detection"])


_LEVEL_CSS = {verdict.LOOP: "found", verdict.POSSIBLE: "possible", verdict.NONE: "none"}


def loop_label(call: verdict.LoopCall) -> str:
    """'Loop 2' for a supported loop, 'Possible loop 2' for one without support."""
    return f"{'Loop' if call.supported else 'Possible loop'} {call.index + 1}"


def _headline(summary, t) -> str:
    det = summary["detection"]
    m = det["n_loops"]
    v = summary_verdict(summary)
    what = v.headline() + (" found" if v.level == verdict.NONE or not v.n_possible else "")
    n, n_in = summary["n_points"], summary["n_input"]
    pts = f"{n:,} points" + (f" (of {n_in:,} in the input)" if n_in != n else "")
    if "ensemble" in summary:
        ens = summary["ensemble"]
        pts = f"{n_in:,} points, as {ens['n_subsamples']} random subsamples of {ens['subsample_size']:,}"
    dist = summary["distance"].replace("_", " ")
    p = summary["params"]
    graph = summary.get("graph", {})
    return (f"<p class='headline {_LEVEL_CSS[v.level]}'>{what}</p>"
            f"<p>in {pts}, with the {t('distance', dist)} {t('distance', 'distance')} on a "
            f"{'mutual ' if p.get('symmetrize') == 'and' else ''}{t('knn', 'kNN graph')} (k = {p.get('k')}"
            + (f", {graph['n_edges']:,} edges, {graph['n_components']} connected component"
               f"{'s' if graph['n_components'] != 1 else ''}"
               + (f" in subsample {summary['ensemble']['reference_run'] + 1}, whose diagram is shown"
                  if "ensemble" in summary and "reference_run" in summary["ensemble"] else "") if graph else "")
            + (f"; the setting {summary['auto']['key']} that {option('distance', 'auto')} chose, its loop count proposed by "
               f"{summary['auto']['support']} settings" if summary.get("auto") else "")
            + f"). {t('score')}: {det['score']:.2f}"
            + (f" (s_{m})" if m else " (1 − max s_m)") + ".</p>")


def _loop_evidence(summary, t) -> list[str]:
    """One plain sentence of evidence per reported loop."""
    det, out = summary["detection"], []
    confirmed = det.get("confirmation") and "unconfirmed" not in det
    calls = summary_verdict(summary).loops
    for i, lp in enumerate(summary["loops"]):
        bits = []  # the p-value and the prevalence are in the verdict's reasons, said once
        if "prevalence" in lp:
            bits.append(f"{_found_in(lp, summary)} ({t('prevalence')})")
        if confirmed:
            bits.append(f"{t('confirmation', 'confirmed')} by {html.escape(det['confirmation']['distance'])}")
        if "n_on_loop" in lp:
            bits.append(f"{lp['n_on_loop']:,} of {summary['n_input']:,} points {t('on_loop')}")
        ratio = lp["death"] / lp["birth"] if lp.get("death") and lp["birth"] > 0 else None
        bits.append(f"{t('persistence')} {_g(lp['persistence'])}"
                    + (f", {t('ratio')} {ratio:.2f}" if ratio else ""))
        where = " (p-value: median over the subsamples)" if summary.get("ensemble") and lp.get("p_value") else ""
        level = ("supported" if calls[i].supported else "<b>not supported</b>, so its phase is withheld "
                 "unless asked for") + f": {html.escape(calls[i].sentence())}{where}"
        out.append(f"<b style='color:{plotting.loop_color(i)}'>{loop_label(calls[i])}</b>: {level}; "
                   + "; ".join(bits) + ".")
    return out


def _checks(summary, t) -> list[str]:
    det = summary["detection"]
    rule = det.get("rule")
    items = []
    ensemble = summary.get("ensemble")
    if summary["params"].get("n_loops", "auto") != "auto":  # the user fixed it: no rule decided it
        items.append(f"The number of loops was fixed at {summary['params']['n_loops']} "
                     f"({option('n_loops', summary['params']['n_loops'])}), not decided by a rule"
                     + (f"; only {len(summary['loops'])} H1 feature(s) pass the death/birth filter, so only they "
                        "are reported" if len(summary["loops"]) < int(summary["params"]["n_loops"]) else "") + ".")
    elif rule in _RULES:
        # the subsample runs of an ensemble skip the second distance: their prevalence is the second opinion
        if ensemble or not summary["params"].get("confirm"):
            confirmed = ""
        else:
            confirmed = f", {t('confirmation', 'confirmed')} by a second distance"
        words = _RULES[rule].format(s_m=t("s_m", "scores s_m"), confirmed=confirmed, p_value=t("p_value"))
        whose = "Each subsample's number of loops" if ensemble else "The number of loops"
        items.append(f"{whose} was decided by the rule <code>{html.escape(rule)}</code>: {words}"
                     + (" (without a second distance: the prevalence across subsamples is the second opinion)"
                        if ensemble else "") + ".")
    items += [html.escape(n) for n in verdict_notes(summary)]
    if det.get("confirmation") is None and summary["params"].get("confirm") and det["n_loops"] == 0 \
            and "unconfirmed" not in det and not ensemble:
        items.append("No count to confirm: the detection score found no loop with the first distance.")
    return items


def _warnings(summary) -> str:
    """The run's warnings, then its notes (settings chosen for this input, ``summary["notes"]``)."""
    notes = "".join(f"<p>Note: {html.escape(str(n))}.</p>" for n in summary.get("notes") or [])
    if "warnings" not in summary:
        return notes
    warns = summary["warnings"] or []
    if not warns:
        return "<p class='ok'>The run logged no warnings.</p>" + notes
    lis = "".join(f"<li>{html.escape(str(w))}</li>" for w in warns)
    plural = "s" if len(warns) > 1 else ""
    return f"<div class='warn'><b>The run logged {len(warns)} warning{plural}:</b><ul>{lis}</ul></div>" + notes


# --------------------------------------------------------------------------- figures
def _persistence_figs(summary, dgms, rows) -> list[str]:
    from . import loops as _loops

    det = summary["detection"]
    h_dims = tuple(range(1, len(dgms))) or (0,)
    return [
        _img(figure_png(lambda ax: plotting.diagram(ax, dgms, rows, min_ratio=_loops.MIN_RATIO), (5.2, 4.4)),
             "persistence diagram"),
        _img(figure_png(lambda ax: plotting.barcode(ax, dgms, dims=h_dims, max_bars=30, highlight=rows), (5.2, 4.4)),
             "barcode"),
        _img(figure_png(lambda ax: plotting.detection_scores(ax, det["scores"], det["n_loops"],
                                                             min_score=_loops.MIN_SCORE), (5.2, 3.6)),
             "detection scores"),
    ]


def _view(summary, points, index, view):
    """(name, Y, ids): 2-D coordinates and the input row id of each row, or None."""
    if view is not None:
        name, coords = view
        Y = np.asarray(coords, dtype=float)
        if Y.ndim != 2 or Y.shape[1] < 2 or len(Y) != summary["n_input"]:
            raise ValueError(f"view {name!r} must be an (n_input × 2) array: {summary['n_input']} rows, "
                             f"got shape {Y.shape}")
        return str(name), Y[:, :2], np.arange(len(Y))
    if points is None:
        return None
    ids = np.asarray(index if index is not None else np.arange(len(points)))
    return "PCA of the points", plotting.pca_2d(points), ids


def _membership_text(summary, lp, arrays, t) -> str:
    n = summary["n_input"]
    parts = []
    if "n_on_loop" in lp:
        thr = lp.get("on_loop_threshold")
        share = f"{lp['n_on_loop']:,} of {n:,} points ({lp['n_on_loop'] / max(n, 1):.0%}) are {t('on_loop')}: "
        where = _membership_measured_on(lp)
        if where:  # a part's analysis (topoembed.parts): its own distances, on its points only
            parts.append(share + f"their {t('loop_distance')}, measured {where}, is at most its {t('threshold')} "
                         "(in those units; none elsewhere).")
        elif summary.get("ensemble"):  # distances in units of each subsample's threshold
            parts.append(share + f"the median over the subsamples of their {t('loop_distance')}, in units of "
                         f"each subsample's {t('threshold')}, is at most 1.")
        else:
            parts.append(share + f"their {t('loop_distance')} is at most the {t('threshold')}"
                         + (f" {_g(thr)}" if thr is not None else "") + ".")
        dist = arrays.get("loop_distance")
        if dist is not None and thr and np.isfinite(np.asarray(dist, dtype=float)).any():
            med = float(np.nanmedian(np.asarray(dist, dtype=float) / thr))
            parts.append(f"The median point lies at {med:.2f} × the threshold. 'On the loop' marks the loop's "
                         "core, a tube round its cycle, not every point that belongs to the loop: on a noisy "
                         "loop a point's loop distance grows with its noise, so even on a pure noisy circle only "
                         "about half of the points fall inside. "
                         + (f"The {t('phase')} is withheld: the loop is not supported." if lp.get("phase_withheld")
                            else f"The {t('phase')} is given on the {lp['n_reached']:,} points analysed there."
                            if lp.get("n_reached") is not None else f"Every point gets a {t('phase')}."))
    if _number(lp.get("median_phase_confidence")) is not None:  # None/NaN: the phase is withheld
        parts.append(f"Median {t('phase_confidence')}: {lp['median_phase_confidence']:.2f}.")
        spread = np.asarray(arrays.get("phase_spread", []), dtype=float)
        if np.isfinite(spread).any():
            parts.append(f"Median {t('phase_spread')} across the runs that found it: {np.nanmedian(spread):.3f}.")
    if "cycle" in lp:
        parts.append(f"The {t('cycle')} (drawn) runs through {len(lp['cycle'])} points.")
    if lp.get("phase_orientation") and _number(lp.get("median_phase_confidence")) is not None:
        parts.append(_orientation_text(lp["phase_orientation"]))
    return "<p>" + " ".join(parts) + "</p>"


def _peaks_in_degrees(o: dict) -> tuple[float, float]:
    """Where S and G2/M peak on the oriented phase (``phase_orientation``), in degrees."""
    return float(np.degrees(o["theta_S"])), float(np.degrees(o["theta_G2M"]))


def orientation_summary(o: dict) -> str:
    """One line on how the cells' S and G2/M scores oriented a loop's phase (the command line's
    table): where each peaks and how far θ agrees with the scores' own angle."""
    s, g = _peaks_in_degrees(o)
    agree = (f"; |ρ| with the scores' own angle {o['score_angle_corr']:.2f} (1: the same order round the circle)"
             if o.get("score_angle_corr") is not None else "")
    return (f"oriented by the {o.get('by', 'S and G2/M scores')}, θ = 0 at G1/S, S peaks at {s:.0f}°, "
            f"G2/M at {g:.0f}°{agree}{_bunched(o)}")


#: θ's own resultant from which most cells share one phase, and the scores' peaks say little.
BUNCHED_THETA = 0.5


def _bunched(o: dict, long: bool = False) -> str:
    """A caution where θ itself is concentrated (``theta_resultant`` ≥ :data:`BUNCHED_THETA`):
    then every weighted resultant is near 1, and the peaks' places follow the bunch."""
    r = o.get("theta_resultant")
    if r is None or r < BUNCHED_THETA:
        return ""
    if not long:
        return f"; but θ itself bunches at one phase (resultant {r:.2f}), so these peaks say little"
    return (f" But θ itself bunches at one phase (its cells' resultant is {r:.2f}), so the scores' "
            "concentrations repeat that bunch and their peaks say little about the order of the phases.")


def _orientation_text(o: dict) -> str:
    """How the cells' S and G2/M scores oriented the phase (:func:`topoembed.localize.orient_by_markers`)."""
    s, g = _peaks_in_degrees(o)
    r = o.get("resultant", {})
    return (f"The phase is oriented by the cells' {o.get('by', 'S and G2/M scores')}: θ = 0 at the G1/S boundary, "
            f"S peaks at {s:.0f}° and G2/M at {g:.0f}°, {(g - s) % 360:.0f}° later"
            + (f"; each score's concentration at its peak (the resultant of θ weighted by it: 0 spread evenly "
               f"round the loop, 1 all at one phase) is {r['S']:.2f} for S and {r['G2M']:.2f} for G2/M"
               if "S" in r and "G2M" in r else "") + "."
            + (f" θ and the angle of the two scores, a phase read from the genes alone, correlate at "
               f"|ρ| = {o['score_angle_corr']:.2f} (Fisher–Lee; 1: the same order round the circle, 0: unrelated)."
               if o.get("score_angle_corr") is not None else "") + _bunched(o, long=True))


def _membership_measured_on(lp: dict) -> str:
    """Where a part's analysis measured the loop's membership (:mod:`topoembed.parts`), in words;
    empty where the run or the subsamples measured it over all points."""
    ev = lp.get("part_evidence") or {}
    if lp.get("part") is not None or "ensemble_n_on_loop" in ev:
        size, analysed = (lp["part_size"], lp["n_analysed"]) if lp.get("part") is not None else (
            ev["part_size"], ev["n_analysed"])
        return f"within the part of {size:,} points" + (f" and its shell ({analysed:,} points analysed)"
                                                         if analysed > size else "")
    return ""


_VIEW_MARGINS = (0.02, 0.98, 0.02, 0.93)  # 2-D views have no axis labels


def _phase_image(got, lp, phase, i) -> str:
    """Loop i's phase θ on the 2-D view ``got`` (:func:`_view`), with its cycle."""
    name, Y, ids = got
    pos = {int(v): r for r, v in enumerate(ids)}
    cyc = [pos[v] for v in lp.get("cycle", []) if v in pos]
    theta = np.asarray(phase, dtype=float)[ids]
    return _img(figure_png(lambda ax: plotting.loop_view(ax, Y, phase=theta, cycle=cyc, loop=i, basis=name),
                           (5.6, 4.8), _VIEW_MARGINS), f"loop {i + 1}: phase on {name}")


def _loop_views(summary, got, per_point, t, has_view: bool) -> str:
    """Per loop: its phase and membership on the 2-D view ``got``, θ histogram and words."""
    if not summary["loops"]:
        return ("<p>No loop was found, so there is no phase or loop membership to show"
                + (" (the 2-D view is left out)." if has_view else ".") + "</p>")
    calls = summary_verdict(summary).loops
    out = []
    for i, lp in enumerate(summary["loops"]):
        arrays = per_point[i] if i < len(per_point) else {}
        out.append(f"<h3 style='color:{plotting.loop_color(i)}'>{loop_label(calls[i])}</h3>")
        if "phase" not in arrays or got is None:
            out.append("<p>This loop was not localised (no phase or membership was computed, or no points were "
                       "passed to the report), so it is not drawn.</p>" + _membership_text(summary, lp, {}, t))
            continue
        name, Y, ids = got
        pos = {int(v): r for r, v in enumerate(ids)}
        cyc = [pos[v] for v in lp.get("cycle", []) if v in pos]
        figs = [_phase_image(got, lp, arrays["phase"], i)]
        if "on_loop" in arrays:
            on = np.asarray(arrays["on_loop"], dtype=bool)[ids]
            figs.append(_img(figure_png(lambda ax: plotting.loop_view(ax, Y, on_loop=on, cycle=cyc, loop=i,
                                                                      basis=name), (5.6, 4.8), _VIEW_MARGINS),
                             f"loop {i + 1}: membership on {name}"))
        figs.append(_img(figure_png(lambda ax: plotting.phase_histogram(
            ax, arrays["phase"], arrays.get("on_loop"), title=f"loop {i + 1}: θ of all {len(ids):,} points",
            loop=i, orientation=lp.get("phase_orientation")), (5.2, 3.4), (0.14, 0.96, 0.18, 0.9)),
            f"loop {i + 1}: phase histogram"))
        if arrays.get("markers") and np.isfinite(np.asarray(arrays["phase"], dtype=float)).any():
            figs.append(_img(figure_png(lambda ax: plotting.values_along_phase(
                ax, arrays["phase"], arrays["markers"], orientation=lp.get("phase_orientation"),
                title=f"loop {i + 1}: cell-cycle scores along θ", ylabel="score (mean z of the genes)"),
                (5.2, 3.4), (0.14, 0.96, 0.18, 0.9)), f"loop {i + 1}: S and G2/M scores along the phase"))
        out.append(_membership_text(summary, lp, arrays, t) + "<div class='figs'>" + "".join(figs) + "</div>")
    return "".join(out)


def _first_loop_figure(summary, got, per_point) -> str:
    """The first loop's phase on the 2-D view (the input's UMAP when given), for the first screen."""
    phase = per_point[0].get("phase") if len(per_point) else None
    if got is None or phase is None or not np.isfinite(np.asarray(phase, dtype=float)).any():
        return ""
    return "<div class='figs'>" + _phase_image(got, summary["loops"][0], phase, 0) + "</div>"


def _loop_table(summary, t) -> str:
    loops_ = summary["loops"]
    if not loops_:
        return ""
    cols = [("loop", None, None, lambda i, lp: i + 1),
            ("birth", "birth", None, lambda i, lp: _g(lp["birth"])),
            ("death", "death", None, lambda i, lp: "∞" if lp.get("death") is None else _g(lp["death"])),
            ("persistence", "persistence", None, lambda i, lp: _g(lp["persistence"])),
            ("death/birth", "ratio", None, lambda i, lp: f"{lp['death'] / lp['birth']:.2f}"
             if lp.get("death") and lp["birth"] > 0 else "–"),
            ("p-value", "p_value", None, lambda i, lp: _p(lp.get("p_value"))),
            ("prevalence (share of subsamples)", "prevalence", "prevalence",
             lambda i, lp: f"{lp['prevalence']:.0%} ({_runs_behind(lp)})"),
            ("on the loop", "on_loop", "n_on_loop", lambda i, lp: f"{lp['n_on_loop']:,}"),
            ("on-loop threshold", "threshold", "on_loop_threshold", lambda i, lp: _g(lp["on_loop_threshold"])),
            ("cycle (points)", "cycle", "cycle", lambda i, lp: len(lp["cycle"])),
            ("median phase confidence", "phase_confidence", "median_phase_confidence",
             lambda i, lp: "–" if _number(lp["median_phase_confidence"]) is None
             else f"{lp['median_phase_confidence']:.2f}")]
    cols = [c for c in cols if c[2] is None or any(c[2] in lp for lp in loops_)]
    header = [t(key, name) if key else name for name, key, _, _ in cols]
    rows = [[fmt(i, lp) if field is None or field in lp else "–" for _, _, field, fmt in cols]
            for i, lp in enumerate(loops_)]
    return _table(rows, header)


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1120px;margin:1.5em auto;
padding:0 1em;color:#222;line-height:1.45}h1{margin-bottom:.1em}h2{border-bottom:1px solid #ddd;margin-top:1.6em}
.sub{color:#666;margin-top:0}.verdict{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.4em 1.2em}
.headline{font-size:1.6em;font-weight:600;margin:.3em 0}.headline.found{color:#1a7f37}.headline.none{color:#57606a}.headline.possible{color:#9a6700}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.3em 1em;margin:.6em 0}
.ok{color:#1a7f37}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;
text-align:left}th{background:#f6f8fa}.figs{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:.6em}
.figs img{width:100%;height:auto}a.term{color:inherit;text-decoration:underline dotted}
dl.glossary dt{font-weight:600;margin-top:.5em}dl.glossary dd{margin-left:1.5em}
.cols{display:grid;grid-template-columns:repeat(4,auto);gap:1em;justify-content:start}"""


def render_html(summary: dict, points=None, index=None, per_point: list[dict] = (),
                extra_sections: list[tuple[str, str]] = (), view=None) -> str:
    """The report as an HTML string.

    ``points``: the (n_points × p) points the run used; ``index``: their row ids in the input
    (the ids of the summary's cycles and birth edges; default 0..n-1). ``per_point``: for each
    loop, a dict of arrays over the input points (``phase``, ``on_loop``, ``loop_distance``,
    from the pipeline's localisation; ``markers``, {name: score per point}, e.g. the recipe's S
    and G2/M scores, drawn along θ). ``view``: ``(name, coords)`` with coords an
    (n_input × 2) array, e.g. ``("UMAP", adata.obsm["X_umap"])``, for the loop plots;
    default a PCA of ``points``. ``extra_sections``: (title, html) pairs appended by later
    stages (e.g. the embedding's loop check). ``summary["warnings"]`` is shown when present.
    """
    t = _Terms()
    dgms = _dgms_from_summary(summary)
    h1 = dgms[1] if len(dgms) > 1 else np.zeros((0, 2))
    rows = _detected_rows(summary, h1)
    evidence = "".join(f"<li>{s}</li>" for s in _loop_evidence(summary, t))
    checks = "".join(f"<li>{s}</li>" for s in _checks(summary, t))
    got = _view(summary, points, index, view) if summary["loops"] else None  # one view (a PCA) for both
    verdict = (_headline(summary, t) + (f"<ul>{evidence}</ul>" if evidence else "")
               + _first_loop_figure(summary, got, per_point)
               + (f"<details><summary><b>What was checked</b> ({checks.count('<li>')} "
                  f"{'checks' if checks.count('<li>') != 1 else 'check'})</summary>"
                  f"<ul>{checks}</ul></details>" if checks else "") + _warnings(summary))
    n_h1 = len(h1)
    ens = summary.get("ensemble") or {}
    of_run = (f"Subsample {ens['reference_run'] + 1}'s diagram ({summary['n_points']:,} of the {summary['n_input']:,} "
              "points, the best-scoring subsample that found the loops reported): " if "reference_run" in ens else "")
    persistence = (f"<p>{of_run}{len(dgms[0]):,} {t('h1', 'H0')} and {n_h1:,} H1 features. The diagram is scaled "
                   f"to the H1 features (the inset shows all of them at full scale); each point is one feature at "
                   f"({t('birth')}, {t('death')}); the barcode sorts the H1 features by "
                   f"{t('persistence')}" + ("; the detected loops are marked in colour.</p>" if rows else ".</p>")
                   + "<div class='figs'>" + "".join(_persistence_figs(summary, dgms, rows)) + "</div>"
                   + _loop_table(summary, t))
    sections = [
        ("Verdict", f"<div class='verdict'>{verdict}</div>"),
        ("Persistence and detection", persistence),
        ("Where the loop lies", _loop_views(summary, got, per_point, t, points is not None or view is not None)),
        *extra_sections,
        ("Parameters and timings", _details(summary)),
    ]
    det = summary["detection"]
    if any("prevalence" in lp for lp in summary["loops"]) or "prevalence_check" in det or "ensemble" in summary:
        t("prevalence")  # named in the verdict's words (its reasons, the check's note) without a link
    sections.append(("Glossary", t.html()))
    body = "".join(f"<h2>{html.escape(title)}</h2>{h}" for title, h in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>topoembed report: {html.escape(str(summary['input']))}</title>
<style>{_CSS}</style></head>
<body><h1>topoembed report</h1><p class="sub">Input: <code>{html.escape(str(summary['input']))}</code> ·
{_analysed(summary.get("representation"))}topoembed {html.escape(str(summary['version']))}</p>{body}</body></html>
"""


def _analysed(rep: dict | None) -> str:
    """The subtitle's account of the AnnData representation analysed (summary.json's
    ``representation``), and of the recipe that made it; empty for other inputs."""
    if not rep:
        return ""
    name = "adata.X" if rep["use_rep"] == "X" else f"obsm[{rep['use_rep']!r}]"
    recipe = rep.get("recipe")
    how = (f"; the cell-cycle recipe: {recipe['n_genes']} genes of {recipe['layer']}, normalised, log1p, "
           f"{recipe['n_comps']} PCs" if recipe else "")
    return f"analysed: <code>{html.escape(name)}</code> ({rep['n_columns']} columns{html.escape(how)}) · "


def groups_index_html(source: str, groupby: str, groups: list[tuple[str, str, dict]]) -> str:
    """The page of ``topoembed run --groupby``: one row per group (``groups``: its name, its
    folder and its summary) with its cells, verdict, first loop's p-value and prevalence, and the
    first sentence under the verdict, the group's name linking to its own report."""
    rows = []
    for name, folder, summ in groups:
        call = summary_verdict(summ)
        first = summ["loops"][0] if summ["loops"] else {}
        notes = verdict_notes(summ)
        rows.append(f"<tr><td><a href='{html.escape(folder)}/report.html'>{html.escape(name)}</a></td>"
                    f"<td>{summ['n_input']:,}</td><td class='headline {_LEVEL_CSS[call.level]}' "
                    f"style='font-size:1em'>{html.escape(call.headline())}</td><td>{_p(first.get('p_value'))}</td>"
                    f"<td>{_p(first.get('prevalence'))}</td><td>{html.escape(notes[0]) if notes else ''}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in (groupby, "cells", "verdict", "p-value (loop 1)", "prevalence (loop 1)",
                                            "why"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>topoembed by {html.escape(groupby)}: {html.escape(source)}</title>
<style>{_CSS}</style></head>
<body><h1>topoembed by {html.escape(groupby)}</h1><p class="sub">Input: <code>{html.escape(source)}</code> ·
{len(groups)} groups, each analysed alone · topoembed {html.escape(str(groups[0][2]['version']))}</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
<p>Each group's name opens its own report; <code>groups.tsv</code> holds this table for machines.</p></body></html>
"""


def _details(summary) -> str:
    items = sorted((k, "none" if v is None else v) for k, v in summary["params"].items())
    third = -(-len(items) // 3)
    tables = [_table(items[i:i + third], ["parameter", "value"]) for i in range(0, len(items), third)]
    tables.append(_table([(k, f"{v:.2f}") for k, v in summary["timings_s"].items()], ["stage", "seconds"]))
    if summary.get("environment"):  # absent from summaries written before 2026-12-07
        tables.append(_table(list(summary["environment"].items()), ["environment", "version"]))
    return "<div class='cols'>" + "".join(f"<div>{x}</div>" for x in tables) + "</div>"


def embedding_section(Y, loss: str, topology: dict, result) -> str:
    """HTML for an embedding: the 2-D picture (coloured by the first loop's θ when there is
    one) and the verdict of :func:`topoembed.embed.embedding_topology`."""
    theta = result.loops[0].get("phase") if result.loops else None
    b64 = figure_png(lambda ax: plotting.points_2d(ax, np.asarray(Y)[:, :2], color=theta,
                                                   cmap="twilight", colorbar_label="θ" if theta is not None else None,
                                                   title=f"{loss} embedding"), (5.6, 5))
    low, high = topology["low"], topology["high"]
    rows = [("data (high-dimensional)", high["n_loops"], f"{high.get('score', float('nan')):.3f}"),
            ("embedding (2-D, Euclidean)", low["n_loops"], f"{low['score']:.3f}")]
    return (f"<p class='verdict'>{html.escape(topology['message'])}</p>"
            + _table(rows, ["", "loops", "score"]) + "<div class='figs'>" + _img(b64, "embedding") + "</div>")
