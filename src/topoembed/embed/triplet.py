"""The triplet loss with semi-hard or hard in-batch mining: :class:`TripletEmbedding`.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from .._validate import InputError
from . import losses as L
from .models import mlp
from .sampling import far_thresholds, n_far_points
from .train import train
from .base import _Base, _check_int

log = logging.getLogger(__name__)


class TripletEmbedding(_Base):
    """Triplet-loss embedding with in-batch mining (see :func:`topoembed.embed.losses.triplet_loss`).

    Each epoch visits every point once as an anchor a. Positive p: a random kNN neighbour
    of a (unsupervised) or a random point with a's label (``fit(X, y)``). Negative: mined
    in the batch among the other anchors and positives that are valid negatives of a:
    another label, or (unsupervised) one of the ``n_far`` points farthest from a in the data.
    ``mining``: "semihard" (default) or "hard". Parametric by default (MLP encoder), so
    ``transform`` maps new points.
    """

    _param_names = ("n_components", "k", "margin", "mining", "n_far", "parametric", "hidden", "init",
                    "n_epochs", "batch_size", "optimizer", "lr", "schedule", "device", "seed", "verbose")

    def __init__(self, n_components=2, k=15, margin=1.0, mining="semihard", n_far=0.5, parametric=True,
                 hidden=(128, 128), init="pca", n_epochs=100, batch_size=256, optimizer="adam", lr=1e-3,
                 schedule="cosine", device="auto", seed=0, verbose=True):
        self.n_components, self.k, self.margin, self.mining, self.n_far = n_components, k, margin, mining, n_far
        self.parametric, self.hidden, self.init, self.n_epochs = parametric, hidden, init, n_epochs
        self.batch_size, self.optimizer, self.lr, self.schedule = batch_size, optimizer, lr, schedule
        self.device, self.seed, self.verbose = device, seed, verbose

    def fit(self, X, y=None):
        """Fit on points X (n, p); with labels y (n,) positives/negatives come from the labels."""
        if self.mining not in ("semihard", "hard"):
            raise InputError(f"mining={self.mining!r} must be 'semihard' or 'hard'")
        X, Xt = self._prepare(X, min_points=max(4, self.k + 1))
        n = X.shape[0]
        if self.batch_size < 2:
            raise InputError("batch_size must be >= 2 for in-batch negative mining")
        g, dev = self.generator_, self.device_
        if y is not None:
            y = np.asarray(y)
            if y.shape != (n,):
                raise InputError(f"y has shape {y.shape}; expected ({n},)")
            codes, lab = np.unique(y, return_inverse=True)
            if len(codes) < 2:
                raise InputError("y has a single label; the triplet loss needs at least two classes")
            lab_t = torch.as_tensor(lab, device=dev)
            order = torch.argsort(lab_t, stable=True)
            counts = torch.bincount(lab_t)
            starts = torch.cumsum(counts, 0) - counts

            def positives(a, gen):
                c = lab_t[a]
                r = (torch.rand(len(a), generator=gen, device=dev) * counts[c]).long()
                return order[starts[c] + r]

            def valid_neg(a, cand):
                return lab_t[a][:, None] != lab_t[cand][None, :]
        else:
            from ..graph import knn_search
            nb, _ = knn_search(X, _check_int(self.k, "k"), progress=bool(self.verbose))
            nb_t = torch.as_tensor(nb.astype(np.int64), device=dev)
            tau = far_thresholds(Xt, n_far_points(self.n_far, n))

            def positives(a, gen):
                col = torch.randint(nb_t.shape[1], (len(a),), generator=gen, device=dev)
                return nb_t[a, col]

            def valid_neg(a, cand):
                return torch.cdist(Xt[a], Xt[cand]) >= tau[a][:, None]

        if self.parametric:
            self.model_ = mlp(X.shape[1], self.n_components, self.hidden).to(dev)
            params = list(self.model_.parameters())
            rows = lambda idx: self.model_(Xt[idx])  # noqa: E731
        else:
            table = self._init_table(X, None, self.init)
            params = [table]
            rows = lambda idx: table[idx]  # noqa: E731

        def batch_loss(a, gen, progress):
            p = positives(a, gen)
            cand = torch.cat([a, p])
            z = rows(cand)
            b = len(a)
            d_ap = torch.linalg.vector_norm(z[:b] - z[b:], dim=1)
            d_cand = torch.cdist(z[:b], z)
            pick = L.mine_negatives(d_ap, d_cand, valid_neg(a, cand), self.margin, self.mining)
            has = pick >= 0
            d_an = torch.gather(d_cand, 1, pick.clamp_min(0)[:, None]).squeeze(1)
            per = L.triplet_loss(d_ap, d_an, self.margin) * has
            return per.sum() / has.sum().clamp_min(1)

        self.history_ = train(params, batch_loss, n, n_epochs=self.n_epochs, batch_size=self.batch_size,
                              generator=g, optimizer=self.optimizer, lr=self.lr, schedule=self.schedule,
                              verbose=self.verbose, desc=f"triplet ({self.mining})")
        with torch.no_grad():
            Y = self.model_(Xt) if self.parametric else params[0]
        return self._finish(Y, X)
