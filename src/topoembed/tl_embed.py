"""te.tl's embedding stage (stage 5): the cells drawn in 2-D by a torch loss, SCAN-style
clusters, and the check that an embedding keeps the loops found in high dimension
(``te.tl.embed``, ``te.tl.cluster``, ``te.tl.embedding_topology``). AnnData shells only: the
losses and the check live in :mod:`topoembed.embed`, imported on first use (PyTorch)."""
from __future__ import annotations

import numpy as np

from ._anndata import check_adata, h5ad_safe, resolved_points, stored_distances, stored_entry, working_copy
from ._validate import InputError
from .pp import DEFAULT_KEY


def embed(adata, loss: str = "infonce", *, use_rep: str | None = None, distance_key: str | None = None,
          labels: str | None = None, init=None, key_added: str | None = None, copy: bool = False, **params):
    """Embed the cells with a torch loss → ``adata.obsm[key_added or f"X_topoembed_{loss}"]``.

    ``loss``: one of :data:`topoembed.embed.LOSSES` (infonce, neg, nce, contrastive,
    sketchmap, sketchmap_sym, triplet). ``distance_key``: for sketch-map, use the distances
    stored by ``te.tl.spectral_distances``/``te.tl.run`` under that key (e.g. effective
    resistance) instead of Euclidean ones. ``labels``: an ``obs`` column for the triplet
    loss. ``init="spectral"`` uses the Laplacian eigenvectors. Other keyword arguments go to
    the estimator (n_components, n_epochs, s, k, device, seed, ...). Parameters and the loss
    history go to ``uns[key]``; embedding norms (confidence; parametric InfoNCE) to
    ``obs[f"{key}_norm"]``.
    """
    from . import embed as embedding

    check_adata(adata, key_added)
    adata = working_copy(adata, copy)
    use_rep, X = resolved_points(adata, use_rep)
    D = None
    if distance_key is not None:
        name = f"{distance_key}_distances"
        D = np.asarray(adata.obsp[name]) if name in adata.obsp else stored_distances(adata, distance_key)
    y = None
    if labels is not None:
        if labels not in adata.obs:
            raise InputError(f"labels {labels!r} is not a column of adata.obs")
        y = adata.obs[labels].to_numpy()
    Y, info = embedding.embed(X, loss, D=D, y=y, init=init, **params)
    key = key_added or embedding.obsm_key(loss)
    adata.obsm[key] = Y
    adata.uns[key] = h5ad_safe({"loss": loss, "device": info["device"], "history": np.asarray(info["history"]),
                                "params": {k: (str(v) if isinstance(v, (tuple, list)) else v)
                                           for k, v in info["params"].items()},
                                "use_rep": use_rep or "X", "distance_key": distance_key})
    if "norms" in info:
        adata.obs[f"{key}_norm"] = np.asarray(info["norms"])
    return adata if copy else None


def cluster(adata, n_classes: int = 10, *, use_rep: str | None = None, key_added: str = "topoembed_cluster",
            copy: bool = False, **params):
    """SCAN-style min–max clustering → ``obs[key_added]`` (categorical labels) and
    ``obsm[f"{key_added}_probabilities"]``; loss and restarts in ``uns[key_added]``."""
    import pandas as pd

    from . import embed as embedding

    check_adata(adata, key_added)
    adata = working_copy(adata, copy)
    use_rep, X = resolved_points(adata, use_rep)
    labels, probs, info = embedding.cluster(X, n_classes=n_classes, **params)
    adata.obs[key_added] = pd.Categorical(np.asarray(labels).astype(str))
    adata.obsm[f"{key_added}_probabilities"] = np.asarray(probs)
    adata.uns[key_added] = h5ad_safe({"loss": float(info["loss"]), "restart_losses": np.asarray(info["restart_losses"]),
                                      "n_classes": int(n_classes), "device": info["device"]})
    return adata if copy else None


def embedding_topology(adata, basis: str = "X_topoembed_infonce", *, key: str = DEFAULT_KEY, seed: int = 0,
                       copy: bool = False):
    """Does the embedding ``obsm[basis]`` keep the loops found in high dimension (``uns[key]``)?

    Writes ``uns[key]["embedding_topology"][basis]`` with the verdict ("the embedding shows
    the loop", "... hides the loop", "... shows a loop the data does not support") and the loop
    counts and scores on both sides; returns the dict (or the copy).
    """
    adata = working_copy(adata, copy)
    entry = stored_entry(adata, key, "detection")  # checked before anything is created or imported
    obsm_key = basis if basis in adata.obsm else f"X_{basis}"
    if obsm_key not in adata.obsm:
        raise InputError(f"basis {basis!r} not in adata.obsm ({list(adata.obsm.keys())}); run te.tl.embed first")
    from . import embed as embedding

    res = embedding.embedding_topology(np.asarray(adata.obsm[obsm_key]), dict(entry["detection"]), seed=seed)
    keep = {"verdict": res["verdict"], "message": res["message"], "high": res["high"],
            "low": {k: v for k, v in res["low"].items() if k in ("n_loops", "score", "scores")},
            "n_points": res["n_points"]}
    entry.setdefault("embedding_topology", {})[obsm_key] = h5ad_safe(keep)
    return adata if copy else keep
