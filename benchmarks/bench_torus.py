"""A torus's two loops: the tube loop's phase, and one run on all points against the ensemble.

    python benchmarks/bench_torus.py --part phase      # about 1 minute -> results/torus/phase.jsonl
    python benchmarks/bench_torus.py --part whole      # about 25 minutes on 2 cores -> results/torus/whole.jsonl
    python benchmarks/bench_torus.py --part surface    # about 10 minutes -> results/torus/surface.jsonl
    python benchmarks/bench_torus.py --table           # the tables of BENCHMARKS.md, "A torus's tube loop"

``phase``: single runs (``pipeline.run``) on tori in R^50 (``datasets.make("torus")``: ring radius
2, tube radius 1), |ρ| (Fisher-Lee) of each loop's θ with the ring angle and the tube angle, with
the cycle method for every loop (the default before) and with the harmonic coordinate for a
closed surface's loops (``localize.phase_method_for``, the default now).

``whole``: 1,200-2,000 points analysed by the default (above 1,000 points an ensemble of 10
subsamples of 700) and by one run on all of them (``n_subsamples=1``, with the prevalence check
that single runs of at most 1,000 points get, by raising ``ENSEMBLE_MIN_N`` to 2,000): tori
(σ = 0.05, 0.1, 0.15; seeds 0-2) and random IPC cells (``obsm["X_scVI"]``, draws
``default_rng(seed)``, seeds 0-9; R² of CellCycle on (cos θ, sin θ)). Its "ensemble" rows
were made before the ensemble called one run on all points for a closed surface.

``surface``: the default now, where an ensemble of at most 2,000 points in which a subsample
looked for a closed surface is followed by one run on all points
(``ensemble.SURFACE_ALL_POINTS_MAX_N``): tori, IPC cells (seeds 0-3) and no-loop sets.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_panel import ipc_draws, r2  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "torus"


def torus_angles(ds):
    """(ring angle, tube angle) of each point of a ``datasets.make("torus")`` sample."""
    from topoembed.datasets import torus_tube_angle

    return ds.angle, torus_tube_angle(ds.intrinsic)


def part_phase(fh):
    from topoembed import datasets, localize, pipeline
    from topoembed.localize import circular_correlation

    chosen = localize.phase_method_for
    for n, sigma, seed in [(700, 0.05, 0), (800, 0.05, 0), (800, 0.05, 1), (1000, 0.1, 0), (1000, 0.1, 1),
                           (1000, 0.05, 2), (1500, 0.05, 0)]:
        ds = datasets.make("torus", n=n, d=50, sigma=sigma, seed=seed)
        angles = torus_angles(ds)
        for rule, fn in (("cycle for every loop", lambda m, d: m), ("harmonic for a surface's loops", chosen)):
            localize.phase_method_for = fn
            try:
                res = pipeline.run(ds.X)
            finally:
                localize.phase_method_for = chosen
            corr = [[abs(float(circular_correlation(lp["phase"], a))) for a in angles] for lp in res.loops]
            fh.write(json.dumps({"n": n, "sigma": sigma, "seed": seed, "rule": rule, "n_loops": len(res.loops),
                                 "ring": max((c[0] for c in corr), default=None),
                                 "tube": max((c[1] for c in corr), default=None) if len(corr) > 1 else None}) + "\n")
            fh.flush()


def part_whole(fh):
    import topoembed.params as tp
    import topoembed.pipeline as tpl
    from topoembed import analysis, datasets

    def run(X, mode):
        saved = tp.ENSEMBLE_MIN_N, tpl.ENSEMBLE_MIN_N
        if mode == "one run":
            tp.ENSEMBLE_MIN_N = tpl.ENSEMBLE_MIN_N = 2000
        try:
            t0 = time.perf_counter()
            res = analysis.run(X, jobs=1)
            return res, time.perf_counter() - t0
        finally:
            tp.ENSEMBLE_MIN_N, tpl.ENSEMBLE_MIN_N = saved

    for n in (1200, 1500):
        for sigma in (0.05, 0.1, 0.15):
            for seed in range(3):
                X = datasets.make("torus", n=n, d=50, sigma=sigma, seed=seed).X
                for mode in ("ensemble", "one run"):
                    res, sec = run(X, mode)
                    fh.write(json.dumps({"case": f"torus {n}", "sigma": sigma, "seed": seed, "mode": mode,
                                         "verdict": res.verdict.headline(), "seconds": round(sec, 1)}) + "\n")
                    fh.flush()
    for n, seed, Xi, cc in ipc_draws((1200, 1500, 2000), 10):
        for mode in ("ensemble", "one run"):
            res, sec = run(Xi, mode)
            ph = np.asarray(res.loops[0]["phase"], float) if res.loops and "phase" in res.loops[0] else None
            fh.write(json.dumps({"case": f"IPC {n} cells", "seed": seed, "mode": mode, "level": res.verdict.level,
                                 "verdict": res.verdict.headline(),
                                 "r2": None if ph is None or res.verdict.level != "loop" else r2(ph, cc),
                                 "seconds": round(sec, 1)}) + "\n")
            fh.flush()


def part_surface(fh):
    """The default now (an ensemble followed by one run on all points where a subsample looked
    for a closed surface, ``ensemble.SURFACE_ALL_POINTS_MAX_N``): tori, IPC cells and no-loop sets."""
    from topoembed import analysis, datasets
    from topoembed.localize import circular_correlation

    def row(case, X, **extra):
        t0 = time.perf_counter()
        res = analysis.run(X, jobs=1)
        return res, {"case": case, "verdict": res.verdict.headline(), "seconds": round(time.perf_counter() - t0, 1),
                     "on_all_points": res.detection.get("surface_on_all_points"), **extra}

    for n, seeds in ((1200, range(3)), (1500, range(3)), (2000, range(1))):
        for sigma in (0.05, 0.1, 0.15):
            for seed in seeds:
                ds = datasets.make("torus", n=n, d=50, sigma=sigma, seed=seed)
                res, r = row(f"torus {n}", ds.X, sigma=sigma, seed=seed)
                r["corr"] = [[round(abs(float(circular_correlation(lp["phase"], a))), 2) for a in torus_angles(ds)]
                             for lp in res.loops if "phase" in lp]
                fh.write(json.dumps(r) + "\n")
                fh.flush()
    for n, seed, Xi, cc in ipc_draws((1200, 1500, 2000), 4):
        res, r = row(f"IPC {n} cells", Xi, seed=seed)
        ph = np.asarray(res.loops[0]["phase"], float) if res.loops and "phase" in res.loops[0] else None
        r["r2"] = None if ph is None else r2(ph, cc)
        fh.write(json.dumps(r) + "\n")
        fh.flush()
    for name, sigma in (("sphere", 0.1), ("blob", 0.2), ("circle", 0.2)):
        for n in (1500, 2000):
            fh.write(json.dumps(row(f"{name} {n}", datasets.make(name, n=n, d=50, sigma=sigma, seed=0).X)[1]) + "\n")
            fh.flush()


def table() -> int:
    rows = [json.loads(line) for line in open(OUT / "phase.jsonl")]
    print("| torus (n, σ, seed) | rule | loops | ring \\|ρ\\| | tube \\|ρ\\| |")
    print("|---|---|---|---|---|")
    for r in rows:
        tube = "–" if r["tube"] is None else f"{r['tube']:.2f}"
        print(f"| {r['n']}, {r['sigma']}, {r['seed']} | {r['rule']} | {r['n_loops']} | {r['ring']:.2f} | {tube} |")
    path = OUT / "surface.jsonl"
    if path.exists():
        print()
        print("| case | σ, seed | verdict | loops' \\|ρ\\| with (ring, tube) | on all points (subsamples looked / found a surface / made) | seconds |")
        print("|---|---|---|---|---|---|")
        for r in map(json.loads, open(path)):
            on = r["on_all_points"]
            where = "–" if on is None else f"{on['subsamples_looked']} / {on['subsamples_with_surface']} / {on['n_subsamples']}"
            extra = f"R² {r['r2']}" if r.get("r2") is not None else str(r.get("corr", ""))
            print(f"| {r['case']} | {r.get('sigma', '')}, {r.get('seed', '')} | {r['verdict']} | {extra} | {where} | {r['seconds']} |")
    path = OUT / "whole.jsonl"
    if not path.exists():
        return 0
    rows = [json.loads(line) for line in open(path)]
    agg = collections.defaultdict(list)
    for r in rows:
        agg[(r["case"], r["mode"])].append(r)
    print()
    print("| case | ensemble (default) | one run on all points | seconds, ensemble / one run |")
    print("|---|---|---|---|")
    for case in dict.fromkeys(r["case"] for r in rows):
        cells = []
        for mode in ("ensemble", "one run"):
            got = agg[(case, mode)]
            if case.startswith("torus"):
                cells.append(f"2 loops in {sum(r['verdict'] == '2 loops' for r in got)} of {len(got)}")
            else:
                found = [r for r in got if r["level"] == "loop"]
                sc = [r["r2"] for r in found if r["r2"] is not None]
                cells.append(f"{len(found)} of {len(got)}" + (f" (R² {min(sc):.2f}-{max(sc):.2f})" if sc else ""))
        secs = [f"{np.median([r['seconds'] for r in agg[(case, m)]]):.0f}-{max(r['seconds'] for r in agg[(case, m)]):.0f}"
                for m in ("ensemble", "one run")]
        print(f"| {case} | " + " | ".join(cells) + f" | median-max {secs[0]} / {secs[1]} |")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["phase", "whole", "surface"], default="phase")
    ap.add_argument("--table", action="store_true", help="print the tables from the stored rows")
    args = ap.parse_args(argv)
    if args.table:
        return table()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{args.part}.jsonl", "w") as fh:
        {"phase": part_phase, "whole": part_whole, "surface": part_surface}[args.part](fh)
    return table()


if __name__ == "__main__":
    sys.exit(main())
