"""The real-data panel: every dataset of ../shared/data with a truth, IPC subsamples of several
sizes, the IPC minority mixtures and the no-loop controls, with the defaults, and next to each,
in the same run, what a user would try instead.

    python benchmarks/bench_panel.py [--part fucci|mcdavid|coil|coil_pixels|ipc|minority|controls|all] [--seeds 3] [--draws 1]
    python benchmarks/bench_panel.py --table          # the table of BENCHMARKS.md from the result files
    python benchmarks/bench_panel.py --part mcdavid_sweep   # McDavid forced to one loop over 24 fixed settings
    python benchmarks/bench_panel.py --part minority_part --draws 8   # the mixtures' cycling part, 7 ways
    python benchmarks/bench_panel.py --part minority_sampling --draws 8   # subsamples that favour sparse cells
    python benchmarks/bench_panel.py --part minority_shell --draws 8   # the part with its shell, against other fills
    python benchmarks/bench_panel.py --part linear_phase   # the phase refined linearly
    python benchmarks/bench_panel.py --part groups   # the IPC cells by time point, each analysed alone
    python benchmarks/bench_panel.py --part coil_parts   # all COIL-20 images, parts of 72 images searched
    python benchmarks/bench_panel.py --part snr      # how far each real loop stands out of its noise, beside circles
    python benchmarks/bench_panel.py --part phase_cycle --seeds 4   # the cycle θ is spaced along, near the limit
    python benchmarks/bench_panel.py --part noise_nulls   # the noise benchmark's blob and sphere: false loops
    python benchmarks/bench_panel.py --part coil_pixels   # COIL-20 as its 1,024 grey levels (not 20 PCs)
    python benchmarks/bench_panel.py --part coil_arcs     # open arcs of each COIL-20 object's turn: no loop
    python benchmarks/bench_panel.py --part coil_check    # the prevalence check's runs on COIL-20's possible loops
    python benchmarks/bench_panel.py --part part_nulls --seeds 5   # held-out no-loop inputs of many parts
    python benchmarks/bench_panel.py --part tricycle   # FUCCI and McDavid by the score angle and tricycle-style references
    python benchmarks/bench_panel.py --part check_consensus   # a small input's phase with its check's runs, and alone

One JSON line per case goes to ``benchmarks/results/panel/<part>.jsonl`` (and stdout); BENCHMARKS.md
("The real-data panel") holds the table. Per case:

* the verdict of ``topoembed.analysis.run`` with the defaults (level, loops, p-values,
  prevalence), or why the defaults refuse the input;
* the phase against the truth: FUCCI and COIL-20 by the alignment |mean e^{i(θ − θ_true)}|
  (up to reflection, :func:`topoembed.localize.circular_alignment`), the sorted McDavid cells by
  η², the share of the variance of (cos θ, sin θ) that the sorted stage explains, the IPC cells
  by R² of their ``CellCycle`` score on (cos θ, sin θ); where the defaults give no phase, the
  forced one (``n_loops=1, phase_low_confidence=True``) is reported beside it;
* baselines on the same cells: the PC1/PC2 angle, and DREiMac's circular coordinates
  (``pip install dreimac``; benchmark-only, skipped with a note where it is absent).

The data preparation follows ../shared/data/README.md: FUCCI: log-normalised counts of the 20
genes with the highest ``pve_fucci``, scaled, 5 PCs (the README's 0.48 for the PC angle) for the
baselines, and ``te.pp.recipe_cell_cycle`` for topoembed; McDavid: one cell line at a time,
each cell's mean subtracted, 10 PCs; COIL-20: 1,024 grey levels, 20 PCs, per object (72 images)
and all 1,440 together.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
OUT = HERE / "results" / "panel"


def _emit(fh, row):
    line = json.dumps(row)
    print(line, flush=True)
    fh.write(line + "\n")
    fh.flush()


def pca(X, k):
    from sklearn.decomposition import PCA

    return PCA(n_components=min(k, X.shape[1], X.shape[0] - 1), random_state=0).fit_transform(np.asarray(X, float))


def pc_angle(X):
    Y = pca(X, 2)
    return np.arctan2(Y[:, 1], Y[:, 0]) % (2 * np.pi)


def alignment(theta, truth):
    from topoembed.localize import circular_alignment

    ok = np.isfinite(theta)
    return None if ok.sum() < 3 else round(float(circular_alignment(theta[ok], np.asarray(truth)[ok])[0]), 3)


def symmetric_alignment(theta, truth):
    """:func:`alignment` with the best of h · truth, h = 1-4: an object that looks the same after
    a half (quarter) turn traces its image loop twice (four times) per rotation, so a correct
    phase follows 2θ (4θ). Every method is scored this way."""
    scores = [alignment(theta, h * np.asarray(truth)) for h in (1, 2, 3, 4)]
    return None if scores[0] is None else max(scores)


def eta2(theta, groups):
    ok = np.isfinite(theta)
    if ok.sum() < 3:
        return None
    Z = np.c_[np.cos(theta[ok]), np.sin(theta[ok])]
    g = np.asarray(groups)[ok]
    total = ((Z - Z.mean(0)) ** 2).sum()
    between = sum((g == v).sum() * ((Z[g == v].mean(0) - Z.mean(0)) ** 2).sum() for v in np.unique(g))
    return round(float(between / total), 3) if total > 0 else None


def r2(theta, y):
    ok = np.isfinite(theta) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    Z = np.c_[np.ones(ok.sum()), np.cos(theta[ok]), np.sin(theta[ok])]
    coef, *_ = np.linalg.lstsq(Z, y[ok], rcond=None)
    resid = y[ok] - Z @ coef
    return round(float(1 - resid.var() / y[ok].var()), 3)


def dreimac(X, seed=0):
    """DREiMac's circular coordinate of the most persistent class (None where it is not installed)."""
    try:
        from dreimac import CircularCoords
    except ImportError:
        return None
    np.random.seed(seed)
    cc = CircularCoords(np.asarray(X, float), n_landmarks=min(200, len(X)))
    for standard in (True, False):  # DREiMac's advice when the class is short: standard_range=False
        try:
            return np.asarray(cc.get_coordinates(perc=0.5, cocycle_idx=0, standard_range=standard),
                              float) % (2 * np.pi)
        except Exception as exc:  # noqa: BLE001 - a baseline that fails is reported, not fatal
            print(f"dreimac (standard_range={standard}) failed: {exc}", file=sys.stderr)
    return None


def verdict_row(X, score, members=None, **params):
    """topoembed's verdict with the defaults (or ``params``), and its phase scored by ``score``;
    where ``members`` (the points that carry the loop) is given, the first loop's ``on_loop``
    against it (:func:`membership`)."""
    from topoembed import analysis
    from topoembed._validate import InputError

    t0 = time.perf_counter()
    try:
        res = analysis.run(X, jobs=1, **params)
    except InputError as exc:
        return {"refused": str(exc)[:160]}
    v = res.verdict
    phase = np.asarray(res.loops[0]["phase"], float) if res.loops and "phase" in res.loops[0] else None
    row = {"verdict": v.headline(), "level": v.level, "n_found": len(res.loops),
           "p_values": [None if lp.get("p_value") is None else round(float(lp["p_value"]), 4) for lp in res.loops],
           "prevalence": [lp.get("prevalence") for lp in res.loops], "seconds": round(time.perf_counter() - t0, 1)}
    if phase is not None and np.isfinite(phase).any():
        row["phase_score"] = score(phase)
    if members is not None and res.loops:
        row["membership"] = membership(np.asarray(res.loops[0]["on_loop"], bool), members)
    return row


