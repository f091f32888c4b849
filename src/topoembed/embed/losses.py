"""Loss functions of the embedding stage (pure torch, batched, no state).

Every function takes tensors of one minibatch and returns a tensor of per-item losses
(the training loop sums or averages them). Formulas and references are in each
docstring; ``tests/test_embed.py`` checks values and gradients against independent
numpy formulas and finite differences.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "sq_dist", "log_cauchy", "neg_normaliser", "infonce_exaggeration", "contrastive_loss", "contrastive_grad",
    "sig", "sig_prime", "sketchmap_loss", "scan_loss", "triplet_loss", "mine_negatives",
    "CONTRASTIVE_MODES", "Z_TSNE_PER_POINT", "UMAP_NEGATIVES", "umap_ab", "kernel_shape", "D2_FLOOR", "GRAD_CLIP",
]

CONTRASTIVE_MODES = ("infonce", "nce", "neg")

#: t-SNE end of the NEG spectrum: Z̄_tSNE = 100·n (the order of t-SNE's partition
#: function on real data reported by Damrich et al. 2023).
Z_TSNE_PER_POINT = 100.0
#: UMAP end of the NEG spectrum: Z̄_UMAP = n²/5 (UMAP's 5 negative samples, so that
#: m·Z̄/n² = 1 gives UMAP's q/(q + 1) for m = 5).
UMAP_NEGATIVES = 5.0


#: Floor of squared embedding distances in the non-Cauchy kernels' gradients (UMAP's 0.001).
D2_FLOOR = 1e-3
#: Largest force of one pair in the non-Cauchy kernels' gradients (UMAP clips at 4 per coordinate).
GRAD_CLIP = 4.0


def umap_ab(min_dist: float = 0.1, spread: float = 1.0) -> tuple[float, float]:
    """UMAP's output-kernel parameters: (a, b) of 1/(1 + a·d^{2b}) fitted by least squares to
    1 for d < min_dist and exp(−(d − min_dist)/spread) beyond, on 300 points of [0, 3·spread]
    (McInnes, Healy and Melville 2018). min_dist = 0.1, spread = 1 give a ≈ 1.58, b ≈ 0.90."""
    from scipy.optimize import curve_fit

    if not (0 <= min_dist < spread):
        raise ValueError(f"need 0 <= min_dist < spread; got min_dist={min_dist!r}, spread={spread!r}")
    x = np.linspace(0.0, 3.0 * spread, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    (a, b), _ = curve_fit(lambda d, a, b: 1.0 / (1.0 + a * d ** (2.0 * b)), x, y, p0=(1.0, 1.0))
    return float(a), float(b)


def kernel_shape(t: float, a: float, b: float) -> tuple[float, float, float]:
    """(ε, a_t, b_t) of the kernel q = 1/(ε + a_t·d^{2b_t}) at t ∈ [0, 1] (clipped) between
    Cauchy (t = 0: 1/(1 + d²)) and UMAP's power law (t = 1: 1/(a·d^{2b})): ε = 1 − t,
    a_t = a^t, b_t = 1 + t·(b − 1). In NEG with c = 1, t = 1 gives UMAP's loss exactly:
    q/(q + 1) = 1/(1 + a·d^{2b}) is UMAP's output kernel, −log(q/(q + 1)) its attraction and
    −log(1 − q/(q + 1)) its repulsion."""
    t = min(max(float(t), 0.0), 1.0)
    return 1.0 - t, float(a) ** t, 1.0 + t * (float(b) - 1.0)


def sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance along the last axis (broadcasting)."""
    return ((a - b) ** 2).sum(-1)


def log_cauchy(d2: torch.Tensor) -> torch.Tensor:
    """log q for the Cauchy kernel q = 1/(1 + d²), i.e. −log1p(d²)."""
    return -torch.log1p(d2)


def neg_normaliser(s: float, n: int) -> float:
    """log Z̄(s) of the NEG spectrum: log-linear between the t-SNE and UMAP ends.

    log Z̄(s) = (1 − s)·log Z̄_tSNE + s·log Z̄_UMAP, Z̄_tSNE = 100·n, Z̄_UMAP = n²/5.

    s = 0 is t-SNE-like, s = 1 UMAP-like, s > 1 goes beyond UMAP (more attraction, tighter
    clusters) and s < 0 beyond t-SNE. The two anchors are the ones of Damrich et al.
    (ICLR 2023); note that Z̄_UMAP > Z̄_tSNE only for n > 500, so on smaller data sets the
    spectrum is short (and reversed below n = 500).
    """
    log_t = math.log(Z_TSNE_PER_POINT * n)
    log_u = 2.0 * math.log(n) - math.log(UMAP_NEGATIVES)
    return (1.0 - s) * log_t + s * log_u


