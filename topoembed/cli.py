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
import time
from pathlib import Path

import numpy as np

from . import analysis, ensemble, evidence, graph, homology, io, pipeline, prevalence, report, spectral
from ._version import __version__
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
    "surface": "1: where a second loop may have been left out, look for a closed surface (a void on 200 "
               "landmarks, H2) with the loops alive at its birth, and report them (a torus); 0: no such check",
    "phase_low_confidence": "1: also give a phase for loops without support (p >= 0.05 and, for a whole dataset, "
                            "prevalence < 0.9); 0: their phase is withheld (NaN) and the report says why",
    "confirm": "1: a loop count must be confirmed by the other spectral distance on the same graph "
               "(effective resistance <-> diffusion), else 0 loops are reported; 0: off (single runs: the "
               "subsamples of a whole dataset or of a prevalence check rely on their prevalence instead)",
    "prevalence_check": "1: runs on up to 1,000 points look for a loop with universal-null p >= 0.01 in 10 "
                        "subsamples of 70 %% of the points (its prevalence >= 0.9 supports it) and, where no "
                        "loop is found, for the longest H1 feature (reported if it recurs in >= 90 %%); 0: off",
}
_CHOICES = {"knn_method": ["auto", "exact", "approx"], "loop_rule": list(pipeline.loops.LOOP_RULES), "phase_method": list(pipeline.localization.PHASE_METHODS), "distance": sorted(spectral.DISTANCES) + ["auto"], "symmetrize": ["or", "and"], "weights": list(graph.WEIGHTS)}


def _auto_or_int(value: str):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither 'auto' nor an integer") from None


def _add_params(parser, names=None, inherit=False):
    """Add the Params fields (or the subset ``names``) as --options with their defaults.
    ``inherit``: a stage step, whose unset options come from its inputs' records."""
    for f in dataclasses.fields(pipeline.Params):
        if names is not None and f.name not in names:
            continue
        default = f.default
        typ = ({"n_loops": _auto_or_int, "n_subsamples": _auto_or_int, "t": float}.get(f.name)
               or (int if isinstance(default, int) else float if isinstance(default, float) else str))
        if f.name == "subsample":
            typ = int
        shown = int(default) if isinstance(default, bool) else default  # as the option takes it: 1/0
        where = f"default: as the input files record, else {shown}" if inherit else f"default: {shown}"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=typ,
                            default=None if inherit else default,
                            choices=_CHOICES.get(f.name), help=f"{_HELP.get(f.name, '')} ({where})")


def _params_from(args) -> pipeline.Params:
    names = {f.name for f in dataclasses.fields(pipeline.Params)}
    return pipeline.Params(**{k: v for k, v in vars(args).items() if k in names})


def _input_args(parser):
    parser.add_argument("input", nargs="?", default=DEMO_INPUT,
                        help=f"points: .h5ad, .loom, a 10x matrix folder, .csv/.tsv, .npy, or synthetic:NAME?n=..&d=..&sigma=..&seed=.. "
                             f"(default: the demo {DEMO_INPUT})")
    parser.add_argument("--use-rep", default=None, help="for AnnData input: obsm key to use (default: X)")
    idx = parser.add_mutually_exclusive_group()
    idx.add_argument("--index-col", dest="index_col", action="store_const", const=True, default=None,
                     help="for .csv/.tsv input: the first column is a row index; drop it (default: detected)")
    idx.add_argument("--no-index-col", dest="index_col", action="store_const", const=False,
                     help="for .csv/.tsv input: keep the first column even if it looks like a row index")


def _load(args):
    X, meta = io.load_points(args.input, use_rep=args.use_rep, index_col=getattr(args, "index_col", None))
    return check_points(X, min_points=3), meta


# ---------------------------------------------------------------- run
def _anndata_input(args):
    """(adata, use_rep) of an AnnData input (.h5ad, .loom, a 10x folder) for run and prepare: with
    --recipe cell_cycle the recipe's PCA of the raw counts (in X, or in --layer)."""
    from . import pp

    if not io.is_anndata_input(args.input):
        if args.recipe or args.layer:
            raise InputError("--recipe and --layer need AnnData input with raw counts (.h5ad, .loom or a 10x "
                             "matrix folder); a table or .npy is analysed as it is")
        return None, args.use_rep
    adata = io.read_anndata(args.input)
    if args.recipe == "cell_cycle":
        pp.recipe_cell_cycle(adata, layer=args.layer, gene_symbols=args.gene_symbols)
        return adata, "X_pca_cell_cycle"
    if args.layer is not None:
        raise InputError("--layer picks the raw counts for --recipe cell_cycle; without a recipe use --use-rep")
    return adata, args.use_rep


