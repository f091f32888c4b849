"""``topoembed run`` (all stages, or an ensemble of subsamples), ``subsample`` (one subsample as a
cluster job) and ``embed``.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time

import numpy as np

from .. import analysis, ensemble, io, report, stage_files
from .._progress import Progress
from .._version import __version__
from .._validate import InputError
from .options import _anndata_input, _anndata_points, _k_given, _load, _params_from
from ..stage_files import load_distance_matrix
from .outputs import GROUP_OUTPUTS, RUN_OUTPUTS, _check_embed_args, _embed_for_run, _print_table, _write_run_outputs

log = logging.getLogger("topoembed.cli")


def _warn_unused(args) -> None:
    """Options given where they do nothing: said, so that a mistyped or misplaced flag is not
    taken for one that acted (those that could mislead, such as --layer on a table, are refused)."""
    unused = [(args.gene_symbols is not None and not args.recipe, "--gene-symbols acts with --recipe"),
              (args.key_added != "topoembed" and not io.is_anndata_input(args.input),
               f"--key-added names the results in result.h5ad, written for AnnData input ({io.ANNDATA_INPUTS})"),
              (getattr(args, "n_epochs", None) is not None and not getattr(args, "embed", None),
               "--n-epochs trains the embedding of --embed"),
              (args.align_phases is not None and args.groupby is None,
               "--align-phases turns the phases of the groups of --groupby")]
    for given, why in unused:
        if given:
            log.warning("%s: ignored here", why)


def cmd_run(args) -> int:
    _warn_unused(args)
    if io.is_anndata_input(args.input) or args.recipe or args.layer:
        return _run_h5ad(args)
    if args.groupby is not None:
        raise InputError(f"--groupby names an adata.obs column: it needs AnnData input ({io.ANNDATA_INPUTS}); "
                         "for a table, split it by group and run each file")
    X, meta = _load(args)
    params = _params_from(args)
    small = _front_door_check(args, params, X.shape[0])
    _check_embed_args(args, params)
    with io.OutputSet(args.out, owned=RUN_OUTPUTS) as outputs:
        runs = [io.read_run(f) for f in args.from_runs] if args.from_runs else None
        result = analysis.run(X, params, from_runs=runs, jobs=args.jobs, progress=not args.quiet,
                              small_input=small)
        emb = _embed_for_run(args, X, result)
        summ = _write_run_outputs(outputs, args, result, X, emb, ids=meta.get("row_names"))
        outputs.commit()
    _print_table(summ, args.out)
    return 0


def _front_door_check(args, params, n: int) -> bool:
    """Validate the settings the front door will run on n points, before any output
    (:func:`topoembed.analysis.run`); returns its ``small_input``: whether a default k follows
    a small input (not after an explicit --k, even 100, nor for runs made elsewhere)."""
    small = not _k_given(args) and not args.from_runs
    (params.for_small_input(n)[0] if small else params).validate(n)
    return small


def _job_input(args):
    """(points, settings) of a cluster job (`subsample`, `parts`): an AnnData input needs --use-rep,
    so that every job and `run --from-runs` see the same points."""
    X, meta = _load(args)
    if meta.get("kind") == "anndata" and meta["use_rep"] in (None, "X"):
        raise InputError("for .h5ad input pass --use-rep (e.g. X_scVI or X_pca): `run --from-runs` must see "
                         "the same points")
    return X, _params_from(args)


def cmd_subsample(args) -> int:
    X, params = _job_input(args)
    if args.part is None:
        if args.plan is not None:
            raise InputError("--plan (a part plan) goes with --part, not with --index")
        res = ensemble.run_subsample(X, args.index, params)
        io.write_run(args.out, res)
        sys.stdout.write(f"subsample {args.index}: {len(res.index)} points, {res.detection['n_loops']} loop(s), "
                         f"{res.timings['wall']:.1f} s -> {args.out}\n")
        return 0
    picks = None
    if args.plan is not None:
        picks = stage_files.load_part_plan(args.plan, params.job_settings(X.shape[0]), stage_files.points_fingerprint(X))
    screen = ensemble.run_part(X, args.part, params, picks=picks)
    io.write_run(args.out, screen)
    said = (f"{screen.result.detection['n_loops']} loop(s)" if screen.result is not None
            else f"not searched ({screen.skipped})")
    sys.stdout.write(f"part {args.part}: {len(screen.index)} points screened, {said}, {screen.seconds:.1f} s "
                     f"-> {args.out}\n")
    return 0


def cmd_parts(args) -> int:
    X, params = _job_input(args)
    t0 = time.perf_counter()
    planned = ensemble.plan_parts(X, params, progress=not args.quiet_all)
    stage_files.write_part_plan(args.out, planned, params.job_settings(X.shape[0]), stage_files.points_fingerprint(X),
                                time.perf_counter() - t0)
    sizes = ", ".join(str(len(P)) for P in planned.parts)
    sys.stdout.write(f"{len(planned.picks)} part(s) to screen" + (f" ({sizes} points)" if sizes else "")
                     + f" -> {args.out}\n")
    return 0


def _run_h5ad(args) -> int:
    """AnnData in: results go into a copy of the AnnData (``result.h5ad``) under --key-added."""
    from .. import tl

    adata, use_rep = _anndata_input(args, quiet=True)
    params = _params_from(args)
    X = _anndata_points(adata, use_rep, quiet=True)  # validated before any output; tl.run_result warns
    if args.groupby is not None:
        return _run_by_group(args, adata, use_rep, params, X)
    small = _front_door_check(args, params, X.shape[0])
    _check_embed_args(args, params)
    with io.OutputSet(args.out, owned=RUN_OUTPUTS) as outputs:
        result = tl.run_result(adata, use_rep=use_rep, key_added=args.key_added, progress=not args.quiet,
                               jobs=args.jobs, from_runs=[io.read_run(f) for f in args.from_runs or []] or None,
                               small_input=small, **dataclasses.asdict(params))
        emb = _embed_for_run(args, X, result)
        if emb is not None:
            from ..embed import obsm_key

            adata.obsm[obsm_key(args.embed)] = emb[0]
            tl.embedding_topology(adata, obsm_key(args.embed), key=args.key_added, seed=args.seed)
        summ = _write_run_outputs(outputs, args, result, X, emb, adata=adata, use_rep=use_rep)
        adata.write_h5ad(outputs.path("result.h5ad"))
        outputs.commit()
    _print_table(summ, args.out, extra="result.h5ad", rep=(use_rep, X.shape[1]))
    return 0


def _run_by_group(args, adata, use_rep, params, X) -> int:
    """--groupby: one run per group of cells (:mod:`topoembed.groups`), each group's summary.json,
    report.html, diagrams.npz and cells.csv in its folder, groups.tsv (a verdict per group) and
    result.h5ad (all cells) beside them. ``X``: all cells' points, validated once."""
    from .. import groups, tl

    if args.embed or args.from_runs:
        raise InputError("--groupby runs each group alone: --embed and --from-runs go with one run (`topoembed embed` "
                         "embeds the whole file)")
    small = not _k_given(args)
    where = groups.check_group_sizes(adata, args.groupby, dataclasses.asdict(params), small_input=small)
    folders = groups.folder_names(where, reserved=RUN_OUTPUTS + GROUP_OUTPUTS)
    lines, done, results = [], [], {}
    bar = Progress(len(where), "topoembed groups", "group", enabled=not args.quiet)

    def one(sub, group):
        bar.note(f"{args.groupby} = {group} ({sub.n_obs} cells)…")  # its stages' lines and warnings follow
        results[group] = tl.run_result(sub, use_rep=use_rep, key_added=args.key_added, progress=not args.quiet,
                                       jobs=args.jobs, small_input=small, **dataclasses.asdict(params))
        bar.step(f"{group}: {results[group].verdict.headline()}")
        return results[group]

    groups.run_by_group(adata, args.groupby, where, one, args.key_added, {"use_rep": use_rep or "X"})
    bar.close()
    if args.align_phases != 0:  # before any output: each group's files show the phase result.h5ad holds
        groups.align_results(adata, args.key_added, where, X, results)
    with io.OutputSet(args.out, owned=RUN_OUTPUTS + GROUP_OUTPUTS) as outputs:
        for group, result in results.items():
            cells = adata[where[group]]
            summ = _write_run_outputs(outputs, args, result, X[where[group]], adata=cells, use_rep=use_rep,
                                      group=(group, folders[group]))
            done.append((group, folders[group], summ))
            lines.append(f"  {group:<14s}{cells.n_obs:>7d} cells   {report.summary_verdict(summ).headline()}   "
                         f"-> {folders[group]}/")
        outputs.path("groups.tsv").write_text(groups.verdict_table(adata, args.key_added).to_csv(sep="\t"))
        outputs.path("index.html").write_text(report.groups_index_html(str(args.input), args.groupby, done))
        adata.write_h5ad(outputs.path("result.h5ad"))
        outputs.commit()
    sys.stdout.write(f"topoembed {__version__}: {args.input}, {len(where)} groups of {args.groupby!r}\n"
                     + "\n".join(lines) + f"\n  written to    {args.out}/ (index.html, groups.tsv, result.h5ad; each group's "
                     "summary.json, report.html, diagrams.npz, cells.csv in its folder)\n")
    return 0


def cmd_embed(args) -> int:
    from .. import embed as embedding

    X, _ = _load(args)
    D = load_distance_matrix(args.distances)[0] if args.distances else None
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
                              device=args.device, seed=args.seed, verbose=not args.quiet)
    with io.atomic_path(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, Y)
    sys.stdout.write(f"embed: {args.loss} on {info['device']}, {Y.shape[0]}×{Y.shape[1]} -> {args.out}\n")
    return 0
