"""affectlab.pages.data_browse (the Data page's tables) and affectlab.data.jobs (background generation)."""

from __future__ import annotations

import math
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest

from affectlab.data.contract import load_dataset, write_dataset
from affectlab.data.jobs import DataJob, generation_progress, start_generation
from affectlab.pages.data_browse import (
    agreement_table,
    filter_items,
    filter_options,
    item_table,
    rating_histogram,
    soft_label_frame,
)

NAMES = ["calm", "glad", "mad"]


@pytest.fixture
def small_ds(tmp_path):
    """3 items, 3 classes. Category votes: a = [calm, calm, glad], b = [mad, mad, mad],
    c = none. Valence (Likert 1..5): a = 1, 5; b = 3, 3 (by raters r1, r2)."""
    items = pd.DataFrame({
        "item_id": ["a", "b", "c"], "media": ["m/a.png", "m/b.png", "m/c.png"],
        "modality": ["face"] * 3, "split": ["train", "test", "test"],
        "domain": ["A", "B", "B"], "label": [0, 2, 1]})
    ratings = pd.DataFrame({
        "item_id": ["a", "a", "a", "b", "b", "b", "a", "a", "b", "b"],
        "rater_id": ["r1", "r2", "r3", "r1", "r2", "r3", "r1", "r2", "r1", "r2"],
        "scale": ["category"] * 6 + ["valence"] * 4,
        "value": [0, 0, 1, 2, 2, 2, 1, 5, 3, 3]})
    meta = {"name": "small", "modality": "face",
            "label_set": {"scale": "category", "names": NAMES, "ordinal": False},
            "scales": {"category": {"type": "nominal", "names": NAMES},
                       "valence": {"type": "likert", "low": 1, "high": 5},
                       "arousal": {"type": "likert", "low": 1, "high": 5}}}
    return write_dataset(tmp_path / "small", items, ratings, meta)


