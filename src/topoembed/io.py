"""Reading inputs and writing outputs, atomically.

Inputs: ``.npy``, ``.csv``/``.tsv``/``.txt`` (numeric, optional header row; gzip-compressed as
``.csv.gz`` etc. too), AnnData inputs (:data:`ANNDATA_INPUTS`: ``.h5ad``, ``.zarr``, ``.loom``,
Cell Ranger's ``.h5`` or matrix folder; their ``X`` or an ``obsm`` key named by ``use_rep``), or a
``synthetic:NAME?...`` spec.
Outputs are written to a temporary file in the target folder and renamed into place
(``os.replace`` is atomic on POSIX), so a failed run never leaves a half-written file.

Size (about 530 lines): every input format a user holds (with what to do about the ones not
read) and every atomic writer, which share the suffix tables and the file checks.
"""
from __future__ import annotations

import logging

import contextlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ._validate import INTERFACE, InputError, looks_like_gene_counts, option
from .tables import file_type, read_table, warn_repeated_names

__all__ = ["load_points", "read_h5ad", "read_table_anndata", "ANNDATA_INPUTS", "atomic_path", "write_json", "write_npz",
           "write_text", "OutputSet", "to_jsonable", "dumps_json", "INPUT_SUFFIXES"]

log = logging.getLogger(__name__)

#: The suffixes read as AnnData (files, and for .zarr folders): what each is, and who writes it,
#: for the message when it cannot be read.
_WRITTEN_BY = {".h5ad": ("an .h5ad file", "anndata/scanpy (adata.write_h5ad)"),
               ".zarr": ("an AnnData .zarr store", "anndata (adata.write_zarr)"),
               ".loom": ("a .loom file", "loompy or anndata (adata.write_loom)"),
               ".h5": ("a 10x Genomics .h5 matrix", "Cell Ranger (filtered_feature_bc_matrix.h5)")}
ANNDATA_SUFFIXES = tuple(_WRITTEN_BY)
#: The inputs read as AnnData (cells × genes with annotations), as messages name them.
ANNDATA_INPUTS = ".h5ad, .zarr, .loom, a 10x .h5 file or matrix folder"
INPUT_SUFFIXES = (".npy", ".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz", *ANNDATA_SUFFIXES)


#: Files that make a 10x Genomics matrix folder (Cell Ranger's filtered_feature_bc_matrix/).
TENX_MATRIX = ("matrix.mtx.gz", "matrix.mtx")


def is_10x_folder(path) -> bool:
    """A 10x Genomics matrix folder: matrix.mtx[.gz] beside barcodes.tsv[.gz] and features/genes.tsv[.gz]."""
    path = Path(path)
    return path.is_dir() and any((path / f).exists() for f in TENX_MATRIX)


def is_anndata_input(source) -> bool:
    """Inputs read as AnnData (cells × genes with annotations): :data:`ANNDATA_INPUTS`."""
    s = str(source).rstrip("/")
    return s.lower().endswith(ANNDATA_SUFFIXES) or is_10x_folder(s)


def _loom_names(path) -> dict:
    """``read_loom``'s name attributes: loompy's and velocyto's ``Gene``/``CellID`` (anndata's
    default), else those ``adata.write_loom`` writes (``var_names``/``obs_names``), which
    ``read_loom`` alone turned into 0, 1, 2, ... (the recipe then found none of its genes)."""
    import h5py

    with h5py.File(path, "r") as f:
        rows, cols = set(f.get("row_attrs", {}).keys()), set(f.get("col_attrs", {}).keys())
    return {"var_names": "Gene" if "Gene" in rows or "var_names" not in rows else "var_names",
            "obs_names": "CellID" if "CellID" in cols or "obs_names" not in cols else "obs_names"}


