"""Every way in, on the panel's inputs: ``te.tl.run``, te.tl's steps and the staged command line.

    python benchmarks/bench_ways_in.py            # about 10 minutes on 2 cores
    python benchmarks/bench_ways_in.py --table    # the table of BENCHMARKS.md from the result file

The promise is one verdict whichever way a user comes in. Up to
:data:`topoembed.pipeline.ENSEMBLE_MIN_N` points (above, ``run`` makes an ensemble and the
steps one run, and they say so) each input of the real-data panel (``bench_panel.py``: FUCCI,
McDavid's lines, each COIL-20 object as 20 PCs and as pixels, IPC subsamples of 300, 500 and
1,000 cells), its no-loop controls (blobs, spheres and uniform points of 300, scanpy's
pbmc68k_reduced) and a ring of separate clusters goes through

* ``te.tl.run(adata)``;
* te.tl's steps: ``te.pp.neighbors``, ``te.tl.spectral_distances``, ``te.tl.persistent_homology``,
  ``te.tl.detect_loops``;
* the command line's steps: ``topoembed graph``, ``distances``, ``homology``, ``detect``,
  ``localize``, ``report`` on the points saved as ``.npy``;

all with the defaults. Per input: each way's verdict, its loops' p-values and prevalences, and
whether the three agree on the verdict and on every cell's phase. One JSON line per input in
``benchmarks/results/ways_in/rows.jsonl``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "ways_in"
sys.path.insert(0, str(HERE))


def inputs():
    """(name, points) of every input, panel first."""
    import bench_panel as bp

    if bp.DATA.exists():
        import anndata

        import topoembed as te

        a = anndata.read_h5ad(bp.DATA / "fucci_ipsc_peco.h5ad")
        yield "FUCCI top-20 genes, 5 PCs", bp.fucci_top20(a)
        c = a.copy()
        te.pp.recipe_cell_cycle(c, genes="hvg")
        yield "FUCCI recipe (all 101 genes, PCA)", np.asarray(c.obsm["X_pca_cell_cycle"])
        for line, Z, _ in bp.mcdavid_lines():
            yield f"McDavid {line}", Z
        for pixels in (False, True):
            for obj, Xo, _ in bp.coil_objects(bp.coil_images(pixels)):  # grey levels in [0, 1]: not counts
                yield f"COIL-20 object {obj}{' (pixels)' if pixels else ''}", Xo / 255 if pixels else Xo
        for n, seed, X, _ in bp.ipc_draws((300, 500, 1000), 3):
            yield f"IPC {n} cells seed {seed}", X
    else:
        print(f"{bp.DATA} not found: the real data are left out", file=sys.stderr)
    for seed in range(3):
        for name, X in bp.no_loop_sets(300, seed).items():
            yield f"{name} 300 seed {seed}", X
    import scanpy as sc

    yield "pbmc68k_reduced (X_pca)", np.asarray(sc.datasets.pbmc68k_reduced().obsm["X_pca"], float)
    yield "ring of 8 separate clusters", ring_of_clusters()


def ring_of_clusters():
    """The ring of 8 tight planar clusters of tests/test_verdict.py (one definition)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_verdict import _ring_of_clusters

    return _ring_of_clusters()


def _reading(verdict: dict, loops_: list, phase) -> dict:
    return {"verdict": str(verdict["headline"]), "n_loops": int(verdict["n_loops"]),
            "p": [None if lp.get("p_value") is None else float(lp["p_value"]) for lp in loops_],
            "prevalence": [None if lp.get("prevalence") is None else float(lp["prevalence"]) for lp in loops_],
            "phase": None if phase is None else np.asarray(phase, float)}


def by_run(X):
    import anndata

    import topoembed as te

    a = anndata.AnnData(X.astype(np.float32))
    te.tl.run(a, progress=False, jobs=1)
    return _reading(te.tl.get_verdict(a), te.tl.get_loops(a), a.obs.get("topoembed_phase"))


