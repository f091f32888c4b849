"""Variants of the ``auto`` selection rule, evaluated on stored benchmark task files.

Every task file of ``topoembed benchmark`` keeps the persistence summaries of all its
settings, so a selection rule that only chooses among those settings can be re-scored
without recomputing any homology. This script does that for the package's rule
(:func:`topoembed.auto.choose` on :data:`topoembed.auto.DEFAULT_GRID`) and for the alternatives we considered, and prints one
Markdown table (AUC per dataset as in BENCHMARKS.md; for the blob and the sphere in H1
the fraction of runs with no loop reported; and how often the loop count is right where
the best fixed method scores > 0.5).

Two *ceilings* are printed with them. They are not rules: they are told the true number
of loops and take, in each run, the grid setting with the highest s_m. No rule that
chooses among the same settings can score more, so a target above the ceiling needs
other settings, and a target below it is a question of choosing m.

Usage (seconds; no homology is recomputed)::

    python benchmarks/auto_variants.py                                     # the 3-seed grid
    python benchmarks/auto_variants.py benchmarks/results/heldout/tasks    # other task files
    python benchmarks/auto_variants.py --landmarks 300                     # the surface on 300 landmarks
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

import noise_benchmark as benchmark
from topoembed import auto, loops

HERE = Path(__file__).resolve().parent
DEFAULT_TASKS = HERE / "results" / "three_seeds" / "tasks"
LOOP_DATASETS = ("circle", "linked_circles", "eyeglasses", "torus")
NO_LOOP = ("blob", "sphere_h1")
GRID = [auto.config_key(c) for c in auto.DEFAULT_GRID]
LE, EUCLID = "le_k15_p2", "euclidean"


def s_at(summary: dict, m: int) -> float:
    """s_m (m ≥ 1) of a stored H1 summary, as the benchmark scores it (package filter)."""
    return benchmark._score(summary, 1, m)


def clear_counts(summary: dict) -> dict:
    """{m: s_m} for every m the loop-count rule's two thresholds would accept on their own
    (s_m ≥ 0.5 and p_m ≥ 0.05 of the distance scale), not only the largest drop."""
    life = summary["life1"]
    scale = summary.get("scale", summary["thresh"])
    scores = loops.detection_scores(auto.lifetimes_diagram(life))
    return {m: s for m, s in scores.items()
            if s >= loops.MIN_SCORE and len(life) >= m and life[m - 1] >= loops.MIN_PERSISTENCE * scale}


def _kind(key: str) -> str:
    return key.split("_")[0]


def choose_clear_counts(cands: dict, prefer: str = "larger") -> dict:
    """Every candidate supports every clear count (:func:`clear_counts`); a count needs two
    distance kinds; among accepted counts take the largest support, then the larger m
    (``prefer="larger"``: a distance that misses a loop is commoner than two distances
    agreeing on one that is not there) or the higher mean score (``"score"``)."""
    support, scores, clear = defaultdict(set), defaultdict(list), {}
    for key, c in cands.items():
        clear[key] = clear_counts(c)
        for m, s in clear[key].items():
            support[m].add(_kind(key))
            scores[m].append(s)
    accepted = [m for m in support if len(support[m]) >= auto.MIN_SUPPORT]
    if not accepted:
        return auto.choose(cands)
    tie = (lambda m: m) if prefer == "larger" else (lambda m: float(np.mean(scores[m])))
    m = max(accepted, key=lambda m: (len(support[m]), tie(m)))
    key = max((k for k in cands if m in clear[k]), key=lambda k: clear[k][m])
    return {"n_loops": m, "key": key}


def choose_mean_score_ties(cands: dict) -> dict:
    """The rule before issue 14: when two counts have the same support, the one whose
    proposing settings have the larger mean score wins (the package now takes the count
    proposed at the smallest k: large-k graphs short-cut bottlenecks)."""
    out = auto.choose(cands)
    rows = out["candidates"]
    fams, scores = defaultdict(set), defaultdict(list)
    for r in rows:
        if r["n_loops"]:
            fams[r["n_loops"]].add(r["distance"])
            scores[r["n_loops"]].append(r["score"])
    top = max((len(f) for f in fams.values()), default=0)
    tied = [m for m, f in fams.items() if len(f) == top and top >= auto.MIN_SUPPORT]
    if len(tied) > 1:
        m = max(tied, key=lambda m: (float(np.mean(scores[m])), -m))
        best = max((r for r in rows if r["n_loops"] == m), key=lambda r: r["score"])
        return {"n_loops": m, "key": best["key"]}
    return out


VARIANTS = {
    "auto without the surface (support ties: smallest k)": (GRID, auto.choose),
    "families = (kind, k, graph)": (GRID, lambda c: auto.choose(c, family="graph")),
    "+ 2-D eigenmap as a third kind": (GRID + [LE], auto.choose),
    "+ Euclidean as a third kind": (GRID + [EUCLID], auto.choose),
    "+ eigenmap and Euclidean": (GRID + [LE, EUCLID], auto.choose),
    "support ties: larger mean score (the rule before issue 14)": (GRID, choose_mean_score_ties),
    "every clear count votes, larger m": (GRID, choose_clear_counts),
    "every clear count votes, larger m, + Euclidean": (GRID + [EUCLID], choose_clear_counts),
    "every clear count votes, higher score": (GRID, lambda c: choose_clear_counts(c, "score")),
}


SURFACES = HERE / "results" / "evidence"


def _surfaces(n_landmarks: int = 200) -> dict:
    """{(dataset, σ, seed): H1/H2 diagrams of the ``n_landmarks`` landmarks of the default
    distance}, from ``bench_evidence.py collect --part surface [--landmarks N]`` (every second
    σ of the benchmark)."""
    out = {}
    prefix = "surface" if n_landmarks == 200 else f"surface{n_landmarks}"
    for name in (f"{prefix}_grid", f"{prefix}_heldout", f"{prefix}_heldout56"):
        path = SURFACES / f"{name}.jsonl"
        if path.exists():
            for row in map(json.loads, open(path)):
                out[(row["dataset"], round(row["sigma"], 6), row["seed"])] = row["spectral"]
    return out


def choose_with_surface(cands: dict, task: dict, surfaces: dict) -> dict:
    """The package rule as ``auto.select`` applies it (:func:`topoembed.auto.choose_with_surface`),
    with the closed surface of the default distance's landmarks read from the stored diagrams.
    Tasks without them (odd σ of circle, linked circles, eyeglasses) get the plain rule."""
    s = surfaces.get((task["dataset"], round(task["sigma"], 6), task["seed"]))
    reading = None if s is None else loops.surface_reading(
        [None, np.array(s["dgm1"]).reshape(-1, 2), np.array(s["dgm2"]).reshape(-1, 2)], scale=s["scale"])
    return auto.choose_with_surface(cands, reading)


def load_files(files) -> list[dict]:
    """Task dicts whose rows are re-derived with the current rules (the stored rows are
    those of the run that wrote the file)."""
    tasks = []
    for f in files:
        task = json.loads(Path(f).read_text())
        task["rows"] = benchmark.load_rows([f])
        tasks.append(task)
    return tasks


def load_tasks(folders) -> list[dict]:
    files = []
    for folder in folders:
        found = sorted(Path(folder).glob("*.json"))
        if not found:
            sys.exit(f"no task files (*.json) in {folder}; run `topoembed benchmark` first")
        files += found
    return load_files(files)


def _dataset(task: dict) -> str:
    """Row label: ``auto`` works in H1, so every sphere task is its H1 false-loop check."""
    return "sphere_h1" if task["dataset"] == "sphere" else task["dataset"]


def _auc(per_run: dict) -> float:
    """Mean over σ of the seed-mean value; per_run: {(σ, seed): value}."""
    by_sigma = defaultdict(list)
    for (sigma, _), v in per_run.items():
        by_sigma[sigma].append(v)
    return float(np.mean([np.mean(v) for v in by_sigma.values()]))


def best_fixed(tasks: list[dict]) -> dict:
    """{dataset: (method, AUC)} of the best fixed method, with the benchmark's own rows."""
    return benchmark.best_fixed_methods(benchmark.auc_table([r for t in tasks for r in t["rows"]]))


