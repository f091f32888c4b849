"""The loop stages on a CUDA GPU (issue 13): kNN graph, eigendecomposition, a whole dataset end to end.

    python benchmarks/bench_gpu.py --device cuda [--n 1000000] [--out FILE]

Prints one JSON row per case (and appends them to ``--out``):

* ``knn``: the exact kNN graph (k = 15, union) of a noisy circle in R^50 at 20,000 and
  100,000 points on the GPU and, at 20,000, on the CPU (the graphs must be identical);
* ``eigh``: the dense Laplacian eigendecomposition at 1,000, 4,000 and 10,000 points, GPU and
  CPU, with the largest eigenvalue difference;
* ``end_to_end``: ``ensemble.run`` with defaults and ``device=...`` on ``--n`` points (a noisy
  circle, σ = 0.2, in R^50): wall time, loops, prevalence, the phase's alignment with the
  true angle. At a million points the kNN graph of all points (the consensus' extension
  graph) is the GPU's work; the 700-point subsample runs are the CPU's.

Without CUDA it stops with a message (CI has no GPU; `tests/test_device.py` checks the
code paths on the CPU).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from topoembed import _device, datasets, ensemble, graph, spectral
    from topoembed import localize as L

    from topoembed._validate import InputError

    try:
        dev = _device.resolve(args.device)
    except InputError as exc:
        raise SystemExit(f"bench_gpu: {exc}") from None
    rows = []

    def emit(row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    for n in (20_000, 100_000):
        X = datasets.make("circle", n=n, d=50, sigma=0.2, seed=0).X
        A_gpu, t_gpu = _timed(lambda: graph.knn_graph(X, k=15, method="exact", device=dev))
        row = {"case": "knn", "n": n, "gpu_s": t_gpu}
        if n <= 20_000:
            A_cpu, t_cpu = _timed(lambda: graph.knn_graph(X, k=15, method="exact"))
            row.update(cpu_s=t_cpu, identical=bool((A_gpu != A_cpu).nnz == 0))
        emit(row)
    for n in (1000, 4000, 10_000):
        X = datasets.make("circle", n=n, d=50, sigma=0.2, seed=0).X
        A = graph.knn_graph(X, k=15, device=dev)
        g, t_gpu = _timed(lambda: spectral.laplacian_spectrum(A, device=dev))
        c, t_cpu = _timed(lambda: spectral.laplacian_spectrum(A))
        emit({"case": "eigh", "n": n, "gpu_s": t_gpu, "cpu_s": t_cpu,
              "max_eigval_diff": float(np.abs(g.eigvals - c.eigvals).max())})
    ds = datasets.make("circle", n=args.n, d=50, sigma=0.2, seed=0)
    res, wall = _timed(lambda: ensemble.run(ds.X, device=dev))
    row = {"case": "end_to_end", "n": args.n, "device": dev, "wall_s": wall, "n_loops": int(res.detection["n_loops"]),
           "prevalence": [float(lp.get("prevalence", 1.0)) for lp in res.loops],
           "timings": {k: float(v) for k, v in res.timings.items()}}
    if res.loops:
        row["alignment"] = float(L.circular_alignment(ds.angle, res.loops[0]["phase"])[0])
    emit(row)
    if args.out:
        with open(args.out, "a") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