def cmd_run(args) -> int:
    if io.is_anndata_input(args.input) or args.recipe or args.layer:
        return _run_h5ad(args)
    X, meta = _load(args)
    params = _params_from(args)
    params.validate(X.shape[0])
    _check_embed_args(args, params)
    with io.OutputSet(args.out) as outputs:
        runs = [io.read_run(f) for f in args.from_runs] if args.from_runs else None
        result = analysis.run(X, params, from_runs=runs, jobs=args.jobs, progress=not args.quiet)
        emb = _embed_for_run(args, X, result)
        summ = _write_run_outputs(outputs, args, result, X, emb, ids=meta.get("row_names"))
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
    import importlib.util

    if args.embed and importlib.util.find_spec("torch") is None:  # now, not after the loop stages
        raise ModuleNotFoundError("No module named 'torch'", name="torch")
    if args.embed and args.embed.startswith("sketchmap") and params.subsample is not None:
        raise InputError("--embed sketchmap uses the run's distance matrix, which covers only the subsample; "
                         "drop --subsample or use --embed infonce")


def _embed_for_run(args, X, result):
    """(Y, info, topology) for --embed LOSS, or None: embeds every input point."""
    if not args.embed:
        return None
    from . import embed as embedding

    D = result.D if args.embed.startswith("sketchmap") else None
    epochs = {} if args.n_epochs is None else {"n_epochs": args.n_epochs}
    Y, info = embedding.embed(X, args.embed, D=D, **epochs, device=args.device, seed=args.seed,
                              verbose=not args.quiet)
    topo = embedding.embedding_topology(Y[result.index], result.detection, seed=args.seed)
    return Y, info, topo


def _run_h5ad(args) -> int:
    """AnnData in: results go into a copy of the AnnData (``result.h5ad``) under --key-added."""
    from . import tl

    adata, use_rep = _anndata_input(args)
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
        summ = _write_run_outputs(outputs, args, result, X, emb, view=_view_of(adata, X.shape[0]),
                                  ids=list(adata.obs_names))
        adata.write_h5ad(outputs.path("result.h5ad"))
        outputs.commit()
    _print_table(summ, args.out, extra="result.h5ad")
    return 0


def _anndata_points(adata, use_rep):
    from ._anndata import points

    return points(adata, use_rep)


def _view_of(adata, n):
    """The 2-D view of the report's loop plots: the user's UMAP when the AnnData has one."""
    Y = None if adata is None else adata.obsm.get("X_umap")
    return ("UMAP", np.asarray(Y)[:, :2]) if Y is not None and len(Y) == n and np.ndim(Y) == 2 else None


def _write_run_outputs(outputs, args, result, X, emb=None, view=None, ids=None) -> dict:
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
    _write_diagrams(outputs.path("diagrams.npz"), {**result.ph, "n_points": len(result.index)})
    per_point = [{f: lp[f] for f in pipeline.PER_POINT if f in lp} for lp in result.loops]
    outputs.path("report.html").write_text(report.render_html(summ, points=X[result.index], index=result.index,
                                                              per_point=per_point, extra_sections=extra, view=view))
    if any(per_point):
        _write_cells_csv(outputs.path("cells.csv"), result, ids)
    return summ


def _write_cells_csv(path, result, ids=None):
    """One row per input point: id (the input's cell names where it has them, else the row
    number), and per loop phase_i, phase_confidence_i, loop_distance_i, on_loop_i."""
    cols = {}
    for i, lp in enumerate(result.loops, start=1):
        for f in pipeline.PER_POINT:
            if f in lp:
                cols[f"{f}_{i}"] = np.asarray(lp[f], dtype=float)
    table = np.column_stack(list(cols.values()))
    rows = range(result.n_input) if ids is None else ids
    with open(path, "w", newline="") as fh:
        import csv

        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["id", *cols])
        out.writerows([name, *(f"{v:.6g}" for v in values)] for name, values in zip(rows, table))


