"""False H1 loops of ``auto`` on small spheres, with and without the 2-D eigenmap as a
third distance kind.

The sphere S^2 has no H1 loop. A 2-D Laplacian eigenmap of it is (close to) a projection
onto a disk whose rim is densest, and at small n its Rips filtration can show a ring.
This script counts, over n, σ and seeds, the runs in which ``auto`` reports at least one
loop, for the package's grid and for the grid plus the eigenmap (the alternative
"+ 2-D eigenmap as a third kind" of ``benchmarks/auto_variants.py``).

Usage (about 20 seconds on 2 cores)::

    python benchmarks/auto_small_sphere.py
    python benchmarks/auto_small_sphere.py --n 150 300 --sigmas 0 0.1 --seeds 0 1 2 3
"""
from __future__ import annotations

import argparse
import logging

from topoembed import auto, datasets

EIGENMAP = ("laplacian_eigenmaps", 15, None, 2)


def count_false_loops(n: int, sigmas, seeds, d: int = 50) -> dict:
    """{"package": runs with a loop, "+ eigenmap": runs with a loop, "runs": total}."""
    grid = [auto.normalize(c) for c in auto.DEFAULT_GRID if c[1] < n]
    package = [auto.config_key(c) for c in grid]
    out = {"package": 0, "+ eigenmap": 0, "runs": 0}
    for sigma in sigmas:
        for seed in seeds:
            X = datasets.make("sphere", n=n, d=d, sigma=sigma, seed=seed).X
            cands = auto.compute_candidates(X, grid + [auto.normalize(EIGENMAP)], maxdim=1, seed=seed)
            out["package"] += auto.choose({k: cands[k] for k in package})["n_loops"] > 0
            out["+ eigenmap"] += auto.choose(cands)["n_loops"] > 0
            out["runs"] += 1
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[150, 300, 500])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)  # disconnected-graph warnings at small n
    print("| n | runs | package rule: runs with a loop | + eigenmap: runs with a loop |")
    print("|---|---|---|---|")
    for n in args.n:
        c = count_false_loops(n, args.sigmas, args.seeds)
        print(f"| {n} | {c['runs']} | {c['package']} | {c['+ eigenmap']} |", flush=True)


if __name__ == "__main__":
    main()
