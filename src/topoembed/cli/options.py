"""Options and inputs shared by the subcommands: every :class:`topoembed.params.Params` field as
``--name`` with its default and help, the input argument, and reading the points.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from .. import graph, io, pipeline, spectral
from .._validate import InputError, check_points, looks_like_gene_counts

log = logging.getLogger("topoembed")

DEMO_INPUT = "synthetic:circle?n=1000&d=50&sigma=0.25&seed=0"


_HELP = {
    "k": "neighbours per point in the kNN graph (with the default: at most 100 points get the union graph with k = 10, fewer than 400 k = n // 4)",
    "metric": "metric of the kNN search (euclidean, cosine, ...)",
    "symmetrize": "'or' (union) or 'and' (mutual kNN graph)",
    "weights": "edge weights: binary, distance or gaussian",
    "distance": "distance for persistent homology: " + ", ".join(spectral.DISTANCES)
                + ", or auto (label-free choice of distance, k, t and loop count; ~7x the time)",
    "t": "diffusion time (distance=diffusion)",
    "n_components": "eigenvectors used (distance=laplacian_eigenmaps)",
    "maxdim": "highest homology dimension (2 = voids, small n only)",
    "n_loops": "'auto' or a fixed number of loops to score",
    "subsample": "run on a random subset of this many points (seeded)",
    "localize": "1: each loop's cycle, members and phase of every point; 0: detection only",
    "theta_filtration": "where in a loop's lifetime its phase is read: r = birth + f (death - birth), f in [0, 1)",
    "seed": "random seed (subsampling, approximate kNN)",
    "max_points": "the most points one run analyses with dense n×n distances (a staged command refuses more; "
                  "`run` analyses larger inputs in subsamples of --subsample-size)",
    "phase_method": "circular coordinate: cycle (evenly along the loop's representative cycle, then smoothed "
                    "locally) or harmonic (de Silva et al.; collapses where the density along the loop varies)",
    "n_subsamples": "subsamples analysed for a whole dataset: auto (10 above 1,000 points, else one run on all "
                    "points) or a number; each loop gets its prevalence, the share of subsamples that find it",
    "subsample_size": "points per subsample of a whole-dataset run",
    "knn_method": "kNN search: auto (exact up to 50,000 points or 15 features, else pynndescent), exact, approx",
    "device": "where the kNN search, the eigendecomposition and --embed run: auto (CUDA if present, else the "
              "CPU), cpu or cuda[:N]",
    "early_stop": "1: a whole-dataset run stops after 6 of its 10 subsamples when they agree unanimously "
                  "(the others could not change the call); 0: run them all",
    "loop_rule": "how the number of loops is decided: evidence (confirmed_gap, and where it finds none, features "
                 "with universal-null p < 0.001), confirmed_gap (the score's largest gap, confirmed by the other "
                 "spectral distance; every loop gets its p-value), significant (confirmed_gap without the loops "
                 "with p >= 0.05) or gap (the score alone)",
    "surface": "1: where a second loop may have been left out, look for a closed surface (a void on 300 "
               "landmarks, then 500 where 300 show none: H2) with the loops alive at its birth, and report them (a torus); 0: no such check",
    "phase_low_confidence": "1: also give a phase for loops without support (p >= 0.01 and prevalence < 0.9: "
                            "possible loops); 0: their phase is withheld (NaN) and the report says why",
    "confirm": "1: a loop count must be confirmed by the other spectral distance on the same graph "
               "(effective resistance <-> diffusion), else 0 loops are reported; 0: off (single runs: the "
               "subsamples of a whole dataset or of a prevalence check rely on their prevalence instead)",
    "prevalence_check": "1: runs on up to 1,000 points look for a loop with universal-null p >= 0.01 in 10 "
                        "subsamples of 70 %% of the points (90 %% of 101-399; its prevalence >= 0.9 supports it) and, where no "
                        "loop is found, for the longest H1 feature (reported if it recurs in >= 90 %%); 0: off",
    "parts": "1: a whole dataset (over 1,000 points) is also split into parts of its graph (Leiden), and each "
             "part of 100 points to a quarter of the data is searched alone for a loop that few points carry "
             "(p-values corrected for the number of parts); 0: off",
}


_CHOICES = {"knn_method": ["auto", "exact", "approx"], "loop_rule": list(pipeline.loops.LOOP_RULES), "phase_method": list(pipeline.localization.PHASE_METHODS), "distance": sorted(spectral.DISTANCES) + ["auto"], "symmetrize": ["or", "and"], "weights": list(graph.WEIGHTS)}


def _auto_or_int(value: str):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither 'auto' nor an integer") from None


def _auto_or_count(value: str):
    """'auto' or an integer ≥ 1 (processes, subsamples): --jobs 0 and --jobs -3 were accepted without a word."""
    number = _auto_or_int(value)
    if number != "auto" and number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be 'auto' or an integer >= 1")
    return number


#: The headings under which ``--help`` lists the settings, by the first stage that reads them
#: (:data:`topoembed.params.STAGE_PARAMS`); the others concern whole datasets and the machine.
_GROUPS = {"graph": "stage 1, kNN graph", "distances": "stage 2, spectral distances",
           "homology": "stage 3, homology", "detect": "stage 4, loops: their number and evidence",
           "localize": "stage 4b, each loop's cycle, members and phase",
           None: "whole datasets (more points than one run takes) and the machine"}


def _group_of(name: str) -> str | None:
    """The stage that first reads setting ``name`` (None: no single run's stage)."""
    return next((stage for stage, fields in pipeline.STAGE_PARAMS.items() if name in fields), None)


def _add_params(parser, names=None, inherit=False):
    """Add the Params fields (or the subset ``names``) as --options with their defaults, under
    a heading per stage (:data:`_GROUPS`).
    ``inherit``: a stage step, whose unset options come from its inputs' records."""
    chosen = [f for f in dataclasses.fields(pipeline.Params) if names is None or f.name in names]
    present = {_group_of(f.name) for f in chosen}
    groups = {stage: parser.add_argument_group(f"settings, {title}") for stage, title in _GROUPS.items()
              if stage in present}  # in the stages' order
    for f in chosen:
        group = groups[_group_of(f.name)]
        default = f.default
        typ = ({"n_loops": _auto_or_int, "n_subsamples": _auto_or_count, "t": float}.get(f.name)
               or (int if isinstance(default, int) else float if isinstance(default, float) else str))
        if f.name == "subsample":
            typ = int
        shown = int(default) if isinstance(default, bool) else default  # as the option takes it: 1/0
        where = f"default: as the input files record, else {shown}" if inherit else f"default: {shown}"
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=typ,
                           default=None if inherit else default,
                           choices=_CHOICES.get(f.name), help=f"{_HELP.get(f.name, '')} ({where})")


