"""What a scanpy user meets: scanpy's own graph, reruns under one key, logging, plots and
options by scanpy's names (each case failed or misled before 2026-12-07's audit)."""
import os
import subprocess
import sys
import textwrap

import anndata
import numpy as np
import pytest
import scanpy as sc
import scipy.io
import scipy.sparse as sp

import topoembed as te
from topoembed import datasets
from topoembed._validate import InputError
from topoembed.params import Params


@pytest.fixture
def circle_adata():
    ds = datasets.make("circle", n=250, d=10, sigma=0.05, seed=0)
    a = anndata.AnnData(X=ds.X.astype(np.float32))
    a.obsm["X_rep"] = ds.X
    a.obsm["X_other"] = np.random.default_rng(0).normal(size=(250, 5))
    return a


def test_scanpy_params_stored_as_a_one_element_array_are_read(circle_adata):
    # pbmc68k_reduced (an older scanpy) stores n_neighbors as array([10]): int() of it raised TypeError
    a = circle_adata
    sc.pp.neighbors(a, n_neighbors=31, use_rep="X_rep")
    a.uns["neighbors"]["params"]["n_neighbors"] = np.array([31])
    a.uns["neighbors"]["params"]["use_rep"] = np.array(["X_rep"])
    te.tl.run(a, neighbors_key="neighbors", prevalence_check=False)
    assert a.uns["topoembed"]["params"]["k"] == 30 == a.uns["topoembed"]["graph"]["k"]
    assert a.uns["topoembed"]["graph"]["use_rep"] == "X_rep"


def test_scanpy_graph_places_cells_in_its_own_representation(circle_adata, caplog):
    a = circle_adata
    sc.pp.neighbors(a, n_neighbors=31, use_rep="X_rep")
    te.tl.run(a, neighbors_key="neighbors", prevalence_check=False)
    assert a.uns["topoembed"]["params"]["use_rep"] == "X_rep"  # it analysed X (250 x 10) before
    assert te.tl.get_verdict(a)["n_loops"] == 1
    with caplog.at_level("WARNING"):
        te.tl.run(a, neighbors_key="neighbors", use_rep="X_other", k=15, prevalence_check=False, key_added="o")
    assert "scanpy's graph was built on 'X_rep'" in caplog.text
    assert "k=15 is not used" in caplog.text and a.uns["o"]["params"]["k"] == 30


def test_scanpy_weighted_graph_is_recorded_as_such_and_the_steps_run_on_it(circle_adata):
    a = circle_adata
    sc.pp.neighbors(a, n_neighbors=31, use_rep="X_rep")
    te.tl.run(a, neighbors_key="neighbors", binarize=False, prevalence_check=False)
    assert a.uns["topoembed"]["params"]["weights"] == "connectivities"
    te.pp.neighbors(a, neighbors_key="neighbors", binarize=False, key_added="w")
    te.tl.spectral_distances(a, key_added="w")
    te.tl.persistent_homology(a, key_added="w")
    te.tl.detect_loops(a, key_added="w", prevalence_check=False)  # "connectivities" is no Params weight
    assert "verdict" in a.uns["w"]


def test_a_rerun_under_the_same_key_leaves_nothing_of_the_run_before(circle_adata):
    a = circle_adata
    te.tl.run(a, use_rep="X_rep", distance="diffusion", prevalence_check=False)
    assert {"topoembed_graph", "topoembed_distances"} <= set(a.obsp)
    te.tl.run(a, use_rep="X_rep", n_subsamples=3, subsample_size=150, jobs=1)  # an ensemble keeps no all-cell graph
    assert not {"topoembed_graph", "topoembed_distances"} & set(a.obsp)  # te.tl.embed read the diffusion ones
    assert "topoembed_subsample" in a.obs and "subsample_index" in a.uns["topoembed"]
    with pytest.raises(InputError, match="analysed subsamples"):
        te.tl.embed(a, "sketchmap_sym", distance_key="topoembed")
    te.tl.run(a, use_rep="X_rep", prevalence_check=False)
    assert "topoembed_subsample" not in a.obs and "subsample_index" not in a.uns["topoembed"]
    assert a.uns["topoembed"]["distances"]["kind"] == "effective_resistance"


