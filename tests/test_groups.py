"""te.tl.run(adata, groupby=...): one run per group, each equal to the run on its cells alone."""
import json

import anndata
import matplotlib
import numpy as np
import pandas as pd
import pytest

import topoembed as te
from topoembed import datasets
from topoembed._validate import InputError

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def two_samples():
    """A ring (200 cells) and a blob (150 cells) in R^10, interleaved, the blob's category first."""
    rng = np.random.default_rng(0)
    ring = datasets.make("circle", n=200, d=10, sigma=0.05, seed=0).X
    blob = rng.normal(size=(150, 10)) * 0.3
    X = np.vstack([ring, blob])
    order = rng.permutation(len(X))
    sample = np.array(["ring"] * len(ring) + ["blob"] * len(blob))[order]
    a = anndata.AnnData(X=X[order].astype(np.float32))
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    a.obs["sample"] = pd.Categorical(sample, categories=["blob", "ring"])
    a.obsm["X_rep"] = X[order]
    return a


@pytest.fixture(scope="module")
def grouped(two_samples):
    a = two_samples.copy()
    a.obs["topoembed_phase_2"] = 1.0  # an earlier run's column: must not survive
    te.tl.run(a, groupby="sample", use_rep="X_rep", jobs=1, progress=False)
    return a


def _alone(a, name):
    sub = anndata.AnnData(X=a.X[a.obs["sample"].to_numpy() == name].copy())
    sub.obsm["X_rep"] = a.obsm["X_rep"][a.obs["sample"].to_numpy() == name]
    te.tl.run(sub, use_rep="X_rep", jobs=1, progress=False)
    return sub


def test_each_group_gets_the_run_of_its_cells_alone(grouped):
    a = grouped
    table = te.tl.get_group_verdicts(a)
    assert list(table.index) == ["blob", "ring"] and table.index.name == "sample"  # the categorical's order
    assert table.loc["ring", "verdict"] == "1 loop" and table.loc["blob", "verdict"] == "No loop"
    assert table["n_cells"].tolist() == [150, 200]
    for name in ("ring", "blob"):
        alone = _alone(a, name)
        cells = a.obs["sample"].to_numpy() == name
        assert te.tl.get_verdict(a, group=name) == te.tl.get_verdict(alone)
        for col in ("phase", "phase_confidence", "loop_distance", "on_loop", "phase_missing"):
            np.testing.assert_array_equal(a.obs[f"topoembed_{col}"].to_numpy()[cells],
                                          alone.obs[f"topoembed_{col}"].to_numpy(), err_msg=f"{name}: {col}")
        got, want = te.tl.get_loops(a, group=name), te.tl.get_loops(alone)
        assert len(got) == len(want) and all(np.array_equal(g["cycle"], w["cycle"]) for g, w in zip(got, want))
    # the ring's phase covers the circle; the blob has none, and says why
    ring = a.obs["sample"].to_numpy() == "ring"
    assert np.isfinite(a.obs["topoembed_phase"].to_numpy()[ring]).all()
    assert np.isnan(a.obs["topoembed_phase"].to_numpy()[~ring]).all()
    assert set(a.obs["topoembed_phase_missing"].astype(str)[~ring]) == {te.tl.NO_LOOP_REASON}
    assert "topoembed_phase_2" not in a.obs  # the earlier run's column is gone
    assert a.obs["topoembed_on_loop"].dtype == bool


def test_a_grouped_run_is_read_by_group_and_survives_h5ad(grouped, tmp_path):
    a = grouped
    with pytest.raises(InputError, match=r"made by group \(groupby='sample'\): pass group= one of \['blob', 'ring'\]"):
        te.tl.get_verdict(a)
    with pytest.raises(InputError, match="not a group of 'sample'"):
        te.tl.get_loops(a, group="disc")
    path = tmp_path / "grouped.h5ad"
    a.write_h5ad(path)
    b = anndata.read_h5ad(path)
    pd.testing.assert_frame_equal(te.tl.get_group_verdicts(b), te.tl.get_group_verdicts(a))
    assert te.tl.get_verdict(b, group="ring")["headline"] == "1 loop"
    # the plots of one group: its diagram, and its cells with its loop
    for plot in (te.pl.diagram, te.pl.barcode, te.pl.detection):
        assert plot(b, group="ring", show=False) is not None
    ax = te.pl.loop(b, group="ring", show=False)
    assert len(ax.collections[0].get_offsets()) == 200 and ax.get_title().endswith("1 loop")
    with pytest.raises(InputError, match="group="):
        te.pl.diagram(b, show=False)