def _params_from(args) -> pipeline.Params:
    """The Params of the options given (an option left unset, None, takes the default)."""
    fields = {f.name: f for f in dataclasses.fields(pipeline.Params)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    # a switch given as 1/0 on the command line is True/False, as in Python (summary.json's params)
    return pipeline.Params(**{k: bool(v) if isinstance(fields[k].default, bool) and v in (0, 1) else v
                              for k, v in given.items()})


def _k_given(args) -> bool:
    """Whether --k was given (``run`` parses it with no default, so that an explicit --k 100 is
    kept where the default would follow a small input's size)."""
    return getattr(args, "k", None) is not None


def _input_args(parser):
    parser.add_argument("input", nargs="?", default=DEMO_INPUT,
                        help=f"points: {io.ANNDATA_INPUTS}, .csv/.tsv (or .gz), .npy, or synthetic:NAME?n=..&d=..&sigma=..&seed=.. "
                             f"(default: the demo {DEMO_INPUT})")
    parser.add_argument("--use-rep", default=None, help="for AnnData input: obsm key to use (default: the points "
                        "topoembed prepare or its recipe stored, else X_pca where X has > 50 genes, else X; X: X as it "
                        "is, even where it looks like raw counts)")
    idx = parser.add_mutually_exclusive_group()
    idx.add_argument("--index-col", dest="index_col", action="store_const", const=True, default=None,
                     help="for .csv/.tsv input: the first column is a row index; drop it (default: detected)")
    idx.add_argument("--no-index-col", dest="index_col", action="store_const", const=False,
                     help="for .csv/.tsv input: keep the first column even if it looks like a row index")
    turn = parser.add_mutually_exclusive_group()
    turn.add_argument("--transpose", dest="transpose", action="store_const", const=True, default=None,
                      help="for .csv/.tsv input: the columns are the cells (a gene x cell table, as GEO count tables "
                           "are written); default: the rows, refused where they are genes")
    turn.add_argument("--no-transpose", dest="transpose", action="store_const", const=False,
                      help="for .csv/.tsv input: the rows are the points even where their names are genes")


def _load(args):
    if args.input is DEMO_INPUT and args.command != "run":  # the default object itself: no input was given
        log.warning("no input given: `topoembed %s` analyses the demo %s; pass your points as its first argument",
                    args.command, DEMO_INPUT)
    X, meta = io.load_points(args.input, use_rep=args.use_rep, index_col=getattr(args, "index_col", None),
                             transpose=getattr(args, "transpose", None))
    if meta.get("kind") not in ("anndata", "synthetic", "npy") and looks_like_gene_counts(X):
        log.warning("%s looks like raw counts (%d columns of non-negative integers) and is analysed as it is; for "
                    "cells, --recipe cell_cycle normalises, logs and takes the PCA of the cell-cycle genes named in "
                    "its header", Path(str(args.input)).name, X.shape[1])
    if getattr(args, "transpose", None) and X.shape[0] < X.shape[1]:  # the refusal of too few points names no option
        log.warning("--transpose read the %d columns of %s as the points, each with %d features (its rows); if its "
                    "rows are the cells, leave --transpose out", X.shape[0], Path(str(args.input)).name, X.shape[1])
    if meta.get("kind") == "anndata":  # as `run`: raw counts are refused, with the way to the points
        from .._anndata import points

        name = Path(str(args.input)).name
        fix = (f"make the points first with `topoembed prepare {name} --recipe cell_cycle --out prepared.h5ad` "
               "and pass prepared.h5ad, or pass --use-rep KEY for a representation in obsm (X_pca, X_scVI)")
        X = points(meta["adata"], meta["use_rep"], counts_fix=fix)  # None, not "X", where none was given
    names = meta["adata"].obs_names if meta.get("kind") == "anndata" else meta.get("row_names")
    return check_points(X, min_points=3, row_names=None if names is None else list(map(str, names))), meta


# ---------------------------------------------------------------- run
def _anndata_input(args, quiet: bool = False):
    """(adata, use_rep) of an AnnData input (:data:`topoembed.io.ANNDATA_INPUTS`) for run and prepare: with
    --recipe cell_cycle the recipe's PCA of the raw counts (in X, or in --layer). ``quiet``: for `run`, whose
    analysis resolves the points again and warns (:func:`topoembed.io.default_rep`)."""
    from .. import pp

    if not io.is_anndata_input(args.input):
        if args.layer:
            raise InputError(f"--layer names an AnnData layer of raw counts ({io.ANNDATA_INPUTS}); a table has none")
        if not args.recipe:
            return None, args.use_rep
        if args.use_rep:
            raise InputError("--use-rep picks a representation of AnnData input; with --recipe the recipe's PCA is analysed")
        if str(args.input).startswith("synthetic:"):
            raise InputError(f"--recipe normalises raw counts ({io.ANNDATA_INPUTS}, or a count table whose header names "
                             "the genes); synthetic data are points already: leave it out")
        adata = io.read_table_anndata(args.input, getattr(args, "index_col", None), getattr(args, "transpose", None))
    else:
        adata = io.read_anndata(args.input)
    if args.recipe == "cell_cycle":
        pp.recipe_cell_cycle(adata, layer=args.layer, gene_symbols=args.gene_symbols)
        return adata, "X_pca_cell_cycle"
    if args.layer is not None:
        raise InputError("--layer picks the raw counts for --recipe cell_cycle; without a recipe use --use-rep")
    return adata, io.default_rep(adata, args.use_rep, quiet=quiet)


def _anndata_points(adata, use_rep, quiet: bool = False):
    from .._anndata import points

    return points(adata, use_rep, quiet=quiet)


def _embed_args(p, with_loss):
    from .._losses import LOSS_NAMES as LOSSES  # no torch import for --help

    if with_loss:
        p.add_argument("--loss", default="infonce", choices=sorted(LOSSES), help="embedding loss (default: infonce)")
    else:
        p.add_argument("--embed", default=None, choices=sorted(LOSSES),
                       help="also embed the points with this loss and check that the embedding keeps the loops")
    p.add_argument("--n-epochs", dest="n_epochs", type=int, default=None,
                   help="training epochs (default: the loss's own: 100 for infonce, 50 for neg/nce, ...)")
    if with_loss:  # `run` has the pipeline's --device (Params.device), which the embedding shares
        p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, ... (default: auto)")
        p.add_argument("--spectrum", dest="s", type=float, default=None,
                       help="contrastive losses (infonce, neg, nce, contrastive): the position s on the t-SNE (0) to "
                            "UMAP (1) spectrum (default: 0; `--loss neg --spectrum 1` is UMAP-like)")
