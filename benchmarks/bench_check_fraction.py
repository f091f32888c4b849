"""The prevalence check's subsamples on small inputs: 70 % against 90 % of the points.

    python benchmarks/bench_check_fraction.py            # about 25 minutes on 2 cores -> results/check_fraction/rows.jsonl
    python benchmarks/bench_check_fraction.py --table    # the table of BENCHMARKS.md, "The prevalence check on small inputs"

Each case is ``topoembed.analysis.run`` with the defaults, once with
``topoembed.prevalence.CHECK_FRACTION_SMALL`` (the share of 101-399 points in each of the
check's subsamples) set to 0.7, the share used at every size before, and once with 0.9. At most
100 points the share is ``CHECK_FRACTION`` (0.7, left as it is); the rows of 30-100 points set
that instead, to show why it stays.

Cases: random IPC cells (``obsm["X_scVI"]``, draws ``default_rng(seed)``; seeds 0-9 at 150-350
cells, where the share was chosen, and fresh seeds 10-19 at 200 and 300), scored by R² of
``CellCycle`` on (cos θ, sin θ); no-loop sets (a blob and a sphere in R^20, σ = 0.05, uniform
points in [0,1]^10 or a Gaussian in R^10; random non-cycling IPC cells; random cells of
pbmc68k_reduced); noisy circles (σ = 0.1) and the COIL-20 objects (72 images, 20 PCs of all
1,440, scored against the best of h·angle, h = 1-4) at 30-100 points; McDavid's three sorted
cell lines (η² of the sorted stage).
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_panel import coil_objects, eta2, ipc_cells, mcdavid_lines, no_loop_sets, r2, symmetric_alignment  # noqa: E402
from bench_small_inputs import quiet_rows, supported, wants_table  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "check_fraction" / "rows.jsonl"
SHARES = (0.7, 0.9)


def _run(X, share, small: bool):
    """The default run with the check's share set to ``share`` (for at most 100 points when ``small``)."""
    import topoembed.prevalence as pv
    from topoembed import analysis

    pv.CHECK_FRACTION_SMALL, pv.CHECK_FRACTION = (0.9, share) if small else (share, 0.7)
    try:
        return analysis.run(X, jobs=1)
    finally:
        pv.CHECK_FRACTION_SMALL, pv.CHECK_FRACTION = 0.9, 0.7


def main(argv=None):
    if wants_table(__doc__, argv):
        return table()
    import scanpy as sc

    from topoembed import datasets

    with quiet_rows(OUT) as fh:
        def case(name, seed, X, score=None):
            for share in SHARES:
                res = _run(X, share, small=len(X) <= 100)
                lp = res.loops[0] if res.loops else {}
                ph = np.asarray(lp["phase"], float) if "phase" in lp else None
                row = {"case": name, "seed": seed, "n": len(X), "share": share, "level": res.verdict.level,
                       "p": lp.get("p_value"), "prevalence": lp.get("prevalence"),
                       "score": None if ph is None or score is None or res.verdict.level != "loop" else score(ph)}
                fh.write(json.dumps(row) + "\n")
                fh.flush()

        X, cc, cycling = ipc_cells()
        non = np.flatnonzero(~cycling)
        for n, seeds in [(150, range(10)), (200, range(20)), (250, range(10)), (300, range(20)), (350, range(10))]:
            for seed in seeds:
                idx = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
                case(f"IPC {n} cells" + (" (fresh seeds)" if seed >= 10 else ""), seed, X[idx],
                     lambda th, y=cc[idx]: r2(th, y))
        for line, Xl, stage in mcdavid_lines():
            case(f"McDavid {line}", 0, Xl, lambda th, s=stage: eta2(th, s))
        pb = np.asarray(sc.datasets.pbmc68k_reduced().obsm["X_pca"], float)
        for n, seeds in [(150, range(10)), (200, range(10, 20)), (300, range(10)), (350, range(10, 20))]:
            for seed in seeds:
                sets = {**no_loop_sets(n, seed, gaussian=seed >= 10),
                        "pbmc68k_reduced cells": pb[np.sort(np.random.default_rng(seed).choice(len(pb), n, replace=False))]}
                if seed >= 10:
                    sets["non-cycling IPC cells"] = X[np.sort(np.random.default_rng(seed).choice(non, n, replace=False))]
                for name, Xc in sets.items():
                    case(f"no loop: {name}, {n}", seed, Xc)
        for n in (30, 50, 72, 100):
            for seed in range(10):
                for name, Xc in no_loop_sets(n, seed).items():
                    case(f"no loop: {name}, {n}", seed, Xc)
            for seed in range(5):
                ds = datasets.make("circle", n=n, d=50, sigma=0.1, seed=seed)
                case(f"circle {n}", seed, ds.X)
        for obj, Xo, t in coil_objects():
            case("COIL-20 objects (72 images)", int(obj), Xo, lambda th, t=t: symmetric_alignment(th, t))
    return table()


def table() -> int:
    rows = [json.loads(line) for line in open(OUT)]
    agg = collections.defaultdict(list)
    for r in rows:
        agg[(r["case"], r["share"])].append(r)
    print("| case | n | " + " | ".join(f"supported, share {s:g}" for s in SHARES) + " |")
    print("|---|---|" + "---|" * len(SHARES))
    for case in dict.fromkeys(r["case"] for r in rows):
        cells = [supported(agg[(case, share)]) for share in SHARES]
        print(f"| {case} | {agg[(case, SHARES[0])][0]['n']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
