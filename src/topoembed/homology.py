"""Stage 3: persistent homology of a distance matrix (Vietoris–Rips, ripser family).

``persistence(D, maxdim=1)`` returns the diagrams per dimension as (birth, death) arrays,
death = inf for classes that never die. Engines: giotto-ph (Pérez, Hess, Tauzin 2021; the
faster one, about 2x ripser.py at the same filtration) and ripser.py (Bauer 2021; Tralie,
Saul and Bar-On 2018), the only one that returns representative cocycles. Both are called
through their compiled cores (``gph.modules.gph_ripser[_coeff]``, ``pyRipser``), with the
inputs their Python wrappers would pass: the wrappers import scikit-learn, 2.5 s in every
process and worker, for code this package does not use. giotto-ph has no wheel for Python
3.13: there ripser.py runs, and gudhi's edge collapse (Maria, Boissonnat, Glisse, Yvinec
2014) stands in for giotto-ph's before H2 (:func:`collapsed_persistence`).

Only as much of the filtration is built as the diagram needs (H1):

* no H1 class is born after the *birth bound* b* (:func:`birth_bound`): every longer edge
  either joins two components (a spanning-tree edge) or closes a triangle with two shorter
  edges, so it cannot open a new cycle;
* from b* the filtration grows until no H1 class is alive at its end; the diagram is then
  exactly that of the full filtration (tests compare it with ripser.py on the full
  matrix). On the pipeline's effective resistance of a noisy circle (n = 1,000) that is a
  third of the edges: 2.4 s instead of 6 s.
* H0 is read off the minimum spanning tree (exact, O(n²)).

H2 runs truncated at the *enclosing radius* r = min_i max_j D_ij (one vertex then cones
off the complex, so every class of dimension ≥ 1 has died). Points in different connected
components (D = inf) are never joined, so H0 has one infinite bar per component.

Both engines work in float32: births and deaths are float32 values stored as float64.
Cost: memory ≈ 4·n² bytes for the float32 copy plus the reduction, which grows with the
edges below the truncation (:func:`ripser_memory_estimate`, checked before each run);
time from well under a second to a few seconds at n = 1,000. H2 costs much more: 34 s at
n = 500 (sphere, 2 cores); the pipeline refuses above 600.

Size (about 630 lines): the two engines (ripser.py, giotto-ph's compiled core loaded without
its wrapper), the truncated filtration with its memory check, the landmarks with the edge
collapse (giotto-ph's or gudhi's), and the cocycles all read one prepared float32 matrix and
the same engine loader; apart, each would import the others' private helpers.
"""
from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["persistence", "add_cocycles", "maxmin_landmarks", "landmark_persistence", "load_engines", "birth_bound", "minimum_spanning_tree", "enclosing_radius", "birth_edge",
           "distance_scale", "ripser_memory_estimate"]


def ripser_memory_estimate(n_edges: int) -> float:
    """Bytes ripser may need for an H1 run over ``n_edges`` filtration edges: 60 · n_edges^1.2.

    Calibrated on the worst case measured on this project's machine, diffusion distances of a
    noisy circle (σ = 0.2, k = 100): 2.15 GB over the input at n = 2,000 (2.0 M edges) and
    19.7 GB, where it aborted with std::bad_alloc, at n = 5,000 (12.5 M edges); corrected
    effective resistance needed about a third of that (0.65 GB at n = 2,000), a Gaussian
    blob a fourteenth. An upper bound, so a run it allows does not abort.
    """
    return 60.0 * float(n_edges) ** 1.2


def enclosing_radius(D: np.ndarray) -> float:
    """min_i max_j D_ij over finite entries (inf if no point reaches all others)."""
    rowmax = np.max(D, axis=1)
    return float(np.min(rowmax))


def distance_scale(D: np.ndarray) -> float:
    """The median of the finite off-diagonal distances: a scale for lifetimes that, unlike
    the enclosing radius, is not set by a few outlying points."""
    iu = np.triu_indices(D.shape[0], 1)
    vals = D[iu]
    vals = vals[np.isfinite(vals)]
    return float(np.median(vals)) if len(vals) else 0.0


