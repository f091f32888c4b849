"""Inputs as users have them, each with one command: a pandas CSV with cell names, a 10x matrix
folder or Cell Ranger's .h5, an AnnData .zarr store, an h5ad whose raw counts are in layers["counts"]."""
import gzip
import json

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from topoembed import cli, datasets, io, tables
from topoembed._validate import InputError


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_a_pandas_csv_with_cell_names_runs_like_its_npy(tmp_path):
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    names = [f"AAACCTG-{i}" for i in range(300)]
    pd.DataFrame(X, index=names, columns=[f"PC{j}" for j in range(10)]).to_csv(tmp_path / "cells.csv")
    pd.DataFrame(X, index=names).to_csv(tmp_path / "cells.tsv", sep="\t", header=False)
    np.save(tmp_path / "cells.npy", X)
    for name in ("cells.csv", "cells.tsv", "cells.npy"):
        assert cli.main(["run", str(tmp_path / name), "--k", "30", "--out", str(tmp_path / name[-3:]), "-q"]) == 0
    ref = _summary(tmp_path / "npy")
    for ext in ("csv", "tsv"):
        got = _summary(tmp_path / ext)
        assert got["diagrams"] == ref["diagrams"] and got["verdict"] == ref["verdict"]
        cells = pd.read_csv(tmp_path / ext / "cells.csv")
        assert cells["id"].tolist() == names  # the cells keep their names
    Y, meta = io.load_points(tmp_path / "cells.csv")
    assert np.allclose(Y, X) and meta["row_names"][:2] == names[:2]
    with pytest.raises(InputError, match="leave it out"):
        io.load_points(tmp_path / "cells.csv", index_col=False)
    pd.DataFrame(X).to_csv(tmp_path / "numbered.csv")  # a numeric index: ids 0, 1, ... as integers
    assert io.load_points(tmp_path / "numbered.csv")[1]["row_names"][:2] == ["0", "1"]



@pytest.mark.parametrize("name, sep", [("cells.csv.gz", ","), ("cells.TSV.gz", "\t"), ("cells.txt.gz", " ")])
def test_a_gzipped_table_reads_like_the_plain_one(tmp_path, name, sep):
    X = datasets.make("circle", n=50, d=4, sigma=0.1, seed=0).X
    names = [f"cell-{i}" for i in range(50)]
    pd.DataFrame(X, index=names, columns=list("abcd")).to_csv(tmp_path / name, sep=sep, compression="gzip")
    Y, meta = io.load_points(tmp_path / name)
    assert np.array_equal(Y, pd.DataFrame(X).to_numpy()) and meta["row_names"] == names
    assert io.count_points(tmp_path / name) == 50


def test_a_gz_that_is_no_gzip_file_is_refused_with_the_fix(tmp_path):
    (tmp_path / "plain.csv.gz").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(InputError, match="cannot be read as a gzip-compressed table"):
        io.load_points(tmp_path / "plain.csv.gz")
    (tmp_path / "x.npy.gz").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported file type '.gz'"):
        io.load_points(tmp_path / "x.npy.gz")


@pytest.mark.parametrize("name, fix", [("seurat.rds", r"Embeddings\(obj, 'pca'\)"), ("matrix.mtx.gz", "pass the folder"),
                                       ("cells.xlsx", "save the sheet as CSV"), ("cells.parquet", "to_csv")])
def test_a_file_users_often_hold_is_refused_with_how_to_convert_it(tmp_path, name, fix):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match=f"unsupported file type.*{fix}"):
        io.load_points(tmp_path / name)


def test_a_csv_with_text_inside_is_refused_with_the_fix(tmp_path):
    (tmp_path / "bad.csv").write_text("id,a,b\nc1,1,2\nc2,x,3\nc3,4,5\n")
    with pytest.raises(InputError, match="numbers only"):
        io.load_points(tmp_path / "bad.csv")


