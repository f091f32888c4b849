"""The staged commands: graph → distances → homology → detect → localize → report.

Each stage writes one file that records the settings it depends on
(:data:`topoembed.params.STAGE_PARAMS`), the points it saw and its time
(:mod:`topoembed.stage_files`). A later stage takes its settings from those records unless they
are given on its command line, and refuses inputs whose records disagree with each other or
with its own options. Up to :data:`topoembed.pipeline.ENSEMBLE_MIN_N` points the chain gives
what ``run`` gives on the same points (tested), so a workflow can cache and rerun each stage on
its own; above that ``run`` analyses an ensemble of subsamples (:func:`_warn_where_the_graph_is_built`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import time

import numpy as np

from .. import evidence, graph, homology, io, pipeline, prevalence, spectral, stage_files
from .._validate import InputError, check_identical_points, check_k
from .._version import __version__
from ..stage_files import (diagram_arrays, load_detection, load_diagrams, load_distance_matrix, load_graph,
                           load_loops)
from .options import _k_given, _load

log = logging.getLogger(__name__)
from .outputs import RUN_OUTPUTS, _print_table, _write_run_outputs, input_name


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
    the default. Every record must agree with the result (stage_files.check_record)."""
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
        stage_files.check_record(rec, path, values)
    return params


def _small_input(args, p: pipeline.Params, n: int, records: list) -> tuple[pipeline.Params, str | None, str | None]:
    """As `run` (:meth:`topoembed.params.Params.for_small_input`): with no --k given here or
    recorded by an input file, a small input's k follows its n. Returns (params, warning, note)."""
    if _k_given(args) or any(rec is not None and "k" in rec.get("params", {}) for _, rec in records):
        return p, None, None
    return p.for_small_input(n)


def _each_once(records: list, key: str, more=()) -> list:
    """The messages under ``key`` ("warnings", "notes") that the input files carry, then ``more``: each once."""
    out: list = []
    for msgs in [rec.get(key, []) for _, rec in records if rec is not None] + [list(more)]:
        out += [m for m in msgs if m not in out]
    return out


def _merged(records: list) -> tuple[dict, list]:
    """The stage times and the warnings (each once) that the input files carry."""
    timings = {}
    for _, rec in records:
        if rec is not None:
            timings.update(rec.get("timings", {}))
    return timings, _each_once(records, "warnings")


def _record(stage: str, params: pipeline.Params, points: dict | None, records: list, seconds: float,
            warnings: list, note: str | None = None) -> dict:
    timings, _ = _merged(records)
    timings[_TIMING[stage]] = float(seconds)
    return {"stage": stage, "version": __version__,
            "params": {k: getattr(params, k) for k in pipeline.STAGE_PARAMS[stage]},
            "points": points, "timings": timings, "warnings": _each_once(records, "warnings", warnings),
            "notes": _each_once(records, "notes", [note] if note is not None else [])}


@contextlib.contextmanager
def _stage_work():
    """One BLAS thread (as pipeline.run: the same digits on any machine), the warnings kept, the time taken."""

    box = {"t0": time.perf_counter()}
    with pipeline.run_context() as caught:
        box["warnings"] = caught
        yield box
    box["seconds"] = time.perf_counter() - box["t0"]


#: Where to go for a whole dataset, said by :func:`_refuse_dense` and :func:`_warn_where_the_graph_is_built`.
_WHOLE_DATASET = ("for a whole dataset use `topoembed run` (an ensemble of subsamples), or on a cluster "
                  "workflows/ensemble.smk (one `topoembed subsample` job per subsample, then `topoembed run --from-runs`)")


def _refuse_dense(n: int, p: pipeline.Params) -> None:
    """The stages make one run on all n points: above ``max_points`` its dense distances cannot
    be held (refused before any work; the ensemble's limit is its subsample size)."""
    if n > int(p.max_points):
        raise InputError(f"the stages analyse all {n} points in one run, and their dense {n}×{n} distances exceed "
                         f"the limit of {int(p.max_points)} points (--max-points); {_WHOLE_DATASET}")


def _warn_where_the_graph_is_built(X, p: pipeline.Params) -> None:
    """Said once, where the graph is built (inside the stage's work, so the stage file and the
    report keep it): many repeated points, as the front door says it
    (:func:`topoembed._validate.check_identical_points`), and that ``run`` analyses more than
    :data:`topoembed.pipeline.ENSEMBLE_MIN_N` points as an ensemble of subsamples, so the stages'
    one run on all of them is another analysis."""
    repeats = check_identical_points(X)
    if repeats is not None:
        log.warning(repeats)
    n = X.shape[0]
    if n > pipeline.ENSEMBLE_MIN_N:
        log.warning("the stages analyse all %d points in one run, while `topoembed run` analyses more than %d points "
                    "as an ensemble of subsamples of %d, so the verdicts can differ; %s", n, pipeline.ENSEMBLE_MIN_N,
                    int(p.subsample_size), _WHOLE_DATASET)


