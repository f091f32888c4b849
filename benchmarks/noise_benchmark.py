"""The noise benchmark of Damrich, Berens and Kobak (NeurIPS 2024), and ``auto`` on it.

Protocol
--------
* Datasets (:func:`topoembed.datasets.make`): n = 1,000 points in R^50, isotropic
  Gaussian noise σ ∈ linspace(0, 0.35, 29) (eyeglasses: σ ≤ 0.15), seeds 0, 1, 2.
  True number of holes: circle 1, linked circles 2, eyeglasses 1, torus 2 (H1),
  sphere 1 void (scored in H2), blob 0 (the false-loop check).
* Score: the detection score s_m (:func:`topoembed.loops.detection_scores`, features
  with death/birth > 1.25) at the TRUE m for every fixed method; for the sphere s_1 of
  the H2 diagram. AUC = mean over σ of the seed-averaged score. The blob has no true
  loop; its reported "score" is the fraction of runs in which a method's own
  ``n_loops="auto"`` rule says 0 loops (1 = never a false loop). The sphere is also
  checked this way in H1 (rows ``sphere_h1``; ``--h1-only`` computes only that).
* Published scoring (``score_published``, ``auc_published``): the published figures
  filter with an all-or-nothing rule (eff-ph ``filter_diagram(dob=1.25, binary=True)``:
  once any feature passes death/birth > 1.25, every feature counts). It scores lower
  than the package's filter when low-ratio noise features outlive the (m+1)-th passing
  one, which is common for effective resistance. The comparison with the published
  numbers (:func:`comparison_table`) uses it.
* Methods (:data:`METHODS`): Euclidean; corrected effective resistance k ∈ {15, 100};
  diffusion k ∈ {15, 100} × t ∈ {8, 64}; 2-D Laplacian eigenmaps k = 15; ``default``
  (the settings of ``pipeline.Params()``: since issue 2's tuning, corrected effective
  resistance on the *mutual* k = 100 kNN graph, whose loop count must be confirmed by
  diffusion t = 8 on the same graph, :data:`CONFIRM`); ``auto`` (:mod:`topoembed.auto`, no labels).
  ``auto`` is scored like the fixed methods, at the true m of the setting it chose,
  and in addition ``auto_m`` scores s_m only when its predicted m is right (0 otherwise);
  ``m_accuracy`` is the fraction of runs whose predicted m equals the truth.

Task unit: one (dataset, σ, seed). A task builds each kNN graph and its Laplacian
eigendecomposition once per k and runs every method on it (:func:`run_task`), and
writes one JSON file. :func:`aggregate` turns the task files into the tables and plots.
The local runner (:func:`run_grid`, ``--jobs``) and the Snakemake workflow
(``workflows/benchmark.smk``) both run the same task command.

This harness lives in the source repository, outside the installed package: run it as
``python benchmarks/noise_benchmark.py ARGS`` or, from a source checkout with an editable
install, as ``topoembed benchmark ARGS`` (the thin subcommand loads this file).

Command line::

    topoembed benchmark --quick --out benchmarks/results/quick      # coarse grid, minutes to an hour
    topoembed benchmark --out benchmarks/results/full --jobs 32     # the whole published grid
    topoembed benchmark --task circle 0.1 0 --out task.json         # one task (what the workflow runs)
    topoembed benchmark --aggregate --out DIR                       # tables/plots from DIR/tasks/*.json
    topoembed benchmark --update --out DIR     # add settings newer code needs to DIR/tasks/*.json, aggregate
"""
from __future__ import annotations

import argparse
import csv
import io as _io
import json
import logging
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from topoembed import auto, datasets, evidence, io, loops, pipeline
from topoembed._parallel import imap
from topoembed._validate import InputError, available_memory_bytes
from topoembed._version import __version__

log = logging.getLogger(__name__)

__all__ = ["METHODS", "DATASETS", "sigma_grid", "grid", "run_task", "task_filename", "run_grid", "aggregate",
           "auc_table", "build_parser", "main", "PUBLISHED"]

#: Noise levels of the paper: linspace(0, 0.35, 29), rounded so that file names and
#: command lines reproduce them exactly; the eyeglasses stop at 0.15.
SIGMAS = tuple(round(float(s), 4) for s in np.linspace(0.0, 0.35, 29))
SIGMA_MAX = {"eyeglasses": 0.15}
#: True holes per dataset: (homology dimension scored, number of holes).
TRUTH = {"circle": (1, 1), "linked_circles": (1, 2), "eyeglasses": (1, 1), "sphere": (2, 1), "torus": (1, 2),
         "blob": (1, 0)}
