"""Benchmark of topoembed.localize (issue 4): cycles, membership and circular coordinates.

    python benchmarks/bench_localize.py [--part synthetic|multi|h2|real|all] [--quick]

Writes benchmarks/localize_results.json, benchmarks/localize_real.png and prints the
tables that benchmarks/LOCALIZE.md quotes. Everything is seeded; one process, bounded sizes.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from topoembed import datasets, graph, homology, loops, spectral
from topoembed import localize as L

log = logging.getLogger("bench_localize")
HERE = Path(__file__).resolve().parent
P = L.DEFAULT_COEFF
REAL = Path("/work/shared/data/neural_ipc_scvi.h5ad")


def run(X, k=15, kind="effective_resistance", t=8, n_loops="auto", **kw):
    t0 = time.perf_counter()
    A = graph.knn_graph(X, k=k)
    D = spectral.distance_matrix(kind, X=X, A=A, t=t)
    t1 = time.perf_counter()
    ph = homology.persistence(D, cocycles=True, coeff=P)
    t2 = time.perf_counter()
    det = loops.detect(ph["dgms"][1], n_loops=n_loops, scale=ph["scale"])
    res = L.localize_loops(D, A, ph, det, **kw)
    t3 = time.perf_counter()
    return A, D, ph, det, res, {"graph_distance_s": t1 - t0, "ph_s": t2 - t1, "localize_s": t3 - t2}


def bins_hit(angle, cycle, width=np.pi / 9):
    return int(len(np.unique((np.asarray(angle)[cycle] // width).astype(int))))


def true_winding(angle, cycle):
    c = np.asarray(cycle)
    return float(np.angle(np.exp(1j * (angle[np.roll(c, -1)] - angle[c]))).sum() / (2 * np.pi))


def synthetic(seeds, sigmas, ks, n=1000):
    rows = []
    for k in ks:
        for sigma in sigmas:
            for seed in seeds:
                s = datasets.make("circle", n=n, d=50, sigma=sigma, seed=seed)
                A, D, ph, det, res, tm = run(s.X, k=k)
                row = {"k": k, "sigma": sigma, "seed": seed, "n_loops": det["n_loops"], **tm}
                if res:
                    r = res[0]
                    rips = L.localize_loops(D, A, ph, det, phase_method="harmonic", smooth="rips")[0]
                    row.update(corr=abs(L.circular_correlation(r["phase"], s.angle)),
                               corr_rips=abs(L.circular_correlation(rips["phase"], s.angle)),
                               bins=bins_hit(s.angle, r["cycle"]), cycle_len=len(r["cycle"]),
                               true_winding=true_winding(s.angle, r["cycle"]),
                               on_loop=r["n_on_loop"] / n, on_loop_birth=float(np.mean(r["loop_distance"] <= r["birth"])))
                rows.append(row)
                print(" ".join(f"{k_}={v:.3f}" if isinstance(v, float) else f"{k_}={v}" for k_, v in row.items()),
                      flush=True)
    return rows


def multi(n=1000):
    out = []
    cases = [("linked_circles", 0.0, 15, "auto"), ("linked_circles", 0.1, 15, "auto"),
             ("eyeglasses", 0.0, 15, "auto"), ("eyeglasses", 0.1, 15, "auto"),
             ("torus", 0.0, 15, 2), ("torus", 0.0, 50, 2)]
    for name, sigma, k, m in cases:
        s = datasets.make(name, n=n, d=50, sigma=sigma, seed=0)
        A, D, ph, det, res, tm = run(s.X, k=k, n_loops=m)
        row = {"shape": name, "sigma": sigma, "k": k, "n_loops_asked": m, "n_loops": det["n_loops"],
               "score": det["score"], "components": int(graph.components(A)[0]), **tm, "loops": []}
        phi = None
        if name == "torus":  # the tube angle φ is not stored: regenerate the intrinsic points
            Y = datasets.SHAPES["torus"](n, np.random.default_rng(0))[0]
            phi = datasets.torus_tube_angle(Y)
        for r in res:
            corr = [abs(L.circular_correlation(r["phase"][s.label == c], s.angle[s.label == c]))
                    for c in np.unique(s.label)]
            extra = {} if phi is None else {"corr_tube_angle": abs(L.circular_correlation(r["phase"], phi))}
            row["loops"].append({"corr_per_label": corr, **extra, "cycle_len": len(r["cycle"]),
                                 "bins": bins_hit(s.angle, r["cycle"]), "n_on_loop": r["n_on_loop"],
                                 "birth": r["birth"], "death": r["death"]})
        out.append(row)
        print(json.dumps(row, default=float), flush=True)
    return out


def h2_cost(ns=(100, 200, 300, 400, 500, 600), cap_s=120.0):
    out = []
    for n in ns:
        s = datasets.make("sphere", n=n, d=50, sigma=0.0, seed=0)
        A = graph.knn_graph(s.X, k=15)
        D = spectral.distance_matrix(A=A)
        t0 = time.perf_counter()
        ph = homology.persistence(D, maxdim=2)
        dt = time.perf_counter() - t0
        t0 = time.perf_counter()
        homology.persistence(D, maxdim=1)
        dt1 = time.perf_counter() - t0
        life = np.sort(ph["dgms"][2][:, 1] - ph["dgms"][2][:, 0])[::-1]
        row = {"n": n, "maxdim2_s": dt, "maxdim1_s": dt1, "top_H2_lifetimes": life[:2].tolist(),
               "n_H2": int(len(life))}
        out.append(row)
        print(json.dumps(row), flush=True)
        if dt > cap_s:
            break
    return out


def real(m=2000, full_k=15):
    import anndata as ad
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = ad.read_h5ad(REAL)
    X = np.asarray(a.obsm["X_scVI"], dtype=np.float64)
    cc = a.obs["CellCycle"].to_numpy().astype(float)
    cyc = a.obs["Cycling"].to_numpy().astype(bool)
    umap = np.asarray(a.obsm["X_umap"])
    idx = np.sort(np.random.default_rng(0).choice(len(X), m, replace=False))
    t0 = time.perf_counter()
    A_full = graph.knn_graph(X, k=full_k)
    t_full = time.perf_counter() - t0
    out = {"n_cells": int(len(X)), "subsample": m, "full_knn_k": full_k, "full_knn_s": t_full, "runs": []}
    edges = np.linspace(0, 2 * np.pi, 13)
    fig, axes = plt.subplots(2, 4, figsize=(20, 9))
    for j, (kind, k, t) in enumerate([("effective_resistance", 100, 8), ("diffusion", 15, 64)]):
        A, D, ph, det, res, tm = run(X[idx], k=k, kind=kind, t=t)
        run_out = {"distance": kind, "k": k, "t": t, "n_loops": det["n_loops"], "score": det["score"], **tm,
                   "loops": []}
        for smooth in ("knn", "rips"):
            rs = res if smooth == "knn" else L.localize_loops(D, A, ph, det, phase_method="harmonic", smooth="rips")
            for i, r in enumerate(rs):
                th = r["phase"]
                t1 = time.perf_counter()
                th_full = L.extend_phase(A_full, idx, th)
                d_full = L.extend_loop_distance(A_full, idx, r["loop_distance"])
                t_ext = time.perf_counter() - t1
                on_full = d_full <= r["on_loop_threshold"]
                b = np.digitize(th, edges) - 1
                bf = np.digitize(th_full, edges) - 1
                table = [{"bin_deg": [30 * q, 30 * q + 30], "n_sub": int((b == q).sum()),
                          "cellcycle_sub": float(cc[idx][b == q].mean()) if (b == q).any() else None,
                          "cycling_sub": float(cyc[idx][b == q].mean()) if (b == q).any() else None,
                          "n_full": int((bf == q).sum()),
                          "cellcycle_full": float(cc[bf == q].mean()) if (bf == q).any() else None,
                          "cycling_full": float(cyc[bf == q].mean()) if (bf == q).any() else None}
                         for q in range(12)]
                from scipy.stats import spearmanr
                loop = {"smooth": smooth, "loop": i, "cycle_len": len(r["cycle"]), "n_on_loop": r["n_on_loop"],
                        "cycling_on_loop": float(cyc[idx][r["on_loop"]].mean()),
                        "cycling_off_loop": float(cyc[idx][~r["on_loop"]].mean()) if (~r["on_loop"]).any() else None,
                        "full_on_loop_frac": float(on_full.mean()),
                        "full_cycling_on": float(cyc[on_full].mean()),
                        "full_cycling_off": float(cyc[~on_full].mean()) if (~on_full).any() else None,
                        "spearman_loopdist_cellcycle": float(spearmanr(r["loop_distance"], cc[idx])[0]),
                        "largest_bin_share": float(np.bincount(b[b >= 0], minlength=12).max() / m),
                        "extend_s": t_ext, "table": table}
                run_out["loops"].append(loop)
                print(f"{kind} k={k} smooth={smooth} loop {i}: cycle {len(r['cycle'])}, on_loop {r['n_on_loop']}/{m}"
                      f" (Cycling on/off {loop['cycling_on_loop']:.2f}/{loop['cycling_off_loop']})", flush=True)
                for row in table:
                    print("   ", row, flush=True)
                if smooth == "knn" and i == 0:
                    ax = axes[j]
                    ax[0].scatter(*umap[idx].T, c=cc[idx], s=3, cmap="viridis")
                    ax[0].set_title(f"CellCycle (subsample {m})")
                    ax[1].scatter(*umap[idx].T, c=th, s=3, cmap="hsv", vmin=0, vmax=2 * np.pi)
                    cyc_ids = np.r_[r["cycle"], r["cycle"][:1]]
                    ax[1].plot(*umap[idx][cyc_ids].T, "k-", lw=1)
                    ax[1].set_title(f"θ (cycle phase), {kind} k={k}; cycle in black")
                    ax[2].hist(th, bins=36, range=(0, 2 * np.pi))
                    ax[2].set_title("histogram of θ")
                    cen = np.array([rw["cellcycle_full"] if rw["cellcycle_full"] is not None else np.nan for rw in table])
                    ax[3].bar(np.arange(12) * 30 + 15, cen, width=28)
                    ax[3].set_title("mean CellCycle per θ bin (all cells, extended)")
                    ax[3].set_xlabel("θ (degrees)")
        out["runs"].append(run_out)
    fig.tight_layout()
    fig.savefig(HERE / "localize_real.png", dpi=70)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="all", choices=["synthetic", "multi", "h2", "real", "all"])
    ap.add_argument("--quick", action="store_true", help="seed 0 only, k=15 only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    path = HERE / "localize_results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    seeds = [0] if args.quick else list(range(5))
    if args.part in ("synthetic", "all"):
        results["synthetic"] = synthetic(seeds, [0.0, 0.1, 0.2], [15] if args.quick else [15, 30])
    if args.part in ("multi", "all"):
        results["multi"] = multi()
    if args.part in ("h2", "all"):
        results["h2"] = h2_cost()
    if args.part in ("real", "all"):
        results["real"] = real()
    path.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
