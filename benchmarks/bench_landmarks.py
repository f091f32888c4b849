"""H1 + H2 of 300 max-min landmarks (the closed-surface check): ripser.py, giotto-ph on the
full complex, giotto-ph after its edge collapse (``homology.collapsed_persistence``, the
default), and gudhi's edge collapse with ripser.py (what runs on Python 3.13, without
giotto-ph; needs ``pip install gudhi``, in the test extra), on the same landmark distances, in
the same run.

    python benchmarks/bench_landmarks.py      # about a minute; prints a Markdown table

Cases: the default distance (corrected effective resistance, mutual k = 100 graph) of two
1,000-cell IPC subsamples (``../shared/data``, skipped when absent) and of the noise
benchmark's torus (n = 1,000 in R^50, σ = 0.05 and 0.15). The last column checks that the
collapses leave the H2 diagram as ripser.py computes it.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "neural_ipc_scvi.h5ad"


def _distances(X):
    from topoembed import graph, pipeline, spectral

    p = pipeline.Params()
    A = graph.knn_graph(X, k=p.k, symmetrize=p.symmetrize, weights=p.weights, random_state=0)
    return spectral.distance_matrix(p.distance, X=X, A=A, t=p.t)


def main() -> None:
    from ripser import ripser

    from topoembed import datasets, homology

    logging.disable(logging.WARNING)
    cases = {}
    if DATA.exists():
        import anndata as ad

        full = ad.read_h5ad(DATA)
        X0 = np.asarray(full.obsm["X_scVI"])
        for seed in (7, 9):
            idx = np.sort(np.random.default_rng(seed).choice(full.n_obs, 1000, replace=False))
            cases[f"IPC, 1,000 cells, seed {seed}"] = _distances(X0[idx])
    else:
        print(f"IPC skipped: {DATA} is absent")
    for sigma in (0.05, 0.15):
        cases[f"torus, σ = {sigma}"] = _distances(datasets.make("torus", n=1000, d=50, sigma=sigma, seed=0).X)
    print("| case | ripser.py (s) | giotto-ph (s) | giotto-ph after edge collapse (s) | ripser.py / collapse | "
          "gudhi's collapse + ripser.py (s) | H2 as ripser.py |")
    print("|---|---|---|---|---|---|---|")
    for name, D in cases.items():
        L = np.sort(homology.maxmin_landmarks(D, homology.N_LANDMARKS, 0))
        DL = np.asarray(D)[np.ix_(L, L)]
        t0 = time.perf_counter()
        ref = ripser(DL, distance_matrix=True, maxdim=2)["dgms"][2]
        t_ripser = time.perf_counter() - t0
        t0 = time.perf_counter()
        homology.persistence(DL, maxdim=2, engine="gph")
        t_gph = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = homology.collapsed_persistence(DL, maxdim=2)["dgms"][2]
        t_col = time.perf_counter() - t0
        same = got.shape == ref.shape and np.allclose(np.sort(got, axis=0), np.sort(ref, axis=0), rtol=1e-5)
        t_gudhi = "– (gudhi not installed)"
        if homology._gudhi() is not None:
            gph_module, homology._gph_module = homology._gph_module, lambda name: None  # as on Python 3.13
            try:
                t0 = time.perf_counter()
                alt = homology.collapsed_persistence(DL, maxdim=2)
                t_gudhi = f"{time.perf_counter() - t0:.2f}"
            finally:
                homology._gph_module = gph_module
            same = same and alt["engine"] == "gudhi-collapse" and np.array_equal(alt["dgms"][2], got)
        print(f"| {name} | {t_ripser:.2f} | {t_gph:.2f} | {t_col:.2f} | {t_ripser / t_col:.0f}× | {t_gudhi} | {same} |",
              flush=True)


if __name__ == "__main__":
    main()