def test_a_plain_run_after_a_grouped_one_replaces_it(two_samples):
    a = two_samples[two_samples.obs["sample"] == "ring"].copy()  # "blob" is an unused category: no group
    te.tl.run(a, groupby="sample", use_rep="X_rep", jobs=1, progress=False)
    assert te.tl.get_group_verdicts(a)["verdict"].to_dict() == {"ring": "1 loop"}
    te.tl.run(a, use_rep="X_rep", jobs=1, progress=False)
    assert "groups" not in a.uns["topoembed"] and te.tl.get_verdict(a)["headline"] == "1 loop"
    with pytest.raises(InputError, match="was not made by group"):
        te.tl.get_verdict(a, group="ring")
    with pytest.raises(InputError, match="no run by group"):
        te.tl.get_group_verdicts(a)


def test_groups_are_checked_before_any_runs(two_samples):
    a = two_samples.copy()
    with pytest.raises(InputError, match="not a column of adata.obs; its categorical columns are \\['sample'\\]"):
        te.tl.run(a, groupby="donor", use_rep="X_rep")
    a.obs["few"] = np.where(np.arange(a.n_obs) < 2, "tiny", "rest")
    with pytest.raises(InputError, match=r"'tiny' \(2 cells\)"):
        te.tl.run(a, groupby="few", use_rep="X_rep")
    a.obs["score"] = np.arange(a.n_obs) / 7.0  # numbers, not groups: 350 groups of one cell
    with pytest.raises(InputError, match=r"350 of its 350 groups cannot be analysed .*; and 345 more\. Leave them out"):
        te.tl.run(a, groupby="score", use_rep="X_rep")
    a.obs["gaps"] = pd.Series(np.where(np.arange(a.n_obs) < 5, None, "x"), index=a.obs_names, dtype=object)
    with pytest.raises(InputError, match="5 cells have no 'gaps'"):
        te.tl.run(a, groupby="gaps", use_rep="X_rep")
    assert "topoembed" not in a.uns and not any(c.startswith("topoembed_") for c in a.obs)


def test_the_command_line_writes_each_groups_outputs_in_its_folder(two_samples, tmp_path, capsys):
    from topoembed import cli

    path = tmp_path / "two.h5ad"
    two_samples.write_h5ad(path)
    out = tmp_path / "by_sample"
    assert cli.main(["run", str(path), "--groupby", "sample", "--use-rep", "X_rep", "--out", str(out), "-q"]) == 0
    said = capsys.readouterr().out
    assert "2 groups of 'sample'" in said and "-> ring/" in said
    table = pd.read_csv(out / "groups.tsv", sep="\t", index_col=0)
    assert table["verdict"].to_dict() == {"blob": "No loop", "ring": "1 loop"}
    assert sorted(p.name for p in out.iterdir()) == ["blob", "groups.tsv", "index.html", "result.h5ad", "ring"]
    index = (out / "index.html").read_text()
    assert "<a href='ring/report.html'>ring</a>" in index and index.count("<tr><td>") == 2
    # the ring's folder holds what `run` writes for the ring's cells alone
    ring = two_samples[two_samples.obs["sample"] == "ring"].copy()
    ring.write_h5ad(tmp_path / "ring.h5ad")
    assert cli.main(["run", str(tmp_path / "ring.h5ad"), "--use-rep", "X_rep", "--out", str(tmp_path / "alone"), "-q"]) == 0
    got, want = (json.loads((d / "summary.json").read_text()) for d in (out / "ring", tmp_path / "alone"))
    assert got["input"].endswith("two.h5ad (sample = ring)")
    for field in ("verdict", "detection", "loops", "n_points"):
        assert got[field] == want[field], field
    assert (out / "ring" / "cells.csv").read_text() == (tmp_path / "alone" / "cells.csv").read_text()
    b = anndata.read_h5ad(out / "result.h5ad")
    assert te.tl.get_group_verdicts(b)["verdict"].to_dict() == {"blob": "No loop", "ring": "1 loop"}
    # refused before any output: a column that is not there, a table input, an embedding
    for extra, message in ((["--groupby", "donor"], "not a column of adata.obs"),
                           (["--groupby", "sample", "--embed", "infonce"], "--embed and --from-runs go with one run")):
        assert cli.main(["run", str(path), "--use-rep", "X_rep", "--out", str(tmp_path / "no"), "-q", *extra]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "no").exists()
    np.savetxt(tmp_path / "points.csv", two_samples.obsm["X_rep"], delimiter=",")
    assert cli.main(["run", str(tmp_path / "points.csv"), "--groupby", "sample", "--out", str(tmp_path / "no")]) == 2
    assert "needs AnnData input" in capsys.readouterr().err