def birth_edge(D32: np.ndarray, birth: float, cocycle: np.ndarray | None = None) -> tuple[int, int]:
    """The edge (a, b), a < b, whose length is the birth value of an H1 class.

    With ripser's representative cocycle the edge is taken from its support (the birth
    edge is the cocycle's leading edge); without, from all edges of that exact length.
    """
    if cocycle is not None and len(cocycle):
        ij = cocycle[:, :2].astype(np.int64)
        lengths = D32[ij[:, 0], ij[:, 1]]
        a, b = ij[int(np.argmin(np.abs(lengths - birth)))]
    else:
        iu = np.argwhere(np.triu(D32 == np.float32(birth), 1))
        if len(iu) == 0:
            iu = np.argwhere(np.triu(np.isclose(D32, birth, rtol=1e-6, atol=0), 1))
        a, b = iu[0]
    return (int(min(a, b)), int(max(a, b)))


def _check_memory(D: np.ndarray, thresh: float) -> None:
    """Refuse, with a clear message, a filtration that ripser could not hold in memory."""
    from ._validate import InputError, available_memory_bytes, option

    n = D.shape[0]
    n_edges = (int(np.count_nonzero(D <= thresh)) - n) // 2
    need, have = ripser_memory_estimate(n_edges), available_memory_bytes()
    if need > have:
        raise InputError(f"persistent homology of {n} points ({n_edges:,} filtration edges) may need about "
                         f"{need / 2**30:.1f} GiB, but {have / 2**30:.1f} GiB are available; analyse the data as "
                         f"an ensemble of subsamples (the default above 1,000 points: {option('n_subsamples', 'auto')}) "
                         f"or pass {option('subsample', 1000)}")