def _read_10x_gunzipped(path: Path):
    """A 10x v3 folder whose files were un-gzipped (matrix.mtx, features.tsv, barcodes.tsv), read
    from gzipped copies in a temporary folder: ``sc.read_10x_mtx`` wants .gz beside features.tsv."""
    import gzip
    import shutil
    import tempfile

    import scanpy as sc

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("matrix.mtx", "features.tsv", "barcodes.tsv"):
            src = path / name if (path / name).exists() else path / f"{name}.gz"
            if src.suffix == ".gz":
                shutil.copyfile(src, Path(tmp) / src.name)
            else:
                with open(src, "rb") as fin, gzip.open(Path(tmp) / f"{name}.gz", "wb", compresslevel=1) as fout:
                    shutil.copyfileobj(fin, fout)
        return sc.read_10x_mtx(tmp, var_names="gene_symbols", make_unique=True)


def read_anndata(path):
    """An AnnData from an .h5ad file, a .zarr store, a .loom file, or Cell Ranger's .h5 matrix or
    matrix folder (scanpy's readers; for 10x input gene symbols become var_names, made unique,
    and the Ensembl ids stay in ``var["gene_ids"]``)."""
    import anndata

    path = Path(path)
    if is_10x_folder(path):
        import scanpy as sc

        try:
            try:
                adata = sc.read_10x_mtx(path, var_names="gene_symbols", make_unique=True)
            except FileNotFoundError:  # scanpy reads features.tsv (v3) only gzipped: read a gzipped copy
                adata = _read_10x_gunzipped(path)
        except Exception as exc:
            raise InputError(f"{path} looks like a 10x matrix folder but could not be read ({type(exc).__name__}: "
                             f"{exc}); it needs matrix.mtx[.gz], barcodes.tsv[.gz] and features.tsv[.gz] "
                             "(or genes.tsv) as Cell Ranger writes them") from None
        log.info("%s: a 10x matrix folder, %d cells x %d genes (raw counts: use --recipe cell_cycle)", path,
                 adata.n_obs, adata.n_vars)
        return adata
    _check_file(path)
    suffix = path.suffix.lower()
    what, writer = _WRITTEN_BY.get(suffix, _WRITTEN_BY[".h5ad"])
    try:
        if suffix == ".loom":
            read_loom = getattr(getattr(anndata, "io", None), "read_loom", None) or anndata.read_loom  # anndata < 0.11
            return read_loom(path, **_loom_names(path))
        if suffix == ".zarr":
            return anndata.read_zarr(path)
        if suffix == ".h5" and not _is_h5ad(path):  # Cell Ranger's (an .h5ad saved as .h5 is read below)
            import scanpy as sc

            with warnings.catch_warnings():  # 10x symbols repeat; they are made unique next
                warnings.filterwarnings("ignore", "Variable names are not unique")
                adata = sc.read_10x_h5(path)
            adata.var_names_make_unique()
            log.info("%s: a 10x .h5 matrix, %d cells x %d genes (raw counts: use --recipe cell_cycle)", path,
                     adata.n_obs, adata.n_vars)
            return adata
        return anndata.read_h5ad(path)
    except ImportError as exc:
        raise InputError(f"reading {what} needs {exc.name or 'a package that is missing'}: "
                         f"pip install {exc.name or 'zarr'}") from None
    except Exception as exc:
        raise InputError(f"{path} could not be read as {what} ({type(exc).__name__}: {exc}); "
                         f"check that it was written by {writer}") from None


