"""Small AnnData helpers shared by ``pp``, ``tl`` and ``pl`` (no mathematics here)."""
from __future__ import annotations

import contextlib
import logging

import numpy as np

from ._progress import filtered, follow_scanpy_verbosity
from ._validate import INTERFACE, InputError, check_points, looks_like_gene_counts

log = logging.getLogger(__name__)


def check_adata(adata, key_added: str | None = None) -> None:
    """Refuse anything but a non-empty AnnData, and a ``key_added`` that cannot name its entries
    (empty, not a string, or with '/', which h5ad stores are to refuse)."""
    if key_added is not None and (not isinstance(key_added, str) or not key_added.strip() or "/" in key_added):
        raise InputError(f"key_added={key_added!r} must be a non-empty name without '/': it names adata.uns[key_added] "
                         "and the obs and obsp columns (key_added + '_phase', ...), which write_h5ad stores by name")
    try:
        import anndata
    except ImportError:  # pragma: no cover
        raise InputError("anndata is not installed; pip install anndata") from None
    if not isinstance(adata, anndata.AnnData):
        raise InputError(f"expected an AnnData object, got {type(adata).__name__}; "
                         "for arrays use the functions in topoembed.graph/spectral/pipeline")
    if adata.n_obs == 0:
        raise InputError("the AnnData has 0 cells; filter less strictly or check the input file")
    follow_scanpy_verbosity()  # the API's log speaks as scanpy's does


def working_copy(adata, copy: bool):
    """``adata`` itself, or its copy with ``copy=True``; a backed AnnData (``read_h5ad(backed="r")``),
    which anndata copies only to a file, is refused with the two ways on."""
    if not copy:
        return adata
    if getattr(adata, "isbacked", False):
        raise InputError("copy=True cannot copy a backed AnnData (read_h5ad(..., backed='r')) in memory; pass "
                         "adata.to_memory(), or leave copy out to write the results into the backed object")
    return adata.copy()


def points(adata, use_rep: str | None = None, *, expect_representation: bool = True,
           counts_fix: str | None = None, quiet: bool = False) -> np.ndarray:
    """The matrix to analyse: ``obsm[use_rep]`` or ``X``, validated.

    With ``expect_representation``, raw counts (non-negative integers over many genes)
    are refused: persistent homology should run on a representation (PCA, scVI, ...);
    ``use_rep="X"`` names ``X`` on purpose and analyses it as it is, with a warning (pixel
    values or binary features look like counts too).
    ``counts_fix``: what the refusal tells to do instead (default: the interface's way).
    ``quiet``: no warning; for a caller that validates the points before the analysis reads them
    (and warns) again.
    """
    from .io import points_from_adata

    check_adata(adata)
    hint = transposed(adata)
    say = log.debug if quiet else log.warning
    X = points_from_adata(adata, use_rep)
    where = f"adata.obsm[{use_rep!r}]" if use_rep not in (None, "X") else "adata.X"
    counts = expect_representation and looks_like_gene_counts(X)
    if hint and not (counts and use_rep != "X"):  # where counts are refused, the refusal says it
        say("%s; each of its %d obs is analysed as a cell", hint, adata.n_obs)
    if counts:
        as_is = "--use-rep X" if INTERFACE["name"] == "cli" else "use_rep='X'"
        if use_rep == "X":  # asked for by name: analysed as it is (pixel values, binary features are no counts)
            say("adata.X looks like raw counts (%d columns of non-negative integers); analysed as it is, as %s asks",
                X.shape[1], as_is)
            return check_points(X, name=where, min_points=3)
        if counts_fix is not None:
            fix = counts_fix
        elif INTERFACE["name"] == "cli":
            fix = ("pass --recipe cell_cycle (normalise, log, cell-cycle genes, PCA; --layer NAME where the counts "
                   "are in a layer), or --use-rep KEY for a representation in obsm (X_pca, X_scVI)")
        else:
            fix = ("run te.pp.recipe_cell_cycle(adata) (or sc.pp.normalize_total, sc.pp.log1p and sc.pp.pca) first "
                   "and pass use_rep='X_pca_cell_cycle' / 'X_pca'")
        raise InputError((f"{hint}. Then: " if hint else "")
                         + f"{where} looks like raw counts ({X.shape[1]} columns of non-negative integers); {fix}. "
                         f"If it holds no counts (pixel values, binary features), {as_is} analyses it as it is")
    return check_points(X, name=where, min_points=3)


