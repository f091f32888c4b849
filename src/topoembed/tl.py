"""Tools on AnnData (scanpy style): distances, persistent homology, loop detection, run.

Each function reads what earlier steps stored under ``key_added`` (default
``"topoembed"``) and writes its own results there:

* ``adata.obsp[f"{key}_graph"]``: kNN adjacency (``te.pp.neighbors``);
* ``adata.obsp[f"{key}_distances"]``: the dense distance matrix, only if n ≤
  ``OBSP_DENSE_MAX_N`` (2,000 cells: 32 MB) or ``store_distances=True``; otherwise it is
  recomputed from the graph when needed (a log message says so);
* ``adata.uns[key]``: ``graph``/``distances`` parameters, ``diagrams`` (``H0``, ``H1``
  arrays of (birth, death), death inf for infinite bars), ``thresh`` (enclosing radius), ``scale`` (median
  distance), ``birth_edges``,
  ``detection`` (``n_loops``, ``scores`` {"1": s_1, ...}, ``score``), ``loops``
  ({"0": {birth, death, persistence, birth_edge}, ...}: a dict with string keys so that
  it survives ``write_h5ad``; :func:`get_loops` returns it as a list), ``params``,
  ``timings_s``, ``environment`` (Python's and the packages' versions, the homology engine);
* ``adata.obs[f"{key}_subsample"]``: which cells a subsampled run used.

All mathematics lives in the core modules; these functions only move data. The embedding
stage (``embed``, ``cluster``, ``embedding_topology``) lives in :mod:`topoembed.tl_embed` and
is part of this namespace.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging

import numpy as np

from . import analysis, evidence, groups, homology, pipeline, prevalence, spectral, verdict
from . import localize as localization
from ._anndata import (as_list, check_adata, graph_points, h5ad_safe, resolved_points, said_at_the_graph,
                       stored_distances, stored_distances_of, stored_entry, stored_graph, uns_entry, working_copy)
from .io import default_rep
from ._parallel import resolve_jobs
from ._progress import scanpy_log, scanpy_verbosity, scanpy_wants_progress
from ._validate import InputError, check_choice
from .pp import DEFAULT_KEY, SCANPY_WEIGHTED, neighbors, params_for_graph
from .tl_embed import cluster, embed, embedding_topology  # noqa: F401 (te.tl's names: stage 5)
from .summary import (LOW_CONFIDENCE_REASON, MISSING_REASONS, NO_LOOP_REASON, NO_LOOP_VALUES,  # noqa: F401 (te.tl's names)
                      OUTSIDE_PART_REASON, PHASE_MISSING_REASON, per_cell_columns)

log = logging.getLogger(__name__)

__all__ = ["spectral_distances", "persistent_homology", "detect_loops", "run", "run_result", "store_result", "get_loops",
           "get_verdict", "get_group_verdicts", "embed", "cluster", "embedding_topology", "OBSP_DENSE_MAX_N",
           "NO_LOOP_REASON", "NO_LOOP_VALUES", "LOW_CONFIDENCE_REASON"]


def __dir__():  # tab completion shows the API, not the modules this one imports (np, logging, ...)
    return sorted(__all__)

#: The :class:`topoembed.pipeline.Params` that :func:`detect_loops` takes besides its named ones.
DETECT_OPTIONS = ("surface", "confirm", "prevalence_check", "seed", "phase_low_confidence", "loop_rule", "early_stop")
#: Largest n for which the n×n distance matrix is kept in ``adata.obsp`` by default.
OBSP_DENSE_MAX_N = 2000


def spectral_distances(adata, kind: str = spectral.DEFAULT_DISTANCE, *, t: float = pipeline.Params.t,
                       n_components: int = pipeline.Params.n_components, use_rep: str | None = None,
                       store_distances: bool | None = None, key_added: str = DEFAULT_KEY, copy: bool = False):
    """Spectral (or Euclidean) distances between cells, from the graph of ``te.pp.neighbors``.

    ``kind``: one of :data:`topoembed.spectral.DISTANCES`. ``store_distances``: None keeps
    the n×n matrix in ``obsp[f"{key_added}_distances"]`` only for n ≤ OBSP_DENSE_MAX_N.
    """
    adata = working_copy(adata, copy)
    check_adata(adata, key_added)
    check_choice(kind, spectral.DISTANCES, "kind")
    use_rep = default_rep(adata, use_rep)
    D = stored_distances_of(adata, key_added, kind, t, n_components, use_rep)
    store = adata.n_obs <= OBSP_DENSE_MAX_N if store_distances is None else bool(store_distances)
    name = f"{key_added}_distances"
    if store:
        adata.obsp[name] = D
    else:
        adata.obsp.pop(name, None)
        log.info("distances (%d × %d) not stored in obsp (n > %d); te.tl.persistent_homology recomputes them "
                 "from obsp[%r]. Pass store_distances=True to keep them.", D.shape[0], D.shape[1],
                 OBSP_DENSE_MAX_N, f"{key_added}_graph")
    _write_distances_info(adata, key_added, kind, t, n_components, use_rep, store)
    return adata if copy else None


def _write_distances_info(adata, key, kind, t, n_components, use_rep, stored):
    uns_entry(adata, key)["distances"] = {"kind": kind, "t": float(t), "n_components": int(n_components),
                                          "use_rep": use_rep or "X",
                                          "stored_in": f"obsp/{key}_distances" if stored else "not stored"}


def _write_homology(adata, key, ph):
    entry = uns_entry(adata, key)
    entry["diagrams"] = {f"H{d}": np.asarray(g, dtype=np.float64) for d, g in enumerate(ph["dgms"])}
    entry["thresh"] = float(ph["thresh"])
    entry["scale"] = float(ph["scale"])
    entry["birth_edges"] = np.asarray(ph["birth_edges"], dtype=np.int64).reshape(-1, 2)
    for stale in ("cocycles_H1", "cocycle_offsets_H1", "cocycle_limit_H1"):
        entry.pop(stale, None)
    if "cocycles" in ph and len(ph["cocycles"]) > 1:
        # H1 cocycles, concatenated (rows i, j, value) with offsets: compact in .h5ad
        cocycles = [np.asarray(c, dtype=np.int64).reshape(-1, 3) for c in ph["cocycles"][1]]
        entry["cocycles_H1"] = np.concatenate(cocycles) if cocycles else np.zeros((0, 3), np.int64)
        entry["cocycle_offsets_H1"] = np.cumsum([0] + [len(c) for c in cocycles])
        if "cocycle_limit" in ph:  # up to where each cocycle is valid (homology.add_cocycles)
            entry["cocycle_limit_H1"] = np.asarray(ph["cocycle_limit"], dtype=np.float64)


def _ph_from_entry(entry) -> dict:
    ph = {"dgms": [np.asarray(entry["diagrams"][f"H{d}"]).reshape(-1, 2) for d in range(len(entry["diagrams"]))],
          "thresh": float(entry["thresh"]), "scale": float(entry["scale"]),
          "birth_edges": np.asarray(entry["birth_edges"]).reshape(-1, 2)}
    if "cocycles_H1" in entry:
        rows, off = np.asarray(entry["cocycles_H1"]), np.asarray(entry["cocycle_offsets_H1"])
        ph["cocycles"] = [[], [rows[off[i]:off[i + 1]] for i in range(len(off) - 1)]]
        if "cocycle_limit_H1" in entry:
            ph["cocycle_limit"] = np.asarray(entry["cocycle_limit_H1"], dtype=np.float64)
    return ph


def persistent_homology(adata, *, maxdim: int = pipeline.Params.maxdim, key_added: str = DEFAULT_KEY,
                        copy: bool = False):
    """Vietoris–Rips persistence diagrams of the stored distances → ``uns[key]["diagrams"]``
    (giotto-ph, or ripser.py where it is missing: :mod:`topoembed.homology`)."""
    adata = working_copy(adata, copy)
    check_adata(adata, key_added)
    if maxdim not in (0, 1, 2):
        raise InputError(f"maxdim={maxdim!r} must be 0, 1 or 2")
    if maxdim == 2 and adata.n_obs > pipeline.H2_MAX_N:
        raise InputError(f"maxdim=2 on {adata.n_obs} cells is too slow (limit {pipeline.H2_MAX_N}); subsample first")
    # Z_47 as in the pipeline; the cocycles of the loops found are added by detect_loops
    ph = homology.persistence(stored_distances(adata, key_added), maxdim=maxdim, coeff=localization.DEFAULT_COEFF)
    _write_homology(adata, key_added, ph)
    return adata if copy else None


def _write_loops(adata, key, det, found):
    """Detection and loops to ``uns[key]``; per-cell phase/membership to ``obs``.

    Loop i (0-based) writes ``obs[f"{key}_phase"]``, ``_phase_confidence``, ``_on_loop``, ``_loop_distance``
    and ``_phase_missing`` ("" where the cell has a phase, else why: :data:`PHASE_MISSING_REASON`,
    :data:`OUTSIDE_PART_REASON` beyond a loop found inside a part, :data:`LOW_CONFIDENCE_REASON`)
    for i = 0 and the same names with suffix ``_{i + 1}`` for further loops. With no loop
    the loop-0 columns hold :data:`NO_LOOP_VALUES` and ``_phase_missing`` :data:`NO_LOOP_REASON`.
    """
    entry = uns_entry(adata, key)
    entry["detection"] = {"n_loops": int(det["n_loops"]), "score": float(det["score"]),
                          "scores": {str(m): float(s) for m, s in det["scores"].items()}}
    stale = [c for c in adata.obs.columns
             if any(c == f"{key}_{f}" or c.startswith(f"{key}_{f}_") for f in pipeline.PER_POINT)]  # phase_missing too
    for col in stale:
        del adata.obs[col]
    import pandas as pd

    for name, values in per_cell_columns(found, adata.n_obs).items():
        adata.obs[f"{key}_{name}"] = (pd.Categorical(values, categories=list(MISSING_REASONS))
                                      if name.startswith("phase_missing") else values)
    stored = [{k: (np.asarray(v) if isinstance(v, list) else v) for k, v in lp.items() if k not in pipeline.PER_POINT}
              for lp in found]
    entry["loops"] = h5ad_safe(stored) if stored else {}
    entry["verdict"] = h5ad_safe(verdict.decide(found, det).to_dict())  # as summary.json has it


def detect_loops(adata, n_loops="auto", *, localize: bool = pipeline.Params.localize, theta_filtration: float =
                 pipeline.Params.theta_filtration, phase_method: str = pipeline.Params.phase_method, jobs="auto",
                 key_added: str = DEFAULT_KEY, copy: bool = False, **options):
    """The number of loops from ``uns[key]["diagrams"]["H1"]`` and the verdict, decided as
    :func:`run` decides them on the same graph and distances: the detection scores s_1..s_5 and
    the evidence rule, confirmed by the other spectral distance on the stored graph (``confirm``),
    a closed surface where the diagram may hide a second loop (``surface``); with ``localize``,
    each loop's cycle (``uns[key]["loops"][str(i)]["cycle"]``) and per cell ``obs[f"{key}_phase"]``
    (θ in [0, 2π)), ``_phase_confidence``, ``_on_loop`` and ``_loop_distance``
    (:mod:`topoembed.localize`); on the points the graph was built on (``uns[key]["graph"]["use_rep"]``),
    the groups on each loop's cycle and the prevalence check (``prevalence_check``, ``jobs``); a
    phase no evidence supports withheld. ``options``: :data:`DETECT_OPTIONS`, as in :func:`run`.
    One run of all cells, where :func:`run` makes an ensemble above 1,000 (``ENSEMBLE_MIN_N``)."""
    adata = working_copy(adata, copy)
    check_adata(adata, key_added)
    entry = uns_entry(adata, key_added)
    if "diagrams" not in entry or "H1" not in entry["diagrams"]:
        raise InputError(f"no H1 diagram under key {key_added!r}: run te.tl.persistent_homology(adata) first")
    ph = _ph_from_entry(entry)
    if set(options) - set(DETECT_OPTIONS):
        raise InputError(f"te.tl.detect_loops takes no {sorted(set(options) - set(DETECT_OPTIONS))}: of the settings it "
                         f"takes {list(DETECT_OPTIONS)}; the graph's and distances' are those their steps stored")
    params = _staged_params(entry, n_loops=n_loops, localize=localize, theta_filtration=theta_filtration,
                            phase_method=phase_method, **options).validate(adata.n_obs)
    X = graph_points(adata, key_added) if localize else None
    A = stored_graph(adata, key_added)
    if adata.n_obs > pipeline.ENSEMBLE_MIN_N:  # as the staged command line says it
        log.warning("te.tl's steps analyse all %d cells in one run, while te.tl.run analyses more than %d cells as an "
                    "ensemble of subsamples, so the verdicts can differ", adata.n_obs, pipeline.ENSEMBLE_MIN_N)
    distances = stored_distances(adata, key_added) if localize else (lambda: stored_distances(adata, key_added))
    with said_at_the_graph(adata, key_added):
        det = evidence.decide_loops(ph, A, params, D=distances)  # the pipeline's detection stage
        if localize:
            det, found, ph, _, _ = prevalence.staged_localization(X, A, distances, ph, det, params, jobs=jobs,
                                                                  progress=scanpy_wants_progress())
            orient_phases(adata, found)
        else:
            found = pipeline.describe_loops(ph, det, np.arange(adata.n_obs))
    _write_loops(adata, key_added, det, found)
    return adata if copy else None


def _staged_params(entry: dict, **given) -> pipeline.Params:
    """:func:`detect_loops`' settings (one run): the graph's and distances' from ``uns[key]``, and those given."""
    made = {k: v for k, v in entry.get("graph", {}).items() if k in ("k", "metric", "symmetrize", "weights") and v != -1
            and v != SCANPY_WEIGHTED.get(k)}  # scanpy's weighted graph: the defaults for its subsamples
    info = entry.get("distances", {})
    made.update({"distance": info["kind"], "t": float(info["t"]), "n_components": int(info["n_components"])}
                if "kind" in info else {})
    return pipeline.Params(**made, **given, n_subsamples=1)


