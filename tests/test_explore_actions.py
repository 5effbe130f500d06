"""Filtering the Explore map and acting on a selection: export it as a dataset, or send it back
to the crowd (campaign → a rater rates → export → the new soft labels)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from annotate_support import owner_for
from explore_fakes import make_dataset, make_fake_run

from affectlab.annotate import join_campaign
from affectlab.data.catalog import list_datasets
from affectlab.data.contract import load_dataset
from affectlab.data.subset import write_subset
from affectlab.data.synth.truth import CATEGORIES
from affectlab.explore.run_outputs import load_run_outputs
from affectlab.labels import soft_labels_from_ratings
from affectlab.pages.explore_actions import dataset_target, export_selection, selection_item_ids
from affectlab.pages.explore_colour import colour_values, join_items, run_uncertainty
from affectlab.pages.explore_filters import MapFilter, filter_mask, filter_options
from affectlab.paths import data_dir


@pytest.fixture
def world():
    root = data_dir()  # conftest: a tmp AFFECTLAB_DATA per test
    ds = make_dataset(root, n=24)
    run = make_fake_run(root, ds)
    return ds, load_run_outputs(run)


# -- filters -------------------------------------------------------------------------------

def test_filter_options_list_what_the_run_has(world):
    ds, out = world
    opts = filter_options(out, ds.items)
    assert opts.splits == sorted(set(ds.items["split"]))
    assert opts.class_sources == ["soft label", "predicted", "dataset label"]
    assert opts.classes == list(CATEGORIES) and opts.has_uncertainty and opts.has_flipped
    assert set(opts.domains) == set(ds.items["domain"].astype(str))
    assert set(opts.true_labels) == {CATEGORIES[i] for i in ds.items["true_label"]}
    bare = filter_options(out)  # without the dataset: no truth
    assert not bare.has_flipped and bare.true_labels == []


def test_each_criterion_keeps_exactly_its_items(world):
    ds, out = world
    joined = join_items(out, ds.items)
    assert filter_mask(out, ds.items, MapFilter()).all()
    mask = filter_mask(out, ds.items, MapFilter(splits=("test",)))
    assert mask.tolist() == (out.table["split"] == "test").tolist()
    pred = colour_values(out, "predicted").values
    cls = pred[0]
    mask = filter_mask(out, ds.items, MapFilter(class_of="predicted", classes=(cls,)))
    assert mask.tolist() == (pred == cls).tolist()
    domain = str(joined["domain"].iloc[0])
    mask = filter_mask(out, ds.items, MapFilter(domains=(domain,)))
    assert mask.tolist() == (joined["domain"].astype(str) == domain).tolist()
    unit = run_uncertainty(out).unit
    mask = filter_mask(out, ds.items, MapFilter(uncertainty=(0.5, 1.0)))
    assert mask.tolist() == (unit >= 0.5).tolist()
    flipped = joined["flipped"].astype(bool).to_numpy()
    assert filter_mask(out, ds.items, MapFilter(flipped=True)).tolist() == flipped.tolist()
    assert filter_mask(out, ds.items, MapFilter(flipped=False)).tolist() == (~flipped).tolist()
    true = colour_values(out, "true label", ds.items).values
    mask = filter_mask(out, ds.items, MapFilter(true_labels=(true[3],)))
    assert mask.tolist() == (true == true[3]).tolist()
    ids = out.item_ids
    mask = filter_mask(out, ds.items, MapFilter(item_ids=f"{ids[2].upper()}, {ids[5]}"))
    assert np.flatnonzero(mask).tolist() == [2, 5]


def test_criteria_combine_with_and(world):
    ds, out = world
    both = MapFilter(splits=("test",), uncertainty=(0.5, 1.0))
    expected = (out.table["split"] == "test").to_numpy() & (run_uncertainty(out).unit >= 0.5)
    assert filter_mask(out, ds.items, both).tolist() == expected.tolist()
    assert both.active() and not MapFilter(class_of="predicted").active()


def test_filters_refuse_what_the_run_cannot_answer(world):
    ds, out = world
    with pytest.raises(ValueError, match="flipped"):
        filter_mask(out, None, MapFilter(flipped=True))
    with pytest.raises(ValueError, match="uncertainty must be a range"):
        filter_mask(out, ds.items, MapFilter(uncertainty=(0.8, 0.2)))
    with pytest.raises(ValueError, match="class_of"):
        filter_mask(out, ds.items, MapFilter(class_of="astrology", classes=("happy",)))
    bare = out.take(np.arange(out.n))
    bare.uncertainty = None
    with pytest.raises(ValueError, match="saved no uncertainty"):
        filter_mask(bare, ds.items, MapFilter(uncertainty=(0.0, 0.5)))


# -- export a selection as a dataset -------------------------------------------------------

def test_export_selection_writes_a_dataset_of_exactly_those_items(world):
    ds, out = world
    rows = [5, 2, 5, 9]
    ids = selection_item_ids(out, rows)
    assert ids == [out.item_ids[5], out.item_ids[2], out.item_ids[9]]
    written = export_selection(out, rows, "fake-run-selection",
                               filters=MapFilter(uncertainty=(0.2, 0.9)))
    back = load_dataset(written.root)  # the contract holds
    assert back.root == data_dir() / "datasets" / "fake-run-selection"
    assert back.items["item_id"].tolist() == ids
    src = ds.ratings[ds.ratings["item_id"].isin(ids)]
    assert len(back.ratings) == len(src) > 0
    assert set(back.ratings["item_id"]) == set(ids)
    for row in back.items.itertuples():
        assert (back.root / row.media).read_bytes() == (ds.root / row.media).read_bytes()
    prov = back.meta["provenance"]
    assert prov["source"] == "explore selection" and prov["run"] == "fake-run"
    assert prov["parent"] == str(ds.root) and prov["parent_source"] == "generated"
    assert prov["n_items"] == 3 and prov["filters"]["uncertainty"] == [0.2, 0.9]
    assert back.meta["truth_columns"] == ds.meta["truth_columns"]
    # the catalog: from a generated corpus, but not generated itself (it has truth columns)
    by_name = {d.name: d for d in list_datasets()}
    assert by_name["fake-run-selection"].generated is False
    assert by_name["fake-run-selection"].has_truth
    assert by_name["fake-run-selection"].source == "explore selection"
    assert by_name[ds.name].generated is True
    with pytest.raises(FileExistsError):
        export_selection(out, rows, "fake-run-selection")


def test_export_selection_refuses_bad_names_and_rows(world):
    _, out = world
    for bad in ("../escape", "a/b", "", ".hidden", "x" * 101, "name with space"):
        with pytest.raises(ValueError, match="dataset name"):
            export_selection(out, [0], bad)
    with pytest.raises(ValueError, match="rows must be in"):
        selection_item_ids(out, [out.n])
    assert dataset_target("ok-name_1.v2") == data_dir() / "datasets" / "ok-name_1.v2"


def test_write_subset_validates(world, tmp_path):
    ds, _ = world
    with pytest.raises(ValueError, match="not in the dataset"):
        write_subset(ds, ["nope"], tmp_path / "x", source="test")
    with pytest.raises(ValueError, match="at least one"):
        write_subset(ds, [], tmp_path / "x", source="test")
    with pytest.raises(ValueError, match="must differ"):
        write_subset(ds, [ds.items["item_id"].iloc[0]], ds.root, source="test", overwrite=True)
    with pytest.raises(TypeError, match="not one string"):
        write_subset(ds, "abc", tmp_path / "x", source="test")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("media", ["../../etc/passwd", "/etc/passwd", "..\\..\\secret.png",
                                   "C:\\Windows\\win.ini", "faces/a\x00.png", "."])
def test_write_subset_refuses_media_outside_the_dataset(tmp_path, media):
    """The importers' containment rule (affectlab.paths.unsafe_relative) for a dataset's own
    media paths: no climbing out, absolute paths, Windows drives or backslashes, control
    characters, or the directory itself."""
    ds = make_dataset(tmp_path, n=24)
    items = pd.read_parquet(ds.root / "items.parquet")
    items.loc[0, "media"] = media
    items.to_parquet(ds.root / "items.parquet", index=False)
    with pytest.raises(ValueError, match="inside the dataset"):
        write_subset(ds.root, [items["item_id"].iloc[0]], tmp_path / "x", source="test")


# -- the loop back to the crowd ------------------------------------------------------------

def test_selection_becomes_a_campaign_whose_ratings_reach_the_soft_labels(world, tmp_path):
    """Select the most uncertain items → a campaign over them (owner) → a rater rates every
    one → export → the exported dataset's soft labels are the rater's answers."""
    ds, out = world
    unit = run_uncertainty(out).unit
    rows = np.argsort(-unit)[:4]  # "these are ambiguous": the four most uncertain
    ids = selection_item_ids(out, rows)
    store, owner = owner_for(f"sqlite:///{tmp_path / 'a.db'}")
    invite = owner.create_campaign("rerate", out.dataset_path, scales=["category"],
                                   ratings_per_item=1, item_ids=ids)
    assert sorted(owner.items("rerate")["item_id"]) == sorted(ids)

    rater = join_campaign(store, invite.token, "ada")
    answers = {}
    while (item := rater.next_item()) is not None:
        answers[item.item_id] = CATEGORIES.index("surprised")
        rater.submit(item.item_id, "category", answers[item.item_id], time_spent=1.0)
    assert sorted(answers) == sorted(ids) and rater.progress().done == len(ids)

    exported = load_dataset(owner.export("rerate", data_dir() / "datasets" / "rerate-ratings"))
    assert sorted(exported.items["item_id"]) == sorted(ids)
    soft = soft_labels_from_ratings(exported.ratings, ids, "category",
                                    exported.meta["scales"]["category"])
    expected = np.zeros((len(ids), len(CATEGORIES)))
    expected[:, CATEGORIES.index("surprised")] = 1.0
    np.testing.assert_allclose(soft, expected)  # the new ratings, and only those
    assert set(exported.ratings["rater_id"]) == {"ada"}
    summary = next(d for d in list_datasets() if d.name == "rerate-ratings")
    assert summary.source == "annotation campaign rerate" and not summary.generated
    assert json.loads((exported.root / "meta.json").read_text())["provenance"]["n_items"] == 4