#: More obs than any annotation has genes (GENCODE: about 62,000 with the non-coding ones):
#: :func:`transposed` does not look at their names.
MAX_GENES = 100_000


def transposed(adata) -> str | None:
    """What to do where ``adata`` looks like genes × cells: its ``obs_names`` are genes
    (:func:`topoembed.tables.genes_among`), as ``sc.read_csv`` gives for a gene × cell table
    (GEO's way round); else None."""
    from .tables import genes_among

    if adata.n_obs > MAX_GENES:  # more obs than any genome has genes: cells
        return None
    genes = genes_among(adata.obs_names)
    if not genes:
        return None
    return (f"adata looks like genes x cells: its obs_names are genes ({', '.join(genes[:4])}, ...); pass adata.T "
            "(sc.read_csv reads a gene x cell table this way round)")


def resolved_points(adata, use_rep: str | None = None) -> tuple[str | None, np.ndarray]:
    """(the representation analysed, its :func:`points`): ``use_rep``, or where none is given
    the one :func:`topoembed.io.default_rep` picks (prepared points, the recipe's PCA, X_pca)."""
    from .io import default_rep

    use_rep = default_rep(adata, use_rep)
    return use_rep, points(adata, use_rep)


def graph_points(adata, key: str) -> np.ndarray | None:
    """The points ``te.pp.neighbors`` built ``obsp[f"{key}_graph"]`` on (the ``use_rep`` it
    recorded), or None, with a warning, where ``adata`` no longer holds them. A step that reads
    the stored graph needs them for what :func:`topoembed.tl.run` measures on the points (the
    groups on a loop's cycle, the prevalence check)."""
    from .io import default_rep

    try:
        return points(adata, default_rep(adata, adata.uns.get(key, {}).get("graph", {}).get("use_rep")), quiet=True)
    except InputError as e:
        log.warning("the points the graph was built on are not available (%s): a loop is not checked for separate "
                    "groups of points on its cycle nor for its prevalence in subsamples, as te.tl.run does", e)
        return None


def stored_graph(adata, key: str):
    """``obsp[f"{key}_graph"]``, the kNN graph ``te.pp.neighbors`` stored, or an InputError that says to build it."""
    name = f"{key}_graph"
    if name not in adata.obsp:
        ensemble = isinstance(adata.uns.get(key), dict) and "subsample_index" in adata.uns[key]
        why = (f" (te.tl.run analysed subsamples of the {adata.n_obs} cells, so it kept no graph of all of them)"
               if ensemble else "")
        raise InputError(f"adata.obsp[{name!r}] not found{why}: run te.pp.neighbors(adata, key_added={key!r}) first")
    return adata.obsp[name]


@contextlib.contextmanager
def said_at_the_graph(adata, key: str):
    """Within it, the spectral stages do not repeat the warning about a disconnected graph that
    ``te.pp.neighbors`` gave for ``obsp[f"{key}_graph"]`` (its record's ``n_components`` > 1):
    the staged chain said it three times, once per step."""
    from . import graph

    record = adata.uns.get(key, {}).get("graph", {}) if isinstance(adata.uns.get(key), dict) else {}
    name = f"{key}_graph"
    said = (graph.disconnected_warning(graph.components(adata.obsp[name])[1])
            if int(record.get("n_components", 1)) > 1 and name in adata.obsp else None)
    with filtered([logging.getLogger("topoembed.spectral")] if said else [], lambda r: r.getMessage() != said):
        yield


def stored_distances_of(adata, key: str, kind: str, t: float, n_components: int, use_rep: str | None) -> np.ndarray:
    """The dense distances of ``kind`` (:func:`topoembed.spectral.distance_matrix`) on the stored
    graph, or on the points for "euclidean"."""
    from . import spectral

    spectral.check_dense_feasible(adata.n_obs)
    if kind == "euclidean":
        return spectral.distance_matrix(kind, X=points(adata, use_rep))
    with said_at_the_graph(adata, key):
        return spectral.distance_matrix(kind, A=stored_graph(adata, key), t=t, n_components=n_components)