def evaluate(tasks: list[dict], keys: list[str], choose, best: dict) -> dict:
    """{dataset: (AUC or no-loop fraction, m accuracy where the best fixed method > 0.5)}."""
    score, detectable = defaultdict(dict), defaultdict(list)
    for t in tasks:
        ds = _dataset(t)
        cands = t["candidates"]
        if not all(k in cands for k in keys):
            continue
        m_true = benchmark.LOOPS_H1[t["dataset"]]
        sub = {k: cands[k] for k in keys}
        pick = choose(sub, t) if getattr(choose, "wants_task", False) else choose(sub)
        run = (round(t["sigma"], 6), t["seed"])
        if m_true:
            score[ds][run] = s_at(cands[pick["key"]], m_true)
            fixed = next((r for r in t["rows"] if r["method"] == best[ds][0]), None)
            if fixed is not None and fixed["score"] > 0.5:
                detectable[ds].append(pick["n_loops"] == m_true)
        else:
            score[ds][run] = float(pick["n_loops"] == 0)
    return {ds: (_auc(score[ds]), float(np.mean(detectable[ds])) if detectable[ds] else float("nan"))
            for ds in score}


def ceiling(tasks: list[dict], keys: list[str]) -> dict:
    """Told the true m: per run the grid setting with the highest s_m (an upper bound)."""
    score = defaultdict(dict)
    for t in tasks:
        ds = _dataset(t)
        if ds not in LOOP_DATASETS or not all(k in t["candidates"] for k in keys):
            continue
        m_true = benchmark.LOOPS_H1[t["dataset"]]
        score[ds][(round(t["sigma"], 6), t["seed"])] = max(s_at(t["candidates"][k], m_true) for k in keys)
    return {ds: (_auc(v), float("nan")) for ds, v in score.items()}


