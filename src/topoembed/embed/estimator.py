"""scikit-learn-style estimators of the embedding stage (``fit``, ``fit_transform``, ``transform``).

* :class:`ContrastiveEmbedding`: InfoNCE / NCE / NEG neighbour embedding (t-SNE ↔ UMAP).
* :class:`SketchMap`: sketch-map (classic or symmetrised) on any distance matrix.
* :class:`TripletEmbedding`: triplet loss with semi-hard or hard in-batch mining.
* :class:`SCANClustering`: min–max self-supervised clustering (``fit``, ``predict``, ``predict_proba``).

All of them train with :func:`topoembed.embed.train.train`, keep data, edges and sampling on
the device, and are deterministic on CPU for a given ``seed``. Non-parametric models
optimise the embedding table itself; their ``transform`` places new points at the mean
embedding of their ``k`` nearest training points. Parametric models (an MLP encoder, an
autoencoder for sketch-map) map new points with the network.
"""
from __future__ import annotations

from .contrastive import ContrastiveEmbedding
from .scan import SCANClustering
from .sketchmap import SketchMap, choose_sigma
from .triplet import TripletEmbedding

__all__ = ["ContrastiveEmbedding", "SketchMap", "TripletEmbedding", "SCANClustering", "choose_sigma"]