@pytest.mark.parametrize("index", [True, False])
def test_a_missing_value_as_pandas_writes_it_is_refused_as_nan_with_its_row(tmp_path, capsys, index):
    # pandas' to_csv writes NaN as an empty field: it was "non-numeric values (could not convert
    # string to float: '')", with no row named
    X = datasets.make("circle", n=60, d=4, seed=0).X
    X[7, 2] = np.nan
    pd.DataFrame(X, index=[f"cell{i}" for i in range(60)], columns=list("abcd")).to_csv(tmp_path / "t.csv", index=index)
    Y, meta = io.load_points(tmp_path / "t.csv")
    assert Y.shape == (60, 4) and np.isnan(Y[7, 2]) and np.isnan(Y).sum() == 1
    assert (meta.get("row_names") or ["cell0"])[0] == "cell0"
    assert cli.main(["run", str(tmp_path / "t.csv"), "--out", str(tmp_path / "out"), "-q"]) == 2
    # with cell names the refusal names the cell, as cells.csv would
    assert f"NaN values in 1 row(s) (first: {'cell7 (row 7)' if index else '[7]'})" in capsys.readouterr().err


def test_prepare_keeps_a_table_s_cell_names(tmp_path):
    # the samples workflow starts with `topoembed prepare`: its cells.csv had ids 0, 1, ... where `run` gave the names
    import anndata

    X = datasets.make("circle", n=120, d=4, sigma=0.05, seed=0).X
    names = [f"cell{i}" for i in range(120)]
    pd.DataFrame(X, index=names).to_csv(tmp_path / "t.csv")
    assert cli.main(["prepare", str(tmp_path / "t.csv"), "--out", str(tmp_path / "p.h5ad")]) == 0
    assert list(anndata.read_h5ad(tmp_path / "p.h5ad").obs_names) == names
    assert cli.main(["run", str(tmp_path / "p.h5ad"), "--k", "20", "--out", str(tmp_path / "r"), "-q"]) == 0
    assert pd.read_csv(tmp_path / "r" / "cells.csv")["id"].tolist() == names


def test_repeated_cell_names_are_warned_about(tmp_path, caplog):
    X = datasets.make("circle", n=40, d=3, seed=0).X
    pd.DataFrame(X, index=[f"cell{i % 30}" for i in range(40)]).to_csv(tmp_path / "t.csv")
    with caplog.at_level("WARNING"):
        Y, meta = io.load_points(tmp_path / "t.csv")
    assert Y.shape == (40, 3) and meta["row_names"][30] == "cell0"
    assert "10 cell name(s) occur more than once (e.g. 'cell0', 2 times)" in caplog.text


def test_a_column_of_labels_is_named_not_the_cell_names(tmp_path):
    # before: "could not convert string 'cell0' to float64 at row 0, column 1", which blamed the index
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 4)), columns=list("abcd"),
                      index=[f"cell{i}" for i in range(30)])
    df["cluster"] = "A"
    df.to_csv(tmp_path / "t.csv")
    with pytest.raises(InputError, match=r"column 6 \('cluster'\) holds text, e.g. 'A' on line 2"):
        io.load_points(tmp_path / "t.csv")


def _write_10x(folder, adata):
    folder.mkdir()
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.csr_matrix(adata.X.T).astype(np.int64))  # genes × cells, as Cell Ranger writes
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("".join(f"{b}\n" for b in adata.obs_names))
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        fh.write("".join(f"ENSG{i:011d}\t{g}\tGene Expression\n" for i, g in enumerate(adata.var_names)))


def test_a_10x_folder_runs_with_the_recipe_and_raw_counts_are_refused_without(tmp_path, capsys):
    counts = datasets.demo_adata(n_cells=400)
    _write_10x(tmp_path / "filtered_feature_bc_matrix", counts)
    folder = tmp_path / "filtered_feature_bc_matrix"
    assert io.is_10x_folder(folder) and io.is_anndata_input(folder)
    assert cli.main(["run", str(folder), "--recipe", "cell_cycle", "--out", str(tmp_path / "r"), "-q"]) == 0
    s = _summary(tmp_path / "r")
    assert s["verdict"]["level"] == "loop" and s["n_input"] == 400
    assert (tmp_path / "r" / "result.h5ad").exists()
    assert cli.main(["run", str(folder), "--out", str(tmp_path / "raw"), "-q"]) == 2
    said = capsys.readouterr().err  # the fix as the command line spells it, not the Python recipe
    assert "raw counts" in said and "--recipe cell_cycle" in said and "te.pp" not in said
    assert not (tmp_path / "raw").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="10x"):
        io.load_points(tmp_path / "empty")


