"""What a run writes and prints: summary.json, diagrams.npz, report.html, cells.csv (atomically,
through :class:`topoembed.io.OutputSet`), the embedding when asked, and the table on stdout.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .. import io, pipeline, report, stage_files
from .._validate import InputError


def _check_embed_args(args, params):
    from .._device import torch_installed

    if args.embed and not torch_installed():  # now, not after the loop stages
        raise ModuleNotFoundError("No module named 'torch'", name="torch")
    if args.embed and args.embed.startswith("sketchmap") and params.subsample is not None:
        raise InputError("--embed sketchmap uses the run's distance matrix, which covers only the subsample; "
                         "drop --subsample or use --embed infonce")


def _embed_for_run(args, X, result):
    """(Y, info, topology) for --embed LOSS, or None: embeds every input point."""
    if not args.embed:
        return None
    from .. import embed as embedding

    D = result.D if args.embed.startswith("sketchmap") else None
    epochs = {} if args.n_epochs is None else {"n_epochs": args.n_epochs}
    t0 = time.perf_counter()
    Y, info = embedding.embed(X, args.embed, D=D, **epochs, device=args.device, seed=args.seed,
                              verbose=not args.quiet)
    topo = embedding.embedding_topology(Y[result.index], result.detection, seed=args.seed)
    info["seconds"] = time.perf_counter() - t0  # the training and its loop check
    return Y, info, topo


def _view_of(adata, n):
    """The 2-D view of the report's loop plots: the user's UMAP when the AnnData has one."""
    Y = None if adata is None else adata.obsm.get("X_umap")
    return ("UMAP", np.asarray(Y)[:, :2]) if Y is not None and len(Y) == n and np.ndim(Y) == 2 else None


def input_name(path, adata=None) -> str:
    """What the user gave as input: a workflow's prepared.h5ad (``adata``, already read) names
    the sample's own file in its record."""
    source = None if adata is None else (adata.uns.get("topoembed_input") or {}).get("source")
    return str(source) if source else str(path)


#: What `run` and `report` may write to their --out folder (io.OutputSet removes what an
#: earlier run left there and this one does not write).
RUN_OUTPUTS = ("summary.json", "diagrams.npz", "report.html", "cells.csv", "embedding.npy", "result.h5ad")
#: What `run --groupby` writes beside the groups' folders (and result.h5ad).
GROUP_OUTPUTS = ("groups.tsv", "index.html")


def _write_run_outputs(outputs, args, result, X, emb=None, adata=None, ids=None, group=None, use_rep=None) -> dict:
    """summary.json, diagrams.npz, report.html and cells.csv of a run; an AnnData input
    (``adata``) gives the report its UMAP, cells.csv its cell names and the summary its source
    and what was analysed (``use_rep``, and the recipe's record where it made them).
    ``group``: (its name, its folder) for a run of ``--groupby``: written to that folder."""
    if adata is not None:
        ids = list(adata.obs_names)
    summ = pipeline.summary(result, input_desc=input_name(args.input, adata)
                            + (f" ({args.groupby} = {group[0]})" if group else ""))
    if adata is not None:
        summ = _with_representation(summ, adata, use_rep, X.shape[1])
    path = (lambda name: outputs.path(f"{group[1]}/{name}")) if group else outputs.path
    view = _view_of(adata, X.shape[0])
    extra = []
    if emb is not None:
        Y, info, topo = emb
        summ["embedding"] = {"loss": info["loss"], "device": info["device"], "verdict": topo["message"],
                             **({"n_epochs": len(info["history"])} if "history" in info else {}),
                             "n_loops_embedding": int(topo["low"]["n_loops"]),
                             "score_embedding": float(topo["low"]["score"])}
        if "seconds" in info:  # the run's time includes the embedding asked for with it
            timings = summ["timings_s"]
            total = timings.pop("total", 0.0)
            timings["embedding"] = float(info["seconds"])
            timings["total"] = total + timings["embedding"]
        with open(path("embedding.npy"), "wb") as fh:
            np.save(fh, Y)
        extra.append(("Embedding", report.embedding_section(Y, info["loss"], topo, result)))
    path("summary.json").write_text(io.dumps_json(summ))
    stage_files.write_diagrams(path("diagrams.npz"), {**result.ph, "n_points": len(result.index)})
    per_point = [{f: lp[f] for f in pipeline.PER_POINT if f in lp} for lp in result.loops]
    markers = _marker_scores(adata)
    for arrays in per_point if markers else ():
        arrays["markers"] = markers
    path("report.html").write_text(report.render_html(summ, points=X[result.index], index=result.index,
                                                              per_point=per_point, extra_sections=extra, view=view))
    _write_cells_csv(path("cells.csv"), result, ids)
    return summ


