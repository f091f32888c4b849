"""Helpers of the workflows: ``prepare`` (one sample's points as an .h5ad), ``collect`` (many
summaries in one table) and ``benchmark`` (the harness in the source repository's benchmarks/).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .. import io
from .._validate import InputError
from .options import _anndata_input, _anndata_points, _load


# ---------------------------------------------------------------- workflow helpers
#: obsm key of the points in a `topoembed prepare` file: every later stage uses --use-rep with it.
PREPARED_REP = io.PREPARED_REP


def cmd_prepare(args) -> int:
    """One sample's points, ready for the stages: an .h5ad (the input's own AnnData for .h5ad
    input, else a new one) with the points to analyse in obsm[PREPARED_REP]."""
    import anndata

    src = str(args.input)
    if (args.groupby is None) != (args.group is None):
        raise InputError("--groupby COLUMN and --group NAME go together: the cells of one group of an obs column")
    adata, rep = _anndata_input(args)  # the recipe sees all cells, as `run --groupby` has it
    if args.group is not None:
        if adata is None:
            raise InputError(f"--groupby needs AnnData input ({io.ANNDATA_INPUTS}): a table has no obs column")
        from ..groups import select

        adata = select(adata, args.groupby, args.group)
    if adata is not None:
        X = _anndata_points(adata, rep)
    else:
        X, meta = _load(args)
        adata = anndata.AnnData(np.zeros((X.shape[0], 0), dtype=np.float32))
        if meta.get("row_names") is not None:  # a table's cell names: cells.csv's ids, as `run` gives them
            adata.obs_names = [str(name) for name in meta["row_names"]]
        rep = None
    adata.obsm[PREPARED_REP] = np.asarray(X, dtype=np.float64)
    adata.uns["topoembed_input"] = {"source": src + (f" ({args.groupby} = {args.group})" if args.group else ""),
                                    "use_rep": rep or "X", "recipe": args.recipe or "none", "layer": args.layer or "X"}
    with io.atomic_path(args.out) as tmp:
        adata.write_h5ad(tmp)
    sys.stdout.write(f"prepare: {X.shape[0]} points × {X.shape[1]} from {adata.uns['topoembed_input']['source']} "
                     f"({'recipe ' + args.recipe if args.recipe else 'use_rep ' + (rep or 'X')}) -> {args.out}\n")
    return 0


def cmd_collect(args) -> int:
    from .. import collect

    pairs = {}
    for item in args.summaries:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).parent.name, item
        pairs[name] = path
    rows = collect.table(pairs, logs=args.logs)
    for item in args.skipped:
        name, _, why = item.partition("=")
        rows.append(collect.skipped_row(name, why or "skipped"))
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


#: The noise benchmark's harness, in the source repository beside the package (not installed).
HARNESS = Path(__file__).resolve().parents[3] / "benchmarks" / "noise_benchmark.py"


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