def _write_10x_h5(path, adata):
    """Cell Ranger's filtered_feature_bc_matrix.h5 (format 3): the genes × cells counts as CSC
    arrays under /matrix, with the barcodes and the features' ids, names and types."""
    import h5py

    M = sp.csc_matrix(sp.csr_matrix(adata.X.T).astype(np.int32))  # genes × cells, one column per cell
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        for key, val in (("data", M.data), ("indices", M.indices.astype(np.int64)), ("indptr", M.indptr.astype(np.int64)),
                         ("shape", np.array(M.shape, np.int32)), ("barcodes", np.array(adata.obs_names, dtype="S"))):
            m.create_dataset(key, data=val)
        feats = m.create_group("features")
        n = adata.n_vars
        feats.create_dataset("id", data=np.array([f"ENSG{i:011d}" for i in range(n)], dtype="S"))
        feats.create_dataset("name", data=np.array(adata.var_names, dtype="S"))
        feats.create_dataset("feature_type", data=np.array(["Gene Expression"] * n, dtype="S"))
        feats.create_dataset("genome", data=np.array(["GRCh38"] * n, dtype="S"))
        feats.create_dataset("_all_tag_keys", data=np.array(["genome"], dtype="S"))


@pytest.mark.filterwarnings("ignore:Variable names are not unique")  # the input's repeated symbol, on purpose
def test_cell_rangers_h5_reads_as_its_matrix_folder_and_runs_with_the_recipe(tmp_path):
    counts = datasets.demo_adata(n_cells=400)
    counts.var_names = [counts.var_names[0]] + list(counts.var_names[:-1])  # one symbol twice, as 10x has
    _write_10x(tmp_path / "filtered_feature_bc_matrix", counts)
    _write_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5", counts)
    h5 = tmp_path / "filtered_feature_bc_matrix.h5"
    assert io.is_anndata_input(h5)
    a, b = io.read_anndata(h5), io.read_anndata(tmp_path / "filtered_feature_bc_matrix")
    assert np.array_equal(a.X.toarray(), np.asarray(counts.X)) and np.array_equal(a.X.toarray(), b.X.toarray())
    assert list(a.var_names) == list(b.var_names) and a.var_names.is_unique  # symbols, made unique
    assert list(a.obs_names) == list(counts.obs_names) and a.var["gene_ids"].iloc[3] == "ENSG00000000003"
    assert cli.main(["run", str(h5), "--recipe", "cell_cycle", "--out", str(tmp_path / "r"), "-q"]) == 0
    assert _summary(tmp_path / "r")["verdict"]["level"] == "loop"
    counts.write_h5ad(tmp_path / "saved_as.h5")  # an .h5ad under .h5 is read as what it is
    assert np.array_equal(np.asarray(io.read_anndata(tmp_path / "saved_as.h5").X), np.asarray(counts.X))
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match=r"could not be read as a 10x Genomics \.h5 matrix.*Cell Ranger"):
        io.read_anndata(tmp_path / "broken.h5")


@pytest.mark.filterwarnings("ignore:Writing zarr v2")  # anndata's note on its own default format
def test_an_anndata_zarr_store_reads_as_its_h5ad(tmp_path):
    pytest.importorskip("zarr", reason="zarr is not installed (anndata before 0.12 does not require it)")
    import anndata

    X = datasets.make("circle", n=200, d=10, sigma=0.1, seed=0).X
    a = anndata.AnnData(X=np.zeros((200, 3), np.float32), obsm={"X_pca": X})
    a.obs["sample"] = ["a", "b"] * 100
    a.write_h5ad(tmp_path / "cells.h5ad")
    a.write_zarr(tmp_path / "cells.zarr")
    assert io.is_anndata_input(tmp_path / "cells.zarr") and (tmp_path / "cells.zarr").is_dir()
    Y, meta = io.load_points(tmp_path / "cells.zarr", use_rep="X_pca")
    Z, _ = io.load_points(tmp_path / "cells.h5ad", use_rep="X_pca")
    assert np.array_equal(Y, Z) and meta["kind"] == "anndata"
    assert list(io.read_obs(tmp_path / "cells.zarr")["sample"][:2]) == ["a", "b"]
    assert io.count_points(tmp_path / "cells.zarr") == 200