def get_loops(adata, key: str = DEFAULT_KEY, group=None) -> list[dict]:
    """The detected loops as a list (``uns[key]["loops"]`` is stored as {"0": ..., "1": ...});
    [] where the run found none. ``group``: of that group, after ``run(adata, groupby=...)``."""
    return as_list(stored_entry(adata, key, "loops", group=group)["loops"])


def get_verdict(adata, key: str = DEFAULT_KEY, group=None) -> dict:
    """The run's verdict as ``summary.json`` has it (:meth:`topoembed.verdict.Verdict.to_dict`:
    ``level``, ``headline``, and per loop its ``level``, ``reasons`` and ``text``), its lists
    restored from the form ``uns[key]["verdict"]`` stores them in. ``group`` as :func:`get_loops`."""
    stored = dict(stored_entry(adata, key, "verdict", group=group)["verdict"])
    stored["loops"] = [{**call, "reasons": as_list(call.get("reasons", {}))}
                       for call in as_list(stored.get("loops", {}))]
    return stored


def get_group_verdicts(adata, key: str = DEFAULT_KEY):
    """After ``run(adata, groupby=...)``: one row per group (:func:`topoembed.groups.verdict_table`)."""
    return groups.verdict_table(adata, key)


def run_result(adata, *, use_rep: str | None = None, neighbors_key: str | None = None, binarize: bool = True,
               key_added: str = DEFAULT_KEY, progress: bool | None = None, jobs="auto", from_runs=None,
               small_input: bool = True, **params) -> pipeline.Result:
    """Like :func:`run` but returns the :class:`topoembed.pipeline.Result` (used by the CLI).
    ``from_runs``: subsample runs made elsewhere (:func:`topoembed.ensemble.run_subsample`, one
    cluster job each) to combine instead of computing them; ``small_input``: as
    :func:`topoembed.analysis.run` (False: the command line's explicit --k)."""
    check_adata(adata, key_added)
    p = pipeline.Params.from_options(params, "te.tl.run")
    resolve_jobs(jobs, 1)  # a bad jobs is refused before any work, not where a pool first starts
    A = None
    with pipeline.collect_warnings() as about_input:  # X analysed as it is; scanpy's graph sparser than k
        if neighbors_key is not None:
            if p.subsample is not None:
                raise InputError("neighbors_key (reuse of scanpy's graph) cannot be combined with subsample")
            neighbors(adata, neighbors_key=neighbors_key, binarize=binarize, symmetrize=p.symmetrize,
                      key_added=key_added)
            A = adata.obsp[f"{key_added}_graph"]
            made = adata.uns[key_added]["graph"]
            if "k" in params and int(params["k"]) != made["k"]:
                log.warning("k=%s is not used: scanpy's graph (neighbors_key=%r) has %d neighbours per cell; build it "
                            "with sc.pp.neighbors(adata, n_neighbors=%d) for k=%s, or leave neighbors_key out",
                            params["k"], neighbors_key, made["k"], int(params["k"]) + 1, params["k"])
            p = params_for_graph(p, made)
            use_rep = rep_of_graph(adata, use_rep, made["use_rep"])
        use_rep, X = resolved_points(adata, use_rep)
    # the front door: all cells in one run (with the prevalence check), or an ensemble of subsamples
    if progress is None:  # as scanpy: shown unless sc.settings.verbosity is 0
        progress = scanpy_wants_progress()
    # scanpy's graph falling apart was said as it was read (in about_input): the run does not repeat it
    with said_at_the_graph(adata, key_added) if A is not None else contextlib.nullcontext():
        result = analysis.run(X, p, A=A, from_runs=from_runs, jobs=jobs, progress=progress, small_input=small_input)
    result.warnings[:0] = [w for w in about_input if w not in result.warnings]  # summary.json and the report say them too
    orient_phases(adata, result.loops)
    store_result(adata, result, use_rep=use_rep, key_added=key_added, neighbors_key=neighbors_key,
                 binarize=binarize)
    return result


