"""Evidence for each loop (issue 14): the universal-null p-value on spectral distances.

    python benchmarks/bench_evidence.py collect [--part null|grid|heldout|heldout56|all]   # diagrams (minutes)
    python benchmarks/bench_evidence.py collect --part surface [--landmarks 300] [--sets ...]  # landmarks' H1/H2
    python benchmarks/bench_evidence.py collect --part surface --landmarks 500 --after 300     # only where 300 show no void
    python benchmarks/bench_evidence.py evaluate [--landmarks 300,500]                     # the tables (seconds)

``collect`` runs the package's default single run (mutual kNN graph k = 100, corrected
effective resistance, diffusion confirmation: ``loop_rule="confirmed_gap"``, the rule before
issue 14; no phase) and stores every H1 diagram as a
JSON line in ``benchmarks/results/evidence/`` so that decision rules can be re-scored
without recomputing homology:

* ``null``: pure noise with no loop: Gaussian blob in R^50, uniform box [0, 1]^10 in R^50
  (zero-padded), 2-sphere in R^50 (σ = 0.05), n = 300 and 1,000 (the size of every
  subsample of a whole-dataset run), seeds 0-9.
* ``grid`` / ``heldout`` / ``heldout56``: the noise benchmark's datasets and noise levels
  (every second σ), seeds 0-2 / 3-4 / 5-6, the same points as ``topoembed benchmark``; the
  stored task files of the benchmark (``results/three_seeds``, ``results/heldout``,
  ``results/heldout56``) give the best fixed setting's score per run.

``evaluate`` prints, per rule: the share of noise runs with a false loop (null), and on the
benchmark the loop count right where the best fixed method scores > 0.5, and 0 loops on
the blob and the sphere (H1).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "evidence"
TASKS = {"grid": HERE / "results" / "three_seeds" / "tasks", "heldout": HERE / "results" / "heldout" / "tasks",
         "heldout56": HERE / "results" / "heldout56" / "tasks"}
#: the landmark counts of the surface files read by ``evaluate`` (``--landmarks``; files
#: ``surface_<set>.jsonl`` hold 200 landmarks, ``surface<N>_<set>.jsonl`` N), read in turn
#: until one shows a void, as ``loops.surface_evidence`` tries ``loops.SURFACE_LANDMARKS``
LANDMARKS = (200,)
ALPHA = 0.05


def _noise(shape: str, n: int, seed: int) -> np.ndarray:
    from topoembed import datasets

    rng = np.random.default_rng(seed)
    if shape == "blob":
        return datasets.make("blob", n=n, d=50, sigma=0.0, seed=seed).X
    if shape == "box":
        X = np.zeros((n, 50))
        X[:, :10] = rng.uniform(size=(n, 10))
        return X
    if shape == "sphere":
        return datasets.make("sphere", n=n, d=50, sigma=0.05, seed=seed).X
    raise ValueError(shape)


def _row(X, **meta) -> dict:
    from topoembed import pipeline

    t0 = time.perf_counter()
    res = pipeline.run(X, localize=False, k=min(100, X.shape[0] - 1), loop_rule="confirmed_gap")
    det = res.detection
    return {**meta, "dgm1": res.ph["dgms"][1].tolist(), "scale": res.ph["scale"], "n_loops": det["n_loops"],
            "unconfirmed": det.get("unconfirmed", {}).get("n_loops"), "time_s": time.perf_counter() - t0}


def _best_fixed(task: dict) -> float:
    rows = [r for r in task["rows"] if r["method"] not in ("auto", "auto_m")]
    return max(float(r["score"]) for r in rows)


def collect(part: str) -> None:
    import noise_benchmark as benchmark
    from topoembed import datasets

    OUT.mkdir(parents=True, exist_ok=True)
    if part in ("null", "all"):
        with open(OUT / "null.jsonl", "w") as fh:
            for shape in ("blob", "box", "sphere"):
                for n in (300, 1000):
                    for seed in range(10):
                        row = _row(_noise(shape, n, seed), shape=shape, n=n, seed=seed)
                        fh.write(json.dumps(row) + "\n")
                        print(shape, n, seed, row["n_loops"], f"{row['time_s']:.1f}s", file=sys.stderr, flush=True)
    for which in TASKS:
        if part not in (which, "all"):
            continue
        with open(OUT / f"{which}.jsonl", "w") as fh:
            for path in sorted(TASKS[which].glob("*.json")):
                task = json.loads(path.read_text())
                name, sigma, seed = task["dataset"], task["sigma"], task["seed"]
                grid = benchmark.sigma_grid(name)
                if sigma not in grid[::2]:
                    continue
                X = datasets.make(name, n=task["n"], d=task["d"], sigma=sigma, seed=seed).X
                row = _row(X, dataset=name, sigma=sigma, seed=seed, best_fixed=_best_fixed(task),
                           loops_true=benchmark.LOOPS_H1[name])
                fh.write(json.dumps(row) + "\n")
                print(name, sigma, seed, row["n_loops"], f"{row['time_s']:.1f}s", file=sys.stderr, flush=True)


def _surface_file(which: str, n_landmarks: int) -> Path:
    return OUT / (f"surface_{which}.jsonl" if n_landmarks == 200 else f"surface{n_landmarks}_{which}.jsonl")


def _surface_row(X, n_landmarks: int = 200, euclidean: bool = True, **meta) -> dict:
    """H1 and H2 diagrams of ``n_landmarks`` max-min landmarks, on the default spectral
    distance and (``euclidean``) on the Euclidean distance of the points (the evidence of
    ``loops.surface_reading``)."""
    from topoembed import graph, homology, pipeline, spectral

    t0 = time.perf_counter()
    p = pipeline.Params(k=min(pipeline.Params().k, X.shape[0] - 1))
    A = graph.knn_graph(X, k=p.k, symmetrize=p.symmetrize, weights=p.weights, random_state=0)
    out = dict(meta)
    kinds = [("spectral", lambda: spectral.distance_matrix(p.distance, X=X, A=A, t=p.t))]
    if euclidean:
        kinds.append(("euclidean", lambda: spectral.euclidean_distance(X)))
    for kind, D in kinds:
        ph = homology.landmark_persistence(D(), n_landmarks=n_landmarks)
        # the engines compute in float32: 9 significant digits keep every value exactly
        out[kind] = {f"dgm{dim}": [[float(f"{v:.9g}") for v in pair] for pair in ph["dgms"][dim].tolist()]
                     for dim in (1, 2)}
        out[kind]["scale"] = ph["scale"]
    out["time_s"] = time.perf_counter() - t0
    return out


def collect_surface(sets=("null", "grid", "heldout", "heldout56"), n_landmarks: int = 200, after: int | None = None) -> None:
    """The landmarks' diagrams of the runs of ``sets`` (200 landmarks: every run, on both
    distances, as the fifth pass compared them; other counts: the default distance, and only
    the runs whose diagram may hide a loop, the only ones where ``rule_surface`` reads it).
    ``after``: only the runs whose reading on that many landmarks (its files) shows no void,
    the only ones where the default reads more (``loops.SURFACE_LANDMARKS``)."""
    from topoembed import datasets

    euclidean = n_landmarks == 200
    before = {}
    if after is not None:
        for which in sets:
            path = _surface_file(which, after)
            for srow in map(json.loads, open(path)) if path.exists() else []:
                before[(which, _key(srow))] = _shows_void(srow["spectral"])

    def needed(row, which=None):
        if after is not None and before.get((which, _key(row)), False):
            return False
        return euclidean or _may_hide(row)
    if "null" in sets:
        null_rows = {(r["shape"], r["n"], r["seed"]): r for r in _load("null")}
        with open(_surface_file("null", n_landmarks), "w") as fh:
            for shape in ("blob", "box", "sphere"):
                for n in (300, 1000):
                    for seed in range(10):
                        if not needed(null_rows.get((shape, n, seed), {"shape": shape, "n": n, "seed": seed}), "null"):
                            continue
                        fh.write(json.dumps(_surface_row(_noise(shape, n, seed), n_landmarks, euclidean,
                                                         shape=shape, n=n, seed=seed)) + "\n")
                        print("surface", shape, n, seed, file=sys.stderr, flush=True)
    for which in TASKS:
        if which not in sets or not (rows := _load(which)):
            continue
        with open(_surface_file(which, n_landmarks), "w") as fh:
            for row in (r for r in rows if needed(r, which)):
                name, sigma, seed = row["dataset"], row["sigma"], row["seed"]
                X = datasets.make(name, n=1000, d=50, sigma=sigma, seed=seed).X
                fh.write(json.dumps(_surface_row(X, n_landmarks, euclidean, dataset=name, sigma=sigma,
                                                 seed=seed)) + "\n")
                print("surface", which, name, sigma, seed, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ rules
def _dgm(row) -> np.ndarray:
    return np.array(row["dgm1"], dtype=np.float64).reshape(-1, 2)


def rule_gap(row) -> int:
    """The detection score's largest-gap reading alone (``loop_rule="gap"``)."""
    from topoembed import loops

    return loops.decide(_dgm(row), scale=row["scale"], rule="gap")["n_loops"]


