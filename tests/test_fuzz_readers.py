"""Fuzzing the input readers (issue 15): random bytes, and mutations of valid files, given
to ``io.load_points`` as .csv, .tsv, .npy and .h5ad. Every input must either load as a
numeric 2-D array or be refused with an InputError (one clear message): any other exception
is a bug. Bounded: a fixed number of derandomised examples (about 6 s in all; set
TOPOEMBED_FUZZ_EXAMPLES for a longer campaign)."""
import io as _io
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from topoembed import io  # noqa: E402
from topoembed._validate import InputError  # noqa: E402

#: examples per reader; a longer campaign: TOPOEMBED_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_readers.py
N = int(os.environ.get("TOPOEMBED_FUZZ_EXAMPLES", 150))
FUZZ = settings(max_examples=N, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _valid_npy() -> bytes:
    buf = _io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float64).reshape(4, 3))
    return buf.getvalue()


def _valid_h5ad(tmp_path_factory) -> bytes:
    import anndata

    p = tmp_path_factory.mktemp("seed") / "a.h5ad"
    anndata.AnnData(X=np.arange(12, dtype=np.float32).reshape(4, 3)).write_h5ad(p)
    return p.read_bytes()


def _load_or_refuse(path):
    try:
        X, _ = io.load_points(path)
    except InputError:
        return
    X = np.asarray(X)
    assert X.ndim == 2 and np.issubdtype(X.dtype, np.number)


@st.composite
def mutated(draw, seed: bytes):
    """A valid file with a few bytes flipped, cut short, or with junk appended."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=20))


text_tables = st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                          st.text(alphabet="0123456789.-eE+naifx ,;\t\"'", max_size=6)),
                                 max_size=5), max_size=6)


@FUZZ
@given(rows=text_tables, sep=st.sampled_from([",", "\t", " ", ";"]), suffix=st.sampled_from([".csv", ".tsv", ".txt"]))
def test_text_tables(tmp_path_factory, rows, sep, suffix):
    p = tmp_path_factory.mktemp("t") / f"x{suffix}"
    p.write_text("\n".join(sep.join(r) for r in rows))
    _load_or_refuse(p)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), mutated(_valid_npy())))
def test_npy_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("n") / "x.npy"
    p.write_bytes(data)
    _load_or_refuse(p)


@settings(max_examples=max(10, N // 4), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_h5ad_bytes(tmp_path_factory, data):
    seed = _valid_h5ad(tmp_path_factory)
    p = tmp_path_factory.mktemp("h") / "x.h5ad"
    p.write_bytes(data.draw(st.one_of(st.binary(max_size=300), mutated(seed))))
    _load_or_refuse(p)