def infonce_exaggeration(s: float) -> float:
    """ρ(s) = 4^s, the attraction weight of InfoNCE at spectrum position s (see contrastive_loss)."""
    return 4.0 ** s


def contrastive_loss(y_i: torch.Tensor, y_j: torch.Tensor, y_neg: torch.Tensor, mode: str = "infonce",
                     log_c: torch.Tensor | float = 0.0, rho: float = 1.0, kernel: str = "cauchy",
                     temperature: float = 0.5, neg_weight: float = 1.0,
                     shape: tuple[float, float, float] | None = None, global_norm: bool = False) -> torch.Tensor:
    """Per-edge contrastive neighbour-embedding loss (Damrich, Böhm, Hamprecht and Kobak,
    *From t-SNE to UMAP with contrastive learning*, ICLR 2023).

    y_i, y_j: (b, d) embeddings of the two ends of b positive (kNN) edges; y_neg: (b, m, d)
    the embeddings of m negatives l per edge, drawn uniformly. Similarity:
    ``kernel="cauchy"``: q_ij = 1/(1 + ‖y_i − y_j‖²);
    ``kernel="cosine"``: q_ij = exp(cos(y_i, y_j)/τ) (τ = ``temperature``).

    * ``"infonce"``: ℓ = −ρ·log q_ij + log(q_ij + w·Σ_l q_il). With ρ = w = 1 this is
      −log(q_ij / (q_ij + Σ_l q_il)) (InfoNCE, van den Oord et al. 2018). ρ > 1 weights the
      attraction up, like t-SNE's exaggeration (Böhm, Berens and Kobak, JMLR 2022):
      ρ = 4^s moves InfoNCE from t-SNE-like (s = 0) towards UMAP-like (s = 1).
      w = ``neg_weight``: w = (n − 1)/m makes w·Σ_l q_il an unbiased estimate of the
      full sum Σ_{l≠i} q_il (the sampled-softmax correction of Bengio and Senécal 2008), so
      that m = 64 negatives behave like the m → ∞ limit, which is t-SNE-like.
      ``global_norm=True`` replaces each edge's own normaliser S_i = q_ij + w·Σ_l q_il by one
      normaliser Z = exp(``log_c``) shared by all edges (t-SNE's single Z, per point): the
      loss is linearised around it, ℓ = −ρ·log q_ij + log Z + (Ŝ_ij − Z)/Z with Ŝ_ij =
      w·Σ_l q_il, so that summed over E edges its gradient is that of E·log(mean Ŝ) when Z is
      the mean of the Ŝ (the t-SNE loss ρ·Σ −log q_ij + E·log Ẑ with Ẑ estimated from all the
      edges' negatives), and Z can be a running estimate (``ContrastiveEmbedding(normaliser=
      "global")``).
    * ``"nce"`` and ``"neg"`` (noise-contrastive estimation, Gutmann and Hyvärinen 2010;
      negative sampling, Mikolov et al. 2013): with c = m·Z/n² (uniform noise over the n²
      pairs, Z the normaliser; pass ``log_c`` = log c),
      ℓ = −log(q_ij/(q_ij + c)) − Σ_l log(1 − q_il/(q_il + c))
        = log(1 + c/q_ij) + Σ_l log(1 + q_il/c).
      ``"nce"`` learns log Z (so ``log_c`` is a tensor with grad); ``"neg"`` fixes it to Z̄(s)
      of :func:`neg_normaliser`; c = 1 is UMAP's q/(q + 1).

    ``kernel="umap"`` with ``shape`` = (ε, a, b): q = 1/(ε + a·‖y_i − y_j‖^{2b}) (see
    :func:`kernel_shape`; NEG at c = 1 with (0, a, b) is UMAP's loss).

    Leading axes broadcast: y_i, y_j (g, c, d) with y_neg (g, 1, M, d) gives the loss of g
    blocks of c edges that share their M negatives, shape (g, c).
    """
    if kernel == "umap":
        eps, a, b = shape
        log_q = -torch.log(eps + a * sq_dist(y_i, y_j) ** b)
        log_qn = -torch.log(eps + a * sq_dist(y_i[..., None, :], y_neg) ** b)
    elif kernel == "cauchy":
        log_q = log_cauchy(sq_dist(y_i, y_j))                       # (b,)
        log_qn = log_cauchy(sq_dist(y_i[..., None, :], y_neg))      # (b, m)
    elif kernel == "cosine":
        a = torch.nn.functional.normalize(y_i, dim=-1)
        log_q = (a * torch.nn.functional.normalize(y_j, dim=-1)).sum(-1) / temperature
        log_qn = (a[..., None, :] * torch.nn.functional.normalize(y_neg, dim=-1)).sum(-1) / temperature
    else:
        raise ValueError(f"kernel={kernel!r} must be 'cauchy', 'umap' or 'cosine'")
    if mode == "infonce" and global_norm:
        log_c = torch.as_tensor(log_c, dtype=log_q.dtype, device=log_q.device)
        s_hat = neg_weight * torch.exp(log_qn).sum(-1)
        return -rho * log_q + log_c + s_hat * torch.exp(-log_c) - 1.0
    if mode == "infonce":
        all_logs = torch.cat([log_q[..., None], log_qn + math.log(neg_weight)], dim=-1)
        return -rho * log_q + torch.logsumexp(all_logs, dim=-1)
    if mode in ("nce", "neg"):
        log_c = torch.as_tensor(log_c, dtype=log_q.dtype, device=log_q.device)
        # log(1 + c/q) = softplus(log c − log q); log(1 + q/c) = softplus(log q − log c)
        attract = torch.nn.functional.softplus(log_c - log_q)
        repel = torch.nn.functional.softplus(log_qn - log_c).sum(-1)
        return attract + repel
    raise ValueError(f"mode={mode!r} must be one of {CONTRASTIVE_MODES}")


