"""Preprocessing on AnnData (scanpy style): the raw-counts recipe and the kNN graph.

``te.pp.recipe_cell_cycle`` turns raw counts into a representation in which the cell
cycle is visible; ``te.pp.neighbors`` builds (or reuses scanpy's) kNN graph. Both call
scanpy/the core and hold no mathematics of their own.
"""
from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import graph
from .datasets import cell_cycle_genes  # noqa: F401 (te.pp.cell_cycle_genes: the bundled list lives with the data)
from ._anndata import check_adata, resolved_points, transposed, uns_entry, working_copy
from ._progress import scanpy_wants_progress
from .io import RECIPE_KEY, SCANPY_N_PCS
from ._validate import (INTERFACE, LOG_MAX, InputError, check_identical_points, check_k,  # noqa: F401 (public)
                        count_kind, looks_like_counts, option)
from .pipeline import Params

log = logging.getLogger(__name__)

__all__ = ["cell_cycle_genes", "recipe_cell_cycle", "neighbors", "looks_like_counts"]


def __dir__():  # tab completion shows the API, not the modules this one imports (np, logging, ...)
    return sorted(__all__)

DEFAULT_KEY = "topoembed"
_PARAMS = Params()  # the pipeline's defaults, shared by te.pp, te.tl and the CLI


def _match_genes(var_names, genes, organism):
    upper = {str(v).upper(): v for v in var_names}
    found = [upper[g.upper()] for g in genes if g.upper() in upper]
    return list(dict.fromkeys(found))


_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}")
#: var columns that hold gene symbols in common layouts (10x, CellRanger, scanpy, cellxgene).
SYMBOL_COLUMNS = ("gene_symbols", "gene_symbol", "gene_name", "gene_names", "symbol", "symbols", "feature_name",
                  "gene_ids_symbol", "name")


def gene_names_for_matching(adata, gene_symbols: str | None = None, genes=None) -> tuple[list, str]:
    """The names to match gene lists against: ``adata.var[gene_symbols]`` (scanpy's
    parameter name), else ``var_names``; when most ``var_names`` are Ensembl ids and no
    column is given, the text column of ``adata.var`` that matches most of ``genes``
    (case-insensitively; the first of :data:`SYMBOL_COLUMNS` that exists when ``genes`` is
    None). Returns (names, where they came from)."""
    if gene_symbols is not None:
        if gene_symbols not in adata.var.columns:
            raise InputError(f"{option('gene_symbols', gene_symbols)}: not a column of adata.var (columns: "
                             f"{list(adata.var.columns) or 'none'})" + ("" if len(adata.var.columns) else
                                                                        ". " + _symbols_fix(adata)))
        return [str(v) for v in adata.var[gene_symbols]], f"var[{gene_symbols!r}]"
    names = [str(v) for v in adata.var_names]
    sample = names[: min(len(names), 500)]
    if not sample or np.mean([bool(_ENSEMBL.match(v)) for v in sample]) <= 0.5:
        return names, "var_names"
    # text: object (pandas < 3), str (pandas 3's default for text) or categorical columns
    text = [c for c in adata.var.columns if pd.api.types.is_object_dtype(adata.var[c])
            or pd.api.types.is_string_dtype(adata.var[c]) or isinstance(adata.var[c].dtype, pd.CategoricalDtype)]
    ranked = sorted(text, key=lambda c: c not in SYMBOL_COLUMNS)  # the usual names first on ties
    if genes is not None:
        wanted = {str(g).upper() for g in genes}
        hits = {c: len(wanted & {str(v).upper() for v in adata.var[c]}) for c in ranked}
        ranked = [c for c in sorted(ranked, key=lambda c: -hits[c]) if hits[c] > 0]
    if ranked:
        log.info("var_names are Ensembl ids; matching genes on var[%r]", ranked[0])
        return [str(v) for v in adata.var[ranked[0]]], f"var[{ranked[0]!r}]"
    return names, "var_names"


