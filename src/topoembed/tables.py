"""Numeric text tables as users write them: ``.csv``, ``.tsv``, whitespace ``.txt``, each
also gzip-compressed (``.csv.gz``), with at most one header row and one first column of cell
names, as pandas' ``DataFrame.to_csv`` (or R's ``write.csv``) writes them, and Excel's CSV with
";" between fields and a decimal comma (or its tab-separated text with one), in UTF-8 (with or
without Excel's byte-order mark), UTF-16 (Excel's "Unicode Text") or Latin-1, a separator at
the end of each line allowed. Missing values (an empty field, NA) read as NaN, which the
points' check then refuses with the rows named; a column of text is refused by number and name. A cell per row, or per column (``transpose``: a gene × cell count table, as GEO's are); a
table whose row names are genes is refused until ``transpose`` says which way round it is.
:func:`read_table` is what :func:`topoembed.io.load_points` and
:func:`topoembed.io.read_table_anndata` (a count table for the recipe) call for a table.
"""
from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np

from ._validate import InputError

__all__ = ["read_table", "warn_repeated_names", "file_type", "genes_among", "GENE_ROWS_MIN"]

log = logging.getLogger(__name__)


def file_type(path: Path) -> str:
    """The file type of ``path``, lower case: ``.csv`` or, for a gzip-compressed table, ``.csv.gz``."""
    suffixes = [x.lower() for x in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[1] == ".gz" and suffixes[0] in (".csv", ".tsv", ".txt"):
        return "".join(suffixes)
    return path.suffix.lower()


def _open_bytes(path: Path):
    """The table's bytes, through gzip for a ``.gz`` file."""
    import gzip

    return (gzip.open if file_type(path).endswith(".gz") else open)(path, "rb")


def encoding(path: Path) -> str:
    """The text encoding of a table, from its first 64 kB: UTF-16 or UTF-8 where it starts with
    their byte-order mark (Excel's "Unicode Text" and "CSV UTF-8"; the mark is not part of the
    first name), UTF-8 where those bytes are valid UTF-8, else Latin-1 (Excel's "CSV" on Windows
    in Western Europe; every byte is a character there, and numbers read the same)."""
    import codecs

    with _open_bytes(path) as fh:
        head = fh.read(1 << 16)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character cut at 64 kB is fine
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"


def _open_text(path: Path, enc: str, newline: str | None = None):
    """The table as text in the encoding ``enc`` (:func:`encoding`), through gzip for a ``.gz`` file."""
    import io

    return io.TextIOWrapper(_open_bytes(path), encoding=enc, errors="replace", newline=newline)


def _is_number(field: str) -> bool:
    try:
        float(field)
        return True
    except ValueError:
        return False


#: Fields of a table read as missing values (NaN, then refused with the rows named): pandas'
#: ``to_csv`` writes NaN as an empty field, R's ``write.csv`` as NA.
_MISSING = ("", "NA", "NaN", "nan", "N/A", "NULL", "null")


def _text_table(path: Path, delim: str | None, header: bool, enc: str):
    """The table's fields as text (pandas; the header row skipped, not parsed: split at whitespace,
    pandas' header of an index (" a b") loses its empty first field, and the names would then
    drop the last column). A row longer than the first is refused; pandas fills a shorter one's
    end with empty fields, which :func:`_check_row_lengths` tells from missing values."""
    import pandas as pd

    try:
        return pd.read_csv(path, sep=delim if delim else r"\s+", header=None, skiprows=1 if header else 0,
                           index_col=False, dtype=str, keep_default_na=False, encoding=enc,
                           encoding_errors="replace")
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path} has rows of different lengths ({str(exc).strip()}); every row must hold the same "
                         "number of fields") from None


def _check_row_lengths(path: Path, delim: str | None, header: bool, n_fields: int, enc: str) -> None:
    """Refuse a table with a row of other than ``n_fields`` fields (a second pass over the file,
    made only where missing values were read)."""
    import csv

    with _open_text(path, enc, newline="") as fh:
        rows = csv.reader(fh, delimiter=delim) if delim else (line.split() for line in fh)
        for line, fields in enumerate(rows, start=1):
            if line > int(header) and any(f.strip() for f in fields) and len(fields) != n_fields:
                raise InputError(f"{path} has rows of different lengths: line {line} has {len(fields)} fields, the "
                                 f"longest row {n_fields}; every row must hold the same number of fields (a missing "
                                 "value as NA, or as an empty field between commas or tabs)")


