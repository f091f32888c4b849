"""The ``topoembed`` command line: one subcommand per stage, and ``run`` for all of them.

The parser and the entry point live here; the commands by role in :mod:`.run` (run,
subsample, embed), :mod:`.stages` (graph … report) and :mod:`.workflow` (prepare, collect,
benchmark), with the options in :mod:`.options` and what a run writes in :mod:`.outputs`.
Every option of :class:`topoembed.pipeline.Params` is an option here with the same name
(``--k``, ``--distance``, ``--t``, ...) and the same default. Errors in the input or
the options stop the command before any work, with exit status 2 and a message that
says what to fix; outputs are written atomically, so a failed run leaves no file.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from .. import io, pipeline
from .._validate import InputError
from .._version import __version__
from .options import _add_params, _auto_or_count, _embed_args, _input_args
from .run import cmd_embed, cmd_parts, cmd_run, cmd_subsample
from .stages import cmd_detect, cmd_distances, cmd_graph, cmd_homology, cmd_localize, cmd_report
from .workflow import PREPARED_REP, benchmark_harness, cmd_benchmark, cmd_collect, cmd_prepare  # noqa: F401 (cli.PREPARED_REP, cli.benchmark_harness: the workflows import them)

log = logging.getLogger("topoembed")


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
                        help="no progress bar or progress lines (also after the subcommand: topoembed run -q; -v too)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="all stages: graph, distances, homology, loops, report")
    _input_args(p)
    p.add_argument("--out", default="topoembed_results", help="output folder (default: topoembed_results)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--recipe", choices=["cell_cycle"], default=None,
                   help="for raw counts (a .csv/.tsv/.txt table, gzipped too, with the genes' names; "
                        f"{io.ANNDATA_INPUTS}): run te.pp.recipe_cell_cycle first and use its PCA")
    p.add_argument("--layer", default=None, help="with --recipe: the layer holding the raw counts (default: X)")
    p.add_argument("--gene-symbols", default=None, metavar="COLUMN",
                   help="with --recipe: the adata.var column holding gene symbols when var_names are Ensembl ids "
                        "(default: detected)")
    p.add_argument("--key-added", default="topoembed", help="for .h5ad input: key of the results in result.h5ad")
    p.add_argument("--groupby", default=None, metavar="COLUMN",
                   help="for AnnData input: one analysis per group of this adata.obs column (cell line, sample, "
                        "donor), each as on its cells alone: OUT/GROUP/ holds its summary.json, report.html, "
                        "diagrams.npz and cells.csv; groups.tsv and index.html a verdict per group; result.h5ad all cells")
    p.add_argument("--align-phases", type=int, choices=[0, 1], default=None,  # None: 1, and not given
                   help="with --groupby and without the recipe's S and G2/M scores: turn each group's phase to agree "
                        "with the largest group's on the shared representation, so phases compare across groups "
                        "(default: 1; 0 keeps each group's own origin and direction)")
    p.add_argument("--from-runs", nargs="+", default=None, metavar="RUN",
                   help="combine these `topoembed subsample` runs (one per subsample, and optionally one per "
                        "part screened: --part; same input and options) instead of computing them here")
    p.add_argument("--jobs", type=_auto_or_count, default="auto",
                   help="local processes for the subsamples of a whole-dataset run: auto (one per usable CPU) "
                        "or a number (default: auto)")
    _embed_args(p, with_loss=False)
    _add_params(p)
    p.set_defaults(func=cmd_run, k=None)  # unset: the default, which follows a small input (--k 100 is kept)

    p = sub.add_parser("subsample", help="one subsample (or one part's screen) of a whole-dataset run (a cluster "
                                         "job) -> .run file; `run --from-runs` combines them")
    _input_args(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=int, help="which subsample: 0 .. n_subsamples - 1")
    which.add_argument("--part", type=int, help="which part of the part search to screen: 0 .. (the parts "
                       "`topoembed parts` planned) - 1")
    p.add_argument("--plan", default=None,
                   help="with --part: the plan .npz from `topoembed parts` (default: make the plan here)")
    p.add_argument("--out", required=True, help="output .run file")
    _add_params(p)
    p.set_defaults(func=cmd_subsample)

    p = sub.add_parser("parts", help="the part search's plan of a whole-dataset run (a cluster job) -> .npz: "
                                     "one `topoembed subsample --part` job per part it lists")
    _input_args(p)
    p.add_argument("--out", required=True, help="output plan .npz")
    _add_params(p)
    p.set_defaults(func=cmd_parts)

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
    p.add_argument("--jobs", type=_auto_or_count, default="auto",
                   help="local processes for the subsamples of a prevalence check: auto (one per usable CPU) "
                        "or a number (default: auto)")
    _add_params(p, set(S["localize"]), inherit=True)
    p.set_defaults(func=cmd_localize)

    p = sub.add_parser("embed", help="stage 5: 2-D embedding with a torch loss -> .npy (its loop check: `run "
                                     "--embed LOSS`, or `report --embedding FILE`)")
    _input_args(p)
    p.add_argument("--out", required=True, help="output .npy (n × n_components)")
    _embed_args(p, with_loss=True)
    p.add_argument("--n-components", dest="n_components", type=int, default=2, help="embedding dimension (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--distances", default=None, help="for sketch-map: the distance matrix of `topoembed distances` (.npz, or a .npy)")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("report", help="stage 6: summary.json, report.html, cells.csv (and result.h5ad) from "
                                      "the stage files; the same as `run` on the same points")
    _input_args(p)
    _stage_files(p, with_loops=True)
    p.add_argument("--embedding", default=None, help="an embedding .npy (`topoembed embed`): checked for the loops")
    from .._losses import LOSS_NAMES

    p.add_argument("--loss", default="infonce", choices=sorted(LOSS_NAMES),
                   help="the loss --embedding was made with (default: infonce)")
    p.add_argument("--key-added", default="topoembed", help="for .h5ad input: key of the results in result.h5ad")
    p.add_argument("--out", required=True, help="output folder")
    _add_params(p, inherit=True)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("prepare", help="one sample's points for the stages -> .h5ad (recipe, layer, use_rep "
                                       f"applied; points in obsm['{PREPARED_REP}'])")
    _input_args(p)
    p.add_argument("--recipe", choices=["cell_cycle"], default=None,
                   help="for .h5ad raw counts: te.pp.recipe_cell_cycle, then its PCA are the points")
    p.add_argument("--layer", default=None, help="with --recipe: the layer holding the raw counts (default: X)")
    p.add_argument("--gene-symbols", default=None, metavar="COLUMN",
                   help="with --recipe: the adata.var column of gene symbols (default: detected)")
    p.add_argument("--groupby", default=None, metavar="COLUMN",
                   help="with --group: keep the cells of one group of this adata.obs column (after the recipe, which "
                        "sees all cells, as `run --groupby` does)")
    p.add_argument("--group", default=None, metavar="NAME", help="with --groupby: the group to keep")
    p.add_argument("--out", required=True, help="output .h5ad")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("collect", help="many samples' summary.json -> one table (CSV, Markdown) and a plot")
    p.add_argument("summaries", nargs="+", metavar="[NAME=]SUMMARY",
                   help="summary.json files, each optionally named NAME=PATH (default name: the name of its folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--logs", default=None, metavar="DIR",
                   help="a folder with one log folder per sample (the samples workflow's logs/): a sample without "
                        "summary.json is then listed as failed, with its log's last line, instead of stopping")
    p.add_argument("--skipped", nargs="+", default=[], metavar="NAME=WHY",
                   help="samples not analysed on purpose (the workflow's optional samples whose file is absent), "
                        "listed as skipped with why")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("benchmark", add_help=False,
                       help="the noise benchmark (Damrich et al. 2024) with auto selection; its harness lives in "
                            "the source repository (benchmarks/noise_benchmark.py); `topoembed benchmark --help`")
    p.set_defaults(func=cmd_benchmark, harness_args=[])  # main() hands it the rest of the command line
    for sp in sub.choices.values():  # -q and -v after any subcommand too (`topoembed embed -q`, `run -v`)
        given = {o for a in sp._actions for o in a.option_strings}
        if "-q" not in given:
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar or progress lines")
        if "-v" not in given:
            sp.add_argument("-v", "--verbose", dest="verbose_sub", action="count", default=0,
                            help="more logging (-v info, -vv debug)")
    return parser


class _Format(logging.Formatter):
    """``WARNING topoembed.spectral: ...`` for messages, ``topoembed: ...`` for progress steps."""

    def __init__(self):
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record):
        return record.getMessage() if record.name == "topoembed.progress" else super().format(record)


def main(argv=None) -> int:
    """The ``topoembed`` command; returns the exit status. Messages that name a fix say it as
    ``--option value`` while it runs (:func:`topoembed._validate.option`)."""
    from .._validate import INTERFACE

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
                         f"then `topoembed run YOUR_FILE --out DIR` ({io.ANNDATA_INPUTS}, .csv/.tsv[.gz], .npy).\n")
        return 2
    if argv[cut:cut + 1] == ["benchmark"]:  # every later argument is the harness's own
        args = parser.parse_args(argv[:cut + 1])
        args.harness_args = argv[cut + 1:]
    else:
        args = parser.parse_args(argv)
    if args.quiet_all and hasattr(args, "quiet"):  # `topoembed -q run` is `topoembed run -q`
        args.quiet = True
    args.verbose += getattr(args, "verbose_sub", 0)  # `topoembed run -v` is `topoembed -v run`
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # progress lines read "topoembed: ...", not "INFO topoembed.progress: ..."
        handler.setFormatter(_Format())
    logging.getLogger("topoembed.progress").setLevel(min(level, logging.INFO))  # steps off a terminal
    import signal

    terminated = []

    def _terminated(signum, frame):  # SIGTERM (a scheduler's kill): unwind, so no partial output stays
        terminated.append(signum)
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
        from .._device import TORCH_MISSING

        sys.stderr.write(f"topoembed {args.command}: error: {TORCH_MISSING}\n")
        return 2
    except Exception:  # last: every error above is itself
        if not terminated:
            raise
        # the interruption raised inside a C extension's callback, which turned it into its own error
        # (matplotlib's Agg renderer: "ValueError: Invalid bounding box"; seen once in CI)
        sys.stderr.write(f"topoembed {args.command}: interrupted (SIGTERM); no output was written\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