def _print_table(summ, out, extra=None):
    det = summ["detection"]
    lines = [
        f"topoembed {summ['version']}: {summ['input']}",
        f"  points        {summ['n_points']}" + (f" (of {summ['n_input']})" if summ["n_input"] != summ["n_points"] else ""),
        f"  distance      {summ['distance']} (k={summ['params']['k']})",
        f"  verdict       {report.summary_verdict(summ).headline()}",
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
# Each stage writes one file that records the settings it depends on
# (pipeline.STAGE_PARAMS), the points it saw and its time. A later stage takes its settings
# from those records unless they are given on its command line, and refuses inputs whose
# records disagree with each other or with its own options. The chain
# graph → distances → homology → detect → localize → report gives what `run` gives on the
# same points (tested), so a workflow can cache and rerun each stage on its own.
_TIMING = {"graph": "graph", "distances": "distances", "homology": "homology", "detect": "detection",
           "localize": "localization"}


def _resolve(args, records: list) -> pipeline.Params:
    """This step's Params: an option given on the command line, else the inputs' records, else
    the default. Every record must agree with the result (io.check_record)."""
    made: dict = {}
    for path, rec in records:
        if rec is not None:
            made.update(rec.get("params", {}))
    values = {}
    for f in dataclasses.fields(pipeline.Params):
        given = getattr(args, f.name, None)
        values[f.name] = given if given is not None else made.get(f.name, f.default)
    params = pipeline.Params(**values)
    for path, rec in records:
        io.check_record(rec, path, values)
    return params


def _merged(records: list) -> tuple[dict, list]:
    """The stage times and the warnings (each once) that the input files carry."""
    timings, warned = {}, []
    for _, rec in records:
        if rec is not None:
            timings.update(rec.get("timings", {}))
            warned += [w for w in rec.get("warnings", []) if w not in warned]
    return timings, warned


def _record(stage: str, params: pipeline.Params, points: dict | None, records: list, seconds: float,
            warnings: list) -> dict:
    timings, warned = _merged(records)
    timings[_TIMING[stage]] = float(seconds)
    return {"stage": stage, "version": __version__,
            "params": {k: getattr(params, k) for k in pipeline.STAGE_PARAMS[stage]},
            "points": points, "timings": timings, "warnings": warned + [w for w in warnings if w not in warned]}


@contextlib.contextmanager
def _stage_work():
    """One BLAS thread (as pipeline.run: the same digits on any machine), the warnings kept, the time taken."""

    box = {"t0": time.perf_counter()}
    with pipeline.run_context() as caught:
        box["warnings"] = caught
        yield box
    box["seconds"] = time.perf_counter() - box["t0"]


def _points_with_fp(args):
    X, _ = _load(args)
    return X, io.points_fingerprint(X)


def _load_graph(path, n):
    """(A, record) from a `topoembed graph` file or a plain scipy sparse .npz."""
    import scipy.sparse as sp

    arrays, rec = io.read_stage(path, "graph file", f"topoembed graph INPUT --out {path}")
    try:
        A = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"]))
    except KeyError:
        raise InputError(f"{path} is not a sparse graph .npz (no data/indices/indptr); make it with "
                         "`topoembed graph`") from None
    if A.shape != (n, n):
        raise InputError(f"graph {path} is {A.shape[0]}×{A.shape[1]} but the input has {n} points")
    return A, rec


def cmd_graph(args) -> int:
    X, fp = _points_with_fp(args)
    p = _resolve(args, [])
    check_k(p.k, X.shape[0])
    with _stage_work() as box:
        A = graph.knn_graph(X, k=p.k, metric=p.metric, symmetrize=p.symmetrize, weights=p.weights,
                            random_state=p.seed, device=p.device, method=p.knn_method).tocsr()
    io.write_stage(args.out, _record("graph", p, fp, [], box["seconds"], box["warnings"]),
                   format=np.array("csr"), shape=np.array(A.shape), data=A.data, indices=A.indices, indptr=A.indptr)
    n_comp, _ = graph.components(A)
    sys.stdout.write(f"graph: {A.shape[0]} points, {A.nnz // 2} edges, {n_comp} component(s) -> {args.out}\n")
    return 0


def cmd_distances(args) -> int:
    X, fp = _points_with_fp(args)
    records, A = [], None
    if args.graph:
        A, rec = _load_graph(args.graph, X.shape[0])
        records.append((args.graph, rec))
        io.check_record(rec, args.graph, {}, fp)
    p = _resolve(args, records)
    p.validate(X.shape[0])
    with _stage_work() as box:
        if A is None and p.distance != "euclidean":
            A = graph.knn_graph(X, k=p.k, metric=p.metric, symmetrize=p.symmetrize, weights=p.weights,
                                random_state=p.seed, device=p.device, method=p.knn_method)
        spectra = spectral.component_spectra(A, device=p.device) if p.distance != "euclidean" else None
        D = spectral.distance_matrix(p.distance, X=X, A=A, t=p.t, n_components=p.n_components, spectra=spectra)
    if str(args.out).endswith(".npy"):  # a plain matrix, for other tools
        with io.atomic_path(args.out) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, D)
    else:
        io.write_stage(args.out, _record("distances", p, fp, records, box["seconds"], box["warnings"]), D=D)
    sys.stdout.write(f"distances: {p.distance}, {D.shape[0]}×{D.shape[1]} -> {args.out}\n")
    return 0


def _load_distance_matrix(path):
    """(D, record) from a `topoembed distances` .npz or a plain square .npy."""
    p = Path(path)
    if p.suffix == ".npz":
        arrays, rec = io.read_stage(p, "distance file", "topoembed distances INPUT --out D.npz")
        if "D" not in arrays:
            raise InputError(f"{path} holds no distance matrix 'D'; make it with `topoembed distances`")
        D = arrays["D"]
    elif p.suffix == ".npy":
        if not p.exists():
            raise InputError(f"distance file {path!r} does not exist; make it with `topoembed distances`")
        D, rec = np.load(p, allow_pickle=False), None
    else:
        raise InputError(f"{path} must be a distance matrix .npz or .npy (from `topoembed distances`)")
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise InputError(f"{path} holds an array of shape {D.shape}, not a square distance matrix")
    if np.isnan(D).any():
        raise InputError(f"{path} contains NaN distances; recompute it")
    if not np.allclose(D, D.T, equal_nan=True):
        raise InputError(f"{path} is not symmetric; pass a distance matrix")
    return D, rec