def minimum_spanning_tree(D: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prim's algorithm on a dense distance matrix (inf = no edge), O(n²) time, O(n) extra memory.

    Returns (u, v, length) of the tree edges (a forest if D has infinite blocks). The
    lengths are the finite H0 deaths of the Rips filtration (single linkage).
    """
    n = D.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    in_tree = np.zeros(n, bool)
    best = np.full(n, np.inf)
    parent = np.full(n, -1, np.int64)
    us, vs, ws = [], [], []
    cur = 0
    for _ in range(n):
        in_tree[cur] = True
        row = D[cur]
        closer = (row < best) & ~in_tree
        best[closer] = row[closer]
        parent[closer] = cur
        cand = np.where(in_tree, np.inf, best)
        nxt = int(np.argmin(cand))
        if not np.isfinite(cand[nxt]):  # this component is spanned: start the next one
            rest = np.flatnonzero(~in_tree)
            if len(rest) == 0:
                break
            cur = int(rest[0])
            continue
        us.append(int(parent[nxt]))
        vs.append(nxt)
        ws.append(float(cand[nxt]))
        cur = nxt
    return np.array(us, np.int64), np.array(vs, np.int64), np.array(ws, dtype=np.float64)


def birth_bound(D: np.ndarray, n_apex: int = 16, chunk_bytes: int = 32 * 2**20) -> float:
    """A value b* such that no H1 class of the Rips filtration of ``D`` is born after b*.

    An edge uv of length ℓ can give birth to an H1 class only if (i) u and v are already
    joined by shorter edges (else it merges two components: an edge of the minimum
    spanning tree) and (ii) no triangle contains it when it enters, i.e. there is no apex w
    with max(D_uw, D_vw) < ℓ. If some apex exists, the new cycle through uv is homologous,
    across the triangle uvw, to a cycle of earlier edges; so, by induction over the edges
    in filtration order, once every class born up to b* has died no class exists at any
    larger value. This is the same argument as the enclosing-radius truncation (there the
    apex is the cone point for every edge) applied edge by edge.

    The apex search first tries each u's ``n_apex`` nearest points (vectorised, O(n² ·
    n_apex)); the few edges left (the tree edges and the actual birth edges, about n +
    #H1 classes) are checked against every w. Work is done in float32, the precision of
    the ripser engines (a float32 tie can only hide a class of zero persistence).
    """
    return _birth_bound_and_tree(D, n_apex, chunk_bytes)[0]


def _birth_bound_and_tree(D: np.ndarray, n_apex: int = 16, chunk_bytes: int = 32 * 2**20):
    """(:func:`birth_bound`, the float32 minimum spanning tree's edge lengths): the tree is
    needed by both the bound and H0 (:func:`_h0_diagram`), so it is built once."""
    D = np.asarray(D, dtype=np.float32)
    n = D.shape[0]
    tu, tv, tw = minimum_spanning_tree(D)
    if n < 3:
        return 0.0, tw
    kk = min(n_apex, n - 1)
    nb = np.argpartition(D, kk, axis=1)[:, :kk + 1]
    apex = np.empty_like(D)
    rows = max(1, int(chunk_bytes // (4 * (kk + 1) * n)))
    for s in range(0, n, rows):
        blk = slice(s, min(n, s + rows))
        near = nb[blk]
        du = np.take_along_axis(D[blk], near, axis=1)
        apex[blk] = np.maximum(du[:, :, None], D[near]).min(axis=1)
    # w = u or w = v gives max(...) = D_uv, never < D_uv: no need to exclude them
    suspect = np.triu(~(apex < D) & np.isfinite(D), 1)
    iu, iv = np.nonzero(suspect)
    del apex, suspect
    if len(iu) == 0:
        return 0.0, tw
    length = D[iu, iv]
    no_apex = np.zeros(len(iu), bool)
    per = max(1, int(chunk_bytes // (4 * n)))
    for s in range(0, len(iu), per):
        sl = slice(s, s + per)
        no_apex[sl] = ~(np.maximum(D[iu[sl]], D[iv[sl]]).min(axis=1) < length[sl])
    iu, iv, length = iu[no_apex], iv[no_apex], length[no_apex]
    tree = set(zip(np.minimum(tu, tv).tolist(), np.maximum(tu, tv).tolist()))
    cycle_edges = np.array([(a, b) not in tree for a, b in zip(iu.tolist(), iv.tolist())], bool)
    return (float(length[cycle_edges].max()) if cycle_edges.any() else 0.0), tw


def _h0_diagram(n: int, tree_lengths: np.ndarray) -> np.ndarray:
    """H0 of the Rips filtration of n points: (0, ℓ) per spanning-tree edge (lengths in float32,
    the engines' precision; the multiset of MST lengths does not depend on which tree), (0, inf)
    per component; bars of length 0 (duplicate points) are dropped, as ripser does."""
    w = np.asarray(tree_lengths, dtype=np.float32)
    dgm = np.zeros((n, 2))
    dgm[:len(w), 1] = np.sort(w).astype(np.float64)
    dgm[len(w):, 1] = np.inf
    return dgm[dgm[:, 1] > 0]


def _engine(engine: str, cocycles: bool, coeff: int = 2) -> str:
    if engine not in ("auto", "ripser", "gph"):
        raise ValueError(f"engine={engine!r} must be 'auto', 'ripser' or 'gph'")
    if cocycles:
        return "ripser"  # only ripser.py returns representative cocycles
    if engine == "auto":
        if _gph_core(coeff) is not None:  # the core that will run
            return "gph"
        _note_without_gph()
        return "ripser"
    return engine


@functools.lru_cache(maxsize=None)
def _note_without_gph() -> None:
    """Say once per process that ripser.py stands in for giotto-ph (not installed: on Python 3.13
    the package index has no wheel of it). The diagrams are the same; it takes about twice as long."""
    log.info("giotto-ph is not installed (on Python 3.13 pip has no wheel of it): ripser.py computes the "
             "homology, with the same diagrams, about half as fast")


def _gph_core(coeff: int):
    """giotto-ph's compiled engine (``gph.modules.gph_ripser`` for Z_2, ``gph_ripser_coeff``
    otherwise), loaded without giotto-ph's Python wrapper (:func:`_gph_module`)."""
    return _gph_module("gph_ripser" if coeff == 2 else "gph_ripser_coeff")


def _gph_module(name: str):
    """The compiled module ``gph.modules.<name>`` of giotto-ph, loaded without giotto-ph's
    Python wrapper, whose import pulls in scikit-learn (2.5 s in every process and worker
    here). The module is registered under its own name, so a later ``import gph`` reuses it.
    None if giotto-ph is not installed."""
    import importlib
    import importlib.machinery
    import importlib.util
    import os
    import sys

    full = "gph.modules." + name
    if full in sys.modules:
        return sys.modules[full]
    try:
        spec = importlib.util.find_spec("gph")  # a top-level name: gph/__init__ does not run
        folder = os.path.join(list(spec.submodule_search_locations)[0], "modules")
        path = next(os.path.join(folder, name + sfx) for sfx in importlib.machinery.EXTENSION_SUFFIXES
                    if os.path.exists(os.path.join(folder, name + sfx)))
        loader = importlib.machinery.ExtensionFileLoader(full, path)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(full, loader))
        loader.exec_module(module)
    except Exception as exc:  # not installed, or laid out differently: the wrapper, if any
        log.debug("giotto-ph's %s not loaded directly (%s); using its Python wrapper", name, exc)
        try:
            return importlib.import_module(full)
        except ImportError:
            return None
    sys.modules[full] = module
    return module


def load_engines() -> None:
    """Load both engines' compiled cores now (a worker's first task; see :mod:`topoembed.ensemble`)."""
    _gph_core(2), _gph_core(3)
    try:
        import pyRipser  # noqa: F401
    except ImportError:  # pragma: no cover - ripser is a dependency
        pass


def _gph_run(Dr: np.ndarray, maxdim: int, thresh: float, coeff: int):
    """giotto-ph on the edges of Dr of length ≤ thresh (what ``gph.ripser_parallel(Dr,
    metric="precomputed", thresh=thresh, return_generators=True, n_threads=1)`` computes):
    (diagrams, H1 birth edges)."""
    core = _gph_core(coeff)
    if core is None:  # pragma: no cover - giotto-ph is a dependency
        raise ImportError("giotto-ph is not installed: pip install giotto-ph")
    n = Dr.shape[0]
    i, j = np.nonzero(np.triu(Dr <= thresh))  # the upper triangle with the diagonal (vertex births)
    res = core.rips_dm_sparse(i.astype(np.int64), j.astype(np.int64), np.ascontiguousarray(Dr[i, j], np.float32),
                              len(i), n, coeff, maxdim, thresh, 1, True)
    dgms = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in res.births_and_deaths_by_dim()]
    edges = None
    if maxdim >= 1:
        gens = res.flag_persistence_generators_by_dim
        fin = np.asarray(gens.finite_higher[0], dtype=np.int64).reshape(-1, 4)
        inf_ = np.asarray(gens.essential_higher[0], dtype=np.int64).reshape(-1, 2)
        edges = _gph_edges(dgms[1], fin[:, :2], inf_)
    return dgms, edges


