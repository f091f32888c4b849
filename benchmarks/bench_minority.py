"""Loops that few points carry (issue 29): the default run on a circle of 5 % or 2 % of the
points among 6 Gaussian clusters, with and without the search inside parts.

    python benchmarks/bench_minority.py [--n 20000] [--fractions 0.05 0.02 0] [--seeds 0 1] [--uniform] [--out FILE]

Data: ``datasets.make("circle_in_clusters", n, d=50, sigma=0.2, fraction=f, seed)``. Each case
runs ``analysis.run(X)`` (what ``topoembed run`` does) in a fresh process and prints one JSON
row: verdict, time per stage, peak memory (kB), and per loop its corrected p-value, the part
it was found in, the F1 of ``on_loop`` against the circle's points and |ρ| (Fisher-Lee) of its
phase with the true angle on them. ``--uniform`` adds the same case with ``parts=False`` (the
uniform subsamples alone) next to each. Report ratios of times: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def case(n: int, fraction: float, seed: int, use_parts: bool) -> dict:
    from topoembed import analysis, datasets

    s = datasets.make("circle_in_clusters", n=n, d=50, sigma=0.2, seed=seed, fraction=fraction)
    t0 = time.perf_counter()
    res = analysis.run(s.X, parts=use_parts)
    row = {"n": n, "fraction": fraction, "seed": seed, "parts": use_parts, "verdict": res.verdict.level,
           "time_s": round(time.perf_counter() - t0, 1),
           "timings_s": {k: round(v, 1) for k, v in res.timings.items()}, "loops": scored_loops(res, s.label == 0, s.angle)}
    row["peak_kb"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                         resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return row


def scored_loops(res, truth, angle) -> list:
    """Per loop of a result: its p-value, prevalence, part, the F1 of ``on_loop`` against the
    points ``truth`` and |ρ| of its phase with the true ``angle`` there."""
    import numpy as np

    from topoembed import localize

    out = []
    for lp in res.loops:
        on = np.asarray(lp["on_loop"], bool)
        phase = np.asarray(lp["phase"], float)
        out.append({
            "p_value": lp.get("p_value"), "prevalence": lp.get("prevalence"), "part_size": lp.get("part_size"),
            "f1": round(float(2 * (on & truth).sum() / (on.sum() + truth.sum())), 3) if truth.any() else None,
            "alignment": round(abs(localize.circular_correlation(phase[truth], angle[truth])), 3)
            if truth.any() and np.isfinite(phase[truth]).any() else None})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.02, 0.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--uniform", action="store_true", help="also run each case with parts=False")
    ap.add_argument("--out", default=None)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # child side: n,fraction,seed,parts
    args = ap.parse_args(argv)
    if args.case:
        n, f, seed, use = args.case.split(",")
        print(json.dumps(case(int(n), float(f), int(seed), use == "1"), default=str))
        return
    for f in args.fractions:
        for seed in args.seeds:
            for use in ([1, 0] if args.uniform else [1]):
                out = subprocess.run([sys.executable, __file__, "--case", f"{args.n},{f},{seed},{use}"],
                                     capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                print(out, flush=True)
                if args.out:
                    with open(args.out, "a") as fh:
                        fh.write(out + "\n")


if __name__ == "__main__":
    main()
