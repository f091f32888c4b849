"""What every estimator of the embedding stage shares (scikit-learn style: ``get_params``,
``set_params``, ``fit_transform``, ``transform``): the input checks, the device, the initial
layout (PCA, spectral, random or given) and how a fitted table or network maps new points.
The estimators themselves: :mod:`.contrastive`, :mod:`.sketchmap`, :mod:`.triplet`, :mod:`.scan`."""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from .._validate import InputError, check_points
from .models import pca_init, spectral_init
from .train import make_generator, resolve_device

log = logging.getLogger(__name__)


__all__ = ["_Base"]


def _check_int(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name}={value!r} must be an integer >= {low}")
    return int(value)


class _Base:
    """Shared plumbing: validation, device, seed, standardisation, transform."""

    parametric = False

    def get_params(self, deep=True):
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self._param_names:
                raise InputError(f"unknown parameter {k!r}; valid: {sorted(self._param_names)}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._param_names)})"

    def _prepare(self, X, min_points: int):
        X = check_points(X, name="X", min_points=min_points)
        _check_int(self.n_components, "n_components (embedding dimension)")
        if self.n_epochs != "auto":
            _check_int(self.n_epochs, "n_epochs", 0)
        if self.batch_size != "auto":
            _check_int(self.batch_size, "batch_size")
        self.device_ = resolve_device(self.device)
        self.generator_ = make_generator(self.seed, self.device_)
        self.mean_ = X.mean(0)
        self.scale_ = float(X.std()) or 1.0
        Xt = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device_)
        return X, Xt

    def _encode(self, Xt):
        return self.model_(Xt)

    def transform(self, X) -> np.ndarray:
        """Embedding of new points: the network (parametric) or the mean embedding of the
        k nearest training points (non-parametric)."""
        if not hasattr(self, "embedding_"):
            raise InputError(f"{type(self).__name__} is not fitted yet; call fit(X) first")
        X = check_points(X, name="X", min_points=1)
        if X.shape[1] != self.mean_.shape[0]:
            raise InputError(f"X has {X.shape[1]} features but the model was fitted on {self.mean_.shape[0]}")
        if self.parametric:
            Xt = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=self.device_)
            with torch.no_grad():
                return self._encode(Xt).cpu().numpy().astype(np.float64)
        from sklearn.neighbors import NearestNeighbors

        k = min(getattr(self, "k", 15), len(self.train_X_))
        idx = NearestNeighbors(n_neighbors=k).fit(self.train_X_).kneighbors(X, return_distance=False)
        return self.embedding_[idx].mean(1)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        return self.fit(X, y, **fit_params).embedding_

    def _finish(self, Y: torch.Tensor, X: np.ndarray):
        self.embedding_ = Y.detach().cpu().numpy().astype(np.float64)
        if not self.parametric:
            self.train_X_ = X
        return self

    def _init_table(self, X, A, init, std: float = 1.0):
        """The (n, d) table to optimise: ``init`` as given, or PCA/spectral/random with standard
        deviation ``std`` (of the first coordinate)."""
        d = self.n_components
        if isinstance(init, np.ndarray) or sp.issparse(init) or isinstance(init, (list, tuple)):
            Y0 = np.asarray(init, dtype=np.float64)
            if Y0.shape != (X.shape[0], d):
                raise InputError(f"init has shape {Y0.shape}; expected ({X.shape[0]}, {d})")
        elif init == "pca":
            if d > min(X.shape):
                raise InputError(f"init='pca' needs n_components <= number of features ({X.shape[1]}); "
                                 "use init='spectral' or 'random'")
            Y0 = pca_init(X, d, std=std)
        elif init == "spectral":
            if A is None:
                from ..graph import knn_graph
                A = knn_graph(X, k=min(getattr(self, "k", 15), X.shape[0] - 1), progress=bool(getattr(self, "verbose", False)))
            Y0 = spectral_init(A, d, std=std, seed=self.seed)
        elif init == "random":
            Y0 = std * np.random.default_rng(self.seed).standard_normal((X.shape[0], d))
        else:
            raise InputError(f"init={init!r} must be 'pca', 'spectral', 'random' or an (n, {d}) array")
        return torch.nn.Parameter(torch.as_tensor(Y0, dtype=torch.float32, device=self.device_).clone())


# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
