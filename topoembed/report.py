"""Stage 6: the human report, one self-contained HTML file with embedded PNG figures.

It shows the persistence diagram, the barcode, a 2-D PCA view of the points with each
detected loop's birth edge marked, the detection-score table and the run's parameters
and timings. Everything it prints comes from the ``summary.json`` dict, so the two
never disagree.
"""
from __future__ import annotations

import base64
import html
import io

import numpy as np

from . import plotting

__all__ = ["render_html", "figure_png", "verdict_notes"]


def figure_png(draw, figsize=(5, 4)) -> str:
    """Run ``draw(ax)`` on a new figure and return the PNG as base64 text."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    try:
        draw(ax)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def verdict_notes(summary: dict) -> list[str]:
    """Plain sentences on how the loop count was checked: by ``distance="auto"``'s
    agreement rule, or by the second distance of ``Params.confirm``. The command line and
    the HTML report both print these, so they word the verdict the same way."""
    det = summary["detection"]
    notes = []
    unconfirmed = (summary.get("auto") or {}).get("unconfirmed")
    if unconfirmed:
        notes.append(f"Not confirmed: the setting {unconfirmed['key']} alone proposes {unconfirmed['n_loops']} "
                     f"loop(s) (s = {unconfirmed['score']:.2f}), but no other distance kind agrees, so the "
                     "verdict is no loop; its diagram is shown for inspection.")
    for ns in det.get("not_significant", []):
        notes.append(f"Not significant: an H1 feature passed the detection score, but its death/birth ratio is "
                     f"what noise of this kind produces (universal-null p = {ns['p_value']:.2g} ≥ "
                     f"{det.get('alpha', 0.05):g}, Bonferroni over the H1 features), so it is not reported as a "
                     "loop and no phase is given (--loop-rule confirmed_gap keeps it).")
    if det.get("rescued"):
        r = det["rescued"]
        why = ("the other spectral distance disagreed" if r["reason"] == "unconfirmed"
               else "their lifetimes are below the detection rule's floor")
        notes.append(f"Found by their significance: {why}, but {len(r['rows'])} H1 feature(s) have p < {r['alpha']:g} "
                     "under the universal null, which noise did not produce in any benchmark run, so they are "
                     "reported (--loop-rule confirmed_gap would report none).")
    alpha = det.get("alpha", 0.05)
    for i, lp in enumerate(summary["loops"]):
        p = lp.get("p_value")
        where = ", median over the subsamples that found it" if "prevalence" in lp else ""
        if p is None:
            continue
        if p < alpha:
            notes.append(f"Loop {i + 1} is significant: p = {p:.2g} under the universal null distribution of "
                         f"death/birth ratios (Bobrowski and Skraba 2023), Bonferroni-corrected{where}.")
        else:
            notes.append(f"Low confidence in loop {i + 1}: its death/birth ratio is within what noise produces "
                         f"(universal-null p = {p:.2g} ≥ {alpha:g}{where}). The second distance agrees"
                         + (f" and {lp['n_runs']} subsamples found it" if "prevalence" in lp else "")
                         + ", so it is reported, but check it against known biology (for the cell cycle: the "
                           "phase against cell-cycle scores) before trusting it. Thick loops with unevenly spread "
                           "cells can also have small ratios (BENCHMARKS.md, 'Evidence for each loop').")
    check = det.get("confirmation")
    if check and "unconfirmed" in det:
        u = det["unconfirmed"]
        notes.append(f"Not confirmed: {u['distance']} proposes {u['n_loops']} loop(s) (s = {u['score']:.2f}), but "
                     f"{check['distance']} on the same graph finds {check['n_loops']}, so the verdict is no loop "
                     "(confirm=False keeps the first reading); the diagram shown is the first distance's.")
    elif check:
        notes.append(f"Confirmed: {check['distance']} on the same graph finds the same number of loops "
                     f"(s = {check['score']:.2f}).")
    ens = summary.get("ensemble")
    if ens:
        B = ens["n_subsamples"]
        found = [f"loop {i + 1} in {lp['n_runs']} of {B} (prevalence {lp['prevalence']:.2f})"
                 for i, lp in enumerate(summary["loops"])]
        dropped = [c for c in ens["clusters"] if not c["reported"]]
        notes.append(f"Whole dataset: {B} random subsamples of {ens['subsample_size']} of the {summary['n_input']} "
                     f"points, each analysed alone; " + ("; ".join(found) if found else "no loop in a majority of them")
                     + (f". Not reported (found in fewer than {ens['min_prevalence']:.0%} of the subsamples): "
                        + ", ".join(f"{len(c['runs'])} of {B}" for c in dropped) if dropped else "") + ".")
        if ens.get("stopped_early"):
            notes.append(f"The first {B} of the {ens['n_planned']} planned subsamples agreed unanimously, so the "
                         f"run stopped there: the other {ens['n_planned'] - B} could not have changed which loops "
                         "are reported (--early-stop 0 runs them all).")
    return notes


def _img(b64, alt):
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(rows, header):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dgms_from_summary(summary):
    out = []
    for dim in range(len(summary["diagrams"])):
        bars = summary["diagrams"][f"H{dim}"]
        out.append(np.array([[b, np.inf if d is None else d] for b, d in bars], dtype=float).reshape(-1, 2))
    return out


def render_html(summary: dict, points=None, index=None, per_point: list[dict] = (),
                extra_sections: list[tuple[str, str]] = ()) -> str:
    """The report as an HTML string.

    ``points``: the (n_points × p) points the run used, for the 2-D view; ``index``: their
    row ids in the input (the ids the summary's birth edges use; default 0..n-1).
    ``per_point``: for each loop, a dict with ``phase`` and ``on_loop`` arrays over the
    input points (from the pipeline's localisation); adds the θ-coloured view with the
    representative cycle and a θ histogram per loop.
    ``extra_sections``: (title, html) pairs appended by later stages (e.g. embedding).
    """
    dgms = _dgms_from_summary(summary)
    det = summary["detection"]
    # H1 rows of the detected loops: match by (birth, death)
    h1 = dgms[1] if len(dgms) > 1 else np.zeros((0, 2))
    highlight = []
    for lp in summary["loops"]:
        hit = np.flatnonzero(np.isclose(h1[:, 0], lp["birth"]) & np.isclose(h1[:, 1], lp["death"]))
        if len(hit):
            highlight.append(int(hit[0]))
    figs = [
        _img(figure_png(lambda ax: plotting.diagram(ax, dgms, highlight)), "persistence diagram"),
        _img(figure_png(lambda ax: plotting.barcode(ax, dgms, dims=tuple(range(1, len(dgms))) or (0,))), "barcode"),
        _img(figure_png(lambda ax: plotting.detection_scores(ax, det["scores"], det["n_loops"])), "detection scores"),
    ]
    if points is not None:
        Y = plotting.pca_2d(points)
        pos = {int(v): i for i, v in enumerate(index if index is not None else range(len(points)))}
        edges = [(pos[a], pos[b]) for a, b in (lp["birth_edge"] for lp in summary["loops"])
                 if a in pos and b in pos]
        figs.append(_img(figure_png(lambda ax: plotting.points_2d(ax, Y, edges=edges,
                                                                  title="PCA of the points"), (5, 5)), "PCA view"))
        sel = np.asarray(index if index is not None else range(len(points)))
        for i, (lp, arrays) in enumerate(zip(summary["loops"], per_point)):
            if "phase" not in arrays:
                continue
            cyc = [[pos[v] for v in lp.get("cycle", []) if v in pos]]
            theta = np.asarray(arrays["phase"])[sel]
            figs.append(_img(figure_png(lambda ax: plotting.points_2d(
                ax, Y, color=theta, cycles=cyc, cmap="twilight", colorbar_label="θ",
                title=f"loop {i + 1}: points coloured by θ, representative cycle"), (5.6, 5)), f"phase of loop {i + 1}"))
            figs.append(_img(figure_png(lambda ax: plotting.phase_histogram(
                ax, arrays["phase"], arrays.get("on_loop"), title=f"loop {i + 1}: θ of all input points")),
                f"phase histogram of loop {i + 1}"))
    verdict = {0: "no loop detected"}.get(det["n_loops"], f"{det['n_loops']} loop(s) detected")
    caveat = "".join(f"<p>{html.escape(note)}</p>" for note in verdict_notes(summary))
    score_rows = [(m, f"{s:.3f}", "←" if int(m) == det["n_loops"] else "") for m, s in det["scores"].items()]
    loop_rows = [(i + 1, f"{lp['birth']:.4g}", f"{lp['death']:.4g}", f"{lp['persistence']:.4g}",
                  f"{lp['birth_edge'][0]}–{lp['birth_edge'][1]}", len(lp.get("cycle", [])), lp.get("n_on_loop", ""),
                  f"{lp['prevalence']:.2f}" if "prevalence" in lp else "",
                  f"{lp['p_value']:.2g}" if lp.get("p_value") is not None else "")
                 for i, lp in enumerate(summary["loops"])]
    param_rows = sorted(summary["params"].items())
    time_rows = [(k, f"{v:.2f}") for k, v in summary["timings_s"].items()]
    sections = [
        ("Result", f"<p class='verdict'>{html.escape(verdict)} — detection score "
                   f"{det['score']:.3f} with the {html.escape(summary['distance'])} distance on "
                   f"{summary['n_points']} points.</p>{caveat}"),
        ("Detection scores", _table(score_rows, ["m", "s_m", "chosen"])),
        ("Detected loops", _table(loop_rows, ["loop", "birth", "death", "persistence", "birth edge", "cycle length",
                                    "points on loop", "prevalence (share of subsamples)",
                                    "p-value (universal null)"])
         if loop_rows else "<p>none</p>"),
        ("Figures", "<div class='figs'>" + "".join(figs) + "</div>"),
        *extra_sections,
        ("Parameters", _table(param_rows, ["parameter", "value"])),
        ("Timings (s)", _table(time_rows, ["stage", "seconds"])),
    ]
    body = "".join(f"<h2>{html.escape(t)}</h2>{h}" for t, h in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>topoembed report: {html.escape(str(summary['input']))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}
.figs img{{max-width:48%;margin:.3em}}.verdict{{font-size:1.2em}}</style></head>
<body><h1>topoembed report</h1><p>Input: <code>{html.escape(str(summary['input']))}</code> ·
topoembed {html.escape(str(summary['version']))}</p>{body}</body></html>
"""


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
