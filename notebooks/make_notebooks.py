"""Write and execute the example notebooks (outputs are committed with them).

    python notebooks/make_notebooks.py            # all of them, about 3-4 minutes on 2 cores
    python notebooks/make_notebooks.py 02 03      # only those whose name starts so

Needs the `notebooks` extra (`pip install -e ".[notebooks]"`). The single-cell quick start
reads neural_ipc_scvi.h5ad from a `shared/data` folder above the notebook (or from the
folder in $TOPOEMBED_DATA) and falls back to a synthetic stand-in, with a note, without it.
tests/test_notebooks.py executes the same notebooks (in a temporary copy).
"""
import os
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text):
    return nbformat.v4.new_code_cell(text.strip())


# One setup cell for every notebook. topoembed's embedding stage imports tqdm.auto, which in
# Jupyter without ipywidgets warns once ("IProgress not found"); these notebooks turn every
# progress bar off (progress=False, verbose=False), so that warning says nothing here.
SETUP_CODE = """
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets; no bars are shown here
import numpy as np
import matplotlib.pyplot as plt
import topoembed as te
"""

# The cell that finds neural_ipc_scvi.h5ad (notebooks 01 and 04).
FIND_SHARED_DATA = """
import os
from pathlib import Path
import anndata
import pandas as pd

NAME = "neural_ipc_scvi.h5ad"


def find_shared_data(name):
    \"\"\"shared/data/<name> in $TOPOEMBED_DATA, this folder or any folder above it; None if absent.\"\"\"
    folders = [Path(os.environ["TOPOEMBED_DATA"])] if os.environ.get("TOPOEMBED_DATA") else []
    here = Path.cwd().resolve()
    folders += [folder / "shared" / "data" for folder in (here, *here.parents)]
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


path = find_shared_data(NAME)
REAL = path is not None
cells = anndata.read_h5ad(path) if REAL else None
"""