#: True number of H1 loops (what ``n_loops`` should predict; the sphere has none).
LOOPS_H1 = {"circle": 1, "linked_circles": 2, "eyeglasses": 1, "sphere": 0, "torus": 2, "blob": 0}
DATASETS = ("circle", "linked_circles", "eyeglasses", "sphere", "torus", "blob")
#: Datasets without an H1 loop whose tasks are also scored for false H1 loops, as the
#: blob is (row name ``<dataset>_h1``). This check needs only H1, so it also comes from
#: tasks run with ``h1_only`` (the sphere's H2 takes minutes per setting at n = 1,000).
H1_CHECK = ("sphere",)
#: GiB and minutes one H2 task at n = 1,000 may take (ripser's H2 reduction dominates). Measured
#: on the 2-core machine (2026-11-24): the sphere at σ = 0.175 took 24.5 min with a peak of
#: 11.6 GiB; with two workers one task was killed by the out-of-memory killer at 15.5 GiB,
#: still growing. Both are set with a margin.
H2_TASK_GIB = 20
H2_TASK_MINUTES = 60
SEEDS = (0, 1, 2)
#: --quick: every 4th σ of the published grid (8 values, 4 for the eyeglasses), seed 0,
#: and the three datasets with published figures plus the blob.
QUICK = {"datasets": ("circle", "linked_circles", "eyeglasses", "blob"), "sigma_step": 4, "seeds": (0,)}


def _default_config() -> auto.Config:
    """The setting ``pipeline.Params()`` runs (its kNN graph rule included)."""
    p = pipeline.Params()
    return (p.distance, None if p.distance == "euclidean" else p.k,
            p.t if p.distance == "diffusion" else None,
            p.n_components if p.distance == "laplacian_eigenmaps" else None, p.symmetrize)


#: The fixed methods of the published benchmark: name -> (distance, k, t, n_components).
METHODS = {
    "euclidean": ("euclidean", None, None, None),
    "er_k15": ("effective_resistance", 15, None, None),
    "er_k100": ("effective_resistance", 100, None, None),
    "diff_k15_t8": ("diffusion", 15, 8, None),
    "diff_k15_t64": ("diffusion", 15, 64, None),
    "diff_k100_t8": ("diffusion", 100, 8, None),
    "diff_k100_t64": ("diffusion", 100, 64, None),
    "le_k15_p2": ("laplacian_eigenmaps", 15, None, 2),
    "default": _default_config(),
}


def _confirm_config():
    """The second distance ``pipeline.Params()`` confirms a loop count with (same graph), or None."""
    p = pipeline.Params()
    if not p.confirm or p.distance not in evidence.CONFIRM_WITH:
        return None
    other = evidence.CONFIRM_WITH[p.distance]
    return (other, p.k, p.t if other == "diffusion" else None, None, p.symmetrize)


#: Computed in every task so that ``default`` applies the pipeline's confirmation rule.
CONFIRM = _confirm_config()

#: Method families for the "best per family" columns (the paper's figures report the
#: best hyperparameters per method and dataset).
FAMILY = {"euclidean": "euclidean", "er_k15": "effective_resistance", "er_k100": "effective_resistance",
          "diff_k15_t8": "diffusion", "diff_k15_t64": "diffusion", "diff_k100_t8": "diffusion",
          "diff_k100_t64": "diffusion", "le_k15_p2": "laplacian_eigenmaps", "default": "default",
          "auto": "auto", "auto_m": "auto"}

#: Read off the paper's figures (approximate; best hyperparameters per method and dataset).
PUBLISHED = {
    "circle": {"euclidean": (0.46, 0.46), "effective_resistance": (0.88, 0.88), "diffusion": (0.93, 0.93)},
    "linked_circles": {"euclidean": (0.23, 0.23), "effective_resistance": (0.42, 0.50), "diffusion": (0.55, 0.55)},
    "eyeglasses": {"euclidean": (0.11, 0.11), "effective_resistance": (0.52, 0.52), "diffusion": (0.55, 0.65)},
}


def sigma_grid(dataset: str, step: int = 1) -> list[float]:
    """The σ values of ``dataset`` (every ``step``-th of the published grid)."""
    top = SIGMA_MAX.get(dataset, np.inf)
    return [s for s in SIGMAS[::step] if s <= top + 1e-12]


def grid(quick: bool = False, datasets_=None, seeds=None, sigma_step=None) -> list[tuple[str, float, int]]:
    """All tasks (dataset, σ, seed) of the full grid or of ``--quick``; overrides narrow it."""
    ds = datasets_ or (QUICK["datasets"] if quick else DATASETS)
    sd = seeds if seeds is not None else (QUICK["seeds"] if quick else SEEDS)
    step = sigma_step or (QUICK["sigma_step"] if quick else 1)
    return [(d, s, int(seed)) for d in ds for seed in sd for s in sigma_grid(d, step)]


def _maxdim(dataset: str, h1_only: bool = False) -> int:
    """Highest homology dimension a task of ``dataset`` computes (1 with ``h1_only``)."""
    return 1 if h1_only else max(1, TRUTH[dataset][0])


def task_filename(dataset: str, sigma: float, seed: int) -> str:
    return f"{dataset}_s{sigma:.4f}_seed{int(seed)}.json"


def _score(summary: dict, dim: int, m: int) -> float:
    """s_m of the stored filtered lifetimes in dimension ``dim`` (0 for m = 0)."""
    if m == 0:
        return float("nan")
    return float(loops.detection_scores(auto.lifetimes_diagram(summary[f"life{dim}"]))[m])


def _score_published(summary: dict, dim: int, m: int) -> float:
    """s_m as the published figures compute it: the all-or-nothing death/birth filter
    (:func:`topoembed.loops.filtered_lifetimes` with ``binary=True``: every feature counts
    once any passes, none otherwise); for m = 0, 1 − s_1 (eff-ph's ``outlier_score``).
    NaN for summaries stored before the unfiltered lifetimes (``all1``) were kept."""
    if f"all{dim}" not in summary:
        return float("nan")
    every = summary[f"all{dim}"] if summary[f"life{dim}"] else []
    s = loops.detection_scores(auto.lifetimes_diagram(every))
    return 1.0 - s[1] if m == 0 else float(s[m])