def _diagram_arrays(ph) -> dict:
    arrays = {f"H{d}": dgm for d, dgm in enumerate(ph["dgms"])}
    arrays["birth_edges_H1"] = ph["birth_edges"]
    arrays["thresh"] = np.array(ph["thresh"])
    arrays["scale"] = np.array(ph["scale"])
    arrays["exact"] = np.array(bool(ph.get("exact", True)))
    # H0 drops bars of length 0 (duplicates; a two-point side component under corrected effective
    # resistance), so its length is not the number of points: the file says it
    if "n_points" in ph:
        arrays["n_points"] = np.array(int(ph["n_points"]))
    return arrays


def _write_diagrams(path, ph):
    io.write_npz(path, **_diagram_arrays(ph))


def _load_diagrams(path):
    """(ph, record) from a `topoembed homology` .npz: the dict homology.persistence returns."""
    arrays, rec = io.read_stage(path, "diagrams file", "topoembed homology D.npz --out H.npz")
    if "H1" not in arrays:
        raise InputError(f"{path} has no H1 diagram; run `topoembed homology` with --maxdim 1 or 2")
    dgms = [arrays[f"H{d}"] for d in range(3) if f"H{d}" in arrays]
    ph = {"dgms": dgms, "birth_edges": arrays.get("birth_edges_H1", np.zeros((len(dgms[1]), 2), dtype=int)),
          "thresh": float(arrays.get("thresh", np.inf)),
          "scale": float(arrays["scale"]) if "scale" in arrays else None,
          "exact": bool(arrays.get("exact", True))}
    if "n_points" in arrays:
        ph["n_points"] = int(arrays["n_points"])
    elif rec and rec.get("points"):
        ph["n_points"] = int(rec["points"]["n"])
    else:  # a file made by an older version without a record: H0's bars, one per point unless duplicates
        ph["n_points"] = len(dgms[0])
    return ph, rec


def cmd_homology(args) -> int:
    from . import localize as localization

    D, rec = _load_distance_matrix(args.input)
    records = [(args.input, rec)]
    p = _resolve(args, records)
    if p.maxdim == 2 and D.shape[0] > pipeline.H2_MAX_N:
        raise InputError(f"maxdim=2 on {D.shape[0]} points is too slow (limit {pipeline.H2_MAX_N}); subsample first")
    with _stage_work() as box:  # Z_47, as `run`: the cocycles of the loops lift to integers
        ph = homology.persistence(D, maxdim=p.maxdim, coeff=localization.DEFAULT_COEFF)
    ph["n_points"] = D.shape[0]
    points = rec.get("points") if rec else None
    io.write_stage(args.out, _record("homology", p, points, records, box["seconds"], box["warnings"]),
                   **_diagram_arrays(ph))
    sys.stdout.write("homology: " + ", ".join(f"H{d}: {len(g)} bars" for d, g in enumerate(ph["dgms"]))
                     + f" -> {args.out}\n")
    return 0


def _points_of(records) -> dict | None:
    return next((rec["points"] for _, rec in records if rec and rec.get("points")), None)


def cmd_detect(args) -> int:
    ph, rec = _load_diagrams(args.input)
    records, A = [(args.input, rec)], None
    n_points = ph["n_points"]
    if args.graph:
        A, grec = _load_graph(args.graph, n_points)
        records.append((args.graph, grec))
        io.check_record(grec, args.graph, {}, _points_of(records[:1]))
    D = None
    if args.distances:
        D, drec = _load_distance_matrix(args.distances)
        if D.shape[0] != n_points:
            raise InputError(f"{args.distances} is {D.shape[0]}×{D.shape[0]} but the diagrams are of "
                             f"{n_points} points; pass the distances the diagrams were computed from")
        if drec is not None:
            records.append((args.distances, drec))
            io.check_record(drec, args.distances, {}, _points_of(records[:1]))
    p = _resolve(args, records)
    if A is None and p.confirm and p.loop_rule != "gap" and p.distance in evidence.CONFIRM_WITH:
        log.warning("no --graph: the loop count is not confirmed by the other spectral distance as `run` does; "
                    "pass --graph G.npz (the graph of the distances), or --confirm 0 to say so")
        p = dataclasses.replace(p, confirm=False)
    with _stage_work() as box:
        det = evidence.decide_loops(ph, A, p, D=D)
    record = _record("detect", p, _points_of(records), records, box["seconds"], box["warnings"])
    io.write_json(args.out, {**record, "detection": det, "features": det["features"]})
    sys.stdout.write(f"detect: {det['n_loops']} loop(s), score {det['score']:.3f} -> {args.out}\n")
    return 0


def _load_detection(path):
    import json

    p = Path(path)
    if not p.exists():
        raise InputError(f"detection file {path!r} does not exist; make it with `topoembed detect`")
    try:
        doc = json.loads(p.read_text())
        det = doc["detection"]
    except (ValueError, KeyError):
        raise InputError(f"{path} is not a detection .json from `topoembed detect`") from None
    det["features"] = [int(f) for f in det.get("features", doc.get("features", []))]
    det["scores"] = {int(m): float(v) for m, v in det["scores"].items()}
    return det, (doc if "stage" in doc else None)


