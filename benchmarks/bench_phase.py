"""Phase benchmark (issue 12): does the circular coordinate follow the loop, on shapes and cells?

    python benchmarks/bench_phase.py [--part synthetic|ipc|fucci|all] [--quick] [--out FILE]

Every case runs the pipeline at its defaults (``pipeline.run``; mutual kNN graph, k = 100,
corrected effective resistance, confirmation on; ``phase_low_confidence=True``, since this
benchmark asks how the coordinate follows a loop, not whether the verdict supports it: a
single run measures no prevalence and withholds the phase of a loop with p in [0.01, 0.05))
and scores the default phase
(``phase_method="cycle"``) next to the harmonic coordinate of the same run
(``phase_method="harmonic"``, the method before issue 12) and an outside baseline:

* synthetic: noisy circle in R^50 (σ = 0.1, 0.2, 0.25; n = 1,000; seeds 0-4) against the
  true angle; linked circles (σ = 0.1, seeds 0-2), each loop on its own circle's points.
  Alignment = max over reflection of |mean e^{i(θ − θ_true)}| (``localize.circular_alignment``).
* ipc: ``../shared/data/neural_ipc_scvi.h5ad``, 1,000-cell subsamples (seeds 0-4), phase
  extended to all 26,625 cells: the share of cells in the fullest 30° bin (fixed bins from
  0, and the fullest 30° window at any rotation), R² of ``obs['CellCycle']`` on
  (cos θ, sin θ), and the circular correlation |ρ| (Fisher-Lee) of θ between every two
  seeds on all cells. Baseline: the angle of the first two non-trivial eigenvectors of the
  normalised Laplacian of the subsample's union k = 15 graph (the issue's reference).
* fucci: ``../shared/data/fucci_ipsc_peco.h5ad`` against ``obs['fucci_theta']``: the
  issue's representation (normalise, log1p, 20 genes of highest ``pve_fucci``, scale,
  5 PCs) and the recipe route (``te.pp.recipe_cell_cycle``). Baseline: the angle of
  PC1/PC2. The loop is scored when the defaults report it, and with ``n_loops=1`` forced.

Prints the tables quoted in benchmarks/LOCALIZE.md and writes JSON with ``--out``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from topoembed import datasets, graph, pipeline
from topoembed import localize as L

log = logging.getLogger("bench_phase")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ---------------------------------------------------------------------------- metrics
def alignment(theta, truth) -> float:
    return float(L.circular_alignment(truth, theta)[0])


def largest_bin(theta, width=np.pi / 6) -> float:
    """Share of the points in the fullest of the fixed bins [0, 30°), [30°, 60°), ..."""
    th = theta[np.isfinite(theta)]
    counts = np.bincount((np.mod(th, 2 * np.pi) // width).astype(int), minlength=int(round(2 * np.pi / width)))
    return float(counts.max() / len(th))


def largest_window(theta, width=np.pi / 6) -> float:
    """Share of the points in the fullest arc of the given width at any rotation."""
    th = np.sort(np.mod(theta[np.isfinite(theta)], 2 * np.pi))
    ext = np.r_[th, th + 2 * np.pi]
    ends = np.searchsorted(ext, th + width, side="left")
    return float((ends - np.arange(len(th))).max() / len(th))


def r2_on_circle(theta, y) -> float:
    """R² of y regressed on (1, cos θ, sin θ)."""
    ok = np.isfinite(theta) & np.isfinite(y)
    Z = np.c_[np.ones(ok.sum()), np.cos(theta[ok]), np.sin(theta[ok])]
    beta, *_ = np.linalg.lstsq(Z, y[ok], rcond=None)
    return float(1 - np.var(y[ok] - Z @ beta) / np.var(y[ok]))


def eigen_angle(X, k=15) -> np.ndarray:
    """Angle of the first two non-trivial eigenvectors of the normalised Laplacian (union kNN graph)."""
    from scipy.sparse.linalg import eigsh

    A = graph.knn_graph(X, k=k)
    deg = np.asarray(A.sum(axis=1)).ravel()
    S = sp.diags(deg ** -0.5) @ A @ sp.diags(deg ** -0.5)
    _, V = eigsh(S, k=3, which="LA", v0=np.ones(A.shape[0]))
    V = V[:, ::-1]
    return np.mod(np.arctan2(V[:, 2], V[:, 1]), 2 * np.pi)


def phases(result: pipeline.Result, A_full=None) -> dict:
    """{method: [phase per input point, one per loop]}: the run's own (cycle) and the
    harmonic coordinate of the same run, extended over ``A_full`` for a subsampled run."""
    out = {"cycle": [lp["phase"] for lp in result.loops]}
    placed = L.localize_loops(result.D, result.A, result.ph, result.detection,
                              theta_filtration=result.params.theta_filtration, phase_method="harmonic")
    out["harmonic"] = [pl["phase"] if A_full is None else L.extend_phase(A_full, result.index, pl["phase"])
                       for pl in placed]
    return out


# ---------------------------------------------------------------------------- parts
def part_synthetic(quick: bool) -> list[dict]:
    rows = []
    seeds = range(2) if quick else range(5)
    cases = [("circle", s) for s in (0.1, 0.2, 0.25)] + [("linked_circles", 0.1)]
    for name, sigma in cases:
        for seed in (seeds if name == "circle" else range(2 if quick else 3)):
            ds = datasets.make(name, n=1000, d=50, sigma=sigma, seed=seed)
            t0 = time.perf_counter()
            res = pipeline.run(ds.X, seed=seed, phase_low_confidence=True)
            row = {"dataset": name, "sigma": sigma, "seed": seed, "n_loops": res.detection["n_loops"],
                   "time_s": time.perf_counter() - t0}
            for method, ths in phases(res).items():
                if name == "circle":
                    row[method] = alignment(ths[0], ds.angle) if ths else float("nan")
                else:  # each loop against the circle it aligns with best, on that circle's points
                    per_loop = [max(alignment(th[ds.label == c], ds.angle[ds.label == c]) for c in (0, 1))
                                for th in ths]
                    row[method] = min(per_loop) if len(per_loop) == 2 else float("nan")
                    row[f"{method}_circles"] = sorted(
                        int(np.argmax([alignment(th[ds.label == c], ds.angle[ds.label == c]) for c in (0, 1)]))
                        for th in ths)
            if res.loops:
                row["median_confidence"] = float(np.nanmedian(res.loops[0]["phase_confidence"]))
            if name == "circle":
                row["baseline_eigen"] = alignment(eigen_angle(ds.X), ds.angle)
            rows.append(row)
            log.info("%s", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    return rows


def part_ipc(quick: bool) -> dict:
    import anndata as ad

    path = DATA / "neural_ipc_scvi.h5ad"
    if not path.exists():
        log.warning("skipping ipc: %s not found", path)
        return {}
    a = ad.read_h5ad(path)
    X = np.asarray(a.obsm["X_scVI"])
    cc = a.obs["CellCycle"].to_numpy(dtype=float)
    A_full = graph.knn_graph(X, k=15, symmetrize="or")  # the pipeline's extension graph
    rows, thetas = [], {}
    for seed in (range(2) if quick else range(5)):
        t0 = time.perf_counter()
        res = pipeline.run(X, subsample=1000, seed=seed, phase_low_confidence=True)
        row = {"seed": seed, "n_loops": res.detection["n_loops"], "score": res.detection["score"],
               "time_s": time.perf_counter() - t0}
        if res.loops:
            sub = res.index
            by_method = phases(res, A_full)
            cand = {"cycle": by_method["cycle"][0], "harmonic": by_method["harmonic"][0],
                    "baseline_eigen": L.extend_phase(A_full, sub, eigen_angle(X[sub]))}
            for method, th in cand.items():
                thetas.setdefault(method, {})[seed] = th
                for where, sel in (("sub", sub), ("all", slice(None))):
                    row[f"{method}_{where}_bin"] = largest_bin(th[sel])
                    row[f"{method}_{where}_window"] = largest_window(th[sel])
                    row[f"{method}_{where}_r2"] = r2_on_circle(th[sel], cc[sel])
                row[f"{method}_nan"] = int(np.isnan(th).sum())
            conf = res.loops[0]["phase_confidence"]
            row["confidence_median"] = float(np.nanmedian(conf))
            # does the confidence rank the phase? R² on the more confident half
            hi = conf >= np.nanmedian(conf)
            row["cycle_r2_confident_half"] = r2_on_circle(cand["cycle"][hi], cc[hi])
            row["cycle_r2_other_half"] = r2_on_circle(cand["cycle"][~hi], cc[~hi])
        rows.append(row)
        log.info("%s", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    stability = {}
    for method, by_seed in thetas.items():
        vals = [abs(L.circular_correlation(by_seed[s1], by_seed[s2])) for s1, s2 in itertools.combinations(sorted(by_seed), 2)]
        stability[method] = {"min": float(min(vals)), "median": float(np.median(vals)), "max": float(max(vals)),
                             "pairs": len(vals)} if vals else {}
    return {"runs": rows, "stability_all_cells": stability}


def _fucci_reps():
    import anndata as ad
    import scanpy as sc

    import topoembed as te

    a = ad.read_h5ad(DATA / "fucci_ipsc_peco.h5ad")
    truth = a.obs["fucci_theta"].to_numpy(dtype=float)
    norm = a.copy()
    sc.pp.normalize_total(norm)
    sc.pp.log1p(norm)
    top = norm.var["pve_fucci"].sort_values(ascending=False).index[:20]
    g = norm[:, top].copy()
    sc.pp.scale(g)
    sc.pp.pca(g, n_comps=5, random_state=0)
    rec = a.copy()
    te.pp.recipe_cell_cycle(rec)
    return truth, {"top20_pcs5": np.asarray(g.obsm["X_pca"]), "recipe": np.asarray(rec.obsm["X_pca_cell_cycle"])}


def part_fucci(quick: bool) -> list[dict]:
    if not (DATA / "fucci_ipsc_peco.h5ad").exists():
        log.warning("skipping fucci: %s not found", DATA / "fucci_ipsc_peco.h5ad")
        return []
    truth, reps = _fucci_reps()
    rows = []
    for rep, X in reps.items():
        base = np.mod(np.arctan2(X[:, 1], X[:, 0]), 2 * np.pi)
        for n_loops in ("auto", 1):
            res = pipeline.run(X, n_loops=n_loops, phase_low_confidence=True)
            row = {"representation": rep, "n_loops_param": n_loops, "n_loops": res.detection["n_loops"],
                   "score": res.detection["score"], "baseline_pc12": alignment(base, truth)}
            for method, ths in phases(res).items():
                row[method] = alignment(ths[0], truth) if ths else float("nan")
            rows.append(row)
            log.info("%s", row)
    return rows


# ---------------------------------------------------------------------------- report
def _range(vals):
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    return f"{min(vals):.3f}–{max(vals):.3f}" if vals else "–"


def print_tables(out: dict) -> None:
    if out.get("synthetic"):
        print("\n| data | σ | runs with the loop(s) | cycle (default) | harmonic (before) | eigen-angle baseline |")
        print("|---|---|---|---|---|---|")
        keys = sorted({(r["dataset"], r["sigma"]) for r in out["synthetic"]})
        for name, sigma in keys:
            rs = [r for r in out["synthetic"] if (r["dataset"], r["sigma"]) == (name, sigma)]
            want = 1 if name == "circle" else 2
            print(f"| {name} | {sigma} | {sum(r['n_loops'] == want for r in rs)}/{len(rs)} | "
                  f"{_range(r.get('cycle') for r in rs)} | {_range(r.get('harmonic') for r in rs)} | "
                  f"{_range(r.get('baseline_eigen') for r in rs)} |")
    ipc = out.get("ipc") or {}
    if ipc.get("runs"):
        rs = [r for r in ipc["runs"] if r["n_loops"]]
        print(f"\nIPC, 1,000-cell subsamples, {len(rs)} of {len(ipc['runs'])} runs with a loop")
        print("| method | cells | largest 30° bin | fullest 30° window | R² CellCycle | seed-to-seed |ρ| (all cells) |")
        print("|---|---|---|---|---|---|")
        for method in ("cycle", "harmonic", "baseline_eigen"):
            st = ipc["stability_all_cells"].get(method) or {}
            for where in ("sub", "all"):
                stab = f"{st['min']:.3f}–{st['max']:.3f}" if st and where == "all" else ""
                print(f"| {method} | {'subsample' if where == 'sub' else 'all 26,625'} | "
                      f"{_range(r[f'{method}_{where}_bin'] for r in rs)} | {_range(r[f'{method}_{where}_window'] for r in rs)} | "
                      f"{_range(r[f'{method}_{where}_r2'] for r in rs)} | {stab} |")
        print(f"confidence: median {_range(r['confidence_median'] for r in rs)}; R² on the more confident half "
              f"{_range(r['cycle_r2_confident_half'] for r in rs)}, on the other half {_range(r['cycle_r2_other_half'] for r in rs)}")
    if out.get("fucci"):
        print("\n| FUCCI representation | n_loops | loops found (score) | cycle | harmonic | PC1/PC2 baseline |")
        print("|---|---|---|---|---|---|")
        for r in out["fucci"]:
            print(f"| {r['representation']} | {r['n_loops_param']} | {r['n_loops']} ({r['score']:.2f}) | "
                  f"{r.get('cycle', float('nan')):.3f} | {r.get('harmonic', float('nan')):.3f} | {r['baseline_pc12']:.3f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["synthetic", "ipc", "fucci", "all"], default="all")
    ap.add_argument("--quick", action="store_true", help="fewer seeds")
    ap.add_argument("--out", type=Path, default=None, help="write the raw numbers as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("topoembed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    out = {}
    for part, fn in (("synthetic", part_synthetic), ("ipc", part_ipc), ("fucci", part_fucci)):
        if args.part in (part, "all"):
            t0 = time.perf_counter()
            out[part] = fn(args.quick)
            log.info("%s: %.0f s", part, time.perf_counter() - t0)
    print_tables(out)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
