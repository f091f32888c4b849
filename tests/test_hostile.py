"""Hostile inputs to `topoembed run` (issue 15): each fails early with one clear line, exit
status 2, no traceback and no output left behind, or is handled correctly. The table in
README ("Hostile inputs") lists the same cases and what happens."""
import os
import pathlib

import numpy as np
import pytest

from topoembed import cli, datasets

CIRCLE = datasets.make("circle", n=200, d=5, sigma=0.1, seed=0).X


def _npy(tmp, name, arr, **kw):
    p = tmp / name
    np.save(p, arr, **kw)
    return str(p)


def _with(X, i, v):
    X = X.copy()
    X[i] = v
    return X


def _h5ad(tmp):
    import anndata

    p = tmp / "a.h5ad"
    anndata.AnnData(X=CIRCLE.astype(np.float32)).write_h5ad(p)
    return p


def _truncated(tmp):
    p = _h5ad(tmp)
    data = p.read_bytes()
    q = tmp / "trunc.h5ad"
    q.write_bytes(data[: len(data) // 2])
    return [str(q)]


def _text(tmp, name, text):
    (tmp / name).write_text(text)
    return str(tmp / name)


def _dir(tmp):
    (tmp / "adir.npy").mkdir()
    return str(tmp / "adir.npy")


# (case, input builder -> argv after "run", expected message fragment)
REFUSED = [
    ("NaN", lambda t: [_npy(t, "x.npy", _with(CIRCLE, (3, 2), np.nan))], "NaN values"),
    ("infinite", lambda t: [_npy(t, "x.npy", _with(CIRCLE, (3, 2), np.inf))], "infinite values"),
    ("object array (a pickle)", lambda t: [_npy(t, "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)],
     "not a valid .npy"),
    ("complex", lambda t: [_npy(t, "x.npy", CIRCLE.astype(complex))], "complex values"),
    ("strings in a CSV", lambda t: [_text(t, "x.csv", "a,b\nx,y\n1,2\n")], "column 1 ('a') (and 1 more column(s)) holds text"),
    ("ragged CSV", lambda t: [_text(t, "x.csv", "1,2,3\n4,5\n6,7,8\n")], "rows of different lengths"),
    ("empty file", lambda t: [_text(t, "x.csv", "")], "0 points"),
    ("0 points", lambda t: [_npy(t, "x.npy", np.zeros((0, 5)))], "0 points"),
    ("1 point", lambda t: [_npy(t, "x.npy", CIRCLE[:1])], "at least 3"),
    ("2 points", lambda t: [_npy(t, "x.npy", CIRCLE[:2])], "at least 3"),
    ("k points", lambda t: [_npy(t, "x.npy", CIRCLE[:30]), "--k", "30"], "must be smaller than the number of points"),
    ("a folder", lambda t: [_dir(t)], "is a folder"),
    ("missing file", lambda t: [str(t / "nope.npy")], "does not exist"),
    ("wrong obsm key", lambda t: [str(_h5ad(t)), "--use-rep", "X_nope"], "obsm key 'X_nope' not found"),
    ("truncated .h5ad", _truncated, "could not be read"),
    ("k = 0", lambda t: [_npy(t, "x.npy", CIRCLE), "--k", "0"], "k=0"),
    ("t < 0", lambda t: [_npy(t, "x.npy", CIRCLE), "--t", "-1"], "t=-1"),
    ("t = NaN", lambda t: [_npy(t, "x.npy", CIRCLE), "--t", "nan"], "t=nan"),
    ("n_loops > 5", lambda t: [_npy(t, "x.npy", CIRCLE), "--n-loops", "6"], "n_loops=6"),
    ("unknown distance", lambda t: [_npy(t, "x.npy", CIRCLE), "--distance", "foo"], "invalid choice"),
    ("over the memory / size limit", lambda t: [_npy(t, "x.npy", CIRCLE), "--max-points", "10", "--n-subsamples", "1"],
     "exceed the dense limit"),
    ("output under a file", lambda t: [_npy(t, "x.npy", CIRCLE), "--out", _text(t, "f", "") + "/sub"],
     "is a file, not a folder"),
]

HANDLED = [  # (case, input, loops expected)
    ("boolean features", lambda t: [_npy(t, "x.npy", CIRCLE > 0)], None),
    ("all points identical", lambda t: [_npy(t, "x.npy", np.ones((200, 5)))], 0),
    ("two distinct points", lambda t: [_npy(t, "x.npy", np.repeat(CIRCLE[:2], 100, axis=0))], 0),
    ("a fifth of the points one point", lambda t: [_npy(t, "x.npy", _with(CIRCLE, slice(0, 40), CIRCLE[0]))], None),
    ("one feature", lambda t: [_npy(t, "x.npy", CIRCLE[:, :1])], None),
    ("counts near the int32 limit", lambda t: [_npy(t, "x.npy", (np.abs(CIRCLE) * 2**30).astype(np.int64))], 1),
    ("a disconnected graph", lambda t: [_npy(t, "x.npy", np.vstack([CIRCLE, CIRCLE[:20] + 100]))], 1),
]


def _run(tmp_path, argv, capsys):
    out = tmp_path / "out"
    if "--out" not in argv:
        argv = [*argv, "--out", str(out)]
    if "--k" not in argv:
        argv = [*argv, "--k", "30"]
    rc = cli.main(["run", *argv, "-q"]) if "--distance" not in argv else None
    if rc is None:  # argparse's own refusal exits through SystemExit(2)
        with pytest.raises(SystemExit) as exc:
            cli.main(["run", *argv, "-q"])
        rc = exc.value.code
    return rc, capsys.readouterr(), out


@pytest.mark.parametrize("case,build,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_with_one_line_and_nothing_left(tmp_path, capsys, case, build, message):
    rc, cap, out = _run(tmp_path, build(tmp_path), capsys)
    assert rc == 2
    assert message in cap.err and "Traceback" not in cap.err
    errors = [ln for ln in cap.err.splitlines() if "error" in ln]
    assert len(errors) == 1, cap.err
    assert not out.exists()


@pytest.mark.parametrize("case,build,n_loops", HANDLED, ids=[c[0] for c in HANDLED])
def test_handled(tmp_path, capsys, case, build, n_loops):
    rc, cap, out = _run(tmp_path, build(tmp_path), capsys)
    assert rc == 0, cap.err
    import json

    s = json.loads((out / "summary.json").read_text())
    if n_loops is not None:
        assert s["detection"]["n_loops"] == n_loops
    if "identical" in case or "distinct" in case or "one point" in case:  # and the summary says why
        said = " ".join(s["warnings"])
        assert ("40 of the 200 points are one point (rows [0, 1, 2, 3, 4], ...; 39 points repeat another"
                if "one point" in case else "no loop can be drawn through them") in said, said


def test_identical_points_are_counted_as_numpy_groups_them():
    # oracle: np.unique over rows; groups of 1, 3 and 7 identical rows among distinct ones
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    X[10:17] = X[3]
    X[20:23] = X[40]
    from topoembed._validate import identical_points

    distinct, largest, rows = identical_points(X)
    uniq, counts = np.unique(X, axis=0, return_counts=True)
    assert distinct == len(uniq) and largest == counts.max() == 8
    assert rows.tolist() == [3, *range(10, 17)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder; the check cannot fail as root")
def test_unwritable_output_folder(tmp_path, capsys):  # pragma: no cover - not root on user machines
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    rc, cap, _ = _run(tmp_path, [_npy(tmp_path, "x.npy", CIRCLE), "--out", str(pathlib.Path(ro) / "x")], capsys)
    assert rc == 2 and "no write permission" in cap.err


def test_sparse_input_and_exact_knn_flag():
    """A scipy sparse matrix (the Python API) is densified; --knn-method is a choice."""
    import scipy.sparse as sp

    from topoembed import pipeline

    dense = pipeline.run(CIRCLE, k=30, localize=False)
    sparse = pipeline.run(sp.csr_matrix(CIRCLE), k=30, localize=False, knn_method="exact")
    np.testing.assert_array_equal(dense.D, sparse.D)
    with pytest.raises(Exception, match="knn_method"):
        pipeline.run(CIRCLE, k=30, knn_method="fast")