def _stage_inputs(args, X, fp, need_loops: bool):
    """Graph, distances, diagrams, detection (and loops) of a localize/report step, checked
    against each other and against the points."""
    A, grec = _load_graph(args.graph, X.shape[0])
    D, drec = _load_distance_matrix(args.distances)
    ph, hrec = _load_diagrams(args.diagrams)
    det, jrec = _load_detection(args.detection)
    records = [(args.graph, grec), (args.distances, drec), (args.diagrams, hrec), (args.detection, jrec)]
    loops_file = getattr(args, "loops", None)
    found = None
    if loops_file:
        found, ph_loc, lrec = _load_loops(loops_file, X.shape[0])
        records.append((loops_file, lrec))
        ph = {**ph, "birth_edges": ph_loc} if ph_loc is not None else ph
    elif need_loops:
        raise InputError("pass --loops L.npz (from `topoembed localize`)")
    if D.shape[0] != X.shape[0]:
        raise InputError(f"{args.distances} is {D.shape[0]}×{D.shape[0]} but the input has {X.shape[0]} points")
    for path, rec in records:
        io.check_record(rec, path, {}, fp)
    return A, D, ph, det, records, found


def cmd_localize(args) -> int:
    X, fp = _points_with_fp(args)
    A, D, ph, det, records, _ = _stage_inputs(args, X, fp, need_loops=False)
    p = _resolve(args, records)
    index = np.arange(X.shape[0])
    check, t_check, det_in = None, 0.0, det
    with _stage_work() as box:
        found = pipeline.describe_loops(ph, det, index)
        if p.localize and found:
            ph = pipeline.localization_stage(found, X, index, A, D, ph, det, p, withhold=False)
        # as `run`: prevalence as evidence, and the phases withheld only after it had its say
        t0 = time.perf_counter()
        det, found, ph, check = prevalence.prevalence_stage(X, A, D, ph, det, found, p, jobs=args.jobs)
        t_check = time.perf_counter() - t0 if check is not None else 0.0
        pipeline.withhold_unsupported_phases(found, det, p)
    arrays = {f"{f}_{i}": np.asarray(lp[f]) for i, lp in enumerate(found) for f in pipeline.PER_POINT if f in lp}
    record = _record("localize", p, fp, records, box["seconds"] - t_check, box["warnings"])
    if check is not None:
        record["prevalence_check"] = check
        record["timings"]["prevalence_check"] = t_check
    if det is not det_in:  # the check changed the detection (a loop found by its recurrence)
        record["detection"] = {**det, "features": [int(f) for f in det["features"]]}
    record["loops"] = [{k: v for k, v in lp.items() if k not in pipeline.PER_POINT} for lp in found]
    io.write_stage(args.out, record, birth_edges_H1=np.asarray(ph["birth_edges"]), **arrays)
    sys.stdout.write(f"localize: {len(found)} loop(s), " + ", ".join(
        f"loop {i + 1}: {lp.get('n_on_loop', '?')} points on it" for i, lp in enumerate(found)) + f" -> {args.out}\n")
    return 0


def _load_loops(path, n):
    arrays, rec = io.read_stage(path, "loops file", "topoembed localize INPUT ... --out L.npz")
    if rec is None or "loops" not in rec:
        raise InputError(f"{path} is not a loops file from `topoembed localize`")
    found = []
    for i, lp in enumerate(rec["loops"]):
        lp = dict(lp)
        for f in pipeline.PER_POINT:
            if f"{f}_{i}" in arrays:
                if len(arrays[f"{f}_{i}"]) != n:
                    raise InputError(f"{path} holds loop arrays of {len(arrays[f'{f}_{i}'])} points, not {n}")
                lp[f] = arrays[f"{f}_{i}"]
        found.append(lp)
    return found, arrays.get("birth_edges_H1"), rec


