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
