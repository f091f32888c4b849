"""Cost of the exact kNN search's tie-safe re-ranking (graph.knn_search, method="exact").

    python benchmarks/bench_knn.py                       # default shapes, 3 repeats
    python benchmarks/bench_knn.py --shapes 20000x50x100 --repeats 1

For each shape n x p (and k) it times the plain scikit-learn brute-force search (the
baseline, measured in the same run) and the package's search, which re-ranks
k + RERANK_MARGIN candidates by coordinate differences so that tied distances do not
depend on the BLAS thread count, and prints the best-of-repeats ratio. It also checks
that the package's result is the same with 1 and with all BLAS threads on equally
spaced points on a circle (exact ties).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["2000x50x15", "10000x50x100", "5000x500x30"],
                    help="n x p x k")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    from topoembed import datasets, graph

    print("| n | p | k | scikit-learn (s) | re-ranked (s) | ratio |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes:
        n, p, k = (int(v) for v in shape.split("x"))
        X = np.random.default_rng(0).normal(size=(n, p))
        base = _best(lambda: NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X), args.repeats)
        ours = _best(lambda: graph.knn_search(X, k, method="exact"), args.repeats)
        print(f"| {n} | {p} | {k} | {base:.2f} | {ours:.2f} | {ours / base:.2f} |")

    X = datasets.make("circle", n=1000, d=50, sigma=0.0, seed=0).X
    with threadpool_limits(1):
        one = graph.knn_graph(X, k=15)
    many = graph.knn_graph(X, k=15)
    print(f"\ncircle, sigma = 0 (tied distances): same graph with 1 and all BLAS threads: "
          f"{(one != many).nnz == 0} ({one.nnz} edges)")


if __name__ == "__main__":
    main()