def cmd_report(args) -> int:
    X, fp = _points_with_fp(args)
    A, D, ph, det, records, found = _stage_inputs(args, X, fp, need_loops=True)
    p = dataclasses.replace(_resolve(args, records), n_subsamples=1)
    timings, warned = _merged(records)
    timings = {k: timings[k] for k in [*_TIMING.values(), "prevalence_check"] if k in timings}  # in run's order
    timings["total"] = float(sum(timings.values()))
    lrec = records[-1][1]  # the loops file's record: a prevalence check made by `localize`
    if lrec is not None and "detection" in lrec:  # the check changed the count
        det = {**lrec["detection"], "scores": {int(m): float(v) for m, v in lrec["detection"]["scores"].items()}}
    elif lrec is not None and "prevalence_check" in lrec:
        det = {**det, "prevalence_check": lrec["prevalence_check"]}
    n_comp, _ = graph.components(A)
    result = pipeline.Result(params=p, n_input=X.shape[0], index=np.arange(X.shape[0]), A=A, D=D, ph=ph,
                             detection=det, loops=found, timings=timings, n_components=int(n_comp), warnings=warned)
    emb = None
    if args.embedding:
        from .embed import embedding_topology

        Y = np.load(args.embedding, allow_pickle=False)
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise InputError(f"--embedding {args.embedding} holds {Y.shape}, not one row per input point")
        emb = (Y, {"loss": args.loss, "device": "file"}, embedding_topology(Y, det, seed=p.seed))
    adata = io.read_anndata(args.input) if io.is_anndata_input(args.input) else None
    with io.OutputSet(args.out) as outputs:
        summ = _write_run_outputs(outputs, args, result, X, emb, view=_view_of(adata, X.shape[0]),
                                  ids=None if adata is None else list(adata.obs_names))
        if adata is not None:
            from . import tl

            tl.store_result(adata, result, use_rep=args.use_rep, key_added=args.key_added, input_desc=str(args.input))
            if emb is not None:
                from .embed import obsm_key

                adata.obsm[obsm_key(args.loss)] = emb[0]
            adata.write_h5ad(outputs.path("result.h5ad"))
        outputs.commit()
    _print_table(summ, args.out, extra="result.h5ad" if str(args.input).endswith(".h5ad") else None)
    return 0


# ---------------------------------------------------------------- workflow helpers
#: obsm key of the points in a `topoembed prepare` file: every later stage uses --use-rep with it.
PREPARED_REP = "X_topoembed_input"


def cmd_prepare(args) -> int:
    """One sample's points, ready for the stages: an .h5ad (the input's own AnnData for .h5ad
    input, else a new one) with the points to analyse in obsm[PREPARED_REP]."""
    import anndata

    src = str(args.input)
    adata, rep = _anndata_input(args)
    if adata is not None:
        X = _anndata_points(adata, rep)
    else:
        X, _ = _load(args)
        adata = anndata.AnnData(np.zeros((X.shape[0], 0), dtype=np.float32))
        rep = None
    adata.obsm[PREPARED_REP] = np.asarray(X, dtype=np.float64)
    adata.uns["topoembed_input"] = {"source": src, "use_rep": rep or "X", "recipe": args.recipe or "none",
                                    "layer": args.layer or "X"}
    with io.atomic_path(args.out) as tmp:
        adata.write_h5ad(tmp)
    sys.stdout.write(f"prepare: {X.shape[0]} points × {X.shape[1]} from {src} "
                     f"({'recipe ' + args.recipe if args.recipe else 'use_rep ' + (rep or 'X')}) -> {args.out}\n")
    return 0


def cmd_collect(args) -> int:
    from . import collect

    pairs = {}
    for item in args.summaries:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).parent.name, item
        pairs[name] = path
    rows = collect.table(pairs, logs=args.logs)
    for r in rows:
        if r["verdict"] == collect.FAILED:
            sys.stderr.write(f"topoembed collect: sample {r['sample']!r} failed: {r['error']}\n")
    out = Path(args.out)
    with io.OutputSet(out) as outputs:
        outputs.path("samples.csv").write_text(collect.to_csv(rows))
        outputs.path("samples.md").write_text(collect.to_markdown(rows))
        ax = collect.plot(rows)
        ax.figure.savefig(outputs.path("samples.png"), dpi=120, format="png")
        import matplotlib.pyplot as plt

        plt.close(ax.figure)
        outputs.commit()
    sys.stdout.write(f"collect: {len(rows)} sample(s) -> {out}/ (samples.csv, samples.md, samples.png)\n")
    return 0


def _embed_args(p, with_loss):
    from ._losses import LOSS_NAMES as LOSSES  # no torch import for --help

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


def cmd_embed(args) -> int:
    from . import embed as embedding

    X, _ = _load(args)
    D = _load_distance_matrix(args.distances)[0] if args.distances else None
    if D is not None and D.shape[0] != X.shape[0]:
        raise InputError(f"--distances is {D.shape[0]}×{D.shape[0]} but the input has {X.shape[0]} points")
    if args.n_components < 1:
        raise InputError(f"--n-components {args.n_components} must be >= 1")
    epochs = {} if args.n_epochs is None else {"n_epochs": args.n_epochs}
    if args.s is not None:
        if embedding.LOSSES[args.loss][0] is not embedding.ContrastiveEmbedding:
            contrastive = sorted(k for k, v in embedding.LOSSES.items() if v[0] is embedding.ContrastiveEmbedding)
            raise InputError(f"--spectrum applies to the contrastive losses ({', '.join(contrastive)}), "
                             f"not to --loss {args.loss}")
        epochs["s"] = args.s
    Y, info = embedding.embed(X, args.loss, D=D, n_components=args.n_components, **epochs,
                              device=args.device, seed=args.seed, verbose=True)
    with io.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, Y)
    sys.stdout.write(f"embed: {args.loss} on {info['device']}, {Y.shape[0]}×{Y.shape[1]} -> {args.out}\n")
    return 0


