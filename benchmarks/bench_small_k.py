"""The graph of inputs of at most 100 points: union k = 10 (the default since issue 28) against 7 and 5.

    python benchmarks/bench_small_k.py            # about 15 minutes on 2 cores -> results/small_k/rows.jsonl
    python benchmarks/bench_small_k.py --table    # the table of BENCHMARKS.md, "The graph of 100 points or fewer"

Each case is ``topoembed.analysis.run`` with the defaults, ``topoembed.params.SMALL_INPUT_K`` set
to each k in :data:`KS` (the prevalence check's subsamples then take max(3, k // 2), as they do).

Cases the rule was chosen on ("tuning"): the COIL-20 objects (72 images, as pixels and as 20 PCs
of all 1,440; scored against the best of h·angle, h = 1-4); noisy circles in R^50 (σ = 0.1,
seeds 0-4) and the no-loop sets of ``bench_panel.no_loop_sets`` (blob, sphere, uniform; seeds
0-9) at 30, 50, 72 and 100 points. Cases it was checked on afterwards ("held out"): circles with
σ = 0.2; the no-loop sets with seeds 10-19 (a Gaussian in R^10 instead of the uniform box);
random pbmc68k_reduced cells and random non-cycling IPC cells (50, 72, 100; seeds 0-9); the open
arcs of each COIL-20 object's turn of ``results/panel/coil_arcs.jsonl`` (real inputs without a
loop); random IPC cells (72 and 100, seeds 0-9; R² of CellCycle).
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_panel import (OUT as PANEL, alignment, coil_arc, coil_images, coil_objects, ipc_cells, no_loop_sets, r2,  # noqa: E402
                         symmetric_alignment)
from bench_small_inputs import quiet_rows, supported, wants_table  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "small_k" / "rows.jsonl"
KS = (10, 7, 5)


def _run(X, k):
    import topoembed.params as tp
    from topoembed import analysis

    saved, tp.SMALL_INPUT_K = tp.SMALL_INPUT_K, k
    try:
        return analysis.run(X, jobs=1)
    finally:
        tp.SMALL_INPUT_K = saved


def cases():
    """(group, case, seed, X, score or None) for every case of the module docstring."""
    import scanpy as sc

    from topoembed import datasets

    for name, images in (("pixels", coil_images(pixels=True)), ("20 PCs", coil_images())):
        for obj, Xo, t in coil_objects(images):
            yield "tuning", f"COIL-20 objects, {name}", int(obj), Xo, lambda th, t=t: symmetric_alignment(th, t)
    for n in (30, 50, 72, 100):
        for seed in range(5):
            ds = datasets.make("circle", n=n, d=50, sigma=0.1, seed=seed)
            yield "tuning", f"circle σ = 0.1, {n}", seed, ds.X, lambda th, a=ds.angle: alignment(th, a)
        for seed in range(10):
            for name, Xc in no_loop_sets(n, seed).items():
                yield "tuning", f"no loop: {name}, {n}", seed, Xc, None
    for n in (30, 50, 72, 100):
        for seed in range(5):
            ds = datasets.make("circle", n=n, d=50, sigma=0.2, seed=seed)
            yield "held out", f"circle σ = 0.2, {n}", seed, ds.X, lambda th, a=ds.angle: alignment(th, a)
        for seed in range(10, 20):
            for name, Xc in no_loop_sets(n, seed, gaussian=True).items():
                yield "held out", f"no loop: {name}, {n}", seed, Xc, None
    pb = np.asarray(sc.datasets.pbmc68k_reduced().obsm["X_pca"], float)
    X, cc, cycling = ipc_cells()
    non = np.flatnonzero(~cycling)
    for n in (50, 72, 100):
        for seed in range(10):
            rng = np.random.default_rng(seed)
            yield "held out", f"no loop: pbmc68k_reduced cells, {n}", seed, pb[np.sort(rng.choice(len(pb), n, replace=False))], None
            yield "held out", f"no loop: non-cycling IPC cells, {n}", seed, X[np.sort(rng.choice(non, n, replace=False))], None
    for n in (72, 100):
        for seed in range(10):
            idx = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
            yield "held out", f"IPC cells, {n}", seed, X[idx], lambda th, y=cc[idx]: r2(th, y)
    arcs = [json.loads(line) for line in open(PANEL / "coil_arcs.jsonl")]
    images = {"pixels": coil_images(pixels=True), "20 PCs": coil_images()}
    for a in arcs:
        Xa, obj, angle = images[a["input"]]
        arc = coil_arc(obj, angle, a["object"], a["h"], a["share"])
        yield "held out", f"no loop: COIL-20 open arcs, {a['input']}", a["object"], Xa[arc], None


def main(argv=None):
    if wants_table(__doc__, argv):
        return table()
    with quiet_rows(OUT) as fh:
        for group, name, seed, X, score in cases():
            for k in KS:
                res = _run(X, k)
                lp = res.loops[0] if res.loops else {}
                ph = np.asarray(lp["phase"], float) if "phase" in lp else None
                row = {"group": group, "case": name, "seed": seed, "n": len(X), "k": k, "level": res.verdict.level,
                       "p": lp.get("p_value"), "prevalence": lp.get("prevalence"),
                       "score": None if ph is None or score is None or res.verdict.level != "loop" else score(ph)}
                fh.write(json.dumps(row) + "\n")
                fh.flush()
    return table()


def table() -> int:
    rows = [json.loads(line) for line in open(OUT)]
    agg = collections.defaultdict(list)
    for r in rows:
        agg[(r["group"], r["case"], r["k"])].append(r)
    print("| cases | group | " + " | ".join(f"supported, k = {k}" for k in KS) + " |")
    print("|---|---|" + "---|" * len(KS))
    for group, case in dict.fromkeys((r["group"], r["case"]) for r in rows):
        print(f"| {case} | {group} | " + " | ".join(supported(agg[(group, case, k)]) for k in KS) + " |")
    nulls = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        if r["case"].startswith("no loop"):
            nulls[(r["group"], r["k"])][0] += r["level"] == "loop"
            nulls[(r["group"], r["k"])][1] += 1
    for (group, k), (bad, total) in sorted(nulls.items()):
        print(f"\nno-loop inputs, {group}, k = {k}: {bad} of {total} with a supported loop", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
