"""Shared validators for user input: each raises with a message naming the problem and the fix.

The core array functions assume valid input; the shells (``tl``, ``cli``, ``pipeline``)
call these first so that a bad input fails before any work is done.
"""
from __future__ import annotations

import os

import numpy as np
from . import _lazy

sp = _lazy.module("scipy.sparse")


class InputError(ValueError):
    """Bad user input. The message says what is wrong and how to fix it."""


def check_points(X, *, name: str = "X", min_points: int = 2, row_names=None) -> np.ndarray:
    """Return X as a 2-D float array after checking shape, dtype and finiteness; a refusal names
    the rows by ``row_names`` (a table's or AnnData's cell names) where given."""
    if sp.issparse(X):
        X = X.toarray()
    try:
        X = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InputError(f"{name} could not be read as a numeric array ({exc})") from None
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise InputError(f"{name} is not numeric (dtype {X.dtype}); pass a numeric matrix of points x features")
    if np.iscomplexobj(X):
        raise InputError(f"{name} has complex values (dtype {X.dtype}); pass real coordinates, e.g. np.abs(X) or "
                         "the real and imaginary parts as separate columns")
    if X.ndim == 1:
        raise InputError(f"{name} is 1-D with shape {X.shape}; pass a 2-D matrix (points x features), "
                         "e.g. X.reshape(-1, 1) for one feature")
    if X.ndim != 2:
        raise InputError(f"{name} has {X.ndim} dimensions; pass a 2-D matrix (points x features)")
    n = X.shape[0]
    if n == 0:
        raise InputError(f"{name} has 0 points (an empty file, or every row filtered out); pass a non-empty matrix")
    if X.shape[1] == 0:
        raise InputError(f"{name} has 0 features; pass a matrix with at least one column")
    if n < min_points:
        raise InputError(f"{name} has {n} points but at least {min_points} are needed; pass more points or lower k")
    X = X.astype(np.float64, copy=False) if not np.issubdtype(X.dtype, np.floating) else X
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        kind = "NaN" if np.isnan(X).any() else "infinite"
        first = (rows[:5].tolist() if row_names is None or len(row_names) != n
                 else ", ".join(f"{row_names[r]} (row {r})" for r in rows[:5]))
        raise InputError(f"{name} contains {kind} values in {len(rows)} row(s) (first: {first}); "
                         "drop or impute those rows before running")
    return X


def identical_points(X: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(distinct points of X, the size of its largest group of identical points, that group's rows).

    Rows are grouped by two random projections (seeded): identical rows project alike, distinct
    ones almost surely not. O(n p) time, O(n) memory: 1,000,000 × 50 points in about a second."""
    scale = float(max(X.max(), -X.min())) or 1.0  # projections of values near the float limit stay finite
    proj = X @ (np.random.default_rng(0).standard_normal((X.shape[1], 2)) / scale)
    _, inverse, counts = np.unique(proj[:, 0] + 1j * proj[:, 1], return_inverse=True, return_counts=True)
    big = int(np.argmax(counts))
    return len(counts), int(counts[big]), np.flatnonzero(inverse.ravel() == big)


def check_identical_points(X: np.ndarray) -> str | None:
    """A warning where many of the points X are one point (a group of at least 10 and 1 % of
    them, or fewer than 3 distinct points, through which no loop can be drawn), else None.
    Identical points are each other's nearest neighbours (at distance 0), so a group of more than k
    of them is a part of the kNN graph of its own, apart from the rest, and gets no phase: 200 of
    1,000 IPC cells set to one point made 102 components (101 of them, and 100 alone)."""
    n = X.shape[0]
    distinct, largest, rows = identical_points(X)
    fix = ("Cells with no counts in the genes used become identical after normalisation: drop them, or the "
           "repeats (np.unique(X, axis=0)), before the run")
    if distinct < 3:
        return f"the {n} points are only {distinct} distinct point(s): no loop can be drawn through them. " + fix
    if largest >= max(10, 0.01 * n):
        return (f"{largest} of the {n} points are one point (rows {rows[:5].tolist()}{', ...' if largest > 5 else ''}; "
                f"{n - distinct} points repeat another in all): identical points are each other's nearest "
                "neighbours, so a group larger than k stands apart in the kNN graph and its points get no phase. "
                + fix)
    return None


def check_k(k, n: int) -> int:
    """k must be an integer with 1 <= k < n."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k={k!r} must be a positive integer (number of nearest neighbours)")
    if k >= n:
        raise InputError(f"k={k} must be smaller than the number of points n={n}; choose k <= {n - 1} "
                         "or pass more points")
    return int(k)


def check_choice(value, choices, name: str):
    if value not in choices:
        raise InputError(f"{name}={value!r} is not one of {sorted(choices)}")
    return value


def meant_name(name: str, known, aliases: dict | None = None) -> str | None:
    """The name a user probably meant by an unknown ``name``: its entry in ``aliases`` (another
    tool's name for a setting, e.g. scanpy's), else the closest of ``known`` (difflib), else None."""
    import difflib

    if aliases and name in aliases:
        return aliases[name]
    return next(iter(difflib.get_close_matches(name, list(known), n=1)), None)


def check_positive(value, name: str, *, integer: bool = False, allow_zero: bool = False):
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, bool) or not ok_type or not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        what = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}={value!r} must be a finite {what} {bound}")
    return value


