"""Matplotlib drawings shared by ``te.pl`` and the HTML report. Each draws on a given ``ax``.

Detected loops get one colour each (:func:`loop_color`), the same in the diagram, the
barcode and the 2-D views, so "loop 1" is the same red everywhere.
"""
from __future__ import annotations

import numpy as np

__all__ = ["diagram", "barcode", "points_2d", "detection_scores", "pca_2d", "phase_histogram", "loop_view",
           "values_along_phase", "binned_along_phase", "loop_color", "OTHER_BAR"]

_COLORS = ["#2ca02c", "#1f77b4", "#17becf", "#7f7f7f"]  # H0, H1, H2, H3
_LOOP_COLORS = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
#: colour of the bars that are not detected loops
OTHER_BAR = "#9e9e9e"


def loop_color(i: int) -> str:
    """Colour of detected loop ``i`` (0-based) in every plot."""
    return _LOOP_COLORS[i % len(_LOOP_COLORS)]


def _finite(values):
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def _top(dgms):
    """Largest finite birth or death over the given diagrams (1 when there is none)."""
    vals = np.concatenate([_finite(d) for d in dgms] or [np.zeros(0)])
    return float(vals.max()) if len(vals) and vals.max() > 0 else 1.0


def _scatter_dims(ax, dgms, top, dims, s=10):
    inf_y = top * 1.04
    for dim in dims:
        dgm = np.asarray(dgms[dim], dtype=float).reshape(-1, 2)
        if len(dgm):
            y = np.where(np.isfinite(dgm[:, 1]), dgm[:, 1], inf_y)
            ax.scatter(dgm[:, 0], y, s=s, color=_COLORS[dim % 4], label=f"H{dim}", alpha=0.7, lw=0)
    return inf_y


def diagram(ax, dgms, highlight=None, title="Persistence diagram", scale="H1", inset=True, min_ratio=None):
    """Birth–death scatter; infinite deaths drawn on a dashed line at the top.

    ``highlight``: H1 row indices of the detected loops (loop i = ``highlight[i]``), ringed and
    labelled in :func:`loop_color`. ``scale="H1"`` (default): the axes span the H1 points only
    (H0 dies far later and would squash them into a dot), H0 and H1 at full scale in a small
    inset when ``inset``; ``scale="all"``: every dimension on one scale. ``min_ratio``: draw the
    line death = min_ratio · birth (features below it are not scored).
    """
    dgms = [np.asarray(d, dtype=float).reshape(-1, 2) for d in dgms]
    h1_scaled = scale == "H1" and len(dgms) > 1 and len(_finite(dgms[1]))
    dims = range(1, len(dgms)) if h1_scaled else range(len(dgms))
    top = _top([dgms[d] for d in dims]) * 1.08
    inf_y = _scatter_dims(ax, dgms, top / 1.08, dims)
    ax.plot([0, top], [0, top], color="0.6", lw=0.8)
    if any(np.isinf(dgms[d][:, 1]).any() for d in dims):
        ax.axhline(inf_y, color="0.6", lw=0.8, ls="--")
        ax.text(0, inf_y, " ∞", va="bottom", fontsize=8, color="0.4")
    if min_ratio:
        ax.plot([0, top / min_ratio], [0, top], color="0.6", lw=0.8, ls=":",
                label=f"death = {min_ratio:g} × birth")
    if highlight is not None and len(dgms) > 1:
        for i, row in enumerate(highlight):
            b, d = dgms[1][int(row)]
            d = d if np.isfinite(d) else inf_y
            ax.scatter([b], [d], s=140, facecolors="none", edgecolors=loop_color(i), lw=2,
                       label=f"loop {i + 1}", zorder=3)
            ax.annotate(f"loop {i + 1}", (b, d), xytext=(6, 6), textcoords="offset points",
                        color=loop_color(i), fontsize=9, fontweight="bold")
    lo = _lower(dgms, dims, top)
    ax.set_xlim(lo, top)
    ax.set_ylim(lo, top * 1.06)
    _sci(ax)
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_title(title + (" (H1 scale)" if h1_scaled else ""))
    # below the diagonal is empty: the legend and the inset go there, clear of the loops
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.38), fontsize=8)
    if h1_scaled and inset and len(dgms[0]):
        sub = ax.inset_axes([0.64, 0.04, 0.33, 0.28])
        full = _top(dgms)
        _scatter_dims(sub, dgms, full, range(len(dgms)), s=4)
        sub.plot([0, full], [0, full], color="0.6", lw=0.6)
        sub.add_patch(_box(top))
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title("all, full scale", fontsize=7, pad=2)
    return ax


