"""Contrastive neighbour embeddings (InfoNCE, NCE, NEG) from the t-SNE to the UMAP end of the
spectrum (Damrich et al., ICLR 2023): :class:`ContrastiveEmbedding` and its defaults.

A fit runs in steps, as openTSNE structures its stages: the options (:meth:`_check_options`),
the positive pairs (:meth:`_edges`), the plan of the optimisation (:meth:`_plan`, a frozen
:class:`_Plan`), the start (:meth:`_start`) and the optimisation over the batch loss of
:class:`_Steps`, which holds what changes during training.

Size (about 520 lines): the estimator's defaults, each with the measurement behind it, and the
batch loss that reads every field of its plan belong together.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .._validate import InputError
from . import losses as L
from .models import mlp
from .sampling import edge_list
from .train import cpu_threads, train
from .base import _Base, _check_int

log = logging.getLogger(__name__)


#: Edges per block that share one draw of negatives in :class:`ContrastiveEmbedding`.
NEG_BLOCK = 128

#: ``n_negatives="auto"``: negatives per positive edge for NEG/NCE; InfoNCE uses
#: :func:`auto_negatives` (benchmarks/EMBED.md).
AUTO_NEGATIVES = {"nce": 16, "neg": 16}

#: ``n_epochs="auto"``: NEG/NCE reach their recall in 50 epochs (IPC: 50, 100 and 300 the same).
AUTO_EPOCHS = {"infonce": 100, "nce": 50, "neg": 50}

#: ``affinity``: the positive edges and their weights. "binary": the symmetric kNN graph with k,
#: every edge once per epoch; "perplexity": t-SNE's p_ij on 3·perplexity neighbours;
#: "fuzzy": UMAP's fuzzy simplicial set on k neighbours. Weighted graphs draw n·k edges per
#: epoch in proportion to their weights.
AFFINITIES = ("binary", "perplexity", "fuzzy")

#: ``affinity="auto"`` per mode when no A is passed (benchmarks/EMBED.md); with A: "binary".
#: InfoNCE takes "fuzzy" from :data:`FUZZY_MIN_N` points on (IPC recall@15: 2,000 cells 0.418
#: vs binary 0.429, 10,000 cells 0.363 vs 0.359, 26,625 cells 0.338 vs 0.329).
AUTO_AFFINITY = {"infonce": "fuzzy", "nce": "binary", "neg": "binary"}

FUZZY_MIN_N = 5000

#: InfoNCE's ``normaliser``: "anchor" (each edge's own S_i = q_ij + w·Σ_l q_il, InfoNCE) or
#: "global" (one running Z for all edges, t-SNE's single normaliser; an option: on IPC cells it
#: keeps fewer neighbours, benchmarks/EMBED.md).
NORMALISERS = ("anchor", "global")

#: ``near_field="auto"``: InfoNCE (non-parametric, Cauchy kernel) computes each anchor's
#: repulsion from its NEAR_FIELD nearest points in the current layout exactly (refreshed every
#: epoch) and samples negatives only beyond them; 0 elsewhere (benchmarks/EMBED.md).
NEAR_FIELD = 15

#: ``kernel="auto"`` per mode (non-parametric; parametric models use "cauchy"): NEG takes UMAP's
#: kernel, which moves with s from Cauchy (s = 0) to UMAP's power law (s = 1) (benchmarks/EMBED.md, fifth pass).
AUTO_KERNEL = {"infonce": "cauchy", "nce": "cauchy", "neg": "umap"}

#: Standard deviation of the PCA/spectral/random initialisation with the UMAP kernel at s ≥ 1
#: (UMAP_INIT_STD**s between s = 0 and 1; 1 with the Cauchy kernel): its layouts end at about that
#: width, and grown from a unit start in 50 epochs its clusters stay loose (4 blobs: within/between
#: distance 0.333 vs 0.073 from std 10; the Cauchy kernel grows to std 6.5 with tight clusters;
#: benchmarks/EMBED.md, fifth pass).
UMAP_INIT_STD = 10.0

#: Blocks of a batch on which NEG/NCE evaluate their loss (an estimate for the training history; the
#: gradient uses every block): the loss's logarithms were 9 % of a NEG step on all IPC cells.
LOSS_BLOCKS = 16

#: ``warmup="auto"``: the share of NEG's epochs (UMAP kernel) run at the t-SNE end first (benchmarks/EMBED.md, seventh pass).
WARMUP = 1 / 3

#: Weight of a block's mean Ŝ in the running Z of ``normaliser="global"`` (an exponential
#: moving average over blocks of NEG_BLOCK edges).
Z_MOMENTUM = 0.05

def rows_of(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """table[idx] for an integer index of any shape, by ``index_select`` (3x faster than advanced
    indexing on a CPU for a (256, 128) index into an (n, 2) table or the edge list)."""
    return table.index_select(0, idx.reshape(-1)).view(*idx.shape, *table.shape[1:])

def auto_negatives(mode: str, n: int, near_field: int = 0) -> int:
    """m for ``n_negatives="auto"``: InfoNCE with an exact near field 64 (26,625 IPC cells:
    recall@15 0.345 with m = 64 and 0.346 with 133, near field 8); without one
    min(256, max(64, n // 200)) (the share of a point's neighbourhood among uniform negatives
    falls as 1/n: 64 → 128 negatives raised recall@15 on 26,625 IPC cells from 0.316 to
    0.330, on 10,000 from 0.355 to 0.359); NEG/NCE 16."""
    if mode != "infonce":
        return AUTO_NEGATIVES[mode]
    return 64 if near_field else int(min(256, max(64, n // 200)))


class ContrastiveEmbedding(_Base):
    """Contrastive neighbour embedding (Damrich et al., ICLR 2023); see
    :func:`topoembed.embed.losses.contrastive_loss` for the formulas.

    Positives are the directed edges of the symmetric kNN graph (one epoch = every edge
    once). Negatives are drawn uniformly, ``n_negatives`` = m per edge, one draw shared by
    each block of :data:`NEG_BLOCK` edges (so a block costs one (128, m) array instead of
    128·m gathered rows); ``"auto"``: :func:`auto_negatives` (InfoNCE 64 with its near field,
    else 64 to 256 growing with n; NEG/NCE 16).
    InfoNCE weights the negatives by ``neg_weight`` w (``"auto"``: (n − 1)/m, the
    sampled-softmax correction, so that w·Σ_l q_il estimates the full Σ_l q_il and 64
    negatives act like the m → ∞, t-SNE-like limit; w = 1 is plain InfoNCE).
    ``near_field`` (InfoNCE, non-parametric, Cauchy kernel; ``"auto"``: :data:`NEAR_FIELD` =
    15 there, else 0): each edge's anchor also repels its ``near_field`` nearest points in the
    current layout (found once per epoch) exactly, and the sampled negatives count only beyond
    the farthest of them. The sampled sum is otherwise dominated by the rare negative that
    lands next to the anchor, weighted by w; the per-anchor normaliser then underweights the
    short-range repulsion and the layout breaks into clumps of a few points (IPC cells: recall@15
    0.363 → 0.377 on 10,000 cells, 0.338 → 0.348 on 26,625; benchmarks/EMBED.md, fourth pass).
    ``normaliser``: "anchor" (InfoNCE: each edge's own S_i = q_ij + Σ_l q_il) or "global"
    (one running normaliser Z for all edges, t-SNE's: repulsion w·q_il²/Z; an exponential
    average of the blocks' mean Ŝ, :data:`Z_MOMENTUM`). "global" removes the clumps too but
    its sampled kicks (w/Z per close negative) limit the learning rate; it keeps fewer
    neighbours than "anchor" with the near field (benchmarks/EMBED.md).
    ``s`` places the result on the t-SNE (0) ↔ UMAP (1) spectrum: for ``mode="neg"``
    through the fixed normaliser Z̄(s) (:func:`~topoembed.embed.losses.neg_normaliser`), for
    ``"infonce"`` through the attraction weight ρ = 4^s; ``"nce"`` learns its normaliser and
    ignores s. ``early_exaggeration``: the first third of the epochs uses s = max(s, 1) (where
    there is no warm-up).
    ``warmup`` (NEG with UMAP's kernel): the first ``warmup`` share of the epochs runs at the
    t-SNE end (s = 0: the Cauchy kernel and Z̄_tSNE), from a unit-scale start; then the layout is
    widened to standard deviation max(its own, ``UMAP_INIT_STD ** min(max(s, 0), 1)``) and trained
    at the target s. ``"auto"``: :data:`WARMUP` = 1/3 for non-parametric NEG with the UMAP kernel,
    else 0. Repulsion-dominated early epochs open the holes of the data (a t-SNE layout shows the
    IPC cells' cell-cycle ring) and the UMAP kernel then keeps them; trained at s = 1 from the
    start, the ring opened at one place and the loop was lost, as in umap-learn's layout (IPC:
    kept on 5 of 5 and 4 of 5 subsamples on 10,000 and 26,625 cells vs 0 of 5; recall@15 0.219 vs
    0.223 and 0.156 vs 0.145; 4 blobs within/between ratio 0.066 vs 0.071; benchmarks/EMBED.md,
    seventh pass).

    ``kernel``: "cauchy" q = 1/(1 + d²); "umap" moves the kernel with s from Cauchy
    (s ≤ 0) to UMAP's output kernel (s ≥ 1, a and b fitted from ``min_dist`` and ``spread`` as
    umap-learn does; :func:`~topoembed.embed.losses.kernel_shape`), so that NEG at s = 1 is
    UMAP's loss; pair forces are then clipped as in UMAP. Beyond s = 1 only NEG's c grows, which
    for a power-law kernel rescales the converged layout (in 50 epochs s = 2 still separates
    blobs more than s = 1). The kernel follows the target s also during early exaggeration, and
    the layout is brought to standard deviation ``UMAP_INIT_STD ** min(max(s, 0), 1)`` (10 at
    s = 1, about umap-learn's initial scale) after the warm-up (without one, the start is drawn
    at that scale): the UMAP kernel's layouts end at about that width, and grown from a unit
    scale in 50 epochs its clusters stay loose (the Cauchy kernel's do not). ``"auto"``
    (default): :data:`AUTO_KERNEL`, "umap" for NEG and "cauchy" for InfoNCE and NCE ("cauchy"
    for parametric models). NEG at s = 1 then keeps more of the IPC cells' neighbours than
    umap-learn (recall@15 0.219 vs 0.183 on 10,000 cells, 0.156 vs 0.109 on all 26,625; Cauchy:
    0.133, 0.077) and separates 4 blobs as tightly (within/between distance ratio 0.066 vs
    umap-learn's 0.061; benchmarks/EMBED.md, fifth and seventh passes).
    ``affinity``: the positive edges (:data:`AFFINITIES`): "binary" kNN edges, t-SNE's
    "perplexity" weights or UMAP's "fuzzy" memberships, weighted graphs drawing n·k edges per
    epoch in proportion to their weights; "auto": :data:`AUTO_AFFINITY` (InfoNCE "fuzzy" from
    :data:`FUZZY_MIN_N` = 5,000 points on, else and for NEG/NCE "binary"), "binary" whenever
    ``A`` is passed. ``momentum``: SGD momentum
    (default 0 for the non-parametric table).

    ``batch_size="auto"``: n_edges/16 clipped to [1024, 32768] edges on CPU, to [1024,
    262144] on a GPU (few large batches: the per-step overhead dominates; with the summed
    loss the step of a point does not depend on the batch size).

    Defaults (chosen on 10,000 IPC cells against openTSNE, benchmarks/EMBED.md):
    non-parametric, SGD with the loss summed over the batch, learning rate 3 (InfoNCE) or 1
    (NEG/NCE), linearly annealed to 0, ``n_epochs="auto"`` = 100 (InfoNCE) or 50 (NEG/NCE,
    :data:`AUTO_EPOCHS`), early exaggeration, PCA initialisation
    (standard deviation 1), InfoNCE on UMAP's fuzzy edge weights from 5,000 points on (IPC
    recall@15 +0.004 on 10,000 cells, +0.009 on all 26,625, with fewer edge draws per epoch;
    −0.011 and the loop lost on 2,000 cells, hence binary edges below). The
    non-parametric Cauchy and UMAP kernels use the analytic gradient
    (:func:`~topoembed.embed.losses.contrastive_grad`, no autograd); parametric models
    use autograd, Adam, the mean loss and learning rate 1e-3.
    Reference: Damrich, Böhm, Hamprecht and Kobak, ICLR 2023.
    """

    _param_names = ("n_components", "k", "mode", "s", "n_negatives", "neg_weight", "normaliser", "kernel",
                    "min_dist", "spread", "near_field", "affinity", "perplexity", "momentum",
                    "temperature", "parametric",
                    "hidden", "init", "n_epochs", "batch_size", "optimizer", "lr", "schedule",
                    "early_exaggeration", "warmup", "device", "seed", "verbose")

    def __init__(self, n_components=2, k=15, mode="infonce", s=0.0, n_negatives="auto", neg_weight="auto",
                 normaliser="anchor", kernel="auto", min_dist=0.1, spread=1.0, near_field="auto", affinity="auto",
                 perplexity=30.0, momentum=None,
                 temperature=0.5, parametric=False, hidden=(128, 128), init="pca", n_epochs="auto",
                 batch_size="auto", optimizer=None, lr=None, schedule="linear", early_exaggeration=True,
                 warmup="auto", device="auto", seed=0, verbose=True):
        self.n_components, self.k, self.mode, self.s = n_components, k, mode, s
        self.n_negatives, self.neg_weight, self.kernel, self.temperature = n_negatives, neg_weight, kernel, temperature
        self.normaliser, self.near_field = normaliser, near_field
        self.min_dist, self.spread, self.affinity, self.perplexity = min_dist, spread, affinity, perplexity
        self.momentum = momentum
        self.parametric, self.hidden, self.init, self.n_epochs = parametric, hidden, init, n_epochs
        self.batch_size, self.optimizer, self.lr, self.schedule = batch_size, optimizer, lr, schedule
        self.early_exaggeration, self.device, self.seed, self.verbose = early_exaggeration, device, seed, verbose
        self.warmup = warmup

    def _affinity(self, X, affinity):
        """The weighted symmetric graph of ``affinity`` (its values are the edges' sampling weights)."""
        from ..graph import knn_search
        from .sampling import fuzzy_affinity, perplexity_affinity

        n = X.shape[0]
        if affinity == "perplexity":
            perp = float(self.perplexity)
            if not (np.isfinite(perp) and perp >= 1):
                raise InputError(f"perplexity={self.perplexity!r} must be a number >= 1")
            kk = int(min(n - 1, np.ceil(3 * perp)))
            idx, dist = knn_search(X, kk, progress=bool(self.verbose))
            return perplexity_affinity(idx, dist, max(1.0, min(perp, kk / 3)))  # lowered on small data
        idx, dist = knn_search(X, min(_check_int(self.k, "k"), n - 1), progress=bool(self.verbose))
        return fuzzy_affinity(idx, dist)

    def fit(self, X, y=None, A=None, init=None):
        """Fit on points X (n, p). ``A``: a symmetric kNN adjacency to use instead of building
        one with ``k``; ``init``: an (n, n_components) array overriding ``self.init``.

        Four steps: :meth:`_check_options`, :meth:`_edges` (the positive pairs), :meth:`_plan`
        (batch, kernel, near field, negatives, warm-up), :meth:`_start` (the table or network to
        train) and the optimisation over :class:`_Steps`' batch loss."""
        self._check_options()
        X, Xt = self._prepare(X, min_points=max(3, self.k + 1))
        edges = self._edges(X, A)
        plan = self._plan(X.shape[0], edges)
        params, embed_rows, table, log_z, lr, opt = self._start(X, Xt, edges.graph, init, plan)
        steps = _Steps(self, plan, edges, embed_rows, table, log_z)
        self.history_ = train(params, steps, edges.n_items, n_epochs=plan.epochs, batch_size=plan.batch,
                              generator=self.generator_, optimizer=opt, lr=lr, schedule=self.schedule,
                              momentum=self.momentum if self.momentum is not None else
                              (0.0 if opt == "sgd" and not self.parametric else 0.9), verbose=self.verbose,
                              desc=f"contrastive {self.mode}", replacement=edges.cdf is not None,
                              num_threads=cpu_threads(plan.batch * (plan.m + plan.n_near)))
        self.log_z_ = float(log_z.detach()) if log_z is not None else None
        with torch.no_grad():
            Y = self.model_(Xt) if self.parametric else table
        self.norms_ = None
        if self.parametric and (plan.kernel == "cosine" or self.mode == "infonce"):
            self.norms_ = torch.linalg.vector_norm(Y, dim=1).cpu().numpy().astype(np.float64)
        self.n_edges_ = int(len(edges.heads))
        return self._finish(Y, X)

    def _check_options(self) -> None:
        """The options that need no data, checked before any work."""
        if self.mode not in L.CONTRASTIVE_MODES:
            raise InputError(f"mode={self.mode!r} must be one of {L.CONTRASTIVE_MODES}")
        if self.n_negatives != "auto":
            _check_int(self.n_negatives, "n_negatives")
        if self.neg_weight != "auto" and not (np.isfinite(self.neg_weight) and self.neg_weight > 0):
            raise InputError(f"neg_weight={self.neg_weight!r} must be 'auto' or a positive number")
        if self.normaliser not in NORMALISERS:
            raise InputError(f"normaliser={self.normaliser!r} must be one of {NORMALISERS}")
        if not np.isfinite(self.s):
            raise InputError(f"s={self.s!r} must be a finite number (0 = t-SNE-like, 1 = UMAP-like)")

    def _edges(self, X, A) -> "_Edges":
        """The positive pairs: the binary kNN graph (or ``A``), every edge once per epoch; or a
        weighted graph (``affinity`` "perplexity"/"fuzzy") whose n·k draws per epoch follow the weights."""
        n = X.shape[0]
        affinity = self.affinity
        if affinity == "auto":
            affinity = "binary" if A is not None or n < FUZZY_MIN_N else AUTO_AFFINITY[self.mode]
        if affinity not in AFFINITIES:
            raise InputError(f"affinity={self.affinity!r} must be 'auto' or one of {AFFINITIES}")
        self.affinity_ = affinity
        cdf = None
        if affinity != "binary":
            if A is not None:
                raise InputError(f"affinity={affinity!r} builds its own weighted graph; pass A only "
                                 "with affinity='binary' or 'auto'")
            W = self._affinity(X, affinity)
            A = W  # also the graph of init="spectral"
            heads, tails = edge_list(W, self.device_)
            vals = torch.as_tensor(sp.coo_matrix(W).data, dtype=torch.float64, device=self.device_)
            cdf = torch.cumsum(vals, 0)
            cdf /= cdf[-1].clone()
            n_items = n * _check_int(self.k, "k")  # draws per epoch: k per point
        else:
            if A is None:
                from ..graph import knn_graph
                A = knn_graph(X, k=_check_int(self.k, "k"), progress=bool(self.verbose))
            elif A.shape != (n, n):
                raise InputError(f"A has shape {A.shape}; expected ({n}, {n}) for {n} points")
            heads, tails = edge_list(A, self.device_)
            n_items = len(heads)
        if len(heads) == 0:
            raise InputError("the kNN graph has no edges; increase k")
        return _Edges(A, heads, tails, cdf, n_items)

    def _plan(self, n: int, edges: "_Edges") -> "_Plan":
        """Every setting of the optimisation that follows from the options, n and the edges."""
        cap = 32768 if self.device_.type == "cpu" else 262144  # a GPU takes larger batches
        batch = int(np.clip(edges.n_items // 16, 1024, cap)) if self.batch_size == "auto" else self.batch_size
        self.batch_size_ = batch
        kernel = self.kernel
        if kernel == "auto":
            kernel = "cauchy" if self.parametric else AUTO_KERNEL[self.mode]
        if kernel not in ("cauchy", "umap", "cosine"):
            raise InputError(f"kernel={self.kernel!r} must be 'auto', 'cauchy', 'umap' or 'cosine'")
        self.kernel_ = kernel
        fast = not self.parametric and kernel != "cosine"  # the analytic gradient
        if self.near_field == "auto":
            n_near = NEAR_FIELD if (fast and self.mode == "infonce" and kernel == "cauchy") else 0
        else:
            n_near = _check_int(self.near_field, "near_field", 0)
            if n_near and not (fast and self.mode == "infonce" and kernel == "cauchy"):
                raise InputError("near_field > 0 needs mode='infonce', kernel='cauchy' and parametric=False")
        n_near = min(n_near, n - 1)
        self.near_field_ = n_near
        m = auto_negatives(self.mode, n, n_near) if self.n_negatives == "auto" else self.n_negatives
        w = (n - 1) / m if self.neg_weight == "auto" else float(self.neg_weight)
        if self.mode != "infonce":
            w = 1.0
        warm = self.warmup
        if warm == "auto":
            warm = WARMUP if (self.mode == "neg" and kernel == "umap" and not self.parametric) else 0.0
        if isinstance(warm, bool) or not isinstance(warm, (int, float)) or not 0 <= warm < 1:
            raise InputError(f"warmup={self.warmup!r} must be 'auto' or a share of the epochs in [0, 1)")
        if warm and (self.mode != "neg" or self.parametric):
            raise InputError("warmup > 0 needs mode='neg' and parametric=False (a warm-up of the embedding table "
                             "at the t-SNE end of NEG's spectrum)")
        self.warmup_ = warm = float(warm)
        if kernel == "umap":
            if self.parametric:
                raise InputError("kernel='umap' needs parametric=False (it has only the analytic gradient)")
            try:
                ab = L.umap_ab(float(self.min_dist), float(self.spread))
            except (TypeError, ValueError) as exc:
                raise InputError(f"kernel='umap': {exc}") from None
        self.ab_ = ab if kernel == "umap" else None
        # the UMAP kernel's layout ends about ten times wider than a unit start: start there
        wide = UMAP_INIT_STD ** min(max(float(self.s), 0.0), 1.0) if kernel == "umap" else 1.0
        return _Plan(n=n, batch=batch, kernel=kernel, fast=fast, n_near=n_near, m=m, w=w, warm=warm, ab=self.ab_,
                     wide=wide, log_nm=float(np.log(m) - 2 * np.log(n)),
                     glob=self.mode == "infonce" and self.normaliser == "global",
                     epochs=AUTO_EPOCHS[self.mode] if self.n_epochs == "auto" else self.n_epochs)

    def _start(self, X, Xt, A, init, plan: "_Plan"):
        """(params, embed_rows, table, log_z, lr, optimiser): the network or the table to train,
        started from ``init`` (PCA by default) at the plan's scale, and NCE's normaliser."""
        if self.parametric:
            self.model_ = mlp(X.shape[1], self.n_components, self.hidden).to(self.device_)
            params = list(self.model_.parameters())
            table = None
            embed_rows = lambda idx: self.model_(Xt[idx])  # noqa: E731
        else:
            std = 1.0 if plan.warm else plan.wide  # a warm-up starts at the Cauchy kernel's scale and widens after it
            table = self._init_table(X, A, init if init is not None else self.init, std=std)
            params = [table]
            embed_rows = lambda idx: table[idx]  # noqa: E731
        opt = self.optimizer or ("adam" if self.parametric else "sgd")
        lr = self.lr if self.lr is not None else (1e-3 if self.parametric else 3.0 if self.mode == "infonce" else 1.0)
        log_z = None
        if self.mode == "nce":  # learnable normaliser, started at the t-SNE end
            log_z = torch.nn.Parameter(torch.tensor(L.neg_normaliser(0.0, plan.n), device=self.device_))
            # with a summed loss its gradient grows with the batch: scale its step back
            params = [{"params": params}, {"params": [log_z], "lr": lr / plan.batch if not self.parametric else lr}]
        return params, embed_rows, table, log_z, lr, opt


@dataclass(frozen=True)
class _Edges:
    """The positive pairs of a fit: the graph (also that of ``init="spectral"``), its directed
    edges, the cumulative weights of a weighted graph (None: every edge once per epoch) and the
    draws per epoch."""

    graph: object
    heads: torch.Tensor
    tails: torch.Tensor
    cdf: torch.Tensor | None
    n_items: int


@dataclass(frozen=True)
class _Plan:
    """The settings of one fit's optimisation (:meth:`ContrastiveEmbedding._plan`)."""

    n: int
    batch: int
    kernel: str
    fast: bool         # the analytic gradient (non-parametric, not cosine)
    n_near: int        # InfoNCE's exact near field
    m: int             # negatives per positive edge
    w: float           # the negatives' weight
    warm: float        # share of the epochs at the t-SNE end first (NEG with the UMAP kernel)
    ab: tuple | None   # UMAP's kernel constants
    wide: float        # the layout's scale at the target s
    log_nm: float
    glob: bool         # InfoNCE with one global normaliser
    epochs: int


class _Steps:
    """The batch loss of one fit (what :func:`topoembed.embed.train.train` calls per batch), with
    the state that changes over training: the running global normaliser, the near field found
    once per epoch, the widening after the warm-up. Edges are taken in blocks of
    :data:`NEG_BLOCK` that share one draw of negatives."""

    def __init__(self, est: ContrastiveEmbedding, plan: _Plan, edges: _Edges, embed_rows, table, log_z):
        self.est, self.plan, self.edges = est, plan, edges
        self.embed_rows, self.table, self.log_z = embed_rows, table, log_z
        self.device = est.device_
        self.run_z = None
        self.near = {"progress": None, "nb": None}
        self.widened = not plan.warm

    def spectrum(self, progress):
        """(log c, ρ, kernel shape) at this point of training."""
        est, plan = self.est, self.plan
        if progress < plan.warm:  # the warm-up: NEG at the t-SNE end, Cauchy kernel
            s, shape = 0.0, ((1.0, 1.0, 1.0) if plan.kernel == "umap" else None)
        else:
            s = max(est.s, 1.0) if (est.early_exaggeration and not plan.warm and progress < 1 / 3) else est.s
            # the kernel follows the target s, not the exaggerated one: the UMAP kernel's early phase
            # from a narrow start leaves s = 0 loosely clustered (4 blobs: ratio 0.316 vs 0.132)
            shape = L.kernel_shape(est.s, *plan.ab) if plan.kernel == "umap" else None
        if est.mode == "infonce":
            return 0.0, L.infonce_exaggeration(s), shape
        if est.mode == "neg":
            return L.neg_normaliser(s, plan.n) + plan.log_nm, 1.0, shape
        return self.log_z + plan.log_nm, 1.0, shape

    @staticmethod
    def blocks(idx):
        """The batch's edges as (g, c) blocks that share their negatives (a smaller last block)."""
        full = len(idx) - len(idx) % NEG_BLOCK
        if full:
            yield idx[:full].reshape(-1, NEG_BLOCK)
        if full < len(idx):
            yield idx[full:].reshape(1, -1)

    @torch.no_grad()
    def start_z(self):
        """Per-point normaliser Z ≈ Σ_l q_il of the current layout (65,536 random pairs, Cauchy)."""
        n, g = self.plan.n, self.est.generator_
        Y0 = self.embed_rows(torch.arange(n, device=self.device))
        a = torch.randint(n, (65536,), generator=g, device=self.device)
        b = (a + torch.randint(1, n, (65536,), generator=g, device=self.device)) % n
        return ((n - 1) / (1.0 + ((Y0[a] - Y0[b]) ** 2).sum(-1))).mean().reshape(())

    def near_points(self, progress):
        """(n, n_near) nearest neighbours of every point in the current layout, found once per epoch
        (the graph stage's k-d tree on the host, on this process's CPUs: the one copy of the table off
        the device per epoch; 0.09 s on 26,625 points in 2-D vs scikit-learn's 0.18 s)."""
        if self.near["progress"] != progress:
            from ..graph import kdtree_candidates
            nb = kdtree_candidates(self.table.detach().cpu().numpy(), self.plan.n_near + 1)[:, 1:]
            self.near.update(progress=progress, nb=torch.as_tensor(nb, device=self.device))
        return self.near["nb"]

    def grad_coords(self):
        """The table's gradient as a (dim, n) buffer, coordinates first (``table.grad`` is its
        transposed view): index_add_ along the rows of an (n, 2) tensor was 1.7x slower on a CPU."""
        table = self.table
        if table.grad is None:
            table.grad = torch.zeros(table.shape[1], self.plan.n, dtype=table.dtype, device=self.device).T
        return table.grad.T

    @torch.no_grad()
    def widen(self):
        """After the warm-up: the layout scaled to standard deviation max(its own, the wide start's)."""
        self.widened = True
        now = float(self.table.std(0).mean())
        if 0 < now < self.plan.wide:
            self.table.mul_(self.plan.wide / now)

    def __call__(self, idx, gen, progress):
        est, plan, edges, table = self.est, self.plan, self.edges, self.table
        n, m, dim, mode = plan.n, plan.m, est.n_components, est.mode
        if not self.widened and progress >= plan.warm:
            self.widen()
        log_c, rho, shape = self.spectrum(progress)
        nbr = self.near_points(progress) if plan.n_near else None
        table_t = table.detach().T.contiguous() if plan.n_near else None  # coordinates first, for the near field
        if plan.glob and self.run_z is None:
            self.run_z = self.start_z()
        total = torch.zeros((), device=self.device)
        if edges.cdf is not None:  # weighted graph: this batch's edges drawn in proportion to their weight
            u = torch.rand(len(idx), generator=gen, device=self.device, dtype=torch.float64)
            idx = torch.searchsorted(edges.cdf, u).clamp_max_(len(edges.cdf) - 1)
        for e in self.blocks(idx):
            i, j = rows_of(edges.heads, e), rows_of(edges.tails, e)
            neg = torch.randint(n, (e.shape[0], m), generator=gen, device=self.device)
            if plan.glob:
                log_c = torch.log(self.run_z)
            if nbr is not None:  # near field exact, the sampled negatives beyond it
                nb_e = rows_of(nbr, i)                                         # (g, c, n_near)
                loss, g_i, g_j, g_neg, d_log_c, g_nb = L.contrastive_grad(
                    rows_of(table, i), rows_of(table, j), rows_of(table, neg), mode, log_c=log_c, rho=rho,
                    neg_weight=plan.w, shape=shape, global_norm=plan.glob, y_near=table_t[:, nb_e])
                self.grad_coords().index_add_(1, nb_e.reshape(-1), g_nb.reshape(dim, -1))
            elif plan.fast:
                loss, g_i, g_j, g_neg, d_log_c = L.contrastive_grad(
                    rows_of(table, i), rows_of(table, j), rows_of(table, neg), mode, log_c=log_c, rho=rho,
                    neg_weight=plan.w, shape=shape, global_norm=plan.glob, loss_blocks=LOSS_BLOCKS)
            if plan.fast:
                if plan.glob:  # the running Z moves towards the block's mean Ŝ (Z·Σ_e Ŝ_e/Z / E)
                    self.run_z = self.run_z + Z_MOMENTUM * (self.run_z * (d_log_c / i.numel()) - self.run_z)
                self.grad_coords().index_add_(1, torch.cat([i.reshape(-1), j.reshape(-1), neg.reshape(-1)]),
                                              torch.cat([g_i.reshape(-1, dim), g_j.reshape(-1, dim),
                                                         g_neg.reshape(-1, dim)]).T)
                if self.log_z is not None:
                    self.log_z.grad = d_log_c if self.log_z.grad is None else self.log_z.grad + d_log_c
                total += loss.sum() * (e.shape[0] / loss.shape[0])  # NEG/NCE: estimated on LOSS_BLOCKS blocks
                continue
            g, c = e.shape
            rows = self.embed_rows(torch.cat([i.reshape(-1), j.reshape(-1), neg.reshape(-1)]))
            per_edge = L.contrastive_loss(rows[:g * c].reshape(g, c, dim), rows[g * c:2 * g * c].reshape(g, c, dim),
                                          rows[2 * g * c:].reshape(g, 1, m, dim), mode, log_c=log_c, rho=rho,
                                          kernel=plan.kernel, temperature=est.temperature, neg_weight=plan.w,
                                          shape=shape, global_norm=plan.glob)
            if plan.glob:
                with torch.no_grad():
                    yi = rows[:g * c].reshape(g, c, dim)  # with ρ = 0 and Z = 1 the loss is Ŝ − 1
                    s_hat = L.contrastive_loss(yi, yi, rows[2 * g * c:].reshape(g, 1, m, dim), "infonce", rho=0.0,
                                               kernel=plan.kernel, temperature=est.temperature, neg_weight=plan.w,
                                               shape=shape, global_norm=True).mean() + 1.0
                self.run_z = self.run_z + Z_MOMENTUM * (s_hat - self.run_z)
            total = total + per_edge.sum()
        return total if not est.parametric else total / len(idx)