def _numbers(df, path: Path, header: list | None, first_col: int, hint: str = "") -> np.ndarray:
    """float64 values of a table read as text (:func:`_text_table`); missing fields
    (:data:`_MISSING`) are NaN. A column with text is refused by number and name (``header``: the
    header row's fields, or None; ``first_col``: the file's column number of df's first column,
    1-based)."""
    import pandas as pd

    try:  # numpy parses each number exactly as np.loadtxt does (pandas' own parser may differ in the last bit)
        return df.to_numpy(dtype=np.float64)
    except ValueError:  # missing values, or text
        pass
    text = df.astype(str).apply(lambda c: c.str.strip())
    missing = text.isin(_MISSING)
    try:
        return text.mask(missing, "nan").to_numpy(dtype=np.float64)
    except ValueError:
        pass
    bad = text.apply(lambda c: pd.to_numeric(c, errors="coerce")).isna() & ~missing
    if bad.to_numpy().any():
        cols = np.flatnonzero(bad.to_numpy().any(axis=0))
        j = int(cols[0])
        i = int(np.flatnonzero(bad.iloc[:, j].to_numpy())[0])
        line = i + 1 + int(header is not None)
        col = j + first_col
        name = f" ({header[col - 1]!r})" if header is not None and col - 1 < len(header) and header[col - 1] else ""
        more = f" (and {len(cols) - 1} more column(s))" if len(cols) > 1 else ""
        raise InputError(f"{path}: column {col}{name}{more} holds text, e.g. {text.iloc[i, j]!r} on line {line}; "
                         "the table must hold numbers only, with at most one header row and one first column of cell "
                         "names (as pandas' to_csv writes it). Keep labels such as clusters out of the table (in an "
                         f"AnnData's obs, or a file of their own){hint}")
    raise InputError(f"{path} holds values that are not numbers; the table must hold numbers only")


def _read_as_text(path: Path, delim: str | None, header: bool, fields: list, names_first: bool | None,
                  hint: str, enc: str, comma: bool = False) -> tuple[np.ndarray, list | None]:
    """(X, the first column's names or None) of a table read as text (:func:`_text_table`,
    :func:`_numbers`). ``names_first`` None: the first column holds names where none of its
    fields is a number. ``comma``: the numbers have a decimal comma. A missing value read as NaN
    may be the end of a short row: then the rows are counted (:func:`_check_row_lengths`)."""
    df = _text_table(path, delim, header, enc)
    first = df.iloc[:, 0]  # names as written, before a decimal comma is turned
    if comma:  # every field as its number would be written with a decimal point (names are not numbers either way)
        df = df.apply(lambda c: c.str.replace(",", ".", regex=False))
    if names_first is None:
        names_first = df.shape[1] > 1 and not any(
            _is_number(v) for v in df.iloc[:, 0].astype(str).str.strip() if v not in _MISSING)
    X = np.atleast_2d(_numbers(df.iloc[:, 1:] if names_first else df, path, fields if header else None,
                               first_col=2 if names_first else 1, hint=hint))
    if np.isnan(X).any():
        _check_row_lengths(path, delim, header, df.shape[1], enc)
    return X, (first.astype(str).tolist() if names_first else None)


def _fields(line: str, sep: str | None) -> list[str]:
    """A line's fields, stripped and unquoted (``sep`` None: split at whitespace)."""
    return [f.strip().strip('"\'') for f in (line.split(sep) if sep else line.split())]


