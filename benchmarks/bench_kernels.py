"""Same seed, same result on another machine: the panel's cases under several OpenBLAS kernels.

    python benchmarks/bench_kernels.py            # about 7 minutes on 2 cores
    python benchmarks/bench_kernels.py --kernels Haswell SkylakeX

OpenBLAS picks its kernel by the CPU (``DYNAMIC_ARCH``), so two machines round sums differently.
``OPENBLAS_CORETYPE`` picks the kernel on one machine: each kernel runs every case in its own
process (``--worker``), and each case's results are compared with the first kernel's:

* the verdict's headline and every loop's p-value and prevalence;
* each loop's phase: the largest circular difference per point, and the constant turn (the
  circular mean of the differences) - a turn means the origin depends on the kernel;
* whether the phase is reflected (θ against −θ) between kernels.

Cases (``../shared/data``): IPC cells at 300, 1,000 and 5,000 (seed 0) and all 26,625,
McDavid's three lines, COIL-20 objects 3, 11 and 20 (20 PCs), the 5 % IPC mixture's draw 0 (a
part's loop), a noisy circle of 500 points in R^10 (σ = 0.25), a circle of 2 % among 6 clusters
at 20,000 and 60,000 points in R^50 (the part search over all points' graph and over the
landmarks'), and simulated counts through the cell-cycle recipe (the phase oriented by the S and
G2/M scores). One line per case and kernel, then ``no case differs`` or the cases that differ
(the same verdict, p-values and prevalences, and phases within :data:`NEAR` of each other, count
as the same). Results: ``benchmarks/results/kernels/rows.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

KERNELS = ("default", "Haswell", "SkylakeX", "Zen", "Sandybridge")
OUT = HERE / "results" / "kernels" / "rows.jsonl"
#: A phase that moves less than this (radians, at any point) between kernels counts as the same.
NEAR = 0.01


def cases():
    """(name, X) of every case."""
    import bench_panel as bp

    for n, seed, X, _ in bp.ipc_draws((300, 1000, 5000), 1):
        yield f"IPC {n} cells seed {seed}", X
    yield "IPC all 26,625 cells", bp.ipc_cells()[0]
    for line, X, _ in bp.mcdavid_lines():
        yield f"McDavid {line}", X
    images = bp.coil_images()
    for obj, Xo, _ in bp.coil_objects(images):
        if obj in (3, 11, 20):
            yield f"COIL-20 object {obj}", Xo
    for k, draw, X, _, _ in bp.ipc_mixtures((200,), 1):
        yield f"IPC mixture, {k} cycling, draw {draw}", X
    yield "noisy circle 500 in R^10", bp.noisy_circle(500, 10, 0.25, 0)[0]
    from topoembed import datasets

    for n in (20_000, 60_000):  # the part search over all points' graph, and over the landmarks'
        yield f"2 % circle among 6 clusters, {n:,} in R^50", datasets.make(
            "circle_in_clusters", n=n, d=50, sigma=0.2, seed=0, fraction=0.02).X
    yield RECIPE, None


#: The case run through ``te.pp.recipe_cell_cycle`` and ``te.tl.run``: counts of cycling cells
#: (``datasets.demo_adata``), whose phase the S and G2/M scores orient.
RECIPE = "demo counts, cell-cycle recipe (oriented phase)"


def _run(name, X):
    """(verdict headline, loops) of one case with the defaults."""
    if name != RECIPE:
        from topoembed import analysis

        res = analysis.run(X, jobs=2)
        return res.verdict.headline(), res.loops
    import topoembed as te
    from topoembed import datasets

    adata = datasets.demo_adata()
    te.pp.recipe_cell_cycle(adata)
    te.tl.run(adata, progress=False, jobs=2)
    found = te.tl.get_loops(adata)
    for j, lp in enumerate(found):  # each loop's phase lies in obs (topoembed_phase, _2, ...)
        lp["phase"] = adata.obs["topoembed_phase" + (f"_{j + 1}" if j else "")].to_numpy(float)
    return te.tl.get_verdict(adata)["headline"], found


def worker(out: str) -> None:
    """Run every case with the defaults; save each verdict, p-values, prevalences and phases."""
    saved, meta = {}, {}
    for c, (name, X) in enumerate(cases()):
        headline, found = _run(name, X)
        meta[name] = {"verdict": headline, "p_values": [lp.get("p_value") for lp in found],
                      "prevalence": [lp.get("prevalence") for lp in found]}
        for j, lp in enumerate(found):
            if "phase" in lp:
                saved[f"{c}_{j}"] = np.asarray(lp["phase"], dtype=np.float64)
    np.savez(out, meta=json.dumps(meta), **saved)


def compare(ref, got) -> list[dict]:
    """One row per case: what differs between the kernels' results ``ref`` and ``got``."""
    mr, mg = json.loads(str(ref["meta"])), json.loads(str(got["meta"]))
    rows = []
    for c, name in enumerate(mr):
        row = {"case": name, "verdict": mg[name]["verdict"], "same_verdict": mr[name]["verdict"] == mg[name]["verdict"],
               "same_p": _close(mr[name]["p_values"], mg[name]["p_values"]),
               "same_prevalence": mr[name]["prevalence"] == mg[name]["prevalence"], "phases": []}
        for key in sorted(k for k in ref if k.startswith(f"{c}_")):
            if key not in got:
                row["phases"].append({"loop": key, "missing": True})
                continue
            a, b = ref[key], got[key]
            ok = np.isfinite(a) & np.isfinite(b)
            d = np.angle(np.exp(1j * (b[ok] - a[ok])))
            reflected = np.angle(np.exp(1j * (b[ok] + a[ok])))
            turn = float(np.angle(np.mean(np.exp(1j * d)))) if ok.any() else 0.0
            row["phases"].append({"loop": key, "max_diff": float(np.abs(d).max()) if ok.any() else 0.0,
                                  "turn": turn, "reflected": bool(ok.any() and np.std(reflected) < np.std(d) - 1e-9),
                                  "same_nan": bool(np.array_equal(np.isfinite(a), np.isfinite(b)))})
        rows.append(row)
    return rows


