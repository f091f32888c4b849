"""Whole datasets (issue 13): the default run at every n, against the dense published method.

    python benchmarks/bench_whole.py [--part ipc|sizes|reference|large|all] [--seeds 0 1 2] [--out FILE]

Every case runs in a fresh child process (so its peak memory, ``ru_maxrss``, is its own
and numba's compilation is counted where it happens) and prints one JSON row:

* ``ipc``: ``../shared/data/neural_ipc_scvi.h5ad``, all 26,625 cells, ``te.tl.run(adata,
  use_rep="X_scVI")`` with no other option (what ``topoembed run`` does), seeds 0 and 1:
  wall time, peak memory, loops, prevalence, cells with a phase, R² of ``CellCycle`` on
  (cos θ, sin θ), and the circular correlation of the two seeds' phases.
* ``sizes``: noisy circle and Gaussian blob in R^50 (σ = 0.2) at n = 300, 1,000, 5,000 and
  20,000, ``ensemble.run(X)`` with defaults: loops (circle 1, blob 0) and the phase's
  alignment with the true angle.
* ``reference``: the default run against the dense published method on the same circle
  (σ = 0.2) at n = 1,000, 2,000 and 5,000: kNN graph (k = 15, union), the pseudo-inverse
  of L + 11ᵀ/n, corrected effective resistance, ripser on the full matrix (Damrich et al.
  2024, eff-ph). Time and memory ratios, and the reference's loop call by the same rule.
* ``large``: noisy circle, n = 100,000 in R^50, σ = 0.2, defaults.

Report ratios, not absolute times: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: --subsample-size, passed to the cases' processes: the ensemble's subsample size (None: the default)
_OVERRIDES_ENV = "TOPOEMBED_BENCH_OVERRIDES"


def _overrides() -> dict:
    import os

    return json.loads(os.environ.get(_OVERRIDES_ENV, "{}"))


# ---------------------------------------------------------------------------- cases (child side)
def _peak_gib() -> float:
    """Peak resident memory of this process or of its largest worker process (an ensemble's
    subsample runs), whichever is larger; the machine holds this process plus ``jobs`` workers."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 2**20  # kB on Linux


def case_ipc(seed: int) -> dict:
    import anndata as ad

    import topoembed as te

    t0 = time.perf_counter()
    a = ad.read_h5ad(DATA / "neural_ipc_scvi.h5ad")
    te.tl.run(a, use_rep="X_scVI", seed=seed, **_overrides())
    wall = time.perf_counter() - t0
    loops = te.tl.get_loops(a)
    row = {"case": "ipc", "seed": seed, "n": a.n_obs, "wall_s": wall, "peak_gib": _peak_gib(), "n_loops": len(loops),
           "prevalence": [float(lp["prevalence"]) for lp in loops]}
    if loops:
        th = a.obs["topoembed_phase"].to_numpy()
        cc = a.obs["CellCycle"].to_numpy(dtype=float)
        Z = np.c_[np.ones(len(th)), np.cos(th), np.sin(th)]
        ok = np.isfinite(th)
        beta, *_ = np.linalg.lstsq(Z[ok], cc[ok], rcond=None)
        row.update(phase_share=float(ok.mean()), r2_cellcycle=float(1 - np.var(cc[ok] - Z[ok] @ beta) / np.var(cc[ok])),
                   median_spread=float(np.nanmedian(a.obs["topoembed_phase_spread"])))
        np.save(Path("/tmp") / f"bench_whole_ipc_phase_{seed}.npy", th)
    return row


def case_size(name: str, n: int, seed: int) -> dict:
    from topoembed import datasets, ensemble
    from topoembed import localize as L

    ds = datasets.make(name, n=n, d=50, sigma=0.2, seed=seed)
    t0 = time.perf_counter()
    res = ensemble.run(ds.X, seed=seed, **_overrides())
    wall = time.perf_counter() - t0
    row = {"case": "sizes", "dataset": name, "n": n, "seed": seed, "wall_s": wall, "peak_gib": _peak_gib(),
           "n_loops": int(res.detection["n_loops"]), "mode": "ensemble" if res.ensemble else "single",
           "prevalence": [float(lp.get("prevalence", 1.0)) for lp in res.loops]}
    if res.ensemble:
        row["runs_n_loops"] = [r["n_loops"] for r in res.ensemble["runs"]]
    if name == "circle" and res.loops:
        row["alignment"] = float(L.circular_alignment(ds.angle, res.loops[0]["phase"])[0])
    return row


