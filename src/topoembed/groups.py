"""One analysis per group of cells: ``te.tl.run(adata, groupby="sample")``.

Cell lines, donors or samples that cycle apart are analysed apart (McDavid's three sorted lines,
FUCCI's six individuals): one run per category of ``obs[groupby]``, each exactly the run of
``te.tl.run`` on ``adata[adata.obs[groupby] == g].copy()`` (same settings and seed), so a
group's verdict does not depend on the others. Their per-cell results fill one set of
``obs`` columns; each group's full record (verdict, loops, diagrams, ...) goes to
``uns[key]["groups"][g]``. Where the cells carry S and G2/M scores
(:func:`topoembed.pp.recipe_cell_cycle`), each group's phase is turned so that θ = 0 is its
G1/S boundary; without them :func:`align_phases` turns each group's phase to agree with the
largest group's on the representation they share. Either way one phase column compares
across groups.

This module moves data only; the analysis is :func:`topoembed.tl.run_result`'s, passed in as
``run_one``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ._anndata import as_list, check_adata, is_grouped
from ._progress import about
from ._validate import InputError
from .pipeline import Params
from .summary import NO_LOOP_REASON, PER_POINT

__all__ = ["categories", "check_group_sizes", "run_by_group", "verdict_table", "folder_names", "select", "sizes",
           "sizes_in_file", "positions", "read_by_a_run", "circle_map", "align_phases",
           "align_results", "run_grouped"]

#: Per-cell columns a run writes after its ``key_added`` (any loop suffix ``_2``, ...);
#: removed before a grouped run so that no group inherits an earlier run's values.
RUN_COLUMNS = (*PER_POINT, "phase_missing", "subsample")


def categories(adata, groupby: str) -> list[str]:
    """The groups of ``obs[groupby]`` in their order (a categorical's order, else sorted), as
    strings; InputError where the column is missing or has cells without a group."""
    check_adata(adata)
    if not isinstance(groupby, str) or groupby not in adata.obs:
        cats = [c for c in adata.obs.columns if isinstance(adata.obs[c].dtype, pd.CategoricalDtype)]
        raise InputError(f"groupby={groupby!r} is not a column of adata.obs"
                         + (f"; its categorical columns are {cats}" if cats else ""))
    col = adata.obs[groupby]
    if col.isna().any():
        raise InputError(f"{int(col.isna().sum())} cells have no {groupby!r} (NaN): give them a group, or "
                         f"leave them out (adata[adata.obs[{groupby!r}].notna()].copy())")
    return category_order(col)


def category_order(col: pd.Series) -> list[str]:
    """The values of an ``obs`` column in their order (a categorical's, else sorted), as strings:
    only those some cell holds, NaN left out (a group, a colour's legend)."""
    col = col.dropna()
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.astype(str))
        return [str(c) for c in col.cat.categories if str(c) in present]
    return sorted({str(v) for v in col})


def check_group_sizes(adata, groupby: str, settings: dict, small_input: bool = True) -> dict[str, np.ndarray]:
    """{group: its cells' positions}, after checking the run's ``settings`` (keyword arguments
    of :class:`topoembed.pipeline.Params` among others) on every group's number of cells as the
    front door does (with ``small_input`` :meth:`~topoembed.params.Params.for_small_input`
    first, then ``validate``), so that a group too small for them is named before any runs."""
    params = Params(**{k: v for k, v in settings.items() if k in Params.__dataclass_fields__})
    validate = lambda n: (params.for_small_input(n)[0] if small_input else params).validate(n)  # noqa: E731
    where = positions(adata, groupby)
    problems = []
    for g, idx in where.items():
        try:
            validate(len(idx))
        except InputError as exc:
            problems.append(f"{g!r} ({len(idx)} cells): {exc}")
    if problems:  # a column of numbers names thousands of one-cell groups: the first few say enough
        said = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"groupby={groupby!r}: {len(problems)} of its {len(where)} groups cannot be analysed with "
                         f"these settings: {said}. Leave them out, e.g. adata[~adata.obs[{groupby!r}].isin([...])]")
    return where


def positions(adata, groupby: str) -> dict[str, np.ndarray]:
    """{group: its cells' positions in ``adata``}, in :func:`categories`' order."""
    names = categories(adata, groupby)
    labels = adata.obs[groupby].astype(str).to_numpy()
    return {g: np.flatnonzero(labels == g) for g in names}


def select(adata, groupby: str, group):
    """A copy of the cells of ``group`` in ``obs[groupby]`` (``topoembed prepare --group``: one
    group as a sample of its own); InputError naming the groups where it is not one."""
    where = positions(adata, groupby)
    if str(group) not in where:
        raise InputError(f"group {group!r} is not a group of {groupby!r}: the groups are {list(where)}")
    return adata[where[str(group)]].copy()


def sizes(adata, groupby: str) -> dict[str, int]:
    """{group: its number of cells}, in :func:`categories`' order."""
    return {g: len(idx) for g, idx in positions(adata, groupby).items()}


def sizes_in_file(source, groupby: str) -> dict[str, int]:
    """:func:`sizes` of an AnnData input file (a workflow makes one sample of each group),
    reading only its ``obs`` (:func:`topoembed.io.read_obs`)."""
    from pathlib import Path

    import anndata

    from . import io

    path = Path(str(source))
    if not path.exists() or not io.is_anndata_input(path):
        raise InputError(f"groupby: {path} is not an AnnData input ({io.ANNDATA_INPUTS}), so it has no obs "
                         "column to group by")
    return sizes(anndata.AnnData(obs=io.read_obs(path)), groupby)


def folder_names(names, reserved=()) -> dict[str, str]:
    """{group: a folder name for its outputs}: the name with every character other than a letter,
    digit, ".", "-" or "_" replaced by "_", made unique (suffix ``_2``, ...) and never one of
    ``reserved`` (the files beside the folders). A name that is a folder name already keeps it:
    ``d_1_x`` is not moved to ``d_1_x_2`` by an earlier ``d 1/x``."""
    names = list(dict.fromkeys(names))
    bases = {}
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).strip(".") or "group"
        bases[name] = f"group_{base}" if base in reserved else base
    folders, taken = {}, set(reserved)
    for name in sorted(names, key=lambda g: bases[g] != str(g)):  # the names kept as they are first
        folder, i = bases[name], 1
        while folder in taken:
            i += 1
            folder = f"{bases[name]}_{i}"
        folders[name] = folder
        taken.add(folder)
    return {name: folders[name] for name in names}


