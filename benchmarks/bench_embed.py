"""Benchmarks of the embedding stage (issues 5 and 17). One command, all ratios from the same run:

    python benchmarks/bench_embed.py --parts compare,sketchmap_real [--n-cells 10000 0] [--device cuda] [--out results.json]

openTSNE and umap-learn are benchmark-only dependencies (``pip install openTSNE umap-learn``);
a missing one is skipped with a message. Parts (``--parts``, default all):

* ``compare``: on the neural IPC cells (``../shared/data/neural_ipc_scvi.h5ad``,
  ``obsm['X_scVI']``, a seeded subsample per ``--n-cells``, 0 = all cells), one tool after
  another in this process: openTSNE ``TSNE(n_jobs=2)``, umap-learn ``UMAP()`` (numba and
  pynndescent's NN-descent compiled beforehand on 300 points, not timed), ``te embed(X, "infonce")`` and ``embed(X, "neg", s=1)``
  with their defaults, InfoNCE without its exact near field (``near_field=0``, the default
  before issue 17's fourth pass), ``embed(X, "neg", s=1, kernel="cauchy")`` (the Cauchy kernel, NEG's
  default before the fifth pass; the default is now UMAP's output kernel), plus
  ``--spectrum`` positions of NEG. ``--tools A,B``: only the tools whose name contains one of
  these strings (e.g. ``--tools umap-learn,neg`` for the UMAP end alone). Per tool: wall time (kNN search
  included for every tool), kNN recall@15 (fraction of a cell's 15 nearest neighbours in
  X_scVI among its 15 nearest in 2-D), Spearman correlation of the distances of 100,000
  random pairs, and the loop check (``embedding_topology`` on a seeded 1,000-cell subsample
  against effective-resistance persistent homology of the same cells); time ratios of
  te InfoNCE / openTSNE and te NEG s=1 / UMAP.
* ``sketchmap_real``: ``sketchmap`` and ``sketchmap_sym`` on the effective-resistance
  distances (k = 15) of ``--sketch-cells`` IPC cells, with the same recall and loop check,
  next to te InfoNCE and openTSNE on the same cells.
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


def spearman_pairs(X, Y, n_pairs=100_000, seed=0):
    """Spearman correlation of the distances of random pairs in X and in Y (global structure)."""
    from scipy.stats import spearmanr
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(X), n_pairs)
    j = (i + rng.integers(1, len(X), n_pairs)) % len(X)
    return float(spearmanr(np.linalg.norm(X[i] - X[j], axis=1), np.linalg.norm(Y[i] - Y[j], axis=1))[0])


def _tools(args):
    """name -> function(X) -> Y for the comparison, in the order they run (each times itself)."""
    from topoembed.embed import embed

    def te(loss, **kw):
        def run(X):  # the kNN search is part of the timed run, as the others'
            return embed(X, loss, device=args.device, seed=0, verbose=False, **kw)[0]
        return run

    def opentsne(X):
        import openTSNE
        return np.asarray(openTSNE.TSNE(n_jobs=2, random_state=0).fit(X))

    def umap_learn(X):
        import umap
        return umap.UMAP(random_state=None).fit_transform(X)

    tools = {"openTSNE TSNE(n_jobs=2)": opentsne, "umap-learn UMAP()": umap_learn,
             'te embed(X, "infonce")': te("infonce"),
             'te embed(X, "infonce", near_field=0)': te("infonce", near_field=0),
             'te embed(X, "neg", s=1)': te("neg", s=1.0),
             'te embed(X, "neg", s=1, kernel="cauchy")': te("neg", s=1.0, kernel="cauchy")}
    for s in args.spectrum:
        tools[f'te embed(X, "neg", s={s:g})'] = te("neg", s=s)
    if args.tools:
        tools = {k: v for k, v in tools.items() if any(t in k for t in args.tools.split(","))}
    return tools


def _loop_reference(X, sub):
    """Effective-resistance loop detection of the cells ``sub`` (k = 15): the high-dimensional reference."""
    from topoembed.graph import knn_graph
    from topoembed.homology import persistence
    from topoembed.loops import detect
    from topoembed.spectral import distance_matrix
    ph = persistence(distance_matrix("effective_resistance", A=knn_graph(X[sub], k=15)))
    return detect(ph["dgms"][1], scale=ph["scale"])


def _quality(name, X, Y, seconds, true_idx, sub, high):
    from topoembed.embed import embedding_topology
    top = embedding_topology(Y[sub], high)
    row = {"seconds": seconds, "recall15": recall_at_k(X, Y, 15, true_idx), "spearman": spearman_pairs(X, Y),
           "loops": top["low"]["n_loops"], "loop_score": float(top["low"]["score"]), "verdict": top["message"]}
    print(f"  {name}: {seconds:.1f} s, recall@15 {row['recall15']:.3f}, Spearman {row['spearman']:.3f}, "
          f"{row['loops']} loop(s) (score {row['loop_score']:.2f}): {row['verdict']}", flush=True)
    return row


def _measure(tools, X):
    """Run each tool on X, one after another, timed; returns (rows, high-dimensional loop reference)."""
    true_idx = knn_idx(X, 15)
    sub = np.sort(np.random.default_rng(0).choice(len(X), min(len(X), 1000), replace=False))
    high = _loop_reference(X, sub)
    print(f"  high-dimensional reference (effective resistance, {len(sub)} cells): {high['n_loops']} loop(s), "
          f"score {high['score']:.2f}", flush=True)
    rows = {}
    for name, run in tools.items():
        t0 = time.perf_counter()
        try:
            Y = run(X)
        except ImportError as exc:
            print(f"  SKIP {name}: {exc} (pip install openTSNE umap-learn)")
            continue
        rows[name] = _quality(name, X, Y, time.perf_counter() - t0, true_idx, sub, high)
    return rows, {"n_loops": high["n_loops"], "score": high["score"]}


def bench_compare(args, out):
    """openTSNE, umap-learn and topoembed's two ends on IPC cells, one tool after another."""
    X_all = load_ipc()
    if X_all is None:
        print(f"SKIP compare: {IPC} not found (the ../shared/data folder beside the repo)")
        out["compare"] = {"skipped": f"{IPC} not found"}
        return
    try:  # numba compiles umap-learn (and pynndescent's NN-descent, which 300 points would not reach
        # without force_approximation_algorithm) on its first call: not counted in its time
        import umap
        umap.UMAP(n_epochs=5, force_approximation_algorithm=True).fit_transform(
            np.random.default_rng(0).normal(size=(300, 10)).astype(np.float32))
    except ImportError:
        pass
    res = {}
    for n_cells in args.n_cells:
        X = X_all
        if 0 < n_cells < len(X_all):
            X = X_all[np.sort(np.random.default_rng(0).choice(len(X_all), n_cells, replace=False))]
        n = len(X)
        print(f"IPC, {n} cells (obsm['X_scVI'], seed 0):", flush=True)
        rows, high = _measure(_tools(args), X)
        ratios = {}
        for ours, ref in (('te embed(X, "infonce")', "openTSNE TSNE(n_jobs=2)"),
                          ('te embed(X, "infonce", near_field=0)', "openTSNE TSNE(n_jobs=2)"),
                          ('te embed(X, "neg", s=1)', "umap-learn UMAP()"),
                          ('te embed(X, "neg", s=1, kernel="cauchy")', "umap-learn UMAP()")):
            if ours in rows and ref in rows:
                ratios[f"{ours} / {ref}"] = {"time": rows[ours]["seconds"] / rows[ref]["seconds"],
                                             "recall_diff": rows[ours]["recall15"] - rows[ref]["recall15"]}
                print(f"  {ours} vs {ref}: time {ratios[f'{ours} / {ref}']['time']:.2f}x, recall "
                      f"{rows[ours]['recall15']:.3f} vs {rows[ref]['recall15']:.3f}", flush=True)
        res[str(n)] = {"n": n, "high": high, "rows": rows,
                       "ratios": ratios, "device": args.device}
    out["compare"] = res


