"""Where the dense linear algebra of the loop stages runs: the CPU (numpy/scipy) or a CUDA GPU (torch).

``"cuda"`` / ``"cuda:N"`` need torch with CUDA and fail early otherwise; ``"auto"`` (the
pipeline's default) takes CUDA when it is there, else the CPU. ``"cpu"``, and ``"auto"`` on a
machine without an NVIDIA driver, never import torch (its import costs about 1.5 s). Only
the exact kNN candidate search (:mod:`topoembed.graph`) and the dense eigendecomposition
(:mod:`topoembed.spectral`) move; every result is brought back to numpy, and the kNN
candidates are re-ranked on the CPU, so the graph is the same on either device.
"""
from __future__ import annotations

import os
import sys

from ._validate import InputError

__all__ = ["resolve", "on_cpu", "torch_installed", "TORCH_MISSING"]

#: What to say when the embeddings are asked for without PyTorch (the optional `embed` extra).
TORCH_MISSING = ("the embeddings need PyTorch, which is not installed: on a laptop or a CPU node "
                 "pip install torch --index-url https://download.pytorch.org/whl/cpu (about 200 MB), on a GPU node "
                 "pip install torch (README: Install)")


def torch_installed() -> bool:
    """Whether PyTorch can be imported (without importing it: that takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def resolve(device) -> str:
    """"cpu" or a CUDA device string; InputError if CUDA is asked for but missing."""
    if device in (None, "cpu"):
        return "cpu"
    if not isinstance(device, str) or not (device == "auto" or device == "cuda" or device.startswith("cuda:")):
        raise InputError(f"device={device!r} must be 'cpu', 'auto', 'cuda' or 'cuda:N'")
    if device == "auto" and not os.path.exists("/proc/driver/nvidia/version") and sys.platform.startswith("linux"):
        return "cpu"  # no NVIDIA driver: no CUDA, and no need to import torch to learn that
    try:
        import torch
    except ImportError:  # torch is optional (the `embed` extra): the loop stages run on the CPU without it
        if device == "auto":
            return "cpu"
        raise InputError(f"device={device!r} needs PyTorch with CUDA, which is not installed; use device='cpu', or "
                         "install torch for your CUDA version (README: Install)") from None
    if not torch.cuda.is_available():
        if device == "auto":
            return "cpu"
        raise InputError(f"device={device!r} was requested but CUDA is not available here; use device='cpu' or 'auto'")
    return "cuda" if device == "auto" else device


def on_cpu(device) -> bool:
    return resolve(device) == "cpu"