def _is_run_column(name: str, key: str) -> bool:
    return re.fullmatch(re.escape(key) + "_(" + "|".join(RUN_COLUMNS) + r")(_\d+)?", name) is not None


def _fill(name: str, key: str):
    """The value of a combined column for the cells of a group whose run did not write it:
    the cells were all analysed (``subsample``), no loop of that number in their group."""
    field = name[len(key) + 1:]
    if field == "subsample":
        return True
    if field.startswith("phase_missing"):
        return NO_LOOP_REASON
    if field.startswith("on_loop"):
        return False
    return np.nan


def read_by_a_run(adata, use_rep: str | None, neighbors_key: str | None = None):
    """What a run on ``adata`` reads of it, no more: ``obs``, the points analysed (``X`` where
    ``use_rep`` is None or "X", else ``obsm[use_rep]``) and scanpy's graph under
    ``neighbors_key``. A group's cells are copied out of this rather than out of ``adata``, whose
    counts, layers and other representations no run reads: the peak memory of a run by group is
    ``adata`` and its largest group's points, not a copy of everything its largest group holds."""
    import anndata

    rep = None if use_rep in (None, "X") else use_rep
    obsp, uns = {}, {}
    if neighbors_key is not None and neighbors_key in adata.uns:
        info = adata.uns[neighbors_key]
        uns[neighbors_key] = info
        for name in (info.get("distances_key", "distances"), info.get("connectivities_key", "connectivities")):
            if name in adata.obsp:
                obsp[name] = adata.obsp[name]
    return anndata.AnnData(X=adata.X if rep is None else None, obs=adata.obs, var=adata.var if rep is None else None,
                           obsm={rep: adata.obsm[rep]} if rep is not None else None, obsp=obsp or None, uns=uns)