def _ripser_run(Dr: np.ndarray, maxdim: int, thresh: float, coeff: int):
    """ripser.py's compiled engine (``pyRipser``, what ``ripser.ripser(Dr, distance_matrix=True,
    do_cocycles=True)`` calls, without its wrapper's scikit-learn import): (diagrams,
    cocycles as (i, j, value mod coeff) rows per dimension)."""
    from pyRipser import doRipsFiltrationDM

    n = Dr.shape[0]
    res = doRipsFiltrationDM(np.ascontiguousarray(Dr[np.triu_indices(n, 1)], dtype=np.float32),
                             maxdim, thresh, coeff, True)
    dgms = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in res["births_and_deaths_by_dim"]]
    cocycles = []
    for dim, per_dim in enumerate(res["cocycles_by_dim"]):
        rows = []
        for c in per_dim:
            c = np.asarray(c, dtype=np.int64).reshape(-1, dim + 2)
            c[:, -1] = np.mod(c[:, -1], coeff)
            rows.append(c)
        cocycles.append(rows)
    return dgms, cocycles


def _run_engine(Dr: np.ndarray, maxdim: int, thresh: float, engine: str, cocycles: bool, coeff: int):
    """(dgms, H1 birth edges, cocycles or None) of one truncated run; every edge of length
    ≤ thresh in float32 (the engines' precision) is in the filtration."""
    thresh = float(np.nextafter(np.float32(thresh), np.float32(np.inf)))
    if engine == "gph":
        dgms, edges = _gph_run(Dr, maxdim, thresh, coeff)
        return dgms, edges, None
    dgms, cocs = _ripser_run(Dr, maxdim, thresh, coeff)
    edges = None
    if maxdim >= 1:
        D32 = Dr.astype(np.float32)
        edges = np.array([birth_edge(D32, b, c) for (b, _), c in zip(dgms[1], cocs[1])],
                         dtype=np.int64).reshape(-1, 2)
    return dgms, edges, cocs