def test_group_folder_names_are_safe_and_unique():
    from topoembed.groups import folder_names

    got = folder_names(["H9", "a/b", "a b", "..", "groups.tsv"], reserved=("groups.tsv",))
    assert got == {"H9": "H9", "a/b": "a_b", "a b": "a_b_2", "..": "group", "groups.tsv": "group_groups.tsv"}
    # a name that is a folder name already keeps it, whatever comes before it
    assert folder_names(["d 1/x", "d_1_x"]) == {"d 1/x": "d_1_x_2", "d_1_x": "d_1_x"}


def test_with_cell_cycle_scores_every_groups_phase_starts_at_its_g1_s_boundary():
    """Two samples whose rings lie in different planes and run in opposite directions: scored
    like the cell cycle (S peaks at angle 1, G2/M at 2.5), both phases read angle - 0.25 (the
    G1/S boundary: 1 - 1.5/2), so one phase compares across the samples."""
    rng = np.random.default_rng(1)
    parts, truths = [], []
    for seed, direction in ((0, 1), (1, -1)):
        ds = datasets.make("circle", n=200, d=10, sigma=0.05, seed=seed)
        Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
        parts.append(ds.X @ Q + 5 * seed)
        truths.append((direction * ds.angle) % (2 * np.pi))
    truth = np.concatenate(truths)
    a = anndata.AnnData(X=np.vstack(parts).astype(np.float32))
    a.obs["sample"] = np.repeat(["a", "b"], 200)
    a.obs["topoembed_S_score"] = np.cos(truth - 1.0)
    a.obs["topoembed_G2M_score"] = np.cos(truth - 2.5)
    te.tl.run(a, groupby="sample", use_rep="X", jobs=1, progress=False)
    assert te.tl.get_group_verdicts(a)["verdict"].tolist() == ["1 loop", "1 loop"]
    for name in ("a", "b"):
        cells = a.obs["sample"].to_numpy() == name
        offset = np.exp(1j * (truth[cells] - a.obs["topoembed_phase"].to_numpy()[cells]))
        assert abs(offset.mean()) > 0.9, name  # the phase follows the angle, not reflected
        assert abs(np.angle(offset.mean()) - 0.25) < 0.3, name  # θ = 0 at the same place in both
        assert "phase_orientation" in te.tl.get_loops(a, group=name)[0]


def test_phases_are_turned_to_agree_across_groups_that_share_the_loop(tmp_path):
    """Samples a and b trace one ring of R^10 (each run alone picks its own origin and direction);
    sample c a ring in another plane. Aligned, a's and b's phases read the ring's angle with one
    origin and direction; c's cannot be predicted from a's map and keeps its own."""
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    angles, X = [], []
    for plane in (0, 0, 2):
        t = rng.uniform(0, 2 * np.pi, 200)
        ring = np.zeros((200, 10))
        ring[:, plane], ring[:, plane + 1] = np.cos(t), np.sin(t)
        X.append(ring @ Q + 0.05 * rng.normal(size=(200, 10)))
        angles.append(t)
    t = np.concatenate(angles)
    a = anndata.AnnData(X=np.vstack(X).astype(np.float32))
    a.obs["sample"] = np.repeat(["a", "b", "c"], 200)
    a.write_h5ad(tmp_path / "rings.h5ad")
    b = a.copy()
    te.tl.run(a, groupby="sample", use_rep="X", jobs=1, progress=False)
    te.tl.run(b, groupby="sample", use_rep="X", jobs=1, progress=False, align_phases=False)
    assert te.tl.get_group_verdicts(a)["verdict"].tolist() == ["1 loop"] * 3

    def reading(adata, name):  # (direction, origin) of the phase against the angle
        cells = adata.obs["sample"].to_numpy() == name
        th = adata.obs["topoembed_phase"].to_numpy()[cells]
        z = {s: np.mean(np.exp(1j * (th - s * t[cells]))) for s in (1, -1)}
        s = max(z, key=lambda k: abs(z[k]))
        assert abs(z[s]) > 0.9
        return s, np.angle(z[s])

    (sa, ca), (sb, cb) = reading(a, "a"), reading(a, "b")
    assert sa == sb and abs(np.angle(np.exp(1j * (ca - cb)))) < 0.3
    turned = a.uns["topoembed"]["phase_alignment"]
    assert set(turned) == {"b"} and turned["b"]["aligned_to"] == "a" and turned["b"]["agreement"] > 0.9
    assert te.tl.get_loops(a, group="b")[0]["phase_alignment"]["aligned_to"] == "a"
    # only turned: each group's reading is unchanged, and without alignment c and a keep their phases
    for name in ("a", "c"):
        cells = a.obs["sample"].to_numpy() == name
        np.testing.assert_array_equal(a.obs["topoembed_phase"][cells], b.obs["topoembed_phase"][cells])
    assert "phase_alignment" not in b.uns["topoembed"]
    # the command line turns them the same way, in result.h5ad and in each group's cells.csv and summary.json
    from topoembed import cli

    out = tmp_path / "cli"
    assert cli.main(["run", str(tmp_path / "rings.h5ad"), "--use-rep", "X", "--groupby", "sample", "--out", str(out),
                     "-q"]) == 0
    np.testing.assert_allclose(anndata.read_h5ad(out / "result.h5ad").obs["topoembed_phase"], a.obs["topoembed_phase"])
    cells = pd.read_csv(out / "b" / "cells.csv")
    np.testing.assert_allclose(cells["phase_1"], a.obs["topoembed_phase"][200:400], atol=1e-5)  # 6 digits
    assert json.loads((out / "b" / "summary.json").read_text())["loops"][0]["phase_alignment"]["aligned_to"] == "a"