def rep_of_graph(adata, use_rep: str | None, graph_rep: str) -> str | None:
    """The points to place cells on the loop with scanpy's graph: those the graph was built on
    where ``use_rep`` is not given (and they are in ``adata``); a warning where ``use_rep`` names
    others, since the loop's cycle and phase then come from points the graph did not see."""
    if use_rep is None:
        return graph_rep if graph_rep == "X" or graph_rep in adata.obsm else None
    if use_rep != graph_rep:
        log.warning("use_rep=%r, but scanpy's graph was built on %r: the loop is found on that graph and its cells "
                    "placed in %r; pass use_rep=%r (or leave it out) to use the graph's own points",
                    use_rep, graph_rep, use_rep, graph_rep)
    return use_rep


def orient_phases(adata, found: list) -> None:
    """Where the cells carry S and G2/M scores (``obs["topoembed_S_score"]``,
    ``obs["topoembed_G2M_score"]`` from :func:`topoembed.pp.recipe_cell_cycle`, else scanpy's
    ``obs["S_score"]``, ``obs["G2M_score"]``: :func:`topoembed.pp.score_columns`), turn the phase
    of each loop in ``found`` so that S comes before G2/M and θ = 0 is the G1/S boundary
    (:func:`topoembed.localize.orient_by_markers`); ``phase_orientation`` says how."""
    from .pp import SCORE_COLUMNS, score_columns

    cols = score_columns(adata)
    if cols is None:
        return
    s_score, g2m_score = (adata.obs[c].to_numpy(dtype=float) for c in cols)
    for i, lp in enumerate(found):
        phase = np.asarray(lp.get("phase", []), dtype=float)
        if len(phase) != adata.n_obs or not np.isfinite(phase).any():
            continue  # no phase (withheld, or not localised)
        lp["phase"], lp["phase_orientation"] = localization.orient_by_markers(phase, s_score, g2m_score)
        o = lp["phase_orientation"]
        if cols != SCORE_COLUMNS:
            o["by"] = f"S and G2/M scores (scanpy's obs[{cols[0]!r}], obs[{cols[1]!r}])"
        log.info("loop %d: phase turned by the S and G2/M scores (%s, θ = 0 at G1/S; S peaks at θ = %.2f, "
                 "G2/M at %.2f; |ρ| with the scores' own angle %.2f)", i + 1,
                 "reflected" if o["reflected"] else "not reflected", o["theta_S"], o["theta_G2M"],
                 o["score_angle_corr"])


