"""Stage 5: embeddings in PyTorch and the check that they keep the loop.

Array functions for the shells (numpy in, numpy out):

* :func:`embed` (X, loss=...) -> (Y, info): contrastive, sketch-map (classic or
  symmetrised), triplet.
* :func:`cluster` (X, n_classes) -> (labels, probs, info): SCAN-style min–max clustering.
* :func:`embedding_topology` (Y, high_result) -> dict: loops of the embedding vs the data.

The estimators behind them (scikit-learn style) are in :mod:`topoembed.embed.estimator`,
the losses with their formulas in :mod:`topoembed.embed.losses`, and the one training loop
in :mod:`topoembed.embed.train`.
"""
from __future__ import annotations

from .._validate import InputError

try:
    import torch  # noqa: F401
except ModuleNotFoundError as exc:  # torch is the optional `embed` extra
    from .._device import TORCH_MISSING

    raise ModuleNotFoundError(f"topoembed: {TORCH_MISSING}", name="torch") from exc
from .estimator import ContrastiveEmbedding, SCANClustering, SketchMap, TripletEmbedding, choose_sigma
from .topology import VERDICTS, embedding_topology
from .train import resolve_device

__all__ = ["embed", "cluster", "embedding_topology", "LOSSES", "VERDICTS", "ContrastiveEmbedding", "SketchMap",
           "TripletEmbedding", "SCANClustering", "choose_sigma", "resolve_device", "obsm_key"]

#: Loss names accepted by :func:`embed` (the CLI/tl choices): name -> (estimator, fixed params, description).
LOSSES = {
    "contrastive": (ContrastiveEmbedding, {}, "contrastive neighbour embedding (mode infonce/nce/neg, s: t-SNE 0 to UMAP 1)"),
    "infonce": (ContrastiveEmbedding, {"mode": "infonce"}, "contrastive, InfoNCE (t-SNE-like at s=0)"),
    "neg": (ContrastiveEmbedding, {"mode": "neg"}, "contrastive, negative sampling with fixed normaliser Z(s)"),
    "nce": (ContrastiveEmbedding, {"mode": "nce"}, "contrastive, NCE with a learnt normaliser"),
    "sketchmap": (SketchMap, {"symmetrised": False}, "sketch-map on a distance matrix (classic)"),
    "sketchmap_sym": (SketchMap, {"symmetrised": True}, "sketch-map with the symmetrised gradient"),
    "triplet": (TripletEmbedding, {}, "triplet loss with semi-hard mining (kNN or labels)"),
}


def obsm_key(loss: str) -> str:
    """Default ``adata.obsm`` key for an embedding: ``X_topoembed_<loss>``."""
    return f"X_topoembed_{loss}"


def embed(X, loss: str = "infonce", *, A=None, D=None, y=None, init=None, **params):
    """Embed points X (n, p) with ``loss`` (one of :data:`LOSSES`); returns (Y, info).

    ``A``: kNN adjacency for the contrastive losses (default: built with ``k``);
    ``D``: precomputed (n, n) distances for sketch-map (default: Euclidean of X);
    ``y``: labels for the triplet loss (default: unsupervised, kNN positives);
    ``init``: "pca", "spectral", "random" or an (n, n_components) array (non-parametric);
    ``params``: the estimator's parameters (n_components, n_epochs, s, k, device, seed, …).

    ``info``: {"loss", "params" (all resolved), "history" (loss per epoch), "device",
    "model" (the fitted estimator, for ``transform``), and "norms" (per-point embedding
    norms of parametric cosine/InfoNCE models: a confidence, small = unusual) or
    "sigma_h" (sketch-map) when they apply}.
    """
    if loss not in LOSSES:
        raise InputError(f"loss={loss!r} is not one of {sorted(LOSSES)}")
    cls, fixed, _ = LOSSES[loss]
    clash = set(fixed) & set(params)
    if clash:
        raise InputError(f"loss={loss!r} fixes {sorted(clash)}; use loss='contrastive' or 'sketchmap' to set them")
    try:
        model = cls(**fixed, **params)
    except TypeError as exc:
        raise InputError(f"bad parameter for loss={loss!r}: {exc}; valid: {sorted(cls._param_names)}") from None
    if cls is ContrastiveEmbedding:
        model.fit(X, A=A, init=init)
    elif cls is SketchMap:
        model.fit(X, D=D, init=init)
    else:
        model.fit(X, y)
    info = {"loss": loss, "params": model.get_params(), "history": list(model.history_),
            "device": str(model.device_), "model": model}
    if getattr(model, "norms_", None) is not None:
        info["norms"] = model.norms_
    if cls is SketchMap:
        info["sigma_h"] = model.sigma_h_
    return model.embedding_, info


def cluster(X, n_classes: int = 10, **params):
    """SCAN-style min–max clustering of X (n, p) into ``n_classes``; returns
    (labels (n,), probabilities (n, n_classes), info) with info = {"params", "loss",
    "restart_losses", "device", "model"}."""
    model = SCANClustering(n_classes=n_classes, **params).fit(X)
    info = {"params": model.get_params(), "loss": model.loss_, "restart_losses": list(model.restart_losses_),
            "device": str(model.device_), "model": model}
    return model.labels_, model.probabilities_, info