# ---------------------------------------------------------------------------------------------
QUICKSTART = [
    md("""
# Quick start: the cell-cycle loop in single cells with `te.pp` / `te.tl` / `te.pl`

topoembed finds loops in high-dimensional data with persistent homology on a **spectral
distance** (by default the effective resistance of a kNN graph), which stays reliable where
the Euclidean distance drowns in noise (notebook 02 shows why). In single-cell data the loop
to look for is the cell cycle: cycling cells go round it once per division.

Like scanpy, topoembed works on an `AnnData` object: `te.pp` (preprocessing), `te.tl`
(tools: the analysis, results written into the AnnData) and `te.pl` (plots). We use 26,625
neural intermediate progenitor cells (IPCs) of the developing mouse pallium, given as their
10-D scVI latent space (`obsm["X_scVI"]`), from the benchmark of Damrich, Berens and Kobak
(NeurIPS 2024). If that file is not on this machine, the notebook runs on a synthetic noisy
circle instead and says so.
"""),
    code(SETUP_CODE),
    md("""
## 1. Load the data

The file lives in a `shared/data` folder beside the repository. We look for it from this
notebook's folder upwards (or in the folder named by the environment variable
`TOPOEMBED_DATA`), so the notebook does not depend on where the repository is.
"""),
    code(FIND_SHARED_DATA + """
if REAL:
    # 3,000 random cells keep this notebook to about a minute; te.tl.run takes all 26,625 as well
    pick = np.sort(np.random.default_rng(0).choice(cells.n_obs, 3000, replace=False))
    adata = cells[pick].copy()
    use_rep = "X_scVI"
    print(f"Loaded {NAME}: {cells.n_obs:,} neural IPCs, 10-D scVI latent space. "
          f"Using a random {adata.n_obs:,} of them.")
else:
    circle = te.datasets.make("circle", n=1500, d=50, sigma=0.25, seed=0)
    adata = anndata.AnnData(circle.X.astype(np.float32),
                            obs=pd.DataFrame({"true_angle": circle.angle},
                                             index=[f"point{i}" for i in range(len(circle.X))]))
    use_rep = None  # the points themselves (adata.X)
    print(f"NOTE: {NAME} was not found (it is looked for in a shared/data folder above this notebook, "
          "or in $TOPOEMBED_DATA).\\n"
          "This run uses a SYNTHETIC STAND-IN instead: 1,500 points on a circle in R^50 with Gaussian noise "
          "(sigma = 0.25).\\nThe steps are the same; the numbers and the interpretation below are about this "
          "circle, not about cells.")
adata
"""),
    md("""
## 2. Find the loop: `te.tl.run`

One call builds the kNN graph, the effective-resistance distances, the persistence diagram,
decides how many loops there are, and places every cell on the loop. With more than 1,000
cells it analyses **random subsamples of 700 cells** (by default ten, stopping after six
when they all agree; up to five here, `n_subsamples=5`, to save time: they stop after three
when those agree) and reports a loop only if
most subsamples find it: the share that found it is the loop's **prevalence**, the main
measure of confidence on a whole dataset. Each loop also gets a p-value for its persistence
under a universal null distribution of noise (Bobrowski and Skraba 2023).
"""),
    code("""
te.tl.run(adata, use_rep=use_rep, n_subsamples=5)   # default: n_subsamples='auto' (10)

result = adata.uns["topoembed"]
det = result["detection"]
found = te.tl.get_loops(adata)
print(f"verdict: {result['verdict']['headline']}  (distance: {result['params']['distance']}, k = {result['params']['k']})")
for i, lp in enumerate(found):
    p = lp.get("p_value")
    print(f"  loop {i + 1}: found in {lp['prevalence']:.0%} of the subsamples, persistence {lp['persistence']:.3g}, "
          f"p-value {'n/a' if p is None else f'{p:.2g}'}")
print("detection scores s_1..s_5 (reference subsample):", {m: round(float(s), 2) for m, s in det["scores"].items()})
print("loops per subsample:", [int(r["n_loops"]) for r in result["ensemble"]["runs"].values()])
for w in result.get("warnings", []):
    print("  warning:", str(w))
print(f"time: {result['timings_s']['total']:.0f} s")
"""),
    md("""
What was stored (`adata.uns["topoembed"]`: diagrams, detection, loops, parameters, timings;
`adata.obs`: per-cell phase and membership):
"""),
    code("""
print("uns['topoembed']:", ", ".join(sorted(result.keys())))
print("obs:", ", ".join(c for c in adata.obs.columns if c.startswith("topoembed_")))
adata.obs[["topoembed_phase", "topoembed_phase_confidence", "topoembed_on_loop"]].head()
"""),
    md("""
## 3. The evidence: `te.pl.diagram`, `te.pl.barcode`, `te.pl.detection`

In the **persistence diagram** every point is a feature that is born at one distance and
dies at a larger one; H1 features are loops, and a real loop lives long (far above the
diagonal) while noise makes many short-lived ones near it. The **barcode** shows the same
lifetimes as bars. The **detection score** s_m measures the gap after the m-th longest H1
bar (1 = a clean gap, 0 = none); the number of loops is where the largest gap is.
"""),
    code("""
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
te.pl.diagram(adata, ax=axes[0])
te.pl.barcode(adata, ax=axes[1])
te.pl.detection(adata, ax=axes[2])
plt.tight_layout()
"""),
    md("""
## 4. Where is each cell on the loop? The phase θ

`obs["topoembed_phase"]` is a circular coordinate θ in [0, 2π): how far round the loop a cell
is. Neighbouring cells on the loop get close values, and going once round the loop advances θ
by 2π. Where θ = 0 lies and which way it runs are arbitrary. `topoembed_phase_confidence`
(0 to 1) says how well a cell's neighbours agree on its θ, and `topoembed_on_loop` whether
it lies close to the loop.
"""),
    code("""
theta = adata.obs["topoembed_phase"].to_numpy()
conf = adata.obs["topoembed_phase_confidence"].to_numpy()
on = adata.obs["topoembed_on_loop"].to_numpy().astype(bool)
print(f"cells on the loop: {on.mean():.0%}; phase confidence: median {np.nanmedian(conf):.2f}, "
      f"{np.mean(conf < 0.5):.0%} of cells below 0.5")
if REAL:
    score = adata.obs["CellCycle"].to_numpy()
    Z = np.c_[np.ones(len(theta)), np.cos(theta), np.sin(theta)]
    beta, *_ = np.linalg.lstsq(Z, score, rcond=None)
    check = 1 - np.var(score - Z @ beta) / np.var(score)
    print(f"R² of the cell-cycle score on (cos θ, sin θ): {check:.2f}  (how much of the score θ explains)")
else:
    from topoembed.localize import circular_correlation
    check = abs(circular_correlation(theta, adata.obs["true_angle"].to_numpy()))
    print(f"|circular correlation| of θ with the true angle on the circle: {check:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].hist(theta, bins=36, range=(0, 2 * np.pi)); axes[0].set_xlabel("θ"); axes[0].set_ylabel("cells")
if REAL:
    axes[1].scatter(theta, score, c=conf, s=2, cmap="viridis_r", vmin=0, vmax=1)
    axes[1].set_ylabel("CellCycle score")
else:
    axes[1].scatter(theta, adata.obs["true_angle"], c=conf, s=2, cmap="viridis_r", vmin=0, vmax=1)
    axes[1].set_ylabel("true angle")
axes[1].set_xlabel("θ (colour: phase confidence)")
plt.tight_layout()
"""),
    md("""
## 5. A 2-D picture: `te.tl.embed` and the loop check

`te.tl.embed` draws the cells in 2-D with a contrastive neighbour embedding (`"infonce"`,
t-SNE-like; notebook 03 shows the others). A 2-D picture can hide a loop or invent one, so
`te.tl.embedding_topology` runs the same loop detection on the embedding and compares it with
the high-dimensional result. `te.pl.loop` draws the cells coloured by θ with the loop's
representative cycle (a closed path of cells that provably goes round the hole).
"""),
    code("""
te.tl.embed(adata, "infonce", use_rep=use_rep, n_epochs=30, verbose=False)   # few epochs: quick, rough
check_2d = te.tl.embedding_topology(adata, "X_topoembed_infonce")
print("loop check of the embedding:", check_2d["message"])

bases = ["umap", "topoembed_infonce"] if REAL else ["topoembed_infonce"]
fig, axes = plt.subplots(1, len(bases) + 1, figsize=(5.5 * (len(bases) + 1), 5))
for ax, basis in zip(axes, bases):
    te.pl.loop(adata, basis=basis, ax=ax)
if REAL:
    axes[-1].scatter(*adata.obsm["X_umap"].T, c=adata.obs["CellCycle"], s=2, cmap="viridis")
    axes[-1].set_title("authors' UMAP: CellCycle score")
else:
    axes[-1].scatter(*adata.obsm["X_topoembed_infonce"].T, c=adata.obs["true_angle"], s=2, cmap="twilight")
    axes[-1].set_title("embedding: true angle")
axes[-1].set_xticks([]); axes[-1].set_yticks([])
plt.tight_layout()
"""),
    md("## 6. What this says, in plain words"),
    code("""
n = int(det["n_loops"])
what = "cells" if REAL else "points (synthetic stand-in)"
if n == 0:
    print(f"No loop was found in these {adata.n_obs:,} {what}: no H1 feature stands out from the noise.")
else:
    lp = found[0]
    p = lp.get("p_value")
    print(f"One loop stands out in these {adata.n_obs:,} {what}: {lp['prevalence']:.0%} of the subsamples found it "
          f"and its detection score is {det['scores']['1']:.2f} (1 = a clean gap to the next feature)"
          + ("." if p is None else f"; its p-value is {p:.2g}" + (" (conclusive on its own)." if p < 0.01 else
             " (not below 0.01, so not conclusive on its own: the loop is thick" + ("; its recurrence in the "
             "subsamples supports it)." if lp["prevalence"] >= 0.9 else ")."))))
    print(f"{on.mean():.0%} of them lie close to the loop; the others sit inside or outside it and got a phase "
          "from their neighbours, with less confidence.")
    if REAL:
        print(f"Going round the loop, the cell-cycle score rises and falls once: θ explains {check:.0%} of its "
              "variation, so this loop is the cell cycle.")
    else:
        print(f"θ follows the true position on the circle (|correlation| {check:.2f}).")
    print("The 2-D embedding:", check_2d["message"] + ".")
"""),
    md("""
How to read θ: it is a *position* on the loop, not a time and not a phase label. Cells are not
spread evenly over θ; they pile up where the cycle is slow. Which arc is G1, S or G2/M
has to be read from marker genes along θ (the scVI space has no genes): with genes,
`te.pp.recipe_cell_cycle` scores each cell's S and G2/M genes, `te.tl.run` turns θ so that S comes
before G2/M with θ = 0 at G1/S, and `te.pl.phase(adata)` draws the scores (or any genes, e.g.
`te.pl.phase(adata, ["MKI67", "TOP2A"])`) along θ. Cells with low phase confidence, inside the
loop or far from it, should not be given a precise position.

Next: `te.tl.run(adata, use_rep="X_scVI")` on all cells, or from raw counts
`te.pp.recipe_cell_cycle(adata)` then `te.tl.run(adata, use_rep="X_pca_cell_cycle")`. The
command line does the same and writes an HTML report: `topoembed run cells.h5ad --use-rep
X_scVI --out results/cells`.
"""),
]

