"""Benchmarks of the embedding stage (issue 5). One command, all ratios from the same run:

    python benchmarks/bench_embed.py --epochs 30 --seeds 1 --sketch-epochs 30 [--device cpu] [--out results.json]

Parts (``--parts``, default all):

* ``contrastive``: topoembed InfoNCE (t-SNE-like, s = 0) vs the ``contrastive-ne``
  package (benchmark-only dependency; install with ``pip install --no-deps contrastive-ne``
  plus ``annoy``) on the neural IPC data (``../shared/data/neural_ipc_scvi.h5ad``,
  ``obsm['X_scVI']``), equal epochs, k = 15 and 5 negatives: wall time (kNN graph
  included for both) and kNN recall@15; then the loop check of both embeddings on a
  seeded 1,000-cell subsample against effective-resistance persistent homology of the
  same cells.
* ``sketchmap``: classic vs symmetrised sketch-map with the high-dimensional distances
  fixed and only the embedding optimised; pairs are "medium range" when 0.1 < SIG < 0.9;
  false negatives (medium in high-D, not in the embedding) and false positives (the
  reverse) after optimisation, same data and seeds.
* ``scan``: SCAN-style clustering of 10 Gaussian blobs × 100 points (10-D), 10
  neighbours, far points from the farthest 900, 5 restarts, seeds 0–4, vs k-means.
* ``triplet``: 5-fold kNN accuracy (k = 5) of a 2-D triplet embedding (labels from the
  training folds only; test cells mapped with ``transform``) vs PCA to 2-D, on scanpy's
  bundled ``pbmc68k_reduced`` (``bulk_labels``).

The device used is recorded with every figure (``--device cuda`` for a GPU run).
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IPC = ROOT.parent / "shared" / "data" / "neural_ipc_scvi.h5ad"
log = logging.getLogger("bench_embed")


def knn_idx(X, k):
    from sklearn.neighbors import NearestNeighbors
    return NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]


def recall_at_k(X, Y, k=15, true_idx=None):
    """Mean fraction of each point's k nearest neighbours in X that are among its k in Y."""
    a = knn_idx(X, k) if true_idx is None else true_idx
    b = knn_idx(Y, k)
    return float(np.mean([len(np.intersect1d(a[i], b[i], assume_unique=True)) / k for i in range(len(a))]))


def load_ipc():
    if not IPC.exists():
        return None
    import anndata as ad
    return np.asarray(ad.read_h5ad(IPC).obsm["X_scVI"], dtype=np.float32)


def bench_contrastive(args, out):
    import torch

    from topoembed.embed import embed, embedding_topology
    from topoembed.graph import knn_graph
    from topoembed.homology import persistence
    from topoembed.loops import detect
    from topoembed.spectral import distance_matrix

    X = load_ipc()
    if X is None:
        print(f"SKIP contrastive: {IPC} not found (the ../shared/data folder beside the repo)")
        out["contrastive"] = {"skipped": f"{IPC} not found"}
        return
    n = X.shape[0]
    true_idx = knn_idx(X, 15)
    res = {"n": n, "k": 15, "epochs": args.epochs, "negatives": 5, "device": args.device, "runs": {}}
    embeddings = {}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        A = knn_graph(X, k=15, method="exact")
        Y, info = embed(X, "infonce", A=A, n_epochs=args.epochs, k=15, n_negatives=5, device=args.device,
                        seed=seed, verbose=False,
                        batch_size=args.batch_size if args.batch_size == "auto" else int(args.batch_size))
        t = time.perf_counter() - t0
        r = recall_at_k(X, Y, 15, true_idx)
        res["runs"].setdefault("topoembed", []).append({"seed": seed, "seconds": t, "recall15": r,
                                                        "device": info["device"]})
        embeddings.setdefault("topoembed", Y)
        print(f"topoembed infonce seed {seed}: {t:.1f} s, recall@15 {r:.3f} ({info['device']})", flush=True)
        try:
            import cne
        except ImportError as exc:
            print(f"SKIP contrastive-ne: not installed ({exc}); pip install --no-deps contrastive-ne annoy")
            continue
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        model = cne.CNE(loss_mode="infonce", k=15, n_epochs=args.epochs, negative_samples=5, seed=seed,
                        device=args.device if args.device != "auto" else "cpu", print_freq_epoch=None)
        Yc = model.fit_transform(X)
        t = time.perf_counter() - t0
        r = recall_at_k(X, Yc, 15, true_idx)
        res["runs"].setdefault("contrastive-ne", []).append({"seed": seed, "seconds": t, "recall15": r,
                                                             "device": args.device})
        embeddings.setdefault("contrastive-ne", Yc)
        print(f"contrastive-ne infonce seed {seed}: {t:.1f} s, recall@15 {r:.3f}", flush=True)
    for name, runs in res["runs"].items():
        res[name] = {"seconds_median": float(np.median([r["seconds"] for r in runs])),
                     "recall15_median": float(np.median([r["recall15"] for r in runs]))}
    if "contrastive-ne" in res:
        res["time_ratio_topoembed_over_cne"] = res["topoembed"]["seconds_median"] / res["contrastive-ne"]["seconds_median"]
        res["recall_diff_topoembed_minus_cne"] = res["topoembed"]["recall15_median"] - res["contrastive-ne"]["recall15_median"]
    # loop check on the same seeded 1,000-cell subsample
    sub = np.sort(np.random.default_rng(0).choice(n, 1000, replace=False))
    D = distance_matrix("effective_resistance", A=knn_graph(X[sub], k=15))
    ph = persistence(D)
    high = detect(ph["dgms"][1], scale=ph["scale"])
    res["loop_check"] = {"high": {"n_loops": high["n_loops"], "score": high["score"]}}
    print(f"high-dimensional (effective resistance, 1,000 cells): {high['n_loops']} loop(s), score {high['score']:.2f}")
    for name, Y in embeddings.items():
        top = embedding_topology(Y[sub], high)
        res["loop_check"][name] = {"n_loops": top["low"]["n_loops"], "score": top["low"]["score"],
                                   "verdict": top["message"]}
        print(f"  {name}: {top['low']['n_loops']} loop(s), score {top['low']['score']:.2f}: {top['message']}")
    out["contrastive"] = res