def _lower(dgms, dims, top):
    """Lower axis limit: 0, or just below the earliest birth when every birth is far from 0."""
    births = np.concatenate([_finite(dgms[d][:, 0]) for d in dims] or [np.zeros(0)])
    first = float(births.min()) if len(births) else 0.0
    return 0.0 if first < 0.3 * top else first - 0.1 * (top - first)


def _sci(ax, axes="both"):
    """Short tick labels (×10^k offset) for the tiny values of spectral distances."""
    from matplotlib.ticker import MaxNLocator

    ax.ticklabel_format(axis=axes, style="sci", scilimits=(-2, 3), useMathText=True)
    if axes in ("both", "x"):
        ax.xaxis.set_major_locator(MaxNLocator(5))
    if axes in ("both", "y"):
        ax.yaxis.set_major_locator(MaxNLocator(5))


def _box(side):
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0), side, side, fill=False, ec="k", lw=0.8)


def barcode(ax, dgms, dims=(1,), max_bars=40, highlight=None, title="Barcode"):
    """Horizontal bars sorted by lifetime, longest at the top; infinite bars run to the edge.

    ``highlight``: H1 row indices of the detected loops, drawn thick in :func:`loop_color`
    and labelled; the other bars are grey (H1) or their dimension's colour.
    """
    dgms = [np.asarray(d, dtype=float).reshape(-1, 2) for d in dgms]
    dims = [d for d in dims if d < len(dgms)]
    right = _top([dgms[d] for d in dims]) * 1.05
    marked = {int(r): i for i, r in enumerate(highlight or [])}
    y, shown, total = 0, 0, 0
    for dim in dims:
        dgm = dgms[dim]
        death = np.where(np.isfinite(dgm[:, 1]), dgm[:, 1], right)
        order = np.argsort(-(death - dgm[:, 0]), kind="stable")[:max_bars]
        total += len(dgm)
        for row in order:
            loop = marked.get(int(row)) if dim == 1 else None
            color = loop_color(loop) if loop is not None else (OTHER_BAR if dim == 1 else _COLORS[dim % 4])
            ax.plot([dgm[row, 0], death[row]], [-y, -y], color=color, lw=4 if loop is not None else 2,
                    solid_capstyle="butt", label=f"loop {loop + 1}" if loop is not None else None)
            if loop is not None:
                ax.text(death[row], -y, f"  loop {loop + 1}", va="center", fontsize=8, color=color,
                        fontweight="bold")
            y += 1
            shown += 1
        y += 1
    ax.set_xlim(0, right * (1.15 if marked else 1.0))
    ax.set_ylim(-y, 1)
    ax.set_yticks([])
    _sci(ax, "x")
    ax.set_xlabel("filtration value (birth → death)")
    dim_names = ", ".join(f"H{d}" for d in dims)
    ax.set_title(f"{title} ({dim_names}: longest {shown} of {total}, sorted)")
    return ax


def pca_2d(X):
    """First two principal components of X (n × p), deterministic sign. One BLAS thread: on a
    busy machine a threaded SVD of 1,000 × 50 took 1 s instead of 0.01 s."""
    from threadpoolctl import threadpool_limits

    Xc = np.asarray(X, dtype=np.float64) - np.mean(X, axis=0)
    if Xc.shape[1] == 1:
        return np.c_[Xc[:, 0], np.zeros(len(Xc))]
    with threadpool_limits(1):
        U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    Y = U[:, :2] * S[:2]
    signs = np.sign(Vt[:2, np.argmax(np.abs(Vt[:2]), axis=1)].diagonal())
    return Y * np.where(signs == 0, 1, signs)


def _marker_size(n):
    return float(np.clip(12000.0 / max(n, 1), 1.0, 12.0))