def _gph_edges(dgm1: np.ndarray, finite_edges: np.ndarray, infinite_edges: np.ndarray) -> np.ndarray:
    """giotto-ph lists the generators of finite then infinite H1 bars, each in diagram order."""
    fin = np.isfinite(dgm1[:, 1])
    edges = np.zeros((len(dgm1), 2), np.int64)
    edges[fin] = finite_edges
    edges[~fin] = infinite_edges
    return np.sort(edges, axis=1)


def _sorted(dgms: list, edges: np.ndarray | None, cocycles) -> tuple[list, np.ndarray | None, object]:
    """H1 rows in one engine-independent order: by birth, then death, then birth edge."""
    if edges is None or len(dgms) < 2:
        return dgms, edges, cocycles
    h1 = dgms[1]
    order = np.lexsort((edges[:, 1], edges[:, 0], h1[:, 1], h1[:, 0]))
    dgms = [dgms[0], h1[order], *dgms[2:]]
    if cocycles is not None:
        cocycles = list(cocycles)
        cocycles[1] = [cocycles[1][i] for i in order]
    return dgms, edges[order], cocycles


def _prepared(D: np.ndarray):
    """(D, finite mask, enclosing radius (or the largest finite distance when some are inf),
    D with inf replaced by a value beyond any truncation) for the engines."""
    D = np.asarray(D)
    finite = np.isfinite(D)
    encl = enclosing_radius(D) if finite.all() else float(D[finite].max())
    return D, finite, encl, np.where(finite, D, encl * 2 + 1.0)


def persistence(D: np.ndarray, maxdim: int = 1, cocycles: bool = False, coeff: int = 2,
                thresh: float | None = None, engine: str = "auto", truncate: bool = True,
                decided=None) -> dict:
    """Vietoris–Rips persistence diagrams of the distance matrix ``D``.

    Returns a dict with ``dgms`` (list, one (m, 2) float64 array per dimension 0..maxdim),
    ``thresh`` (the truncation value used), ``scale`` (:func:`distance_scale`), ``birth_edges``
    (for H1: one (a, b) pair per bar, in diagram order; H1 rows are sorted by birth, then
    death), ``engine`` and, when ``cocycles=True``, ``cocycles`` (ripser's representative
    cocycles per dimension: arrays of (i, j, value) rows for H1).

    Truncation (``truncate=True``, H1 at most): the filtration starts at the
    :func:`birth_bound` b* (no class is born later) and grows, the number of edges doubling
    (1.25 times at the first step), until no H1 class is alive at the truncation value: the diagram is then
    exactly that of the full filtration (tested against it), at a fraction of the edges
    (about 40 % on a noisy circle under effective resistance, 1.3 s instead of 6 s at
    n = 1,000). Without ``decided`` the first run is one step above b*, never at b*: the
    edge of length b* opens a class that is still alive there. H0 comes from the minimum spanning tree, also exact. H2 (``maxdim=2``) and
    ``truncate=False`` use the enclosing radius. ``decided(dgm1, t)`` may stop the growth
    early: it gets the H1 diagram at truncation t (classes alive at t have death inf, and
    none is born later) and returns True when the caller's answer can no longer change
    (see :func:`topoembed.evidence.confirmation_reading`); the result then has ``exact=False``.

    ``engine``: "gph" (giotto-ph; about twice as fast as ripser.py), "ripser" (ripser.py,
    the only one with cocycles) or "auto" (gph unless cocycles are asked for). With
    ``cocycles=True`` the diagram is found first with the fast engine, then ripser.py runs
    once more, truncated at the largest H1 death, for the cocycles.
    """
    D, finite, encl, Dr = _prepared(D)
    scale = distance_scale(D)
    if thresh is not None or not truncate or maxdim != 1:
        t = encl if thresh is None else float(thresh)
        if maxdim >= 1:
            _check_memory(Dr, t)
        eng = _engine(engine, cocycles, coeff)
        dgms, edges, cocs = _run_engine(Dr, maxdim, t, eng, cocycles, coeff)
        t32 = float(np.nextafter(np.float32(t), np.float32(np.inf)))
        for dgm in dgms:  # alive at the truncation value: only H0 components (see module doc)
            dgm[dgm[:, 1] > t32, 1] = np.inf
        dgms, edges, cocs = _sorted(dgms, edges, cocs)
        out = {"dgms": dgms, "thresh": t, "scale": scale, "engine": eng, "exact": thresh is None,
               "birth_edges": (edges if edges is not None else np.zeros((0, 2), np.int64))}
        if cocycles:
            out["cocycles"] = cocs
        return out

    eng = _engine(engine, False, coeff)
    bound, tree_lengths = _birth_bound_and_tree(D)  # inf entries (other components) never enter
    t = min(bound, encl)
    sample = _distance_sample(Dr, finite)
    exact = True
    step = 0
    if decided is None and bound < encl:
        # a run at b* itself is never complete: the edge of length b* opens a class (no
        # triangle contains it yet, so its cycle bounds nothing), alive at b* unless a tie
        # of lengths kills it at once. Start one growth step above (1.0 s saved on the circle)
        t = _grow(t, sample, encl, step)
        step += 1
    while True:
        _check_memory(Dr, t)
        dgms, edges, cocs = _run_engine(Dr, 1, t, eng, False, coeff)
        alive = ~np.isfinite(dgms[1][:, 1]) | (dgms[1][:, 1] > t)
        dgms[1][alive, 1] = np.inf
        if not alive.any() or t >= encl:
            break
        if decided is not None and decided(dgms[1], t):
            exact = False
            break
        t = _grow(t, sample, encl, step)
        step += 1
    dgms[0] = _h0_diagram(D.shape[0], tree_lengths)
    dgms, edges, _ = _sorted(dgms, edges, None)
    out = {"dgms": dgms, "thresh": float(t), "scale": scale, "engine": eng, "exact": exact, "birth_edges": edges}
    if cocycles:
        out = add_cocycles(D, out, coeff)
    return out


