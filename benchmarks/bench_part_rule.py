"""Every loop a part found, with its evidence, on inputs with and without a loop: the sweep behind
BENCHMARKS.md, "A part's new loop by p < 0.05 and its recurrence: tried, not adopted" (issue 29).

    python benchmarks/bench_part_rule.py nulls    # 39 inputs without a loop, about 6 minutes on 2 cores
    python benchmarks/bench_part_rule.py loops    # IPC mixtures (200 cycling: 16 draws, 400: 8), IPC 2,000 cells
                                                  # (10 seeds), tori of 1,500 points: about 12 minutes
    python benchmarks/bench_part_rule.py --table  # both files, with the rule's count beside the verdict's

One row per input (``results/part_rule/{nulls,loops}.jsonl``): the verdict, and per loop whether a part found
it (a new loop) or supported it (``part_evidence``), its corrected p-value, its prevalence and its level.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

import bench_panel as bp
from topoembed import analysis, datasets

OUT = Path(__file__).resolve().parent / "results" / "part_rule"


def record(fh, name, res, **extra):
    """One JSON row: the verdict and, per loop, where it was found and its evidence."""
    loops = [{"part": lp.get("part") is not None, "evidence_part": "part_evidence" in lp,
              "p": lp.get("p_value"), "p_in_part": lp.get("p_value_in_part"), "prevalence": lp.get("prevalence"),
              "groups": lp.get("groups_on_cycle"), "level": c.level}
             for lp, c in zip(res.loops, res.verdict.loops)]
    row = {"case": name, **extra, "verdict": res.verdict.headline(), "loops": loops}
    fh.write(json.dumps(row, default=float) + "\n")
    fh.flush()


def cases(which):
    """(name, points, settings other than the defaults) of the inputs without a loop ("nulls";
    those of ``bench_panel.py --part part_nulls`` and the larger noise sets) or with one ("loops")."""
    if which == "nulls":
        X, _, cyc = bp.ipc_cells()
        yield "IPC non-cycling all", X[~cyc], {}
        for seed in range(3):
            idx = np.random.default_rng(seed).choice(np.flatnonzero(~cyc), 2000, replace=False)
            yield f"IPC non-cycling 2000 s{seed}", X[np.sort(idx)], {}
        for seed in range(5):
            yield f"15 planar s{seed}", bp.planar_blobs(seed), {}
            yield f"15 full s{seed}", bp.planar_blobs(seed, planar=False), {}
            yield f"30 planar 100-300 s{seed}", bp.planar_blobs(seed, 30, 20, (100, 300)), {}
            yield f"30 planar 40-80 s{seed}", bp.planar_blobs(seed, 30, 20, (40, 80)), {}
        for seed in range(2):
            yield (f"6 clusters 20000 s{seed}",
                   datasets.make("circle_in_clusters", n=20000, d=50, sigma=0.05, seed=seed, fraction=0.0).X, {})
            yield f"blob 5000 R50 s{seed}", datasets.make("blob", n=5000, d=50, sigma=0.2, seed=seed).X, {}
            yield f"uniform 3000 s{seed}", np.random.default_rng(seed).uniform(size=(3000, 10)), {}
            yield f"sphere 3000 s{seed}", datasets.make("sphere", n=3000, d=50, sigma=0.05, seed=seed).X, {}
        from sklearn.datasets import load_digits
        D = load_digits().data.astype(float)
        D = (D - D.mean(0)) / np.where(D.std(0) > 0, D.std(0), 1)
        yield "digits", D, {}
        for seed in range(6):
            yield (f"blob 1200 in R^10, k = 30, subsamples of 300, s{seed}",
                   datasets.make("blob", n=1200, d=10, sigma=0.0, seed=seed).X,
                   {"seed": seed, "n_subsamples": 10, "subsample_size": 300, "k": 30})
    if which == "loops":
        for k, draw, X, y, on in bp.ipc_mixtures((200,), 16):
            yield f"mix200 d{draw}", X, {}
        for k, draw, X, y, on in bp.ipc_mixtures((400,), 8):
            yield f"mix400 d{draw}", X, {}
        for size, seed, X, cc in bp.ipc_draws((2000,), 10):
            yield f"IPC 2000 s{seed}", X, {}
        for seed in range(3):
            for s in (0.05, 0.15):
                yield f"torus 1500 sig{s} s{seed}", datasets.make("torus", n=1500, d=50, sigma=s, seed=seed).X, {}


def combined(lp: dict) -> bool:
    """The rule tried: a part's new loop supported by corrected p < 0.01, or by p < 0.05 with a
    recurrence of at least 90 % in subsamples of the points analysed."""
    p, prev = lp["p"], lp["prevalence"]
    return p is not None and (p < 0.01 or (p < 0.05 and prev is not None and prev >= 0.9))


def table() -> str:
    lines = ["| input | verdict | loops a part found: corrected p (prevalence) | supported by the rule tried |",
             "| --- | --- | --- | --- |"]
    for which in ("nulls", "loops"):
        path = OUT / f"{which}.jsonl"
        for r in map(json.loads, path.read_text().splitlines() if path.exists() else []):
            new = [lp for lp in r["loops"] if lp["part"]]
            found = ", ".join(f"{lp['p']:.2g} ({lp['prevalence']})" for lp in new) or "–"
            rule = sum(combined(lp) and lp["groups"] in (None, 0, 1) for lp in new)
            lines.append(f"| {r['case']} | {r['verdict']} | {found} | {rule} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        sys.stdout.write(table())
        sys.exit()
    which = sys.argv[1]
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{which}.jsonl", "w") as fh:
        for name, X, kw in cases(which):
            t0 = time.time()
            res = analysis.run(X, jobs=2, **kw)
            record(fh, name, res, seconds=round(time.time() - t0, 1))