def dense_reference(X, k: int = 15) -> dict:
    """The published method: union kNN graph, pseudo-inverse of L + 11ᵀ/n, corrected
    effective resistance R_ij − 1/d_i − 1/d_j + 2 w_ij/(d_i d_j), ripser (H1) on the full
    matrix (ripser.py's default threshold)."""
    from ripser import ripser

    from topoembed import graph, loops

    t0 = time.perf_counter()
    A = graph.knn_graph(X, k=k, symmetrize="or").toarray()
    n = A.shape[0]
    deg = A.sum(axis=1)
    Lap = np.diag(deg) - A
    J = np.full((n, n), 1.0 / n)
    Lp = np.linalg.inv(Lap + J) - J
    d = np.diag(Lp)
    R = d[:, None] + d[None, :] - 2 * Lp
    # von Luxburg, Radl and Hein (2014): R_ij − 1/d_i − 1/d_j + 2 w_ij/(d_i d_j) (no self-loops)
    R = R - 1 / deg[:, None] - 1 / deg[None, :] + 2 * A / np.outer(deg, deg)
    np.fill_diagonal(R, 0)
    t1 = time.perf_counter()
    dgm1 = ripser(R, distance_matrix=True, maxdim=1)["dgms"][1]
    t2 = time.perf_counter()
    det = loops.detect(dgm1, scale=float(np.median(R[np.triu_indices(n, 1)])))
    return {"n_loops": int(det["n_loops"]), "distances_s": t1 - t0, "ripser_s": t2 - t1, "wall_s": t2 - t0,
            "top_lifetimes": sorted((dgm1[:, 1] - dgm1[:, 0]).tolist(), reverse=True)[:3]}


def case_reference(n: int, seed: int, which: str) -> dict:
    from topoembed import datasets, ensemble

    import gph  # noqa: F401  both methods' engines imported before the clock starts, in this process
    import ripser  # noqa: F401  (an ensemble's workers import theirs inside its time)

    ds = datasets.make("circle", n=n, d=50, sigma=0.2, seed=seed)
    row = {"case": "reference", "which": which, "n": n, "seed": seed}
    t0 = time.perf_counter()
    if which == "dense":
        row.update(dense_reference(ds.X))
    else:
        res = ensemble.run(ds.X, seed=seed, **_overrides())
        row.update(n_loops=int(res.detection["n_loops"]), mode="ensemble" if res.ensemble else "single",
                   timings={k: float(v) for k, v in res.timings.items()})
    row["wall_s"] = time.perf_counter() - t0
    row["peak_gib"] = _peak_gib()
    return row


def case_large(n: int, seed: int) -> dict:
    row = case_size("circle", n, seed)
    row["case"] = "large"
    return row


CASES = {"ipc": case_ipc, "size": case_size, "reference": case_reference, "large": case_large}


# ---------------------------------------------------------------------------- driver (parent side)
def child(kind: str, *args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"case": kind, "args": list(args), "error": proc.stderr[-2000:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(_overrides())
    print(json.dumps(row), flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["ipc", "sizes", "reference", "large", "all"], default="all")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 5000, 20000])
    ap.add_argument("--reference", choices=["both", "dense"], default="both",
                    help="'dense': time only the published method (the default's cost at n > 1,000 is that of "
                         "its 10 subsample runs, measured by --part sizes)")
    ap.add_argument("--out", type=Path, default=None, help="append the rows as JSON lines")
    ap.add_argument("--subsample-size", type=int, default=None,
                    help="the ensemble's subsample size (default: the package's)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.subsample_size is not None:
        import os

        os.environ[_OVERRIDES_ENV] = json.dumps({"subsample_size": args.subsample_size})
    if args.child:
        kind, *rest = args.child
        import logging

        logging.disable(logging.WARNING)
        conv = [int(x) if x.lstrip("-").isdigit() else x for x in rest]
        print(json.dumps(CASES[kind](*conv), default=float))
        return
    rows = []
    if args.part in ("ipc", "all") and (DATA / "neural_ipc_scvi.h5ad").exists():
        rows += [child("ipc", s) for s in (0, 1)[:max(1, min(2, len(args.seeds)))]]
        from topoembed.localize import circular_correlation

        p0, p1 = (Path("/tmp") / f"bench_whole_ipc_phase_{s}.npy" for s in (0, 1))
        if p0.exists() and p1.exists():
            rows.append({"case": "ipc_stability", "abs_corr": abs(circular_correlation(np.load(p0), np.load(p1)))})
            print(json.dumps(rows[-1]))
    if args.part in ("sizes", "all"):
        rows += [child("size", name, n, s) for n in args.sizes for name in ("circle", "blob") for s in args.seeds]
    if args.part in ("reference", "all"):
        for n in (1000, 2000, 5000):
            for s in args.seeds[:1]:
                rows.append(child("reference", n, s, "dense"))
                if args.reference == "both":
                    rows.append(child("reference", n, s, "default"))
    if args.part in ("large", "all"):
        rows.append(child("large", 100_000, 0))
    if args.out:
        with open(args.out, "a") as fh:
            for r in rows:
                fh.write(json.dumps(r, default=float) + "\n")


if __name__ == "__main__":
    main()