def store_result(adata, result: pipeline.Result, *, use_rep: str | None = None, key_added: str = DEFAULT_KEY,
                 neighbors_key: str | None = None, binarize: bool = True, input_desc: str = "") -> None:
    """Write a :class:`topoembed.pipeline.Result` into ``adata`` under ``key_added`` (graph and
    distances in ``obsp``, per-cell results in ``obs``, and in ``uns[key]`` every entry of
    ``summary.json``: version, sizes, params, graph, diagrams, detection, loops, warnings, notes,
    ensemble/auto, timings). Used by :func:`run` and by the staged command line."""
    p = result.params  # resolved settings (distance="auto" picks distance, k, t and graph rule)
    entry = uns_entry(adata, key_added)
    full = len(result.index) == adata.n_obs
    store = full and adata.n_obs <= OBSP_DENSE_MAX_N
    # an earlier run under this key must not leave what this one does not write (te.tl.embed reads obsp)
    for stale in ([] if full else [f"{key_added}_graph"]) + ([] if store else [f"{key_added}_distances"]):
        adata.obsp.pop(stale, None)
    if full:
        adata.obsp[f"{key_added}_graph"] = result.A
        if neighbors_key is None:
            entry["graph"] = {"source": "topoembed", "k": p.k, "metric": p.metric, "symmetrize": p.symmetrize,
                              "weights": p.weights, "use_rep": use_rep or "X", "n_components": result.n_components}
        if store:
            adata.obsp[f"{key_added}_distances"] = result.D
        entry.pop("subsample_index", None)
        if f"{key_added}_subsample" in adata.obs:
            del adata.obs[f"{key_added}_subsample"]
    else:  # a subsample, or the reference run of an ensemble
        entry["graph"] = {}  # summary.json's graph entry, below; none of an earlier run's
        in_sub = np.zeros(adata.n_obs, dtype=bool)
        in_sub[result.index] = True
        adata.obs[f"{key_added}_subsample"] = in_sub
        entry["subsample_index"] = result.index
    if result.ensemble is not None:
        entry["ensemble"] = h5ad_safe(result.ensemble)
    else:  # a single run: no stale ensemble from an earlier run under this key
        entry.pop("ensemble", None)
    _write_distances_info(adata, key_added, p.distance, p.t, p.n_components, use_rep, store)
    _write_homology(adata, key_added, result.ph)
    _write_loops(adata, key_added, result.detection, result.loops)
    summ = pipeline.summary(result, input_desc=input_desc)
    entry["detection"] = h5ad_safe(summ["detection"])  # all of it, as summary.json has it
    entry.setdefault("graph", {}).update(h5ad_safe(summ["graph"]))
    for name in ("version", "input", "n_points", "n_input", "distance", "auto"):
        if summ.get(name) is not None:
            entry[name] = summ[name]
    entry["warnings"] = np.asarray(summ["warnings"], dtype=str)
    entry["notes"] = np.asarray(summ["notes"], dtype=str)
    used = dataclasses.asdict(p)
    if neighbors_key is not None:  # scanpy's graph: its own pattern or weights, not the defaults'
        used.update({name: entry["graph"][name] for name in ("symmetrize", "weights") if name in entry["graph"]})
    entry["params"] = h5ad_safe({**used, "use_rep": use_rep or "X", "neighbors_key": neighbors_key,
                                 "binarize": binarize})
    entry["timings_s"] = {k: float(v) for k, v in result.timings.items()}
    entry["environment"] = summ["environment"]


