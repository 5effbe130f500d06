"""Aggregation: Dawid–Skene, bias-corrected Likert means, soft labels and agreement."""

from __future__ import annotations

import time

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from affectlab.agreement import reliability_matrix
from affectlab.annotate.aggregate import (
    agreement_report,
    bias_corrected_means,
    dawid_skene,
    soft_labels,
    weighted_soft_labels,
)
from affectlab.labels import soft_labels_from_ratings


def simulate_categorical(rng, n_items=400, n_classes=4, per_item=5):
    """Raters: 4 good (acc .85), 4 spammers (uniform), 2 that swap classes 0 and 1 (biased)."""
    truth = rng.integers(0, n_classes, n_items)
    accs = [0.85] * 4 + [None] * 4 + ["swap"] * 2
    conf = []
    for a in accs:
        if a is None:
            conf.append(np.full((n_classes, n_classes), 1.0 / n_classes))
        elif a == "swap":
            c = np.full((n_classes, n_classes), 0.05 / (n_classes - 1))
            np.fill_diagonal(c, 0.95)
            c[[0, 1]] = c[[1, 0]]
            conf.append(c)
        else:
            c = np.full((n_classes, n_classes), (1 - a) / (n_classes - 1))
            np.fill_diagonal(c, a)
            conf.append(c)
    conf = np.array(conf)
    item, rater, label = [], [], []
    for i in range(n_items):
        for r in rng.choice(len(accs), per_item, replace=False):
            item.append(i)
            rater.append(r)
            label.append(rng.choice(n_classes, p=conf[r, truth[i]]))
    return np.array(item), np.array(rater), np.array(label), truth, conf


def majority(item, label, n_items, k, rng):
    votes = np.zeros((n_items, k))
    np.add.at(votes, (item, label), 1)
    noisy = votes + rng.random(votes.shape) * 1e-3  # random tie break
    return noisy.argmax(1)


def test_dawid_skene_beats_majority_vote():
    rng = np.random.default_rng(0)
    item, rater, label, truth, conf = simulate_categorical(rng)
    res = dawid_skene(item, rater, label, n_items=400, n_raters=10, n_classes=4)
    ds_acc = (res.posterior.argmax(1) == truth).mean()
    mv_acc = (majority(item, label, 400, 4, rng) == truth).mean()
    assert res.converged
    assert ds_acc > mv_acc + 0.03, (ds_acc, mv_acc)
    np.testing.assert_allclose(res.posterior.sum(1), 1.0)
    # the spammers' estimated confusion rows are near uniform, the good raters' diagonal high
    assert np.abs(res.confusion[4:8] - 0.25).mean() < 0.08
    assert np.diag(res.confusion[:4].mean(0)).min() > 0.75
    # the class-swapping raters are recognised: P(says 1 | true 0) high
    assert res.confusion[8:, 0, 1].min() > 0.7


def reference_ds(item, rater, label, n_items, n_raters, k, n_iter, smoothing):
    """Plain loops, same EM (init from vote fractions; M-step then E-step)."""
    post = np.zeros((n_items, k))
    for i, l in zip(item, label, strict=True):
        post[i, l] += 1
    post = np.array([p / p.sum() if p.sum() else np.full(k, 1 / k) for p in post])
    for _ in range(n_iter):
        prior = (post.sum(0) + smoothing) / (n_items + k * smoothing)
        conf = np.full((n_raters, k, k), smoothing)
        for i, r, l in zip(item, rater, label, strict=True):
            for j in range(k):
                conf[r, j, l] += post[i, j]
        conf /= conf.sum(2, keepdims=True)
        logt = np.tile(np.log(prior), (n_items, 1))
        for i, r, l in zip(item, rater, label, strict=True):
            for j in range(k):
                logt[i, j] += np.log(conf[r, j, l])
        post = np.exp(logt - logt.max(1, keepdims=True))
        post /= post.sum(1, keepdims=True)
    return post, conf