def _is_h5ad(path: Path) -> bool:
    """An HDF5 file that anndata wrote (its root says encoding-type anndata, or holds X and obs),
    whatever its name ends in; False where it cannot be opened (the reader then says why)."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return f.attrs.get("encoding-type") == "anndata" or {"X", "obs"} <= set(f.keys())
    except Exception:  # noqa: BLE001 - not HDF5: the 10x reader's message names the file
        return False


def read_table_anndata(path, index_col: bool | None = None, transpose: bool | None = None):
    """A count table (cells × genes, or genes × cells with ``transpose``; :func:`topoembed.tables.read_table`)
    as an AnnData, so that the recipe (``--recipe cell_cycle``) can read it: the table's values in
    X (float32), its row names as ``obs_names``, its header's gene names as ``var_names`` (made
    unique). Refused without gene names, which the recipe matches."""
    import anndata

    path = Path(path)
    _check_file(path)
    if file_type(path) not in INPUT_SUFFIXES or file_type(path) == ".npy":
        why = "a .npy array has no gene names" if file_type(path) == ".npy" else "not a file of cells and genes"
        raise InputError(f"{path}: --recipe reads a count table (.csv, .tsv, .txt, or .gz) or AnnData input "
                         f"({ANNDATA_INPUTS}); {why}{_CONVERT.get(file_type(path), '')}")
    X, cells, genes = read_table(path, index_col, transpose)
    if genes is None:
        where = "first column" if transpose else "header row"
        raise InputError(f"{path}: --recipe cell_cycle needs the genes' names (its {where}), to find the cell-cycle "
                         "genes; this table has none. Without the recipe the table is analysed as it is")
    adata = anndata.AnnData(X=np.asarray(X, dtype=np.float32))
    adata.obs_names = cells if cells is not None else [str(i) for i in range(X.shape[0])]
    adata.var_names = [str(g) for g in genes]
    adata.var_names_make_unique()
    log.info("%s: a table of %d cells x %d genes read for the recipe", path, adata.n_obs, adata.n_vars)
    return adata


def read_h5ad(path):
    """:func:`read_anndata` (kept for the stage commands, which read .h5ad files)."""
    return read_anndata(path)


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _new_temp(final: Path) -> Path:
    """An empty temporary file beside ``final`` with the mode a normal open() would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    return Path(tmp)


def _check_file(path: Path):
    if not path.exists():
        raise InputError(f"input file {str(path)!r} does not exist; check the path")
    if path.is_dir() and not is_10x_folder(path) and path.suffix.lower() != ".zarr":
        raise InputError(f"input {str(path)!r} is a folder without a 10x matrix (matrix.mtx[.gz]) and not a .zarr "
                         f"store; pass a file ({', '.join(INPUT_SUFFIXES)}), a .zarr store or a 10x matrix folder")


#: How to turn files users often hold, which are not read here, into one that is.
_R = (". An R object (Seurat, SingleCellExperiment): write its PCA as a table, e.g. write.csv(Embeddings(obj, "
      "'pca'), 'cells.csv') for Seurat, or the object as .h5ad (zellkonverter, SeuratDisk)")
_MTX = (". A Matrix Market file is read as part of its 10x folder: pass the folder that holds matrix.mtx[.gz] "
        "with barcodes.tsv[.gz] and features.tsv[.gz]")
_CONVERT = {**dict.fromkeys((".rds", ".rda", ".rdata", ".h5seurat"), _R), **dict.fromkeys((".mtx", ".mtx.gz"), _MTX),
            **dict.fromkeys((".xlsx", ".xls"), ". An Excel workbook: save the sheet as CSV (File > Save As > CSV UTF-8)"),
            ".parquet": ". A parquet table: write it as CSV (pandas' to_csv) or its values as .npy (numpy.save)",
            ".npz": ". An .npz archive: save the one array of points with numpy.save (.npy)"}


