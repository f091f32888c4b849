import os
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

# the benchmark harnesses live beside the package, in benchmarks/ (tests import noise_benchmark from there)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IPC_H5AD = SHARED_DATA / "neural_ipc_scvi.h5ad"


@pytest.fixture
def ipc_path():
    if not IPC_H5AD.exists():
        pytest.skip(f"real data not found at {IPC_H5AD} (the ../shared folder beside the repo); "
                    "this test needs neural_ipc_scvi.h5ad")
    return IPC_H5AD


#: ``pytest -n auto`` starts at most this many workers: each imports scanpy and PyTorch (about
#: 0.5 GB), and some tests start processes of their own, so one worker per core on a many-core
#: machine would crowd its memory without finishing sooner. PYTEST_XDIST_AUTO_NUM_WORKERS overrides.
MAX_AUTO_WORKERS = 4


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    """The number of workers ``-n auto`` starts: the cores this process may use, at most
    :data:`MAX_AUTO_WORKERS` (None defers to the environment variable, where set)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_AUTO_WORKERS))


TORCH_MISSING = ("PyTorch is not installed, so the embeddings are not tested: install the CPU build "
                 "(pip install torch --index-url https://download.pytorch.org/whl/cpu) and run again")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``torch`` skip with the install line where PyTorch is absent."""
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    skip = pytest.mark.skip(reason=TORCH_MISSING)
    for item in items:
        if "torch" in item.keywords:
            item.add_marker(skip)
