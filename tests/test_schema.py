"""The typed dataset schema (affectlab.data.schema, affectlab.scales): meta.json read and written
unchanged, errors naming the file and field, the scale rules; the ``label`` column read as class
indices under pandas 2 and 3; anonymous ratings surviving parquet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from affectlab.data.contract import ContractError, label_codes, load_dataset, write_dataset
from affectlab.data.dataset import EmotionDataset
from affectlab.data.schema import (
    DatasetMeta,
    IntervalScale,
    LabelSet,
    NominalScale,
    OrdinalScale,
    UnknownScaleError,
    as_dataset_meta,
    default_label_set,
)
from affectlab.scales import as_scale

NAMES = ["neutral", "happy", "sad"]

# meta.json exactly as the writers before the schema wrote it (json.dumps, indent 2, sorted
# keys; Likert ends as ints), with an unknown top-level key and unknown keys in a scale entry
OLD_META_JSON = """{
  "format_version": 1,
  "label_set": {
    "names": [
      "neutral",
      "happy",
      "sad"
    ],
    "ordinal": false,
    "scale": "category"
  },
  "licence_note": "kept as is",
  "modality": "face",
  "name": "old",
  "provenance": {
    "n": 3,
    "source": "generated"
  },
  "scales": {
    "category": {
      "names": [
        "neutral",
        "happy",
        "sad"
      ],
      "type": "nominal"
    },
    "intensity": {
      "names": [
        "1",
        "2"
      ],
      "type": "ordinal"
    },
    "valence": {
      "help": "1 = negative",
      "high": 5,
      "low": 1,
      "type": "likert"
    },
    "level": {
      "high": 100.0,
      "low": 0.0,
      "type": "interval"
    }
  },
  "truth_columns": []
}"""


def _meta(**changes) -> dict:
    meta = json.loads(OLD_META_JSON)
    meta.update(changes)
    return meta


# --------------------------------------------------------------------------- read / write


def test_aggregator_field_defaults_to_votes_and_is_checked():
    old = DatasetMeta.parse(json.loads(OLD_META_JSON))
    assert old.aggregator == "votes" and "aggregator" not in old.to_json()
    chosen = DatasetMeta.parse(_meta(aggregator="mace"))
    assert chosen.aggregator == "mace" and chosen.to_json()["aggregator"] == "mace"
    with pytest.raises(ContractError, match="aggregator: unknown aggregator 'median'"):
        DatasetMeta.parse(_meta(aggregator="median"))


def test_old_meta_reads_and_writes_back_the_same_json():
    meta = DatasetMeta.parse(json.loads(OLD_META_JSON))
    assert isinstance(meta.scales["category"], NominalScale)
    assert isinstance(meta.scales["intensity"], OrdinalScale)
    assert isinstance(meta.scales["valence"], IntervalScale)
    assert meta.scales["level"].type == "interval"
    assert json.dumps(meta.to_json(), indent=2, sort_keys=True) == \
        json.dumps(json.loads(OLD_META_JSON), indent=2, sort_keys=True)
    # ints stay ints (no 1 → 1.0 rewrite), unknown keys survive at every level
    assert meta.to_json()["scales"]["valence"] == {"type": "likert", "low": 1, "high": 5,
                                                   "help": "1 = negative"}
    assert meta.to_json()["licence_note"] == "kept as is"


def test_write_dataset_writes_the_json_it_was_given(tmp_path):
    items, ratings = _tables(["neutral", "sad"])
    write_dataset(tmp_path / "d", items, ratings, json.loads(OLD_META_JSON))
    on_disk = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert on_disk == {**json.loads(OLD_META_JSON), "name": "old"}
    ds = load_dataset(tmp_path / "d")
    assert ds.meta == on_disk and ds.schema == DatasetMeta.parse(on_disk)


def test_defaults_fill_keys_an_old_meta_lacks():
    meta = DatasetMeta.parse({"name": "x", "modality": "speech",
                              "label_set": {"names": ["a", "b"]},
                              "scales": {"category": {"type": "nominal", "names": ["a", "b"]}}})
    assert meta.label_scale == "category" and meta.format_version == 1
    assert meta.provenance == {} and meta.truth_columns == [] and not meta.label_set.ordinal


@pytest.mark.parametrize("change, match", [
    ({"modality": "video"}, r"meta\.json: modality: Input should be 'face' or 'speech'"),
    ({"name": 3}, r"meta\.json: name: Input should be a valid string"),
    ({"format_version": 2}, r"format_version: this affectlab reads format_version 1\.\.1"),
    ({"scales": {}}, r"meta\.json: scales: "),
    ({"label_set": {"names": []}}, r"meta\.json: label_set\.names: "),
    ({"label_set": {"scale": "arousal", "names": NAMES}},
     r"label_set\.scale 'arousal' is not one of the scales"),
    ({"label_set": {"scale": "category", "names": ["neutral", "sad", "happy"]}},
     r"label_set\.names .* differ from the names of scale 'category'"),
    ({"scales": {"category": {"type": "circular"}}},
     r"meta\.json: scales\.category: 'type' must be one of"),
    ({"scales": {"category": {"type": "nominal", "names": NAMES},
                 "valence": {"type": "likert", "low": 5, "high": 1}}},
     r"meta\.json: scales\.valence: low must be < high, got low=5, high=1"),
    ({"scales": {"category": {"type": "nominal", "names": NAMES},
                 "valence": {"type": "likert", "low": 1}}},
     r"meta\.json: scales\.valence\.high: missing"),
    ({"scales": {"category": {"type": "nominal", "names": ["a", "a"]}}},
     r"scales\.category\.names: class name 'a' appears twice"),
    ({"scales": {"category": {"type": "nominal", "names": NAMES},
                 "valence": {"type": "likert", "low": "1", "high": 5}}},
     r"scales\.valence\.low: must be a number"),
    ({"provenance": ["not", "a", "dict"]}, r"meta\.json: provenance: "),
])
def test_bad_meta_names_the_file_and_field(change, match):
    with pytest.raises(ContractError, match=match):
        DatasetMeta.parse(_meta(**change))


def test_load_dataset_names_the_meta_file(tmp_path):
    items, ratings = _tables(["neutral"])
    write_dataset(tmp_path / "d", items, ratings, json.loads(OLD_META_JSON))
    path = tmp_path / "d" / "meta.json"
    path.write_text(json.dumps(_meta(modality="video")))
    with pytest.raises(ContractError, match=f"{path}: modality"):
        load_dataset(tmp_path / "d")
    path.write_text("[1, 2]")
    with pytest.raises(ContractError, match="must hold a JSON object"):
        load_dataset(tmp_path / "d")
    path.write_text("{")
    with pytest.raises(ContractError, match="invalid JSON"):
        load_dataset(tmp_path / "d")


# --------------------------------------------------------------------------- rules


def test_scale_rules():
    meta = DatasetMeta.parse(json.loads(OLD_META_JSON))
    assert meta.label_scale == "category" and meta.scale() is meta.scales["category"]
    assert meta.class_names() == NAMES and meta.num_classes() == 3
    assert meta.class_names("valence") == ["low", "high"] and meta.num_classes("level") == 2
    assert meta.value_range("valence") == (1.0, 5.0) and meta.value_range("intensity") == (0, 1)
    # ordered: the label set's flag for its own scale, the scale's type for the others
    assert not meta.is_ordered() and meta.is_ordered("intensity")
    assert meta.is_ordered("valence") and meta.is_ordered("level")
    flagged = DatasetMeta.parse(_meta(label_set={"scale": "category", "names": NAMES,
                                                 "ordinal": True}))
    assert flagged.is_ordered("category") and flagged.is_ordered()
    assert [as_scale(s).level for s in meta.scales.values()] == \
        ["nominal", "ordinal", "interval", "interval"]
    with pytest.raises(UnknownScaleError, match="no scale 'arousal' .*known: category"):
        meta.scale("arousal")
    with pytest.raises(KeyError):
        meta.class_names("arousal")


def test_check_values_range_and_class_indices():
    nominal, likert = NominalScale(names=NAMES), IntervalScale(low=1, high=5)
    nominal.check_values(np.array([0, 2, np.nan]), "v")
    likert.check_values(np.array([1.0, 2.5, 5.0]), "v")  # fractional Likert values are fine
    with pytest.raises(ValueError, match=r"v must lie in \[0, 2\]; found 3"):
        nominal.check_values(np.array([3.0]), "v")
    with pytest.raises(ValueError, match="integer class indices into names, found 1.5"):
        nominal.check_values(np.array([1.5]), "v")
    with pytest.raises(ValueError, match=r"v must lie in \[1, 5\]; found 0"):
        likert.check_values(np.array([0.0]), "v")


def test_as_dataset_meta_and_default_label_set(tmp_path):
    meta = DatasetMeta.parse(json.loads(OLD_META_JSON))
    assert as_dataset_meta(meta) is meta and as_dataset_meta(meta.to_json()) == meta
    items, ratings = _tables(["neutral"])
    ds = write_dataset(tmp_path / "d", items, ratings, meta)
    assert as_dataset_meta(ds) is ds.schema
    assert default_label_set({"v": {"type": "likert", "low": 1, "high": 5},
                              "i": {"type": "ordinal", "names": ["lo", "hi"]}}) == \
        LabelSet(scale="i", names=["lo", "hi"], ordinal=True)
    assert default_label_set({"v": IntervalScale(low=1, high=5)}) == \
        LabelSet(scale="v", names=["low", "high"], ordinal=True)


def test_trainer_and_form_take_their_scale_rules_from_the_schema():
    from affectlab.engine.config import RunConfig
    from affectlab.engine.trainer import _is_ordinal, _label_scale
    from affectlab.pages.train_form import default_scale, scale_choices, scale_is_ordinal

    meta = DatasetMeta.parse(json.loads(OLD_META_JSON))
    config = RunConfig(dataset="x", model="resnet18", method="ce")
    for given in (meta, meta.to_json()):
        assert _label_scale(config, given) == default_scale(given) == meta.label_scale
        for scale in meta.scales:
            assert _is_ordinal(scale, given) == scale_is_ordinal(given, scale) == \
                meta.is_ordered(scale)
    by = {c.name: c for c in scale_choices(meta)}
    assert by["level"].type == "interval" and by["level"].classes == ("low", "high")


# --------------------------------------------------------------------------- label column


def _tables(labels, rater_ids=None):
    n = len(labels)
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)],
                          "media": [f"media/i{k}.png" for k in range(n)],
                          "modality": ["face"] * n, "split": ["train"] * n, "domain": ["A"] * n})
    items["label"] = labels if isinstance(labels, pd.Series) else pd.Series(labels, dtype=None)
    ratings = pd.DataFrame({"item_id": items["item_id"],
                            "rater_id": rater_ids if rater_ids is not None else ["r0"] * n,
                            "scale": "category", "value": [float(k % 3) for k in range(n)]})
    return items, ratings


LABEL_COLUMNS = {
    "str dtype (pandas 3's text)": (pd.Series(["happy", "sad", "neutral"], dtype="str"), [1, 2, 0]),
    "object": (pd.Series(["happy", "sad", "neutral"], dtype=object), [1, 2, 0]),
    "StringDtype": (pd.Series(["sad", "happy", pd.NA], dtype="string"), [2, 1, -1]),
    "int64 indices": (pd.Series([2, 0, 1], dtype="int64"), [2, 0, 1]),
    "float with NaN": (pd.Series([1.0, np.nan, 0.0]), [1, -1, 0]),
    "object with None": (pd.Series(["sad", None, "happy"], dtype=object), [2, -1, 1]),
    "category": (pd.Series(["neutral", "sad", "sad"], dtype="category"), [0, 2, 2]),
    "all missing": (pd.Series([None, None, None], dtype=object), [-1, -1, -1]),
}


@pytest.mark.parametrize("kind", sorted(LABEL_COLUMNS))
def test_label_codes_of_every_dtype(kind):
    column, expected = LABEL_COLUMNS[kind]
    np.testing.assert_array_equal(label_codes(column, NAMES), expected)


@pytest.mark.parametrize("kind", sorted(LABEL_COLUMNS))
def test_label_column_round_trips_through_parquet_and_trains(tmp_path, kind):
    column, expected = LABEL_COLUMNS[kind]
    items, ratings = _tables(column)
    stage = tmp_path / "stage" / "media"
    stage.mkdir(parents=True)
    for iid in items["item_id"]:
        Image.fromarray(np.full((64, 64), 9, np.uint8)).save(stage / f"{iid}.png")
    write_dataset(tmp_path / "d", items, ratings, json.loads(OLD_META_JSON),
                  media_dir=tmp_path / "stage")
    ds = load_dataset(tmp_path / "d")  # pandas 3 reads text back as str, pandas 2 as object
    np.testing.assert_array_equal(label_codes(ds.items["label"], ds.class_names), expected)
    data = EmotionDataset(ds, scale="category", target="label")
    if min(expected) >= 0:   # a full label column gives the labels
        np.testing.assert_array_equal(data.labels, expected)
    else:                    # a gap: the soft label's argmax (the ratings say 0, 1, 2)
        np.testing.assert_array_equal(data.labels, [0, 1, 2])


def test_unknown_label_name_is_refused_with_its_name(tmp_path):
    items, ratings = _tables(["happy", "angry", "sad"])
    with pytest.raises(ContractError, match=r"items\.parquet 'label': class name 'angry' \(row 1\) "
                                            r"is not in the label set \['neutral', 'happy', 'sad'\]"):
        write_dataset(tmp_path / "d", items, ratings, json.loads(OLD_META_JSON))
    assert not (tmp_path / "d").exists()
    with pytest.raises(ContractError, match=r"class index 3 is not in 0\.\.2"):
        label_codes(pd.Series([0, 3]), NAMES)
    with pytest.raises(ContractError, match="holds booleans"):
        label_codes(pd.Series([True, False]), NAMES)
    # a file edited after writing is caught on load
    items, ratings = _tables(["happy", "sad", "sad"])
    write_dataset(tmp_path / "d", items, ratings, json.loads(OLD_META_JSON))
    items["label"] = ["happy", "sadd", "sad"]
    items.to_parquet(tmp_path / "d" / "items.parquet", index=False)
    with pytest.raises(ContractError, match="class name 'sadd'"):
        load_dataset(tmp_path / "d")


# --------------------------------------------------------------------------- anonymous raters


def test_anonymous_rater_ids_survive_parquet(tmp_path):
    from affectlab.agreement import anonymous_mask

    items, ratings = _tables(["happy", "sad", "sad"], rater_ids=[None, None, "r1"])
    write_dataset(tmp_path / "d", items, ratings, json.loads(OLD_META_JSON))
    back = load_dataset(tmp_path / "d").ratings
    assert anonymous_mask(back).tolist() == [True, True, False]
    assert back["rater_id"].iloc[2] == "r1"