def table(tasks: list[dict], n_landmarks: int = 200) -> str:
    best = best_fixed(tasks)
    present = [d for d in LOOP_DATASETS + NO_LOOP if d in best]
    head = "| rule | " + " | ".join(present) + " | loop count right where detectable |"
    lines = [head, "|" + "---|" * (len(present) + 2)]
    lines.append("| best fixed method | " + " | ".join(f"{best[d][1]:.3f} ({best[d][0]})" for d in present) + " | |")

    def line(name, res):
        cells = [f"{res[d][0]:.3f}" if d in res else "" for d in present]
        acc = ", ".join(f"{d} {res[d][1]:.0%}" for d in LOOP_DATASETS if d in res and np.isfinite(res[d][1]))
        return f"| {name} | " + " | ".join(cells) + f" | {acc} |"

    for name, (keys, choose) in VARIANTS.items():
        lines.append(line(name, evaluate(tasks, keys, choose, best)))
    surfaces = _surfaces(n_landmarks)

    def with_surface(cands, task):
        return choose_with_surface(cands, task, surfaces)

    with_surface.wants_task = True
    lines.append(line("**auto with the closed surface (package rule since issue 14)**",
                      evaluate(tasks, GRID, with_surface, best)))
    lines.append(line("ceiling, the auto grid (told m)", ceiling(tasks, GRID)))
    lines.append(line("ceiling, + eigenmap and Euclidean (told m)", ceiling(tasks, GRID + [LE, EUCLID])))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="*", default=[DEFAULT_TASKS], help="folders of task .json files")
    ap.add_argument("--landmarks", type=int, default=200,
                    help="landmark count of the stored surface diagrams to read (bench_evidence.py)")
    args = ap.parse_args(argv)
    tasks = load_tasks(args.folders)
    seeds = sorted({t["seed"] for t in tasks})
    print(f"{len(tasks)} tasks, seeds {' '.join(map(str, seeds))}; AUC (blob, sphere_h1: runs with no loop)\n")
    print(table(tasks, args.landmarks))


if __name__ == "__main__":
    main()
