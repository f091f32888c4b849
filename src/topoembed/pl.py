"""Plotting on AnnData (scanpy style): each function takes ``ax=``, ``show=`` and ``save=``.

They read what ``te.tl`` stored under ``key`` (also after ``write_h5ad``/``read_h5ad``) and
draw with :mod:`topoembed.plotting`, the same drawings the HTML report uses.
``show=True`` calls ``plt.show()`` and returns None; ``show=False`` returns the axes. ``show=None``
(the default) is scanpy's: shown where ``sc.settings.autoshow`` is on (the default), except that a
plot drawn into a given ``ax`` returns it, so a figure of several panels is composed first.
``save`` is a file name (any format matplotlib knows, e.g. ``"diagram.pdf"``), or True for
scanpy's place: ``sc.settings.figdir``/topoembed_<plot>.<``sc.settings.file_format_figs``>.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import groups, plotting, verdict
from ._anndata import as_list, stored_entry
from ._validate import InputError, check_choice
from .pp import DEFAULT_KEY

log = logging.getLogger(__name__)

__all__ = ["diagram", "barcode", "detection", "loop", "phase"]


def __dir__():  # tab completion shows the API, not the modules this one imports (np, logging, ...)
    return sorted(__all__)


def _entry(adata, key, need, group=None):
    step = {"diagrams": "te.tl.persistent_homology", "detection": "te.tl.detect_loops"}[need]
    return stored_entry(adata, key, need, step=f"te.tl.run(adata) or {step}(adata)", group=group)


def _group_cells(adata, key, group):
    """The cells of ``group`` (a run of ``te.tl.run(adata, groupby=...)``), in the order its run
    saw them; all of ``adata`` where ``group`` is None."""
    if group is None:
        return adata
    from .groups import positions

    return adata[positions(adata, adata.uns[key]["groupby"])[str(group)]]


def _dgms(entry):
    d = entry["diagrams"]
    return [np.asarray(d[f"H{i}"]).reshape(-1, 2) for i in range(len(d))]


def _finish(drawn, show, save, name, given_ax):
    """Save and show the plot ``drawn`` (see the module docstring); ``given_ax``: the caller's ``ax``."""
    import matplotlib.pyplot as plt

    if save is True:  # scanpy's way: its figure folder and format
        save = _scanpy_figure_path(name)
    if save:
        drawn.figure.savefig(save, bbox_inches="tight")
        log.info("saved the figure to %s", save)
    if show is None:  # as scanpy's sc.settings.autoshow; a panel of a figure the caller composes is not shown
        import scanpy as sc

        show = given_ax is None and bool(sc.settings.autoshow)
    if show:
        plt.show()
        return None
    return drawn


def _scanpy_figure_path(name: str) -> Path:
    """Where ``save=True`` writes, as scanpy's ``save=True`` does: ``sc.settings.figdir``
    (./figures), named after the plot, in ``sc.settings.file_format_figs`` (pdf by default)."""
    import scanpy as sc

    folder, fmt = Path(sc.settings.figdir), str(sc.settings.file_format_figs)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"topoembed_{name}.{fmt}"