def _predicted_m(summary: dict, confirm: dict | None = None) -> int:
    """The loop count of the rule ``loops.detect(n_loops="auto")``; with ``confirm`` (the
    summary of the confirming distance) 0 unless that distance finds the same count,
    as ``pipeline.run`` does with ``Params.confirm``."""
    m = int(auto.detect_summary(summary)["n_loops"])
    if m and confirm is not None and int(auto.detect_summary(confirm)["n_loops"]) != m:
        return 0
    return m


def _task_configs(methods, auto_grid) -> list:
    """Every setting a task computes: the methods, the auto candidates, the confirmation."""
    configs = [auto.normalize(c) for c in methods.values()] + [auto.normalize(c) for c in auto_grid]
    if CONFIRM is not None:
        configs.append(auto.normalize(CONFIRM))
    return list(dict.fromkeys(configs))


def _method_rows(cands: dict, methods: dict, base: dict, dim: int) -> list[dict]:
    """One row per fixed method (score at the true m, predicted m, time) from candidate summaries."""
    m_true = base["m_true"]
    confirm = cands.get(auto.config_key(CONFIRM)) if CONFIRM is not None else None
    rows = []
    for name, cfg in methods.items():
        c = cands[auto.config_key(cfg)]
        checked = confirm if name == "default" else None
        m_pred = _predicted_m(c, checked)
        score = _score(c, dim, m_true) if m_true else float(m_pred == 0)
        published = _score_published(c, dim, m_true)
        time_s = c["time_s"]
        if checked is not None and _predicted_m(c):
            time_s += checked["time_s"] - checked.get("graph_s", 0.0)  # the extra H1 run on the same graph
        rows.append({**base, "method": name, "setting": auto.config_key(cfg), "score": score,
                     "score_published": published, "m_pred": m_pred, "time_s": time_s})
    return rows


def run_task(dataset: str, sigma: float, seed: int, *, n: int = 1000, d: int = 50, methods=None,
             auto_grid=auto.DEFAULT_GRID, h1_only: bool = False) -> dict:
    """One benchmark task: every method (and the auto candidates) on one noisy dataset.

    Returns a JSON-able dict with ``rows`` (one per method: score at the true m,
    predicted m, time) and ``candidates`` (the persistence summaries they come from).
    ``h1_only`` computes H1 only: the sphere is then scored only for false H1 loops
    (rows ``sphere_h1``), not for its void.
    """
    methods = METHODS if methods is None else methods
    maxdim = _maxdim(dataset, h1_only)
    t0 = time.perf_counter()
    data = datasets.make(dataset, n=n, d=d, sigma=sigma, seed=seed)
    distances = {auto.config_key(auto.FALLBACK): None}
    cands = auto.compute_candidates(data.X, _task_configs(methods, auto_grid), maxdim=maxdim, seed=seed,
                                    distances=distances)
    # the closed surface that auto.select would read (only where it would read one)
    _, surface = auto.choose_on({auto.config_key(c): cands[auto.config_key(c)] for c in auto_grid},
                                distances[auto.config_key(auto.FALLBACK)], seed=seed)
    rows = _task_rows(cands, _task_base(dataset, sigma, seed), methods, auto_grid, surface=surface)
    return {"dataset": dataset, "sigma": float(sigma), "seed": int(seed), "n": n, "d": d, "maxdim": maxdim,
            "version": __version__, "wall_s": time.perf_counter() - t0, "rows": rows, "candidates": cands,
            "surface": surface}


def _auto_rows(cands: dict, auto_grid, base: dict, dim: int, surface: dict | None = None) -> list[dict]:
    sub = {auto.config_key(c): cands[auto.config_key(c)] for c in auto_grid}
    choice = auto.choose_with_surface(sub, surface)
    chosen = cands[choice["key"]]
    m_true = base["m_true"]
    time_s = auto.total_time(sub)
    right = choice["n_loops"] == base["loops_true"]
    published = _score_published(chosen, dim, m_true)
    if m_true:
        score = _score(chosen, dim, m_true)
        strict = score if right else 0.0
    else:
        score = strict = float(choice["n_loops"] == 0)
    common = {"setting": choice["key"], "m_pred": choice["n_loops"], "time_s": time_s}
    published_m = published if right or np.isnan(published) else 0.0
    return [{**base, "method": "auto", "score": score, "score_published": published, **common},
            {**base, "method": "auto_m", "score": strict, "score_published": published_m, **common}]


def _task_worker(args) -> dict:
    dataset, sigma, seed, n, d, h1_only, path = args
    result = run_task(dataset, sigma, seed, n=n, d=d, h1_only=h1_only)
    io.write_json(path, result)
    return {"dataset": dataset, "sigma": sigma, "seed": seed, "wall_s": result["wall_s"]}


def _imap(fn, args: list, jobs: int):
    """:func:`topoembed._parallel.imap` with the benchmark's advice when a worker dies."""
    return imap(fn, args, jobs, killed_hint=(
        f"a task with H2 at n = 1,000 needs about {H2_TASK_GIB:g} GiB; the task files already written are "
        f"kept: run the same command again with fewer --jobs (e.g. --jobs 1) to resume"))