def membership(on_loop, members) -> dict:
    """``on_loop`` against the points that carry the loop: how many are on it, precision, recall, F1."""
    hit = int((on_loop & members).sum())
    precision, recall = hit / max(int(on_loop.sum()), 1), hit / max(int(members.sum()), 1)
    return {"n_on_loop": int(on_loop.sum()), "precision": round(precision, 3), "recall": round(recall, 3),
            "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 3)}


def case(fh, part, name, X, truth_score, forced_k=None, members=None, **extra):
    """One panel row: defaults, the forced phase where the defaults give none, and the baselines
    (``members``: the points that carry the loop, where known; :func:`verdict_row`)."""
    row = {"part": part, "case": name, "n": int(X.shape[0]), **extra,
           "default": verdict_row(X, truth_score, members=members)}
    if "phase_score" not in row["default"]:
        kw = {"n_loops": 1, "phase_low_confidence": True, "prevalence_check": False}
        if forced_k is not None:
            kw["k"] = forced_k
        row["forced_one_loop"] = verdict_row(X, truth_score, **kw)
    row["pc_angle"] = truth_score(pc_angle(X))
    dm = dreimac(X)
    row["dreimac"] = None if dm is None else truth_score(dm)
    _emit(fh, row)


def fucci_top20(a):
    """FUCCI's cells as ../shared/data/README.md prepares them for the PC angle: log-normalised
    counts of the 20 genes with the highest ``pve_fucci``, scaled, 5 PCs."""
    import scanpy as sc

    b = a.copy()
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)
    top = np.argsort(-a.var["pve_fucci"].to_numpy())[:20]
    Z = np.asarray(b.X[:, top].todense())
    Z = (Z - Z.mean(0)) / np.where(Z.std(0) > 0, Z.std(0), 1)
    return pca(Z, 5)


def part_fucci(fh):
    import anndata

    import topoembed as te

    a = anndata.read_h5ad(DATA / "fucci_ipsc_peco.h5ad")
    truth = a.obs["fucci_theta"].to_numpy(float)
    score = lambda th: alignment(th, truth)  # noqa: E731
    case(fh, "fucci", "FUCCI top-20 genes, 5 PCs", fucci_top20(a), score)
    c = a.copy()
    c.var_names = c.var["hgnc"].astype(str) if "hgnc" in c.var else c.var_names
    te.pp.recipe_cell_cycle(c, genes="hvg")
    case(fh, "fucci", "FUCCI recipe (all 101 genes, PCA)", np.asarray(c.obsm["X_pca_cell_cycle"]), score)


def mcdavid_lines():
    """(cell line, its cells' 10 PCs after subtracting each cell's mean, the sorted stage) for
    each of McDavid's three lines, as ../shared/data/README.md prepares them."""
    import anndata

    a = anndata.read_h5ad(DATA / "mcdavid_nanostring930.h5ad")
    for line in sorted(a.obs["cell_line"].unique()):
        sub = a[a.obs["cell_line"] == line]
        X = np.asarray(sub.X, float)
        yield line, pca(X - X.mean(1, keepdims=True), 10), sub.obs["truth_stage"].astype(str).to_numpy()


def part_mcdavid(fh):
    for line, Z, stage in mcdavid_lines():
        case(fh, "mcdavid", f"McDavid {line}", Z, lambda th, s=stage: eta2(th, s), forced_k=15)


def score_angle(adata):
    """The angle a scanpy user reads off the cell-cycle scores: ``sc.tl.score_genes_cell_cycle``
    with the bundled S and G2/M lists (Tirosh et al. 2016), θ = atan2(G2/M − mean, S − mean)."""
    import scanpy as sc

    import topoembed as te

    b = adata.copy()
    names = [g.upper() for g in b.var_names]
    b.var_names = names
    s = [g for g in te.pp.cell_cycle_genes(phase="S") if g in set(names)]
    g2m = [g for g in te.pp.cell_cycle_genes(phase="G2M") if g in set(names)]
    sc.tl.score_genes_cell_cycle(b, s_genes=s, g2m_genes=g2m, random_state=0)
    S, G = b.obs["S_score"].to_numpy(float), b.obs["G2M_score"].to_numpy(float)
    return np.arctan2(G - G.mean(), S - S.mean()) % (2 * np.pi), len(s), len(g2m)


def reference_angle(reference, query):
    """A tricycle-style phase (Zheng et al. 2022): the query's genes, centred, projected on the
    first two principal axes of a *reference* dataset's same genes (centred per reference batch),
    θ = atan2(y₂, y₁). ``reference``: a list of (cells × genes) blocks, one per batch."""
    R = np.vstack([B - B.mean(0) for B in reference])
    axes = np.linalg.svd(R, full_matrices=False)[2][:2]
    Y = (query - query.mean(0)) @ axes.T
    return np.arctan2(Y[:, 1], Y[:, 0]) % (2 * np.pi)


