"""How the ensemble's subsample size m changes the IPC loop call (issue 13's choice of m).

    python benchmarks/bench_subsample_size.py --sizes 500 600 700 --seeds 0 1 2 3 4 5 6 7

All 26,625 IPC cells (``obsm["X_scVI"]``), ``ensemble.run(X, seed=s, subsample_size=m,
early_stop=False)`` so that every one of the 10 subsample runs is made: per (m, seed) one JSON
row with the wall time, each run's loop count, the reported loops' prevalence and median p,
and the R² of ``obs["CellCycle"]`` on (1, cos θ, sin θ) of the consensus phase. Rows are
appended to ``benchmarks/results/whole/subsample_size.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "whole" / "subsample_size.jsonl"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 700])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    import anndata as ad

    from topoembed import ensemble

    logging.disable(logging.WARNING)
    a = ad.read_h5ad(DATA / "neural_ipc_scvi.h5ad")
    X = np.asarray(a.obsm["X_scVI"], dtype=np.float64)
    cc = a.obs["CellCycle"].to_numpy(dtype=float)
    for m in args.sizes:
        for seed in args.seeds:
            t0 = time.perf_counter()
            res = ensemble.run(X, seed=seed, subsample_size=m, early_stop=False)
            row = {"m": m, "seed": seed, "wall_s": round(time.perf_counter() - t0, 1), "n_loops": len(res.loops),
                   "prevalence": [lp["prevalence"] for lp in res.loops], "p": [lp.get("p_value") for lp in res.loops],
                   "runs_n_loops": [r["n_loops"] for r in res.ensemble["runs"]]}
            if res.loops:
                th = res.loops[0]["phase"]
                ok = np.isfinite(th)
                Z = np.c_[np.ones(ok.sum()), np.cos(th[ok]), np.sin(th[ok])]
                beta, *_ = np.linalg.lstsq(Z, cc[ok], rcond=None)
                row["r2_cellcycle"] = round(float(1 - np.var(cc[ok] - Z @ beta) / np.var(cc[ok])), 3)
                row["phase_share"] = round(float(ok.mean()), 3)
            print(json.dumps(row), flush=True)
            with open(OUT, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