def test_dawid_skene_matches_loop_reference():
    rng = np.random.default_rng(3)
    item, rater, label, _, _ = simulate_categorical(rng, n_items=30, n_classes=3, per_item=3)
    for n_iter in (1, 2, 5):
        res = dawid_skene(item, rater, label, n_items=31, n_raters=10, n_classes=3,
                          max_iter=n_iter, tol=0.0, smoothing=0.1)
        post, conf = reference_ds(item, rater, label, 31, 10, 3, n_iter, 0.1)
        np.testing.assert_allclose(res.posterior, post, atol=1e-10)
        np.testing.assert_allclose(res.confusion, conf, atol=1e-10)
        assert res.n_iter == n_iter
    # item 30 has no ratings: it gets the prior
    np.testing.assert_allclose(res.posterior[30], res.prior, atol=1e-10)


def test_dawid_skene_unanimous_raters():
    item = np.repeat(np.arange(6), 3)
    rater = np.tile([0, 1, 2], 6)
    label = np.repeat([0, 1, 2, 0, 1, 2], 3)
    res = dawid_skene(item, rater, label, n_items=6, n_raters=3, n_classes=3)
    np.testing.assert_array_equal(res.posterior.argmax(1), [0, 1, 2, 0, 1, 2])
    assert res.posterior.max(1).min() > 0.95


@pytest.mark.parametrize("kwargs,match", [
    ({"label": [0, 5]}, "label must lie in 0..2"),
    ({"item": [0]}, "same length"),
    ({"rater": [[0, 1]]}, "rater must be 1-D"),
    ({"label": [0.5, 1]}, "integer codes"),
    ({"n_classes": 1}, "at least 2"),
    ({"n_items": 0}, "n_items must be a positive integer"),
    ({"smoothing": -1}, "smoothing"),
])
def test_dawid_skene_validation(kwargs, match):
    args = {"item": [0, 1], "rater": [0, 1], "label": [0, 1], "n_items": 2, "n_raters": 2,
            "n_classes": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dawid_skene(args.pop("item"), args.pop("rater"), args.pop("label"), **args)


def test_bias_corrected_means_exact_without_noise():
    """v = μ + b exactly, every rater on every item, biases summing to 0 → μ recovered."""
    mu = np.array([1.5, 2.0, 3.0, 4.5])
    b = np.array([-0.5, 0.0, 0.5])
    item = np.repeat(np.arange(4), 3)
    rater = np.tile(np.arange(3), 4)
    v = mu[item] + b[rater]
    mean, bias, _ = bias_corrected_means(item, rater, v, n_items=4, n_raters=3, shrinkage=0.0,
                                         n_iter=200)
    np.testing.assert_allclose(mean, mu, atol=1e-6)
    np.testing.assert_allclose(bias, b, atol=1e-6)


def test_bias_corrected_means_beat_raw_means():
    rng = np.random.default_rng(1)
    n_items, n_raters, per = 300, 20, 4
    mu = rng.uniform(1.5, 4.5, n_items)
    b = rng.normal(0, 0.8, n_raters)
    b -= b.mean()
    sd = np.where(np.arange(n_raters) < 5, 1.5, 0.3)         # 5 careless raters
    item = np.repeat(np.arange(n_items), per)
    rater = np.concatenate([rng.choice(n_raters, per, replace=False) for _ in range(n_items)])
    v = mu[item] + b[rater] + rng.normal(0, sd[rater])
    raw = np.bincount(item, weights=v) / per
    mean, bias, weight = bias_corrected_means(item, rater, v, n_items=n_items,
                                              n_raters=n_raters)
    rmse = lambda x: np.sqrt(np.mean((x - mu) ** 2))  # noqa: E731
    assert rmse(mean) < 0.75 * rmse(raw), (rmse(mean), rmse(raw))
    assert np.corrcoef(bias, b)[0, 1] > 0.9
    assert weight[:5].mean() < weight[5:].mean() / 3          # careless raters down-weighted


def test_bias_corrected_means_validation_and_unrated():
    with pytest.raises(ValueError, match="finite"):
        bias_corrected_means([0], [0], [np.nan], n_items=1, n_raters=1)
    with pytest.raises(ValueError, match="same shape"):
        bias_corrected_means([0, 1], [0], [1.0], n_items=2, n_raters=1)
    mean, _, _ = bias_corrected_means([0], [0], [9.0], n_items=2, n_raters=1, low=1, high=5)
    assert mean[0] == 5 and np.isnan(mean[1])


SCALES = {"category": {"type": "nominal", "names": ["a", "b", "c"]},
          "valence": {"type": "likert", "low": 1, "high": 5},
          "intensity": {"type": "ordinal", "names": ["1", "2", "3"]}}


def long_table(rng, n_items=50, n_raters=8, per=4):
    rows = []
    for i in range(n_items):
        for r in rng.choice(n_raters, per, replace=False):
            rows.append((f"i{i}", f"r{r}", "category", int(rng.integers(0, 3))))
            rows.append((f"i{i}", f"r{r}", "valence", int(rng.integers(1, 6))))
            rows.append((f"i{i}", f"r{r}", "intensity", int(rng.integers(0, 3))))
    return pd.DataFrame(rows, columns=["item_id", "rater_id", "scale", "value"])


def test_soft_and_weighted_labels_shapes(rng):
    table = long_table(rng)
    ids = [f"i{i}" for i in range(51)]                          # i50 has no ratings
    soft = soft_labels(table, ids, SCALES)
    for name, meta in SCALES.items():
        np.testing.assert_array_equal(soft[name],
                                      soft_labels_from_ratings(table, ids, name, meta))
        w = weighted_soft_labels(table, ids, name, meta)
        assert w.shape == soft[name].shape
        assert np.isnan(w[50]).all() and not np.isnan(w[:50]).any()
        np.testing.assert_allclose(w[:50].sum(1), 1.0)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=6))
