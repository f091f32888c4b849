"""SCAN-style min–max self-supervised clustering (Van Gansbeke et al. 2020): :class:`SCANClustering`.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from .._validate import InputError
from . import losses as L
from .models import mlp
from .sampling import far_thresholds, n_far_points, sample_far
from .train import make_generator, train
from .base import _Base, _check_int

log = logging.getLogger(__name__)


class SCANClustering(_Base):
    """Min–max self-supervised clustering with a softmax head (see
    :func:`topoembed.embed.losses.scan_loss`).

    ψ = softmax(MLP(x)) ∈ Δ^C. For each anchor in a batch, all its ``k`` nearest
    neighbours N_x and ``n_far_samples`` points drawn uniformly among its ``n_far``
    farthest points F_x enter the loss. ``n_restarts`` initialisations (seeds seed,
    seed + 1, …) are trained; the one with the lowest loss on all points (all neighbours,
    a fixed seeded far sample) is kept.
    """

    _param_names = ("n_classes", "k", "n_far", "n_far_samples", "entropy_weight", "n_restarts", "hidden",
                    "n_epochs", "batch_size", "optimizer", "lr", "schedule", "device", "seed", "verbose")
    parametric = True
    n_components = 1

    def __init__(self, n_classes=10, k=10, n_far=0.9, n_far_samples=10, entropy_weight=2.0, n_restarts=5,
                 hidden=(64,), n_epochs=60, batch_size=128, optimizer="adam", lr=3e-3, schedule="cosine",
                 device="auto", seed=0, verbose=True):
        self.n_classes, self.k, self.n_far, self.n_far_samples = n_classes, k, n_far, n_far_samples
        self.entropy_weight, self.n_restarts, self.hidden = entropy_weight, n_restarts, hidden
        self.n_epochs, self.batch_size, self.optimizer, self.lr = n_epochs, batch_size, optimizer, lr
        self.schedule, self.device, self.seed, self.verbose = schedule, device, seed, verbose

    def fit(self, X, y=None):
        _check_int(self.n_classes, "n_classes", 2)
        _check_int(self.n_restarts, "n_restarts")
        n_points = np.shape(X)[0] if np.ndim(X) == 2 else 0
        if n_points and self.n_classes > n_points:
            raise InputError(f"n_classes={self.n_classes} exceeds the number of points ({n_points}); lower n_classes")
        X, Xt = self._prepare(X, min_points=max(self.n_classes, self.k + 2))
        n, dev = X.shape[0], self.device_
        from ..graph import knn_search
        nb, _ = knn_search(X, _check_int(self.k, "k"), progress=bool(self.verbose))
        nb_t = torch.as_tensor(nb.astype(np.int64), device=dev)
        tau = far_thresholds(Xt, n_far_points(self.n_far, n))
        f = _check_int(self.n_far_samples, "n_far_samples")

        def full_loss(model, gen):
            with torch.no_grad():
                P = torch.softmax(model(Xt), dim=1)
                far = sample_far(Xt, torch.arange(n, device=dev), tau, f, gen)
                return float(L.scan_loss(P, P[nb_t], P[far], self.entropy_weight)[0])

        best = None
        self.restart_losses_ = []
        for r in range(self.n_restarts):
            gen = make_generator(self.seed + r, dev)
            model = mlp(X.shape[1], self.n_classes, self.hidden).to(dev)

            def batch_loss(a, g, progress, model=model):
                far = sample_far(Xt, a, tau, f, g)
                P = torch.softmax(model(Xt[torch.cat([a, nb_t[a].reshape(-1), far.reshape(-1)])]), dim=1)
                b, k = len(a), nb_t.shape[1]
                return L.scan_loss(P[:b], P[b:b + b * k].reshape(b, k, -1), P[b + b * k:].reshape(b, f, -1),
                                   self.entropy_weight)[0]

            train(model.parameters(), batch_loss, n, n_epochs=self.n_epochs, batch_size=self.batch_size,
                  generator=gen, optimizer=self.optimizer, lr=self.lr, schedule=self.schedule,
                  verbose=self.verbose, desc=f"SCAN restart {r + 1}/{self.n_restarts}")
            loss = full_loss(model, make_generator(self.seed, dev))
            self.restart_losses_.append(loss)
            if best is None or loss < best[0]:
                best = (loss, model)
        self.model_ = best[1]
        self.loss_ = best[0]
        with torch.no_grad():
            P = torch.softmax(self.model_(Xt), dim=1)
        self.probabilities_ = P.cpu().numpy().astype(np.float64)
        self.labels_ = self.probabilities_.argmax(1)
        self.embedding_ = self.probabilities_
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.transform(X)

    def predict(self, X) -> np.ndarray:
        return self.transform(X).argmax(1)

    def _encode(self, Xt):
        return torch.softmax(self.model_(Xt), dim=1)