def task_resources(dataset: str, n: int = 1000, h1_only: bool = False) -> dict:
    """Memory (MB) and run time (minutes) to ask a cluster scheduler for one task
    (``workflows/benchmark.smk``): generous for H1 tasks, :data:`H2_TASK_GIB` and
    :data:`H2_TASK_MINUTES` (scaled by (n/1000)^2 and ^3) for tasks with H2."""
    if _maxdim(dataset, h1_only) < 2:
        return {"mem_mb": 4000, "runtime": 120}
    scale = max(n, 1) / 1000
    return {"mem_mb": int(H2_TASK_GIB * 1024 * max(scale**2, 0.25)) + 2000,
            "runtime": int(H2_TASK_MINUTES * max(scale**3, 0.1)) + 30}


def _jobs_that_fit(todo: list, jobs: int, available: int | None = None) -> int:
    """``jobs``, lowered (with a warning) so that the tasks that compute H2 at n ≥ 1,000
    fit in the available memory, :data:`H2_TASK_GIB` per worker."""
    heavy = [t for t in todo if _maxdim(t[0], t[5]) >= 2 and t[3] >= 1000]
    if jobs <= 1 or not heavy:
        return jobs
    available = available_memory_bytes() if available is None else available
    fit = max(1, int(available // (H2_TASK_GIB * 2**30)))
    if fit < jobs:
        log.warning("%d task(s) compute H2 at n >= 1,000 (about %g GiB each); %.0f GiB are available, so %d "
                    "job(s) run instead of %d", len(heavy), H2_TASK_GIB, available / 2**30, fit, jobs)
        return fit
    return jobs


def _task_done(path: Path, dataset: str, h1_only: bool) -> bool:
    """Whether ``path`` holds a finished task with every homology dimension needed
    (a sphere task run with ``h1_only`` is redone when H2 is wanted)."""
    if not path.exists():
        return False
    need = _maxdim(dataset, h1_only)
    if need == 1:
        return True
    with open(path) as fh:
        return json.load(fh).get("maxdim", need) >= need


def run_grid(tasks, out_dir, *, n: int = 1000, d: int = 50, jobs: int = 1, progress: bool = True,
             h1_only: bool = False) -> list[Path]:
    """Run the tasks (skipping those whose file already exists) into ``out_dir/tasks``.

    ``jobs`` > 1 runs tasks in that many worker processes; ``h1_only`` as in
    :func:`run_task`. Returns all task files.
    """
    tdir = Path(out_dir) / "tasks"
    tdir.mkdir(parents=True, exist_ok=True)
    paths = [tdir / task_filename(*t) for t in tasks]
    todo = [(*t, n, d, h1_only, str(p)) for t, p in zip(tasks, paths) if not _task_done(p, t[0], h1_only)]
    log.info("%d tasks, %d already done, %d to run with %d job(s)", len(tasks), len(tasks) - len(todo), len(todo), jobs)
    jobs = _jobs_that_fit(todo, jobs)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="benchmark", unit="task", disable=not progress or None)
    for done in _imap(_task_worker, todo, jobs):
        bar.set_postfix_str(f"{done['dataset']} σ={done['sigma']:.4f}")
        bar.update(1)
    bar.close()
    return paths


# ---------------------------------------------------------------- aggregation
def _task_base(dataset: str, sigma: float, seed: int) -> dict:
    """The fields every row of one task shares, the truth included."""
    return {"dataset": dataset, "sigma": float(sigma), "seed": int(seed), "m_true": TRUTH[dataset][1],
            "loops_true": LOOPS_H1[dataset]}


def _task_rows(cands: dict, base: dict, methods=None, auto_grid=auto.DEFAULT_GRID,
               surface: dict | None = None) -> list[dict]:
    """Every row of one task (fixed methods, auto, auto_m) from its candidate summaries
    (and the closed surface ``auto`` read, :func:`topoembed.auto.choose_with_surface`;
    task files written before issue 14 have none).

    Datasets in :data:`H1_CHECK` also get ``<dataset>_h1`` rows, scored like the blob
    (1 when the method's own rule reports no H1 loop); their own rows (the void in H2)
    need H2 lifetimes and are left out for tasks computed with ``h1_only``.
    """
    methods = METHODS if methods is None else methods
    rows = []
    if base["dataset"] in H1_CHECK:
        b1 = {**base, "dataset": f"{base['dataset']}_h1", "m_true": 0, "loops_true": 0}
        rows += _method_rows(cands, methods, b1, 1) + _auto_rows(cands, auto_grid, b1, 1, surface)
    dim = TRUTH[base["dataset"]][0]
    if all(f"life{dim}" in c for c in cands.values()):
        rows += _method_rows(cands, methods, base, dim) + _auto_rows(cands, auto_grid, base, dim, surface)
    return rows


def load_rows(task_files) -> list[dict]:
    """Rows of all task files, re-derived from the stored candidate summaries with the
    current rules (:func:`_method_rows`, :func:`topoembed.auto.choose`; pure functions of
    them), so that the tables always show the rules as they are in the code."""
    rows = []
    for f in task_files:
        with open(f) as fh:
            task = json.load(fh)
        rows.extend(_task_rows(task["candidates"], _task_base(task["dataset"], task["sigma"], task["seed"]),
                               surface=task.get("surface")))
    return rows


#: Families whose published figures carry a reproduction target (issue 6); ``--update``
#: recomputes their settings for the published scoring (Euclidean is left out: no target,
#: and on clean data its ripser run is among the slowest).
TARGET_FAMILIES = ("effective_resistance", "diffusion")


def _published_configs(dataset: str, methods) -> list:
    """The fixed settings the reproduction target scores on ``dataset``."""
    fams = [f for f in PUBLISHED.get(dataset, {}) if f in TARGET_FAMILIES]
    return [auto.normalize(cfg) for name, cfg in methods.items() if FAMILY.get(name) in fams]


def _stale_configs(task: dict, methods, auto_grid) -> list:
    """Settings a task file lacks, plus the published-comparison settings whose summaries
    predate the unfiltered lifetimes (``all1``) that the published score needs."""
    cands = task["candidates"]
    dim = task.get("maxdim", _maxdim(task["dataset"]))
    stale = [c for c in _task_configs(methods, auto_grid) if auto.config_key(c) not in cands]
    stale += [c for c in _published_configs(task["dataset"], methods)
              if auto.config_key(c) in cands and any(f"all{d}" not in cands[auto.config_key(c)]
                                                      for d in range(1, dim + 1))]
    return list(dict.fromkeys(stale))


def _same_lifetimes(a, b) -> bool:
    """Whether two stored lifetime lists agree (same length, equal to float rounding)."""
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


def _update_one(args) -> tuple[str, list[str], list[str]]:
    """Recompute the stale settings of one task file; returns (file, keys added, keys whose
    stored filtered lifetimes the recomputation did not reproduce)."""
    f, methods, auto_grid = args
    with open(f) as fh:
        task = json.load(fh)
    stale = _stale_configs(task, methods, auto_grid)
    if not stale and "surface" in task and not _surface_before_escalation(task["surface"]):
        return str(f), [], []
    base = _task_base(task["dataset"], task["sigma"], task["seed"])
    data = datasets.make(base["dataset"], n=task["n"], d=task["d"], sigma=base["sigma"], seed=base["seed"])
    maxdim = task.get("maxdim", _maxdim(base["dataset"]))
    new = auto.compute_candidates(data.X, stale, maxdim=maxdim, seed=base["seed"]) if stale else {}
    differ = []
    for key, summ in new.items():
        old = task["candidates"].get(key)
        if old is not None:
            if not all(_same_lifetimes(old[f"life{d}"], summ[f"life{d}"]) for d in range(1, maxdim + 1)):
                differ.append(key)
            summ["time_s"], summ["graph_s"] = old["time_s"], old.get("graph_s", 0.0)  # the original run's cost
        task["candidates"][key] = summ
    added = list(new)
    if "surface" not in task or _surface_before_escalation(task["surface"]):
        # stored before auto read the closed surface, or before it tried more landmarks where
        # the first showed no void: read it where auto would
        task["surface"] = _surface_for(task["candidates"], auto_grid, data.X, base["seed"])
        added.append("surface")
    task["rows"] = _task_rows(task["candidates"], base, methods, auto_grid, surface=task.get("surface"))
    io.write_json(f, task)
    return str(f), added, differ


def _surface_before_escalation(surface: dict | None) -> bool:
    """Whether a stored surface reading showed no void on the first landmark count alone,
    stored before ``loops.surface_evidence`` tried ``loops.SURFACE_LANDMARKS`` in turn."""
    return surface is not None and not surface.get("void") and "landmarks_tried" not in surface


def _surface_for(cands: dict, auto_grid, X, seed: int) -> dict | None:
    """The closed surface :func:`run_task` stores (:func:`topoembed.auto.choose_on`), from stored
    candidates: the default setting's distances are recomputed only where auto reads it."""
    key = auto.config_key(auto.FALLBACK)

    def default_distances():
        distances = {key: None}
        auto.compute_candidates(X, [auto.FALLBACK], maxdim=1, seed=seed, distances=distances)
        return distances[key]

    return auto.choose_on({auto.config_key(c): cands[auto.config_key(c)] for c in auto_grid},
                          default_distances, seed=seed)[1]


def update_tasks(task_files, *, methods=None, auto_grid=auto.DEFAULT_GRID, jobs: int = 1,
                 progress: bool = False) -> list[Path]:
    """Bring existing task files up to what the current code scores, without recomputing
    the rest: add the settings they lack (e.g. after a method or the confirmation rule was
    added), recompute the published-comparison settings stored before the unfiltered
    lifetimes were kept, and read the closed surface that ``auto`` reads (:func:`_surface_for`)
    where a task predates it. A recomputed setting must reproduce its stored lifetimes (same
    seed, same result); a mismatch is logged as a warning. Returns the files that changed."""
    methods = METHODS if methods is None else methods
    args = [(str(f), methods, auto_grid) for f in task_files]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(args), desc="update", unit="task", disable=not progress or None)
    results = []
    for result in _imap(_update_one, args, jobs):
        results.append(result)
        bar.update(1)
    bar.close()
    changed = []
    for f, added, differ in sorted(results):
        if added:
            changed.append(Path(f))
            log.info("%s: recomputed %s", Path(f).name, ", ".join(added))
        if differ:
            log.warning("%s: recomputed %s did not reproduce the stored lifetimes", Path(f).name, ", ".join(differ))
    return changed