def run(adata, *, use_rep: str | None = None, neighbors_key: str | None = None, binarize: bool = True,
        key_added: str = DEFAULT_KEY, copy: bool = False, progress: bool | None = None, jobs="auto",
        groupby: str | None = None, align_phases: bool = True, **params):
    """All stages in one call: graph (or scanpy's, via ``neighbors_key``), distances,
    persistent homology and loop detection, with the options of
    :class:`topoembed.pipeline.Params`: among them ``k`` (100, a mutual kNN graph; scanpy's
    ``n_neighbors`` − 1), ``distance`` ("auto", or "effective_resistance", "diffusion", ...),
    ``n_loops`` ("auto" or a number), ``seed``, ``subsample``, ``n_subsamples``,
    ``prevalence_check`` and ``phase_low_confidence`` (a phase for possible loops too); an unknown
    name is refused with the nearest one.

    ``use_rep``: the ``obsm`` key to analyse, or "X". None (default): the points topoembed
    prepared (``topoembed prepare``, ``te.pp.recipe_cell_cycle``), else ``obsm["X_pca"]`` where
    X has more than 50 genes (scanpy's rule), else X (:func:`topoembed.io.default_rep`).

    Above :data:`topoembed.pipeline.ENSEMBLE_MIN_N` cells (and without ``subsample``) the
    cells are analysed as an ensemble of subsamples (:mod:`topoembed.ensemble`, ``jobs``
    local processes): every cell gets the consensus phase, ``obs[f"{key}_phase_spread"]``
    (its circular variance across subsamples), and each loop its ``prevalence`` in
    ``uns[key]["loops"]``; ``uns[key]["ensemble"]`` holds each subsample's reading.

    ``neighbors_key``: reuse scanpy's graph (``sc.pp.neighbors``; one run on all cells with that
    graph's k), ``binarize`` taking its kNN pattern (True) or its weighted ``connectivities``
    (False) (:func:`topoembed.pp.neighbors`).

    ``key_added``: where the results go: ``obs[f"{key_added}_phase"]``, ``_phase_confidence``,
    ``_loop_distance``, ``_on_loop``, ``_phase_missing`` (suffix ``_2``, ... for further
    loops), ``obsp[f"{key_added}_graph"]`` (and ``_distances`` up to
    :data:`OBSP_DENSE_MAX_N` cells), and ``uns[key_added]`` (everything ``summary.json``
    holds; read it with :func:`get_verdict` and :func:`get_loops`, ``key=key_added``).

    ``progress``: a bar per stage and per subsample, in Jupyter or on a terminal; by default
    shown unless scanpy's verbosity is 0 (``sc.settings.verbosity = 0`` silences it).
    ``jobs``: local processes for the subsamples and checks ("auto": one per usable CPU; the
    result does not depend on it). ``copy``: work on a copy and return it; otherwise the
    results are written into ``adata`` and None is returned.

    ``groupby``: an ``obs`` column (cell line, sample, donor): one run per group, as on its cells
    alone, per-cell results in the same columns, each group's record in ``uns[key]["groups"]``
    (:mod:`topoembed.groups`; read with ``group=`` or :func:`get_group_verdicts`); with
    ``align_phases`` and without the recipe's scores, phases turned to agree across groups
    (:func:`topoembed.groups.align_phases`)
    """
    check_adata(adata, key_added)
    adata = working_copy(adata, copy)
    kw = dict(use_rep=use_rep, neighbors_key=neighbors_key, binarize=binarize, key_added=key_added, progress=progress,
              jobs=jobs, **params)
    if groupby is not None:
        _run_by_group(adata, groupby, kw, align_phases)
        return adata if copy else None
    start = scanpy_log(f"running topoembed on {adata.n_obs} cells")
    _log_verdict(run_result(adata, **kw), key_added, start)
    return adata if copy else None