def load_points(source: str | os.PathLike, use_rep: str | None = None,
                index_col: bool | None = None, transpose: bool | None = None) -> tuple[np.ndarray, dict]:
    """Read points (n × p float array) and a small dict describing where they came from.

    ``source`` is a file path or ``synthetic:NAME?n=..&d=..&sigma=..&seed=..``.
    For ``.h5ad`` input, ``use_rep`` names an ``obsm`` key (default: ``X``); for tables,
    ``index_col`` says whether the first column is a row index (None: detect it) and
    ``transpose`` whether the columns are the points (None: rows, refused where they are genes;
    :func:`topoembed.tables.read_table`).
    """
    s = str(source)
    if s.startswith("synthetic:"):
        from .datasets import from_spec

        _no_use_rep(use_rep, "synthetic: data")
        try:
            ds = from_spec(s)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return ds.X, {"source": s, "kind": "synthetic", "synthetic": ds}
    path = Path(s)
    _check_file(path)
    suffix = file_type(path)
    if is_anndata_input(path):
        adata = read_anndata(path)
        use_rep = default_rep(adata, use_rep)  # None: X, where nothing else was prepared
        return points_from_adata(adata, use_rep), {"source": str(path), "kind": "anndata",
                                                   "use_rep": use_rep, "adata": adata}
    if suffix not in INPUT_SUFFIXES:
        raise InputError(f"{path} has an unsupported file type {suffix or '(none)'!r}; use one of "
                         f"{', '.join(INPUT_SUFFIXES)} or synthetic:NAME"
                         f"{_CONVERT.get(suffix) or _CONVERT.get(''.join(path.suffixes[-2:]).lower(), '')}")
    meta = {"source": str(path), "kind": suffix.lstrip(".")}
    if suffix == ".npy":
        try:
            X = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{path} is not a valid .npy array ({exc}); save it with numpy.save") from None
    else:
        X, names, _ = read_table(path, index_col, transpose)
        if names is not None:
            meta["row_names"] = names
            warn_repeated_names(path, names)
    _no_use_rep(use_rep, suffix)
    return X, meta


def _no_use_rep(use_rep: str | None, what: str) -> None:
    """Input without an obsm (a table, .npy, synthetic: data) has no representation to pick."""
    if use_rep is not None:
        raise InputError(f"--use-rep {use_rep!r} only applies to AnnData input ({ANNDATA_INPUTS}), not {what}")


#: scanpy's ``settings.N_PCS``: with ``use_rep=None`` scanpy analyses ``obsm["X_pca"]`` when X
#: has more columns than this (``sc.pp.neighbors``), and so does :func:`default_rep`.
SCANPY_N_PCS = 50
#: The ``obsm`` key where ``topoembed prepare`` puts the points to analyse (and
#: ``uns["topoembed_input"]`` says how they were made).
PREPARED_REP = "X_topoembed_input"


#: ``uns`` entry where te.pp.recipe_cell_cycle records what it made (:mod:`topoembed.pp`).
RECIPE_KEY = "topoembed_recipe"


def default_rep(adata, use_rep: str | None, quiet: bool = False) -> str | None:
    """``use_rep``, or, where none is given (None; "X" asks for ``adata.X``), the points that
    were prepared in ``adata``, not its ``X`` (often the raw counts or thousands of genes):
    :data:`PREPARED_REP` where ``topoembed prepare`` wrote the file, else the PCA that
    ``te.pp.recipe_cell_cycle`` stored (``uns["topoembed_recipe"]["key_added"]``), else, as
    scanpy's ``use_rep=None`` chooses, ``obsm["X_pca"]`` where X has more than
    :data:`SCANPY_N_PCS` columns; with a log line. ``quiet``: X's many columns not warned about,
    for a caller whose points are resolved again later, which warns (as in
    :func:`topoembed._anndata.points`)."""
    if use_rep is not None:
        return use_rep
    if PREPARED_REP in adata.obsm and "topoembed_input" in adata.uns:
        return PREPARED_REP
    recipe = adata.uns.get(RECIPE_KEY)
    key = recipe.get("key_added") if isinstance(recipe, dict) else None
    if isinstance(key, str) and key in adata.obsm:
        log.info("use_rep not given: analysing obsm[%r], which te.pp.recipe_cell_cycle wrote (use_rep='X' for "
                 "adata.X)", key)
        return key
    if "X_pca" in adata.obsm and adata.n_vars > SCANPY_N_PCS:  # scanpy's own rule (sc.pp.neighbors, sc.tl.umap)
        log.info("use_rep not given: analysing obsm['X_pca'] as scanpy would for %d genes (use_rep='X' for "
                 "adata.X)", adata.n_vars)
        return "X_pca"
    # scanpy would compute a PCA here; raw counts are refused where the points are read (_anndata.points)
    if adata.n_vars > SCANPY_N_PCS and not looks_like_gene_counts(adata.X):
        first = ("--use-rep KEY for a representation in obsm, or --recipe cell_cycle on counts"
                 if INTERFACE["name"] == "cli" else "sc.pp.pca(adata) (or te.pp.recipe_cell_cycle on counts) first")
        (log.debug if quiet else log.warning)(
            "use_rep not given and no obsm['X_pca']: analysing adata.X's %d columns as they are; for genes, %s, "
            "or %s to analyse X on purpose", adata.n_vars, first, option("use_rep", "X"))
    return None