# ---------------------------------------------------------------------------------------------
NOISE = [
    md("""
# Why Euclidean persistent homology fails in high dimension, and spectral distances do not

A circle of radius 1 in R^50, with Gaussian noise of standard deviation σ added in **all 50
dimensions** (the protocol of Damrich, Berens and Kobak, NeurIPS 2024). In the circle's own
plane the noise is small, but summed over 50 dimensions it adds about σ·√(2·50) = 10σ to
every distance between two points, more than the circle's diameter already at σ = 0.2.
"""),
    code(SETUP_CODE),
    md("""
## 1. The noise swamps the distances

Pairwise Euclidean distances without noise and with σ = 0.3: without noise they range from
0 (neighbours) to 2 (opposite points); with noise every pair is about equally far apart, so
the neighbours along the circle are no longer the closest points.
"""),
    code("""
from scipy.spatial.distance import pdist

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for ax, sigma in zip(axes, [0.0, 0.3]):
    data = te.datasets.make("circle", n=1000, d=50, sigma=sigma, seed=0)
    d = pdist(data.X)
    ax.hist(d, bins=80); ax.set_xlabel("Euclidean distance"); ax.set_title(f"σ = {sigma}")
    print(f"σ = {sigma}: distances {d.min():.2f} to {d.max():.2f}, spread / mean = {d.std() / d.mean():.2f}")
plt.tight_layout()
"""),
    md("""
## 2. A noise sweep: detection score against σ

For each σ we build one kNN graph (k = 100, 1,000 points, the package defaults) and compute
persistent homology twice: on the Euclidean distances, and on the **effective resistance**
of the graph (the expected commute time of a random walk, corrected for graph size). The
graph keeps only which points are near which; the spectral distance then measures how well
connected two points are through many paths, which averages the noise out.

The **detection score** s_1 is the gap between the longest H1 bar and the next, relative to
the longest (1 = one clean loop, 0 = nothing stands out), as in the paper. Only the
core array functions are used here: `graph`, `spectral`, `homology`, `loops`.
"""),
    code("""
import time
from topoembed import graph, homology, loops, spectral

sigmas = [0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
kinds = ["euclidean", "effective_resistance"]
scores = {kind: [] for kind in kinds}
diagrams = {}
t0 = time.perf_counter()
for sigma in sigmas:
    X = te.datasets.make("circle", n=1000, d=50, sigma=sigma, seed=0).X
    A = graph.knn_graph(X, k=100)
    for kind in kinds:
        D = spectral.distance_matrix(kind, A=A, X=X)
        ph = homology.persistence(D)
        det = loops.detect(ph["dgms"][1], scale=ph["scale"])
        scores[kind].append(det["scores"][1])
        diagrams[kind, sigma] = (ph["dgms"], det)
print(" σ     " + "  ".join(f"{k:>22s}" for k in kinds))
for i, sigma in enumerate(sigmas):
    print(f"{sigma:4.2f}  " + "  ".join(f"{scores[k][i]:22.2f}" for k in kinds))
print(f"({time.perf_counter() - t0:.0f} s)")
"""),
    code("""
fig, ax = plt.subplots(figsize=(6, 3.5))
for kind, marker in zip(kinds, "os"):
    ax.plot(sigmas, scores[kind], marker=marker, label=kind.replace("_", " "))
ax.set_xlabel("noise σ"); ax.set_ylabel("detection score s_1"); ax.set_ylim(-0.05, 1.05)
ax.legend(); ax.set_title("circle in R^50, 1,000 points");
"""),
    md("""
## 3. Diagrams side by side

Top row Euclidean, bottom row effective resistance, at three noise levels (the detected
loop, if any, circled). On Euclidean distances the circle's H1 feature is born late and dies
soon after as σ grows, and it sinks into the cloud of noise features; on effective
resistance it stays far above the diagonal until the noise is much larger.
"""),
    code("""
from topoembed import plotting

show = [0.15, 0.25, 0.35]
fig, axes = plt.subplots(2, len(show), figsize=(4.2 * len(show), 8))
for row, kind in enumerate(kinds):
    for col, sigma in enumerate(show):
        dgms, det = diagrams[kind, sigma]
        name = "Euclidean" if kind == "euclidean" else "eff. resistance"
        plotting.diagram(axes[row, col], dgms, highlight=det["features"],
                         title=f"{name}, σ = {sigma}: {det['n_loops']} loop(s)")
plt.tight_layout()
"""),
    md("""
## What to take away

- In high dimension, noise in every direction adds nearly the same amount to every
  Euclidean distance. The Vietoris–Rips filtration on those distances connects the points
  across the circle almost as early as along it, so the loop is born late and dies at once.
- A kNN graph keeps only *who is near whom*; the effective resistance (and the diffusion
  distance) then measure connection through *many* paths of the graph, which averages
  the noise out. The loop survives far more noise.
- Beyond some noise level no method can see the loop any more; there the score falls to 0
  for both, which is the right answer.

The pipeline's default (`te.tl.run`, `topoembed run`) uses the corrected effective
resistance and also checks a loop with a second spectral distance (the diffusion distance)
before reporting it.
"""),
]

