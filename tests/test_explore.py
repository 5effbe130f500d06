"""affectlab.explore: run outputs loader, map projection (PCA / UMAP cache), colourings, selection."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
from explore_fakes import make_dataset, make_fake_run
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from affectlab.data.synth.truth import CATEGORIES
from affectlab.engine.rundir import RunDir
from affectlab.explore import projection as pj
from affectlab.explore.projection import (
    MapProjection,
    compute_umap,
    ensure_umap_async,
    load_umap,
    nearest_neighbours,
    run_projection,
    umap_status,
)
from affectlab.explore.run_outputs import load_run_outputs
from affectlab.labels import entropy
from affectlab.pages.explore_colour import colour_options, colour_values, join_items
from affectlab.pages.explore_selection import group_rows, item_cards, selection_rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    ds = make_dataset(root, n=24)
    run = make_fake_run(root, ds)
    return root, ds, run


# -- run outputs ---------------------------------------------------------------------------

def test_load_run_outputs_list_columns(world):
    _, ds, run = world
    out = load_run_outputs(run)
    n = len(ds.items)
    assert out.n == n and out.embeddings.shape == (n, 6)
    assert out.class_names == list(CATEGORIES)  # from the dataset's meta.json
    for dist in (out.soft, out.pred, out.latent):
        assert dist.shape == (n, 7)
        np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    # one table per split, read back test first, then val, then train
    table = pd.concat([pd.read_parquet(RunDir(run).outputs_path(s)) for s in RunDir.SPLITS],
                      ignore_index=True)
    assert out.item_ids.tolist() == table["item_id"].tolist()
    assert list(dict.fromkeys(out.table["split"])) == ["test", "val", "train"]
    # the engine's int "pred" column (argmax) is skipped for the "probs" distribution
    np.testing.assert_allclose(out.pred[3], table["probs"][3])
    assert out.pred.argmax(1).tolist() == table["pred"].tolist()
    labels = ds.items.set_index("item_id").loc[out.item_ids, "label"].to_numpy()
    np.testing.assert_array_equal(out.labels, labels)
    assert out.uncertainty.shape == (n,) and out.dataset_path == ds.root


def test_runs_written_before_per_split_outputs_read_the_same(tmp_path, world):
    """A run of the earlier layout (one test table with every split's rows, one embeddings
    file) gives the same outputs, row for row, as the per-split layout."""
    _, ds, _ = world
    new = load_run_outputs(make_fake_run(tmp_path, ds, name="per-split", seed=4))
    old = load_run_outputs(make_fake_run(tmp_path, ds, name="legacy", seed=4, legacy=True))
    assert not RunDir(tmp_path / "runs" / "legacy").embeddings_path("test").exists()
    rows = pd.Index(old.item_ids).get_indexer(new.item_ids)
    assert (rows >= 0).all() and sorted(rows) == list(range(old.n))
    np.testing.assert_array_equal(new.embeddings, old.embeddings[rows])
    for field in ("soft", "pred", "latent", "uncertainty", "labels"):
        np.testing.assert_array_equal(getattr(new, field), getattr(old, field)[rows], field)
    assert new.splits == old.splits and new.class_names == old.class_names


def test_load_run_outputs_prefixed_columns_same_values(tmp_path, world):
    _, ds, _ = world
    a = load_run_outputs(make_fake_run(tmp_path, ds, name="lists", seed=5))
    b = load_run_outputs(make_fake_run(tmp_path, ds, name="cols", seed=5, prefixed=True))
    np.testing.assert_allclose(a.soft, b.soft)
    np.testing.assert_allclose(a.pred, b.pred)
    assert b.class_names == list(CATEGORIES)


def test_take_and_splits(world):
    _, ds, run = world
    out = load_run_outputs(run)
    assert out.splits == sorted(set(ds.items["split"]))
    rows = np.flatnonzero(out.table["split"] == "test")
    sub = out.take(rows)
    assert sub.n == len(rows) and set(sub.table["split"]) == {"test"}
    np.testing.assert_array_equal(sub.embeddings, out.embeddings[rows])
    np.testing.assert_array_equal(sub.pred, out.pred[rows])
    assert sub.item_ids.tolist() == out.item_ids[rows].tolist()


def test_class_names_from_model_json(tmp_path, world):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="named")
    (run / "config.yaml").write_text("model: mini_xception\n")  # no dataset to ask
    (run / "model.json").write_text(json.dumps({"class_names": list("abcdefg")}))
    assert load_run_outputs(run).class_names == list("abcdefg")
    (run / "model.json").unlink()
    assert load_run_outputs(run).class_names == [f"c{i}" for i in range(7)]


def test_load_run_outputs_tolerates_missing_columns(tmp_path):
    run = tmp_path / "bare"
    (run / "outputs").mkdir(parents=True)
    pd.DataFrame({"item_id": [1, 2, 3]}).to_parquet(run / "outputs" / "test.parquet")
    out = load_run_outputs(run)
    assert out.soft is None and out.pred is None and out.latent is None
    assert out.uncertainty is None and out.labels is None and out.embeddings is None
    assert list(out.item_ids) == ["1", "2", "3"]
    assert colour_options(out) == []


def test_load_run_outputs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="test.parquet"):
        load_run_outputs(tmp_path)
    (tmp_path / "outputs").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "outputs" / "test.parquet")
    with pytest.raises(ValueError, match="item_id"):
        load_run_outputs(tmp_path)
    pd.DataFrame({"item_id": ["a", "b"]}).to_parquet(tmp_path / "outputs" / "test.parquet")
    np.save(tmp_path / "outputs" / "embeddings.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"expected shape \(2, D\)"):
        load_run_outputs(tmp_path)
    np.save(RunDir(tmp_path).embeddings_path("test"), np.zeros((1, 4)))  # per split wins
    with pytest.raises(ValueError, match=r"test.embeddings.npy: expected shape \(2, D\)"):
        load_run_outputs(tmp_path)


def test_run_listing_with_outputs(world, tmp_path):
    root, ds, run = world
    runs = RunDir.list(root / "runs", has_outputs=True)
    assert runs == [RunDir(run)]
    summary = runs[0].summary()
    assert summary.has_embeddings and summary.modality == "face" and summary.method == "ce"
    assert summary.status == "queued" and not summary.has_weights  # no events, no checkpoint
    bare = RunDir(tmp_path / "runs" / "bare")  # a config only: a run, but no outputs
    bare.path.mkdir(parents=True)
    bare.config_path.write_text("model: resnet18\n")
    make_fake_run(tmp_path, ds, name="done")
    assert [r.name for r in RunDir.list(tmp_path / "runs", has_outputs=False)] == ["bare"]
    assert [r.name for r in RunDir.list(tmp_path / "runs", has_outputs=True)] == ["done"]
    assert {r.name for r in RunDir.list(tmp_path / "runs", status="queued")} == {"bare", "done"}
    assert RunDir.list(tmp_path / "runs", status=("finished", "failed")) == []
    with pytest.raises(ValueError, match="status"):
        RunDir.list(tmp_path / "runs", status="done")


# -- projection ----------------------------------------------------------------------------

def test_pca_layout_shape_and_agreement_with_sklearn(rng):
    x = rng.normal(size=(40, 9)) * np.arange(1, 10)
    proj = MapProjection().fit(x)
    xy = proj.transform(x)
    assert xy.shape == (40, 2)
    np.testing.assert_allclose(xy, PCA(2, random_state=0).fit(x).transform(x), atol=1e-9)
    # variance along the first axis is the largest
    assert xy[:, 0].var() >= xy[:, 1].var()


def test_placement_of_new_point_equals_fitted_transform(rng, tmp_path):
    x = rng.normal(size=(30, 5))
    new = rng.normal(size=(4, 5))
    proj = MapProjection().fit(x)
    sk = PCA(2, random_state=0).fit(x)
    np.testing.assert_allclose(proj.transform(new), sk.transform(new), atol=1e-9)
    np.testing.assert_allclose(proj.transform(new[0]), sk.transform(new[:1])[0], atol=1e-9)
    proj.save(tmp_path / "p.npz")
    back = MapProjection.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.transform(new), proj.transform(new))
    assert back.fingerprint_ == proj.fingerprint_


def test_projection_validates():
    with pytest.raises(RuntimeError, match="not fitted"):
        MapProjection().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        MapProjection().fit(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="finite"):
        MapProjection().fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    proj = MapProjection().fit(np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(ValueError, match="3 columns"):
        proj.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        MapProjection().fit(np.zeros(4))


def test_one_dimensional_embeddings_get_a_zero_second_axis():
    x = np.arange(6.0)[:, None]
    xy = MapProjection().fit_transform(x)
    assert xy.shape == (6, 2) and np.all(xy[:, 1] == 0)


def test_run_projection_is_persisted_and_reused(tmp_path, world, monkeypatch):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="pca", legacy=True)
    first = run_projection(run)
    assert RunDir(run).cache_path(RunDir.PCA).is_file()
    monkeypatch.setattr(MapProjection, "fit", lambda *a: pytest.fail("refitted a cached PCA"))
    second = run_projection(run)
    np.testing.assert_array_equal(first.components_, second.components_)
    monkeypatch.undo()
    # new embeddings (a retrained run): the stale cache is replaced
    np.save(run / "outputs" / RunDir.LEGACY_EMBEDDINGS,
            np.random.default_rng(9).normal(size=(24, 6)))
    third = run_projection(run)
    assert not np.allclose(third.components_, first.components_)


def test_umap_cache_logic_small_run(tmp_path, world, monkeypatch):
    """Fewer than 4 items take the PCA path: the cache logic is tested without numba."""
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="small", legacy=True)
    emb_file = RunDir(run).outputs_dir / RunDir.LEGACY_EMBEDDINGS
    np.save(emb_file, np.arange(9.0).reshape(3, 3) ** 2)
    assert umap_status(run) == "missing" and load_umap(run) is None
    layout = compute_umap(run)
    assert layout.shape == (3, 2) and umap_status(run) == "ready"
    np.testing.assert_array_equal(load_umap(run), layout)
    meta = json.loads(RunDir(run).cache_path(RunDir.UMAP_META).read_text())
    assert meta["fingerprint"] == pj.embeddings_fingerprint(np.load(emb_file))
    assert ensure_umap_async(run) == "ready"  # nothing started for a cached layout
    np.save(emb_file, np.ones((3, 3)))
    assert load_umap(run) is None and umap_status(run) == "missing"  # stale


def test_umap_status_reads_lock_and_error(tmp_path, world):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="status")
    lock = run / "outputs" / pj.UMAP_LOCK
    lock.write_text(str(os.getpid()))
    assert umap_status(run) == "running"
    assert ensure_umap_async(run) == "running"  # no second worker
    lock.write_text("999999999")  # no such process
    assert umap_status(run) == "missing"
    (run / "outputs" / pj.UMAP_ERROR).write_text("boom")
    assert umap_status(run) == "failed"


@pytest.mark.slow
def test_umap_layout_written_and_reused(tmp_path, world, monkeypatch):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="umap")
    layout = compute_umap(run)
    assert layout.shape == (24, 2) and np.isfinite(layout).all()
    assert (run / "outputs" / "umap.npy").is_file()
    import umap

    monkeypatch.setattr(umap, "UMAP", lambda **kw: pytest.fail("recomputed a cached layout"))
    np.testing.assert_array_equal(compute_umap(run), layout)
    # the two planted groups stay apart on the map
    emb = RunDir(run).read_embeddings()
    group = emb[:, 0] > 2.5
    gap = np.linalg.norm(layout[group].mean(0) - layout[~group].mean(0))
    assert gap > layout[group].std(0).mean()


@pytest.mark.slow
def test_ensure_umap_async_runs_a_worker_process(tmp_path, world):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="async")
    assert ensure_umap_async(run) == "running"
    deadline = time.time() + 300
    while umap_status(run) == "running" and time.time() < deadline:
        time.sleep(1)
    assert umap_status(run) == "ready", (run / "outputs" / pj.UMAP_ERROR).read_text() \
        if (run / "outputs" / pj.UMAP_ERROR).exists() else "timed out"
    assert load_umap(run).shape == (24, 2)


# -- neighbours ----------------------------------------------------------------------------

def test_nearest_neighbours_hand_example():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    idx, d = nearest_neighbours(x, 1, k=3)
    assert idx.tolist() == [0, 2, 3] and d.tolist() == [1.0, 2.0, 6.0]
    idx, _ = nearest_neighbours(x, 3, k=10)  # clipped to n − 1, self excluded
    assert idx.tolist() == [2, 1, 0]


def test_nearest_neighbours_agree_with_sklearn(rng):
    x = rng.normal(size=(50, 8))
    idx, d = nearest_neighbours(x, 7, k=5)
    nn = NearestNeighbors(n_neighbors=6).fit(x)
    dist, ref = nn.kneighbors(x[7:8])
    assert idx.tolist() == ref[0, 1:].tolist()
    np.testing.assert_allclose(d, dist[0, 1:])


def test_nearest_neighbours_validate():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="index must be"):
        nearest_neighbours(x, 3)
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(x, 0, k=0)
    with pytest.raises(ValueError, match="2-D"):
        nearest_neighbours(np.zeros(3), 0)


# -- colourings ----------------------------------------------------------------------------

def test_colour_options_and_values(world):
    _, ds, run = world
    out = load_run_outputs(run)
    items = ds.items.sample(frac=1.0, random_state=0)  # another order: joined by item_id
    opts = colour_options(out, items)
    for o in ("soft label", "predicted", "uncertainty", "latent entropy", "true ambiguity",
              "true sub-class"):
        assert o in opts
    assert "true ambiguity" not in colour_options(out)  # no dataset, no truth
    soft = colour_values(out, "soft label")
    assert soft.categorical
    assert soft.values.tolist() == [CATEGORIES[i] for i in out.soft.argmax(1)]
    lat = colour_values(out, "latent entropy")
    np.testing.assert_allclose(lat.values, entropy(out.latent, normalize=True))
    in_run_order = ds.items.set_index("item_id").loc[out.item_ids]
    amb = colour_values(out, "true ambiguity", items)
    assert not amb.categorical
    np.testing.assert_allclose(amb.values, in_run_order["ambiguity"].to_numpy())
    true = colour_values(out, "true label", items)
    assert true.values.tolist() == [CATEGORIES[i] for i in in_run_order["true_label"]]
    with pytest.raises(ValueError, match="by must be one of"):
        colour_values(out, "astrology")


def test_subclass_colouring_names_each_items_class(world):
    _, _, run = world
    out = load_run_outputs(run)
    assert "sub-class" in colour_options(out)
    sub = colour_values(out, "sub-class")
    assert sub.categorical and len(sub.values) == out.n
    # every name starts with the item's own (dataset-label) class
    for name, label in zip(sub.values, out.labels, strict=True):
        assert name.split(" / ")[0] == CATEGORIES[label]


def test_subclass_medoids_are_each_subclass_items_nearest_its_centre(world):
    from affectlab.pages.explore_colour import subclass_labels, subclass_medoids

    _, _, run = world
    out = load_run_outputs(run)
    names = subclass_labels(out)
    groups = subclass_medoids(out, k=3)
    assert groups and all(1 <= len(rows) <= 3 for _, rows in groups)
    for name, rows in groups:
        members = np.flatnonzero(names == name)
        assert set(rows.tolist()) <= set(members.tolist())
        centre = out.embeddings[members].mean(axis=0)
        dist = np.linalg.norm(out.embeddings[members] - centre, axis=1)
        # the medoid is the member nearest the mixture component's mean, which is close to but
        # not exactly the members' mean: so it must at least be nearer than the median member
        d_medoid = np.linalg.norm(out.embeddings[rows[0]] - centre)
        assert d_medoid <= np.median(dist) * (1 + 1e-5) + 1e-6  # float32 embeddings


@pytest.mark.parametrize(("params", "per_class"), [
    ({}, 2),                                                   # no sub-class levels: 2
    ({"subclass_levels": 3}, 3),                               # the run's last level: 3
    ({"subclass_levels": 3, "subclass_components": 1}, 1),     # its fixed number
])
def test_subclass_colouring_follows_an_sgm_runs_last_level(world, params, per_class):
    import dataclasses

    from affectlab.pages.explore_colour import subclass_discovery

    _, _, run = world
    out = load_run_outputs(run)
    sgm = dataclasses.replace(out, config={**out.config, "method": "sgm", "method_params": params})
    disc = subclass_discovery(sgm).fit(sgm.embeddings, sgm.labels)
    sizes = np.bincount(sgm.labels)
    # per_class components a class (fewer only for a class with fewer items)
    assert [int((disc.subclass_class_ == c).sum()) for c in disc.classes_] == [
        min(per_class, int(sizes[c])) for c in disc.classes_]
    names = set(colour_values(sgm, "sub-class").values)
    assert names <= set(disc.names_) and max(int(n.split(" / ")[1]) for n in names) <= per_class


def test_join_items_follows_test_order(world):
    _, ds, run = world
    out = load_run_outputs(run)
    joined = join_items(out, ds.items.iloc[::-1])
    assert joined["item_id"].tolist() == out.item_ids.tolist()
    assert join_items(out, None) is None


# -- selection -----------------------------------------------------------------------------

def test_group_rows_and_selection_rows():
    values = np.array(["b", "a", "b", "c", "a"], dtype=object)
    traces = group_rows(values, categorical=True)
    assert [n for n, _ in traces] == ["a", "b", "c"]
    assert [r.tolist() for _, r in traces] == [[1, 4], [0, 2], [3]]
    rows = selection_rows([{"curve_number": 1, "point_index": 1},
                           {"curve_number": 0, "point_number": 0},
                           {"curve_number": 1, "point_index": 1},   # duplicate
                           {"curve_number": 7, "point_index": 0},   # stale trace
                           {"curve_number": 2, "point_index": 5}],  # stale index
                          [r for _, r in traces])
    assert rows.tolist() == [2, 1]
    assert selection_rows([{"curve_number": 0, "point_index": 0, "customdata": [4]}],
                          [np.array([0])]).tolist() == [4]
    assert [r.tolist() for _, r in group_rows(np.array([0.1, 0.5]), False)] == [[0, 1]]


def test_item_cards(world):
    _, ds, run = world
    out = load_run_outputs(run)
    cards = item_cards(out, [2, 0], ds.items, ds.root)
    assert [c.item_id for c in cards] == [out.item_ids[2], out.item_ids[0]]
    assert cards[0].media.is_file() and cards[0].media.suffix == ".png"
    assert list(cards[0].distributions.columns) == ["annotated", "predicted"]
    np.testing.assert_allclose(cards[0].distributions["predicted"], out.pred[2])
    assert item_cards(out, [1])[0].media is None
    with pytest.raises(ValueError, match="rows must be in"):
        item_cards(out, [out.n])
    # the page loads datasets unvalidated: a media path that leads out shows no media
    hostile = ds.items.copy()
    hostile.loc[hostile["item_id"] == out.item_ids[2], "media"] = "../../../etc/passwd"
    assert item_cards(out, [2], hostile, ds.root)[0].media is None


def test_group_rows_follow_the_class_order():
    values = np.array(["sad", "happy", "?", "sad", "angry"], dtype=object)
    traces = group_rows(values, True, order=["happy", "sad", "angry", "neutral"])
    assert [n for n, _ in traces] == ["happy", "sad", "angry", "?"]  # absent class left out
    assert [r.tolist() for _, r in traces] == [[1], [0, 3], [4], [2]]


# -- one uncertainty scale -----------------------------------------------------------------

def test_uncertainty_colouring_is_on_the_unit_scale_with_the_raw_value(tmp_path, world):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="entropy-run")
    table = pd.read_parquet(run / "outputs" / "test.parquet")
    table["uncertainty"] = entropy(np.stack(table["probs"]))  # raw nats, as the engine saves
    table.to_parquet(run / "outputs" / "test.parquet")
    out = load_run_outputs(run)
    col = colour_values(out, "uncertainty")
    assert col.unit and not col.categorical
    np.testing.assert_allclose(col.values, out.uncertainty / np.log(7))
    np.testing.assert_allclose(col.raw, out.uncertainty)
    assert col.raw_name == "entropy (nats)"
    # the card caption shows the same 0–1 value
    card = item_cards(out, [0])[0]
    assert f"uncertainty {col.values[0]:.2f}" in card.caption


def test_ldlva_run_mixes_lambda_for_train_items_and_entropy_for_the_rest(tmp_path, world):
    from affectlab.pages.explore_colour import run_uncertainty

    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="ldlva-run")
    (run / "config.yaml").write_text(f"dataset: {ds.root}\nmethod: ldlva\n")
    out = load_run_outputs(run)
    scores = run_uncertainty(out)
    train = out.table["split"].to_numpy() == "train"
    np.testing.assert_allclose(scores.unit[train], out.uncertainty[train])
    np.testing.assert_allclose(scores.unit[~train], np.clip(out.uncertainty[~train] / np.log(7),
                                                            0, 1))
    assert scores.raw_name() == "λ (LDLVA) or entropy (nats)" or \
        scores.raw_name() == "entropy (nats) or λ (LDLVA)"


# -- the map figure ------------------------------------------------------------------------

def _categorical(n, groups):
    from affectlab.pages.explore_colour import Colouring

    names = np.array([f"g{i % groups:02d}" for i in range(n)], dtype=object)
    return Colouring("sub-class", names, True)


def test_map_figure_is_svg_when_small_and_webgl_when_large(rng):
    import plotly.io as pio

    from affectlab.pages.explore_map import SVG_MAX_POINTS, map_figure

    for n, webgl in ((50, False), (SVG_MAX_POINTS + 1, True)):
        drawn = map_figure(rng.normal(size=(n, 2)), _categorical(n, 3), np.arange(n).astype(str))
        assert drawn.webgl is webgl
        kinds = {t.type for t in drawn.figure.data}
        assert kinds == ({"scattergl"} if webgl else {"scatter"})
        assert drawn.figure.layout.dragmode == "pan"  # a click selects (lasso mode would not)
    spec = pio.to_json(drawn.figure, validate=False)
    assert '"bdata"' in spec  # numpy arrays travel as typed arrays, not per-point lists


def test_map_figure_customdata_names_each_points_row(rng):
    from affectlab.pages.explore_colour import UncertaintyScores
    from affectlab.pages.explore_map import map_figure

    n = 30
    colouring = _categorical(n, 4)
    unc = UncertaintyScores(rng.uniform(size=n), rng.uniform(0, 2, n),
                            np.full(n, "entropy", dtype=object))
    drawn = map_figure(rng.normal(size=(n, 2)), colouring, np.array([f"id{i}" for i in range(n)]),
                       unc)
    for trace, rows in zip(drawn.figure.data, drawn.traces, strict=True):
        custom = np.asarray(trace.customdata)
        assert custom[:, 0].tolist() == rows.tolist()
        np.testing.assert_allclose(custom[:, 2], unc.unit[rows], rtol=1e-6)
        np.testing.assert_allclose(custom[:, 3], unc.raw[rows], rtol=1e-6)
        assert list(trace.text) == [f"id{r}" for r in rows]
        assert "entropy (nats)" in trace.hovertemplate
    # what Streamlit returns for one clicked point: its customdata maps back to the row
    trace = drawn.figure.data[2]
    click = {"curve_number": 2, "point_index": 1, "customdata": list(trace.customdata[1])}
    assert selection_rows([click], drawn.traces).tolist() == [drawn.traces[2][1]]


def test_map_figure_palette_sized_to_the_groups(rng):
    from affectlab.pages.explore_map import map_figure

    for groups in (7, 14, 40):
        drawn = map_figure(rng.normal(size=(200, 2)), _categorical(200, groups),
                           np.arange(200).astype(str))
        styles = {(t.marker.color, t.marker.symbol) for t in drawn.figure.data}
        assert len(styles) == groups == len(drawn.figure.data)
        assert (drawn.palette.note is None) == (groups <= 26)


def test_map_figure_continuous_unit_scale_and_unknown_values(rng):
    from affectlab.pages.explore_colour import Colouring
    from affectlab.pages.explore_map import map_figure

    values = rng.uniform(size=20)
    values[[3, 7]] = np.nan
    drawn = map_figure(rng.normal(size=(20, 2)), Colouring("uncertainty", values, False, unit=True),
                       np.arange(20).astype(str))
    main, unknown = drawn.figure.data
    assert (main.marker.cmin, main.marker.cmax) == (0.0, 1.0)
    assert unknown.name == "unknown" and drawn.traces[1].tolist() == [3, 7]
    assert sorted(np.concatenate(drawn.traces).tolist()) == list(range(20))
    with pytest.raises(ValueError, match="one entry per point"):
        map_figure(np.zeros((3, 2)), Colouring("x", np.zeros(2), False), np.arange(3))


def test_distribution_figure_names_every_class(world):
    from affectlab.pages.explore_map import distribution_figure

    _, _, run = world
    out = load_run_outputs(run)
    card = item_cards(out, [0])[0]
    fig = distribution_figure(card.distributions)
    assert [t.name for t in fig.data] == ["annotated", "predicted"]
    for trace in fig.data:
        assert list(trace.y) == list(CATEGORIES)  # all seven, in class order
    assert fig.layout.yaxis.dtick == 1 and fig.layout.showlegend is False
    np.testing.assert_allclose(fig.data[1].x, out.pred[0])
    small = distribution_figure(card.distributions.iloc[:3])
    assert small.layout.height < fig.layout.height  # the chart grows with the classes


# -- projection at scale -------------------------------------------------------------------

def test_pca_of_a_large_map_is_fitted_on_a_subsample(rng):
    x = rng.normal(size=(pj.PCA_FIT_MAX + 500, 4)) * np.array([5.0, 2.0, 1.0, 0.5])
    proj = MapProjection().fit(x)
    # the axes found from 20,000 of the rows are the full data's principal axes
    full = PCA(2).fit(x)
    np.testing.assert_allclose(np.abs(proj.components_ @ full.components_.T), np.eye(2), atol=0.01)
    assert proj.fingerprint_ == pj.embeddings_fingerprint(x)  # of every row
    xy = proj.transform(x.astype(np.float32))
    assert xy.dtype == np.float64 and xy.shape == (len(x), 2)
    np.testing.assert_allclose(xy, proj.transform(x), atol=1e-3)  # float32 path


def test_run_fingerprint_is_remembered_per_file_version(tmp_path, world, monkeypatch):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="fp")
    pj.forget_fingerprints()
    first = pj.run_fingerprint(run)
    assert first == pj.embeddings_fingerprint(RunDir(run).read_embeddings())
    calls = []
    monkeypatch.setattr(pj, "embeddings_fingerprint", lambda a: calls.append(1) or "x")
    assert pj.run_fingerprint(run) == first and not calls  # no re-read, no re-hash
    path = RunDir(run).embeddings_path("test")
    np.save(path, np.load(path) + 1)
    os.utime(path, ns=(1, 1))  # a new version of the outputs
    assert pj.run_fingerprint(run) == "x" and calls == [1]


def test_umap_layout_of_a_large_map_fits_a_subsample(monkeypatch, rng):
    """Past fit_max rows: fit on a seeded subsample, transform the rest (a fake UMAP records
    what it was given)."""
    import types

    seen = {}

    class FakeUMAP:
        def __init__(self, **kw):
            seen["kw"] = kw

        def fit_transform(self, x):
            seen["fit"] = len(x)
            return x[:, :2] * 10

        def transform(self, x):
            seen.setdefault("transform", []).append(len(x))
            return x[:, :2] * 10

    monkeypatch.setitem(__import__("sys").modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    x = rng.normal(size=(50, 3))
    layout, fit_on = pj.umap_layout(x, fit_max=20)
    assert fit_on == 20 and seen["fit"] == 20 and sum(seen["transform"]) == 30
    np.testing.assert_allclose(layout, (x[:, :2] * 10).astype(np.float32))  # every row placed
    layout, fit_on = pj.umap_layout(x[:10], fit_max=20)
    assert fit_on == 10 and seen["fit"] == 10
    with pytest.raises(ValueError, match="fit_max"):
        pj.umap_layout(x, fit_max=2)


def test_umap_status_does_not_rehash_while_polling(tmp_path, world, monkeypatch):
    _, ds, _ = world
    run = make_fake_run(tmp_path, ds, name="poll", legacy=True)
    np.save(RunDir(run).outputs_dir / RunDir.LEGACY_EMBEDDINGS, np.arange(9.0).reshape(3, 3))
    compute_umap(run)
    assert umap_status(run) == "ready"
    assert pj.umap_info(run)["n"] == 3
    monkeypatch.setattr(pj, "embeddings_fingerprint", lambda a: pytest.fail("re-hashed"))
    for _ in range(3):
        assert umap_status(run) == "ready"


def test_list_columns_read_as_one_array_and_other_columns_are_refused():
    """A list column of equal-length vectors reads as the same (n, K) float64 array the
    row-by-row stack gave; scalar, string, ragged, missing and nested rows are not a
    distribution."""
    from affectlab.explore.run_outputs import _list_column

    rows = np.random.default_rng(0).random((50, 7)).astype(np.float32)
    values = pd.Series(list(rows)).to_numpy()
    got = _list_column(values)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.stack([np.asarray(v, np.float64) for v in values]))
    for bad in ([1, 2, 3], ["ab", "cd"], [[1.0, 2.0], [3.0]], [[1.0, 2.0], None],
                [[[1.0, 2.0]], [[3.0, 4.0]]], [[], []]):
        assert _list_column(pd.Series(bad).to_numpy()) is None, bad
    assert _list_column(np.array([], dtype=object)) is None