def auc_table(rows: list[dict]) -> list[dict]:
    """Per (dataset, method): AUC (mean over σ of the seed-mean score), m accuracy, mean time."""
    by = {}
    for r in rows:
        by.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for (ds, method), rs in by.items():
        sig = np.array([r["sigma"] for r in rs])
        score = np.array([r["score"] for r in rs], dtype=float)
        levels = np.unique(sig)
        curve = np.array([score[sig == s].mean() for s in levels])
        # published scoring: over the runs that store it; NaN unless every σ level has one
        pub = np.array([r.get("score_published", np.nan) for r in rs], dtype=float)
        has = np.isfinite(pub)
        pub_curve = np.array([pub[(sig == s) & has].mean() if np.any((sig == s) & has) else np.nan
                              for s in levels])
        m_ok = np.array([r["m_pred"] == r["loops_true"] for r in rs], dtype=float)
        out.append({"dataset": ds, "method": method, "auc": float(curve.mean()),
                    "auc_published": float(pub_curve.mean()), "m_accuracy": float(m_ok.mean()),
                    "n_sigma": int(len(levels)), "n_runs": int(len(rs)),
                    "seeds": " ".join(str(s) for s in sorted({r["seed"] for r in rs})),
                    "n_runs_published": int(has.sum()),
                    "time_s": float(np.mean([r["time_s"] for r in rs]))})
    _detectable_accuracy(rows, out)
    order = {m: i for i, m in enumerate(list(METHODS) + ["auto", "auto_m"])}
    dorder = {d: i for i, d in enumerate(_display_order())}
    out.sort(key=lambda r: (dorder.get(r["dataset"], 99), order.get(r["method"], 99)))
    return out