def points_from_adata(adata, use_rep: str | None = None) -> np.ndarray:
    """The matrix a stage runs on: ``adata.obsm[use_rep]`` or ``adata.X``."""
    if use_rep is None or use_rep == "X":
        X = adata.X
    else:
        if use_rep not in adata.obsm:
            keys = list(adata.obsm.keys())
            raise InputError(f"obsm key {use_rep!r} not found; available: {keys or 'none'} "
                             "(or use 'X'; run sc.pp.pca first to get X_pca)")
        X = adata.obsm[use_rep]
    if hasattr(X, "toarray"):
        X = X.toarray()
    return np.asarray(X)


def check_writable(path: str | os.PathLike, folder: bool) -> None:
    """Fail early, before any work, if ``path`` (an output folder or file) cannot be created:
    the nearest existing ancestor must be a writable folder, and an existing ``path`` must be
    a folder (``folder=True``) or a file."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise InputError(f"--out {str(path)!r} exists and is not a folder; choose another path")
        if not folder and path.is_dir():
            raise InputError(f"--out {str(path)!r} is a folder; give a file name")
        target = path if folder else path.parent
    else:
        target = path.parent
        while not target.exists():
            target = target.parent
        if not target.is_dir():
            raise InputError(f"--out {str(path)!r} cannot be created: {str(target)!r} is a file, not a folder")
    if not os.access(target, os.W_OK | os.X_OK):
        raise InputError(f"--out {str(path)!r} cannot be written: no write permission in {str(target)!r}")
    try:  # permissions do not tell all (root, read-only mounts, /proc): make and remove a folder there
        os.rmdir(tempfile.mkdtemp(prefix=".topoembed-probe-", dir=target))
    except OSError as exc:
        raise InputError(f"--out {str(path)!r} cannot be written in {str(target)!r} ({exc.strerror}); choose "
                         "another path") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def to_jsonable(obj):
    """Convert numpy scalars/arrays and non-finite floats (-> None) for JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


_SHORT_LIST = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)


def dumps_json(obj) -> str:
    """JSON with indentation, but lists of scalars (e.g. one diagram bar) kept on one line."""
    text = json.dumps(to_jsonable(obj), indent=2)
    return _SHORT_LIST.sub(lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text) + "\n"


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(obj))


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


#: First bytes of a subsample-run file (``topoembed subsample``): a pickle of a pipeline Result
#: is read back only after this header, so an arbitrary pickle is never unpickled.
RUN_MAGIC = b"topoembed-subsample-run-v1\n"


def write_run(path, result) -> None:
    """Write one subsample run (:func:`topoembed.ensemble.run_subsample`) or part screen
    (:func:`topoembed.ensemble.run_part`) for ``run --from-runs``."""
    import pickle

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(RUN_MAGIC)
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)


def read_run(path):
    """A subsample run written by :func:`write_run` (InputError for any other file).

    These files are intermediates of one workflow (like Snakemake's own), read by the same
    user who wrote them; a file without the header is refused before unpickling."""
    import pickle

    path = Path(path)
    _check_file(path)
    with open(path, "rb") as fh:
        if fh.read(len(RUN_MAGIC)) != RUN_MAGIC:
            raise InputError(f"{path} is not a subsample run written by `topoembed subsample`")
        try:
            return pickle.load(fh)
        except Exception as exc:
            raise InputError(f"{path} is a damaged subsample run ({exc}); run `topoembed subsample` again") from None


