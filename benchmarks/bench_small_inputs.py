"""Small inputs (101-399 points): the default mutual k = 100 graph against k = n // 3 and n // 4.

    python benchmarks/bench_small_inputs.py            # about 10 minutes on 2 cores -> results/small_inputs/rows.jsonl
    python benchmarks/bench_small_inputs.py --table    # the table of BENCHMARKS.md, "Small inputs"

Cases: random IPC cells (``obsm["X_scVI"]``, draws ``default_rng(seed)``, seeds 0-9) at 150-350
cells, scored by R² of ``CellCycle`` on (cos θ, sin θ); no-loop sets (a blob and a sphere in R^20,
σ = 0.05, uniform points in [0,1]^10; seeds 0-9); noisy circles in R^50 (σ = 0.1, 0.2; seeds
0-4), scored by the alignment with the true angle; McDavid's three sorted cell lines (η² of the
sorted stage; seeds 0-2). Each case is ``topoembed.analysis.run`` with the rule's k; "k = 100" is
the old default (``topoembed.params.SMALL_INPUT_SHARE`` set to 1 so that the front door keeps it).
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_panel import alignment, eta2, ipc_draws, mcdavid_lines, no_loop_sets, pc_angle, r2  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "small_inputs" / "rows.jsonl"
RULES = {"k = 100": lambda n: {}, "n // 3": lambda n: {"k": n // 3}, "n // 4": lambda n: {"k": n // 4}}


def _run(X, rule, n, seed=0, **extra):
    import topoembed.params as tp
    from topoembed import analysis

    tp.SMALL_INPUT_SHARE = 1 if rule == "k = 100" else 4
    res = analysis.run(X, jobs=1, seed=seed, **RULES[rule](n), **extra)
    ph = np.asarray(res.loops[0]["phase"], float) if res.loops and "phase" in res.loops[0] else None
    return res, (ph if ph is not None and np.isfinite(ph).any() else None)


def wants_table(doc: str, argv=None) -> bool:
    """The command line of a benchmark that runs, or with ``--table`` prints its stored table."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="print the table from the stored rows")
    return ap.parse_args(argv).table


def quiet_rows(path: Path):
    """The result file ``path`` opened for writing (its folder made), with the package's warnings
    and log lines silenced: the benchmarks that share this write one JSON line per run."""
    import warnings

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w")


def supported(got: list) -> str:
    """A table cell: how many of the rows ``got`` are supported loops, and the range of their scores."""
    found = [r for r in got if r["level"] == "loop"]
    scores = [r["score"] for r in found if r.get("score") is not None]
    return f"{len(found)} of {len(got)}" + (f" ({min(scores):.2f}-{max(scores):.2f})" if scores else "")


def main(argv=None):
    if wants_table(__doc__, argv):
        return table()

    from topoembed import datasets

    logging.disable(logging.WARNING)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w") as fh:
        def emit(row):
            fh.write(json.dumps(row) + "\n")
            fh.flush()

        for n, seed, Xi, cc in ipc_draws((150, 200, 250, 300, 350), 10):
            for rule in RULES if n < 300 else ("k = 100", "n // 4"):
                res, ph = _run(Xi, rule, n)
                emit({"case": f"IPC {n} cells", "seed": seed, "rule": rule, "level": res.verdict.level,
                      "score": None if ph is None else r2(ph, cc)})
        for n in (150, 200, 250, 300, 350):
            for seed in range(10):
                for name, Xc in no_loop_sets(n, seed).items():
                    for rule in RULES if n < 300 else ("n // 4",):
                        res, _ = _run(Xc, rule, n)
                        emit({"case": f"no loop ({name}) {n}", "seed": seed, "rule": rule, "level": res.verdict.level})
        for n in (150, 200, 250):
            for sigma in (0.1, 0.2):
                for seed in range(5):
                    ds = datasets.make("circle", n=n, d=50, sigma=sigma, seed=seed)
                    for rule in RULES:
                        res, ph = _run(ds.X, rule, n)
                        emit({"case": f"circle {n} σ {sigma}", "seed": seed, "rule": rule, "level": res.verdict.level,
                              "score": None if ph is None else alignment(ph, ds.angle)})
        for line, Xl, stage in mcdavid_lines():
            for rule in RULES:
                for seed in range(3):
                    res, ph = _run(Xl, rule, len(Xl), seed=seed)
                    emit({"case": f"McDavid {line} ({len(Xl)} cells)", "seed": seed, "rule": rule,
                          "level": res.verdict.level, "score": None if ph is None else eta2(ph, stage),
                          "pc_angle": eta2(pc_angle(Xl), stage)})
    return table()


def table() -> int:
    rows = [json.loads(line) for line in open(OUT)]
    agg = collections.defaultdict(list)
    for r in rows:
        agg[(r["case"], r["rule"])].append(r)
    cases = list(dict.fromkeys(r["case"] for r in rows))
    print("| case | " + " | ".join(RULES) + " |")
    print("|---|" + "---|" * len(RULES))
    for case in cases:
        cells = []
        for rule in RULES:
            got = agg.get((case, rule))
            if not got:
                cells.append("–")
                continue
            cells.append(supported(got))
        print(f"| {case} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