def bench_sketchmap(args, out):
    import torch

    from topoembed import datasets
    from topoembed.embed import SketchMap
    from topoembed.embed.losses import sig
    from topoembed.graph import knn_graph
    from topoembed.spectral import distance_matrix, euclidean_distance

    cases = {}
    syn = datasets.make("circle", n=600, d=50, sigma=0.25, seed=0)
    cases["circle n=600 d=50 sigma=0.25, Euclidean"] = (syn.X, euclidean_distance(syn.X))
    syn = datasets.make("torus", n=600, d=50, sigma=0.1, seed=0)
    cases["torus n=600 d=50 sigma=0.1, effective resistance"] = (syn.X, distance_matrix("effective_resistance", A=knn_graph(syn.X, 15)))
    X = load_ipc()
    if X is not None:
        sub = np.sort(np.random.default_rng(0).choice(len(X), 1000, replace=False))
        cases["IPC 1,000 cells, effective resistance"] = (X[sub], distance_matrix("effective_resistance", A=knn_graph(X[sub], 15)))
    lo, hi = 0.1, 0.9
    res = {"thresholds": [lo, hi], "epochs": args.sketch_epochs, "device": args.device, "cases": {}}
    for name, (Xc, D) in cases.items():
        iu = np.triu_indices(len(D), 1)
        rows = []
        for seed in range(args.seeds):
            row = {"seed": seed}
            for key, sym, units in (("classic", False, "raw"), ("sym", True, "raw"), ("sym_matched", True, "matched")):
                m = SketchMap(symmetrised=sym, sym_units=units, n_epochs=args.sketch_epochs, device=args.device, seed=seed,
                              verbose=False).fit(Xc, D=D)
                sh = sig(torch.as_tensor(D[iu]), *m.high_).numpy()
                Y = m.embedding_
                r = np.sqrt(((Y[iu[0]] - Y[iu[1]]) ** 2).sum(1))
                sl = sig(torch.as_tensor(r), *m.low_).numpy()
                mid_h, mid_l = (sh > lo) & (sh < hi), (sl > lo) & (sl < hi)
                row[key] = {"FN": int((mid_h & ~mid_l).sum()), "FP": int((mid_l & ~mid_h).sum()),
                            "mid_high": int(mid_h.sum()), "stress": float(((sh - sl) ** 2).mean()),
                            "sigma_h": m.sigma_h_}
            rows.append(row)
            print(f"{name} seed {seed}: classic FN {row['classic']['FN']} FP {row['classic']['FP']} "
                  f"stress {row['classic']['stress']:.4f} | symmetrised FN {row['sym']['FN']} FP {row['sym']['FP']} "
                  f"stress {row['sym']['stress']:.4f} | matched FN {row['sym_matched']['FN']} FP "
                  f"{row['sym_matched']['FP']} stress {row['sym_matched']['stress']:.4f} "
                  f"(of {row['classic']['mid_high']} medium pairs, sigma_h {row['classic']['sigma_h']:.3g})", flush=True)
        res["cases"][name] = rows
    out["sketchmap"] = res