def rule_confirmed_gap(row) -> int:
    """The default before issue 14 (``loop_rule="confirmed_gap"``), as collected."""
    return row["n_loops"]


def rule_pvalue_count(row) -> int:
    """As many loops as features with p < alpha (Bonferroni), at most 5; the gap reading
    where the diagram is too small for the null."""
    from topoembed import loops

    dgm = _dgm(row)
    p = loops.feature_pvalues(dgm) * max(1, len(dgm))
    if np.isnan(p).all():
        return rule_gap(row)
    return int(min(loops.MAX_LOOPS, np.sum(p < loops.ALPHA)))


def rule_gap_p(row) -> int:
    """Gap reading, then only the significant loops, without the second distance."""
    from topoembed import loops

    return loops.decide(_dgm(row), scale=row["scale"], rule="significant")["n_loops"]


def rule_significant(row) -> int:
    """``loop_rule="significant"``: the confirmed gap reading, then only the significant
    loops (the collected confirmation stands in for the second distance)."""
    from topoembed import loops

    if row["n_loops"] == 0:
        return 0
    confirmed = {"distance": "diffusion", "n_loops": row["n_loops"], "score": float("nan")}
    return loops.decide(_dgm(row), scale=row["scale"], rule="significant", confirmation=confirmed)["n_loops"]


