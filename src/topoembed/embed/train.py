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

__all__ = ["resolve_device", "make_generator", "train", "SGD", "cpu_threads", "OPTIMIZERS", "SCHEDULES", "lr_factor", "CPU_THREADS"]

#: torch threads used on CPU during training when the caller does not say (set for the loop,
#: restored after it). Small steps stay on one thread: OpenMP's start-up and synchronisation
#: cost dominates them (a 1,024-edge contrastive batch took 1.5 ms on one thread, 60 ms on two
#: on a shared 2-core machine).
CPU_THREADS = 1
#: Work per step (pair evaluations) from which :func:`cpu_threads` uses every thread it may: NEG
#: (16 negatives) on 26,625 IPC cells trained in 10.2 s on 2 threads vs 15.9 s on 1, InfoNCE in
#: 62 s vs 95 s; on 10,000 cells 6.4 vs 8.4 s and 31 vs 37 s; on 2,000 cells (42,000 pairs a
#: NEG step) the same on both (benchmarks/EMBED.md, sixth pass).
PARALLEL_MIN_WORK = 2 ** 17


def cpu_threads(work_per_step: int) -> int:
    """Threads for a CPU training loop whose steps evaluate ``work_per_step`` pairs: 1 below
    :data:`PARALLEL_MIN_WORK`, else every thread this process may use (its share of the CPUs in a
    worker pool, :func:`topoembed._parallel.thread_budget`), at most torch's own setting
    (``torch.set_num_threads`` caps it)."""
    if work_per_step < PARALLEL_MIN_WORK:
        return 1
    from .._parallel import thread_budget

    return max(1, min(thread_budget(), torch.get_num_threads()))


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
          verbose: bool = True, desc: str = "embedding", num_threads: int | None = None,
          replacement: bool = False) -> list[float]:
    """Optimise ``params`` (tensors, or torch parameter-group dicts) for ``n_epochs`` epochs over ``n_items`` items; returns the mean
    batch loss of each epoch.

    ``batch_loss(idx, generator, progress)``: idx a (≤ batch_size,) int64 tensor of item
    indices on the device, progress = epoch / n_epochs. It returns a scalar tensor; one
    without grad means that ``batch_loss`` has filled the parameters' ``.grad`` itself (an
    analytic gradient), so the loop only steps.
    ``num_threads``: torch threads on CPU during the loop (default :data:`CPU_THREADS`).
    ``replacement=True``: each batch draws its items uniformly with replacement instead of
    cutting an epoch's permutation (an item is then seen Poisson(1) times per epoch): for losses
    that draw their own items (weighted edges), which would waste the permutation (15 ms an
    epoch for 569,548 edges). Uniform draws of a binary kNN graph's edges lost recall (NEG on
    26,625 IPC cells: 0.137 vs 0.145 with a permutation; benchmarks/EMBED.md, sixth pass).
    """
    with _threads(generator.device, num_threads or CPU_THREADS):
        return _train(params, batch_loss, n_items, n_epochs=n_epochs, batch_size=batch_size, generator=generator,
                      optimizer=optimizer, lr=lr, schedule=schedule, momentum=momentum, weight_decay=weight_decay,
                      verbose=verbose, desc=desc, replacement=replacement)


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


class SGD:
    """Stochastic gradient descent with torch.optim.SGD's update (momentum μ, weight decay λ,
    no dampening): d = g + λ·p; b = d at the first step, then b = μ·b + d; p ← p − lr·b.

    Written here because the first ``torch.optim`` optimiser of a process imports
    ``torch._dynamo`` (about 3 s with torch 2.13, a tenth of a NEG run on 26,625 cells), and
    its per-step bookkeeping cost 0.24 ms of a 12 ms step (benchmarks/EMBED.md, sixth pass).
    ``param_groups`` are dicts with "params" and "lr", as torch's.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.param_groups = [{"lr": lr, **g} for g in params]
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self._buffers: dict[int, torch.Tensor] = {}

    def zero_grad(self, set_to_none: bool = True):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad if not self.weight_decay else p.grad.add(p, alpha=self.weight_decay)
                if self.momentum:
                    buf = self._buffers.get(id(p))
                    if buf is None:
                        buf = self._buffers[id(p)] = d.clone()
                    else:
                        buf.mul_(self.momentum).add_(d)
                    d = buf
                p.add_(d, alpha=-group["lr"])


def _train(params, batch_loss, n_items, *, n_epochs, batch_size, generator, optimizer, lr, schedule, momentum,
           weight_decay, verbose, desc, replacement=False):
    params = list(params)
    if not (params and isinstance(params[0], dict)):
        params = [{"params": [p for p in params if p.requires_grad]}]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer={optimizer!r} must be one of {OPTIMIZERS}")
    lr_factor(schedule, 0.0)  # an unknown schedule fails before the first epoch
    base_lr = [group["lr"] for group in opt.param_groups]
    device = generator.device
    n_batches = max(1, math.ceil(n_items / batch_size))
    total = max(1, n_epochs * n_batches)  # n_epochs = 0: the start is returned as it is
    step = 0
    history: list[float] = []
    bar = Progress(n_epochs, desc, "epoch", enabled=verbose, log_every=max(1, n_epochs // 10))
    for epoch in range(n_epochs):
        perm = None if replacement else torch.randperm(n_items, generator=generator, device=device)
        running = torch.zeros((), device=device)
        progress = epoch / max(n_epochs, 1)
        for b in range(n_batches):
            if replacement:
                size = min(batch_size, n_items - b * batch_size)
                idx = torch.randint(n_items, (size,), generator=generator, device=device)
            else:
                idx = perm[b * batch_size:(b + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(idx, generator, progress)
            if loss.requires_grad:
                loss.backward()
            factor = lr_factor(schedule, step / total)  # the schedule at this step (torch's LambdaLR's)
            for group, lr0 in zip(opt.param_groups, base_lr):
                group["lr"] = lr0 * factor
            opt.step()
            step += 1
            running += loss.detach()
        history.append(float(running) / n_batches)
        if not np.isfinite(history[-1]):
            raise FloatingPointError(f"the loss became {history[-1]} in epoch {epoch}; lower the learning rate")
        bar.step(f"loss {history[-1]:.4g}")
    bar.close()
    log.debug("%s: final epoch loss %.5g after %d epochs", desc, history[-1] if history else float("nan"), n_epochs)
    return history
