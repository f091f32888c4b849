"""The one training loop of the embedding stage, and device/seed handling.

``train(params, batch_loss, n_items, ...)`` runs minibatch optimisation for any loss: each
epoch permutes the n_items training items (kNN edges, points or random pairs) on the
device with a seeded ``torch.Generator``, cuts them into batches, and calls
``batch_loss(idx, generator, progress)`` which returns a scalar tensor (the loss samples
its own negatives with the same generator). Adam or SGD, a learning-rate schedule, a
progress per epoch (a bar on a terminal, else a log line every tenth of the epochs). Nothing is copied between host and device inside the loop; the
running loss is read back once per epoch.
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Callable, Iterable

import numpy as np
import torch

from .._progress import Progress

log = logging.getLogger(__name__)

__all__ = ["resolve_device", "make_generator", "train", "OPTIMIZERS", "SCHEDULES", "lr_factor", "CPU_THREADS"]

#: torch threads used on CPU during training (set for the loop, restored after it). The
#: batches are small, so OpenMP's start-up and synchronisation cost dominates: on a shared
#: 2-core machine one thread was 40x faster per step than two (1.5 ms vs 60 ms for a
#: 1024-edge contrastive batch), and 7x faster for a whole 10,000-cell InfoNCE run.
CPU_THREADS = 1

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("linear", "cosine", "constant")


def resolve_device(device="auto") -> torch.device:
    """``"auto"``: cuda if available, then mps, then cpu; otherwise the named device."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from .._validate import InputError
        raise InputError(f"device={device!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """Seed torch's global RNG (for parameter initialisation) and return a device generator."""
    torch.manual_seed(int(seed))
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def lr_factor(schedule: str, progress: float) -> float:
    """Learning-rate multiplier at training progress in [0, 1]."""
    if schedule == "linear":
        return max(1.0 - progress, 0.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"schedule={schedule!r} must be one of {SCHEDULES}")


def train(params: Iterable, batch_loss: Callable, n_items: int, *, n_epochs: int,
          batch_size: int, generator: torch.Generator, optimizer: str = "adam", lr: float = 1e-3,
          schedule: str = "linear", momentum: float = 0.9, weight_decay: float = 0.0,
          verbose: bool = True, desc: str = "embedding", num_threads: int | None = None) -> list[float]:
    """Optimise ``params`` (tensors, or torch parameter-group dicts) for ``n_epochs`` epochs over ``n_items`` items; returns the mean
    batch loss of each epoch.

    ``batch_loss(idx, generator, progress)``: idx a (≤ batch_size,) int64 tensor of item
    indices on the device, progress = epoch / n_epochs. It returns a scalar tensor; one
    without grad means that ``batch_loss`` has filled the parameters' ``.grad`` itself (an
    analytic gradient), so the loop only steps.
    ``num_threads``: torch threads on CPU during the loop (default :data:`CPU_THREADS`).
    """
    with _threads(generator.device, num_threads or CPU_THREADS):
        return _train(params, batch_loss, n_items, n_epochs=n_epochs, batch_size=batch_size, generator=generator,
                      optimizer=optimizer, lr=lr, schedule=schedule, momentum=momentum, weight_decay=weight_decay,
                      verbose=verbose, desc=desc)


@contextlib.contextmanager
def _threads(device: torch.device, n: int):
    """torch's intra-op thread count set to n on CPU for the block (restored after it)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(params, batch_loss, n_items, *, n_epochs, batch_size, generator, optimizer, lr, schedule, momentum,
           weight_decay, verbose, desc):
    params = list(params)
    if not (params and isinstance(params[0], dict)):
        params = [p for p in params if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer={optimizer!r} must be one of {OPTIMIZERS}")
    device = generator.device
    n_batches = max(1, math.ceil(n_items / batch_size))
    total = n_epochs * n_batches
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(schedule, step / total))
    history: list[float] = []
    bar = Progress(n_epochs, desc, "epoch", enabled=verbose, log_every=max(1, n_epochs // 10))
    for epoch in range(n_epochs):
        perm = torch.randperm(n_items, generator=generator, device=device)
        running = torch.zeros((), device=device)
        progress = epoch / max(n_epochs, 1)
        for b in range(n_batches):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(idx, generator, progress)
            if loss.requires_grad:
                loss.backward()
            opt.step()
            sched.step()
            running += loss.detach()
        history.append(float(running) / n_batches)
        if not np.isfinite(history[-1]):
            raise FloatingPointError(f"the loss became {history[-1]} in epoch {epoch}; lower the learning rate")
        bar.step(f"loss {history[-1]:.4g}")
    bar.close()
    log.debug("%s: final epoch loss %.5g after %d epochs", desc, history[-1] if history else float("nan"), n_epochs)
    return history