#: ``obs`` columns of each cell's S-phase and G2/M score (written by :func:`recipe_cell_cycle`);
#: ``te.tl.run`` turns the loop's phase by them (:func:`topoembed.localize.orient_by_markers`).
SCORE_COLUMNS = ("topoembed_S_score", "topoembed_G2M_score")
#: scanpy's own columns (``sc.tl.score_genes_cell_cycle``), read where the recipe's are absent.
SCANPY_SCORE_COLUMNS = ("S_score", "G2M_score")


def score_columns(adata) -> tuple[str, str] | None:
    """The ``obs`` columns of each cell's S and G2/M score that orient a loop's phase: the
    recipe's (:data:`SCORE_COLUMNS`), else scanpy's (:data:`SCANPY_SCORE_COLUMNS`, for a user who
    ran ``sc.tl.score_genes_cell_cycle``), where both of the pair are numeric; None otherwise."""
    for cols in (SCORE_COLUMNS, SCANPY_SCORE_COLUMNS):
        if all(c in adata.obs and pd.api.types.is_numeric_dtype(adata.obs[c]) for c in cols):
            return cols
    return None


def _cell_cycle_scores(adata, work, names, pos, organism) -> None:
    """Per cell, the mean of the z-scored log expression of the matched S genes and of the
    matched G2/M genes (Tirosh et al. 2016) into ``adata.obs[SCORE_COLUMNS]``."""
    X = work.X.toarray() if sp.issparse(work.X) else np.asarray(work.X)
    for col, phase in zip(SCORE_COLUMNS, ("S", "G2M")):
        matched = _match_genes(names, cell_cycle_genes("human", phase=phase), organism)
        cols = [pos[v] for v in matched]
        if not cols:
            continue
        G = X[:, cols].astype(np.float64)
        sd = G.std(axis=0)
        z = (G - G.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        adata.obs[col] = z.mean(axis=1)


def _symbols_fix(adata) -> str:
    """How to give the recipe gene symbols where ``var_names`` hold none (Ensembl ids), in the
    interface's words: a ``var`` column of symbols, or, where ``var`` has none (a table's header is
    its only gene names), names that are symbols."""
    cli = INTERFACE["name"] == "cli"
    if len(adata.var.columns):
        fix = f"For Ensembl ids in var_names, name the var column of symbols: {option('gene_symbols', 'COLUMN')}"
    elif cli:
        fix = ("A table's header row is its only gene names: write the symbols there (e.g. CDK1, not "
               "ENSG00000170312), or the data as .h5ad with a var column of symbols and pass --gene-symbols COLUMN")
    else:
        fix = "adata.var has no column of symbols to use: set adata.var_names to the symbols (e.g. CDK1, not ENSG...)"
    return fix + ("" if cli else ", or pass genes='hvg' or your own list")


def recipe_cell_cycle(adata, *, genes="cell_cycle", organism: str = "auto", n_comps: int = 20,
                      n_top_genes: int = 2000, target_sum: float = 1e4, layer: str | None = None,
                      min_genes: int = 10, key_added: str = "X_pca_cell_cycle", random_state: int = 0,
                      gene_symbols: str | None = None, copy: bool = False):
    """Raw counts → library-size normalisation → log1p → gene restriction → PCA.

    Parameters
    ----------
    genes : "cell_cycle" (the bundled Tirosh et al. 2016 list, human or mouse symbols,
        matched case-insensitively), "hvg" (``n_top_genes`` highly variable genes,
        ``sc.pp.highly_variable_genes`` with flavor "seurat" on the log data), or a list
        of gene names.
    layer : take counts from ``adata.layers[layer]`` instead of ``adata.X``. Integer counts,
        or non-negative non-integer counts (ambient-RNA correction, pseudo-aligners: accepted
        with a warning); log-transformed or negative values are refused (:func:`count_kind`).
    organism : "auto" (symbols matched case-insensitively, so human and mouse both match),
        "human" or "mouse" (the bundled list in that organism's case).
    n_comps : PCA components (fewer if there are fewer genes or cells).
    n_top_genes : highly variable genes kept with ``genes="hvg"``.
    target_sum : counts per cell after normalisation (``sc.pp.normalize_total``).
    min_genes : fewest of the listed genes that must be found in the data.
    key_added : the ``obsm`` key of the PCA.
    random_state : seed of the PCA's solver.
    gene_symbols : ``adata.var`` column holding the gene symbols (scanpy's name), for
        ``var_names`` that are Ensembl ids; if None, the text column matching most genes.
    copy : work on a copy and return it; otherwise write into ``adata`` and return None.

    Writes ``adata.obsm[key_added]`` and ``adata.uns["topoembed_recipe"]`` (what was
    done); with the bundled cell-cycle genes also each cell's S and G2/M score
    (``obs["topoembed_S_score"]``, ``obs["topoembed_G2M_score"]``: the mean z-scored log
    expression of each phase's genes), by which ``te.tl.run`` orients the phase (S, then G2/M,
    θ = 0 at G1/S). ``adata.X`` is left as it was. Normalisation, log, highly variable genes
    and PCA are scanpy's own functions; the scores are computed here (z-scored means, not
    ``sc.tl.score_genes_cell_cycle``'s control-gene sets).
    """
    import anndata
    import scanpy as sc

    adata = working_copy(adata, copy)
    check_adata(adata)
    if layer is not None and layer not in adata.layers:
        raise InputError(f"layer {layer!r} not found; available: {list(adata.layers.keys()) or 'none'}")
    if isinstance(genes, str) and genes not in ("cell_cycle", "hvg"):
        raise InputError(f"genes={genes!r} must be 'cell_cycle', 'hvg' or a list of gene names")
    if organism not in ("auto", "human", "mouse"):
        raise InputError(f"organism={organism!r} must be 'auto', 'human' or 'mouse'")
    counts = adata.layers[layer] if layer is not None else adata.X
    where = f"adata.layers[{layer!r}]" if layer else "adata.X"
    kind = count_kind(counts)
    if kind in ("negative", "empty"):
        raise InputError(f"the recipe expects raw counts but {where} holds negative or non-finite values (scaled "
                         "data or a representation?). Pass the raw counts (e.g. "
                         f"{option('layer', 'counts')}), or skip the "
                         "recipe and analyse it as a representation ("
                         f"{option('use_rep', 'X_pca')}, or a table of PCs without the recipe).")
    if kind == "log":
        raise InputError(f"{where} looks log-transformed (non-integer values on a log scale: none above {LOG_MAX:g}, "
                         "or log2 values); the recipe normalises and log-transforms itself. Pass the raw counts "
                         f"(e.g. {option('layer', 'counts')}), or skip the recipe and analyse a representation "
                         f"({option('use_rep', 'X_pca')}) or X as it is ({option('use_rep', 'X')}).")
    if kind == "fractional":
        log.warning("%s holds non-integer counts (ambient-RNA correction or a pseudo-aligner?); normalising them "
                    "as counts", where)
    work = anndata.AnnData(X=counts.copy() if sp.issparse(counts) else np.array(counts, dtype=np.float32),
                           obs=adata.obs[[]].copy(), var=adata.var[[]].copy())
    sc.pp.normalize_total(work, target_sum=target_sum)
    sc.pp.log1p(work)
    if isinstance(genes, str) and genes == "hvg":
        sc.pp.highly_variable_genes(work, n_top_genes=min(n_top_genes, work.n_vars), flavor="seurat")
        chosen = list(work.var_names[work.var["highly_variable"]])
        source = f"{len(chosen)} highly variable genes (scanpy, flavor='seurat')"
    else:
        if isinstance(genes, str) and genes == "cell_cycle":
            if organism == "auto":
                glist = cell_cycle_genes("human")  # matching is case-insensitive: covers mouse too
            else:
                glist = cell_cycle_genes(organism)
            source = "cell-cycle genes of Tirosh et al., Science 2016"
        elif isinstance(genes, str):
            raise InputError(f"genes={genes!r} must be 'cell_cycle', 'hvg' or a list of gene names")
        else:
            glist = [str(g) for g in genes]
            source = "user gene list"
        names, name_source = gene_names_for_matching(adata, gene_symbols, glist)
        chosen_names = _match_genes(names, glist, organism)
        way_round = transposed(adata) if not chosen_names else None
        if way_round:
            raise InputError(f"none of the {len(glist)} genes ({source}) is in adata.{name_source}, but {way_round}")
        if not chosen_names:
            raise InputError(f"none of the {len(glist)} genes ({source}) is in adata.{name_source} "
                             f"(e.g. {names[:3]}); check the organism and that the names are gene symbols. "
                             + _symbols_fix(adata))
        if len(chosen_names) < min_genes:
            raise InputError(f"only {len(chosen_names)} of {len(glist)} genes found in adata.{name_source} (need "
                             f"{min_genes}); pass genes='hvg', your own list, or lower min_genes")
        pos = {}
        for i, v in enumerate(names):
            pos.setdefault(v, i)
        chosen = [work.var_names[pos[v]] for v in chosen_names]
        source += f", matched on {name_source}"
    if isinstance(genes, str) and genes == "cell_cycle":
        _cell_cycle_scores(adata, work, names, pos, organism)
    sub = work[:, chosen].copy()
    n_comps_used = int(min(n_comps, sub.n_vars - 1, sub.n_obs - 1))
    if n_comps_used < 2:
        raise InputError(f"{sub.n_obs} cells × {sub.n_vars} genes are too few for PCA; pass more cells or genes")
    sc.pp.pca(sub, n_comps=n_comps_used, random_state=random_state)
    adata.obsm[key_added] = sub.obsm["X_pca"]
    adata.uns[RECIPE_KEY] = {
        "steps": ["normalize_total", "log1p", "gene subset", "pca"],
        "target_sum": float(target_sum), "genes": source, "n_genes": len(chosen),
        "gene_names": np.array(chosen, dtype=object).astype(str), "n_comps": n_comps_used,
        "layer": layer or "X", "key_added": key_added,
        "variance_ratio": sub.uns["pca"]["variance_ratio"],
    }
    log.info("recipe_cell_cycle: %s (%d genes) -> obsm[%r] with %d PCs", source, len(chosen), key_added, n_comps_used)
    return adata if copy else None


def _binarized(M, symmetrize):
    P = sp.csr_matrix(M, copy=True)
    P.data[:] = 1.0
    P.setdiag(0)
    P.eliminate_zeros()
    if symmetrize == "or":
        S = ((P + P.T) > 0).astype(np.float64)
    else:
        S = P.multiply(P.T)
    return sp.csr_matrix(S, dtype=np.float64)


#: what ``uns[key]["graph"]`` records for scanpy's weighted graph (``binarize=False``): no
#: pattern or weights of topoembed's own, so not settings a run can rebuild subsample graphs with
SCANPY_WEIGHTED = {"symmetrize": "scanpy", "weights": "connectivities"}


def neighbors(adata, k: int = _PARAMS.k, *, use_rep: str | None = None,
              neighbors_key: str | None = None, binarize: bool = True,
              symmetrize: str = _PARAMS.symmetrize, weights: str = _PARAMS.weights,
              metric: str = _PARAMS.metric, random_state: int = 0,
              key_added: str = DEFAULT_KEY, copy: bool = False):
    """The kNN graph of the cells → ``adata.obsp[f"{key_added}_graph"]``.

    With ``neighbors_key`` (e.g. "neighbors", what ``sc.pp.neighbors`` writes), reuse
    scanpy's graph instead of searching again: ``binarize=True`` takes the pattern of its
    kNN ``distances`` and symmetrises it like :func:`topoembed.graph.knn_graph`
    (``symmetrize``), so ``sc.pp.neighbors(n_neighbors=k + 1)`` (scanpy counts the cell
    itself) gives the same graph as ``te.pp.neighbors(k=k)``; ``binarize=False`` keeps
    scanpy's symmetric ``connectivities`` weights.
    Otherwise the graph is built on ``adata.obsm[use_rep]`` (or ``X``) with ``k``
    neighbours; the default k follows a small input's size as in :func:`topoembed.tl.run`
    (:meth:`topoembed.params.Params.for_small_input`). Parameters go to
    ``adata.uns[key_added]["graph"]``.
    """
    adata = working_copy(adata, copy)
    check_adata(adata, key_added)
    if neighbors_key is not None:
        if neighbors_key not in adata.uns:
            raise InputError(f"adata.uns[{neighbors_key!r}] not found: run sc.pp.neighbors(adata"
                             f"{'' if neighbors_key == 'neighbors' else ', key_added=' + repr(neighbors_key)}) first, "
                             "or leave neighbors_key=None to build the graph here")
        info = adata.uns[neighbors_key]
        dkey = info.get("distances_key", "distances")
        ckey = info.get("connectivities_key", "connectivities")
        if binarize:
            A = _binarized(adata.obsp[dkey], symmetrize)
        else:
            A = sp.csr_matrix(adata.obsp[ckey], dtype=np.float64)
            A.setdiag(0)
            A.eliminate_zeros()
        scanpy_params = dict(info.get("params", {}))
        # older scanpy stored n_neighbors as a 1-element array (pbmc68k_reduced)
        k_used = int(np.ravel(scanpy_params.get("n_neighbors", 0))[0]) - 1
        meta = {"source": f"scanpy:{neighbors_key}", "binarize": bool(binarize),
                **({"symmetrize": symmetrize, "weights": "binary"} if binarize else SCANPY_WEIGHTED),
                "k": k_used,  # scanpy records use_rep only where it was given; else its own rule picked it
                "use_rep": str(np.ravel(scanpy_params.get("use_rep", "X_pca" if adata.n_vars > SCANPY_N_PCS
                                                          else "X"))[0])}
    else:
        use_rep, X = resolved_points(adata, use_rep)
        small, warning, note = Params(k=k, symmetrize=symmetrize).for_small_input(X.shape[0])  # as te.tl.run
        k, symmetrize = small.k, small.symmetrize
        for say, message in ((log.warning, warning), (log.warning, check_identical_points(X)), (log.info, note)):
            if message:
                say(message)
        check_k(k, X.shape[0])
        A = graph.knn_graph(X, k=k, metric=metric, symmetrize=symmetrize, weights=weights, random_state=random_state,
                            progress=scanpy_wants_progress())  # a bar on a long search, as te.tl.run shows
        meta = {"source": "topoembed", "k": int(k), "metric": metric, "symmetrize": symmetrize,
                "weights": weights, "use_rep": use_rep or "X"}
    n_comp, labels = graph.components(A)
    meta["n_components"] = int(n_comp)
    if n_comp > 1:  # said here, where k is chosen; te.tl's later steps on this graph do not repeat it
        log.warning(graph.disconnected_warning(labels))
    adata.obsp[f"{key_added}_graph"] = A
    uns_entry(adata, key_added)["graph"] = meta
    return adata if copy else None


#: scanpy's graph (``neighbors_key``) with fewer neighbours than this share of the default k is
#: warned about: the loop calls were chosen on mutual k = 100 graphs (BENCHMARKS.md), and
#: ``sc.pp.neighbors``' own default (15) reads loops otherwise.
SPARSE_GRAPH_SHARE = 0.5


def params_for_graph(p: Params, graph_meta: dict) -> Params:
    """The settings of a run on scanpy's graph: its k (so that the prevalence check's subsamples
    build graphs like it, and ``params`` says what was used), with a warning where it is much
    sparser than the default."""
    k = int(graph_meta.get("k", -1))
    if k < 1:  # scanpy's parameters not stored
        return p
    default = Params().k
    if k < SPARSE_GRAPH_SHARE * default:
        log.warning("scanpy's graph has %d neighbours per cell, topoembed's default is %d (mutual): the loop calls "
                    "were chosen on such graphs, and a sparser one can call loops differently; for the default run "
                    "sc.pp.neighbors(adata, n_neighbors=%d, use_rep=...) first, or leave neighbors_key out",
                    k, default, default + 1)
    return dataclasses.replace(p, k=k)