def available_memory_bytes() -> int:
    """Memory available to this process now (MemAvailable on Linux), else a 4 GiB guess."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 * 1024**3


def looks_like_counts(X, sample: int = 20000, seed: int = 0) -> bool:
    """True if X is non-negative and integer-valued (checked on a random sample of entries)."""
    return count_kind(X, sample, seed) == "integer"


#: More columns than this, all non-negative integers: raw counts over genes, which need the
#: recipe (fewer: a few counted features, or pixel-like values, analysed as they are).
COUNTS_MIN_COLUMNS = 100


def looks_like_gene_counts(X) -> bool:
    """X (points × features) looks like raw counts over genes: more than
    :data:`COUNTS_MIN_COLUMNS` columns of non-negative integers (:func:`looks_like_counts`)."""
    return X.shape[1] > COUNTS_MIN_COLUMNS and looks_like_counts(X)


def count_kind(X, sample: int = 20000, seed: int = 0) -> str:
    """What a matrix of expression values looks like, from a random sample of its entries:
    "integer" (raw counts), "fractional" (non-negative, non-integer, with values above
    :data:`LOG_MAX`: counts after ambient-RNA correction or from a pseudo-aligner), "log"
    (non-negative, non-integer, all at most :data:`LOG_MAX`: log1p of normalised counts
    stays below about 12; or all at most :data:`LOG2_MAX` with the median non-zero value at
    least an eighth of the largest: log2 values, such as McDavid's NanoString cells, 0-21
    with median 8.5, where counts, even corrected ones, are mostly small with a long tail),
    "negative" (scaled data or a representation) or "empty"."""
    data = X.data if _issparse(X) else np.asarray(X).ravel()
    if data.size == 0:
        return "empty"
    if data.size > sample:
        data = data[np.random.default_rng(seed).choice(data.size, sample, replace=False)]
    data = np.asarray(data, dtype=np.float64)
    if np.any(data < 0) or not np.all(np.isfinite(data)):
        return "negative"
    if np.all(data == np.round(data)) and data.max() > 1:
        return "integer"
    top = data.max()
    nonzero = data[data > 0]
    log2 = top <= LOG2_MAX and nonzero.size > 0 and np.median(nonzero) >= top / 8
    return "log" if top <= LOG_MAX or log2 else "fractional"


#: The largest value log-transformed expression takes in practice (log1p(1e4 · 1) ≈ 9.2; some
#: pipelines scale to 1e6: log1p(1e6) ≈ 13.8).
LOG_MAX = 15.0
#: The largest value log2-transformed expression takes in practice (log2 of 10^9 ≈ 30).
LOG2_MAX = 32.0


def _issparse(X) -> bool:
    import scipy.sparse as sp

    return sp.issparse(X)


# ---------------------------------------------------------------- the fix, in the user's words
#: Which interface the user is in: "python" (the default) or "cli" (set by ``topoembed.cli.main``).
#: Messages that name a fix say it as that interface spells it (:func:`option`).
INTERFACE = {"name": "python"}


def option(name: str, value=None) -> str:
    """A setting as the user would write it: ``--prevalence-check 0`` on the command line,
    ``prevalence_check=False`` in Python (booleans are 1/0 on the command line); without a
    ``value``, its name alone (``--prevalence-check``, ``prevalence_check``)."""
    if INTERFACE["name"] == "cli":
        shown = int(value) if isinstance(value, bool) else value
        return f"--{name.replace('_', '-')}" + ("" if value is None else f" {shown}")
    return name if value is None else f"{name}={value!r}"