def _distance_sample(D: np.ndarray, finite: np.ndarray, size: int = 200_000, seed: int = 0) -> np.ndarray:
    """Sorted sample of the finite off-diagonal distances (to grow the truncation by edge count)."""
    n = D.shape[0]
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, size), rng.integers(0, n, size)
    keep = (i != j) & finite[i, j]
    return np.sort(D[i[keep], j[keep]])


def _grow(t: float, sample: np.ndarray, encl: float, step: int) -> float:
    """The next truncation: 1.25 times as many edges as at t on the first step (the classes
    still alive at the birth bound usually die just above it), twice as many after."""
    if len(sample) == 0:
        return encl
    frac = np.searchsorted(sample, t, side="right") / len(sample)
    factor = 1.25 if step == 0 else 2.0
    nxt = float(np.quantile(sample, min(1.0, max(factor * frac, 0.01))))
    return min(encl, max(nxt, t * 1.05))


def add_cocycles(D: np.ndarray, ph: dict, coeff: int = 2, rows=None, thresh: float | None = None) -> dict:
    """``ph`` with ripser.py's representative cocycles (Z_coeff) added for the H1 bars ``rows``
    (default: all; cocycles ``ph`` already has for other rows are kept, the rest are empty).

    ripser.py runs truncated at the largest death among those bars, or at ``thresh`` if
    that is smaller. With no class born after ``ph``'s truncation (:func:`persistence`),
    every bar that dies by then is found with the same birth and death, and a bar still
    alive there with the same birth (and birth edge). A cocycle from a run truncated at t,
    restricted to the edges of length ≤ t, is the full run's restricted to them (ripser's
    reduction of a column only adds columns of longer edges; tested), so a localization
    that only looks at G_r for r ≤ t needs no more: on the pipeline's noisy circle the run
    at half the loop's lifetime costs 0.16 s instead of 1.35 s at its death.

    The result has ``cocycle_limit``: per H1 row, the largest filtration value up to which
    its cocycle is valid (inf when the run reached the bar's death, 0 without a cocycle).
    Raises RuntimeError if a bar is not found (the two engines disagree).
    """
    D, _, _, Dr = _prepared(D)
    h1 = ph["dgms"][1]
    rows = list(range(len(h1))) if rows is None else [int(r) for r in rows]
    deaths = h1[rows, 1][np.isfinite(h1[rows, 1])] if rows else np.zeros(0)
    t = float(deaths.max()) if len(deaths) else float(ph["thresh"])
    if thresh is not None:  # never below a birth: each bar must be in the truncated run
        t = min(t, max(float(thresh), float(h1[rows, 0].max()) if rows else 0.0))
    _check_memory(Dr, t)
    dgms, edges, cocs = _run_engine(Dr, 1, t, "ripser", True, coeff)
    t32 = np.float32(np.nextafter(np.float32(t), np.float32(np.inf)))
    theirs = dgms[1].astype(np.float32)
    theirs[theirs[:, 1] > t32, 1] = np.inf  # alive at the truncation
    lookup: dict = {}
    for i, (b, d) in enumerate(theirs.tolist()):
        lookup.setdefault((b, d, *edges[i].tolist()), []).append(i)
    mine = h1.astype(np.float32)
    mine[mine[:, 1] > t32, 1] = np.inf  # as the truncated run sees them
    empty = np.zeros((0, 3), dtype=np.int64)
    old = ph.get("cocycles")
    out_cocs = list(old[1]) if old is not None and len(old) > 1 else [empty] * len(h1)
    limit = np.array(ph.get("cocycle_limit", [np.inf if len(c) else 0.0 for c in out_cocs]), dtype=np.float64)
    out_edges = np.array(ph["birth_edges"], dtype=np.int64).reshape(-1, 2).copy()
    used: set = set()
    for r in rows:
        b, d = mine[r].tolist()
        hits = [i for i in lookup.get((b, d, *out_edges[r].tolist()), []) if i not in used]
        if not hits:  # the same bar with another birth edge of equal length
            hits = [i for i, (bb, dd) in enumerate(theirs.tolist()) if bb == b and dd == d and i not in used]
        if not hits:
            raise RuntimeError(f"ripser.py does not find the H1 bar ({b}, {d}) of {ph.get('engine')}")
        used.add(hits[0])
        out_cocs[r] = cocs[1][hits[0]]
        out_edges[r] = edges[hits[0]]
        limit[r] = np.inf if np.isfinite(d) else float(np.float32(t))  # G_r for float32(r) ≤ this
    return {**ph, "cocycles": [cocs[0], out_cocs], "birth_edges": out_edges, "cocycle_limit": limit}