def _points_with_fp(args):
    X, _ = _load(args)
    return X, stage_files.points_fingerprint(X)


def cmd_graph(args) -> int:
    X, fp = _points_with_fp(args)
    p, warning, note = _small_input(args, _resolve(args, []), X.shape[0], [])
    check_k(p.k, X.shape[0])
    with _stage_work() as box:
        if warning is not None:
            log.warning(warning)
        _warn_where_the_graph_is_built(X, p)
        A = graph.knn_graph(X, k=p.k, metric=p.metric, symmetrize=p.symmetrize, weights=p.weights,
                            random_state=p.seed, device=p.device, method=p.knn_method,
                            progress=not args.quiet).tocsr()
    stage_files.write_stage(args.out, _record("graph", p, fp, [], box["seconds"], box["warnings"], note),
                   format=np.array("csr"), shape=np.array(A.shape), data=A.data, indices=A.indices, indptr=A.indptr)
    n_comp, _ = graph.components(A)
    sys.stdout.write(f"graph: {A.shape[0]} points, k = {p.k} ({'mutual' if p.symmetrize == 'and' else 'union'}), "
                     f"{A.nnz // 2} edges, {n_comp} component(s) -> {args.out}\n" + (f"note: {note}\n" if note else ""))
    return 0


def cmd_distances(args) -> int:
    X, fp = _points_with_fp(args)
    records, A = [], None
    if args.graph:
        A, rec = load_graph(args.graph, X.shape[0])
        records.append((args.graph, rec))
        stage_files.check_record(rec, args.graph, {}, fp)
    p, warning, note = _small_input(args, _resolve(args, records), X.shape[0], records)
    _refuse_dense(X.shape[0], p)
    dataclasses.replace(p, n_subsamples=1).validate(X.shape[0])  # the stage's own run: all points
    with _stage_work() as box:
        if warning is not None:
            log.warning(warning)
        if A is None:  # a graph given was made (and warned about) by `topoembed graph`
            _warn_where_the_graph_is_built(X, p)
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
        stage_files.write_stage(args.out, _record("distances", p, fp, records, box["seconds"], box["warnings"], note),
                                D=D)
    sys.stdout.write(f"distances: {p.distance}, {D.shape[0]}×{D.shape[1]} -> {args.out}\n")
    return 0


def cmd_homology(args) -> int:
    from .. import localize as localization

    D, rec = load_distance_matrix(args.input)
    records = [(args.input, rec)]
    p = _resolve(args, records)
    if p.maxdim == 2 and D.shape[0] > pipeline.H2_MAX_N:
        raise InputError(f"maxdim=2 on {D.shape[0]} points is too slow (limit {pipeline.H2_MAX_N}); subsample first")
    with _stage_work() as box:  # Z_47, as `run`: the cocycles of the loops lift to integers
        ph = homology.persistence(D, maxdim=p.maxdim, coeff=localization.DEFAULT_COEFF)
    ph["n_points"] = D.shape[0]
    points = rec.get("points") if rec else None
    stage_files.write_stage(args.out, _record("homology", p, points, records, box["seconds"], box["warnings"]),
                   **diagram_arrays(ph))
    sys.stdout.write("homology: " + ", ".join(f"H{d}: {len(g)} bars" for d, g in enumerate(ph["dgms"]))
                     + f" -> {args.out}\n")
    return 0


def _points_of(records) -> dict | None:
    return next((rec["points"] for _, rec in records if rec and rec.get("points")), None)


def cmd_detect(args) -> int:
    ph, rec = load_diagrams(args.input)
    records, A = [(args.input, rec)], None
    n_points = ph["n_points"]
    if args.graph:
        A, grec = load_graph(args.graph, n_points)
        records.append((args.graph, grec))
        stage_files.check_record(grec, args.graph, {}, _points_of(records[:1]))
    D = None
    if args.distances:
        D, drec = load_distance_matrix(args.distances)
        if D.shape[0] != n_points:
            raise InputError(f"{args.distances} is {D.shape[0]}×{D.shape[0]} but the diagrams are of "
                             f"{n_points} points; pass the distances the diagrams were computed from")
        if drec is not None:
            records.append((args.distances, drec))
            stage_files.check_record(drec, args.distances, {}, _points_of(records[:1]))
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