def _display_order() -> list[str]:
    """Datasets in table order, each H1 check right after its dataset."""
    return [x for d in DATASETS for x in ((d, f"{d}_h1") if d in H1_CHECK else (d,))]


def best_fixed_methods(table: list[dict], key: str = "auc") -> dict:
    """{dataset: (method, AUC)}: the fixed method (:data:`METHODS`) with the highest finite
    ``key`` per dataset of an :func:`auc_table` (the first in table order on ties)."""
    best = {}
    for r in table:
        if (r["method"] in METHODS and np.isfinite(r[key])
                and (r["dataset"] not in best or r[key] > best[r["dataset"]][1])):
            best[r["dataset"]] = (r["method"], r[key])
    return best


def _detectable_accuracy(rows: list[dict], table: list[dict]) -> None:
    """Add ``m_accuracy_detectable``: the fraction of runs with the right predicted m among
    the runs where the dataset's best fixed method (highest AUC) scores > 0.5 (NaN for
    datasets without a loop), and ``m_accuracy_detectable_published``: the same with the
    best method and its score under the published scoring (``auc_published``)."""
    for suffix, auc_key, score_key in (("", "auc", "score"), ("_published", "auc_published", "score_published")):
        best = best_fixed_methods(table, auc_key)
        good = {(r["dataset"], r["sigma"], r["seed"]) for r in rows
                if r["m_true"] and best.get(r["dataset"], (None,))[0] == r["method"] and r.get(score_key, 0) > 0.5}
        for t in table:
            runs = [r for r in rows if (r["dataset"], r["method"]) == (t["dataset"], t["method"])
                    and (r["dataset"], r["sigma"], r["seed"]) in good]
            t["m_accuracy_detectable" + suffix] = (float(np.mean([r["m_pred"] == r["loops_true"] for r in runs]))
                                                   if runs else float("nan"))


def curves(rows: list[dict]) -> dict:
    """{dataset: {method: (σ values, seed-mean scores)}}."""
    out = {}
    for r in rows:
        out.setdefault(r["dataset"], {}).setdefault(r["method"], []).append((r["sigma"], r["score"]))
    res = {}
    for ds, per in out.items():
        res[ds] = {}
        for m, pts in per.items():
            a = np.array(pts)
            levels = np.unique(a[:, 0])
            res[ds][m] = (levels, np.array([a[a[:, 0] == s, 1].mean() for s in levels]))
    return res


def _csv_text(table: list[dict]) -> str:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def markdown_table(table: list[dict], key: str = "auc") -> str:
    """AUC per dataset (rows) and method (columns), plus m accuracy of auto.

    ``key="auc_published"`` gives the AUCs under the published scoring, for the datasets
    and methods whose task files hold the unfiltered lifetimes ("" elsewhere).
    """
    if key != "auc":
        table = [r for r in table if np.isfinite(r[key])]
        if not table:
            return ""
    dss = list(dict.fromkeys(r["dataset"] for r in table))
    methods = list(dict.fromkeys(r["method"] for r in table))
    cell = {(r["dataset"], r["method"]): r for r in table}
    det_key = "m_accuracy_detectable" + ("_published" if key == "auc_published" else "")
    lines = ["| dataset | " + " | ".join(methods) + " | auto m correct | ... where detectable |",
             "|---|" + "---|" * (len(methods) + 2)]
    for ds in dss:
        vals = [f"{cell[(ds, m)][key]:.2f}" if (ds, m) in cell else "" for m in methods]
        acc = det = ""
        if (ds, "auto") in cell:
            acc = f"{cell[(ds, 'auto')]['m_accuracy']:.0%}"
            d = cell[(ds, "auto")].get(det_key, float("nan"))
            det = "" if np.isnan(d) else f"{d:.0%}"
        lines.append(f"| {ds} | " + " | ".join(vals) + f" | {acc} | {det} |")
    times = {m: np.mean([r["time_s"] for r in table if r["method"] == m]) for m in methods}
    lines.append("| time per run (s) | " + " | ".join(f"{times[m]:.1f}" for m in methods) + " | | |")
    return "\n".join(lines) + "\n"