def rule_evidence(row) -> int:
    """The default (``loop_rule="evidence"``): the confirmed gap reading; where it finds no
    loop, the very significant features (``loops.RESCUE_ALPHA``) are reported."""
    from topoembed import loops

    if row["n_loops"] > 0:
        return row["n_loops"]
    # the collected reading found nothing: replay the rule with a disagreeing confirmation
    g = loops.decide(_dgm(row), scale=row["scale"], rule="gap")["n_loops"]
    confirmation = {"distance": "diffusion", "n_loops": -1, "score": float("nan")} if g else None
    return loops.decide(_dgm(row), scale=row["scale"], rule="evidence", confirmation=confirmation)["n_loops"]


def _may_hide(row) -> bool:
    """Could a rule read the landmarks' surface for this run: may its diagram hide a second
    loop under a count below 2 (``loops.may_hide_loops``)? The default rule and ``auto``
    (``auto.choose_with_surface``, on the same default setting) read it only then."""
    from topoembed import loops

    if not row:
        return True
    life, _ = loops.filtered_lifetimes(_dgm(row))
    return loops.may_hide_loops(life, 0, row["scale"])


def rule_surface(row, kind: str = "spectral") -> int:
    """The default (``loop_rule="evidence"``, ``surface=True``): ``evidence``, and where the
    diagram may hide a second loop (``loops.may_hide_loops``), the closed surface of the 200
    landmarks' H1 and H2 (``loops.surface_reading``, ``loops.surface_count``) on the default
    spectral distance (``kind="euclidean"``: on the points' Euclidean distance instead)."""
    from topoembed import loops

    base = rule_evidence(row)
    life, _ = loops.filtered_lifetimes(_dgm(row))
    if not loops.may_hide_loops(life, base, row["scale"]):
        return base
    reading = None
    for surface in row.get("surfaces", []):  # the landmark counts in turn, until one shows a void
        if surface is not None and surface.get(kind) is not None:
            reading = _reading(surface[kind])
            if reading["void"]:
                break
    return base if reading is None else max(base, loops.surface_count(reading, life, row["scale"]))


def _reading(s: dict) -> dict:
    """``loops.surface_reading`` of one stored landmark diagram."""
    from topoembed import loops

    return loops.surface_reading([None, np.array(s["dgm1"]).reshape(-1, 2), np.array(s["dgm2"]).reshape(-1, 2)],
                                 scale=s["scale"])


def _shows_void(s: dict) -> bool:
    return bool(_reading(s)["void"])


def _key(r: dict) -> tuple:
    return tuple(r.get(f) for f in ("dataset", "shape", "n", "sigma", "seed"))