def _scaled_pow(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """a·x^b for x > 0 as exp(b·log x + log a): one vectorised log and exp instead of ``pow``
    with a float exponent, which is 2.8x slower on a CPU (benchmarks/EMBED.md, sixth pass)."""
    return torch.log(x).mul_(b).add_(math.log(a)).exp_()


@torch.no_grad()
def contrastive_grad(y_i: torch.Tensor, y_j: torch.Tensor, y_neg: torch.Tensor, mode: str = "infonce",
                     log_c: torch.Tensor | float = 0.0, rho: float = 1.0, neg_weight: float = 1.0,
                     shape: tuple[float, float, float] | None = None, global_norm: bool = False,
                     y_near: torch.Tensor | None = None, loss_blocks: int | None = None):
    """Loss and analytic gradient of :func:`contrastive_loss` (Cauchy kernel) for blocks of
    edges that share their negatives; no autograd, a few passes over a (g, c, M) array.

    y_i, y_j: (g, c, d) the ends of g blocks of c edges; y_neg: (g, M, d) the M negatives
    of each block (every edge of a block is contrasted with all M). With q = 1/(1 + ‖Δ‖²),
    ∂log q_ab/∂y_a = −2·q_ab·(y_a − y_b), the attraction weight u = −∂ℓ/∂log q_ij and the
    repulsion weights v_l = ∂ℓ/∂log q_il (InfoNCE: u = ρ − q_ij/S, v_l = w·q_il/S with
    S = q_ij + w·Σ_l q_il; InfoNCE with ``global_norm``: u = ρ, v_l = w·q_il/Z with the one
    Z = exp(log c) of all edges; NCE/NEG: u = c/(q_ij + c), v_l = q_il/(q_il + c)):

        ∂ℓ/∂y_i = 2·u·q_ij·(y_i − y_j) − 2·Σ_l v_l·q_il·(y_i − y_l),
        ∂ℓ/∂y_j = −2·u·q_ij·(y_i − y_j),   ∂ℓ/∂y_l = 2·Σ_i v_l·q_il·(y_i − y_l).

    Returns (loss (g, c), g_i (g, c, d), g_j (g, c, d), g_neg (g, M, d), a scalar: dℓ/dlog c
    summed over the edges for NCE/NEG (NCE's learnt normaliser), 0 for InfoNCE, and Σ_e Ŝ_e/Z
    with ``global_norm`` (the caller's running Z follows the mean Ŝ_e)). Squared negative
    distances use ‖a‖² + ‖b‖² − 2a·b (a batched matrix product), clamped at 0.

    ``y_near`` (d, g, c, k), coordinates first (2.3x faster than (g, c, k, d) on a CPU, where a
    reduction over a last axis of length 2 is slow), InfoNCE with the Cauchy kernel only: each edge's anchor also
    repels its own k *near* points (its nearest in the current layout) exactly, with weight 1,
    and the shared negatives count only where they lie farther from the anchor than the
    farthest of its near points (the far field): S (or Ŝ) = [q_ij +] Σ_near q_ik + w·Σ_{l far}
    q_il. The sampled estimate of Σ_l q_il is dominated by the rare negative that happens to
    lie close, weighted by w = (n − 1)/m; taking the near field out of the sample removes that
    heavy tail (benchmarks/EMBED.md: the clumps of the per-anchor normaliser). Returns a sixth
    array, the gradient of the near points (d, g, c, k).

    ``shape`` = (ε, a, b) replaces the Cauchy kernel by q = 1/(ε + a·‖Δ‖^{2b})
    (:func:`kernel_shape`; (1, 1, 1) is Cauchy). Then ∂log q/∂y_a = −2·κ_ab·(y_a − y_b) with
    κ = a·b·‖Δ‖^{2(b−1)}·q in place of q above; squared distances are floored at
    :data:`D2_FLOOR` there (UMAP's 0.001), where κ would diverge for b < 1 or ε = 0, and, as in
    UMAP, each pair's force is clipped to :data:`GRAD_CLIP` in norm (so the returned gradient
    is the loss's gradient only where no pair is that close).

    ``loss_blocks`` h (NCE/NEG): the returned loss is that of the first h blocks only, (h, c),
    an unbiased estimate of the batch's loss (its edges and negatives are random) for h/g of
    the cost of its logarithms; the gradient is always the whole batch's. InfoNCE's loss costs
    nothing extra and is returned whole.
    """
    diff = y_i - y_j
    d2 = (diff * diff).sum(-1)
    base = (y_i * y_i).sum(-1, keepdim=True) + (y_neg * y_neg).sum(-1)[:, None, :]
    D2 = torch.baddbmm(base, y_i, y_neg.transpose(1, 2), alpha=-2.0).clamp_min_(0.0)
    near = 0.0
    if y_near is not None:  # near field, coordinates first: every edge's own k negatives, weight 1, exact
        if mode != "infonce" or not (shape is None or tuple(shape) == (1.0, 1.0, 1.0)):
            raise ValueError("y_near needs mode='infonce' and the Cauchy kernel")
        dn = y_i.movedim(-1, 0)[..., None] - y_near                  # (d, g, c, k)
        d2n = dn[0] * dn[0]
        for a in range(1, dn.shape[0]):
            d2n += dn[a] * dn[a]
        far = D2 > d2n.amax(-1)[..., None]  # far field: the sampled negatives beyond the farthest near point
        Qn = (1.0 + d2n).reciprocal_()
        near = Qn.sum(-1)
    if shape is None or tuple(shape) == (1.0, 1.0, 1.0):
        q = 1.0 / (1.0 + d2)
        Q = D2.add_(1.0).reciprocal_()
        nlog_q = torch.log1p(d2)                                    # −log q_ij
        kappa, K = q, None                                          # κ = q for Cauchy
    else:
        eps, a, b = (float(v) for v in shape)
        d2 = d2.clamp_min(D2_FLOOR)
        ad = _scaled_pow(d2, a, b)
        q = 1.0 / (eps + ad)
        nlog_q = torch.log(eps + ad)
        kappa = (b * ad / d2) * q
        D2.clamp_min_(D2_FLOOR)
        Q = _scaled_pow(D2, a, b)                                   # a·d^{2b}, then K and Q
        K = (b / D2).mul_(Q)
        Q.add_(eps).reciprocal_()
        K.mul_(Q)                                                   # κ_il
    if y_near is not None:
        Q.mul_(far)
    if mode == "infonce" and global_norm:
        z = torch.exp(torch.as_tensor(log_c, dtype=y_i.dtype, device=y_i.device))
        s_hat = neg_weight * Q.sum(-1) + near                           # Ŝ_e
        denom = z
        loss = rho * nlog_q + torch.log(z) + s_hat / z - 1.0
        u = torch.full_like(q, rho)
        d_log_c = (s_hat / z).sum()
        B = (Q.square_() if K is None else Q.mul_(K)).mul_((neg_weight / denom)[..., None])
    elif mode == "infonce":
        denom = S = q + neg_weight * Q.sum(-1) + near
        loss = rho * nlog_q + torch.log(S)
        u = rho - q / S
        B = (Q.square_() if K is None else Q.mul_(K)).mul_((neg_weight / S)[..., None])   # v_l·κ_il
        d_log_c = torch.zeros((), dtype=y_i.dtype, device=y_i.device)
    elif mode in ("nce", "neg"):
        c = torch.exp(torch.as_tensor(log_c, dtype=y_i.dtype, device=y_i.device))
        h = q.shape[0] if loss_blocks is None else min(int(loss_blocks), q.shape[0])  # the loss of the first h blocks
        loss = torch.log1p(c / q[:h]) + torch.log1p(Q[:h] / c).sum(-1)
        u = c / (q + c)
        V = Q / (Q + c)
        d_log_c = u.sum() - V.sum()
        B = V.mul_(Q if K is None else K)
    else:
        raise ValueError(f"mode={mode!r} must be one of {CONTRASTIVE_MODES}")
    if K is not None:  # UMAP's clip: no pair pushes or pulls harder than GRAD_CLIP (κ diverges as d → 0)
        B = torch.minimum(B, D2.rsqrt_().mul_(0.5 * GRAD_CLIP))
        u = torch.minimum(u * kappa, (0.5 * GRAD_CLIP) / d2.sqrt()) / kappa
    pull = (2.0 * u * kappa)[..., None] * diff
    g_i = pull - 2.0 * (B.sum(-1, keepdim=True) * y_i - torch.bmm(B, y_neg))
    g_neg = 2.0 * (torch.bmm(B.transpose(1, 2), y_i) - B.sum(1)[..., None] * y_neg)
    if y_near is not None:
        Bn = Qn.square_().div_(denom[..., None] if denom.dim() else denom).mul_(2.0) * dn   # (d, g, c, k)
        g_i = g_i - Bn.sum(-1).movedim(0, -1)
        return loss, g_i, -pull, g_neg, d_log_c, Bn
    return loss, g_i, -pull, g_neg, d_log_c


# ---------------------------------------------------------------------------------------
# sketch-map


def sig(r: torch.Tensor, sigma: float, a: float, b: float) -> torch.Tensor:
    """Sketch-map sigmoid SIG_{σ,a,b}(r) = 1 − (1 + (2^{a/b} − 1)(r/σ)^a)^{−b/a}.

    SIG(0) = 0, SIG(σ) = 1/2, SIG(∞) = 1 (Ceriotti, Tribello and Parrinello, PNAS 2011).
    """
    c = 2.0 ** (a / b) - 1.0
    return 1.0 - (1.0 + c * (r / sigma) ** a) ** (-b / a)


def sig_prime(r: torch.Tensor, sigma: float, a: float, b: float) -> torch.Tensor:
    """dSIG/dr = (b·c/σ)·x^{a−1}·(1 + c·x^a)^{−b/a−1}, x = r/σ, c = 2^{a/b} − 1."""
    c = 2.0 ** (a / b) - 1.0
    x = r / sigma
    return (b * c / sigma) * x ** (a - 1.0) * (1.0 + c * x ** a) ** (-b / a - 1.0)


def sketchmap_loss(R: torch.Tensor, r: torch.Tensor, high=(4.5, 12.0, 6.0), low=(1.0, 2.0, 6.0),
                   symmetrised: bool = False, sym_weight: float = 1.0) -> torch.Tensor:
    """Per-pair sketch-map stress (SIG_h(R_ij) − SIG_l(r_ij))².

    R: high-dimensional distances of b pairs (any distance of stage 2); r: their
    embedding distances; ``high`` = (σ_h, a_h, b_h), ``low`` = (σ_l, a_l, b_l), defaults of
    EncoderMap (Lemke and Peter, JCTC 2019). Cost C = mean over pairs i ≠ j.

    The plain gradient ∂C/∂r = −2·SIG_l′(r)·(SIG_h(R) − SIG_l(r)) vanishes when r is far from
    σ_l whatever R is. ``symmetrised=True`` adds the surrogate term

        −2·SIG_h′(R)·stopgrad(SIG_h(R) − SIG_l(r))·r,

    whose value is not a stress but whose gradient in r is exactly −2·SIG_h′(R)·(SIG_h(R) −
    SIG_l(r)), so that the total gradient is −2·(SIG_l′(r) + SIG_h′(R))·(SIG_h(R) − SIG_l(r)):
    pairs in the sensitive range of R are corrected even when r is saturated.

    ``sym_weight`` w multiplies the surrogate (gradient −2·(SIG_l′(r) + w·SIG_h′(R))·(…)).
    w = 1 is the formula above. SIG_h′ is in units of 1/R and SIG_l′ of 1/r, so when σ_h
    and σ_l differ by orders of magnitude (effective resistances are small numbers) the
    added term swamps the stress gradient; w = σ_h/σ_l puts both derivatives in the units
    of the normalised distances R/σ_h and r/σ_l (see ``SketchMap(sym_units=...)``).
    """
    sh = sig(R, *high)
    diff = sh - sig(r, *low)
    loss = diff ** 2
    if symmetrised:
        loss = loss - 2.0 * sym_weight * sig_prime(R, *high) * diff.detach() * r
    return loss


# ---------------------------------------------------------------------------------------
# SCAN-style clustering


def scan_loss(p: torch.Tensor, p_nb: torch.Tensor, p_far: torch.Tensor, entropy_weight: float = 1.0):
    """Min–max SCAN-style clustering loss of one batch (a scalar) and its three parts.

    p: (b, C) softmax outputs ψ(x) of b anchors; p_nb: (b, k, C) of neighbours from N_x;
    p_far: (b, f, C) of far points F_x. With cos the cosine similarity,

        L = mean_{x, j∈N_x} (1 − cos(ψ_x, ψ_j))² + mean_{x, f∈F_x} cos(ψ_x, ψ_f)² − λ·H(mean_x ψ(x)),

    H(p̄) = −Σ_c p̄_c log p̄_c, λ = ``entropy_weight`` (the entropy over the batch mean keeps
    all C classes in use). After SCAN (Van Gansbeke et al., ECCV 2020), with the
    neighbour term squared and a far-point term that pushes far pairs to orthogonal
    (different-class) outputs.
    """
    u = torch.nn.functional.normalize(p, dim=-1)
    cos_nb = (u[:, None, :] * torch.nn.functional.normalize(p_nb, dim=-1)).sum(-1)
    cos_far = (u[:, None, :] * torch.nn.functional.normalize(p_far, dim=-1)).sum(-1)
    near = ((1.0 - cos_nb) ** 2).mean()
    far = (cos_far ** 2).mean()
    pbar = p.mean(0)
    ent = -(pbar * torch.log(pbar.clamp_min(1e-12))).sum()
    return near + far - entropy_weight * ent, (near, far, ent)


# ---------------------------------------------------------------------------------------
# triplet


def triplet_loss(d_ap: torch.Tensor, d_an: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Per-triplet hinge max(0, margin + d(a, p) − d(a, n)) (Schroff, Kalenichenko and
    Philbin, FaceNet, CVPR 2015); d are Euclidean embedding distances."""
    return torch.clamp(margin + d_ap - d_an, min=0.0)


def mine_negatives(d_ap: torch.Tensor, d_cand: torch.Tensor, valid: torch.Tensor, margin: float = 1.0,
                   mining: str = "semihard") -> torch.Tensor:
    """Index (into the candidates) of each anchor's mined negative from the batch.

    d_ap: (b,) anchor–positive distances; d_cand: (b, c) anchor–candidate distances;
    valid: (b, c) bool, which candidates are negatives of the anchor (another label, or
    far in the data). ``"hard"``: the closest valid negative. ``"semihard"`` (FaceNet):
    the closest valid negative with d(a, p) < d(a, n) < d(a, p) + margin; anchors without
    one fall back to the closest valid negative farther than the positive, then to the
    hardest. ``"random"``: a valid candidate at random (the first valid one after a shuffle
    done by the caller). Anchors without any valid candidate get index −1.
    """
    inf = torch.tensor(float("inf"), dtype=d_cand.dtype, device=d_cand.device)
    d = d_cand.detach()
    masked = torch.where(valid, d, inf)
    hard = masked.argmin(1)
    if mining == "hard":
        out = hard
    elif mining == "semihard":
        farther = valid & (d > d_ap.detach()[:, None])
        semi = farther & (d < d_ap.detach()[:, None] + margin)
        d_semi = torch.where(semi, d, inf)
        d_far = torch.where(farther, d, inf)
        out = torch.where(semi.any(1), d_semi.argmin(1), torch.where(farther.any(1), d_far.argmin(1), hard))
    elif mining == "random":
        out = valid.to(torch.int8).argmax(1)
    else:
        raise ValueError(f"mining={mining!r} must be 'semihard', 'hard' or 'random'")
    return torch.where(valid.any(1), out, torch.full_like(out, -1))