def points_2d(ax, Y, color=None, edges=(), cycles=(), cmap="viridis", title="2-D view", s=None, colorbar_label=None,
              vmin=None, vmax=None, categories=None):
    """Scatter of 2-D points; ``edges`` (pairs) drawn as thick segments, ``cycles`` as closed paths.

    A cyclic ``cmap`` ("twilight", "hsv") gets the full circle [0, 2π] unless vmin/vmax say otherwise.
    With ``categories`` (in their order), ``color`` holds each point's category: one colour each,
    named in the legend (titled ``colorbar_label``), and points of none of them are not drawn.
    """
    s = _marker_size(len(Y)) if s is None else s
    if cmap in ("twilight", "twilight_shifted", "hsv") and vmin is None and vmax is None:
        vmin, vmax = 0.0, 2 * np.pi
    if color is None:
        sc = ax.scatter(Y[:, 0], Y[:, 1], c="0.5", s=s, lw=0)
    elif categories is not None:  # a category (cell line, sample)
        from matplotlib import colormaps

        palette = colormaps["tab20" if len(categories) > 10 else "tab10"]
        values = np.asarray(color)
        for i, cat in enumerate(categories):
            at = values == cat
            ax.scatter(Y[at, 0], Y[at, 1], color=palette(i % palette.N), s=s, lw=0, label=str(cat))
    else:
        sc = ax.scatter(Y[:, 0], Y[:, 1], c=color, s=s, cmap=cmap, lw=0, vmin=vmin, vmax=vmax)
    if color is not None and categories is None and colorbar_label is not None:
        ax.figure.colorbar(sc, ax=ax, label=colorbar_label, shrink=0.8)
    for i, cyc in enumerate(cycles):
        _draw_cycle(ax, Y, cyc, loop_color(i), f"cycle {i + 1}")
    for i, (a, b) in enumerate(edges):
        ax.plot(Y[[a, b], 0], Y[[a, b], 1], color="k", lw=3, solid_capstyle="round")
        ax.scatter(Y[[a, b], 0], Y[[a, b], 1], color=loop_color(i), s=50, zorder=3,
                   edgecolors="k", label=f"birth edge, loop {i + 1}")
    if len(edges) or len(cycles) or categories is not None:
        ax.legend(loc="best", fontsize=8, title=colorbar_label if categories is not None else None)
    _frame(ax, title)
    return ax


def _draw_cycle(ax, Y, cycle, color, label):
    if len(cycle):
        c = np.asarray(list(cycle) + [cycle[0]], dtype=int)
        ax.plot(Y[c, 0], Y[c, 1], color="w", lw=3.5, zorder=4)
        ax.plot(Y[c, 0], Y[c, 1], color=color, lw=1.8, zorder=5, label=label)


def _frame(ax, title):
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


def loop_view(ax, Y, phase=None, on_loop=None, cycle=(), loop=0, basis="PCA", title=None):
    """One detected loop on a 2-D view: points coloured by phase θ (``phase`` given) or by
    membership (``on_loop`` given, on-loop points in the loop's colour, the rest grey), with
    the loop's representative cycle (row indices into ``Y``) drawn as a closed path.
    Points without a phase (NaN) are drawn as small grey dots."""
    Y = np.asarray(Y, dtype=float)
    s = _marker_size(len(Y))
    color = loop_color(loop)
    if phase is not None:
        phase = np.asarray(phase, dtype=float)
        ok = np.isfinite(phase)
        if (~ok).any():
            ax.scatter(Y[~ok, 0], Y[~ok, 1], c="0.85", s=s, lw=0, label="no phase")
        sc = ax.scatter(Y[ok, 0], Y[ok, 1], c=phase[ok], cmap="hsv", vmin=0, vmax=2 * np.pi, s=s, lw=0)
        bar = ax.figure.colorbar(sc, ax=ax, shrink=0.8, ticks=np.linspace(0, 2 * np.pi, 5))
        bar.ax.set_yticklabels(["0", "π/2", "π", "3π/2", "2π"])
        bar.set_label("phase θ")
        what = "phase θ"
    else:
        on = np.asarray(on_loop, dtype=bool)
        ax.scatter(Y[~on, 0], Y[~on, 1], c="0.8", s=s, lw=0, label=f"off the loop ({int((~on).sum())})")
        ax.scatter(Y[on, 0], Y[on, 1], c=color, s=s, lw=0, alpha=0.7, label=f"on the loop ({int(on.sum())})")
        what = "membership"
    _draw_cycle(ax, Y, cycle, "k", "representative cycle")
    ax.legend(loc="upper right", fontsize=8, markerscale=max(1.0, 4 / np.sqrt(s)))
    _frame(ax, title or f"loop {loop + 1} on {basis}: {what}")
    return ax