def _close(a, b) -> bool:
    if len(a) != len(b):
        return False
    return all((x is None and y is None) or (x is not None and y is not None and np.isclose(x, y, rtol=1e-6, atol=0))
               for x, y in zip(a, b))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", nargs="+", default=list(KERNELS))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kernel in args.kernels:
            env = dict(os.environ)
            if kernel != "default":
                env["OPENBLAS_CORETYPE"] = kernel
            out = str(Path(tmp) / f"{kernel}.npz")
            subprocess.run([sys.executable, __file__, "--worker", out], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            results[kernel] = dict(np.load(out))
    first, differ = args.kernels[0], set()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w") as fh:
        for kernel in args.kernels[1:]:
            for row in compare(results[first], results[kernel]):
                row = {"kernel": kernel, "against": first, **row}
                fh.write(json.dumps(row) + "\n")
                worst = max((p.get("max_diff", np.inf) for p in row["phases"]), default=0.0)
                evidence = (row["same_verdict"] and row["same_p"] and row["same_prevalence"]
                            and all(p.get("same_nan", False) for p in row["phases"]))
                word = ("DIFFERS" if not evidence or worst >= NEAR else "identical" if worst < 1e-6
                        else f"phase within {NEAR:g} rad")
                if word == "DIFFERS":
                    differ.add(row["case"])
                turns = ", ".join(f"{p.get('turn', float('nan')):+.3f}" for p in row["phases"])
                print(f"{kernel:12s} {row['case']:38s} {row['verdict']:34s} "
                      f"{word}: largest phase difference {worst:.2g} (turns {turns})")
    print("no case differs" if not differ else "differ: " + "; ".join(sorted(differ)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
