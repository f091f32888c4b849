"""Issue 3 benchmark: the package defaults on the neural IPC cell-cycle data (and PBMC).

    python benchmarks/bench_ipc.py                 # n = 1000 and 2000, seeds 0-4
    python benchmarks/bench_ipc.py --sizes 1000 --seeds 0 1 2

For each subsample it runs pipeline.run with the package defaults (only ``distance``
changes) and prints the mean and range of the detection score s_1 per distance, the
time per stage, and every time as a ratio to the Euclidean run on the same cells (the
baseline measured in the same run). It then runs the same defaults on scanpy's bundled
pbmc68k_reduced (700 blood cells, X_pca), which is not expected to show a cell-cycle loop.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from topoembed import pipeline

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "neural_ipc_scvi.h5ad"
DISTANCES = ["effective_resistance", "diffusion", "euclidean"]
PUBLISHED = {"effective_resistance": 0.77, "diffusion": 0.92, "euclidean": 0.36}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import anndata

    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: this benchmark needs ../shared/data/neural_ipc_scvi.h5ad")
    X = np.asarray(anndata.read_h5ad(DATA).obsm["X_scVI"], dtype=np.float64)
    defaults = pipeline.Params()
    print(f"defaults: k={defaults.k}, symmetrize={defaults.symmetrize}, weights={defaults.weights}, "
          f"t={defaults.t}; n_loops=1 scored (s_1), as in the paper")
    for n in args.sizes:
        scores = {d: [] for d in DISTANCES}
        times = {d: [] for d in DISTANCES}
        stage = {d: {} for d in DISTANCES}
        for seed in args.seeds:
            idx = np.random.default_rng(seed).choice(X.shape[0], n, replace=False)
            for dist in DISTANCES:
                r = pipeline.run(X[idx], distance=dist, n_loops=1)
                scores[dist].append(r.detection["score"])
                times[dist].append(r.timings["total"])
                for k, v in r.timings.items():
                    stage[dist].setdefault(k, []).append(v)
        base = np.mean(times["euclidean"])
        print(f"\n## {n} cells, seeds {args.seeds}\n")
        print("| distance | mean s_1 | range | per seed | published (1,000 cells) | time / Euclidean time |")
        print("| --- | --- | --- | --- | --- | --- |")
        for dist in DISTANCES:
            s = np.array(scores[dist])
            print(f"| {dist} | {s.mean():.3f} | {s.min():.2f}–{s.max():.2f} | "
                  f"{' '.join(f'{v:.2f}' for v in s)} | ≈ {PUBLISHED[dist]} | {np.mean(times[dist]) / base:.2f} |")
        beats = all(a > b for a, b in zip(scores["effective_resistance"], scores["euclidean"]))
        print(f"\neffective resistance beats Euclidean on every seed: {beats}")
        # the default loop-count rule with its confirmation by diffusion on the same graph
        found = confirmed = 0
        for seed in args.seeds:
            idx = np.random.default_rng(seed).choice(X.shape[0], n, replace=False)
            det = pipeline.run(X[idx], localize=False).detection
            found += det["n_loops"] > 0 or "unconfirmed" in det
            confirmed += det["n_loops"] > 0
        print(f"default rule (n_loops='auto', confirm=True): effective resistance found a loop on {found} of "
              f"{len(args.seeds)} subsamples; diffusion on the same graph confirmed {confirmed} of them")
        print("\nseconds per stage (mean over seeds):\n")
        print("| distance | " + " | ".join(stage["euclidean"]) + " |")
        print("| --- |" + " --- |" * len(stage["euclidean"]))
        for dist in DISTANCES:
            print(f"| {dist} | " + " | ".join(f"{np.mean(v):.2f}" for v in stage[dist].values()) + " |")

    import scanpy as sc

    pbmc = sc.datasets.pbmc68k_reduced()
    print("\n## pbmc68k_reduced (700 cells, X_pca, 50 PCs)\n")
    print("| distance | loops (auto) | s_1 | s_2 | top H1 lifetimes / enclosing radius | graph components |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dist in DISTANCES:
        r = pipeline.run(np.asarray(pbmc.obsm["X_pca"], dtype=np.float64), distance=dist)
        h1 = r.ph["dgms"][1]
        life = np.sort(h1[:, 1] - h1[:, 0])[::-1][:3] / r.ph["thresh"]
        sc_ = r.detection["scores"]
        print(f"| {dist} | {r.detection['n_loops']} | {sc_[1]:.2f} | {sc_[2]:.2f} | "
              f"{', '.join(f'{v:.2f}' for v in life)} | {r.n_components} |")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"\n(total {time.time() - t0:.0f} s)")