def _read_rows(path: Path, index_col: bool | None) -> tuple[np.ndarray, list | None, list | None]:
    """(X, row names or None, the header row's fields or None): :func:`read_table` before the
    table is turned or checked for genes in its rows."""
    suffix = file_type(path)
    kind = suffix.removesuffix(".gz")
    delim = "\t" if kind == ".tsv" else ("," if kind == ".csv" else None)
    try:
        enc = encoding(path)
        with _open_text(path, enc) as fh:
            first, second = fh.readline(), fh.readline()
    except (OSError, EOFError) as exc:
        if not suffix.endswith(".gz"):
            raise
        # a .gz that is no gzip file, or one cut short
        raise InputError(f"{path} cannot be read as a gzip-compressed table ({exc}); check the file or "
                         "decompress it") from None
    line = second if second.strip() else first  # the first data row (or the only row)
    data = _fields(line, ";")
    if delim in (",", None) and "\t" not in first and len(data) > 1 and all(
            _is_number(f) or _DECIMAL_COMMA.fullmatch(f) for f in data[1:] if f not in _MISSING):
        delim = ";"  # Excel's "CSV" where the decimal mark is a comma (German, French, ... settings)
        log.info("%s: fields separated by ';'", path)
    if delim is None:
        delim = "\t" if "\t" in first else ("," if "," in first else None)
    # a decimal comma: Excel's ";" CSV and its tab-separated text
    comma = delim in (";", "\t") and any(_DECIMAL_COMMA.fullmatch(f) for f in _fields(line, delim))
    if comma:
        log.info("%s: numbers with a decimal comma (1,5 is 1.5)", path)

    def split(line):
        return [f.replace(",", ".") if comma and _DECIMAL_COMMA.fullmatch(f) else f for f in _fields(line, delim)]

    fields, row = split(first), split(second) if second.strip() else []
    numeric = [_is_number(f) for f in fields if f != ""]
    values = [float(f) for f in fields if f != "" and _is_number(f)]
    # pandas writes an index's header as an empty first field (",0,1,2") and default column
    # names as 0, 1, 2, ...: a first row counting up from 0 is a header
    counting = len(values) > 1 and all(numeric) and values == list(range(len(values)))
    # a header row has names past the first field; a first field alone that is not a number is a
    # header only where the next row's first field is a number (else it is the first cell's name)
    names_after_first = any(not _is_number(f) for f in fields[1:] if f != "")
    named_first = bool(fields) and fields[0] != "" and not _is_number(fields[0])
    header = (names_after_first or (len(fields) > 1 and fields[0] == "") or counting
              or (named_first and bool(row) and _is_number(row[0])))
    if counting:
        log.info("%s: the first row (0, 1, ..., %d) is read as column names", path, len(values) - 1)
    data_row = row if header else fields
    named = (len(data_row) > 1 and not _is_number(data_row[0]) and all(_is_number(f) for f in data_row[1:]))
    if index_col is None and named:
        index_col = True
        log.info("%s: the first column holds row names (e.g. %r); they are the cells' ids (--no-index-col keeps "
                 "the column as data, which then fails: it is not numeric)", path, data_row[0])
    kept = "; --no-index-col keeps the first column, which holds names: leave it out" if index_col is False and named else ""
    head = fields if header else None
    try:
        if named or (index_col and not _is_number(data_row[0] if data_row else "0")):
            X, names = _read_as_text(path, delim, header, fields, bool(index_col), kept, enc, comma)
            return X, names, head
        if comma:  # numpy reads no decimal comma: as text, and then the index is looked for below
            raise ValueError("decimal comma")
        with warnings.catch_warnings():  # an empty file: refused below as "0 points"
            warnings.simplefilter("ignore", UserWarning)
            X = np.loadtxt(path, delimiter=delim, skiprows=1 if header else 0, dtype=np.float64, ndmin=2,
                           encoding=enc)
    except InputError:
        raise
    except ValueError:
        # slower: read as text, name what is not a number, and give missing fields as NaN
        X, names = _read_as_text(path, delim, header, fields, False if index_col is False else None, kept, enc,
                                 comma)
        if names is not None:
            log.info("%s: the first column holds row names (e.g. %r); they are the cells' ids", path, names[0])
            return X, names, head
    if index_col is None and X.shape[1] > 1:
        unnamed = header and fields[0] in ("", "Unnamed: 0", "index")
        counting_col = bool(np.array_equal(X[:, 0], np.arange(X.shape[0])))
        if unnamed or counting_col:
            log.info("%s: the first column is a row index (%s); dropped (--no-index-col keeps it)", path,
                     "unnamed header" if unnamed else "0, 1, ..., n-1")
            index_col = True
    if index_col:
        if X.shape[1] < 2:
            raise InputError(f"{path} has one column; with --index-col there would be no coordinates left")
        return X[:, 1:], [str(int(v)) if float(v).is_integer() else str(v) for v in X[:, 0]], head
    return X, None, head


def _column_names(header: list | None, n_columns: int) -> list | None:
    """The names of the table's n data columns from its header row: past the index column's
    field where the header has one field more (pandas, R's write.csv), as they are where it has
    exactly n (R's write.table), else None."""
    if header is None:
        return None
    if len(header) == n_columns + 1:
        return list(header[1:])
    return list(header) if len(header) == n_columns else None


