"""Cross-corpus evaluation across label sets (affectlab.engine.crosscorpus), worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from affectlab.engine.crosscorpus import evaluate_across_label_sets
from affectlab.engine.evaluate import SplitPredictions
from affectlab.errors import UserDataError

RUN = ["neutral", "calm", "happy", "sad", "angry"]          # a RAVDESS-like run
DATA = ["angry", "bored", "happy", "sad", "neutral"]        # an EmoDB-like dataset


def _pred(probs, labels, k_data=len(DATA)) -> SplitPredictions:
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels)
    n = len(labels)
    return SplitPredictions(split="all", probs=probs, embedding=np.random.default_rng(0).normal(size=(n, 3)),
                            uncertainty=np.zeros(n), latent=probs, soft=np.eye(k_data)[labels],
                            label=labels, item_id=np.array([f"i{i}" for i in range(n)]),
                            domain=np.array(["d"] * n), truth={})


def test_shared_classes_by_hand():
    # items: angry, bored, happy, sad, neutral, angry
    probs = [[0.1, 0.0, 0.1, 0.1, 0.7],    # angry → angry ✓
             [0.2, 0.2, 0.2, 0.2, 0.2],    # bored: dropped
             [0.1, 0.5, 0.3, 0.0, 0.1],    # happy: calm is unused, happy wins among shared ✓
             [0.4, 0.0, 0.0, 0.3, 0.3],    # sad → neutral ✗
             [0.6, 0.0, 0.2, 0.1, 0.1],    # neutral → neutral ✓
             [0.0, 0.0, 0.6, 0.0, 0.4]]    # angry → happy ✗
    out = evaluate_across_label_sets(_pred(probs, [0, 1, 2, 3, 4, 0]), RUN, DATA)
    assert out["n"] == 5
    assert out["accuracy"] == pytest.approx(3 / 5)
    # recall: angry 1/2, happy 1/1, sad 0/1, neutral 1/1 → UAR 0.625
    assert out["uar"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    cm = out["confusion_matrix"]
    assert cm["classes"] == ["angry", "happy", "sad", "neutral"]
    assert cm["matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    classes = out["classes"]
    assert classes["dropped"] == {"bored": 1} and classes["unused"] == ["calm"]
    assert classes["items_kept"] == 5 and classes["items_dropped"] == 1
    assert [c["class"] for c in classes["shared"]] == ["angry", "happy", "sad", "neutral"]
    assert classes["summary"] == ("classes kept: angry, happy, sad, neutral; dataset classes "
                                  "dropped: bored (1 items); run classes unused: calm; 5 of 6 "
                                  "items scored")


def test_a_class_map_merges_and_renames():
    probs = [[0.1, 0.5, 0.1, 0.1, 0.2],    # neutral item: calm+neutral = 0.6 → neutral ✓
             [0.0, 0.0, 0.9, 0.1, 0.0]]    # bored item read as sad → happy ✗
    out = evaluate_across_label_sets(_pred(probs, [4, 1]), RUN, DATA,
                                     {"calm": "neutral", "bored": "sad"})
    assert out["n"] == 2 and out["accuracy"] == pytest.approx(0.5)
    shared = {c["class"]: c for c in out["classes"]["shared"]}
    assert shared["neutral"]["run"] == ["neutral", "calm"]
    assert shared["sad"]["dataset"] == ["bored", "sad"]
    assert "neutral←neutral+calm" in out["classes"]["summary"]
    assert "bored+sad←sad" in out["classes"]["summary"]
    assert out["confusion_matrix"]["classes"] == ["angry", "bored+sad", "happy", "neutral"]
    assert out["classes"]["dropped"] == {} and out["classes"]["unused"] == []


def test_nothing_shared_is_a_clear_error():
    with pytest.raises(UserDataError, match=r"share no class, even through the synonym table; "
                       r"say which are the same with --class-map"):
        evaluate_across_label_sets(_pred([[1.0, 0.0]], [0], 2), ["low", "high"],
                                   ["angry", "bored"])
    with pytest.raises(UserDataError, match="no item of the dataset belongs to a class the run"):
        evaluate_across_label_sets(_pred([[0.2] * 5], [1]), RUN, DATA)