def _with_representation(summ: dict, adata, use_rep, n_columns: int) -> dict:
    """``summ`` with ``representation`` after ``n_input``: the AnnData representation analysed
    and, where ``topoembed prepare`` or te.pp.recipe_cell_cycle made it (``uns[io.RECIPE_KEY]``), how."""
    rep = {"use_rep": use_rep or "X", "n_columns": int(n_columns)}
    prepared = adata.uns.get("topoembed_input") if use_rep == io.PREPARED_REP else None
    if isinstance(prepared, dict):  # `topoembed prepare` copied the user's representation to PREPARED_REP
        rep = {**rep, "use_rep": str(prepared.get("use_rep", "X")), "prepared": f"obsm[{io.PREPARED_REP!r}]"}
    made = adata.uns.get(io.RECIPE_KEY)
    if isinstance(made, dict) and made.get("key_added") == rep["use_rep"]:
        rep["recipe"] = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in made.items()
                         if k in ("genes", "n_genes", "n_comps", "layer", "steps", "target_sum")}
    out = {}
    for key, value in summ.items():
        out[key] = value
        if key == "n_input":
            out["representation"] = rep
    return out


def _score_meaning(det: dict) -> str:
    """What the table's score is: s_m of the m loops counted, or with none 1 − max s_m (high where
    no count stands out, as on noise; docs/GUIDE.md, "Detection score")."""
    m = int(det.get("n_loops", 0))
    return f"s_{m}, how clearly {m} loop{'s' if m > 1 else ''} stand{'' if m > 1 else 's'} out" if m else \
        "1 - max s_m, how clearly no count stands out"


def _marker_scores(adata) -> dict:
    """Each cell's S and G2/M score (the recipe's, else scanpy's: :func:`topoembed.pp.score_columns`),
    which the report draws along each loop's phase; {} without them."""
    from ..pp import score_columns

    cols = score_columns(adata) if adata is not None else None
    if cols is None:
        return {}
    return {name: adata.obs[c].to_numpy(dtype=float) for name, c in zip(("S score", "G2/M score"), cols)}


def _write_cells_csv(path, result, ids=None):
    """One row per input point: id (the input's cell names where it has them, else the row
    number) and the per-cell columns of :func:`topoembed.summary.per_cell_columns`, numbered
    per loop (phase_1, phase_confidence_1, loop_distance_1, on_loop_1, phase_missing_1, ...;
    with no loop the first loop's, NaN, and phase_missing_1 "no loop found"), as ``te.tl.run``
    puts them in ``obs``."""
    import csv

    from ..summary import per_cell_columns

    cols = per_cell_columns(result.loops, result.n_input, numbered=True)
    rows = range(result.n_input) if ids is None else ids

    def text(v):  # numbers as before (on_loop 1/0, NaN "nan"), so np.genfromtxt reads them too
        return str(v) if isinstance(v, str) else f"{float(v):.6g}"

    with open(path, "w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["id", *cols])
        out.writerows([name, *(text(c[i]) for c in cols.values())] for i, name in enumerate(rows))


def _points_line(summ) -> str:
    """The table's points: all of them, or (an ensemble) all of them as its subsamples, whose
    reference run gives the score and diagrams; or a --subsample of them."""
    ens = summ.get("ensemble")
    if ens:
        return (f"  points        {summ['n_input']}, as {ens['n_subsamples']} random subsamples of "
                f"{ens['subsample_size']} (score and diagrams: subsample {ens['reference_run'] + 1})")
    return f"  points        {summ['n_points']}" + (f" (of {summ['n_input']})" if summ["n_input"] != summ["n_points"] else "")


def _print_table(summ, out, extra=None, rep=None):
    """The run's table on stdout; ``rep``: (name, columns) of the AnnData representation analysed."""
    det = summ["detection"]
    lines = [
        f"topoembed {summ['version']}: {summ['input']}",
        *([f"  analysed      {'adata.X' if rep[0] in (None, 'X') else f'obsm[{rep[0]!r}]'} ({rep[1]} columns)"]
          if rep is not None else []),
        _points_line(summ),
        f"  distance      {summ['distance']} (k={summ['params']['k']}"
        + (f"; chosen by --distance auto: setting {summ['auto']['key']}, loop count proposed by "
           f"{summ['auto']['support']} settings" if summ.get("auto") else "") + ")",
        *(f"  note          {note}" for note in summ.get("notes") or []),
        f"  verdict       {report.summary_verdict(summ).headline()}",
        *(f"                {note}" for note in report.verdict_notes(summ)),
        f"  score         {det['score']:.3f}   ({_score_meaning(det)}; s_m: "
        + ", ".join(f"{m}:{s:.2f}" for m, s in det["scores"].items()) + ")",
        *(f"  phase         loop {i + 1}: {report.orientation_summary(lp['phase_orientation'])}"
          for i, lp in enumerate(summ["loops"]) if lp.get("phase_orientation")),
        "  time (s)      " + "  ".join(f"{k} {v:.2f}" for k, v in summ["timings_s"].items()),
        f"  written to    {out}/ (summary.json, diagrams.npz, report.html"
        f", cells.csv{', embedding.npy' if 'embedding' in summ else ''}"
        f"{', ' + extra if extra else ''})",
    ]
    if "embedding" in summ:
        lines.insert(-2, f"  embedding     {summ['embedding']['loss']}: {summ['embedding']['verdict']}")
    sys.stdout.write("\n".join(lines) + "\n")