def part_tricycle(fh):
    """FUCCI's and McDavid's cells by the phases a biologist computes from genes, beside the PC
    angle and topoembed's phase on the panel's inputs (the ``fucci`` and ``mcdavid`` rows): the
    scanpy score angle (:func:`score_angle`) and tricycle-style projections on a reference
    learned on other cells (:func:`reference_angle`): for a McDavid line its other two lines
    (253 genes), and across the two datasets their 28 shared genes (McDavid's three lines as
    FUCCI's reference, FUCCI's cells as each line's). Each cell's mean is subtracted from
    McDavid's log₂ values first, as for the panel's PC angle; FUCCI's counts are log-normalised."""
    import anndata
    import scanpy as sc

    import topoembed as te

    f = anndata.read_h5ad(DATA / "fucci_ipsc_peco.h5ad")
    f.var_names = f.var["hgnc"].astype(str).to_numpy()
    sc.pp.normalize_total(f, target_sum=1e4)
    sc.pp.log1p(f)
    m = anndata.read_h5ad(DATA / "mcdavid_nanostring930.h5ad")
    m.var_names = [str(g).upper() for g in m.var_names]
    shared = sorted(set(f.var_names) & set(m.var_names))
    F = np.asarray(f.X.todense(), float)
    M = np.asarray(m.X, float)
    M = M - M.mean(1, keepdims=True)
    lines = m.obs["cell_line"].astype(str).to_numpy()
    fcols, mcols = [list(f.var_names).index(g) for g in shared], [list(m.var_names).index(g) for g in shared]
    truth = f.obs["fucci_theta"].to_numpy(float)
    cc = set(te.pp.cell_cycle_genes(phase="S")) | set(te.pp.cell_cycle_genes(phase="G2M"))
    forced = {"n_loops": 1, "phase_low_confidence": True, "prevalence_check": False}

    def on_cell_cycle_genes(X, score):
        """topoembed (defaults, and forced to one loop) on 10 PCs of the Tirosh genes alone."""
        Z = pca(X, 10)
        return {"defaults": verdict_row(Z, score), "forced_one_loop": verdict_row(Z, score, **forced),
                "pc_angle": score(pc_angle(Z))}

    theta, n_s, n_g2m = score_angle(f)
    _emit(fh, {"part": "tricycle", "case": "FUCCI", "n": len(F), "score": "alignment", "n_shared_genes": len(shared),
               "score_angle": alignment(theta, truth), "score_genes": [n_s, n_g2m],
               "reference_mcdavid_shared": alignment(reference_angle(
                   [M[lines == ln][:, mcols] for ln in np.unique(lines)], F[:, fcols]), truth),
               "cell_cycle_genes": on_cell_cycle_genes(F[:, [i for i, g in enumerate(f.var_names) if g in cc]],
                                                       lambda th: alignment(th, truth))})
    from topoembed import analysis
    from topoembed.localize import circular_correlation

    panel = dict((ln, Z) for ln, Z, _ in mcdavid_lines())
    for line in np.unique(lines):
        sel = lines == line
        stage = m.obs["truth_stage"].astype(str).to_numpy()[sel]
        sub = m[sel].copy()
        sub.X = M[sel]
        theta, n_s, n_g2m = score_angle(sub)
        others = [M[lines == ln] for ln in np.unique(lines) if ln != line]
        own = np.asarray(analysis.run(panel[line], jobs=1, **forced).loops[0]["phase"], float)  # the panel's input
        ok = np.isfinite(own)
        _emit(fh, {"part": "tricycle", "case": f"McDavid {line}", "n": int(sel.sum()), "score": "eta2",
                   "score_angle": eta2(theta, stage), "score_genes": [n_s, n_g2m],
                   "reference_other_lines": eta2(reference_angle(others, M[sel]), stage),
                   "reference_fucci_shared": eta2(reference_angle([F[:, fcols]], M[sel][:, mcols]), stage),
                   "cell_cycle_genes": on_cell_cycle_genes(M[sel][:, [i for i, g in enumerate(m.var_names) if g in cc]],
                                                           lambda th, s=stage: eta2(th, s)),
                   # what phase_orientation["score_angle_corr"] reports: |ρ| of the phase with the score angle
                   "forced_phase_vs_score_angle": round(abs(circular_correlation(own[ok], theta[ok])), 3)})
    for name, a in (("simulated cycling counts (demo_adata, 500 cells)", te.datasets.demo_adata(n_cells=500)),
                    ("FUCCI counts, forced to one loop", anndata.read_h5ad(DATA / "fucci_ipsc_peco.h5ad"))):
        if "hgnc" in a.var:
            a.var_names = a.var["hgnc"].astype(str).to_numpy()
        te.pp.recipe_cell_cycle(a, min_genes=5)
        te.tl.run(a, progress=False, **({"n_loops": 1, "phase_low_confidence": True} if "FUCCI" in name else {}))
        lp = te.tl.get_loops(a)[0]
        truth = a.obs["true_phase" if "true_phase" in a.obs else "fucci_theta"].to_numpy(float)
        th = a.obs["topoembed_phase"].to_numpy(float)
        _emit(fh, {"part": "tricycle", "case": f"score-angle agreement: {name}", "n": a.n_obs,
                   "verdict": a.uns["topoembed"]["verdict"]["headline"],
                   "score_angle_corr": round(lp["phase_orientation"]["score_angle_corr"], 3),
                   "phase_vs_truth_alignment": alignment(th, truth)})


def part_check_consensus(fh, seeds=3):
    """A small input's phase with its prevalence check's runs (the consensus of the run and the
    check's runs that found its loop, :func:`topoembed.prevalence.check_prevalence`) against the
    run's phase alone (``prevalence_check=False``), both given (``phase_low_confidence=True``),
    where the check ran: COIL-20's objects (20 PCs and pixels), McDavid's lines, IPC cells (300
    and 500, ``seeds`` draws) and noisy circles in R^10 (100 and 300 points, σ 0.25 and 0.35)."""
    from topoembed import analysis

    def cases():
        for name, images in (("20 PCs", coil_images()), ("pixels", coil_images(pixels=True))):
            for obj, Xo, truth in coil_objects(images):
                yield f"COIL-20 object {obj} ({name})", Xo, lambda th, t=truth: symmetric_alignment(th, t)
        for line, Z, stage in mcdavid_lines():
            yield f"McDavid {line}", Z, lambda th, s=stage: eta2(th, s)
        for n, seed, X, cc in ipc_draws((300, 500), seeds):
            yield f"IPC {n} cells seed {seed}", X, lambda th, y=cc: r2(th, y)
        for n in (100, 300):
            for sigma in (0.25, 0.35):
                for seed in range(seeds):
                    X, angle = noisy_circle(n, 10, sigma, seed)
                    yield f"circle {n} points σ = {sigma} seed {seed}", X, lambda th, a=angle: alignment(th, a)

    for name, X, score in cases():
        res = analysis.run(X, jobs=1, phase_low_confidence=True)
        if not res.loops or res.loops[0].get("n_subsamples") is None:
            continue  # no loop, or no check ran (a conclusive p-value): the phase is the run's
        alone = analysis.run(X, jobs=1, phase_low_confidence=True, prevalence_check=False)
        lp = res.loops[0]
        _emit(fh, {"part": "check_consensus", "case": name, "n": len(X), "verdict": res.verdict.headline(),
                   "runs": f"{lp['n_runs']} of {lp['n_subsamples']}", "with_check": score(np.asarray(lp["phase"], float)),
                   "run_alone": score(np.asarray(alone.loops[0]["phase"], float)) if alone.loops else None,
                   "mean_spread": round(float(np.nanmean(lp["phase_spread"])), 3) if "phase_spread" in lp else None})