def stored_distances(adata, key: str) -> np.ndarray:
    """The distances ``te.tl.spectral_distances`` made under ``key``: ``obsp[f"{key}_distances"]``,
    or recomputed as ``uns[key]["distances"]`` records them where n was too large to keep them."""
    info = uns_entry(adata, key).get("distances")
    if info is None:
        raise InputError(f"no distances under key {key!r}: run te.tl.spectral_distances(adata, key_added={key!r}) first")
    name = f"{key}_distances"
    if name in adata.obsp:
        return np.asarray(adata.obsp[name])
    log.info("recomputing %s distances from obsp[%r]", info["kind"], f"{key}_graph")
    return stored_distances_of(adata, key, info["kind"], info["t"], info["n_components"], info.get("use_rep"))


def stored_entry(adata, key: str, what: str, step: str = "te.tl.run(adata)", group=None) -> dict:
    """``adata.uns[key]`` where it holds a run's ``what`` (its loops, verdict, diagrams, ...), or an
    InputError that says to run ``step`` and names the keys that hold one (a reader must not
    create the entry, nor read "no loops" into a run made under another ``key_added``). A run
    made by group (``te.tl.run(adata, groupby=...)``) holds one entry per group: ``group``
    picks it (:func:`group_entry`)."""
    check_adata(adata)
    entry = group_entry(adata, key, group, what)
    if isinstance(entry, dict) and what in entry:
        return entry
    runs = [k for k, v in adata.uns.items() if isinstance(v, dict) and (what in v or is_grouped(v))]
    where = f"; results are under key={runs[0]!r}" if len(runs) == 1 else (f"; results are under {runs}" if runs else "")
    raise InputError(f"adata.uns[{key!r}][{what!r}] not found: run {step} first, or pass the key_added of your run as "
                     f"key=...{where}")


def is_grouped(entry) -> bool:
    """Whether an ``uns`` entry is a run by group (``{"groupby", "groups": {g: entry}}``)."""
    return isinstance(entry, dict) and "groups" in entry and "groupby" in entry


def group_entry(adata, key: str, group, what: str):
    """``uns[key]`` of a run, or of its group ``group`` where the run was by group (InputError
    naming the groups where none or an unknown one is given, or a group where the run was not)."""
    entry = adata.uns.get(key)
    if not is_grouped(entry):
        if group is not None:
            raise InputError(f"group={group!r}: the run under key {key!r} was not made by group "
                             "(te.tl.run(adata, groupby=...))")
        return entry
    names = list(entry["groups"])
    if group is None:
        raise InputError(f"the run under key {key!r} was made by group (groupby={entry['groupby']!r}): pass "
                         f"group= one of {names} to read its {what}, or te.tl.get_group_verdicts(adata) for all")
    if str(group) not in entry["groups"]:
        raise InputError(f"group={group!r} is not a group of {entry['groupby']!r}: the groups are {names}")
    return entry["groups"][str(group)]


def as_list(stored) -> list:
    """A list that ``adata.uns`` holds as {"0": ..., "1": ...} (h5ad-safe), as a list again."""
    if isinstance(stored, list):
        return stored
    return [stored[k] for k in sorted(stored, key=int)]


def uns_entry(adata, key: str) -> dict:
    """``adata.uns[key]`` as a dict, created if missing (or new where it holds a run by group)."""
    if key not in adata.uns or not isinstance(adata.uns[key], dict) or is_grouped(adata.uns[key]):
        adata.uns[key] = {}
    return adata.uns[key]


def h5ad_safe(obj):
    """Convert a result dict so that anndata can write it: drop None, str keys, arrays
    (None in a list of numbers, e.g. a p-value that could not be computed, becomes NaN)."""
    if isinstance(obj, dict):
        return {str(k): h5ad_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        if obj and all(isinstance(v, dict) for v in obj):
            return {str(i): h5ad_safe(v) for i, v in enumerate(obj)}
        if any(v is None for v in obj) and all(v is None or isinstance(v, (int, float, np.number)) for v in obj):
            return np.array([np.nan if v is None else v for v in obj], dtype=float)
        return np.asarray(obj)
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    return obj