#: Landmarks of :func:`landmark_persistence` by default. 300: on the noise benchmark's torus
#: (n = 1,000) 200 landmarks missed its void at σ ≥ 0.15 and in some draws below (p = 0.05-0.2);
#: 300 find it up to σ = 0.15 in most draws (BENCHMARKS.md, seventh pass). H2 of 300 points,
#: after the edge collapse, costs 0.1-0.4 s (a clean sphere: 11 s). The closed-surface check
#: tries more where these show no void (:data:`topoembed.loops.SURFACE_LANDMARKS`).
N_LANDMARKS = 300


def maxmin_landmarks(D: np.ndarray, m: int, seed: int = 0) -> np.ndarray:
    """Indices of ``m`` landmarks chosen by farthest-point (max-min) sampling on the distance
    matrix ``D``: start from a seeded random point, then add the point farthest from those
    chosen. The landmarks cover the data at the smallest radius any greedy choice
    guarantees (within 2x of the optimum; Gonzalez 1985). O(n m) time, O(n) memory."""
    D = np.asarray(D)
    n = D.shape[0]
    m = min(int(m), n)
    rng = np.random.default_rng(seed)
    idx = np.empty(m, dtype=np.int64)
    idx[0] = int(rng.integers(n))
    near = np.where(np.isfinite(D[idx[0]]), D[idx[0]], np.inf).astype(np.float64)
    near[idx[0]] = -1.0
    for i in range(1, m):
        # an unreachable point (another component) is infinitely far: it is taken first
        j = int(np.argmax(near))
        idx[i] = j
        near = np.minimum(near, D[j])  # the landmarks before stay at -1
        near[j] = -1.0
    return idx