RULES = {"gap": rule_gap, "confirmed_gap (old default)": rule_confirmed_gap,
         "p-value count": rule_pvalue_count, "gap + p": rule_gap_p, "significant (confirmed_gap + p)": rule_significant,
         "evidence": rule_evidence, "evidence + surface, Euclidean landmarks": lambda r: rule_surface(r, "euclidean"),
         "**evidence + surface (default)**": rule_surface}


def _load(name):
    """Rows of ``name``.jsonl, each with its landmarks' diagrams (``surface_``\ name, or
    ``surface<N>_``\ name, for each N of ``LANDMARKS`` in turn: ``surfaces``) joined in."""
    path = OUT / f"{name}.jsonl"
    rows = [json.loads(line) for line in open(path)] if path.exists() else []
    for r in rows:
        r["surfaces"] = []
    for m in LANDMARKS:
        spath = _surface_file(name, m)
        surfaces = {_key(s): s for s in map(json.loads, open(spath))} if spath.exists() else {}
        for r in rows:
            r["surfaces"].append(surfaces.get(_key(r)))
    return rows


def evaluate() -> None:
    from topoembed import loops

    null = _load("null")
    if null:
        print("### Null calibration (pure noise; share of runs with a false loop)\n")
        print("| shape | n | runs | " + " | ".join(RULES) + " | min p (Bonferroni), median |")
        print("|---|---|---|" + "---|" * len(RULES) + "---|")
        groups = defaultdict(list)
        for r in null:
            groups[(r["shape"], r["n"])].append(r)
        for (shape, n), rows in sorted(groups.items()):
            cells = [f"{np.mean([RULES[k](r) > 0 for r in rows]):.2f}" for k in RULES]
            pmin = [float(np.nanmin(loops.feature_pvalues(_dgm(r))) * max(1, len(r["dgm1"]))) for r in rows]
            print(f"| {shape} | {n} | {len(rows)} | " + " | ".join(cells) + f" | {np.median(pmin):.3g} |")
        print()
        pooled = np.concatenate([loops.feature_pvalues(_dgm(r)) for r in null])
        print(f"Per-feature p-values pooled over the {len(null)} noise runs ({len(pooled)} H1 features): "
              f"share below 0.05: {np.mean(pooled < 0.05):.3f}, below 0.01: {np.mean(pooled < 0.01):.4f}, "
              f"median {np.median(pooled):.2f} (uniform: 0.05, 0.01, 0.5)\n")
    for which in TASKS:
        rows = _load(which)
        if not rows:
            continue
        print(f"### Noise benchmark, {which} (every second σ; loop count right)\n")
        print("| dataset | runs | " + " | ".join(RULES) + " |")
        print("|---|---|" + "---|" * len(RULES))
        by = defaultdict(list)
        for r in rows:
            by[r["dataset"]].append(r)
        for name, rs in sorted(by.items()):
            if r_true := rs[0]["loops_true"]:
                rs = [r for r in rs if r["best_fixed"] > 0.5]
            cells = [f"{np.mean([RULES[k](r) == r_true for r in rs]):.2f}" if rs else "–" for k in RULES]
            label = name if r_true else f"{name} (H1: 0 loops)"
            print(f"| {label} | {len(rs)} | " + " | ".join(cells) + " |")
        print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["collect", "evaluate"])
    ap.add_argument("--part", choices=["null", "grid", "heldout", "heldout56", "surface", "all"], default="all")
    ap.add_argument("--sets", nargs="+", default=["null", "grid", "heldout", "heldout56"],
                    help="with --part surface: which sets' landmarks to compute")
    ap.add_argument("--landmarks", default="200",
                    help="landmarks of the surface files to compute (--part surface: one count) or to read "
                         "(evaluate: counts separated by commas, read in turn until one shows a void)")
    ap.add_argument("--after", type=int, default=None,
                    help="with --part surface: only the runs whose reading on this many landmarks shows no void")
    args = ap.parse_args(argv)
    global LANDMARKS
    LANDMARKS = tuple(int(m) for m in args.landmarks.split(","))
    import logging

    logging.disable(logging.WARNING)
    if args.what == "collect" and args.part == "surface":
        if len(LANDMARKS) != 1:
            ap.error("collect --part surface computes one landmark count at a time")
        collect_surface(args.sets, LANDMARKS[0], args.after)
    elif args.what == "collect":
        collect(args.part)
    else:
        evaluate()


if __name__ == "__main__":
    main()