def _ax(ax, figsize=(4.5, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, layout="constrained")[1]  # labels inside the figure, for any savefig


def _highlight(entry, dgm1):
    rows = []
    for lp in as_list(entry.get("loops", {})):  # diagrams before detect_loops: none
        hit = np.flatnonzero(np.isclose(dgm1[:, 0], lp["birth"]) & np.isclose(dgm1[:, 1], lp["death"]))
        rows += hit[:1].tolist()
    return rows


def diagram(adata, key: str = DEFAULT_KEY, *, scale: str = "H1", group=None, ax=None, show: bool | None = None,
            save: str | bool | None = None):
    """Persistence diagram, detected loops ringed; ``scale="H1"`` (default) fits the axes to
    the H1 features with H0 in an inset, ``"all"`` puts every dimension on one scale.
    ``group``: that group's, after ``te.tl.run(adata, groupby=...)`` (so in every function here)."""
    from .loops import MIN_RATIO

    check_choice(scale, ("H1", "all"), "scale")
    entry = _entry(adata, key, "diagrams", group)
    dgms = _dgms(entry)
    hl = _highlight(entry, dgms[1]) if len(dgms) > 1 else None
    drawn = plotting.diagram(_ax(ax), dgms, hl, scale=scale, min_ratio=MIN_RATIO)
    return _finish(drawn, show, save, "diagram", ax)


def barcode(adata, key: str = DEFAULT_KEY, *, dims=(1,), max_bars: int = 40, group=None, ax=None,
            show: bool | None = None, save: str | bool | None = None):
    """Barcode of the longest bars in the given dimensions, sorted, detected loops highlighted."""
    entry = _entry(adata, key, "diagrams", group)
    dgms = _dgms(entry)
    missing = [d for d in np.atleast_1d(dims).tolist() if not isinstance(d, int) or not 0 <= d < len(dgms)]
    if missing:
        raise InputError(f"dims={dims!r}: the run under key {key!r} has diagrams H0..H{len(dgms) - 1} only "
                         "(maxdim=2 in te.tl.run gives H2)")
    hl = _highlight(entry, dgms[1]) if len(dgms) > 1 else None
    drawn = plotting.barcode(_ax(ax), dgms, dims=dims, max_bars=max_bars, highlight=hl)
    return _finish(drawn, show, save, "barcode", ax)


def detection(adata, key: str = DEFAULT_KEY, *, group=None, ax=None, show: bool | None = None,
              save: str | bool | None = None):
    """Detection scores s_1..s_5, the chosen number of loops highlighted."""
    from .loops import MIN_SCORE

    det = _entry(adata, key, "detection", group)["detection"]
    scores = {int(m): float(s) for m, s in det["scores"].items()}
    drawn = plotting.detection_scores(_ax(ax), scores, int(det["n_loops"]), min_score=MIN_SCORE)
    return _finish(drawn, show, save, "detection", ax)


def loop(adata, basis: str | None = None, key: str = DEFAULT_KEY, *, color: str | None = None,
         by: str | None = None, which: int = 0, group=None, ax=None, show: bool | None = None,
         save: str | bool | None = None):
    """Cells on a 2-D view with each found loop's birth edge (and cycle, once loops are
    localised); coloured by ``obs[color]`` or, if present, the loop phase.

    ``basis``: an ``obsm`` key (``"umap"`` or ``"X_umap"``); default: the UMAP if
    ``obsm["X_umap"]`` exists, else the first two principal components of the points the
    run analysed (``use_rep``), so the plot works right after ``te.tl.run``. The title says
    the verdict (:mod:`topoembed.verdict`): a possible loop is named so, and with no loop the
    frame says that there is nothing to mark. ``by="phase"`` or ``"membership"``: the HTML
    report's view of loop ``which`` (0-based) instead: its phase θ, or on/off the loop, with
    its representative cycle; ``group``: that group's cells and loops."""
    entry = _entry(adata, key, "detection", group)
    adata = _group_cells(adata, key, group)
    name, Y = _basis(adata, entry, basis)
    found = as_list(entry.get("loops", {}))
    edges = [tuple(int(v) for v in lp["birth_edge"]) for lp in found]
    cycles = [np.asarray(lp["cycle"], dtype=int) for lp in found if "cycle" in lp]
    if by is not None:
        return _finish(_loop_view(adata, key, Y, cycles, by, which, name, ax), show, save, "loop", ax)
    col = label = categories = None
    if color is not None:
        if color not in adata.obs:
            raise InputError(f"color {color!r} is not a column of adata.obs")
        series, label = adata.obs[color], color
        col = series.to_numpy()
        if hasattr(series, "cat") or col.dtype.kind not in "fiu":  # a categorical, strings, booleans: a colour each
            categories = groups.category_order(series)
            col = series.astype(str).to_numpy()
    elif f"{key}_phase" in adata.obs and np.isfinite(adata.obs[f"{key}_phase"].to_numpy(dtype=float)).any():
        col, label = adata.obs[f"{key}_phase"].to_numpy(), "loop phase θ"
    a = _ax(ax, (5, 5))
    cmap = "twilight" if label == "loop phase θ" else "viridis"
    headline = verdict.decide(found, dict(entry["detection"])).headline()
    plotting.points_2d(a, Y, color=col, edges=edges, cycles=cycles, cmap=cmap, title=f"{name}: {headline}",
                       colorbar_label=label, categories=categories)
    if not found:
        a.text(0.5, 0.02, "no loop found: nothing to mark", transform=a.transAxes, ha="center", va="bottom",
               fontsize=9, color="0.3")
    return _finish(a, show, save, "loop", ax)


def phase(adata, keys=None, key: str = DEFAULT_KEY, *, which: int = 0, layer: str | None = None,
          standard_scale: bool | None = None, bins: int = 24, group=None, ax=None, show: bool | None = None,
          save: str | bool | None = None):
    """Values along loop ``which``'s phase θ: each of ``keys`` (``obs`` columns or genes,
    read as scanpy's ``adata.obs_vector``, from ``layer`` for genes) against θ, with its mean per
    bin of θ (``bins``) as a closed line. It shows whether θ reads as the cycle: after
    ``te.pp.recipe_cell_cycle`` the default keys are its S and G2/M scores, which should rise and
    fall once each round the loop, S before G2/M (the dashed lines: where ``te.tl.run`` put
    G1/S, S and G2/M; tricycle draws the same view). ``standard_scale``: scale each key to
    [0, 1] over the cells (default: where there are several keys), so that their trends share
    an axis. ``group``: that group's cells, after ``te.tl.run(adata, groupby=...)``."""
    import pandas as pd

    from .pp import SCORE_COLUMNS, score_columns

    entry = _entry(adata, key, "detection", group)
    adata = _group_cells(adata, key, group)
    found = as_list(entry.get("loops", {}))
    col = f"{key}_phase" + (f"_{which + 1}" if which else "")
    if not found:  # "run te.tl.run first" was the advice here, right after a run that found no loop
        headline = verdict.decide(found, dict(entry["detection"])).headline()
        raise InputError(f"the run under key {key!r} found no loop ({headline}), so no cell has a phase to draw "
                         "along; te.pl.loop(adata) and te.pl.diagram(adata) show what it found")
    if which >= len(found) or col not in adata.obs:
        raise InputError(f"which={which} (loop {which + 1}) has no phase in adata.obs[{col!r}] ({len(found)} "
                         f"loop(s) under key {key!r}): which counts the loops from 0, and te.tl.run(adata) writes "
                         "their phases")
    theta = adata.obs[col].to_numpy(dtype=float)
    if not np.isfinite(theta).any():
        why = str(found[which].get("phase_withheld", "no phase"))
        raise InputError(f"loop {which + 1}'s phase is withheld ({why})" + (
            "" if "phase_low_confidence" in why else "; te.tl.run(adata, phase_low_confidence=True) gives it"))
    if keys is None:
        keys = list(score_columns(adata) or ())
        if not keys:
            raise InputError("keys not given, and adata.obs has no cell-cycle scores (te.pp.recipe_cell_cycle writes "
                             f"{list(SCORE_COLUMNS)}, sc.tl.score_genes_cell_cycle ['S_score', 'G2M_score']): pass "
                             "obs columns or genes, e.g. keys=['MKI67', 'TOP2A']")
    keys = [keys] if isinstance(keys, str) else list(keys)
    series = {}
    for k in keys:
        if k not in adata.obs and k not in adata.var_names:
            raise InputError(f"{k!r} is neither a column of adata.obs nor a gene of adata.var_names")
        if k in adata.obs and not pd.api.types.is_numeric_dtype(adata.obs[k]):
            raise InputError(f"adata.obs[{k!r}] is not numeric ({adata.obs[k].dtype}); pl.phase draws numbers "
                             "against θ (for a category, te.pl.loop(adata, color=...))")
        series[k] = np.asarray(adata.obs_vector(k, layer=layer), dtype=float)
    scaled = bool(standard_scale) if standard_scale is not None else len(series) > 1
    if scaled:
        series = {k: (v - np.nanmin(v)) / max(float(np.nanmax(v) - np.nanmin(v)), 1e-300) for k, v in series.items()}
    call = verdict.decide(found, dict(entry["detection"])).loops[which]
    return _finish(plotting.values_along_phase(
        _ax(ax, (5.6, 3.6)), theta, series, bins=bins, orientation=found[which].get("phase_orientation"),
        title=f"Along loop {which + 1}'s phase" + ("" if call.supported else f" ({call.level})"),
        ylabel="scaled to [0, 1]" if scaled else keys[0] if len(keys) == 1 else "value"), show, save, "phase", ax)


def _basis(adata, entry, basis):
    """(name, n × 2 coordinates) of the view: ``obsm[basis]`` / ``obsm["X_" + basis]``, or by
    default the UMAP when there is one, else a PCA of the analysed points."""
    if basis is None:
        if "X_umap" in adata.obsm:
            return "X_umap", np.asarray(adata.obsm["X_umap"])[:, :2]
        from ._anndata import points

        rep = str((entry.get("params") or {}).get("use_rep", "X"))
        return f"PCA of {rep}", plotting.pca_2d(points(adata, None if rep == "X" else rep))
    obsm_key = basis if basis in adata.obsm else f"X_{basis}"
    if obsm_key not in adata.obsm:
        raise InputError(f"basis {basis!r} not found in adata.obsm ({list(adata.obsm.keys())}); compute it first "
                         "(e.g. sc.pp.neighbors(adata, use_rep=...); sc.tl.umap(adata)), or leave basis out for "
                         "the PCA of the analysed points")
    return obsm_key, np.asarray(adata.obsm[obsm_key])[:, :2]


def _loop_view(adata, key, Y, cycles, by, which, basis, ax):
    if by not in ("phase", "membership"):
        raise InputError(f"by={by!r} must be 'phase' or 'membership'")
    col = f"{key}_{'phase' if by == 'phase' else 'on_loop'}" + (f"_{which + 1}" if which else "")
    if col not in adata.obs or which >= len(cycles):
        raise InputError(f"which={which} (loop {which + 1}) has no adata.obs[{col!r}] or cycle ({len(cycles)} "
                         f"loop(s) with a cycle under key {key!r}): run te.tl.run(adata) (localize on)")
    values = adata.obs[col].to_numpy()
    kw = {"phase": values.astype(float)} if by == "phase" else {"on_loop": values.astype(bool)}
    return plotting.loop_view(_ax(ax, (5.6, 4.8)), Y, cycle=cycles[which], loop=which, basis=basis, **kw)