_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, anndata, scanpy as sc, topoembed as te
    sc.settings.verbosity = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 5)), rng.normal(size=(60, 5)) + 50])  # two components
    a = anndata.AnnData(X=X.astype(np.float32))
    te.tl.run(a, k=10, prevalence_check=False, jobs=1)
    print("stored", len(a.uns["topoembed"]["warnings"]))
""")


@pytest.mark.parametrize("verbosity, heard, details", [(1, True, False), (0, False, False), (2, True, False),
                                                       (3, True, True)])
def test_warnings_reach_a_user_who_set_up_no_logging_at_scanpy_verbosity(tmp_path, verbosity, heard, details):
    # a handler that collects warnings for uns[key]["warnings"] silenced Python's last resort;
    # topoembed's info lines (here its stages, logged off a terminal) are scanpy's hints
    script = tmp_path / "s.py"
    script.write_text(_SCRIPT)
    out = subprocess.run([sys.executable, str(script), str(verbosity)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert ("connected components" in out.stderr) is heard
    assert ("topoembed 1/5: graph" in out.stderr) is details
    assert int(out.stdout.split("stored")[1]) >= 1  # stored at any verbosity


def test_options_by_scanpy_names_are_refused_with_the_setting_meant(circle_adata):
    a = circle_adata
    for given, meant in (({"n_neighbors": 30}, "did you mean k"), ({"random_state": 0}, "did you mean seed"),
                         ({"distanse": "diffusion"}, "did you mean distance")):
        with pytest.raises(InputError, match=meant):
            te.tl.run(a, use_rep="X_rep", **given)
    with pytest.raises(InputError, match="jobs='two'"):
        te.tl.run(a, use_rep="X_rep", jobs="two")
    assert "topoembed" not in a.uns


@pytest.mark.parametrize("given, message", [({"seed": -1}, "seed=-1 must be an integer >= 0"),
                                            ({"metric": "foo"}, "metric='foo' is not one of")])
def test_a_seed_or_metric_that_would_fail_later_is_refused_first(given, message):
    with pytest.raises(InputError, match=message):
        Params(**given).validate(2000)


def test_a_missing_layer_is_named_before_it_is_read(circle_adata):
    with pytest.raises(InputError, match="layer 'nope' not found"):
        te.pp.recipe_cell_cycle(circle_adata, layer="nope")
    with pytest.raises(InputError, match="organism='rat'"):
        te.pp.recipe_cell_cycle(circle_adata, organism="rat")


def test_many_columns_without_a_pca_are_analysed_with_a_warning(caplog):
    a = anndata.AnnData(X=np.random.default_rng(0).normal(size=(120, 60)).astype(np.float32))
    with caplog.at_level("WARNING"):
        te.tl.run(a, prevalence_check=False)
    assert "no obsm['X_pca']: analysing adata.X's 60 columns" in caplog.text


def test_plots_take_a_category_and_refuse_what_they_cannot_draw(circle_adata, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    a = circle_adata
    te.tl.run(a, use_rep="X_rep", prevalence_check=False)
    a.obs["half"] = np.where(np.arange(a.n_obs) < 100, "first", "second")
    a.obs["half"] = a.obs["half"].astype("category")
    ax = te.pl.loop(a, color="half", show=False)  # matplotlib's ValueError before
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["first", "second"] and ax.get_legend().get_title().get_text() == "half"
    with pytest.raises(InputError, match="H0..H1 only"):
        te.pl.barcode(a, dims=(2,), show=False)
    with pytest.raises(InputError, match="scale='bogus'"):
        te.pl.diagram(a, scale="bogus", show=False)
    with pytest.raises(InputError, match=r"which=3 \(loop 4\)"):
        te.pl.loop(a, by="phase", which=3, show=False)
    # save=True as scanpy: savefig(True) raised before; now sc.settings.figdir, named after the plot
    old_dir, old_format = sc.settings.figdir, sc.settings.file_format_figs
    try:
        sc.settings.figdir, sc.settings.file_format_figs = tmp_path / "figs", "pdf"
        te.pl.diagram(a, save=True, show=False)
        te.pl.phase(a, keys=["0", "1"], save=True, show=False)
        te.pl.loop(a, save=True, show=False)
    finally:
        sc.settings.figdir, sc.settings.file_format_figs = old_dir, old_format
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "topoembed_diagram.pdf", "topoembed_loop.pdf", "topoembed_phase.pdf"]
    assert (tmp_path / "figs" / "topoembed_loop.pdf").read_bytes()[:4] == b"%PDF"
    te.pl.detection(a, save=str(tmp_path / "scores.png"), show=False)  # a name is a path, as before
    # show=None as scanpy's: shown and None where sc.settings.autoshow is on, the axes where it is off
    assert te.pl.barcode(a) is None
    sc.settings.autoshow = False
    try:
        assert te.pl.barcode(a) is not None
    finally:
        sc.settings.autoshow = True
    assert (tmp_path / "scores.png").stat().st_size > 1000


def test_embedding_topology_without_a_run_creates_nothing(circle_adata):
    a = circle_adata
    with pytest.raises(InputError, match="run te.tl.run"):
        te.tl.embedding_topology(a, "X_rep")
    assert "topoembed" not in a.uns


def test_a_10x_folder_unzipped_by_the_user_is_read(tmp_path):
    rng = np.random.default_rng(0)
    counts = sp.random(30, 8, density=0.5, random_state=0, format="csr", dtype=np.float32)
    counts.data = rng.integers(1, 9, counts.nnz).astype(np.float32)
    folder = tmp_path / "filtered_feature_bc_matrix"
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", counts.T.tocoo())  # genes x cells, as Cell Ranger writes it
    (folder / "features.tsv").write_text("".join(f"ENSG{i:011d}\tGENE{i}\tGene Expression\n" for i in range(8)))
    (folder / "barcodes.tsv").write_text("".join(f"CELL{i}-1\n" for i in range(30)))
    adata = te.io.read_anndata(folder)  # scanpy wants features.tsv.gz: "could not be read" before
    assert adata.shape == (30, 8) and adata.var_names[0] == "GENE0"
    np.testing.assert_array_equal(adata.X.toarray(), counts.toarray())


def test_a_subsample_runs_warnings_stay_in_its_record(tmp_path):
    # ten subsamples would repeat one warning ten times in a notebook; the run's own is heard
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import logging
        import topoembed
        from topoembed._progress import inner_run
        log = logging.getLogger("topoembed.ensemble")
        log.warning("said by the run")
        with inner_run():
            log.warning("said by a subsample")
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "said by the run" in out.stderr and "said by a subsample" not in out.stderr


def test_a_subsample_size_that_makes_no_subsamples_is_said(circle_adata):
    # subsample_size=500 on 250 cells (one run on all of them) did nothing without a word
    te.tl.run(circle_adata, subsample_size=500, prevalence_check=False)
    said = circle_adata.uns["topoembed"]["warnings"]
    assert any(w.startswith("subsample_size=500 sets the size of an ensemble's subsamples, and these 250 points make "
                            "none") for w in said)
    te.tl.run(circle_adata, subsample_size=500, n_subsamples=2, prevalence_check=False)  # an ensemble: it acts
    assert not any("subsample_size" in w for w in circle_adata.uns["topoembed"]["warnings"])
    te.tl.run(circle_adata, prevalence_check=False)
    assert not any("subsample" in w for w in circle_adata.uns["topoembed"]["warnings"])


def test_copy_of_a_backed_anndata_is_refused_with_the_ways_on(circle_adata, tmp_path):
    # anndata's own ValueError spoke of copy(filename=...), which te.tl.run does not take
    circle_adata.write_h5ad(tmp_path / "c.h5ad")
    backed = anndata.read_h5ad(tmp_path / "c.h5ad", backed="r")
    for step in (lambda a: te.tl.run(a, copy=True), lambda a: te.pp.neighbors(a, copy=True)):
        with pytest.raises(InputError, match=r"adata.to_memory\(\), or leave copy out"):
            step(backed)
    out = te.tl.run(backed.to_memory(), copy=True, prevalence_check=False)
    assert out.uns["topoembed"]["verdict"]["n_loops"] == 1


def test_a_graph_that_falls_apart_is_said_once_by_the_staged_steps_and_by_a_run_on_scanpys_graph(caplog):
    # te.pp.neighbors, te.tl.spectral_distances and te.tl.detect_loops each warned, in two
    # wordings; te.tl.run(neighbors_key=...) said it as the graph was read and again in its run
    two = np.vstack([datasets.make("circle", n=300, d=10, sigma=0.05, seed=0).X,
                     datasets.make("circle", n=60, d=10, sigma=0.05, seed=1).X + 50])
    a = anndata.AnnData(two.astype(np.float32))
    said = "the kNN graph has 2 connected components (sizes [300, 60])"
    with caplog.at_level("WARNING", logger="topoembed"):
        te.pp.neighbors(a)
        te.tl.spectral_distances(a)
        te.tl.persistent_homology(a)
        te.tl.detect_loops(a, prevalence_check=False)
    assert caplog.text.count(said) == 1 and "the 60 points outside the largest one" in caplog.text
    assert te.tl.get_verdict(a)["n_loops"] == 1
    caplog.clear()
    sc.pp.neighbors(a, n_neighbors=31, use_rep="X")
    with caplog.at_level("WARNING", logger="topoembed"):
        te.tl.run(a, neighbors_key="neighbors", prevalence_check=False)
    assert caplog.text.count(said) == 1
    assert sum(w.startswith(said) for w in a.uns["topoembed"]["warnings"]) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="topoembed"):  # its own graph: said by the run, still once
        te.tl.run(a, k=30, prevalence_check=False)
    assert caplog.text.count(said) == 1 and sum(w.startswith(said) for w in a.uns["topoembed"]["warnings"]) == 1


def test_a_subsample_above_the_ensembles_threshold_is_said_to_be_one_unchecked_run():
    # the GUIDE's --subsample 2000 called no loop on the IPC cells for 2 of 4 seeds, silently
    from topoembed import analysis
    from topoembed._validate import INTERFACE, option

    said = analysis._ignored_sizes(Params(subsample=1200), 1300, None, None)
    assert len(said) == 1 and said[0].startswith("subsample=1200 makes one run of more than 1,000 points, which gets "
                                                 "no prevalence check") and "Leave subsample out" in said[0]
    assert analysis._ignored_sizes(Params(subsample=1000), 1300, None, None) == []
    assert option("jobs") == "jobs" and option("jobs", 2) == "jobs=2"
    INTERFACE["name"] = "cli"
    try:
        cli_said = analysis._ignored_sizes(Params(subsample=1200), 1300, None, None)[0]
        assert option("jobs") == "--jobs"
    finally:
        INTERFACE["name"] = "python"
    assert "--subsample 1200 makes one run" in cli_said and "Leave --subsample out" in cli_said


def test_the_phase_plot_after_a_run_without_a_loop_says_so():
    # it said "run te.tl.run(adata) first" right after te.tl.run (FUCCI through the GUIDE's snippet)
    a = anndata.AnnData(datasets.make("blob", n=300, d=10, sigma=0.2, seed=0).X.astype(np.float32))
    te.tl.run(a, k=30)
    assert te.tl.get_verdict(a)["n_loops"] == 0
    with pytest.raises(InputError, match=r"found no loop \(No loop\), so no cell has a phase") as err:
        te.pl.phase(a, keys=["0"], show=False)
    assert "first" not in str(err.value)


def test_counts_refused_are_not_first_said_to_be_analysed(caplog):
    # a gene x cell table read by sc.read_csv: two warnings said the 101 genes were analysed as
    # cells over their 888 columns, then the run refused the counts
    rng = np.random.default_rng(0)
    genes = list(te.pp.cell_cycle_genes("human"))
    a = anndata.AnnData(rng.poisson(2.0, size=(len(genes), 300)).astype(np.float32))
    a.obs_names = genes
    with caplog.at_level("WARNING", logger="topoembed"), pytest.raises(InputError, match="pass adata.T") as err:
        te.tl.run(a)
    assert "looks like raw counts" in str(err.value) and caplog.text == ""
