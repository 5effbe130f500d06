"""The synonym table of emotion names and matching label sets by it (affectlab.labelmap)."""

from __future__ import annotations

import numpy as np
import pytest

from affectlab.data.importers.ferplus import LABELS as FERPLUS
from affectlab.data.importers.ravdess import LABELS as RAVDESS
from affectlab.data.synth.truth import CATEGORIES as GENERATED
from affectlab.errors import UserDataError
from affectlab.labelmap import (
    SYNONYMS,
    canonical,
    match_classes,
    parse_class_map,
    restrict_to_shared,
)
from affectlab.models.mini_xception import FER2013_CLASSES

EMODB = ["angry", "bored", "disgusted", "fearful", "happy", "sad", "neutral"]


def test_every_synonym_names_one_emotion():
    seen = [s for syns in SYNONYMS.values() for s in syns]
    assert len(seen) == len(set(seen))
    assert all(name in syns for name, syns in SYNONYMS.items())  # a canonical name is its own


@pytest.mark.parametrize("names", [FER2013_CLASSES, FERPLUS, RAVDESS, EMODB, GENERATED])
def test_every_corpus_label_set_maps_into_the_table(names):
    for name in names:
        assert canonical(name) in SYNONYMS, name


def test_canonical_names_by_hand():
    assert [canonical(c) for c in FER2013_CLASSES] == [
        "angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral"]
    assert [canonical(c) for c in FERPLUS] == [
        "neutral", "happy", "surprised", "sad", "angry", "disgusted", "fearful", "contempt"]
    assert canonical("  Happiness ") == "happy"
    assert canonical("other") == "other" and canonical("Neutral  State") == "neutral state"
    # a class map comes first and is read through the table
    assert canonical("calm", {"calm": "neutral"}) == "neutral"
    assert canonical("excited", {"Excited": "happiness"}) == "happy"
    assert canonical("fear", {"calm": "neutral"}) == "fearful"


def test_match_fer2013_to_ferplus():
    m = match_classes(FER2013_CLASSES, FERPLUS)
    assert m.shared == ("neutral", "happy", "surprised", "sad", "angry", "disgusted", "fearful")
    assert m.target_only == ["contempt"] and m.source_only == []
    assert m.pairs() == [("neutral", "neutral"), ("happiness", "happy"),
                         ("surprise", "surprise"), ("sadness", "sad"), ("anger", "angry"),
                         ("disgust", "disgust"), ("fear", "fear")]
    assert m.row_sources() == {0: 6, 1: 3, 2: 5, 3: 4, 4: 0, 5: 1, 6: 2}


def test_match_ravdess_to_emodb():
    m = match_classes(RAVDESS, EMODB)
    assert m.shared == ("angry", "disgusted", "fearful", "happy", "sad", "neutral")
    assert m.target_only == ["bored"] and m.source_only == ["calm", "surprised"]
    merged = match_classes(RAVDESS, EMODB, {"calm": "neutral"})
    assert merged.source_index[merged.shared.index("neutral")] == (0, 1)
    assert merged.source_only == ["surprised"]
    # a merged group: the row of the same name is the one a head copies
    assert merged.row_sources()[EMODB.index("neutral")] == 0
    assert match_classes(["a", "b"], ["c"]).shared == ()


def test_restrict_to_shared_by_hand():
    m = match_classes(["angry", "calm", "neutral"], ["neutral", "bored", "anger"],
                      {"calm": "neutral"})
    assert m.shared == ("neutral", "angry")
    probs = np.array([[0.2, 0.3, 0.1], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    soft = np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.25, 0.75]])
    labels = np.array([0, 1, 2])
    view = restrict_to_shared(m, probs, soft, labels)
    np.testing.assert_array_equal(view.keep, [True, False, True])
    # model: neutral = calm + neutral, angry; renormalised over the two
    np.testing.assert_allclose(view.probs, [[0.4 / 0.6, 0.2 / 0.6], [0.9, 0.1]])
    np.testing.assert_allclose(view.soft, [[0.5, 0.5], [0.0, 1.0]])  # 'bored' mass dropped
    np.testing.assert_array_equal(view.labels, [0, 1])
    np.testing.assert_allclose(view.probs.sum(axis=1), 1.0)


def test_restrict_to_shared_checks_shapes_and_empty_match():
    m = match_classes(["a", "b"], ["b", "c"])
    with pytest.raises(ValueError, match=r"probs must be \(n, 2\)"):
        restrict_to_shared(m, np.ones((2, 3)), np.ones((2, 2)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="share no class"):
        restrict_to_shared(match_classes(["a"], ["c"]), np.ones((1, 1)), np.ones((1, 1)),
                           np.zeros(1, dtype=int))


def test_parse_class_map(tmp_path):
    assert parse_class_map(None) == {}
    assert parse_class_map(["calm=neutral", " excited = happy "]) == {
        "calm": "neutral", "excited": "happy"}
    (tmp_path / "map.yaml").write_text("calm: neutral\nboredom: neutral\n")
    assert parse_class_map([str(tmp_path / "map.yaml"), "x=y"]) == {
        "calm": "neutral", "boredom": "neutral", "x": "y"}
    (tmp_path / "map.json").write_text('{"calm": "neutral"}')
    assert parse_class_map(tmp_path / "map.json") == {"calm": "neutral"}
    with pytest.raises(UserDataError, match="expects old=new"):
        parse_class_map(["calm="])
    (tmp_path / "list.yaml").write_text("- calm\n")
    with pytest.raises(UserDataError, match="must be a mapping"):
        parse_class_map([str(tmp_path / "list.yaml")])
    (tmp_path / "bad.yaml").write_bytes(b"calm: neutr\xe4l\n")
    with pytest.raises(UserDataError, match="not UTF-8"):
        parse_class_map([str(tmp_path / "bad.yaml")])
    with pytest.raises(UserDataError, match="cannot read"):
        parse_class_map([str(tmp_path / "missing.yaml")])