# ---------------------------------------------------------------------------------------------
EMBEDDINGS = [
    md("""
# Embeddings: which 2-D pictures keep the loop?

A 2-D embedding is how most people look at their data, but it can hide a loop or invent
one. topoembed trains several kinds of embedding in PyTorch (`te.tl.embed`) and checks each
against the loops found in high dimension (`te.tl.embedding_topology`).

The data: 1,000 points on a circle in R^50 with noise σ = 0.25 (notebook 02: Euclidean
persistent homology already misses this loop; effective resistance finds it). The settings
are small (few epochs) so the notebook runs in about a minute; with the defaults the
embeddings are smoother.
"""),
    code(SETUP_CODE),
    code("""
import anndata
import pandas as pd

circle = te.datasets.make("circle", n=1000, d=50, sigma=0.25, seed=0)
adata = anndata.AnnData(circle.X.astype(np.float32),
                        obs=pd.DataFrame({"true_angle": circle.angle}, index=[f"p{i}" for i in range(1000)]))
te.tl.run(adata)   # the loop in R^50 (one run: 1,000 points), effective-resistance distances kept in obsp
print("loops in R^50:", adata.uns["topoembed"]["detection"]["n_loops"],
      " score:", round(adata.uns["topoembed"]["detection"]["score"], 2))
"""),
    md("""
## 1. The contrastive spectrum: from t-SNE to UMAP

Contrastive neighbour embeddings (Damrich et al., ICLR 2023) pull kNN neighbours together and
push random pairs apart. The loss decides where on the t-SNE ↔ UMAP spectrum the result lies:

- `"infonce"`: InfoNCE, t-SNE-like (more spread, finer local structure);
- `"neg"` with `s` from 0 to 1: negative sampling with a fixed normaliser; `s = 0` is
  t-SNE-like, `s = 1` is UMAP-like (tighter clusters, more white space).
"""),
    code("""
import time

runs = [("infonce", {}, "InfoNCE (t-SNE-like)"),
        ("neg", {"s": 0.0}, "NEG, s = 0 (t-SNE-like)"),
        ("neg", {"s": 0.5}, "NEG, s = 0.5"),
        ("neg", {"s": 1.0}, "NEG, s = 1 (UMAP-like)")]
titles = {}
for loss, params, title in runs:
    key = f"X_{loss}" + (f"_s{params['s']}" if "s" in params else "")
    t0 = time.perf_counter()
    te.tl.embed(adata, loss, n_epochs=30, key_added=key, verbose=False, **params)
    titles[key] = title
    print(f"{title:26s} {time.perf_counter() - t0:5.1f} s")


def show(keys, color="true_angle", cmap="twilight"):
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.6))
    for ax, key in zip(np.atleast_1d(axes), keys):
        c = adata.obs[color]
        c = c.cat.codes if hasattr(c, "cat") else c
        ax.scatter(*adata.obsm[key].T, c=c, s=3, cmap=cmap)
        ax.set_title(titles[key], fontsize=10); ax.set_xticks([]); ax.set_yticks([])
    plt.tight_layout()


show(list(titles))
"""),
    md("""
## 2. Sketch-map, classic and symmetrised

Sketch-map (Ceriotti et al. 2011) matches distances in high and low dimension through
sigmoid transforms, so that it cares about the mid-range distances and ignores both tiny and
huge ones. It can take any distance matrix: here the **effective resistance** that
`te.tl.run` stored (`distance_key="topoembed"`). `"sketchmap"` uses the classic gradient,
`"sketchmap_sym"` the symmetrised one.
"""),
    code("""
for loss, title in [("sketchmap", "sketch-map (classic)"), ("sketchmap_sym", "sketch-map (symmetrised)")]:
    t0 = time.perf_counter()
    te.tl.embed(adata, loss, distance_key="topoembed", n_epochs=30, key_added=f"X_{loss}", verbose=False)
    titles[f"X_{loss}"] = title
    print(f"{title:26s} {time.perf_counter() - t0:5.1f} s")
show(["X_sketchmap", "X_sketchmap_sym"])
"""),
    md("""
## 3. SCAN-style clustering, and a triplet embedding

`te.tl.cluster` trains a small network that gives every point a class probability, so that
kNN neighbours share a class and far-apart points do not (SCAN-style min–max loss). On a
circle the classes should be arcs. The **triplet loss** then embeds the points so that an
anchor is closer to a positive than to a negative by a margin: unsupervised (positives are
kNN neighbours) or with labels (positives share the anchor's class), here the clusters.
"""),
    code("""
t0 = time.perf_counter()
te.tl.cluster(adata, n_classes=6, n_restarts=1, n_epochs=10, verbose=False)
print(f"SCAN clustering ({time.perf_counter() - t0:.1f} s), cluster sizes:",
      adata.obs["topoembed_cluster"].value_counts().sort_index().to_dict())
for labels, key, title in [(None, "X_triplet", "triplet (unsupervised)"),
                           ("topoembed_cluster", "X_triplet_clusters", "triplet (cluster labels)")]:
    t0 = time.perf_counter()
    te.tl.embed(adata, "triplet", labels=labels, n_epochs=20, key_added=key, verbose=False)
    titles[key] = title
    print(f"{title:26s} {time.perf_counter() - t0:5.1f} s")
titles["X_infonce_clusters"] = "InfoNCE, coloured by cluster"
adata.obsm["X_infonce_clusters"] = adata.obsm["X_infonce"]
show(["X_infonce_clusters", "X_triplet", "X_triplet_clusters"], color="topoembed_cluster", cmap="tab10")
"""),
    md("""
## 4. The loop check on every embedding

`te.tl.embedding_topology` runs loop detection on each 2-D embedding and compares it with the
result in R^50: *the embedding shows the loop*, *hides the loop*, or *shows a loop the data does not support*.
"""),
    code("""
rows = []
for key, title in titles.items():
    if key == "X_infonce_clusters":
        continue
    res = te.tl.embedding_topology(adata, key)
    s_1 = {int(m): s for m, s in res["low"]["scores"].items()}[1]
    rows.append({"embedding": title, "loops in 2-D": res["low"]["n_loops"], "s_1 in 2-D": round(float(s_1), 2),
                 "verdict": res["message"]})
pd.DataFrame(rows).set_index("embedding")
"""),
    md("""
## What to take away

- An embedding is a picture, not evidence: whether it shows the loop depends on the loss and
  on the settings (here: very few epochs). Detect loops in high dimension (`te.tl.run`), and
  use `te.tl.embedding_topology` to know whether the picture you show is faithful to them.
- Along the contrastive spectrum the loop is usually kept; the UMAP-like end gives a thinner,
  more contracted ring, the t-SNE-like end a wider one.
- Sketch-map works on any distance, including the spectral distance used for detection, but
  needs more epochs than given here to unfold the circle; check before trusting it.
- Clusters of a loop are arcs; a triplet embedding trained on them sees only the cluster
  labels, so whether it keeps the loop depends on whether neighbouring arcs end up adjacent.
"""),
]

