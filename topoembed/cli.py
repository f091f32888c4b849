"""The ``topoembed`` command line: one subcommand per stage, and ``run`` for all of them.

Every option of :class:`topoembed.pipeline.Params` is an option here with the same name
(``--k``, ``--distance``, ``--t``, ...) and the same default. Errors in the input or
the options stop the command before any work, with exit status 2 and a message that
says what to fix; outputs are written atomically, so a failed run leaves no file.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from . import __version__, ensemble, graph, homology, io, loops, pipeline, report, spectral
from ._validate import InputError, check_k, check_points

log = logging.getLogger("topoembed")

DEMO_INPUT = "synthetic:circle?n=1000&d=50&sigma=0.25&seed=0"

_HELP = {
    "k": "neighbours per point in the kNN graph",
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
    "max_points": "refuse inputs with more points than this (dense n×n stages)",
    "phase_method": "circular coordinate: cycle (evenly along the loop's representative cycle, then smoothed "
                    "locally) or harmonic (de Silva et al.; collapses where the density along the loop varies)",
    "n_subsamples": "subsamples analysed for a whole dataset: auto (10 above 1,000 points, else one run on all "
                    "points) or a number; each loop gets its prevalence, the share of subsamples that find it",
    "subsample_size": "points per subsample of a whole-dataset run",
    "knn_method": "kNN search: auto (exact up to 20,000 points or 15 features, else pynndescent), exact, approx",
    "device": "where the kNN search, the eigendecomposition and --embed run: auto (CUDA if present, else the "
              "CPU), cpu or cuda[:N]",
    "early_stop": "1: a whole-dataset run stops after 6 of its 10 subsamples when they agree unanimously "
                  "(the others could not change the call); 0: run them all",
    "loop_rule": "how the number of loops is decided: evidence (confirmed_gap, and where it finds none, features "
                 "with universal-null p < 0.001), confirmed_gap (the score's largest gap, confirmed by the other "
                 "spectral distance; every loop gets its p-value), significant (confirmed_gap without the loops "
                 "with p >= 0.05) or gap (the score alone)",
    "confirm": "1: a loop count must be confirmed by the other spectral distance on the same graph "
               "(effective resistance <-> diffusion), else 0 loops are reported; 0: off",
}
_CHOICES = {"knn_method": ["auto", "exact", "approx"], "loop_rule": list(pipeline.loops.LOOP_RULES), "phase_method": list(pipeline.localization.PHASE_METHODS), "distance": sorted(spectral.DISTANCES) + ["auto"], "symmetrize": ["or", "and"], "weights": list(graph.WEIGHTS)}


def _auto_or_int(value: str):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither 'auto' nor an integer") from None


def _add_params(parser, names=None):
    """Add the Params fields (or the subset ``names``) as --options with their defaults."""
    for f in dataclasses.fields(pipeline.Params):
        if names is not None and f.name not in names:
            continue
        default = f.default
        typ = {"n_loops": _auto_or_int, "n_subsamples": _auto_or_int, "t": float}.get(f.name) or (int if isinstance(default, int) else str)
        if f.name == "subsample":
            typ = int
        shown = int(default) if isinstance(default, bool) else default  # as the option takes it: 1/0
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=typ, default=default,
                            choices=_CHOICES.get(f.name), help=f"{_HELP.get(f.name, '')} (default: {shown})")


def _params_from(args) -> pipeline.Params:
    names = {f.name for f in dataclasses.fields(pipeline.Params)}
    return pipeline.Params(**{k: v for k, v in vars(args).items() if k in names})


def _input_args(parser):
    parser.add_argument("input", nargs="?", default=DEMO_INPUT,
                        help=f"points: .npy, .csv/.tsv, .h5ad, or synthetic:NAME?n=..&d=..&sigma=..&seed=.. "
                             f"(default: the demo {DEMO_INPUT})")
    parser.add_argument("--use-rep", default=None, help="for .h5ad input: obsm key to use (default: X)")
    idx = parser.add_mutually_exclusive_group()
    idx.add_argument("--index-col", dest="index_col", action="store_const", const=True, default=None,
                     help="for .csv/.tsv input: the first column is a row index; drop it (default: detected)")
    idx.add_argument("--no-index-col", dest="index_col", action="store_const", const=False,
                     help="for .csv/.tsv input: keep the first column even if it looks like a row index")


def _load(args):
    X, meta = io.load_points(args.input, use_rep=args.use_rep, index_col=getattr(args, "index_col", None))
    return check_points(X, min_points=3), meta


# ---------------------------------------------------------------- run
def cmd_run(args) -> int:
    if args.recipe and not str(args.input).endswith(".h5ad"):
        raise InputError("--recipe needs .h5ad input with raw counts in X")
    if str(args.input).endswith(".h5ad"):
        return _run_h5ad(args)
    X, meta = _load(args)
    params = _params_from(args)
    params.validate(X.shape[0])
    _check_embed_args(args, params)
    with io.OutputSet(args.out) as outputs:
        if args.from_runs:
            result = ensemble.combine(X, [io.read_run(f) for f in args.from_runs], params)
        else:
            result = ensemble.run(X, params, jobs=args.jobs, progress=not args.quiet)
        emb = _embed_for_run(args, X, result)
        summ = _write_run_outputs(outputs, args, result, X, emb)
        outputs.commit()
    _print_table(summ, args.out)
    return 0


def cmd_subsample(args) -> int:
    if str(args.input).endswith(".h5ad") and args.use_rep is None:
        raise InputError("for .h5ad input pass --use-rep (e.g. X_scVI or X_pca): `run --from-runs` must see "
                         "the same points")
    X, _ = _load(args)
    params = _params_from(args)
    res = ensemble.run_subsample(X, args.index, params)
    io.write_run(args.out, res)
    sys.stdout.write(f"subsample {args.index}: {len(res.index)} points, {res.detection['n_loops']} loop(s), "
                     f"{res.timings['wall']:.1f} s -> {args.out}\n")
    return 0


def _check_embed_args(args, params):
    if args.embed and args.embed.startswith("sketchmap") and params.subsample is not None:
        raise InputError("--embed sketchmap uses the run's distance matrix, which covers only the subsample; "
                         "drop --subsample or use --embed infonce")


def _embed_for_run(args, X, result):
    """(Y, info, topology) for --embed LOSS, or None: embeds every input point."""
    if not args.embed:
        return None
    from . import embed as embedding

    D = result.D if args.embed.startswith("sketchmap") else None
    Y, info = embedding.embed(X, args.embed, D=D, n_epochs=args.n_epochs, device=args.device, seed=args.seed,
                              verbose=not args.quiet)
    topo = embedding.embedding_topology(Y[result.index], result.detection, seed=args.seed)
    return Y, info, topo


def _run_h5ad(args) -> int:
    """h5ad in: results go into a copy of the AnnData (``result.h5ad``) under --key-added."""
    from . import pp, tl

    adata = io.read_h5ad(args.input)
    use_rep = args.use_rep
    if args.recipe == "cell_cycle":
        pp.recipe_cell_cycle(adata, gene_symbols=args.gene_symbols)
        use_rep = "X_pca_cell_cycle"
    params = _params_from(args)
    X = _anndata_points(adata, use_rep)
    params.validate(X.shape[0])
    _check_embed_args(args, params)
    with io.OutputSet(args.out) as outputs:
        result = tl.run_result(adata, use_rep=use_rep, key_added=args.key_added, progress=not args.quiet,
                               jobs=args.jobs, from_runs=[io.read_run(f) for f in args.from_runs or []] or None,
                               **dataclasses.asdict(params))
        emb = _embed_for_run(args, X, result)
        if emb is not None:
            from .embed import obsm_key

            adata.obsm[obsm_key(args.embed)] = emb[0]
            tl.embedding_topology(adata, obsm_key(args.embed), key=args.key_added, seed=args.seed)
        summ = _write_run_outputs(outputs, args, result, X, emb)
        adata.write_h5ad(outputs.path("result.h5ad"))
        outputs.commit()
    _print_table(summ, args.out, extra="result.h5ad")
    return 0


def _anndata_points(adata, use_rep):
    from ._anndata import points

    return points(adata, use_rep)


def _write_run_outputs(outputs, args, result, X, emb=None) -> dict:
    summ = pipeline.summary(result, input_desc=str(args.input))
    extra = []
    if emb is not None:
        Y, info, topo = emb
        summ["embedding"] = {"loss": info["loss"], "device": info["device"], "verdict": topo["message"],
                             "n_loops_embedding": int(topo["low"]["n_loops"]),
                             "score_embedding": float(topo["low"]["score"])}
        with open(outputs.path("embedding.npy"), "wb") as fh:
            np.save(fh, Y)
        extra.append(("Embedding", report.embedding_section(Y, info["loss"], topo, result)))
    outputs.path("summary.json").write_text(io.dumps_json(summ))
    _write_diagrams(outputs.path("diagrams.npz"), result.ph)
    per_point = [{f: lp[f] for f in pipeline.PER_POINT if f in lp} for lp in result.loops]
    outputs.path("report.html").write_text(report.render_html(summ, points=X[result.index], index=result.index,
                                                              per_point=per_point, extra_sections=extra))
    if any(per_point):
        _write_cells_csv(outputs.path("cells.csv"), result)
    return summ


def _write_cells_csv(path, result):
    """One row per input point: id, and per loop phase_i, phase_confidence_i, loop_distance_i, on_loop_i."""
    cols = {"id": np.arange(result.n_input)}
    for i, lp in enumerate(result.loops, start=1):
        for f in pipeline.PER_POINT:
            if f in lp:
                cols[f"{f}_{i}"] = np.asarray(lp[f])
    header = ",".join(cols)
    table = np.column_stack([np.asarray(v, dtype=float) for v in cols.values()])
    fmt = ["%d"] + ["%.6g"] * (table.shape[1] - 1)
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt=fmt)


def _write_diagrams(path, ph):
    arrays = {f"H{d}": dgm for d, dgm in enumerate(ph["dgms"])}
    arrays["birth_edges_H1"] = ph["birth_edges"]
    arrays["thresh"] = np.array(ph["thresh"])
    arrays["scale"] = np.array(ph["scale"])
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _print_table(summ, out, extra=None):
    det = summ["detection"]
    lines = [
        f"topoembed {summ['version']}: {summ['input']}",
        f"  points        {summ['n_points']}" + (f" (of {summ['n_input']})" if summ["n_input"] != summ["n_points"] else ""),
        f"  distance      {summ['distance']} (k={summ['params']['k']})",
        f"  loops found   {det['n_loops']}",
        *(f"                {note}" for note in report.verdict_notes(summ)),
        f"  score         {det['score']:.3f}   (s_m: " + ", ".join(f"{m}:{s:.2f}" for m, s in det["scores"].items()) + ")",
        "  time (s)      " + "  ".join(f"{k} {v:.2f}" for k, v in summ["timings_s"].items()),
        f"  written to    {out}/ (summary.json, diagrams.npz, report.html"
        f"{', cells.csv' if summ['loops'] else ''}{', embedding.npy' if 'embedding' in summ else ''}"
        f"{', ' + extra if extra else ''})",
    ]
    if "embedding" in summ:
        lines.insert(-2, f"  embedding     {summ['embedding']['loss']}: {summ['embedding']['verdict']}")
    sys.stdout.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- stage commands
def cmd_graph(args) -> int:
    X, _ = _load(args)
    p = _params_from(args)
    check_k(p.k, X.shape[0])
    A = graph.knn_graph(X, k=p.k, metric=p.metric, symmetrize=p.symmetrize, weights=p.weights, random_state=p.seed)
    import scipy.sparse as sp

    with io.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            sp.save_npz(fh, A)
    n_comp, _ = graph.components(A)
    sys.stdout.write(f"graph: {A.shape[0]} points, {A.nnz // 2} edges, {n_comp} component(s) -> {args.out}\n")
    return 0


def _load_graph(path, n):
    import scipy.sparse as sp

    p = Path(path)
    if not p.exists():
        raise InputError(f"graph file {path!r} does not exist; make it with `topoembed graph INPUT --out {path}`")
    try:
        A = sp.load_npz(p).tocsr()
    except Exception as exc:
        raise InputError(f"{path} is not a scipy sparse .npz graph ({exc}); make it with `topoembed graph`") from None
    if A.shape != (n, n):
        raise InputError(f"graph {path} is {A.shape[0]}×{A.shape[1]} but the input has {n} points")
    return A


def cmd_distances(args) -> int:
    X, _ = _load(args)
    p = _params_from(args)
    p.validate(X.shape[0])
    A = None
    if p.distance != "euclidean":
        A = _load_graph(args.graph, X.shape[0]) if args.graph else graph.knn_graph(
            X, k=p.k, metric=p.metric, symmetrize=p.symmetrize, weights=p.weights, random_state=p.seed)
    D = spectral.distance_matrix(p.distance, X=X, A=A, t=p.t, n_components=p.n_components)
    with io.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, D)
    sys.stdout.write(f"distances: {p.distance}, {D.shape[0]}×{D.shape[1]} -> {args.out}\n")
    return 0


def _load_distance_matrix(path):
    p = Path(path)
    if not p.exists():
        raise InputError(f"distance file {path!r} does not exist; make it with `topoembed distances`")
    if p.suffix != ".npy":
        raise InputError(f"{path} must be a .npy distance matrix (from `topoembed distances`)")
    D = np.load(p, allow_pickle=False)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise InputError(f"{path} holds an array of shape {D.shape}, not a square distance matrix")
    if np.isnan(D).any():
        raise InputError(f"{path} contains NaN distances; recompute it")
    if not np.allclose(D, D.T, equal_nan=True):
        raise InputError(f"{path} is not symmetric; pass a distance matrix")
    return D


def cmd_homology(args) -> int:
    D = _load_distance_matrix(args.input)
    if args.maxdim == 2 and D.shape[0] > pipeline.H2_MAX_N:
        raise InputError(f"maxdim=2 on {D.shape[0]} points is too slow (limit {pipeline.H2_MAX_N}); subsample first")
    ph = homology.persistence(D, maxdim=args.maxdim)
    with io.atomic_path(args.out) as tmp:
        _write_diagrams(tmp, ph)
    sys.stdout.write(f"homology: " + ", ".join(f"H{d}: {len(g)} bars" for d, g in enumerate(ph["dgms"]))
                     + f" -> {args.out}\n")
    return 0


def cmd_detect(args) -> int:
    p = Path(args.input)
    if not p.exists() or p.suffix != ".npz":
        raise InputError(f"{args.input!r} must be an existing diagrams .npz file (from `topoembed homology`)")
    with np.load(p) as z:
        if "H1" not in z:
            raise InputError(f"{args.input} has no H1 diagram; run `topoembed homology` with --maxdim 1 or 2")
        dgm1, scale = z["H1"], float(z["scale"]) if "scale" in z else None
    # the staged chain has no second distance to confirm with: the rule weighs the rest
    det = loops.decide(dgm1, n_loops=args.n_loops, scale=scale, rule=args.loop_rule)
    io.write_json(args.out, {"detection": {k: det[k] for k in ("n_loops", "scores", "score", "rule", "alpha", "p_values",
                                                               "significant", "not_significant", "rescued")
                                           if k in det},
                             "features": det["features"]})
    sys.stdout.write(f"detect: {det['n_loops']} loop(s), score {det['score']:.3f} -> {args.out}\n")
    return 0


def _embed_args(p, with_loss):
    from ._losses import LOSS_NAMES as LOSSES  # no torch import for --help

    if with_loss:
        p.add_argument("--loss", default="infonce", choices=sorted(LOSSES), help="embedding loss (default: infonce)")
    else:
        p.add_argument("--embed", default=None, choices=sorted(LOSSES),
                       help="also embed the points with this loss and check that the embedding keeps the loops")
    p.add_argument("--n-epochs", dest="n_epochs", type=int, default=100, help="training epochs (default: 100)")
    if with_loss:  # `run` has the pipeline's --device (Params.device), which the embedding shares
        p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, ... (default: auto)")


def cmd_embed(args) -> int:
    from . import embed as embedding

    X, _ = _load(args)
    D = _load_distance_matrix(args.distances) if args.distances else None
    if D is not None and D.shape[0] != X.shape[0]:
        raise InputError(f"--distances is {D.shape[0]}×{D.shape[0]} but the input has {X.shape[0]} points")
    if args.n_components < 1:
        raise InputError(f"--n-components {args.n_components} must be >= 1")
    Y, info = embedding.embed(X, args.loss, D=D, n_components=args.n_components, n_epochs=args.n_epochs,
                              device=args.device, seed=args.seed, verbose=True)
    with io.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, Y)
    sys.stdout.write(f"embed: {args.loss} on {info['device']}, {Y.shape[0]}×{Y.shape[1]} -> {args.out}\n")
    return 0


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="topoembed", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"topoembed {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="all stages: graph, distances, homology, loops, report")
    _input_args(p)
    p.add_argument("--out", default="topoembed_results", help="output folder (default: topoembed_results)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--recipe", choices=["cell_cycle"], default=None,
                   help="for .h5ad raw counts: run te.pp.recipe_cell_cycle first and use its PCA")
    p.add_argument("--gene-symbols", default=None, metavar="COLUMN",
                   help="with --recipe: the adata.var column holding gene symbols when var_names are Ensembl ids "
                        "(default: detected)")
    p.add_argument("--key-added", default="topoembed", help="for .h5ad input: key of the results in result.h5ad")
    p.add_argument("--from-runs", nargs="+", default=None, metavar="RUN",
                   help="combine these `topoembed subsample` runs (one per subsample, same input and options) "
                        "instead of computing the subsamples here")
    p.add_argument("--jobs", type=_auto_or_int, default="auto",
                   help="local processes for the subsamples of a whole-dataset run: auto (one per usable CPU) "
                        "or a number (default: auto)")
    _embed_args(p, with_loss=False)
    _add_params(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("subsample", help="one subsample of a whole-dataset run (a cluster job) -> .run file; "
                                         "`run --from-runs` combines them")
    _input_args(p)
    p.add_argument("--index", type=int, required=True, help="which subsample: 0 .. n_subsamples - 1")
    p.add_argument("--out", required=True, help="output .run file")
    _add_params(p)
    p.set_defaults(func=cmd_subsample)

    p = sub.add_parser("graph", help="stage 1: kNN graph -> sparse .npz")
    _input_args(p)
    p.add_argument("--out", required=True, help="output .npz")
    _add_params(p, {"k", "metric", "symmetrize", "weights", "seed"})
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("distances", help="stage 2: distance matrix -> .npy")
    _input_args(p)
    p.add_argument("--graph", default=None, help="kNN graph .npz from `topoembed graph` (default: build it)")
    p.add_argument("--out", required=True, help="output .npy")
    _add_params(p, {"k", "metric", "symmetrize", "weights", "distance", "t", "n_components", "seed", "max_points"})
    p.set_defaults(func=cmd_distances)

    p = sub.add_parser("homology", help="stage 3: persistence diagrams of a distance matrix -> .npz")
    p.add_argument("input", help="distance matrix .npy")
    p.add_argument("--out", required=True, help="output diagrams .npz")
    _add_params(p, {"maxdim"})
    p.set_defaults(func=cmd_homology)

    p = sub.add_parser("detect", help="stage 4: loop detection scores from diagrams -> .json")
    p.add_argument("input", help="diagrams .npz from `topoembed homology`")
    p.add_argument("--out", required=True, help="output .json")
    _add_params(p, {"n_loops", "loop_rule"})
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("embed", help="stage 5: 2-D embedding with a torch loss -> .npy (+ loop check)")
    _input_args(p)
    p.add_argument("--out", required=True, help="output .npy (n × n_components)")
    _embed_args(p, with_loss=True)
    p.add_argument("--n-components", dest="n_components", type=int, default=2, help="embedding dimension (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--distances", default=None, help="for sketch-map: a .npy distance matrix from `topoembed distances`")
    p.set_defaults(func=cmd_embed)

    # Subcommands that live beside their stage (each module offers add_subcommand(sub)).
    import importlib.util

    for name in ("benchmark",):
        if importlib.util.find_spec(f"{__package__}.{name}") is not None:
            importlib.import_module(f"{__package__}.{name}").add_subcommand(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    import signal

    def _terminated(signum, frame):  # SIGTERM (a scheduler's kill): unwind, so no partial output stays
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (e.g. called from a worker)
        signal.signal(signal.SIGTERM, _terminated)
    try:
        out = getattr(args, "out", None)
        if out and args.command != "benchmark":  # fail now, not after the computation
            io.check_writable(out, folder=args.command == "run")
        return args.func(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"topoembed {args.command}: interrupted (Ctrl-C or SIGTERM); no output was written\n")
        return 130
    except InputError as exc:
        sys.stderr.write(f"topoembed {args.command}: error: {exc}\n")
        return 2
    except MemoryError:
        sys.stderr.write(f"topoembed {args.command}: error: out of memory; subsample the input (--subsample)\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
