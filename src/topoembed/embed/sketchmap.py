"""Sketch-map, classic and symmetrised (Ceriotti et al. 2011; as in EncoderMap): :class:`SketchMap`
and the choice of its σ from the distance histogram (:func:`choose_sigma`).
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from .._validate import InputError
from . import losses as L
from .models import AutoEncoder
from .train import train
from .base import _Base

log = logging.getLogger(__name__)


def choose_sigma(R: np.ndarray, bins: int = 100, max_pairs: int = 200_000, seed: int = 0) -> float:
    """σ_h for sketch-map from the histogram of the high-dimensional distances R.

    Off-diagonal finite distances (a seeded sample of at most ``max_pairs``) are
    histogrammed on [0, q99] and smoothed (Gaussian, 2 bins). σ_h is the first local
    minimum after the first peak that drops below 80 % of that peak (the gap between the
    within-structure and between-structure distances); without such a gap it is the
    location of the first peak (the dominant distance scale).
    """
    R = np.asarray(R, dtype=np.float64)
    n = R.shape[0]
    rng = np.random.default_rng(seed)
    if n * (n - 1) > max_pairs:
        i = rng.integers(0, n, max_pairs)
        j = (i + rng.integers(1, n, max_pairs)) % n
        vals = R[i, j]
    else:
        vals = R[~np.eye(n, dtype=bool)]
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0 or vals.max() <= 0:
        raise InputError("R has no positive finite off-diagonal distances; cannot choose sigma")
    hist, edges = np.histogram(vals, bins=bins, range=(0.0, float(np.quantile(vals, 0.99))))
    x = np.arange(-6, 7)
    kern = np.exp(-0.5 * (x / 2.0) ** 2)
    h = np.convolve(hist.astype(float), kern / kern.sum(), mode="same")
    centres = 0.5 * (edges[1:] + edges[:-1])
    peaks = [t for t in range(1, bins - 1) if h[t] >= h[t - 1] and h[t] > h[t + 1]]
    if not peaks:
        return float(np.median(vals))
    p = peaks[0]
    for t in range(p + 1, bins - 1):
        if h[t] <= h[t - 1] and h[t] < h[t + 1] and h[t] < 0.8 * h[p]:
            return float(centres[t])
    return float(centres[p])


class SketchMap(_Base):
    """Sketch-map (Ceriotti, Tribello and Parrinello, PNAS 2011) on a distance matrix.

    Minimises C = mean over pairs i ≠ j of (SIG_h(R_ij) − SIG_l(r_ij))² (see
    :func:`topoembed.embed.losses.sketchmap_loss`; ``symmetrised=True`` adds the term that
    also corrects pairs in the sensitive range of R). R is a dense (n, n) matrix passed to
    ``fit(X, D=R)`` (any distance of stage 2; effective resistance works) or, without D, the
    Euclidean distance of X computed per batch. An epoch is ``pairs_per_point``·n pairs
    drawn uniformly with i ≠ j. ``sigma_h="auto"`` uses :func:`choose_sigma`.

    ``sym_units``: "raw" adds SIG_h′(R) to SIG_l′(r) as they are (the formula of the issue);
    "matched" scales SIG_h′ by σ_h/σ_l first (derivatives with respect to R/σ_h and r/σ_l),
    see :func:`~topoembed.embed.losses.sketchmap_loss` and benchmarks/EMBED.md.

    Parametric mode is an autoencoder (EncoderMap, Lemke and Peter, JCTC 2019): the loss
    adds ``recon_weight``·mean squared reconstruction error of the standardised input.
    """

    _param_names = ("n_components", "sigma_h", "a_h", "b_h", "sigma_l", "a_l", "b_l", "symmetrised", "sym_units",
                    "parametric", "hidden", "recon_weight", "init", "n_epochs", "pairs_per_point",
                    "batch_size", "optimizer", "lr", "schedule", "device", "seed", "verbose", "k")

    def __init__(self, n_components=2, sigma_h="auto", a_h=12.0, b_h=6.0, sigma_l=1.0, a_l=2.0, b_l=6.0,
                 symmetrised=False, sym_units="raw", parametric=False, hidden=(128, 128), recon_weight=1.0,
                 init="pca",
                 n_epochs=100, pairs_per_point=64, batch_size=4096, optimizer="adam", lr=None,
                 schedule="cosine", device="auto", seed=0, verbose=True, k=15):
        self.n_components, self.sigma_h, self.a_h, self.b_h = n_components, sigma_h, a_h, b_h
        self.sigma_l, self.a_l, self.b_l, self.symmetrised = sigma_l, a_l, b_l, symmetrised
        self.sym_units = sym_units
        self.parametric, self.hidden, self.recon_weight, self.init = parametric, hidden, recon_weight, init
        self.n_epochs, self.pairs_per_point, self.batch_size = n_epochs, pairs_per_point, batch_size
        self.optimizer, self.lr, self.schedule = optimizer, lr, schedule
        self.device, self.seed, self.verbose, self.k = device, seed, verbose, k

    def fit(self, X, y=None, D=None, init=None):
        """Fit on points X (n, p) and optionally their precomputed distances D (n, n)."""
        X, Xt = self._prepare(X, min_points=3)
        n = X.shape[0]
        if D is not None:
            D = np.asarray(D, dtype=np.float64)
            if D.shape != (n, n):
                raise InputError(f"D has shape {D.shape}; expected ({n}, {n}) for {n} points")
            if np.isnan(D).any():
                raise InputError("D has NaN entries; recompute the distances")
            if not np.isfinite(D).all():
                # a disconnected kNN graph: spectral distances are inf between components. Place
                # the components apart at twice the largest finite distance (policy: README)
                finite = D[np.isfinite(D)]
                far = 2.0 * float(finite.max()) if finite.size else 1.0
                log.warning("D is infinite between %d pairs of points (a disconnected kNN graph, e.g. isolated "
                            "cells); they are treated as %.3g apart, twice the largest finite distance",
                            int(np.sum(~np.isfinite(D)) // 2), far)
                D = np.where(np.isfinite(D), D, far)
            Dt = torch.as_tensor(D, dtype=torch.float32, device=self.device_)
            dist = lambda i, j: Dt[i, j]  # noqa: E731
        else:
            Xraw = torch.as_tensor(X, dtype=torch.float32, device=self.device_)
            dist = lambda i, j: torch.linalg.vector_norm(Xraw[i] - Xraw[j], dim=-1)  # noqa: E731
        if self.sigma_h == "auto":
            if D is None:
                from ..spectral import pairwise_euclidean
                sub = np.random.default_rng(self.seed).choice(n, min(n, 2000), replace=False)
                D_for_sigma = pairwise_euclidean(X[sub])
            else:
                D_for_sigma = D
            self.sigma_h_ = choose_sigma(D_for_sigma, seed=self.seed)
        else:
            self.sigma_h_ = float(self.sigma_h)
        if self.sym_units not in ("raw", "matched"):
            raise InputError(f"sym_units={self.sym_units!r} must be 'raw' or 'matched'")
        sym_w = self.sigma_h_ / float(self.sigma_l) if self.sym_units == "matched" else 1.0
        high = (self.sigma_h_, float(self.a_h), float(self.b_h))
        low = (float(self.sigma_l), float(self.a_l), float(self.b_l))
        g = self.generator_
        if self.parametric:
            self.model_ = AutoEncoder(X.shape[1], self.n_components, self.hidden).to(self.device_)
            params = list(self.model_.parameters())
        else:
            table = self._init_table(X, None, init if init is not None else self.init)
            with torch.no_grad():  # start at the scale where SIG_l is sensitive
                table.mul_(float(self.sigma_l))
            params = [table]

        def batch_loss(idx, gen, progress):
            b = len(idx)
            i = torch.randint(n, (b,), generator=gen, device=self.device_)
            j = (i + torch.randint(1, n, (b,), generator=gen, device=self.device_)) % n
            R = dist(i, j)
            if self.parametric:
                z = self.model_.encoder(Xt[torch.cat([i, j])])
                yi, yj = z[:b], z[b:]
            else:
                yi, yj = table[i], table[j]
            r = torch.sqrt(L.sq_dist(yi, yj) + 1e-12)
            loss = L.sketchmap_loss(R, r, high, low, self.symmetrised, sym_w).mean()
            if self.parametric and self.recon_weight > 0:
                xi = Xt[i]
                loss = loss + self.recon_weight * ((self.model_.decoder(yi) - xi) ** 2).mean()
            return loss

        lr = self.lr if self.lr is not None else (1e-3 if self.parametric else 0.05)
        self.history_ = train(params, batch_loss, n * int(self.pairs_per_point), n_epochs=self.n_epochs,
                              batch_size=self.batch_size, generator=g, optimizer=self.optimizer, lr=lr,
                              schedule=self.schedule, verbose=self.verbose,
                              desc="sketch-map" + (" (symmetrised)" if self.symmetrised else ""))
        with torch.no_grad():
            Y = self.model_.encoder(Xt) if self.parametric else params[0]
        self.high_, self.low_ = high, low
        return self._finish(Y, X)

    def _encode(self, Xt):
        return self.model_.encoder(Xt)
