"""benchmarks/auto_variants.py re-scores selection rules on stored task files; it must
agree with the benchmark's own aggregation for the package rule, and no rule may beat
the ceiling that is told the true number of loops."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import noise_benchmark as benchmark

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "benchmarks" / "results" / "three_seeds" / "tasks"


def _module():
    spec = importlib.util.spec_from_file_location("auto_variants", ROOT / "benchmarks" / "auto_variants.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def eyeglasses_and_blob():
    files = sorted(TASKS.glob("eyeglasses_*.json")) + sorted(TASKS.glob("blob_*seed0.json"))
    if not files:
        pytest.skip(f"no committed task files in {TASKS}")
    return files


def test_package_rule_matches_the_benchmark_tables(eyeglasses_and_blob):
    av = _module()
    tasks = av.load_files(eyeglasses_and_blob)
    best = av.best_fixed(tasks)
    res = av.evaluate(tasks, av.GRID, av.VARIANTS["auto without the surface (support ties: smallest k)"][1], best)
    # the benchmark's own tables, from the same files with the current rules
    table = {(r["dataset"], r["method"]): r for r in benchmark.auc_table(benchmark.load_rows(eyeglasses_and_blob))}
    for ds in ("eyeglasses", "blob"):
        assert res[ds][0] == pytest.approx(table[(ds, "auto")]["auc"], abs=1e-12)
    assert res["eyeglasses"][1] == pytest.approx(table[("eyeglasses", "auto")]["m_accuracy_detectable"])
    assert best["eyeglasses"] == ("le_k15_p2", pytest.approx(table[("eyeglasses", "le_k15_p2")]["auc"]))


def test_no_rule_beats_the_ceiling(eyeglasses_and_blob):
    av = _module()
    tasks = [t for t in av.load_files(eyeglasses_and_blob) if t["dataset"] == "eyeglasses"]
    best = av.best_fixed(tasks)
    wide = av.GRID + [av.LE, av.EUCLID]
    top = av.ceiling(tasks, wide)["eyeglasses"][0]
    assert top >= av.ceiling(tasks, av.GRID)["eyeglasses"][0]
    for name, (keys, choose) in av.VARIANTS.items():
        assert av.evaluate(tasks, keys, choose, best)["eyeglasses"][0] <= top + 1e-12, name


def test_clear_counts_keeps_every_count_that_passes_both_thresholds():
    av = _module()
    # lifetimes 1.0, 0.4, 0.09 at scale 2: s_1 = 0.6, s_2 = 0.775, s_3 = 1 but p_3 < 0.05 * 2
    summary = {"life1": [1.0, 0.4, 0.09], "thresh": 2.0, "scale": 2.0}
    clear = av.clear_counts(summary)
    assert sorted(clear) == [1, 2] and clear[1] == pytest.approx(0.6) and clear[2] == pytest.approx(0.775)
    assert np.isclose(av.s_at(summary, 2), 0.775)