def comparison_table(table: list[dict]) -> str:
    """Best AUC per family next to the published figures (datasets with published figures).

    The comparison is made with the published scoring (all-or-nothing filter,
    ``auc_published``); the AUC with this package's filter (the issue's protocol) is shown
    beside it. Tasks stored without the unfiltered lifetimes give "–" (run ``--update``).
    """
    rows = [r for r in table if r["dataset"] in PUBLISHED]
    lines = ["| dataset | family | published | this package, published scoring (best setting) | difference "
             "| this package, package filter (best setting) |", "|---|---|---|---|---|---|"]
    for ds, fams in PUBLISHED.items():
        for fam, (lo, hi) in fams.items():
            mine = [r for r in rows if r["dataset"] == ds and FAMILY.get(r["method"]) == fam]
            if not mine:
                continue
            pub = f"{lo:.2f}" if lo == hi else f"{lo:.2f}–{hi:.2f}"
            a, m = max((r["auc"], r["method"]) for r in mine)
            scored = [(r["auc_published"], r["method"]) for r in mine if np.isfinite(r["auc_published"])]
            if scored:
                b, mb = max(scored)
                diff = 0.0 if lo <= b <= hi else (b - hi if b > hi else b - lo)
                ours, d = f"{b:.2f} ({mb})", f"{diff:+.2f}"
            else:
                ours = d = "–"
            lines.append(f"| {ds} | {fam} | {pub} | {ours} | {d} | {a:.2f} ({m}) |")
    return "\n".join(lines) + "\n"


