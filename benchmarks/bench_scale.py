"""Atlas scale (issue 29): the default run from 10^4 to 10^6 points, each stage timed, with the
longest silence of its progress output.

    python benchmarks/bench_scale.py [--sizes 10000 30000 50000 100000 1000000] [--dims 10 50] [--out FILE]

Data: ``datasets.make("circle_in_clusters", n, d, sigma=0.2, fraction=0.02, seed=0)``: a circle
of 2 % of the points among 6 Gaussian clusters, made by a first child process and saved as
float32 (what an AnnData's ``X_pca`` holds), so that the measured process holds only its
input. A second child runs ``analysis.run(X, progress=True)`` (what ``topoembed run`` does) off
a terminal, where the progress is logged line by line, and prints one JSON row: verdict,
time per stage (``graph_all_points``: the extension graph, all points or landmarks,
``topoembed.extension``; ``subsample_runs``; ``consensus``; ``parts``), peak memory of the
process or its largest worker (GiB), the longest gap between two lines of its output
(``longest_silence_s``), and per loop the F1 of ``on_loop`` against the circle's points and
|ρ| of its phase with the true angle. Report ratios of times: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_minority import scored_loops  # noqa: E402


def make(n: int, d: int, path: str) -> None:
    import numpy as np

    from topoembed import datasets

    s = datasets.make("circle_in_clusters", n=n, d=d, sigma=0.2, seed=0, fraction=0.02)
    np.savez(path, X=s.X.astype(np.float32), label=s.label, angle=s.angle)


def case(path: str) -> dict:
    import numpy as np

    from topoembed import analysis, extension

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)d %(name)s %(message)s")
    data = np.load(path)
    X, truth, angle = data["X"], data["label"] == 0, data["angle"]
    t0 = time.perf_counter()
    res = analysis.run(X, progress=True)
    row = {"n": int(X.shape[0]), "d": int(X.shape[1]), "verdict": res.verdict.level,
           "time_s": round(time.perf_counter() - t0, 1),
           "timings_s": {k: round(v, 1) for k, v in res.timings.items()},
           "landmarks": bool(X.shape[0] > extension.LANDMARKS),
           "loops": scored_loops(res, truth, angle)}
    row["peak_gib"] = round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20, 2)
    return row


def longest_silence(stderr: str) -> float:
    """The longest gap (s) between consecutive log lines (each starts with ms since the start)."""
    times = [int(line.split(" ", 1)[0]) for line in stderr.splitlines() if line.split(" ", 1)[0].isdigit()]
    return round(max((b - a for a, b in zip(times, times[1:])), default=0) / 1000, 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 50_000, 100_000, 1_000_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--out", default=None)
    ap.add_argument("--make", nargs=3, help=argparse.SUPPRESS)  # child side: n d path
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # child side: path
    args = ap.parse_args(argv)
    if args.make:
        make(int(args.make[0]), int(args.make[1]), args.make[2])
        return
    if args.case:
        print(json.dumps(case(args.case), default=str))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.dims:
            for n in args.sizes:
                path = os.path.join(tmp, f"{n}_{d}.npz")
                subprocess.run([sys.executable, __file__, "--make", str(n), str(d), path], check=True)
                done = subprocess.run([sys.executable, __file__, "--case", path], capture_output=True, text=True)
                if done.returncode:
                    sys.stderr.write(done.stderr[-3000:])
                    raise SystemExit(f"case n={n} d={d} failed")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row["longest_silence_s"] = longest_silence(done.stderr)
                out = json.dumps(row)
                print(out, flush=True)
                if args.out:
                    with open(args.out, "a") as fh:
                        fh.write(out + "\n")
                os.remove(path)


if __name__ == "__main__":
    main()