def test_a_run_by_group_logs_each_groups_verdict_at_scanpys_info_verbosity(two_samples):
    import io

    import scanpy as sc

    before, stream = (sc.settings.verbosity, sc.settings.logfile), io.StringIO()
    try:
        sc.settings.logfile, sc.settings.verbosity = stream, 3
        te.tl.run(two_samples.copy(), groupby="sample", use_rep="X_rep", jobs=1, progress=False)
    finally:
        sc.settings.verbosity, sc.settings.logfile = before
    said = stream.getvalue()
    assert "running topoembed on 350 cells in 2 groups of 'sample'" in said
    assert "    blob, 150 cells (" in said and "    ring, 200 cells (" in said and "): 1 loop" in said
    assert "te.tl.get_group_verdicts(adata)" in said


def test_a_group_that_fails_leaves_adata_as_it_was(two_samples, monkeypatch):
    from topoembed import tl

    a = two_samples.copy()
    a.obs["topoembed_phase"] = 0.5  # an earlier run's
    real = tl.run_result

    def second_fails(sub, **kw):
        if sub.obs["sample"].iloc[0] == "ring":
            raise RuntimeError("a group failed")
        return real(sub, **kw)

    monkeypatch.setattr(tl, "run_result", second_fails)
    with pytest.raises(RuntimeError, match="a group failed"):
        te.tl.run(a, groupby="sample", use_rep="X_rep", jobs=1, progress=False)
    assert (a.obs["topoembed_phase"] == 0.5).all() and "topoembed" not in a.uns


def test_a_group_is_copied_with_only_what_its_run_reads_and_scanpys_graph_is_cut_to_it(two_samples, monkeypatch):
    """Counts, layers and other representations stay out of each group's copy; with
    ``neighbors_key`` each group gets scanpy's graph among its own cells, as
    ``adata[cells].copy()`` would (the run of the group alone is the oracle)."""
    import scanpy as sc

    from topoembed import tl

    a = two_samples.copy()
    a.layers["counts"] = np.ones(a.shape, dtype=np.float32)
    a.obsm["X_other"] = np.zeros((a.n_obs, 50))
    sc.pp.neighbors(a, n_neighbors=16, use_rep="X_rep")
    seen, run_result = [], tl.run_result

    def spy(sub, **kw):
        seen.append((dict(sub.layers), sorted(sub.obsm), sorted(sub.obsp), sorted(sub.uns)))
        return run_result(sub, **kw)

    monkeypatch.setattr(tl, "run_result", spy)
    te.tl.run(a, groupby="sample", use_rep="X_rep", neighbors_key="neighbors", jobs=1, progress=False)
    assert seen == [({}, ["X_rep"], ["connectivities", "distances"], ["neighbors"])] * 2
    for name in ("blob", "ring"):
        alone = a[a.obs["sample"].to_numpy() == name].copy()
        run_result(alone, use_rep="X_rep", neighbors_key="neighbors", jobs=1, progress=False)
        assert te.tl.get_verdict(a, group=name) == te.tl.get_verdict(alone)
        cells = a.obs["sample"].to_numpy() == name
        np.testing.assert_array_equal(a.obs["topoembed_phase"].to_numpy()[cells], alone.obs["topoembed_phase"].to_numpy())