# ---------------------------------------------------------------------------------------------
RARE_CYCLE = [
    md("""
# A cycle that few cells carry: the search inside parts

In an atlas only a few percent of the cells may divide. `te.tl.run` analyses a whole dataset
as random subsamples of 700 cells, and a cycle carried by 10 % of the cells has only about 70
cells in each: too few to be found there, or found without support. So the run also splits
the cells' kNN graph into communities (Leiden) and searches each part that is nearly apart
from the rest, with its shell (its cells' nearest outside cells), for a loop (`parts=True`, the default;
`--parts 0` on the command line skips it).

Here: all 3,668 non-cycling neural IPCs of the quick start's data plus 400 random cycling ones
(10 %), in their 10-D scVI latent space. Without the data file, a synthetic stand-in: a circle
carried by 10 % of 4,000 points among 6 Gaussian clusters.
"""),
    code(SETUP_CODE),
    code(FIND_SHARED_DATA + """
if REAL:
    cycling = cells.obs["Cycling"].to_numpy(bool)
    pick = np.sort(np.r_[np.flatnonzero(~cycling),
                         np.random.default_rng(1).choice(np.flatnonzero(cycling), 400, replace=False)])
    adata = cells[pick].copy()
    use_rep = "X_scVI"
    print(f"{adata.n_obs:,} cells: {(~cycling).sum():,} non-cycling and 400 of the {cycling.sum():,} cycling ones")
else:
    mix = te.datasets.make("circle_in_clusters", n=4000, d=50, sigma=0.2, fraction=0.1, seed=0)
    adata = anndata.AnnData(mix.X.astype(np.float32),
                            obs=pd.DataFrame({"Cycling": mix.label == 0, "true_angle": mix.angle},
                                             index=[f"point{i}" for i in range(len(mix.X))]))
    use_rep = None
    print(f"NOTE: {NAME} was not found; this run uses a SYNTHETIC STAND-IN: a circle carried by 400 of "
          "4,000 points among 6 Gaussian clusters in R^50.")
"""),
    md("""
## 1. The random subsamples alone (`parts=False`)
"""),
    code("""
te.tl.run(adata, use_rep=use_rep, parts=False, key_added="uniform", progress=False)
verdict = te.tl.get_verdict(adata, "uniform")   # as summary.json has it
print(verdict["headline"])
for call in verdict["loops"]:
    print(f"  loop {call['loop']}: {call['text']}")
"""),
    md("""
## 2. The default run: the search inside parts
"""),
    code("""
te.tl.run(adata, use_rep=use_rep, progress=False)
result = adata.uns["topoembed"]
verdict = te.tl.get_verdict(adata)
print(verdict["headline"])
for call in verdict["loops"]:
    print(f"  loop {call['loop']}: {call['text']}")
parts = result["detection"]["parts"]
print("parts at resolutions", [float(r) for r in parts["resolutions"]], ":", [int(n) for n in parts["n_parts_by_resolution"]],
      "; sizes of those searched:", [int(n) for n in parts["searched"]], "(each with its shell, its cells' nearest outside cells: up to 700 in all)")
for lp in te.tl.get_loops(adata):
    ev = lp.get("part_evidence")
    if ev:
        print(f"the subsamples' loop (p = {ev['ensemble_p_value']:.2g}, in {ev['ensemble_prevalence']:.0%} of them) "
              f"is found again in a part of {ev['part_size']} cells and the {ev['n_analysed'] - ev['part_size']} cells of "
              f"its shell: p = {ev['p_value']:.2g} after multiplying by the {ev['n_parts_searched']} part(s) searched")
    elif "part" in lp:
        print(f"a loop found only in a part of {lp['part_size']} cells: p = {lp['p_value']:.2g}")
"""),
    md("""
Where the subsamples already found the loop without support, the part's analysis is its
evidence (`part_evidence` records both), and so is its membership (section 4); its phase stays
the subsamples' consensus over all cells. A loop that only a part holds is a new loop: reported if most random subsamples of the
cells analysed find it again, supported by its corrected p-value alone, and with its phase and
membership on the cells analysed (the part and its shell) only.

## 3. The phase on the cycling cells
"""),
    code("""
theta = adata.obs["topoembed_phase"].to_numpy()
cyc = adata.obs["Cycling"].to_numpy(bool)
has = cyc & np.isfinite(theta)
print(f"cycling cells with a phase: {has.sum()} of {cyc.sum()}")
if REAL:
    score = adata.obs["CellCycle"].to_numpy()[has]
    Z = np.c_[np.ones(has.sum()), np.cos(theta[has]), np.sin(theta[has])]
    beta, *_ = np.linalg.lstsq(Z, score, rcond=None)
    print(f"R² of the cell-cycle score on (cos θ, sin θ), cycling cells: {1 - np.var(score - Z @ beta) / np.var(score):.2f}")
    truth, label = score, "CellCycle score"
else:
    from topoembed.localize import circular_correlation
    truth, label = adata.obs["true_angle"].to_numpy()[has], "true angle"
    print(f"|circular correlation| with the true angle: {abs(circular_correlation(theta[has], truth)):.2f}")
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(theta[has], truth, s=4)
ax.set_xlabel("θ"); ax.set_ylabel(label)
plt.tight_layout()
"""),
    md("""
## 4. Which cells lie on the loop

`obs["topoembed_on_loop"]` marks the cells within the loop's tube round its cycle, measured by
the analysis whose evidence the loop carries: here the part's, on the cells it analysed (the
part and its shell; elsewhere `topoembed_loop_distance` is NaN). The subsamples' own loop was
weak, and its tube took in nearly every cell (`part_evidence["ensemble_n_on_loop"]`).
"""),
    code("""
on = adata.obs["topoembed_on_loop"].to_numpy(bool)
print(f"cells on the loop: {on.sum()} ({(on & cyc).sum()} of the {cyc.sum()} cycling ones, {(on & ~cyc).sum()} others)")
loops = te.tl.get_loops(adata)
ev = (loops[0].get("part_evidence") if loops else None) or {}
if ev.get("ensemble_n_on_loop") is not None:
    print(f"the subsamples' tube: {ev['ensemble_n_on_loop']:,} of {adata.n_obs:,} cells")
"""),
    md("""
## What to take away

- On a whole dataset, a loop that the random subsamples miss or find without support may still
  be found in the part of the graph that holds it; the verdict then rests on that part's
  p-value, multiplied by the number of parts searched.
- It finds such a loop where its cells form a group of their own (nearly apart from the rest:
  conductance below 0.08, at least 100 cells), analysed with its shell (each of its cells'
  nearest cells outside it), where the loop may close. With 200 cycling cells (5 %) among the
  same non-cycling cells the run reports a supported loop in 6 of 8 random draws (BENCHMARKS.md,
  "A part's shell").
- Which cells carry the loop is read where the loop stands out: 459 cells on the loop here, 334
  of them cycling, against 3,663 in the subsamples' tube (BENCHMARKS.md, "A minority loop's
  membership").
"""),
]