def plot_curves(rows: list[dict], path) -> None:
    """Score against σ, one panel per dataset, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cur = curves(rows)
    dss = [d for d in _display_order() if d in cur] + [d for d in cur if d not in _display_order()]
    fig, axes = plt.subplots(1, len(dss), figsize=(3.6 * len(dss), 3.4), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    names = [m for m in list(METHODS) + ["auto", "auto_m"] if any(m in cur[d] for d in dss)]
    for ax, ds in zip(axes[0], dss):
        for i, m in enumerate(names):
            if m not in cur[ds]:
                continue
            s, y = cur[ds][m]
            style = dict(lw=2.5, color="k") if m == "auto" else dict(lw=1.2, color=cmap(i % 10))
            if m == "auto_m":
                style = dict(lw=1.5, color="k", ls="--")
            ax.plot(s, y, marker=".", label=m, **style)
        dim, m_true = TRUTH.get(ds, (1, 0))
        ax.set_title(f"{ds} ({m_true} in H{dim})" if m_true else f"{ds} (no loop)")
        ax.set_xlabel("noise σ")
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].set_ylabel("detection score (blob: fraction with 0 loops)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def machine() -> str:
    import os

    return f"{platform.node() or 'unknown'} ({platform.machine()}, {os.cpu_count()} CPUs, {platform.system()})"


def aggregate(task_files, out_dir, *, command: str = "") -> list[dict]:
    """Write ``runs.csv``, ``auc.csv``, ``auc.md``, ``scores.png`` and ``meta.json`` into ``out_dir``."""
    task_files = sorted(task_files)
    if not task_files:
        raise InputError(f"no task files to aggregate in {out_dir}; run tasks first (topoembed benchmark --task ...)")
    rows = load_rows(task_files)
    table = auc_table(rows)
    out = Path(out_dir)
    io.write_text(out / "runs.csv", _csv_text(rows))
    io.write_text(out / "auc.csv", _csv_text(table))
    md = ("## AUC per dataset and method (the package's death/birth filter)\n\n" + markdown_table(table)
          + "\n## Best setting per family vs the published figures\n\n" + comparison_table(table))
    published = markdown_table(table, key="auc_published")
    if published:
        md += ("\n## AUC under the published scoring (all-or-nothing filter; settings that store the "
               "unfiltered lifetimes)\n\n" + published)
    io.write_text(out / "auc.md", md)
    plot_curves(rows, out / "scores.png")
    walls = []
    for f in task_files:
        with open(f) as fh:
            walls.append(json.load(fh)["wall_s"])
    io.write_json(out / "meta.json", {"command": command, "machine": machine(), "version": __version__,
                                     "n_tasks": len(task_files), "task_wall_s_total": float(np.sum(walls)),
                                     "python": platform.python_version()})
    return table


# ---------------------------------------------------------------- command line
def _selected(path: Path, datasets_, seeds) -> bool:
    """Whether a task file (named by :func:`task_filename`) is in the given datasets and seeds."""
    match = re.fullmatch(r"(.+)_s([0-9.]+)_seed([0-9]+)", Path(path).stem)
    if match is None:
        return False
    ds, seed = match.group(1), int(match.group(3))
    return (not datasets_ or ds in datasets_) and (seeds is None or seed in seeds)


def _cmd(args) -> int:
    command = ("topoembed benchmark " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["benchmark"]
               else "python benchmarks/noise_benchmark.py " + " ".join(sys.argv[1:])
               if sys.argv[0].endswith("noise_benchmark.py") else "")
    if args.n < 10 or args.d < 3:
        raise InputError(f"--n {args.n} / --d {args.d} too small; use n >= 10 and d >= 3")
    if args.jobs < 1:
        raise InputError(f"--jobs {args.jobs} must be >= 1")
    if args.task:
        ds, sigma, seed = args.task
        if ds not in TRUTH:
            raise InputError(f"unknown dataset {ds!r}; choose one of {list(TRUTH)}")
        try:
            sigma, seed = float(sigma), int(seed)
        except ValueError:
            raise InputError(f"--task {ds} {sigma} {seed}: sigma must be a number and seed an integer") from None
        if not np.isfinite(sigma) or sigma < 0:
            raise InputError(f"sigma={sigma} must be a finite number >= 0")
        result = run_task(ds, sigma, seed, n=args.n, d=args.d, h1_only=args.h1_only)
        io.write_json(args.out, result)
        sys.stdout.write(f"task {ds} σ={sigma} seed={seed}: {result['wall_s']:.1f} s -> {args.out}\n")
        return 0
    out = Path(args.out) if args.out is not None else None  # --list alone writes nothing
    for ds in args.datasets or ():
        if ds not in TRUTH:
            raise InputError(f"unknown dataset {ds!r}; choose one of {list(TRUTH)}")
    if args.update:
        files = sorted((out / "tasks").glob("*.json"))
        # --datasets / --seeds narrow which task files are brought up to date (all are aggregated)
        chosen = [f for f in files if _selected(f, args.datasets, args.seeds)]
        changed = update_tasks(chosen, jobs=args.jobs, progress=not args.quiet)
        sys.stdout.write(f"{len(changed)} of {len(chosen)} task files updated\n")
        table = aggregate(files, out, command=command)
        sys.stdout.write(markdown_table(table))
        return 0
    if args.aggregate is not None:
        files = [Path(f) for f in args.aggregate] or sorted((out / "tasks").glob("*.json"))
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise InputError(f"task files not found: {missing[:3]}; run them with topoembed benchmark --task")
        table = aggregate(files, out, command=command)
        sys.stdout.write(markdown_table(table))
        return 0
    tasks = grid(args.quick, args.datasets, args.seeds, args.sigma_step)
    if args.max_sigma is not None:
        tasks = [t for t in tasks if t[1] <= args.max_sigma + 1e-12]
    # slow ties: σ = 0 runs (equally spaced points) last, so that a cut-off run has the rest
    tasks.sort(key=lambda t: (t[1] == 0.0, ))
    if args.list:
        sys.stdout.write("".join(f"{d} {s:.4f} {seed}\n" for d, s, seed in tasks))
        return 0
    files = run_grid(tasks, out, n=args.n, d=args.d, jobs=args.jobs, progress=not args.quiet, h1_only=args.h1_only)
    table = aggregate([f for f in files if f.exists()], out, command=command)
    sys.stdout.write(markdown_table(table))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The harness's options (``topoembed benchmark`` forwards its arguments here)."""
    p = argparse.ArgumentParser(prog="topoembed benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="output folder (grid, --aggregate) or task .json (--task); "
                                              "required but with --list")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="coarse grid: every 4th σ, seed 0, circle/linked_circles/eyeglasses/blob")
    mode.add_argument("--task", nargs=3, metavar=("DATASET", "SIGMA", "SEED"), help="run one task into --out")
    mode.add_argument("--aggregate", nargs="*", metavar="TASK_JSON", default=None,
                      help="only aggregate these task files (default: OUT/tasks/*.json) into OUT")
    mode.add_argument("--update", action="store_true",
                      help="add the settings the current code needs to OUT/tasks/*.json (others are kept), "
                           "then aggregate")
    p.add_argument("--datasets", nargs="+", default=None, help=f"subset of {list(DATASETS)}")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default 0 1 2; --quick: 0)")
    p.add_argument("--sigma-step", type=int, default=None, help="use every N-th σ of the published grid")
    p.add_argument("--max-sigma", type=float, default=None, help="drop σ above this value")
    p.add_argument("--n", type=int, default=1000, help="points per dataset (default 1000, as published)")
    p.add_argument("--d", type=int, default=50, help="ambient dimension (default 50)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--h1-only", action="store_true",
                   help="compute H1 only: the sphere is then checked for false H1 loops (rows sphere_h1) "
                        "but not scored for its void (H2 takes minutes per setting at n = 1,000)")
    p.add_argument("--list", action="store_true", help="print the tasks of the grid and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    """Run the harness with command-line arguments ``argv`` (default: ``sys.argv[1:]``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None and not args.list:  # listing the grid's tasks writes nothing
        parser.error("the following arguments are required: --out")
    return _cmd(args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        sys.exit(main())
    except InputError as exc:
        sys.stderr.write(f"noise_benchmark: error: {exc}\n")
        sys.exit(2)