class OutputSet:
    """Stage several output files and publish them together.

    Files are first written under temporary names in the output folder; ``commit``
    renames them all into place. If anything fails before that (an error, Ctrl-C, SIGTERM),
    the temporaries are removed and no output file appears (a folder the run created is
    removed too). A SIGKILL cannot be caught: it can leave hidden ``.NAME.*.tmp`` files, never
    a final one, and a rerun replaces them.
    """

    def __init__(self, out_dir, owned: tuple = ()):
        """``owned``: the names a set of this kind may hold; one that an earlier run left and
        this one does not write is removed on commit (an embedding.npy of an earlier run sat
        beside a later run's results, as if it were theirs). Other files are never touched."""
        self.out_dir = Path(out_dir)
        self._created_dir = not self.out_dir.exists()
        self._staged: list[tuple[Path, Path]] = []
        self._owned = tuple(owned)
        self._created_subdirs: list[Path] = []

    def __enter__(self):
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"--out {str(self.out_dir)!r} exists and is not a folder; choose another path")
        return self

    def path(self, name: str) -> Path:
        """A temporary path to write ``name`` to (``"GROUP/summary.json"``: in a subfolder);
        published on commit. The folders are created here, after the computation, so a run
        killed before it leaves no folder behind."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        final = self.out_dir / name
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True)
            self._created_subdirs.append(final.parent)
        tmp = _new_temp(final)
        self._staged.append((tmp, final))
        return tmp

    def commit(self):
        import signal

        replaced = [str(final.relative_to(self.out_dir)) for _, final in self._staged if final.exists()]
        written = {str(final.relative_to(self.out_dir)) for _, final in self._staged}
        stale = [self.out_dir / name for name in self._owned if name not in written and (self.out_dir / name).is_file()]
        # Ctrl-C or SIGTERM between two renames would leave half a set: they wait until all are in place
        blocked = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if hasattr(signal, "pthread_sigmask") else None
        try:
            for tmp, final in self._staged:
                os.replace(tmp, final)
            self._staged = []
            for path in stale:
                path.unlink()
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if replaced or stale:  # say so: an earlier run's results are gone
            said = [f"replaced the earlier {', '.join(replaced)}"] if replaced else []
            if stale:
                said.append(f"removed the earlier {', '.join(p.name for p in stale)}, which this run does not write")
            log.warning("%s in %s/ (another --out keeps both)", "; ".join(said), self.out_dir)

    def __exit__(self, exc_type, exc, tb):
        for tmp, _ in self._staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if exc_type is not None:
            for folder in reversed(self._created_subdirs + ([self.out_dir] if self._created_dir else [])):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
        return False


def count_points(source, use_rep: str | None = None, transpose: bool | None = None) -> int:
    """The number of points of ``source`` without reading its values (a workflow sizes its
    jobs with it): the synthetic spec's n, an .npy header, an .h5ad's n_obs, a table's rows (its
    columns with ``transpose``, :func:`load_points`)."""
    s = str(source)
    if s.startswith("synthetic:"):
        return int(load_points(s)[0].shape[0])
    path = Path(s)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    if is_anndata_input(path):  # read, but not validated as points (raw counts are fine here)
        return len(read_obs(path))
    return int(load_points(s, transpose=transpose)[0].shape[0])


def read_obs(path):
    """The ``obs`` table of an AnnData input without its values: an .h5ad's ``obs`` alone
    (backed), a .loom's or a 10x folder's by reading it."""
    path = Path(path)
    if path.suffix.lower() == ".h5ad":
        import anndata

        adata = anndata.read_h5ad(path, backed="r")
        try:
            return adata.obs.copy()
        finally:
            adata.file.close()
    return read_anndata(path).obs