def _without_trailing_separator(path: Path, X: np.ndarray, header: list | None) -> tuple[np.ndarray, list | None]:
    """(X, header) without the empty last column and header field that a separator at the end of
    each line makes ("1\t2\t3\t", as some exporters write): a last column of missing values
    only, which the header leaves unnamed, and an empty last header field past the data's columns."""
    n = X.shape[1]
    unnamed = header is None or len(header) < n or header[-1] == ""
    if n > 1 and unnamed and bool(np.isnan(X[:, -1]).all()):
        X = X[:, :-1]
        log.info("%s: every line ends in a separator; the empty last column it makes is dropped", path)
    if header and header[-1] == "" and len(header) > X.shape[1]:
        header = header[:-1]
    return X, header


def read_table(path: Path, index_col: bool | None = None, transpose: bool | None = None
               ) -> tuple[np.ndarray, list | None, list | None]:
    """(X, row names or None, column names or None) from a numeric table with at most one header
    row and at most one index column; each row is a point (a cell).

    ``index_col`` None detects the index as pandas' ``DataFrame.to_csv`` writes it: cell names
    (a first column that is not numeric where the rest is), an empty or "Unnamed: 0" first
    header field, or a first column that is exactly 0, 1, …, n − 1; it is dropped with a log
    line. True always drops the first column, False never does.

    Fields separated by ";" (Excel's CSV under a decimal comma) are read as such, "1,5" as 1.5
    there and in tab-separated text. ``transpose`` True reads the columns as the points (a
    gene × cell table, as GEO count tables are written); None refuses a table whose row names are genes
    (:func:`genes_among`: at least :data:`GENE_ROWS_MIN` of the bundled cell-cycle genes, or
    mostly Ensembl gene ids), with that fix; False reads the rows as they are."""
    X, rows, header = _read_rows(path, index_col)
    X, header = _without_trailing_separator(path, X, header)
    cols = _column_names(header, X.shape[1])
    if transpose:
        return np.ascontiguousarray(X.T), cols, rows
    if transpose is None and rows is not None:
        genes = genes_among(rows)
        if genes:
            raise InputError(f"{path}: its rows look like genes ({', '.join(genes[:4])}, ... are row names), and each "
                             f"row is read as a cell; pass --transpose to read its {X.shape[1]} columns as the cells "
                             "(transpose: true in a workflow's sample; --no-transpose reads the rows as they are)")
    return X, rows, cols


#: Fewest row names that are bundled cell-cycle gene symbols (Tirosh et al. 2016, 97 genes, any
#: case) for :func:`genes_among` to take the rows for genes: a table of all genes holds about
#: 90 of them, one of 2,000 variable genes of dividing cells a few dozen; cell ids hold none.
GENE_ROWS_MIN = 5
_ENSEMBL_GENE = re.compile(r"ENS[A-Z]*G\d{6,}(\.\d+)?")
_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+([eE][-+]?\d+)?")


def genes_among(names) -> list[str]:
    """The names that make ``names`` (a table's row names) look like genes: the bundled
    cell-cycle gene symbols among them where there are at least :data:`GENE_ROWS_MIN`, or the
    Ensembl gene ids where they are at least half of the names; else []."""
    import pandas as pd

    from .datasets import cell_cycle_genes

    names = pd.Index(names).astype(str)
    symbols = names[names.str.upper().isin({g.upper() for g in cell_cycle_genes()})]
    if len(symbols) >= GENE_ROWS_MIN:
        return list(symbols)
    ensembl = names[names.str.fullmatch(_ENSEMBL_GENE.pattern)]
    return list(ensembl) if len(names) and len(ensembl) >= len(names) / 2 else []


def warn_repeated_names(path, names: list) -> None:
    """Cell names that repeat are kept (the results keep the input's rows), with a warning: the
    ids of cells.csv repeat too, and joining it back on them would mix cells."""
    import collections

    repeated = [(name, c) for name, c in collections.Counter(names).items() if c > 1]
    if repeated:
        log.warning("%s: %d cell name(s) occur more than once (e.g. %r, %d times); the results keep the rows in order, "
                    "but cells.csv's ids repeat too: give every row its own name to join them back", path,
                    len(repeated), repeated[0][0], repeated[0][1])