def by_tl_steps(X):
    import anndata

    import topoembed as te

    a = anndata.AnnData(X.astype(np.float32))
    te.pp.neighbors(a)
    te.tl.spectral_distances(a)
    te.tl.persistent_homology(a)
    te.tl.detect_loops(a, jobs=1)
    return _reading(te.tl.get_verdict(a), te.tl.get_loops(a), a.obs.get("topoembed_phase"))


def by_cli_steps(X):
    import pandas as pd

    from topoembed import cli

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        np.save(t / "x.npy", X)
        f = {k: str(t / v) for k, v in dict(g="g.npz", D="D.npz", H="H.npz", det="det.json", L="L.npz").items()}
        pts = str(t / "x.npy")
        F = ["--graph", f["g"], "--distances", f["D"], "--diagrams", f["H"], "--detection", f["det"]]
        for argv in (["graph", pts, "--out", f["g"]], ["distances", pts, "--graph", f["g"], "--out", f["D"]],
                     ["homology", f["D"], "--out", f["H"]],
                     ["detect", f["H"], "--graph", f["g"], "--distances", f["D"], "--out", f["det"]],
                     ["localize", pts, *F, "--jobs", "1", "--out", f["L"]],
                     ["report", pts, *F, "--loops", f["L"], "--out", str(t / "res")]):
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli.main(argv) == 0, argv
        s = json.loads((t / "res" / "summary.json").read_text())
        cells = pd.read_csv(t / "res" / "cells.csv")
    phase = cells["phase_1"].to_numpy(float) if "phase_1" in cells else None
    return _reading(s["verdict"], s["loops"], phase)


def reading(way, X) -> dict:
    """``way``'s reading of X, or its refusal as the verdict (te.tl's steps refused COIL-20's 72
    images before 2026-12-07: k = 100 above the number of points)."""
    from topoembed._validate import InputError

    try:
        return way(X)
    except InputError as e:
        return {"verdict": f"refused: {str(e)[:60]}", "n_loops": -1, "p": [], "prevalence": [], "phase": None}


def _same_phase(readings) -> bool:
    phases = [r["phase"] for r in readings]
    if all(p is None or not np.isfinite(p).any() for p in phases):
        return True
    return all(p is not None for p in phases) and all(np.allclose(phases[0], p, atol=1e-4, equal_nan=True)
                                                      for p in phases[1:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", action="store_true", help="print the table from the result file")
    args = ap.parse_args(argv)
    if args.table:
        print(table())
        return
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "rows.jsonl", "w") as fh:
        for name, X in inputs():
            readings = {way: reading(f, X) for way, f in (("run", by_run), ("tl_steps", by_tl_steps),
                                                            ("cli_steps", by_cli_steps))}
            row = {"case": name, "n": int(X.shape[0]),
                   "same_verdict": len({(r["verdict"], r["n_loops"]) for r in readings.values()}) == 1,
                   "same_evidence": all(len(r["p"]) == len(readings["run"]["p"]) and np.allclose(
                       np.array(r["p"], float), np.array(readings["run"]["p"], float), equal_nan=True)
                       and r["prevalence"] == readings["run"]["prevalence"] for r in readings.values()),
                   "same_phase": _same_phase(list(readings.values())),
                   **{k: {f: v for f, v in r.items() if f != "phase"} for k, r in readings.items()}}
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(json.dumps({k: row[k] for k in ("case", "same_verdict", "same_evidence", "same_phase")}),
                  row["run"]["verdict"], flush=True)
    print(table())


def table() -> str:
    rows = [json.loads(line) for line in open(OUT / "rows.jsonl")]
    out = ["| input | n | te.tl.run | te.tl's steps | command-line steps | same verdict, evidence, phase |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        same = "/".join("yes" if r[k] else "**no**" for k in ("same_verdict", "same_evidence", "same_phase"))
        out.append(f"| {r['case']} | {r['n']} | {r['run']['verdict']} | {r['tl_steps']['verdict']} | "
                   f"{r['cli_steps']['verdict']} | {same} |")
    agree = sum(r["same_verdict"] and r["same_evidence"] and r["same_phase"] for r in rows)
    out.append(f"\n{agree} of {len(rows)} inputs: the same verdict, evidence and phases every way in.")
    return "\n".join(out)


if __name__ == "__main__":
    main()