def bench_sketchmap_real(args, out):
    """Sketch-map (classic, symmetrised) on effective-resistance distances of IPC cells, with
    the recall and loop check of the comparison and te InfoNCE/openTSNE on the same cells."""
    from topoembed.embed import embed
    from topoembed.graph import knn_graph
    from topoembed.spectral import distance_matrix

    X_all = load_ipc()
    if X_all is None:
        out["sketchmap_real"] = {"skipped": f"{IPC} not found"}
        return
    X = X_all[np.sort(np.random.default_rng(0).choice(len(X_all), args.sketch_cells, replace=False))]
    D = distance_matrix("effective_resistance", A=knn_graph(X, k=15))
    print(f"IPC, {len(X)} cells, effective resistance (k = 15):", flush=True)
    tools = {f'te embed(X, "{loss}", D=ER)': (lambda X, loss=loss: embed(X, loss, D=D, device=args.device, seed=0,
                                                                        verbose=False, n_epochs=args.sketch_epochs)[0])
             for loss in ("sketchmap", "sketchmap_sym")}
    tools.update({k: v for k, v in _tools(args).items() if k in ('te embed(X, "infonce")', "openTSNE TSNE(n_jobs=2)")})
    rows, high = _measure(tools, X)
    out["sketchmap_real"] = {"n": len(X), "high": high, "rows": rows}


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
    p.add_argument("--parts", default="compare,sketchmap_real,sketchmap,scan,triplet")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (recorded with the results)")
    p.add_argument("--n-cells", type=int, nargs="+", default=[10000, 0],
                   help="IPC cells for the comparison (seeded subsample; 0 = all 26,625)")
    p.add_argument("--spectrum", type=float, nargs="*", default=[0.5],
                   help="extra NEG positions s to show the trade-off along the spectrum")
    p.add_argument("--tools", default=None,
                   help="compare only the tools whose name contains one of these comma-separated strings")
    p.add_argument("--sketch-cells", type=int, default=2000, help="IPC cells for sketch-map on effective resistance")
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
        {"compare": bench_compare, "sketchmap_real": bench_sketchmap_real, "sketchmap": bench_sketchmap, "scan": bench_scan,
         "triplet": bench_triplet}[part](args, out)
        print(f"[{part}: {time.perf_counter() - t0:.0f} s]", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