def detection_scores(ax, scores, n_loops=None, title="Detection scores s_m", min_score=None):
    """Bar chart of s_m per number of loops m; the chosen m highlighted; ``min_score``: the
    threshold s_m must reach, drawn as a dashed line."""
    ms = sorted(int(m) for m in scores)
    vals = [scores[m] if m in scores else scores[str(m)] for m in ms]
    colors = [loop_color(0) if (n_loops and m == n_loops) else OTHER_BAR for m in ms]
    ax.bar(ms, vals, color=colors)
    if min_score is not None:
        ax.axhline(min_score, color="0.3", lw=0.8, ls="--")
        ax.text(ms[-1] + 0.45, min_score, f"{min_score:g}", va="bottom", ha="right", fontsize=8, color="0.3")
    for m, v in zip(ms, vals):
        ax.text(m, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_xticks(ms)
    ax.set_xlabel("number of loops m")
    ax.set_ylabel("s_m")
    ax.set_title(title + (f" (chosen: m = {n_loops})" if n_loops else " (no m chosen)"))
    return ax


def _mark_orientation(ax, orientation) -> None:
    """Dashed lines at G1/S (θ = 0) and where S and G2/M peak (a loop's ``phase_orientation``)."""
    for where, name in ((0.0, "G1/S"), (orientation["theta_S"], "S"), (orientation["theta_G2M"], "G2/M")):
        ax.axvline(where, color="k", lw=1, ls="--")
        ax.text(where, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="top", fontsize=8)


def _theta_axis(ax, orientation) -> None:
    ax.set_xlim(0, 2 * np.pi)
    ax.set_xticks(np.linspace(0, 2 * np.pi, 5))
    ax.set_xticklabels(["0", "π/2", "π", "3π/2", "2π"])
    ax.set_xlabel("θ (0 = G1/S; S, then G2/M)" if orientation else "θ")


def binned_along_phase(phase, values, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, mean of ``values`` per bin of θ in [0, 2π)): the trend of a value round the
    loop (NaN in a bin without points; points without a phase or a value are left out)."""
    phase, values = np.asarray(phase, dtype=float), np.asarray(values, dtype=float)
    ok = np.isfinite(phase) & np.isfinite(values)
    which = np.minimum((np.mod(phase[ok], 2 * np.pi) / (2 * np.pi) * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(which, weights=values[ok], minlength=bins) / count
    return (np.arange(bins) + 0.5) * 2 * np.pi / bins, np.where(count > 0, mean, np.nan)


def values_along_phase(ax, phase, series: dict, bins: int = 24, orientation=None, title="Along the loop",
                       ylabel="value"):
    """Each of ``series`` ({name: value per point}) against θ: its mean per bin of θ as a closed
    line (the circle's end joined to its start), and the points themselves where there is one
    series. ``orientation`` as in :func:`phase_histogram`."""
    phase = np.asarray(phase, dtype=float)
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=float)
        if len(series) == 1:
            ax.scatter(phase, values, s=_marker_size(len(phase)), c="0.6", alpha=0.5, linewidths=0, rasterized=True)
        centres, mean = binned_along_phase(phase, values, bins)
        color = "k" if len(series) == 1 else loop_color(i)
        ax.plot(np.r_[centres, centres[:1] + 2 * np.pi], np.r_[mean, mean[:1]], color=color, lw=2, label=name)
    if len(series) > 1:
        ax.legend(fontsize=8)
    if orientation:
        _mark_orientation(ax, orientation)
    _theta_axis(ax, orientation)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax


def phase_histogram(ax, phase, on_loop=None, bins=24, title="Circular coordinate θ", loop=0, orientation=None):
    """Histogram of θ in [0, 2π) (all points, and those on loop ``loop`` when given).
    ``orientation`` (a loop's ``phase_orientation``): mark G1/S at 0 and where S and G2/M peak."""
    edges = np.linspace(0, 2 * np.pi, bins + 1)
    phase = np.asarray(phase, dtype=float)
    ok = np.isfinite(phase)
    ax.hist(phase[ok], bins=edges, color="0.75", label="all points")
    if on_loop is not None:
        on = np.asarray(on_loop, dtype=bool) & ok
        ax.hist(phase[on], bins=edges, color=loop_color(loop), alpha=0.8, label="on the loop")
        ax.legend(fontsize=8)
    if orientation:
        _mark_orientation(ax, orientation)
    _theta_axis(ax, orientation)
    ax.set_ylabel("points")
    ax.set_title(title)
    return ax