def part_mcdavid_sweep(fh):
    """McDavid's lines forced to one loop over 24 fixed settings (mutual ``and`` / union ``or``
    graph; k = 10, 15, 20, 30, 50, n // 4; cycle / harmonic phase): η² of the sorted stage for
    each, beside the PC angle's. Not part of ``all``: it asks whether any fixed setting beats
    the PC angle on every line (BENCHMARKS.md, "A minority loop's prevalence")."""
    from topoembed import analysis

    for line, Z, stage in mcdavid_lines():
        row = {"part": "mcdavid_sweep", "case": f"McDavid {line}", "n": len(Z), "pc_angle": eta2(pc_angle(Z), stage),
               "settings": {}}
        for k in (10, 15, 20, 30, 50, len(Z) // 4):
            for graph in ("and", "or"):
                for method in ("cycle", "harmonic"):
                    res = analysis.run(Z, jobs=1, n_loops=1, phase_low_confidence=True, prevalence_check=False,
                                       k=k, symmetrize=graph, phase_method=method)
                    row["settings"][f"{graph} k={k} {method}"] = eta2(np.asarray(res.loops[0]["phase"], float), stage)
        best = max(row["settings"], key=row["settings"].get)
        row["best"] = {"setting": best, "eta2": row["settings"][best]}
        _emit(fh, row)


def linear_phase(X, theta):
    """θ refined linearly: (cos θ, sin θ) regressed on the centred X (ridge, λ = 10⁻³ of the mean
    eigenvalue of XᵀX) and the angle of the fit, for every point."""
    from topoembed.groups import circle_map

    ok = np.isfinite(theta)
    Xc = X - X[ok].mean(0)
    P = Xc @ circle_map(Xc[ok], theta[ok])
    return np.mod(np.arctan2(P[:, 1], P[:, 0]), 2 * np.pi)


def part_linear_phase(fh):
    """The loop's phase refined linearly (:func:`linear_phase`; tried for issue 28, not adopted):
    the defaults' phase, or the forced one (``n_loops=1``) where they give none, against its
    refinement and the PC angle, on McDavid's lines, COIL-20's objects and IPC draws of 300 and
    1,000 cells (seeds 0-2)."""
    from topoembed import analysis

    def phase_of(X):
        res = analysis.run(X, jobs=1)
        if res.loops and np.isfinite(np.asarray(res.loops[0].get("phase", np.nan), float)).any():
            return np.asarray(res.loops[0]["phase"], float), False
        res = analysis.run(X, jobs=1, n_loops=1, phase_low_confidence=True, prevalence_check=False)
        return (np.asarray(res.loops[0]["phase"], float), True) if res.loops else (None, True)

    def cases():
        for line, Z, stage in mcdavid_lines():
            yield f"McDavid {line}", Z, lambda th, s=stage: eta2(th, s)
        for obj, Xo, truth in coil_objects():
            yield f"COIL-20 object {obj}", Xo, lambda th, t=truth: symmetric_alignment(th, t)
        for size, seed, X, cc in ipc_draws((300, 1000), 3):
            yield f"IPC {size} cells seed {seed}", X, lambda th, y=cc: r2(th, y)

    for name, X, score in cases():
        theta, forced = phase_of(X)
        _emit(fh, {"part": "linear_phase", "case": name, "forced": forced,
                   "phase": None if theta is None else score(theta),
                   "linear": None if theta is None else score(linear_phase(X, theta)),
                   "pc_angle": score(pc_angle(X))})


def coil_images(pixels=False):
    """(X, object, truth angle) of COIL-20's 1,440 images: the 1,024 grey levels as 20 PCs
    (:func:`pca` fitted on all images), or with ``pixels`` the grey levels as they are (what
    ``topoembed run coil20.h5ad --use-rep X`` analyses); each image's object, and its turntable angle."""
    import anndata

    a = anndata.read_h5ad(DATA / "coil20.h5ad")
    X = np.asarray(a.X, float)
    return X if pixels else pca(X, 20), a.obs["object"].to_numpy(), a.obs["truth_angle"].to_numpy(float)


def coil_objects(images=None):
    """(object, its 72 images' rows of X, their truth angle) for each COIL-20 object in turn, from
    ``images`` (:func:`coil_images`, read where not given)."""
    X, obj, angle = coil_images() if images is None else images
    for o in sorted(set(obj)):
        yield o, X[obj == o], angle[obj == o]


def part_coil(fh, pixels=False):
    """Each COIL-20 object alone, and all 1,440 images together: as 20 PCs of all images, or with
    ``pixels`` (``--part coil_pixels``) as the 1,024 grey levels themselves."""
    images = coil_images(pixels)
    part, what = ("coil_pixels", " (pixels)") if pixels else ("coil", "")
    for obj, Xo, truth in coil_objects(images):
        case(fh, part, f"COIL-20 object {obj}{what}", Xo, lambda th, t=truth: symmetric_alignment(th, t), forced_k=10)
    from topoembed import analysis

    res = analysis.run(images[0], jobs=1)  # all 1,440 images together
    _emit(fh, {"part": part, "case": f"COIL-20 all 1,440 images{what}", "n": 1440, "default": {
        "verdict": res.verdict.headline(), "n_found": len(res.loops)}})


def part_coil_pixels(fh):
    part_coil(fh, pixels=True)


def coil_symmetry(Xo, truth):
    """h in 1-4 such that the object's images trace their loop h times per turn (it looks the
    same after 1/h of a turn): the h·θ that the forced phase of its 72 images follows best."""
    from topoembed import analysis

    res = analysis.run(Xo, jobs=1, n_loops=1, phase_low_confidence=True, prevalence_check=False)
    theta = np.asarray(res.loops[0]["phase"], float)
    return 1 + int(np.argmax([alignment(theta, h * truth) or 0 for h in (1, 2, 3, 4)]))


def coil_arc(obj, angle, o, h, share):
    """The images of object ``o`` over an open arc: its poses below ``share`` of the turn after
    which it looks the same again (1/``h`` of a full turn; :func:`coil_symmetry`)."""
    pose = np.rint(np.asarray(angle) / (2 * np.pi) * 72).astype(int)
    return (obj == o) & (pose < int(share * 72 / h))


def part_coil_arcs(fh):
    """Real inputs without a loop: each COIL-20 object's images over an open arc of its turn, 3/4
    and 1/2 of the turn after which it looks the same again (:func:`coil_symmetry`), as pixels and
    as 20 PCs, with the defaults (arcs of at least 20 images). Any loop called here is false."""
    from topoembed import analysis

    images = {"pixels": coil_images(pixels=True), "20 PCs": coil_images()}
    _, obj, angle = images["pixels"]
    for o in sorted(set(obj)):
        m = obj == o
        h = coil_symmetry(images["pixels"][0][m], angle[m])
        for share in (0.75, 0.5):
            arc = coil_arc(obj, angle, o, h, share)
            if arc.sum() < 20:  # an object that repeats itself every quarter turn: too few images for an arc
                continue
            for name, (X, _, _) in images.items():
                res = analysis.run(X[arc], jobs=1)
                _emit(fh, {"part": "coil_arcs", "case": f"COIL-20 object {o}, {share:.0%} of its turn of 360/{h} degrees",
                           "object": int(o), "h": h, "share": share, "n": int(arc.sum()), "input": name,
                           "verdict": res.verdict.headline(), "level": res.verdict.level})


def phase_families(phases, min_corr):
    """A family label per phase: phases are linked where |ρ| ≥ ``min_corr``
    (:func:`topoembed.subsamples.phase_corr`), families are the linked groups."""
    from scipy.sparse.csgraph import connected_components

    from topoembed.subsamples import phase_corr

    n = len(phases)
    linked = np.array([[phase_corr(a, b) >= min_corr for b in phases] for a in phases]).reshape(n, n)
    return connected_components(linked, directed=False)[1] if n else np.zeros(0, int)


def part_coil_check(fh):
    """Why the prevalence check leaves COIL-20 objects as possible loops: for each object (pixels
    and 20 PCs) whose loop the defaults do not support, the check's 10 subsample runs replayed
    (:func:`topoembed.prevalence.check_subsamples`, all 10, no early stop), each run's loops
    extended to the 72 images as the check extends them. Per object: the run's phase against the
    truth; the runs with a loop; those matching the run's loop (|ρ| ≥ CHECK_MIN_CORR, what the
    check counts); the runs' loops grouped into families (linked where |ρ| ≥ CHECK_MIN_CORR
    between them), each family's runs and its loops' median alignment with the truth."""
    from topoembed import analysis, extension, pipeline
    from topoembed.prevalence import CHECK_MIN_CORR, check_subsamples
    from topoembed.subsamples import extend_loop, phase_corr

    for name, images in (("pixels", coil_images(pixels=True)), ("20 PCs", coil_images())):
        for obj, Xo, truth in coil_objects(images):
            res = analysis.run(Xo, jobs=1, phase_low_confidence=True)
            if res.verdict.level != "possible loop":
                continue
            full = res.loops[0]
            idxs, single = check_subsamples(len(Xo), res.params)
            ext = extension.build(Xo, res.params, include=idxs)
            loops = []  # (run, its loop over all images, |ρ| with the run's loop, alignment)
            for b, idx in enumerate(idxs):
                for lp in pipeline.run(Xo[idx], single, final=False).loops:
                    e = extend_loop(lp, ext, idx)
                    loops.append((b, e, phase_corr(e["phase"], full["phase"], full["on_loop"]),
                                  symmetric_alignment(e["phase"], truth)))
            groups = {}
            for lp, label in zip(loops, phase_families([e["phase"] for _, e, _, _ in loops], CHECK_MIN_CORR)):
                groups.setdefault(label, []).append(lp)
            fams = sorted(({"runs": len({b for b, *_ in g}), "alignment": round(float(np.median([a for *_, a in g])), 3),
                            "matches_run": any(r >= CHECK_MIN_CORR for _, _, r, _ in g)} for g in groups.values()),
                          key=lambda f: -f["runs"])
            _emit(fh, {"part": "coil_check", "case": f"COIL-20 object {obj}, {name}", "object": int(obj), "input": name,
                       "verdict": res.verdict.headline(), "prevalence": full.get("prevalence"),
                       "run_alignment": symmetric_alignment(np.asarray(full["phase"], float), truth),
                       "runs_with_loop": len({b for b, *_ in loops}),
                       "runs_matching": len({b for b, _, r, _ in loops if r >= CHECK_MIN_CORR}), "families": fams})


def ipc_cells():
    """(X, CellCycle, cycling) of all IPC cells: ``obsm["X_scVI"]``, ``obs["CellCycle"]`` and the
    mask ``obs["Cycling"]``."""
    import anndata

    a = anndata.read_h5ad(DATA / "neural_ipc_scvi.h5ad")
    return np.asarray(a.obsm["X_scVI"], float), a.obs["CellCycle"].to_numpy(float), a.obs["Cycling"].to_numpy(bool)


def ipc_draws(sizes, n_seeds):
    """(n, seed, X, CellCycle) of n random IPC cells (``obsm["X_scVI"]``), drawn by
    ``default_rng(seed)``, for each size and seeds 0 to ``n_seeds`` - 1."""
    X, cc, _ = ipc_cells()
    for n in sizes:
        for seed in range(n_seeds):
            idx = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
            yield n, seed, X[idx], cc[idx]


def part_ipc(fh, seeds):
    for size, seed, X, cc in ipc_draws((300, 500, 1000, 2000), seeds):
        case(fh, "ipc", f"IPC {size} cells seed {seed}", X, lambda th, y=cc: r2(th, y), size=size, seed=seed)


def ipc_mixtures(sizes, draws):
    """(k, draw, X, CellCycle, cycling) of all non-cycling IPC cells plus k cycling ones, drawn
    by ``default_rng(draw)``, for each k of ``sizes`` and draws 0 to ``draws`` - 1."""
    X, cc, cyc = ipc_cells()
    rest = np.flatnonzero(~cyc)
    for k in sizes:
        for draw in range(draws):
            pick = np.sort(np.r_[rest, np.random.default_rng(draw).choice(np.flatnonzero(cyc), k, replace=False)])
            yield k, draw, X[pick], cc[pick], cyc[pick]


def part_minority(fh, draws=1):
    """All non-cycling IPC cells plus 400 (10 %) or 200 (5 %) cycling ones, ``draws`` random
    draws of the cycling cells each (draw d: ``default_rng(d)``)."""
    for k, draw, X, y, on in ipc_mixtures((400, 200), draws):
        case(fh, "minority", f"IPC {len(on) - k} non-cycling + {k} cycling" + (f" draw {draw}" if draw else ""),
             X, lambda th, y=y, on=on: r2(np.where(on, th, np.nan), y), members=on, draw=draw)


#: What the minority study analyses of the cycling cells' part P (``minority_part``): name ->
#: (hops of surroundings, at most this many points in all as a multiple of |P| (None: 700, the
#: default), k (None: the default; an int q: |P| // q)).
PART_VARIANTS = {"default: filled to 700": (2, None, None), "filled to 1.5 |P|": (2, 1.5, None),
                 "filled to 2 |P|": (2, 2.0, None), "filled to 3 |P|": (2, 3.0, None),
                 "1 hop, filled to 2 |P|": (1, 2.0, None), "filled to 700, k = |P| / 4": (2, None, 4),
                 "filled to 2 |P|, k = |P| / 4": (2, 2.0, 4)}


def cycling_part(X, on, part, k, draw):
    """(extension graph, the Leiden part at resolution 1 that holds most cycling cells ``on``, as
    ``topoembed.parts`` finds it, and the row that describes it) of an IPC mixture."""
    from topoembed import extension, pipeline

    ext = extension.build(X, pipeline.Params())
    labels = ext.partition(1.0, 0)
    P = np.flatnonzero(labels == np.argmax(np.bincount(labels, weights=on)))
    return ext, P, {"part": part, "case": f"IPC {len(on) - k} non-cycling + {k} cycling draw {draw}",
                    "part_size": len(P), "cycling_in_part": int(on[P].sum()),
                    "conductance": round(ext.conductance(P), 3), "variants": {}}


def random_fill(ext, P, size, hops):
    """P and a random sample (``default_rng(0)``) of the points within ``hops`` edges of it, up to
    ``size`` in all: the part search's fill before its shell (the former ``parts.with_surroundings``)."""
    around = ext.neighbourhood(P, hops)
    if len(around) > size - len(P):
        around = np.random.default_rng(0).choice(around, size - len(P), replace=False)
    return np.union1d(P, around)


def part_minority_part(fh, draws=8):
    """The cycling cells' part of each IPC mixture (the Leiden part at resolution 1 of the
    extension graph that holds most cycling cells, as ``topoembed.parts`` finds it), analysed as
    a dataset of its own (``analysis.run``) with its surroundings chosen as in
    :data:`PART_VARIANTS`: the verdict, and R² of CellCycle on the cycling cells analysed."""
    from topoembed import analysis

    for k, draw, X, y, on in ipc_mixtures((400, 200), draws):
        ext, P, row = cycling_part(X, on, "minority_part", k, draw)
        for name, (hops, share, q) in PART_VARIANTS.items():
            size = 700 if share is None else min(700, int(share * len(P)))
            D = random_fill(ext, P, size, hops)
            res = analysis.run(X[D], jobs=1, **({} if q is None else {"k": max(10, len(P) // q)}))
            lp = res.loops[0] if res.loops else {}
            phase = np.asarray(lp["phase"], float) if "phase" in lp else None
            row["variants"][name] = {"n": len(D), "verdict": res.verdict.level, "p_value": lp.get("p_value"),
                                     "prevalence": lp.get("prevalence"),
                                     "r2": None if phase is None else r2(np.where(on[D], phase, np.nan), y[D])}
        _emit(fh, row)


#: What ``minority_shell`` analyses of the cycling cells' part P: name -> how its surroundings
#: are chosen ("random": the former default, a random fill to 700 within 2 edges; ("shell", m):
#: ``parts.with_shell`` with m nearest per point; "geodesic": the points nearest to P
#: along the graph, edges weighted by their length, up to 2 |P| in all).
SHELL_VARIANTS = {"random fill to 700 (former default)": "random", "shell, 4 nearest": ("shell", 4),
                  "shell, 8 nearest (the default)": ("shell", 8), "geodesic nearest, to 2 |P|": "geodesic"}


def _geodesic_fill(ext, X, P, size):
    """P and the points nearest to it along the extension graph (edge length: Euclidean), up to size."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    A = sp.coo_matrix(ext.A)
    W = sp.csr_matrix((np.linalg.norm(X[A.row] - X[A.col], axis=1) + 1e-12, (A.row, A.col)), shape=A.shape)
    d = dijkstra(W, directed=False, indices=P, min_only=True)
    d[P] = np.inf
    order = np.argsort(d, kind="stable")[:max(0, size - len(P))]
    return np.union1d(P, order[np.isfinite(d[order])])


def part_minority_shell(fh, draws=8):
    """The cycling cells' part of each IPC mixture (as in ``minority_part``) analysed as a dataset
    of its own with the surroundings of :data:`SHELL_VARIANTS` (BENCHMARKS.md, "A part's shell")."""
    from topoembed import analysis, parts

    for k, draw, X, y, on in ipc_mixtures((400, 200), draws):
        ext, P, row = cycling_part(X, on, "minority_shell", k, draw)
        for name, how in SHELL_VARIANTS.items():
            if how == "random":
                D = random_fill(ext, P, 700, parts.SURROUNDING_HOPS)
            elif how == "geodesic":
                D = _geodesic_fill(ext, X, P, 2 * len(P))
            else:
                keep = parts.SHELL_NEIGHBOURS
                parts.SHELL_NEIGHBOURS = how[1]
                try:
                    D = parts.with_shell(ext, P, 700, np.random.default_rng(0), X)
                finally:
                    parts.SHELL_NEIGHBOURS = keep
            res = analysis.run(X[D], jobs=1)
            lp = res.loops[0] if res.loops else {}
            phase = np.asarray(lp["phase"], float) if "phase" in lp else None
            row["variants"][name] = {"n": len(D), "cycling": int(on[D].sum()), "verdict": res.verdict.level,
                                     "p_value": lp.get("p_value"), "prevalence": lp.get("prevalence"),
                                     "r2": None if phase is None else r2(np.where(on[D], phase, np.nan), y[D])}
        _emit(fh, row)


#: Exponents α of ``minority_sampling``: a cell is drawn with probability ∝ r^α, r its distance
#: to its 15th nearest neighbour (α = 0: uniform).
SAMPLING_ALPHAS = (0, 6, 10)


def part_minority_sampling(fh, draws=8, subsamples=5):
    """Subsamples that favour sparse cells (tried for issue 29's 5 % mixture, not adopted): of each
    mixture with 200 cycling cells, ``subsamples`` draws of 700 cells with probability ∝ r^α
    (:data:`SAMPLING_ALPHAS`), each analysed alone (``analysis.run``, no part search, no
    prevalence check, the phase given even where the loop is not supported): the cycling cells'
    share, the loops found with their p-values, and R² of CellCycle on the cycling cells drawn."""
    from sklearn.neighbors import NearestNeighbors

    from topoembed import analysis

    for k, draw, X, y, on in ipc_mixtures((200,), draws):
        r = NearestNeighbors(n_neighbors=16).fit(X).kneighbors(X)[0][:, -1]
        row = {"part": "minority_sampling", "case": f"IPC {len(on) - k} non-cycling + {k} cycling draw {draw}",
               "alphas": {}}
        for alpha in SAMPLING_ALPHAS:
            w = r ** alpha / np.sum(r ** alpha)
            runs = []
            for s in range(subsamples):
                idx = np.sort(np.random.default_rng(s).choice(len(X), 700, replace=False, p=w))
                res = analysis.run(X[idx], jobs=1, parts=False, prevalence_check=False, phase_low_confidence=True)
                lp = res.loops[0] if res.loops else {}
                phase = np.asarray(lp["phase"], float) if "phase" in lp else None
                runs.append({"cycling": int(on[idx].sum()), "loops": len(res.loops), "p_value": lp.get("p_value"),
                             "r2": None if phase is None else r2(np.where(on[idx], phase, np.nan), y[idx])})
            row["alphas"][str(alpha)] = runs
        _emit(fh, row)


def part_coil_parts(fh):
    """All 1,440 COIL-20 images with the defaults, and with parts of 50 points or more searched
    (``parts.MIN_PART`` 150 -> 50, ``parts.MAX_PARTS`` 12 -> 20): the loops found and the objects
    of the cells on each."""
    from topoembed import analysis, parts, pipeline

    X, obj, _ = coil_images()
    for min_part, max_parts in ((parts.MIN_PART, parts.MAX_PARTS), (50, 20)):
        saved = parts.MIN_PART, parts.MAX_PARTS
        parts.MIN_PART, parts.MAX_PARTS = min_part, max_parts
        try:
            t0 = time.perf_counter()
            res = analysis.run(X, jobs=1)
            seconds = time.perf_counter() - t0
        finally:
            parts.MIN_PART, parts.MAX_PARTS = saved
        prt = pipeline.summary(res)["detection"].get("parts") or {}
        loops = []
        for lp in res.loops:
            on = np.asarray(lp.get("on_loop", np.zeros(len(X))), bool)
            counts = np.bincount(obj[on].astype(int), minlength=21) if on.any() else np.zeros(21, int)
            loops.append({"part_size": lp.get("part_size"), "p_value": lp.get("p_value"),
                          "prevalence": lp.get("prevalence"),
                          "objects_on_loop": {int(i): int(c) for i, c in enumerate(counts) if c}})
        _emit(fh, {"part": "coil_parts", "case": f"COIL-20 all 1,440 images, parts of >= {min_part} points, "
                   f"at most {max_parts} per resolution", "n": len(X), "verdict": res.verdict.headline(),
                   "searched": prt.get("searched"), "screened_loops": prt.get("screened_loops"), "loops": loops,
                   "seconds": round(seconds, 1)})


def part_groups(fh):
    """The IPC cells by their ten time points (``obs["Subset"]``), each analysed alone
    (``te.tl.run(adata, groupby="Subset")``), against the run on all 26,625 cells read within each
    time point and the PC1/PC2 angle of each time point's cells: R² of CellCycle on (cos θ, sin θ).
    Then both runs' times (same machine, same run), and R² over all cells with a phase, each time
    point's phase with its own origin and after :func:`topoembed.groups.align_phases` (the default
    of ``te.tl.run(groupby=...)``)."""
    import anndata

    import topoembed as te
    from topoembed import groups

    a = anndata.read_h5ad(DATA / "neural_ipc_scvi.h5ad")
    cc, X = a.obs["CellCycle"].to_numpy(float), np.asarray(a.obsm["X_scVI"], float)
    t0 = time.perf_counter()
    te.tl.run(a, use_rep="X_scVI", progress=False, key_added="pooled")
    pooled_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    te.tl.run(a, use_rep="X_scVI", groupby="Subset", progress=False, align_phases=False)
    grouped_s = time.perf_counter() - t0
    everywhere = np.ones(a.n_obs, dtype=bool)

    def scored(theta, m):
        ok = np.isfinite(theta[m])
        return round(r2(theta[m][ok], cc[m][ok]), 3) if ok.sum() >= 10 else None

    own_origin = scored(a.obs["topoembed_phase"].to_numpy(float), everywhere)
    labels = a.obs["Subset"].astype(str).to_numpy()
    turned = groups.align_phases(a, "topoembed", {g: np.flatnonzero(labels == g) for g in np.unique(labels)}, X)

    def number(v):
        return None if not np.isfinite(v) else round(float(v), 5)

    for g, row in te.tl.get_group_verdicts(a).iterrows():
        m = (a.obs["Subset"].astype(str) == g).to_numpy()
        _emit(fh, {"part": "groups", "case": f"IPC {g}", "n": int(m.sum()), "verdict": row["verdict"],
                   "p_value": number(row["p_value"]), "prevalence": number(row["prevalence"]),
                   "phase_r2": scored(a.obs["topoembed_phase"].to_numpy(float), m),
                   "pooled_phase_r2": scored(a.obs["pooled_phase"].to_numpy(float), m),
                   "pc_angle": round(r2(pc_angle(X[m]), cc[m]), 3)})
    _emit(fh, {"part": "groups", "case": "times", "n": a.n_obs, "pooled_verdict": te.tl.get_verdict(a, "pooled")["headline"],
               "pooled_seconds": round(pooled_s, 1), "grouped_seconds": round(grouped_s, 1)})
    # one phase column across the time points: R² over all cells with a phase, before and after the turn
    _emit(fh, {"part": "groups", "case": "phases across groups", "n": a.n_obs, "own_origins_r2": own_origin,
               "aligned_r2": scored(a.obs["topoembed_phase"].to_numpy(float), everywhere),
               "all_cells_run_r2": scored(a.obs["pooled_phase"].to_numpy(float), everywhere),
               "turned": {g: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in info.items()}
                          for g, info in turned.items()}})


def ring_to_scatter(X, arc):
    """How far a loop stands out of its noise: the mean distance of the arcs' mean points from
    their centre over the root-mean-square distance of the points from their arc's mean (arcs:
    the labels ``arc``, e.g. three thirds of the true angle, or McDavid's three sorted stages)."""
    labels = np.unique(arc)
    M = np.array([X[arc == g].mean(0) for g in labels])
    spread = np.mean([((X[arc == g] - M[i]) ** 2).sum(1).mean() for i, g in enumerate(labels)])
    return float(np.linalg.norm(M - M.mean(0), axis=1).mean() / np.sqrt(spread))


def thirds(angle):
    return np.floor(np.asarray(angle) / (2 * np.pi) * 3).astype(int) % 3


def noisy_circle(n, d, sigma, seed):
    """(X, angle): n points of the unit circle in the first two of d coordinates at uniform
    random angles, with Gaussian noise σ on every coordinate (``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(angle), np.sin(angle), np.zeros((n, d - 2))] + sigma * rng.normal(size=(n, d)), angle


def part_snr(fh, seeds=3):
    """Why FUCCI and McDavid get no supported loop: each real dataset's :func:`ring_to_scatter`
    (three arcs: thirds of the true angle, McDavid's sorted stages), beside noisy unit circles
    of the same size and dimension (σ per coordinate), their ratio, the defaults' verdict, and
    the phase (or the PC angle) against the true angle."""
    import anndata

    from topoembed import analysis

    a = anndata.read_h5ad(DATA / "fucci_ipsc_peco.h5ad")
    truth = a.obs["fucci_theta"].to_numpy(float)
    _emit(fh, {"part": "snr", "case": "FUCCI top-20 genes, 5 PCs", "n": a.n_obs, "d": 5,
               "ratio": round(ring_to_scatter(fucci_top20(a), thirds(truth)), 2)})
    for line, Z, stage in mcdavid_lines():
        _emit(fh, {"part": "snr", "case": f"McDavid {line}", "n": len(Z), "d": Z.shape[1],
                   "ratio": round(ring_to_scatter(Z, stage), 2)})
    ratios = [ring_to_scatter(Xo, thirds(t)) for _, Xo, t in coil_objects()]
    _emit(fh, {"part": "snr", "case": "COIL-20 objects (20 PCs; min, median)", "n": 72, "d": 20,
               "ratio": [round(float(np.min(ratios)), 2), round(float(np.median(ratios)), 2)]})
    for n, d in ((888, 5), (300, 10)):
        for sigma in (0.25, 0.35, 0.5, 0.75, 1.0):
            for seed in range(seeds):
                X, angle = noisy_circle(n, d, sigma, seed)
                res = analysis.run(X, jobs=2)
                phase = res.loops[0].get("phase") if res.loops else None
                _emit(fh, {"part": "snr", "case": f"circle n={n} R^{d} sigma={sigma} seed={seed}", "n": n, "d": d,
                           "sigma": sigma, "ratio": round(ring_to_scatter(X, thirds(angle)), 2),
                           "verdict": res.verdict.headline(), "supported": res.verdict.n_loops,
                           "phase": None if phase is None else alignment(np.asarray(phase, float), angle),
                           "pc_angle": alignment(pc_angle(X), angle)})


def part_phase_cycle(fh, seeds=4):
    """Noisy unit circles of 888 points in R^5, σ = 0.3 and 0.4, forced to one loop with
    effective resistance and diffusion distances: the phase's alignment with the true angle
    and which cycle it was spaced along (``phase_cycle``; localize's module docstring, step 1)."""
    from topoembed import analysis

    for distance in ("effective_resistance", "diffusion"):
        for sigma in (0.3, 0.4):
            for seed in range(seeds):
                X, angle = noisy_circle(888, 5, sigma, seed)
                lp = analysis.run(X, jobs=1, distance=distance, n_loops=1, phase_low_confidence=True,
                                  prevalence_check=False).loops[0]
                _emit(fh, {"part": "phase_cycle", "case": f"circle R^5 sigma={sigma} seed={seed} {distance}",
                           "phase": alignment(np.asarray(lp["phase"], float), angle),
                           "phase_cycle": lp.get("phase_cycle")})


def no_loop_sets(n, seed, gaussian=False):
    """The no-loop sets of n points that the small-input benchmarks share, each drawn with
    ``seed``: a blob and a sphere in R^20 (σ = 0.05) and uniform points in [0,1]^10 (with
    ``gaussian``, standard normal points in R^10 instead)."""
    from topoembed import datasets

    rng = np.random.default_rng(seed)
    name, third = ("Gaussian in R^10", rng.normal(size=(n, 10))) if gaussian else ("uniform", rng.uniform(size=(n, 10)))
    return {"blob": datasets.make("blob", n=n, d=20, sigma=0.05, seed=seed).X,
            "sphere": datasets.make("sphere", n=n, d=20, sigma=0.05, seed=seed).X, name: third}


def part_controls(fh):
    import scanpy as sc

    from topoembed import datasets

    pb = sc.datasets.pbmc68k_reduced()
    none = lambda th: None  # noqa: E731 - no truth: only the call counts
    case(fh, "controls", "pbmc68k_reduced (X_pca)", np.asarray(pb.obsm["X_pca"], float), none)
    # scanpy's bundled simulations without a cycle: a branching differentiation (Krumsiek et al.
    # 2011, 11 genes) and a bistable toggle switch (2 genes)
    case(fh, "controls", "krumsiek11 (a branching tree)", np.asarray(sc.datasets.krumsiek11().X, float), none)
    case(fh, "controls", "toggleswitch (two branches)", np.asarray(sc.datasets.toggleswitch().X, float), none)
    for seed in range(2):
        case(fh, "controls", f"Gaussian blob 1,000 in R^50 seed {seed}",
             datasets.make("blob", n=1000, d=50, sigma=0.2, seed=seed).X, none)
        case(fh, "controls", f"uniform noise 500 in [0,1]^10 seed {seed}",
             np.random.default_rng(seed).uniform(size=(500, 10)), none)


def part_noise_nulls(fh, seeds=3):
    """The noise benchmark's inputs without a loop (``noise_benchmark.py``: 1,000 points in R^50,
    σ = 0, 0.0125, ..., 0.35, seeds 0 to ``seeds`` - 1): the Gaussian blob and the 2-sphere (no H1
    loop), each through the front door with the defaults: how often a loop is called "found"."""
    from topoembed import datasets

    for name in ("blob", "sphere"):
        for sigma in np.linspace(0, 0.35, 29):
            for seed in range(seeds):
                X = datasets.make(name, n=1000, d=50, sigma=float(sigma), seed=seed).X
                _emit(fh, {"part": "noise_nulls", "case": name, "sigma": round(float(sigma), 4), "seed": seed,
                           **verdict_row(X, lambda th: None)})


def planar_blobs(seed, n_clusters=15, d=10, sizes=(100, 600), planar=True):
    """``n_clusters`` Gaussian clusters of ``sizes`` points each (drawn), far apart in R^d: each a
    standard Gaussian in a random plane (``planar``; the shape whose small samples the
    small-input defaults most often call a loop, "The graph of 100 points or fewer") or in all d
    coordinates, with centres N(0, 12² I) and noise σ = 0.05 on every coordinate; no loop."""
    rng = np.random.default_rng(1000 + seed)
    blocks = []
    for _ in range(n_clusters):
        m = int(rng.integers(*sizes))
        Y = rng.standard_normal((m, 2 if planar else d))
        if planar:
            Y = Y @ np.linalg.qr(rng.standard_normal((d, 2)))[0].T
        blocks.append(Y + 12 * rng.standard_normal(d) + 0.05 * rng.standard_normal((m, d)))
    return np.vstack(blocks)


def part_part_nulls(fh, seeds=5):
    """Inputs without a loop that the part search cuts into many parts (held out: none was used
    to choose a default): the 3,668 non-cycling IPC cells and random 2,000 of them, 15 clusters
    of 100-600 points (planar or full) in R^10, 30 planar clusters of 100-300 or 40-80 in R^20, the
    circle-in-clusters data without its circle (20,000 points in R^50), and scikit-learn's
    digits (1,797 images, standardised). One row each: the verdict and what the parts gave."""
    from sklearn.datasets import load_digits
    from topoembed import datasets

    from topoembed import analysis, verdict

    def row(name, X, **extra):
        t0 = time.perf_counter()
        res = analysis.run(X, jobs=1)
        rec = res.detection.get("parts") or {}
        _emit(fh, {"part": "part_nulls", "case": name, **extra, "n": len(X), "verdict": res.verdict.headline(),
                   "levels": [c.level for c in res.verdict.loops], "from_part": [lp.get("part") for lp in res.loops],
                   "groups_on_cycle": [lp.get("groups_on_cycle") for lp in res.loops],
                   # what the evidence alone (p-value, prevalence) says, before the groups on the cycle
                   "supported_by_evidence": sum(verdict._assess_evidence(lp, verdict.ALPHA, 0).supported
                                                for lp in res.loops),
                   "parts_searched": rec.get("searched", []), "screens_with_loop": sum(bool(c) for c in
                                                                                      rec.get("screened_loops", [])),
                   "not_recurring": len(rec.get("not_recurring", [])), "seconds": round(time.perf_counter() - t0, 1)})

    X, _, cyc = ipc_cells()
    row("IPC non-cycling cells, all", X[~cyc])
    for seed in range(3):
        idx = np.random.default_rng(seed).choice(np.flatnonzero(~cyc), 2000, replace=False)
        row("IPC non-cycling cells, 2,000", X[np.sort(idx)], seed=seed)
    for seed in range(seeds):
        row("15 planar clusters of 100-600 in R^10", planar_blobs(seed), seed=seed)
    for seed in range(seeds):
        row("15 full clusters of 100-600 in R^10", planar_blobs(seed, planar=False), seed=seed)
    for seed in range(seeds):
        row("30 planar clusters of 100-300 in R^20", planar_blobs(seed, 30, 20, (100, 300)), seed=seed)
    for seed in range(seeds):
        row("30 planar clusters of 40-80 in R^20", planar_blobs(seed, 30, 20, (40, 80)), seed=seed)
    for seed in range(2):
        row("6 clusters, no circle, 20,000 in R^50",
            datasets.make("circle_in_clusters", n=20000, d=50, sigma=0.05, seed=seed, fraction=0.0).X, seed=seed)
    digits = load_digits().data
    row("scikit-learn digits (standardised)", (digits - digits.mean(0)) / np.maximum(digits.std(0), 1e-12))


def table() -> str:
    """The Markdown table of BENCHMARKS.md from the committed result files."""
    def score(r):
        return "–" if r is None else f"{r:.3f}" if isinstance(r, float) else str(r)

    lines = ["| case | n | defaults: verdict (p; prevalence) | its phase vs truth | forced one loop: phase | "
             "PC1/PC2 angle | DREiMac |", "|---|---|---|---|---|---|---|"]
    for part in ("fucci", "mcdavid", "coil", "coil_pixels", "ipc", "minority", "controls"):
        path = OUT / f"{part}.jsonl"
        for row in map(json.loads, path.read_text().splitlines() if path.exists() else []):
            d = row["default"]
            call = d.get("refused", "refused") if "refused" in d else d["verdict"]
            if d.get("p_values"):
                prev = ", ".join("–" if v is None else f"{v:.1f}" for v in d.get("prevalence", []))
                call += f" ({', '.join('–' if p is None else f'{p:.2g}' for p in d['p_values'])}; {prev})"
            forced = row.get("forced_one_loop") or {}
            lines.append(f"| {row['case']} | {row['n']} | {call} | {score(d.get('phase_score'))} | "
                         f"{score(forced.get('phase_score'))} | {score(row.get('pc_angle'))} | "
                         f"{score(row.get('dreimac'))} |")
    return "\n".join(lines) + "\n" + membership_table()


def membership_table() -> str:
    """The IPC mixtures' loop membership (``on_loop``) against their cycling cells, from the result files."""
    path = OUT / "minority.jsonl"
    rows = [r for r in map(json.loads, path.read_text().splitlines() if path.exists() else [])
            if r["default"].get("membership")]
    if not rows:
        return ""
    lines = ["", "| case | draw | cells on the loop | precision | recall | F1 (against the cycling cells) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        m = r["default"]["membership"]
        lines.append(f"| {r['case'].split(' draw')[0]} | {r.get('draw', 0)} | {m['n_on_loop']:,} | {m['precision']:.3f} | "
                     f"{m['recall']:.3f} | {m['f1']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", default="all", choices=["fucci", "mcdavid", "coil", "ipc", "minority", "controls", "all",
                                                      "mcdavid_sweep", "minority_part", "minority_shell",
                                                      "minority_sampling", "linear_phase", "groups",
                                                      "coil_parts", "snr", "phase_cycle", "noise_nulls", "coil_pixels", "coil_arcs",
                                                      "coil_check", "part_nulls", "tricycle", "check_consensus"])
    ap.add_argument("--seeds", type=int, default=3, help="IPC subsample seeds per size (default 3)")
    ap.add_argument("--draws", type=int, default=1, help="draws of the cycling cells per IPC mixture (default 1)")
    ap.add_argument("--table", action="store_true", help="print the Markdown table of the result files and stop")
    args = ap.parse_args(argv)
    if args.table:
        sys.stdout.write(table())
        return
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: the panel needs ../shared/data")
    OUT.mkdir(parents=True, exist_ok=True)
    parts = ["fucci", "mcdavid", "coil", "coil_pixels", "ipc", "minority", "controls"] if args.part == "all" else [args.part]
    for part in parts:
        with open(OUT / f"{part}.jsonl", "w") as fh:
            fn = globals()[f"part_{part}"]
            by_seeds = ("ipc", "snr", "phase_cycle", "noise_nulls", "part_nulls", "check_consensus")
            fn(fh, args.seeds) if part in by_seeds else fn(fh, args.draws) if part.startswith("minority") else fn(fh)


if __name__ == "__main__":
    main()