def test_weighted_likert_single_rater_equals_plain(values):
    """One rater → no other rater to compare: the bias is 0 and the label equals SPEC §1's."""
    table = pd.DataFrame({"item_id": [f"i{k}" for k in range(len(values))], "rater_id": "r",
                          "scale": "valence", "value": values})
    ids = table["item_id"].tolist()
    meta = SCALES["valence"]
    w = weighted_soft_labels(table, ids, "valence", meta)
    plain = soft_labels_from_ratings(table, ids, "valence", meta)
    np.testing.assert_allclose(w.mean(0), plain.mean(0), atol=1e-9)


def test_agreement_report_matches_krippendorff(rng):
    table = long_table(rng)
    report = agreement_report(table, SCALES)
    for name, level in (("category", "nominal"), ("valence", "interval"),
                        ("intensity", "ordinal")):
        matrix, _, _ = reliability_matrix(table, name)
        want = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert report.levels[name] == level
        assert report.alpha[name] == pytest.approx(want, abs=1e-9)
    assert report.alpha_mean == pytest.approx(np.mean(list(report.alpha.values())))
    assert set(report.raters["scale"]) == set(SCALES)
    assert len(report.raters) == 8 * 3
    assert report.raters["gold_n"].eq(0).all()


def test_agreement_is_fast_enough_for_live_refresh(rng):
    """10k ratings: measured and printed (see the report), not asserted."""
    table = long_table(rng, n_items=1250, n_raters=50, per=4)   # 1250×4×... ≥ 10k rows
    t0 = time.perf_counter()
    report = agreement_report(table, SCALES)
    dt = time.perf_counter() - t0
    print(f"agreement_report on {len(table)} ratings: {dt * 1000:.0f} ms")
    assert report.n_ratings == len(table) >= 10_000


def test_reliability_weighted_labels_and_gold_refuse_anonymous_votes(rng):
    from affectlab.agreement import AnonymousRatingsError
    from affectlab.annotate.aggregate import gold_scores

    table = long_table(rng)
    ids = sorted(set(table["item_id"]))
    anonymous = table.assign(rater_id=None)
    for name, statistic in (("category", "Dawid–Skene"), ("valence", "bias-corrected means")):
        with pytest.raises(AnonymousRatingsError, match=f"scale '{name}'.*\\({statistic}\\)"):
            weighted_soft_labels(anonymous, ids, name, SCALES[name])
    gold = pd.DataFrame({"item_id": [ids[0]], "scale": ["category"], "value": [0.0]})
    with pytest.raises(AnonymousRatingsError, match="gold scores"):
        gold_scores(anonymous, gold, SCALES)
    # typed scales and the contract's dicts give the same labels
    from affectlab.scales import as_scale

    np.testing.assert_array_equal(
        weighted_soft_labels(table, ids, "category", as_scale(SCALES["category"])),
        weighted_soft_labels(table, ids, "category", SCALES["category"]))