# ---------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topoembed", description="Find loops in high-dimensional data with spectral-distance persistent "
        "homology: one subcommand per stage, and `run` for all of them.",
        epilog="`topoembed SUBCOMMAND --help` lists a subcommand's options. Progress: a bar on a terminal, one "
               "log line per step otherwise (-q: neither).")
    parser.add_argument("--version", action="version", version=f"topoembed {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    parser.add_argument("-q", "--quiet", dest="quiet_all", action="store_true",
                        help="no progress bar or progress lines (also after the subcommand: topoembed run -q)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="all stages: graph, distances, homology, loops, report")
    _input_args(p)
    p.add_argument("--out", default="topoembed_results", help="output folder (default: topoembed_results)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--recipe", choices=["cell_cycle"], default=None,
                   help="for raw counts (.h5ad, .loom, a 10x folder): run te.pp.recipe_cell_cycle first and use "
                        "its PCA")
    p.add_argument("--layer", default=None, help="with --recipe: the layer holding the raw counts (default: X)")
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

    S = pipeline.STAGE_PARAMS
    p = sub.add_parser("graph", help="stage 1: kNN graph -> .npz (with the settings it was made with)")
    _input_args(p)
    p.add_argument("--out", required=True, help="output .npz")
    _add_params(p, {*S["graph"], "device"}, inherit=True)
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("distances", help="stage 2: distance matrix -> .npz (or a plain .npy)")
    _input_args(p)
    p.add_argument("--graph", default=None, help="kNN graph .npz from `topoembed graph` (default: build it)")
    p.add_argument("--out", required=True, help="output .npz (recorded settings) or .npy (the bare matrix)")
    _add_params(p, {*S["distances"], "device", "max_points"}, inherit=True)
    p.set_defaults(func=cmd_distances)

    p = sub.add_parser("homology", help="stage 3: persistence diagrams of a distance matrix -> .npz")
    p.add_argument("input", help="distance matrix .npz (from `topoembed distances`) or .npy")
    p.add_argument("--out", required=True, help="output diagrams .npz")
    _add_params(p, {"maxdim"}, inherit=True)
    p.set_defaults(func=cmd_homology)

    p = sub.add_parser("detect", help="stage 4: number of loops, scores, p-values and the confirmation -> .json")
    p.add_argument("input", help="diagrams .npz from `topoembed homology`")
    p.add_argument("--graph", default=None,
                   help="the kNN graph .npz of the distances: the other spectral distance is computed on it to "
                        "confirm the count, as `run` does (default: no confirmation, with a warning)")
    p.add_argument("--distances", default=None,
                   help="the distance matrix .npz of the diagrams: where a second loop may have been left out, "
                        "a closed surface is looked for on its landmarks, as `run` does (default: not looked for)")
    p.add_argument("--out", required=True, help="output .json")
    _add_params(p, {*S["detect"], "device"}, inherit=True)
    p.set_defaults(func=cmd_detect)

    def _stage_files(p, with_loops):
        p.add_argument("--graph", required=True, help="kNN graph .npz (`topoembed graph`)")
        p.add_argument("--distances", required=True, help="distance matrix .npz (`topoembed distances`)")
        p.add_argument("--diagrams", required=True, help="diagrams .npz (`topoembed homology`)")
        p.add_argument("--detection", required=True, help="detection .json (`topoembed detect`)")
        if with_loops:
            p.add_argument("--loops", required=True, help="loops .npz (`topoembed localize`)")

    p = sub.add_parser("localize", help="stage 4b: each loop's cycle, member points and phase -> .npz")
    _input_args(p)
    _stage_files(p, with_loops=False)
    p.add_argument("--out", required=True, help="output loops .npz")
    p.add_argument("--jobs", type=_auto_or_int, default="auto",
                   help="local processes for the subsamples of a prevalence check: auto (one per usable CPU) "
                        "or a number (default: auto)")
    _add_params(p, set(S["localize"]), inherit=True)
    p.set_defaults(func=cmd_localize)

    p = sub.add_parser("report", help="stage 6: summary.json, report.html, cells.csv (and result.h5ad) from "
                                      "the stage files; the same as `run` on the same points")
    _input_args(p)
    _stage_files(p, with_loops=True)
    p.add_argument("--embedding", default=None, help="an embedding .npy (`topoembed embed`): checked for the loops")
    from ._losses import LOSS_NAMES

    p.add_argument("--loss", default="infonce", choices=sorted(LOSS_NAMES),
                   help="the loss --embedding was made with (default: infonce)")
    p.add_argument("--key-added", default="topoembed", help="for .h5ad input: key of the results in result.h5ad")
    p.add_argument("--out", required=True, help="output folder")
    _add_params(p, inherit=True)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("embed", help="stage 5: 2-D embedding with a torch loss -> .npy (+ loop check)")
    _input_args(p)
    p.add_argument("--out", required=True, help="output .npy (n × n_components)")
    _embed_args(p, with_loss=True)
    p.add_argument("--n-components", dest="n_components", type=int, default=2, help="embedding dimension (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--distances", default=None, help="for sketch-map: a .npy distance matrix from `topoembed distances`")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("prepare", help="one sample's points for the stages -> .h5ad (recipe, layer, use_rep "
                                       f"applied; points in obsm['{PREPARED_REP}'])")
    _input_args(p)
    p.add_argument("--recipe", choices=["cell_cycle"], default=None,
                   help="for .h5ad raw counts: te.pp.recipe_cell_cycle, then its PCA are the points")
    p.add_argument("--layer", default=None, help="with --recipe: the layer holding the raw counts (default: X)")
    p.add_argument("--gene-symbols", default=None, metavar="COLUMN",
                   help="with --recipe: the adata.var column of gene symbols (default: detected)")
    p.add_argument("--out", required=True, help="output .h5ad")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("collect", help="many samples' summary.json -> one table (CSV, Markdown) and a plot")
    p.add_argument("summaries", nargs="+", metavar="[NAME=]SUMMARY",
                   help="summary.json files, each optionally named NAME=PATH (default name: the name of its folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--logs", default=None, metavar="DIR",
                   help="a folder with one log folder per sample (the samples workflow's logs/): a sample without "
                        "summary.json is then listed as failed, with its log's last line, instead of stopping")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("benchmark", add_help=False,
                       help="the noise benchmark (Damrich et al. 2024) with auto selection; its harness lives in "
                            "the source repository (benchmarks/noise_benchmark.py); `topoembed benchmark --help`")
    p.set_defaults(func=cmd_benchmark, harness_args=[])  # main() hands it the rest of the command line
    return parser


#: The noise benchmark's harness, in the source repository beside the package (not installed).
HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "noise_benchmark.py"


def benchmark_harness():
    """The benchmark harness module (``benchmarks/noise_benchmark.py`` of a source checkout with
    an editable install), loaded from its file; its folder goes on ``sys.path`` so that worker
    processes can import it too."""
    import importlib.util

    if "noise_benchmark" in sys.modules:
        return sys.modules["noise_benchmark"]
    if not HARNESS.exists():
        raise InputError("the noise benchmark's harness is not part of the installed package: it is "
                         "benchmarks/noise_benchmark.py of the source repository; clone it and install it with "
                         "`pip install -e .`, or run `python benchmarks/noise_benchmark.py` there")
    sys.path.insert(0, str(HARNESS.parent))
    spec = importlib.util.spec_from_file_location("noise_benchmark", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules["noise_benchmark"] = module
    spec.loader.exec_module(module)
    return module


def cmd_benchmark(args) -> int:
    return benchmark_harness().main(args.harness_args)


class _Format(logging.Formatter):
    """``WARNING topoembed.spectral: ...`` for messages, ``topoembed: ...`` for progress steps."""

    def __init__(self):
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record):
        return record.getMessage() if record.name == "topoembed.progress" else super().format(record)


def main(argv=None) -> int:
    """The ``topoembed`` command; returns the exit status. Messages that name a fix say it as
    ``--option value`` while it runs (:func:`topoembed._validate.option`)."""
    from ._validate import INTERFACE

    before, INTERFACE["name"] = INTERFACE["name"], "cli"
    try:
        return _main(argv)
    finally:
        INTERFACE["name"] = before


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    cut = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if cut == len(argv) and not {"-h", "--help", "--version"} & set(argv):  # `topoembed` alone: help and a start
        parser.print_help()
        sys.stdout.write("\nStart with the demo: `topoembed run` (a noisy circle; results in topoembed_results/),\n"
                         "then `topoembed run YOUR_FILE --out DIR` (.h5ad, .csv/.tsv, .npy, a 10x folder).\n")
        return 2
    if argv[cut:cut + 1] == ["benchmark"]:  # every later argument is the harness's own
        args = parser.parse_args(argv[:cut + 1])
        args.harness_args = argv[cut + 1:]
    else:
        args = parser.parse_args(argv)
    if args.quiet_all and hasattr(args, "quiet"):  # `topoembed -q run` is `topoembed run -q`
        args.quiet = True
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # progress lines read "topoembed: ...", not "INFO topoembed.progress: ..."
        handler.setFormatter(_Format())
    logging.getLogger("topoembed.progress").setLevel(min(level, logging.INFO))  # steps off a terminal
    import signal

    def _terminated(signum, frame):  # SIGTERM (a scheduler's kill): unwind, so no partial output stays
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (e.g. called from a worker)
        signal.signal(signal.SIGTERM, _terminated)
    try:
        out = getattr(args, "out", None)
        if out and args.command != "benchmark":  # fail now, not after the computation
            io.check_writable(out, folder=args.command in ("run", "report", "collect"))
        if sys.stderr.isatty():  # warnings print above the bar instead of breaking it
            from tqdm.contrib.logging import logging_redirect_tqdm

            with logging_redirect_tqdm(loggers=[logging.getLogger()]):
                return args.func(args)
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
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        from ._device import TORCH_MISSING

        sys.stderr.write(f"topoembed {args.command}: error: {TORCH_MISSING}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