def test_soft_label_frame_hand_computed(small_ds):
    soft = soft_label_frame(small_ds)
    assert list(soft.columns) == NAMES
    np.testing.assert_allclose(soft.loc["a"], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(soft.loc["b"], [0, 0, 1])
    assert soft.loc["c"].isna().all()
    val = soft_label_frame(small_ds, "valence")
    # SPEC §1: 1 → [1, 0], 5 → [0, 1]; mean [0.5, 0.5]. 3 → [0.5, 0.5].
    np.testing.assert_allclose(val.loc["a"], [0.5, 0.5])
    assert list(val.columns) == ["low", "high"]


def test_soft_label_frame_by_aggregator(small_ds, tmp_path):
    from affectlab.aggregators import aggregate_soft_labels

    ids = small_ds.items["item_id"]
    ds_soft = soft_label_frame(small_ds, aggregator="ds")
    np.testing.assert_allclose(ds_soft.to_numpy(), aggregate_soft_labels(
        small_ds.ratings, ids, "category", small_ds.scale("category"), "ds"))
    assert ds_soft.loc["c"].isna().all()
    # the default follows the dataset's meta.json, and item_table shows the same labels
    meta = {**small_ds.meta, "aggregator": "ds"}
    other = write_dataset(tmp_path / "other", small_ds.items, small_ds.ratings, meta)
    pd.testing.assert_frame_equal(soft_label_frame(other), ds_soft)
    np.testing.assert_allclose(item_table(other)["soft_top_p"].to_numpy()[:2],
                               ds_soft.to_numpy()[:2].max(axis=1))


def test_item_table_columns_and_values(small_ds):
    t = item_table(small_ds)
    assert list(t["item_id"]) == ["a", "b", "c"]
    assert list(t["label"]) == ["calm", "mad", "glad"]
    assert list(t["soft_top"][:2]) == ["calm", "mad"] and pd.isna(t["soft_top"][2])
    np.testing.assert_allclose(t["soft_top_p"][:2], [2 / 3, 1.0])
    # normalised entropy of [2/3, 1/3, 0] = H / log 3
    h = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    np.testing.assert_allclose(t["ambiguity"][:2], [h / math.log(3), 0.0], atol=1e-12)
    assert list(t["n_ratings"]) == [3, 3, 0]


def test_filters(small_ds):
    t = item_table(small_ds)
    assert filter_options(t) == {"split": ["test", "train"], "domain": ["A", "B"],
                                 "label": ["calm", "glad", "mad"]}
    assert list(filter_items(t)["item_id"]) == ["a", "b", "c"]
    assert list(filter_items(t, split=[], domain=[])["item_id"]) == ["a", "b", "c"]
    assert list(filter_items(t, split=["test"])["item_id"]) == ["b", "c"]
    assert list(filter_items(t, split=["test"], label=["glad"])["item_id"]) == ["c"]
    assert filter_items(t, domain=["A"], label=["mad"]).empty
    with pytest.raises(TypeError, match="split must be a list"):
        filter_items(t, split="test")
    with pytest.raises(ValueError, match="missing column"):
        filter_items(t.drop(columns="domain"))


def test_rating_histogram_counts_every_value(small_ds):
    h = rating_histogram(small_ds, "category")
    assert list(h["name"]) == NAMES and list(h["count"]) == [2, 1, 3]
    v = rating_histogram(small_ds, "valence")
    assert list(v["name"]) == ["1", "2", "3", "4", "5"] and list(v["count"]) == [1, 0, 2, 0, 1]
    only_a = rating_histogram(small_ds, "valence", item_ids=["a"])
    assert list(only_a["count"]) == [1, 0, 0, 0, 1]
    with pytest.raises(KeyError, match="no scale"):
        rating_histogram(small_ds, "dominance")


def test_agreement_table_matches_krippendorff(small_ds):
    t = agreement_table(small_ds).set_index("scale")
    # category reliability matrix: raters r1..r3 × items a, b
    nominal = np.array([[0, 2], [0, 2], [1, 2]], dtype=float)
    expected = krippendorff.alpha(reliability_data=nominal, level_of_measurement="nominal")
    assert t.loc["category", "alpha"] == pytest.approx(expected)
    interval = np.array([[1, 3], [5, 3]], dtype=float)
    expected = krippendorff.alpha(reliability_data=interval, level_of_measurement="interval")
    assert t.loc["valence", "alpha"] == pytest.approx(expected)
    assert t.loc["valence", "level"] == "interval"
    assert math.isnan(t.loc["arousal", "alpha"]) and t.loc["arousal", "n_ratings"] == 0


def test_browse_rejects_non_dataset():
    with pytest.raises(TypeError, match="ds must be a DatasetDir"):
        item_table("not a dataset")


def test_generation_progress_counts_staged_media(tmp_path):
    out = tmp_path / "corpus"
    assert generation_progress(out, 10) == 0.0
    media = tmp_path / ".corpus.media.xyz" / "media"
    media.mkdir(parents=True)
    for i in range(4):
        (media / f"{i}.png").write_bytes(b"")
    assert generation_progress(out, 10) == pytest.approx(0.4)
    for i in range(4, 10):
        (media / f"{i}.png").write_bytes(b"")
    assert generation_progress(out, 10) == pytest.approx(0.99)  # tables not written yet
    out.mkdir()
    (out / "meta.json").write_text("{}")
    assert generation_progress(out, 10) == 1.0
    with pytest.raises(ValueError, match="n must be positive"):
        generation_progress(out, 0)


def test_data_job_reports_result_and_error():
    ok = DataJob("double", lambda x: 2 * x, 21)
    assert ok.wait(10) and ok.status == "done" and ok.result == 42 and ok.progress() == 1.0
    bad = DataJob("fail", lambda: 1 / 0)
    assert bad.wait(10) and bad.status == "failed"
    assert bad.error.startswith("ZeroDivisionError") and "1 / 0" in bad.traceback
    with pytest.raises(TypeError, match="fn must be callable"):
        DataJob("x", 3)


def test_start_generation_writes_a_dataset(tmp_path):
    out = tmp_path / "datasets" / "gen"
    job = start_generation(out, modality="face", n=10, seed=1, n_domains=1, flip_rate=0.0)
    assert job.wait(60), "generation did not finish"
    assert job.status == "done", job.error
    ds = load_dataset(out)
    assert len(ds.items) == 10 and job.progress() == 1.0
    bad = start_generation(Path(tmp_path / "x"), modality="smell", n=10, seed=0, n_domains=1,
                           flip_rate=0.0)
    assert bad.wait(10) and bad.status == "failed" and "modality" in bad.error
