"""Parameters of an embedding: the table itself (non-parametric) or a network (parametric),
and the initialisations (PCA, spectral)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["mlp", "AutoEncoder", "pca_init", "spectral_init", "rescale"]


def mlp(d_in: int, d_out: int, hidden=(128, 128)) -> torch.nn.Sequential:
    """Fully connected ReLU network d_in → hidden… → d_out (linear output)."""
    layers: list[torch.nn.Module] = []
    d = d_in
    for h in hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
        d = h
    layers.append(torch.nn.Linear(d, d_out))
    return torch.nn.Sequential(*layers)


class AutoEncoder(torch.nn.Module):
    """Encoder to the embedding and a mirror decoder back to the input (EncoderMap-style)."""

    def __init__(self, d_in: int, d_out: int, hidden=(128, 128)):
        super().__init__()
        self.encoder = mlp(d_in, d_out, hidden)
        self.decoder = mlp(d_out, d_in, tuple(reversed(hidden)))

    def forward(self, x):
        return self.encoder(x)


def rescale(Y: np.ndarray, std: float = 1.0) -> np.ndarray:
    """Centre Y and scale it so that its first column has standard deviation ``std``."""
    Y = Y - Y.mean(0)
    s = Y[:, 0].std()
    return Y * (std / s) if s > 0 else Y


def pca_init(X: np.ndarray, d: int, std: float = 1.0) -> np.ndarray:
    """First d principal components of X (signs fixed: largest |loading| positive), rescaled."""
    Xc = X - X.mean(0)
    if d > min(Xc.shape):
        raise ValueError(f"PCA initialisation needs d <= min(n, p) = {min(Xc.shape)}; got d={d}")
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    signs = np.sign(Vt[np.arange(d), np.abs(Vt[:d]).argmax(1)])
    signs[signs == 0] = 1
    return rescale(U[:, :d] * S[:d] * signs, std)


def spectral_init(A: sp.spmatrix, d: int, std: float = 1.0, seed: int = 0) -> np.ndarray:
    """Laplacian-eigenmap initialisation D^{-1/2}·(u_2 … u_{d+1}) of the graph A.

    u_k are the eigenvectors of L_sym = I − D^{-1/2} A D^{-1/2} with the smallest
    eigenvalues (computed as the largest of D^{-1/2} A D^{-1/2} + I, with a seeded start).
    """
    from scipy.sparse.linalg import eigsh

    A = sp.csr_matrix(A, dtype=np.float64)
    deg = np.asarray(A.sum(1)).ravel()
    s = 1.0 / np.sqrt(np.maximum(deg, np.finfo(float).tiny))
    M = sp.diags(s) @ A @ sp.diags(s) + sp.identity(A.shape[0])
    n = A.shape[0]
    if n <= 2 * (d + 1) + 10:
        vals, vecs = np.linalg.eigh(M.toarray())
    else:
        v0 = np.random.default_rng(seed).uniform(-1, 1, n)
        vals, vecs = eigsh(M, k=d + 1, which="LA", v0=v0, tol=1e-6)
    order = np.argsort(-vals)
    U = vecs[:, order[1:d + 1]] * s[:, None]
    U *= np.sign(U[np.abs(U).argmax(0), np.arange(d)])
    return rescale(U, std)