def _run_by_group(adata, groupby: str, kw: dict, align: bool) -> None:
    """:func:`run` by group: :func:`topoembed.groups.run_grouped` with this module's run and log."""
    kw["use_rep"], X = resolved_points(adata, kw["use_rep"])
    groups.run_grouped(adata, groupby, kw, run_result, _log_verdict, X, align=align)


def _log_verdict(result: pipeline.Result, key_added: str, start, group: str | None = None) -> None:
    """scanpy's closing lines for :func:`run` at its info verbosity: the verdict and the sentences
    the command line prints under it (why a loop is or is not supported, which bar a count of 0
    missed), then, at hint verbosity, where the results went; by group, each group's verdict."""
    if (scanpy_verbosity() or 0) < 2:  # below info: say nothing, and build no summary for it
        return
    from .report import verdict_notes

    notes = verdict_notes(pipeline.summary(result))
    scanpy_log("\n".join([f"    {group or 'finished'} ({{time_passed}}): {result.verdict.headline()}"]
                         + [f"    {note}" for note in notes]), time=start)
    if group is None:
        scanpy_log(f"added\n    '{key_added}_phase', '{key_added}_on_loop', ... (adata.obs; suffix _2, ... for further "
                   f"loops)\n    '{key_added}' (adata.uns; te.tl.get_verdict(adata), te.tl.get_loops(adata))",
                   level="hint")
