"""Matplotlib drawings shared by ``te.pl`` and the HTML report. Each draws on a given ``ax``."""
from __future__ import annotations

import numpy as np

__all__ = ["diagram", "barcode", "points_2d", "detection_scores", "pca_2d", "phase_histogram"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def _finite_max(dgms):
    vals = [d[np.isfinite(d)] for d in dgms if len(d)]
    vals = np.concatenate(vals) if vals else np.array([1.0])
    return float(vals.max()) if len(vals) else 1.0


def diagram(ax, dgms, highlight=None, title="Persistence diagram"):
    """Birth–death scatter per dimension; infinite deaths drawn on a dashed line at the top.

    ``highlight``: H1 row indices of detected loops, circled.
    """
    top = _finite_max(dgms) * 1.05 or 1.0
    inf_y = top * 1.05
    ax.plot([0, inf_y], [0, inf_y], color="0.6", lw=0.8)
    ax.axhline(inf_y, color="0.6", lw=0.8, ls="--")
    for dim, dgm in enumerate(dgms):
        dgm = np.asarray(dgm).reshape(-1, 2)
        if not len(dgm):
            continue
        y = np.where(np.isfinite(dgm[:, 1]), dgm[:, 1], inf_y)
        ax.scatter(dgm[:, 0], y, s=10, color=_COLORS[dim % 4], label=f"H{dim}", alpha=0.8)
        if dim == 1 and highlight:
            h = np.asarray(highlight, dtype=int)
            ax.scatter(dgm[h, 0], y[h], s=90, facecolors="none", edgecolors="k", lw=1.2, label="detected loop")
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def barcode(ax, dgms, dims=(1,), max_bars=40, title="Barcode"):
    """Horizontal bars (longest first) for the given dimensions; infinite bars run to the edge."""
    top = _finite_max(dgms) * 1.05 or 1.0
    y = 0
    for dim in dims:
        if dim >= len(dgms):
            continue
        dgm = np.asarray(dgms[dim]).reshape(-1, 2)
        death = np.where(np.isfinite(dgm[:, 1]), dgm[:, 1], top)
        order = np.argsort(-(death - dgm[:, 0]))[:max_bars]
        for i in order:
            ax.plot([dgm[i, 0], death[i]], [y, y], color=_COLORS[dim % 4], lw=2)
            y += 1
        y += 1
    ax.set_yticks([])
    ax.set_xlabel("filtration value")
    ax.set_title(title + " (" + ", ".join(f"H{d}" for d in dims) + f"; longest {max_bars})")
    return ax


def pca_2d(X):
    """First two principal components of X (n × p), deterministic sign."""
    Xc = np.asarray(X, dtype=np.float64) - np.mean(X, axis=0)
    if Xc.shape[1] == 1:
        return np.c_[Xc[:, 0], np.zeros(len(Xc))]
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    Y = U[:, :2] * S[:2]
    signs = np.sign(Vt[:2, np.argmax(np.abs(Vt[:2]), axis=1)].diagonal())
    return Y * np.where(signs == 0, 1, signs)


def points_2d(ax, Y, color=None, edges=(), cycles=(), cmap="viridis", title="2-D view", s=6, colorbar_label=None,
              vmin=None, vmax=None):
    """Scatter of 2-D points; ``edges`` (pairs) drawn as thick segments, ``cycles`` as closed paths.

    A cyclic ``cmap`` ("twilight", "hsv") gets the full circle [0, 2π] unless vmin/vmax say otherwise.
    """
    if cmap in ("twilight", "twilight_shifted", "hsv") and vmin is None and vmax is None:
        vmin, vmax = 0.0, 2 * np.pi
    if color is None:
        sc = ax.scatter(Y[:, 0], Y[:, 1], c="0.5", s=s, lw=0)
    else:
        sc = ax.scatter(Y[:, 0], Y[:, 1], c=color, s=s, cmap=cmap, lw=0, vmin=vmin, vmax=vmax)
    if color is not None and colorbar_label is not None:
        ax.figure.colorbar(sc, ax=ax, label=colorbar_label)
    for i, cyc in enumerate(cycles):
        c = np.asarray(list(cyc) + [cyc[0]], dtype=int)
        ax.plot(Y[c, 0], Y[c, 1], color=_COLORS[(i + 1) % 4], lw=1.5, label=f"cycle {i + 1}")
    for i, (a, b) in enumerate(edges):
        ax.plot(Y[[a, b], 0], Y[[a, b], 1], color="k", lw=3, solid_capstyle="round")
        ax.scatter(Y[[a, b], 0], Y[[a, b], 1], color=_COLORS[(i + 1) % 4], s=50, zorder=3,
                   edgecolors="k", label=f"birth edge, loop {i + 1}")
    if len(edges) or len(cycles):
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def detection_scores(ax, scores, n_loops=None, title="Detection scores s_m"):
    """Bar chart of s_m per number of loops m; the chosen m highlighted."""
    ms = sorted(int(m) for m in scores)
    vals = [scores[m] if m in scores else scores[str(m)] for m in ms]
    colors = ["#d62728" if (n_loops and m == n_loops) else "0.6" for m in ms]
    ax.bar(ms, vals, color=colors)
    ax.set_ylim(0, 1.05)
    ax.set_xticks(ms)
    ax.set_xlabel("number of loops m")
    ax.set_ylabel("s_m")
    ax.set_title(title)
    return ax


def phase_histogram(ax, phase, on_loop=None, bins=24, title="Circular coordinate θ"):
    """Histogram of θ in [0, 2π) (all points, and those on the loop when given)."""
    edges = np.linspace(0, 2 * np.pi, bins + 1)
    phase = np.asarray(phase, dtype=float)
    ok = np.isfinite(phase)
    ax.hist(phase[ok], bins=edges, color="0.7", label="all points")
    if on_loop is not None:
        on = np.asarray(on_loop, dtype=bool) & ok
        ax.hist(phase[on], bins=edges, color=_COLORS[0], alpha=0.8, label="on loop")
        ax.legend(fontsize=8)
    ax.set_xlim(0, 2 * np.pi)
    ax.set_xticks(np.linspace(0, 2 * np.pi, 5))
    ax.set_xticklabels(["0", "π/2", "π", "3π/2", "2π"])
    ax.set_xlabel("θ")
    ax.set_ylabel("points")
    ax.set_title(title)
    return ax