def run_by_group(adata, groupby: str, where: dict[str, np.ndarray], run_one, key: str, meta: dict,
                 neighbors_key: str | None = None) -> dict:
    """Run ``run_one(sub)`` (it stores its results in ``sub`` under ``key``) on each group's
    cells ``where[g]`` (of :func:`read_by_a_run`, for ``meta["use_rep"]``), then write into
    ``adata``: the per-cell columns over all cells, and ``uns[key] = {"groupby", "groups":
    {g: sub.uns[key]}, **meta}``. Returns {g: result}."""
    stale = [c for c in adata.obs.columns if _is_run_column(c, key)]  # an earlier run's: must reach no group
    results, entries, columns = {}, {}, {}
    read = read_by_a_run(adata, meta["use_rep"], neighbors_key)
    for g, idx in where.items():
        sub = read[idx].copy()
        for c in stale:  # (DataFrame.drop's inplace is deprecated in pandas 3)
            del sub.obs[c]
        with about(f"{groupby} = {g}"):  # its warnings name it, among the other groups' in one log
            results[g] = run_one(sub, g)
        entries[g] = sub.uns[key]
        for name in [c for c in sub.obs.columns if _is_run_column(c, key)]:
            columns.setdefault(name, {})[g] = sub.obs[name]
    n = adata.n_obs  # every group ran: only now is adata changed (a failed group leaves it as it was)
    for c in stale:
        del adata.obs[c]
    for name, parts in sorted(columns.items()):
        first = next(iter(parts.values()))
        if isinstance(first.dtype, pd.CategoricalDtype):  # phase_missing: the reasons
            values = np.full(n, _fill(name, key), dtype=object)
            for g, s in parts.items():
                values[where[g]] = s.astype(str).to_numpy()
            adata.obs[name] = pd.Categorical(values, categories=list(first.cat.categories))
        else:
            values = np.full(n, _fill(name, key), dtype=first.dtype if first.dtype == bool else float)
            for g, s in parts.items():
                values[where[g]] = s.to_numpy()
            adata.obs[name] = values
    adata.uns[key] = {**meta, "groupby": groupby, "groups": entries}
    return results


#: Groups whose first loop has a phase on fewer cells than this are not aligned (nor a reference).
ALIGN_MIN_CELLS = 20
#: A group's phase is turned to the reference's only where they agree at least this well:
#: |mean e^{i(ψ − θ')}| over its cells, ψ the reference's phase predicted on them (1: the same).
ALIGN_MIN_AGREEMENT = 0.5
#: The map of :func:`align_phases` reads the principal directions holding this share of the
#: reference group's variance, nothing else.
ALIGN_VARIANCE = 0.95