def bench_scan(args, out):
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    from topoembed.embed import cluster

    def acc(y, lab, C=10):
        M = np.zeros((C, C))
        np.add.at(M, (y, lab), 1)
        r, c = linear_sum_assignment(-M)
        return float(M[r, c].sum() / len(y))

    rows = []
    for seed in range(5):
        X, y = make_blobs(1000, centers=10, n_features=10, random_state=seed)
        t0 = time.perf_counter()
        lab, _, info = cluster(X, 10, k=10, n_far=900, n_restarts=5, seed=seed, device=args.device, verbose=False)
        t = time.perf_counter() - t0
        km = KMeans(10, n_init=1, random_state=seed).fit_predict(X)
        km10 = KMeans(10, n_init=10, random_state=seed).fit_predict(X)
        rows.append({"seed": seed, "scan": acc(y, lab), "kmeans_ninit1": acc(y, km), "kmeans_ninit10": acc(y, km10),
                     "seconds": t})
        print(f"blobs seed {seed}: SCAN {rows[-1]['scan']:.3f} ({t:.0f} s), k-means n_init=1 "
              f"{rows[-1]['kmeans_ninit1']:.3f}, n_init=10 {rows[-1]['kmeans_ninit10']:.3f}", flush=True)
    out["scan"] = {"rows": rows, "device": args.device,
                   "median": {k: float(np.median([r[k] for r in rows])) for k in ("scan", "kmeans_ninit1", "kmeans_ninit10")}}
    print("median:", out["scan"]["median"])


def bench_triplet(args, out):
    import scanpy as sc
    from sklearn.decomposition import PCA
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    from topoembed.embed import TripletEmbedding

    ad = sc.datasets.pbmc68k_reduced()
    X = np.asarray(ad.obsm["X_pca"], dtype=np.float64)
    y = np.asarray(ad.obs["bulk_labels"].astype(str))
    scores = {"triplet (labels)": [], "triplet (kNN, no labels)": [], "PCA 2-D": []}
    unsup = TripletEmbedding(n_epochs=args.triplet_epochs, device=args.device, verbose=False).fit(X)
    for fold, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)):
        m = TripletEmbedding(n_epochs=args.triplet_epochs, device=args.device, seed=fold, verbose=False).fit(X[tr], y[tr])
        knn = KNeighborsClassifier(5)
        scores["triplet (labels)"].append(knn.fit(m.embedding_, y[tr]).score(m.transform(X[te]), y[te]))
        Yu = unsup.embedding_
        scores["triplet (kNN, no labels)"].append(knn.fit(Yu[tr], y[tr]).score(Yu[te], y[te]))
        p = PCA(2).fit(X[tr])
        scores["PCA 2-D"].append(knn.fit(p.transform(X[tr]), y[tr]).score(p.transform(X[te]), y[te]))
    summary = {k: {"mean": float(np.mean(v)), "folds": [float(x) for x in v]} for k, v in scores.items()}
    for k, v in summary.items():
        print(f"pbmc68k_reduced bulk_labels, 5-fold kNN accuracy, {k}: {v['mean']:.3f}")
    out["triplet"] = {"n": len(y), "input": "obsm['X_pca'] (50-D)", "device": args.device, **summary}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="contrastive,sketchmap,scan,triplet")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (recorded with the results)")
    p.add_argument("--epochs", type=int, default=100, help="contrastive epochs (both packages)")
    p.add_argument("--batch-size", default="auto", help="topoembed contrastive batch (edges; auto: 32768 here)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sketch-epochs", type=int, default=60)
    p.add_argument("--triplet-epochs", type=int, default=60)
    p.add_argument("--out", default=None, help="also write all figures to this JSON file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch
    out = {"command": "python benchmarks/bench_embed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": {"platform": platform.platform(), "torch": torch.__version__,
                       "cpu_threads_training": __import__("topoembed.embed.train", fromlist=["x"]).CPU_THREADS,
                       "cuda": torch.cuda.is_available()}}
    for part in args.parts.split(","):
        t0 = time.perf_counter()
        {"contrastive": bench_contrastive, "sketchmap": bench_sketchmap, "scan": bench_scan,
         "triplet": bench_triplet}[part](args, out)
        print(f"[{part}: {time.perf_counter() - t0:.0f} s]", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
