"""Two nulls for inputs of at most 100 points (tried for issue 28's COIL-20 target; neither
adopted): is the longest loop longer than in Gaussian points of the same mean and covariance,
or than the universal null allows once its mean is pooled over subsamples?

    python benchmarks/bench_gaussian_null.py [--part coil|noise|all] [--draws 99]   # about 6 minutes
    python benchmarks/bench_gaussian_null.py --null pooled                        # about 2 minutes

For each input X (n ≤ 100), the H1 diagram of the small-input run's distances (union kNN graph,
k = 10, corrected effective resistance):

* ``--null gaussian``: its largest death/birth ratio against the same on ``--draws`` sets of n
  points from N(mean X, cov X); Monte Carlo p = (1 + #{null ≥ observed}) / (draws + 1). One line
  per input: name, observed ratio, p, and the null's 50th/95th/99th percentiles.
* ``--null pooled``: the universal null's p (:func:`topoembed.loops.feature_pvalues`) of the
  longest feature, with the mean of log log(death/birth) taken over the features of X and of 10
  random subsets of 90 % of it (the prevalence check's share at this size), times the number of
  X's features. One line per input: name, features of X, features pooled, longest ratio, p.

Inputs: COIL-20's 20 objects (72 images, 20 PCs as in ``bench_panel.py``), and the no-loop sets
of ``bench_panel.no_loop_sets`` at 50, 72 and 100 points (blob and sphere in R^20, σ = 0.05,
uniform in [0,1]^10; seeds 0-9).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_panel import coil_objects, no_loop_sets  # noqa: E402


def h1_ratios(X, k=None) -> np.ndarray:
    """The death/birth ratios of H1 on the small-input graph (union kNN, k =
    :data:`topoembed.params.SMALL_INPUT_K` unless given) and its corrected effective resistance."""
    from topoembed import graph, homology, spectral
    from topoembed.params import SMALL_INPUT_K

    k = SMALL_INPUT_K if k is None else k

    A = graph.knn_graph(X, k=k, symmetrize="or", random_state=0)
    dgm = np.asarray(homology.persistence(spectral.distance_matrix("effective_resistance", A=A), maxdim=1)["dgms"][1])
    fin = dgm[np.isfinite(dgm[:, 1]) & (dgm[:, 0] > 0)]
    return fin[:, 1] / fin[:, 0]


def longest_ratio(X, k=None) -> float:
    """The largest of :func:`h1_ratios` (1 where H1 is empty)."""
    r = h1_ratios(X, k)
    return float(r.max()) if len(r) else 1.0


def pooled_p(X, subsamples: int = 10, fraction: float = 0.9, seed: int = 0):
    """(features of X, features pooled, longest ratio, p): the universal null's p of X's longest
    H1 feature, L̄ the mean of log log(ratio) over X's features and those of ``subsamples``
    random subsets of ``fraction`` of X, times the number of X's features."""
    from topoembed.loops import EULER_GAMMA

    rng = np.random.default_rng(seed)
    own = h1_ratios(X)
    pool = np.concatenate([own] + [h1_ratios(X[rng.choice(len(X), int(fraction * len(X)), replace=False)])
                                   for _ in range(subsamples)])
    pool = np.log(np.log(pool[pool > 1]))
    top = own.max() if len(own) else 1.0
    if top <= 1:
        return len(own), len(pool), top, 1.0
    p = np.exp(-np.exp(np.log(np.log(top)) - EULER_GAMMA - pool.mean())) * len(own)
    return len(own), len(pool), top, min(1.0, float(p))


def gaussian_p(X, draws: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mean, cov = X.mean(0), np.cov(X, rowvar=False)
    seen = longest_ratio(X)
    null = np.array([longest_ratio(rng.multivariate_normal(mean, cov, size=len(X))) for _ in range(draws)])
    return seen, (1 + np.sum(null >= seen)) / (draws + 1), np.percentile(null, [50, 95, 99])


def inputs(part):
    if part in ("coil", "all"):
        yield from ((f"COIL-20 object {o}", Xo) for o, Xo, _ in coil_objects())
    if part in ("noise", "all"):
        for n in (50, 72, 100):
            for seed in range(10):
                yield from ((f"{name} {n} seed {seed}", Xs) for name, Xs in no_loop_sets(n, seed).items())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["coil", "noise", "all"])
    ap.add_argument("--draws", type=int, default=99)
    ap.add_argument("--null", default="gaussian", choices=["gaussian", "pooled"])
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    for name, X in inputs(args.part):
        if args.null == "pooled":
            own, pooled, top, p = pooled_p(X)
            print(f"{name}\t{own}\t{pooled}\t{top:.2f}\t{p:.3g}", flush=True)
            continue
        seen, p, q = gaussian_p(X, args.draws)
        print(f"{name}\t{seen:.2f}\t{p:.2f}\t" + " ".join(f"{v:.2f}" for v in q), flush=True)


if __name__ == "__main__":
    main()