def test_counts_in_a_layer_run_with_one_command(tmp_path):
    a = datasets.demo_adata(n_cells=400)
    a.layers["counts"] = a.X.copy()
    a.X = np.log1p(a.X / a.X.sum(1, keepdims=True) * 1e4)  # what scanpy users keep in X
    a.write_h5ad(tmp_path / "cells.h5ad")
    assert cli.main(["run", str(tmp_path / "cells.h5ad"), "--recipe", "cell_cycle", "--layer", "counts",
                     "--out", str(tmp_path / "r"), "-q"]) == 0
    assert _summary(tmp_path / "r")["verdict"]["level"] == "loop"
    # X is log-normalised: the recipe on X refuses and says to pass the layer
    assert cli.main(["run", str(tmp_path / "cells.h5ad"), "--recipe", "cell_cycle", "--out",
                     str(tmp_path / "x"), "-q"]) == 2
    assert cli.main(["run", str(tmp_path / "cells.h5ad"), "--layer", "counts", "--out", str(tmp_path / "y"),
                     "-q"]) == 2  # a layer without the recipe: refused with the fix



def test_integer_pixels_are_refused_as_counts_until_use_rep_x_names_them(tmp_path, capsys, caplog):
    # COIL-20-like images: 0-255 grey levels over 1,024 pixels look like counts; --use-rep X says
    # "analyse X as it is" (before, nothing could)
    import anndata

    X = np.round(np.clip(datasets.make("circle", n=150, d=120, sigma=0.05, seed=0).X * 60 + 120, 0, 255))
    anndata.AnnData(X=X.astype(np.float32)).write_h5ad(tmp_path / "images.h5ad")
    assert cli.main(["run", str(tmp_path / "images.h5ad"), "--out", str(tmp_path / "no"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "looks like raw counts" in err and "--use-rep X analyses it as it is" in err
    assert not (tmp_path / "no").exists()
    with caplog.at_level("WARNING"):
        assert cli.main(["run", str(tmp_path / "images.h5ad"), "--use-rep", "X", "--k", "20", "--out",
                         str(tmp_path / "yes"), "-q"]) == 0
    assert caplog.text.count("analysed as it is, as --use-rep X asks") == 1  # once, though read twice
    assert any("analysed as it is" in w for w in _summary(tmp_path / "yes")["warnings"])  # the report's reader sees it
    # a stage, too: raw-looking X refused without --use-rep, analysed with it
    assert cli.main(["graph", str(tmp_path / "images.h5ad"), "--out", str(tmp_path / "g.npz")]) == 2
    assert cli.main(["graph", str(tmp_path / "images.h5ad"), "--use-rep", "X", "--out", str(tmp_path / "g.npz")]) == 0
    assert _summary(tmp_path / "yes")["verdict"]["level"] == "loop"


@pytest.mark.parametrize("decimal", [".", ","])
def test_an_excel_csv_with_semicolons_reads_its_numbers_exactly(tmp_path, decimal):
    # Excel under German or French settings writes "CSV" with ";" between fields and "1,5" for
    # 1.5; it was refused as "column 1 holds text"
    X = datasets.make("circle", n=60, d=4, sigma=0.1, seed=0).X
    names = [f"cell,{i}" for i in range(60)]  # a comma inside a name stays in it
    df = pd.DataFrame(X, index=names, columns=list("abcd"))
    df.to_csv(tmp_path / "excel.csv", sep=";", decimal=decimal)
    df.to_csv(tmp_path / "plain.csv")
    Y, meta = io.load_points(tmp_path / "excel.csv")
    Z, _ = io.load_points(tmp_path / "plain.csv")
    assert np.array_equal(Y, Z) and np.array_equal(Y, X)  # to_csv writes each float to its last bit
    assert meta["row_names"] == names
    pd.DataFrame(X).to_csv(tmp_path / "bare.csv", sep=";", decimal=decimal, header=False, index=False)
    assert np.array_equal(io.load_points(tmp_path / "bare.csv")[0], Y)
    pd.DataFrame(X).to_csv(tmp_path / "numbered.csv", sep=";", decimal=decimal)  # pandas' index 0, 1, ...: dropped
    Z, meta = io.load_points(tmp_path / "numbered.csv")
    assert np.array_equal(Z, X) and meta["row_names"][:2] == ["0", "1"]
    df.to_csv(tmp_path / "excel.tsv", sep="\t", decimal=decimal)  # Excel's tab-separated text, the same way
    assert np.array_equal(io.load_points(tmp_path / "excel.tsv")[0], X)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "latin-1"])
def test_a_table_in_excel_s_encodings_reads_with_its_names_intact(tmp_path, encoding):
    # Excel's "CSV UTF-8" starts with a byte-order mark, which became part of the first name
    # ("\ufeffMCM5": a gene the recipe would not find); its "Unicode Text" is UTF-16 and was
    # refused as "rows of different lengths"; its Windows "CSV" is Latin-1
    X = datasets.make("circle", n=40, d=3, sigma=0.1, seed=1).X
    df = pd.DataFrame(X, index=[f"cell_é{i}" for i in range(40)], columns=["MCM5", "PCNA", "µ3"])
    for name, index in (("named.csv", True), ("bare.csv", False), ("named.tsv.gz", True)):
        df.to_csv(tmp_path / name, sep="\t" if ".tsv" in name else ",", index=index, encoding=encoding)
        Y, rows, cols = tables.read_table(tmp_path / name)
        assert np.array_equal(Y, X) and cols == list(df.columns)
        assert rows == (list(df.index) if index else None)


def test_a_separator_ending_every_line_makes_no_empty_column(tmp_path):
    # "1\t2\t3\t": the empty last column was read as missing values, and every row refused
    X = datasets.make("circle", n=30, d=3, sigma=0.1, seed=2).X
    lines = ["\t".join(repr(float(v)) for v in x) for x in X]
    for header, end in (("a\tb\tc\t", "\t"), ("a\tb\tc\t", ""), ("a\tb\tc", "\t"), (None, "\t")):
        path = tmp_path / "trailing.tsv"
        path.write_text("\n".join(([header] if header else []) + [line + end for line in lines]) + "\n")
        Y, rows, cols = tables.read_table(path)
        assert np.array_equal(Y, X) and rows is None and cols == (list("abc") if header else None)
    path.write_text("a,b,c,d\n" + "\n".join(line.replace("\t", ",") + ",NA" for line in lines) + "\n")
    Y, _, cols = tables.read_table(path.rename(tmp_path / "named_na.csv"))  # a named column of missing values is kept
    assert cols == list("abcd") and np.array_equal(Y[:, :3], X) and np.isnan(Y[:, 3]).all()


def _counts_table(tmp_path, n_cells=400):
    counts = datasets.demo_adata(n_cells=n_cells)
    table = pd.DataFrame(np.asarray(counts.X.toarray() if sp.issparse(counts.X) else counts.X, dtype=np.int64),
                         index=counts.obs_names, columns=counts.var_names)
    table.to_csv(tmp_path / "cells_by_genes.csv")
    table.T.to_csv(tmp_path / "genes_by_cells.csv.gz", compression="gzip")
    return table


def test_a_gene_by_cell_table_is_refused_until_transpose_names_it(tmp_path, capsys):
    # GEO's count tables have a gene per row: read as they are, the genes were the points
    table = _counts_table(tmp_path, n_cells=120)
    with pytest.raises(InputError, match=r"rows look like genes \(MCM5, PCNA.*--transpose to read its 120 columns"):
        io.load_points(tmp_path / "genes_by_cells.csv.gz")
    Y, meta = io.load_points(tmp_path / "genes_by_cells.csv.gz", transpose=True)
    assert np.array_equal(Y, table.to_numpy()) and meta["row_names"] == list(table.index)
    assert io.count_points(tmp_path / "genes_by_cells.csv.gz", transpose=True) == 120
    assert io.load_points(tmp_path / "genes_by_cells.csv.gz", transpose=False)[0].shape == (table.shape[1], 120)
    assert io.load_points(tmp_path / "cells_by_genes.csv")[0].shape == (120, table.shape[1])  # genes in the header: fine
    assert cli.main(["run", str(tmp_path / "genes_by_cells.csv.gz"), "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "--transpose" in capsys.readouterr().err and not (tmp_path / "r").exists()
    ensembl = pd.DataFrame(np.ones((30, 5)), index=[f"ENSG{i:011d}.2" for i in range(30)])  # Ensembl ids count too
    ensembl.to_csv(tmp_path / "ensembl.csv")
    with pytest.raises(InputError, match="ENSG00000000000.2"):
        io.load_points(tmp_path / "ensembl.csv")


def test_a_count_table_runs_with_the_recipe_either_way_round(tmp_path, caplog, capsys):
    table = _counts_table(tmp_path)
    a = io.read_table_anndata(tmp_path / "genes_by_cells.csv.gz", transpose=True)
    assert list(a.var_names) == list(table.columns) and list(a.obs_names) == list(table.index)
    assert np.array_equal(np.asarray(a.X), table.to_numpy(dtype=np.float32))
    for name, extra in (("cells_by_genes.csv", []), ("genes_by_cells.csv.gz", ["--transpose"])):
        out = tmp_path / name.split(".")[0]
        assert cli.main(["run", str(tmp_path / name), "--recipe", "cell_cycle", *extra, "--out", str(out), "-q"]) == 0
        assert "  phase         loop 1: oriented by the S and G2/M scores, θ = 0 at G1/S" in capsys.readouterr().out
    one, other = _summary(tmp_path / "cells_by_genes"), _summary(tmp_path / "genes_by_cells")
    assert one["verdict"]["level"] == "loop" and one["diagrams"] == other["diagrams"]
    assert "phase_orientation" in one["loops"][0]  # the recipe's S and G2/M scores turned the phase
    page = (tmp_path / "cells_by_genes" / "report.html").read_text()
    assert "loop 1: S and G2/M scores along the phase" in page  # and the report draws them along θ
    o = one["loops"][0]["phase_orientation"]  # and says where they peak
    assert f"S peaks at {np.degrees(o['theta_S']):.0f}° and G2/M at {np.degrees(o['theta_G2M']):.0f}°" in page
    assert f"correlate at |ρ| = {o['score_angle_corr']:.2f}" in page and o["score_angle_corr"] > 0.5
    assert pd.read_csv(tmp_path / "genes_by_cells" / "cells.csv")["id"].tolist() == list(table.index)
    with caplog.at_level("WARNING", logger="topoembed"):  # without the recipe: analysed as it is, with the way to it
        assert cli.main(["run", str(tmp_path / "cells_by_genes.csv"), "--k", "30", "--out", str(tmp_path / "raw"), "-q"]) == 0
    assert "looks like raw counts" in caplog.text and "--recipe cell_cycle" in caplog.text
    assert "scores along the phase" not in (tmp_path / "raw" / "report.html").read_text()  # no scores, no figure
    pd.DataFrame(table.to_numpy()).to_csv(tmp_path / "nameless.csv", header=False, index=False)
    with pytest.raises(InputError, match="needs the genes' names"):
        io.read_table_anndata(tmp_path / "nameless.csv")
    np.save(tmp_path / "counts.npy", table.to_numpy())
    for source, said in ((tmp_path / "counts.npy", "has no gene names"), ("synthetic:circle?n=100", "points already")):
        assert cli.main(["run", str(source), "--recipe", "cell_cycle", "--out", str(tmp_path / "no"), "-q"]) == 2
        assert said in capsys.readouterr().err and not (tmp_path / "no").exists()


def test_a_count_table_of_ensembl_ids_is_told_how_to_give_symbols(tmp_path, capsys):
    # a table's header is its only gene names: the message offered gene_symbols='COLUMN' (Python's
    # spelling), and --gene-symbols then failed with "columns: none"
    import anndata

    import topoembed as te

    table = _counts_table(tmp_path, n_cells=120)
    table.columns = [f"ENSG{i:011d}" for i in range(table.shape[1])]
    table.to_csv(tmp_path / "ensembl.csv")
    for extra in ([], ["--gene-symbols", "hgnc"]):
        assert cli.main(["run", str(tmp_path / "ensembl.csv"), "--recipe", "cell_cycle", *extra,
                         "--out", str(tmp_path / "r"), "-q"]) == 2
        err = capsys.readouterr().err
        assert "header row is its only gene names" in err and "gene_symbols=" not in err, err
        assert not (tmp_path / "r").exists()
    a = anndata.AnnData(table.to_numpy(dtype=np.float32))
    a.var_names = list(table.columns)
    with pytest.raises(InputError, match="set adata.var_names to the symbols"):
        te.pp.recipe_cell_cycle(a)
    a.var["symbol"] = [f"G{i}" for i in range(a.n_vars)]  # a column, but not symbols of these lists
    with pytest.raises(InputError, match="gene_symbols='COLUMN'"):
        te.pp.recipe_cell_cycle(a)


def test_an_anndata_of_genes_by_cells_gets_the_way_round(tmp_path, caplog):
    # sc.read_csv reads GEO's gene x cell table with the genes as obs: the recipe found no gene
    # and said to check the organism; te.tl.run analysed the genes as cells
    import scanpy as sc

    import topoembed as te

    table = _counts_table(tmp_path, n_cells=300)
    table.T.to_csv(tmp_path / "geo.csv")
    wrong = sc.read_csv(tmp_path / "geo.csv")
    assert list(wrong.obs_names[:2]) == list(table.columns[:2])  # the genes, as obs
    with pytest.raises(InputError, match=r"genes x cells: its obs_names are genes \(MCM5, PCNA.*pass adata.T"):
        te.pp.recipe_cell_cycle(wrong)
    with pytest.raises(InputError, match=r"pass adata.T.*Then: adata.X looks like raw counts"):
        te.tl.run(wrong)
    right = wrong.T.copy()
    te.pp.recipe_cell_cycle(right)
    caplog.clear()
    with caplog.at_level("WARNING", logger="topoembed"):
        te.tl.run(right)
    assert right.uns["topoembed"]["verdict"]["level"] == "loop" and "genes x cells" not in caplog.text
    logged = sc.AnnData(np.asarray(wrong.X) / 10 + 0.5, obs=wrong.obs)  # not counts: analysed, with the warning
    with caplog.at_level("WARNING", logger="topoembed"):
        te.tl.run(logged, use_rep="X", n_loops=0, localize=False)
    assert "its obs_names are genes" in caplog.text


@pytest.mark.parametrize("writer", ["anndata", "velocyto"])
def test_a_loom_keeps_its_cell_and_gene_names_whoever_wrote_it(tmp_path, writer):
    # anndata's write_loom names them var_names/obs_names, loompy's and velocyto's Gene/CellID;
    # read_loom's defaults read only the second, so anndata's own loom lost both (genes 0, 1, 2, ...)
    pytest.importorskip("loompy", reason="loompy reads .loom files (pip install loompy)")
    import anndata

    a = anndata.AnnData(np.random.default_rng(0).poisson(1.0, size=(30, 5)).astype(np.float32))
    a.obs_names = [f"cell{i}" for i in range(30)]
    a.var_names = ["MKI67", "TOP2A", "PCNA", "CDK1", "CCNB1"]
    path = tmp_path / "cells.loom"
    if writer == "anndata":
        a.write_loom(path)
    else:
        import loompy

        loompy.create(str(path), a.X.T, {"Gene": np.asarray(a.var_names)}, {"CellID": np.asarray(a.obs_names)})
    b = io.read_anndata(path)
    assert list(b.var_names) == list(a.var_names) and list(b.obs_names) == list(a.obs_names)
    np.testing.assert_array_equal(np.asarray(b.X.todense() if sp.issparse(b.X) else b.X), a.X)