SEVERAL_SAMPLES = [
    md("""
# Several samples: one analysis per group, one phase column

Cells from several samples, donors or time points are best analysed sample by sample when their
cycles need not be one loop: `te.tl.run(adata, groupby=...)` runs each group of an `obs` column
alone (each group's result is that of a run on its cells only) and gives a verdict per group.
Without cell-cycle scores each group's phase would have its own origin and direction, so the
phases are turned to agree across groups on the representation they share (`align_phases=True`,
the default).

Here: the neural IPCs of three time points (7, 12 and 13 weeks), in their 10-D scVI latent
space. Without the data file, a synthetic stand-in: three samples of 600 points, two tracing
one ring of R^10 and one a Gaussian blob.
"""),
    code(SETUP_CODE),
    code(FIND_SHARED_DATA + """
if REAL:
    adata = cells[cells.obs["Subset"].isin(["7wk", "12wk", "13wk"])].copy()
    adata.obs["Subset"] = adata.obs["Subset"].cat.remove_unused_categories()
    use_rep, groupby = "X_scVI", "Subset"
    print(adata.obs["Subset"].value_counts().to_string())
else:
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    t = rng.uniform(0, 2 * np.pi, 1200)
    ring = np.c_[np.cos(t), np.sin(t), np.zeros((1200, 8))] @ Q + 0.1 * rng.normal(size=(1200, 10))
    X = np.r_[ring[:600] + 3.0, ring[600:], rng.normal(size=(600, 10))]
    adata = anndata.AnnData(X.astype(np.float32), obs=pd.DataFrame(
        {"sample": np.repeat(["s1", "s2", "blob"], 600), "true_angle": np.r_[t, np.full(600, np.nan)]},
        index=[f"point{i}" for i in range(1800)]))
    use_rep, groupby = "X", "sample"
    print(f"NOTE: {NAME} was not found; this run uses a SYNTHETIC STAND-IN: two samples of 600 points "
          "on one ring of R^10 (the first shifted) and a Gaussian blob of 600.")
"""),
    md("""
## 1. One run per group
"""),
    code("""
te.tl.run(adata, use_rep=use_rep, groupby=groupby, progress=False)
te.tl.get_group_verdicts(adata)
"""),
    md("""
Each row is the verdict of its group alone, with its first loop's evidence. Every reader takes
`group=`: `te.tl.get_loops(adata, group=...)`, `te.tl.get_verdict(adata, group=...)`, and the
plots.
"""),
    code("""
first = te.tl.get_group_verdicts(adata).index[0]
print("loops of", first, ":", [(round(float(lp["birth"]), 4), round(float(lp["death"]), 4)) for lp in te.tl.get_loops(adata, group=first)])
te.pl.loop(adata, group=first, show=False);
"""),
    md("""
## 2. One phase column across groups

`uns["topoembed"]["phase_alignment"]` says which groups were turned to agree with the largest
one, and how well they agreed. The same run with `align_phases=False` keeps each group's own
origin and direction: within each group nothing changes, across groups the phases do not
compare.
"""),
    code("""
for g, info in adata.uns["topoembed"]["phase_alignment"].items():
    print(f"{g}: turned to {info['aligned_to']} (reflected: {bool(info['reflected'])}), agreement {float(info['agreement']):.2f}")
own = adata.copy()
te.tl.run(own, use_rep=use_rep, groupby=groupby, progress=False, align_phases=False)


def across_groups(theta):
    ok = np.isfinite(theta)
    if REAL:  # R² of the cell-cycle score on (cos θ, sin θ), all cells with a phase
        y = adata.obs["CellCycle"].to_numpy()[ok]
        Z = np.c_[np.ones(ok.sum()), np.cos(theta[ok]), np.sin(theta[ok])]
        beta, *_ = np.linalg.lstsq(Z, y, rcond=None)
        return "R² of CellCycle", 1 - np.var(y - Z @ beta) / np.var(y)
    from topoembed.localize import circular_correlation
    return "|circular correlation| with the true angle", abs(circular_correlation(theta[ok], adata.obs["true_angle"].to_numpy()[ok]))


for name, a in (("own origins", own), ("aligned", adata)):
    label, value = across_groups(a.obs["topoembed_phase"].to_numpy())
    print(f"{name:12s} {label} over all groups: {value:.2f}")
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
truth = adata.obs["CellCycle"].to_numpy() if REAL else adata.obs["true_angle"].to_numpy()
for ax, (name, a) in zip(axes, (("own origins", own), ("aligned", adata))):
    for g in a.obs[groupby].astype(str).unique():
        m = (a.obs[groupby].astype(str) == g).to_numpy()
        ax.scatter(a.obs["topoembed_phase"].to_numpy()[m], truth[m], s=3, label=g)
    ax.set_title(name); ax.set_xlabel("θ")
axes[0].set_ylabel("CellCycle score" if REAL else "true angle"); axes[1].legend(markerscale=4)
plt.tight_layout()
"""),
    md("""
## What to take away

- `groupby` gives a verdict per sample; each is the run on that sample's cells alone.
- With the recipe's S and G2/M scores each group's θ = 0 is its G1/S boundary; without them the
  phases are turned to agree with the largest group's, so `obs["topoembed_phase"]` compares
  across samples. A group whose loop lies elsewhere keeps its own phase.
- Where all samples share one cycle (these time points of one population), the run on all cells
  is faster and gives a phase to the samples too small for a loop of their own (BENCHMARKS.md,
  "Samples analysed apart").
"""),
]

NOTEBOOKS = {
    "01_quickstart_single_cells.ipynb": QUICKSTART,
    "02_euclidean_vs_spectral_noise.ipynb": NOISE,
    "03_embeddings.ipynb": EMBEDDINGS,
    "04_rare_cycling_cells.ipynb": RARE_CYCLE,
    "05_several_samples.ipynb": SEVERAL_SAMPLES,
}


def kernel_env():
    """The kernel's environment: this checkout's topoembed importable even where it is not
    installed, and figures drawn inline (a test run may have set MPLBACKEND=Agg)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    if str(ROOT) not in path.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return env


def execute(nb, cwd, timeout=600):
    """Run every cell of ``nb`` in a fresh python3 kernel started in folder ``cwd``."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=kernel_env())
    return nb


def build(name, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    t0 = time.perf_counter()
    execute(nb, HERE)
    nbformat.write(nb, HERE / name)
    print(f"wrote notebooks/{name} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for name, cells in NOTEBOOKS.items():
        if not wanted or any(name.startswith(w) for w in wanted):
            build(name, cells)