def _stage_inputs(args, X, fp, need_loops: bool):
    """Graph, distances, diagrams, detection (and loops) of a localize/report step, checked
    against each other and against the points."""
    A, grec = load_graph(args.graph, X.shape[0])
    D, drec = load_distance_matrix(args.distances)
    ph, hrec = load_diagrams(args.diagrams)
    det, jrec = load_detection(args.detection)
    records = [(args.graph, grec), (args.distances, drec), (args.diagrams, hrec), (args.detection, jrec)]
    loops_file = getattr(args, "loops", None)
    found = None
    if loops_file:
        found, ph_loc, lrec = load_loops(loops_file, X.shape[0])
        records.append((loops_file, lrec))
        ph = {**ph, "birth_edges": ph_loc} if ph_loc is not None else ph
    elif need_loops:
        raise InputError("pass --loops L.npz (from `topoembed localize`)")
    if D.shape[0] != X.shape[0]:
        raise InputError(f"{args.distances} is {D.shape[0]}×{D.shape[0]} but the input has {X.shape[0]} points")
    for path, rec in records:
        stage_files.check_record(rec, path, {}, fp)
    return A, D, ph, det, records, found


def cmd_localize(args) -> int:
    X, fp = _points_with_fp(args)
    A, D, ph, det, records, _ = _stage_inputs(args, X, fp, need_loops=False)
    p = _resolve(args, records)
    det_in = det
    with _stage_work() as box:
        det, found, ph, check, t_check = prevalence.staged_localization(X, A, D, ph, det, p, jobs=args.jobs)
    arrays = {f"{f}_{i}": np.asarray(lp[f]) for i, lp in enumerate(found) for f in pipeline.PER_POINT if f in lp}
    record = _record("localize", p, fp, records, box["seconds"] - t_check, box["warnings"])
    if check is not None:
        record["prevalence_check"] = check
        record["timings"]["prevalence_check"] = t_check
    if det is not det_in:  # the check changed the detection (a loop found by its recurrence)
        record["detection"] = {**det, "features": [int(f) for f in det["features"]]}
    record["loops"] = [{k: v for k, v in lp.items() if k not in pipeline.PER_POINT} for lp in found]
    stage_files.write_stage(args.out, record, birth_edges_H1=np.asarray(ph["birth_edges"]), **arrays)
    sys.stdout.write(f"localize: {len(found)} loop(s)" + "".join(
        f", loop {i + 1}: {lp.get('n_on_loop', '?')} points on it" for i, lp in enumerate(found)) + f" -> {args.out}\n")
    return 0


def cmd_report(args) -> int:
    X, meta = _load(args)  # its cell names (a table's first column) name cells.csv's rows, as run's
    fp = stage_files.points_fingerprint(X)
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
                             detection=det, loops=found, timings=timings, n_components=int(n_comp), warnings=warned,
                             notes=_each_once(records, "notes"))
    emb = None
    if args.embedding:
        from ..embed import embedding_topology

        Y = np.load(args.embedding, allow_pickle=False)
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise InputError(f"--embedding {args.embedding} holds {Y.shape}, not one row per input point")
        emb = (Y, {"loss": args.loss, "device": "file"}, embedding_topology(Y, det, seed=p.seed))
    adata = io.read_anndata(args.input) if io.is_anndata_input(args.input) else None
    if adata is not None:  # as `run`: a phase turned by the cells' S and G2/M scores where the recipe made them
        from .. import tl

        tl.orient_phases(adata, result.loops)
    with io.OutputSet(args.out, owned=RUN_OUTPUTS) as outputs:
        summ = _write_run_outputs(outputs, args, result, X, emb, adata=adata, use_rep=meta.get("use_rep"),
                                  ids=None if adata is not None else meta.get("row_names"))
        if adata is not None:
            tl.store_result(adata, result, use_rep=args.use_rep, key_added=args.key_added,
                            input_desc=input_name(args.input, adata))
            if emb is not None:
                from ..embed import obsm_key

                adata.obsm[obsm_key(args.loss)] = emb[0]
            adata.write_h5ad(outputs.path("result.h5ad"))
        outputs.commit()
    rep = (io.default_rep(adata, args.use_rep), X.shape[1]) if adata is not None else None  # as `run` names it
    _print_table(summ, args.out, extra="result.h5ad" if str(args.input).endswith(".h5ad") else None, rep=rep)
    return 0