def circle_map(A: np.ndarray, theta: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """W (p × 2) of the ridge regression of (cos θ, sin θ) on the rows of ``A`` (centred),
    λ = ``ridge`` times the mean eigenvalue of AᵀA: ``A @ W`` read as an angle predicts θ."""
    gram = A.T @ A
    return np.linalg.solve(gram + ridge * np.trace(gram) / len(gram) * np.eye(len(gram)),
                           A.T @ np.c_[np.cos(theta), np.sin(theta)])


def align_phases(adata, key: str, where: dict[str, np.ndarray], X: np.ndarray, ridge: float = 1e-3) -> dict:
    """Turn each group's first-loop phase (``obs[f"{key}_phase"]``) so that it reads like the
    reference group's, the group with the most cells with a phase, on the representation ``X``
    the groups share: a ridge map from X (each group centred on its own mean, which takes out
    a sample's offset; only the reference's principal directions holding :data:`ALIGN_VARIANCE`
    of its variance) to (cos θ, sin θ) is fitted on the reference's cells and predicts an angle
    ψ on every other group's cells; that group's θ is reflected where −θ agrees better with ψ and
    rotated by the circular mean of ψ − (±θ). Returns {group: {"aligned_to", "reflected", "shift",
    "agreement"}} for the groups turned; a group whose agreement stays below
    :data:`ALIGN_MIN_AGREEMENT` keeps its phase (its loop may be another one, or the map may not
    carry over) and is left out. Only a rotation and a reflection: each group's phase keeps its
    order and spacing, so every score against a truth up to rotation and reflection is unchanged."""
    col = f"{key}_phase"
    if col not in adata.obs:
        return {}
    theta = adata.obs[col].to_numpy(dtype=float).copy()
    X = np.asarray(X, dtype=float)
    phased = {g: idx[np.isfinite(theta[idx])] for g, idx in where.items()}
    phased = {g: idx for g, idx in phased.items() if len(idx) >= ALIGN_MIN_CELLS}
    if len(phased) < 2:
        return {}
    centre = {g: X[where[g]].mean(axis=0) for g in phased}
    ref = max(phased, key=lambda g: len(phased[g]))
    # the reference's own directions only (ALIGN_VARIANCE of its variance): a map fitted where the
    # reference barely varies would read another group's loop in other directions as this one
    _, sv, Vt = np.linalg.svd(X[phased[ref]] - centre[ref], full_matrices=False)
    keep = int(np.searchsorted(np.cumsum(sv**2) / np.sum(sv**2), ALIGN_VARIANCE)) + 1
    basis = Vt[:keep].T
    W = basis @ circle_map((X[phased[ref]] - centre[ref]) @ basis, theta[phased[ref]], ridge)
    turned = {}
    for g, idx in phased.items():
        if g == ref:
            continue
        P = (X[idx] - centre[g]) @ W
        psi = np.arctan2(P[:, 1], P[:, 0])
        z = {s: np.mean(np.exp(1j * (psi - s * theta[idx]))) for s in (1, -1)}
        s = max(z, key=lambda k: abs(z[k]))
        if abs(z[s]) < ALIGN_MIN_AGREEMENT:
            continue
        theta[idx] = (s * theta[idx] + np.angle(z[s])) % (2 * np.pi)
        turned[g] = {"aligned_to": ref, "reflected": bool(s < 0), "shift": float(np.angle(z[s])),
                     "agreement": float(abs(z[s]))}
    adata.obs[col] = theta
    return turned


def run_grouped(adata, groupby: str, settings: dict, run_result, log_verdict, X, align: bool = True) -> dict:
    """``te.tl.run(adata, groupby=...)``: every group checked, then :func:`run_by_group` with
    ``run_result(sub, **settings)`` (:func:`topoembed.tl.run_result`), each group's verdict logged
    by ``log_verdict(result, key, began, label)`` at scanpy's info verbosity; then, with
    ``align`` and where no phase was turned by the recipe's S and G2/M scores,
    :func:`align_results` on the points ``X``. Returns {group: result}."""
    from datetime import datetime, timezone

    from ._progress import scanpy_log

    where = check_group_sizes(adata, groupby, settings)
    key = settings["key_added"]
    scanpy_log(f"running topoembed on {adata.n_obs} cells in {len(where)} groups of {groupby!r}")

    def one(sub, group):
        began = datetime.now(timezone.utc)  # each group's own time in the log (scanpy's clock)
        result = run_result(sub, **settings)
        log_verdict(result, key, began, f"{group}, {sub.n_obs} cells")
        return result

    results = run_by_group(adata, groupby, where, one, key, {"use_rep": settings.get("use_rep") or "X"},
                           neighbors_key=settings.get("neighbors_key"))
    if align:
        align_results(adata, key, where, X, results)
    scanpy_log(f"added\n    '{key}_phase', '{key}_on_loop', ... (adata.obs: each cell from its group's run)\n"
               f"    '{key}' (adata.uns: one record per group; te.tl.get_group_verdicts(adata), te.tl.get_loops(adata, "
               "group=...))", level="hint")
    return results


def align_results(adata, key: str, where: dict[str, np.ndarray], X, results: dict) -> dict:
    """:func:`align_phases`, unless a group's phase was turned by the recipe's scores (then
    phases compare already); the turned phases also go into each group's result (its first
    loop's ``phase``, and ``phase_alignment``: what :func:`align_phases` returns for it; so into
    its ``summary.json``) and record (``uns[key]["groups"][g]``), and
    ``uns[key]["phase_alignment"]`` says what was turned."""
    if any("phase_orientation" in r.loops[0] for r in results.values() if r.loops):
        return {}
    turned = align_phases(adata, key, where, X)
    theta = adata.obs[f"{key}_phase"].to_numpy(dtype=float)
    for g, info in turned.items():
        results[g].loops[0]["phase"] = theta[where[g]]
        results[g].loops[0]["phase_alignment"] = info
        adata.uns[key]["groups"][g]["loops"]["0"]["phase_alignment"] = dict(info)
    adata.uns[key]["phase_alignment"] = {g: dict(info) for g, info in turned.items()}
    return turned


def verdict_table(adata, key: str) -> pd.DataFrame:
    """One row per group: cells, verdict, loops found and supported, and the first loop's
    p-value and prevalence (NaN where not measured)."""
    entry = adata.uns.get(key)
    if not is_grouped(entry):
        raise InputError(f"no run by group under key {key!r}: run te.tl.run(adata, groupby=...) first")
    rows = []
    for g, e in entry["groups"].items():
        loops = as_list(e.get("loops", {}))
        first = loops[0] if loops else {}
        rows.append({"group": g, "n_cells": int(e.get("n_input", 0)), "verdict": str(e["verdict"]["headline"]),
                     "supported": int(e["verdict"]["n_loops"]), "found": len(loops),
                     "p_value": float(first.get("p_value", np.nan)), "prevalence": float(first.get("prevalence", np.nan))})
    return pd.DataFrame(rows).set_index("group").rename_axis(entry["groupby"])