def collapsed_persistence(D: np.ndarray, maxdim: int = 2, coeff: int = 2) -> dict | None:
    """Vietoris-Rips diagrams of ``D`` (up to the enclosing radius) after an edge collapse:
    edges that a neighbouring vertex dominates are removed first, which leaves every
    persistence diagram unchanged (Boissonnat and Pritam, *Edge collapse and persistence of
    flag complexes*, SoCG 2020) and shrinks the complex that H2 reduces. The collapse and the
    reduction are giotto-ph's; without giotto-ph (Python 3.13), gudhi's collapse
    (``SimplexTree.collapse_edges``) and ripser.py on the edges left. Same dict as
    :func:`persistence` (no birth edges, no cocycles: the collapse loses the generators). On 300
    landmarks: H1 and H2 identical to :func:`persistence`, 0.1-0.4 s instead of 1.2-2.6 s
    (giotto-ph) or 2.7-6.6 s (ripser.py). None where neither collapse is installed."""
    collapser, core = _gph_module("gph_collapser"), _gph_core(coeff)
    with_gph = collapser is not None and core is not None
    gudhi = None if with_gph else _gudhi()
    if not with_gph and gudhi is None:
        return None
    D, _, encl, Dr = _prepared(D)
    t = float(np.nextafter(np.float32(encl), np.float32(np.inf)))
    if with_gph:
        row, col, val = collapser.flag_complex_collapse_edges_dense(np.ascontiguousarray(Dr, dtype=np.float32), t)
        res = core.rips_dm_sparse(np.asarray(row, np.int64), np.asarray(col, np.int64), np.asarray(val, np.float32),
                                  len(val), D.shape[0], coeff, maxdim, t, 1, False)
        found, engine = res.births_and_deaths_by_dim(), "gph-collapse"
    else:
        from pyRipser import doRipsFiltrationDMSparse

        row, col, val = _gudhi_collapse(gudhi, Dr, t)
        found = doRipsFiltrationDMSparse(row, col, val, D.shape[0], maxdim, t, coeff, False)["births_and_deaths_by_dim"]
        engine = "gudhi-collapse"
    dgms = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in found]
    for dgm in dgms:  # alive at the enclosing radius: only H0's last component
        dgm[dgm[:, 1] > t, 1] = np.inf
    dgms = [dgm[np.lexsort((dgm[:, 1], dgm[:, 0]))] for dgm in dgms]
    return {"dgms": dgms, "thresh": encl, "scale": distance_scale(D), "engine": engine, "exact": True,
            "birth_edges": np.zeros((0, 2), np.int64)}


def _gudhi():
    """gudhi (a dependency on Python 3.13, where giotto-ph has no wheel), or None."""
    try:
        import gudhi
    except ImportError:
        return None
    return gudhi


def _gudhi_collapse(gudhi, Dr: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, length) of the edges of length ≤ t (float32) that gudhi's edge collapse keeps,
    row < col, sorted; collapsed again until no edge goes (one pass left up to twice as many
    on 300-500 landmarks)."""
    m = Dr.shape[0]
    iu, ju = np.triu_indices(m, 1)
    w = np.asarray(Dr[iu, ju], dtype=np.float32)
    keep = w <= np.float32(t)
    st = gudhi.SimplexTree()
    st.insert_batch(np.arange(m)[None, :], np.zeros(m))
    st.insert_batch(np.vstack([iu[keep], ju[keep]]), w[keep].astype(np.float64))
    edges = st.num_simplices() - m
    while True:
        st.collapse_edges()
        left = st.num_simplices() - m
        if left == edges:
            break
        edges = left
    e = np.array([(*simplex, f) for simplex, f in st.get_skeleton(1) if len(simplex) == 2],
                 dtype=np.float64).reshape(-1, 3)
    e = e[np.lexsort((e[:, 1], e[:, 0]))]
    return e[:, 0].astype(np.int32), e[:, 1].astype(np.int32), e[:, 2].astype(np.float32)


def landmark_persistence(D: np.ndarray, n_landmarks: int = N_LANDMARKS, maxdim: int = 2, seed: int = 0,
                         engine: str = "auto") -> dict:
    """Persistence up to H2 of the max-min landmarks (:func:`maxmin_landmarks`) of ``D``:
    :func:`collapsed_persistence` on ``D[L, L]`` (``engine`` "auto"; otherwise, or without
    giotto-ph and gudhi, :func:`persistence` with that engine), with ``landmarks`` (the indices L)
    added. Voids (H2) of all n points are out of reach (34 s at n = 500 without the collapse);
    on :data:`N_LANDMARKS` landmarks they take under a second on most data, and a surface
    sampled that densely keeps its void."""
    L = maxmin_landmarks(D, n_landmarks, seed)
    L.sort()
    DL = np.asarray(D)[np.ix_(L, L)]
    out = collapsed_persistence(DL, maxdim=maxdim) if engine == "auto" else None
    if out is None:
        out = persistence(DL, maxdim=maxdim, engine=engine)
    out["landmarks"] = L
    return out

