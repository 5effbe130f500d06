"""Soft labels (SPEC §1): Likert conversion, votes → distributions with the FER+ rule, label
similarity, entropy, majority labels, and the path from the long ratings table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from affectlab.labels import (
    FERPLUS_COLUMNS,
    FERPLUS_EMOTIONS,
    ambiguity,
    entropy,
    ferplus_votes_to_distribution,
    is_ferplus,
    is_tied,
    label_similarity,
    likert_means,
    likert_to_soft,
    majority_label,
    soft_labels_from_ratings,
    votes_to_distribution,
)

NAN = np.nan


def distributions(k: int, n: int | None = None):
    """Hypothesis strategy: distributions over k classes (shape (k,) or (n, k)), with zeros."""
    shape = (k,) if n is None else (n, k)
    weights = arrays(np.float64, shape, elements=st.floats(0.0, 10.0).map(
        lambda w: w if w > 1e-3 else 0.0))

    def normalise(w):
        w = w.copy()
        w[..., 0] += 1e-2  # keeps every row summable to 1
        return w / w.sum(axis=-1, keepdims=True)

    return weights.map(normalise)


# --------------------------------------------------------------------------- likert_to_soft


@pytest.mark.parametrize("rating, expected", [
    (1, [1.0, 0.0]), (2, [0.75, 0.25]), (3, [0.5, 0.5]), (4, [0.25, 0.75]), (5, [0.0, 1.0]),
])
def test_likert_single_rating_on_1_to_5(rating, expected):
    np.testing.assert_allclose(likert_to_soft([rating]), expected)


def test_likert_item_label_is_mean_over_raters_and_skips_nan():
    ratings = np.array([
        [1, 2, NAN],      # mean of [1, 0] and [.75, .25]
        [2, NAN, NAN],    # NaN skipped, not counted as a zero rating
        [2, NAN, 4],
        [5, 5, 5],
    ])
    expected = [[0.875, 0.125], [0.75, 0.25], [0.5, 0.5], [0.0, 1.0]]
    np.testing.assert_allclose(likert_to_soft(ratings), expected)


def test_likert_other_scales():
    np.testing.assert_allclose(likert_to_soft([7], low=0, high=10), [0.3, 0.7])
    np.testing.assert_allclose(likert_to_soft([0, 3], low=-3, high=3), [0.25, 0.75])
    np.testing.assert_allclose(likert_to_soft([2.5]), [0.625, 0.375])  # averaged ratings allowed


def test_likert_all_missing_item_is_nan_row():
    out = likert_to_soft([[3, 4], [NAN, NAN]])
    np.testing.assert_allclose(out[0], [0.375, 0.625])
    assert np.isnan(out[1]).all()


def test_likert_keeps_leading_shape():
    r = np.random.default_rng(0).integers(1, 6, size=(4, 3, 5)).astype(float)
    assert likert_to_soft(r).shape == (4, 3, 2)
    assert likert_to_soft([1, 2, 3]).shape == (2,)


@given(arrays(np.float64, (6, 4), elements=st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, NAN])))
def test_likert_equals_mean_of_per_rating_conversions(r):
    out = likert_to_soft(r)
    for i, row in enumerate(r):
        present = row[~np.isnan(row)]
        if present.size == 0:
            assert np.isnan(out[i]).all()
            continue
        # Convert each rating on its own, then average: the paper's procedure, step by step.
        per_rating = np.array([[(5 - v) / 4, (v - 1) / 4] for v in present])
        np.testing.assert_allclose(out[i], per_rating.mean(axis=0), atol=1e-12)
        assert out[i].sum() == pytest.approx(1.0)
        assert ((out[i] >= 0) & (out[i] <= 1)).all()


@pytest.mark.parametrize("ratings, match", [
    ([0, 3], r"ratings must lie in \[1, 5\]; found 0"),
    ([[3, 6]], r"ratings must lie in \[1, 5\]; found 6 at index \(0, 1\)"),
    (5, r"ratings must be at least 1-D"),
    (np.zeros((3, 0)), r"ratings must have at least one rater"),
    ([1, np.inf], r"ratings contains infinite"),
])
def test_likert_bad_ratings(ratings, match):
    with pytest.raises(ValueError, match=match):
        likert_to_soft(ratings)


def test_likert_bad_ratings_type():
    with pytest.raises(TypeError, match="ratings must be numeric"):
        likert_to_soft(["a", "b"])


@pytest.mark.parametrize("low, high", [(5, 1), (3, 3), (NAN, 5)])
def test_likert_bad_bounds(low, high):
    with pytest.raises(ValueError, match="low"):
        likert_to_soft([3], low=low, high=high)


# --------------------------------------------------------------------------- votes


def test_votes_to_distribution_known_values():
    out = votes_to_distribution([[1, 3, 0], [0, 2, 2], [5, 0, 0]])
    np.testing.assert_allclose(out, [[0.25, 0.75, 0], [0, 0.5, 0.5], [1, 0, 0]])


@given(arrays(np.int64, (5, 4), elements=st.integers(0, 20)))
def test_votes_to_distribution_rows_sum_to_one_and_keep_proportions(counts):
    assume((counts.sum(axis=1) > 0).all())
    out = votes_to_distribution(counts)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out * counts.sum(axis=1, keepdims=True), counts, atol=1e-9)


def test_votes_zero_row_raises_or_is_nan():
    with pytest.raises(ValueError, match="counts row 1 has no votes"):
        votes_to_distribution([[1, 1], [0, 0]])
    out = votes_to_distribution([[1, 1], [0, 0]], empty="nan")
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    assert np.isnan(out[1]).all()


@pytest.mark.parametrize("counts, match", [
    ([[1, -1]], r"counts must be non-negative vote counts; found -1 at \[0, 1\]"),
    ([1, 2, 3], r"counts must be 2-D"),
    ([[1, NAN]], r"counts contains NaN"),
    (np.zeros((2, 0)), r"counts must have at least one class"),
])
def test_votes_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        votes_to_distribution(counts)


def test_votes_bad_names_and_empty():
    with pytest.raises(ValueError, match="names must have one entry per column"):
        votes_to_distribution([[1, 2]], names=["a", "b", "c"])
    with pytest.raises(ValueError, match="empty must be"):
        votes_to_distribution([[1, 2]], empty="zero")


# --------------------------------------------------------------------------- FER+


def _fer(neutral=0, happiness=0, surprise=0, sadness=0, anger=0, disgust=0, fear=0,
         contempt=0, unknown=0, nf=0):
    return [neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, nf]


def test_ferplus_drops_unknown_and_not_a_face_before_normalising():
    counts = [_fer(neutral=4, happiness=2, contempt=1, unknown=1, nf=2),
              _fer(sadness=1, unknown=9)]
    dist, keep = ferplus_votes_to_distribution(counts)
    assert dist.shape == (2, 8)
    np.testing.assert_allclose(dist[0], [4 / 7, 2 / 7, 0, 0, 0, 0, 0, 1 / 7])
    np.testing.assert_allclose(dist[1], [0, 0, 0, 1, 0, 0, 0, 0])  # unknown does not dilute
    assert keep.tolist() == [True, True]


def test_ferplus_excludes_items_mostly_not_a_face():
    counts = [
        _fer(neutral=4, nf=6),          # 6 of 10 not-a-face: excluded
        _fer(neutral=4, unknown=1, nf=5),  # exactly half: not a majority, kept
        _fer(unknown=10),               # no emotion vote at all: excluded
        _fer(),                         # no votes: excluded
        _fer(anger=7, nf=3),
    ]
    dist, keep = ferplus_votes_to_distribution(counts)
    assert keep.tolist() == [False, True, False, False, True]
    assert np.isnan(dist[~keep]).all()
    np.testing.assert_allclose(dist[1], np.eye(8)[0])
    np.testing.assert_allclose(dist[keep].sum(axis=1), 1.0)
    # A stricter threshold excludes the 3-of-10 item too.
    _, keep_strict = ferplus_votes_to_distribution(counts, max_not_a_face=0.2)
    assert keep_strict.tolist() == [False, False, False, False, False]


def test_ferplus_bad_input():
    with pytest.raises(ValueError, match="counts must have the 10 FER"):
        ferplus_votes_to_distribution(np.ones((2, 8)))
    with pytest.raises(ValueError, match="max_not_a_face"):
        ferplus_votes_to_distribution([_fer(neutral=1)], max_not_a_face=1.0)
    with pytest.raises(ValueError, match="counts must be non-negative"):
        ferplus_votes_to_distribution([_fer(neutral=-1)])


def test_votes_to_distribution_applies_ferplus_rule_by_names():
    counts = np.array([_fer(neutral=4, happiness=2, nf=1), _fer(fear=1, nf=9)], dtype=float)
    expected, keep = ferplus_votes_to_distribution(counts)
    out = votes_to_distribution(counts, names=FERPLUS_COLUMNS)
    np.testing.assert_allclose(out, expected)
    assert np.isnan(out[1]).all() and not keep[1]
    # Names in another order, other spelling: the columns are matched by name.
    order = np.random.default_rng(3).permutation(10)
    names = [FERPLUS_COLUMNS[i].upper() for i in order]
    names[names.index("NOT-A-FACE")] = "NF"
    np.testing.assert_allclose(votes_to_distribution(counts[:, order], names=names), expected)


def test_is_ferplus():
    assert is_ferplus(FERPLUS_COLUMNS)
    assert is_ferplus(list(FERPLUS_EMOTIONS) + ["Unknown", "not_a_face"])
    assert not is_ferplus(FERPLUS_EMOTIONS)
    assert not is_ferplus(list(FERPLUS_EMOTIONS) + ["unknown", "other"])
    assert not is_ferplus(None)


# --------------------------------------------------------------------------- similarity


@pytest.mark.parametrize("a, b, expected", [
    ([1, 0], [0, 1], 0.0),
    ([1, 0], [1, 0], 2.0),
    ([0.75, 0.25], [0.25, 0.75], 1.0),          # TV = 0.5
    ([0.5, 0.3, 0.2], [0.2, 0.3, 0.5], 1.4),    # TV = 0.3
    ([1, 0, 0], [0.5, 0.25, 0.25], 1.0),        # TV = 0.5
])
def test_label_similarity_known_values(a, b, expected):
    assert label_similarity(a, b) == pytest.approx(expected)
    assert isinstance(label_similarity(a, b), float)


def test_label_similarity_broadcasts_to_pairwise_matrix():
    y = np.array([[1, 0], [0.75, 0.25], [0.5, 0.5]])
    c = label_similarity(y[:, None, :], y[None, :, :])
    expected = [[2, 1.5, 1], [1.5, 2, 1.5], [1, 1.5, 2]]
    np.testing.assert_allclose(c, expected)
    assert label_similarity(y, y[0]).shape == (3,)


@given(a=distributions(4), b=distributions(4), c=distributions(4))
def test_label_similarity_properties(a, b, c):
    ab = label_similarity(a, b)
    assert 0.0 <= ab <= 2.0
    assert ab == pytest.approx(label_similarity(b, a), abs=1e-12)
    assert label_similarity(a, a) == pytest.approx(2.0)
    if np.abs(a - b).sum() > 1e-9:
        assert ab < 2.0
    # 2 − C = 2·TV is a metric: triangle inequality.
    assert (2 - label_similarity(a, c)) <= (2 - ab) + (2 - label_similarity(b, c)) + 1e-9


@given(arrays(np.float64, (2, 3), elements=st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0])))
def test_label_similarity_of_likert_labels_is_scaled_mean_distance(r):
    # f-SPL §4.1: for Likert soft labels, TV is the distance of the mean ratings over hi − lo.
    y = likert_to_soft(r)
    m = r.mean(axis=1)
    assert label_similarity(y[0], y[1]) == pytest.approx(2 - 2 * abs(m[0] - m[1]) / 4)


@pytest.mark.parametrize("a, b, match", [
    ([0.5, 0.6], [0.5, 0.5], r"a rows must sum to 1"),
    ([0.5, 0.5], [1.2, -0.2], r"b has negative entries"),
    ([0.5, 0.5], [1.0, 0.0, 0.0], r"a and b must have the same number of classes"),
    (np.full((3, 2), 0.5), np.full((4, 2), 0.5), r"a and b leading dims must broadcast"),
    ([NAN, 1.0], [0.5, 0.5], r"a contains NaN"),
    (1.0, [1.0], r"a must be at least 1-D"),
])
def test_label_similarity_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        label_similarity(a, b)


def test_label_similarity_accepts_rounding_within_tolerance():
    assert label_similarity([0.5, 0.50005], [0.5, 0.5]) == pytest.approx(2.0, abs=1e-3)


# --------------------------------------------------------------------------- entropy


def test_entropy_known_values():
    p = np.array([[0.25] * 4, [1, 0, 0, 0], [0.5, 0.5, 0, 0]])
    np.testing.assert_allclose(entropy(p), [np.log(4), 0.0, np.log(2)])
    np.testing.assert_allclose(entropy(p, normalize=True), [1.0, 0.0, 0.5])
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert entropy([0.75, 0.25]) == pytest.approx(h)
    assert ambiguity([0.75, 0.25]) == pytest.approx(h / np.log(2))
    assert ambiguity([1.0]) == 0.0


@given(distributions(5, n=3))
def test_entropy_agrees_with_scipy_and_ambiguity_in_unit_interval(p):
    np.testing.assert_allclose(entropy(p), scipy.stats.entropy(p, axis=1), atol=1e-12)
    a = ambiguity(p)
    assert ((a >= 0) & (a <= 1)).all()


def test_entropy_bad_input():
    with pytest.raises(ValueError, match="p rows must sum to 1"):
        entropy([0.2, 0.2])
    with pytest.raises(ValueError, match="p contains NaN"):
        ambiguity([[NAN, NAN]])


# --------------------------------------------------------------------------- majority / ties


def test_majority_label_and_ties():
    p = np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2], [0.1, 0.45, 0.45], [1 / 3] * 3])
    assert majority_label(p).tolist() == [1, 0, 1, 0]
    assert majority_label(p, ties="none").tolist() == [1, -1, -1, -1]
    assert is_tied(p).tolist() == [False, True, True, True]


def test_majority_label_on_counts_and_near_ties():
    assert majority_label([[3, 3, 4], [5, 1, 0]]).tolist() == [2, 0]
    near = [0.5 - 1e-13, 0.5 + 1e-13]
    assert is_tied(near) and majority_label(near) == 0
    assert not is_tied([0.49, 0.51]) and majority_label([0.49, 0.51]) == 1
    assert majority_label(np.full((2, 3, 4), 0.25), ties="none").shape == (2, 3)


@pytest.mark.parametrize("p, kwargs, match", [
    ([[0.5, -0.1]], {}, r"p must be non-negative"),
    ([[NAN, 0.5]], {}, r"p contains NaN"),
    ([[0.5, 0.5]], {"ties": "random"}, r"ties must be"),
    (0.5, {}, r"p must have shape \(\.\.\., K\)"),
])
def test_majority_label_bad_input(p, kwargs, match):
    with pytest.raises(ValueError, match=match):
        majority_label(p, **kwargs)


def test_is_tied_bad_input():
    with pytest.raises(ValueError, match="p must be non-negative"):
        is_tied([[-1, 2]])


# --------------------------------------------------------------------------- ratings table

CATEGORY = {"type": "nominal", "names": ["x", "y", "z"]}
VALENCE = {"type": "likert", "low": 1, "high": 5}
META = {"scales": {"category": CATEGORY, "valence": VALENCE,
                   "intensity": {"type": "ordinal", "names": ["1", "2", "3", "4", "5"]}}}


def _table(rows):
    return pd.DataFrame(rows, columns=["item_id", "rater_id", "scale", "value"])


@pytest.fixture
def small_ratings() -> pd.DataFrame:
    return _table([
        ("a", "r1", "category", 0), ("a", "r2", "category", 0), ("a", "r3", "category", 1),
        ("b", "r1", "category", 2),
        ("zz", "r1", "category", 1),                       # item outside item_ids: ignored
        ("a", "r1", "valence", 2), ("a", "r2", "valence", 4),
        ("b", "r3", "valence", 2),
        ("b", "r1", "intensity", 4),
    ])


def test_soft_labels_nominal_known_values(small_ratings):
    y = soft_labels_from_ratings(small_ratings, ["a", "b", "c"], "category", CATEGORY)
    np.testing.assert_allclose(y[:2], [[2 / 3, 1 / 3, 0], [0, 0, 1]])
    assert np.isnan(y[2]).all()  # no ratings → NaN row


def test_soft_labels_likert_known_values(small_ratings):
    y = soft_labels_from_ratings(small_ratings, ["c", "b", "a"], "valence", META)  # whole meta
    assert np.isnan(y[0]).all()
    np.testing.assert_allclose(y[1:], [[0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_allclose(likert_means(small_ratings, ["c", "b", "a"], "valence"),
                               [NAN, 2.0, 3.0])


def test_soft_labels_ordinal_is_a_vote_histogram(small_ratings):
    y = soft_labels_from_ratings(small_ratings, ["a", "b"], "intensity", META)
    assert np.isnan(y[0]).all()
    np.testing.assert_allclose(y[1], np.eye(5)[4])


def test_soft_labels_agree_with_array_functions_on_random_table(rng):
    n_items, n_raters = 40, 6
    ids = np.array([f"item{i}" for i in range(n_items)])
    wide_cat = rng.integers(0, 3, (n_items, n_raters)).astype(float)
    wide_val = rng.integers(1, 6, (n_items, n_raters)).astype(float)
    for wide in (wide_cat, wide_val):
        wide[rng.random(wide.shape) < 0.4] = NAN
    wide_cat[5] = NAN                               # one item without category votes
    rows = []
    for scale, wide in (("category", wide_cat), ("valence", wide_val)):
        i, r = np.nonzero(~np.isnan(wide))
        rows.append(pd.DataFrame({"item_id": ids[i], "rater_id": r, "scale": scale,
                                  "value": wide[i, r]}))
    table = pd.concat(rows).sample(frac=1.0, random_state=0)   # order must not matter
    soft = soft_labels_from_ratings(table, ids, "valence", VALENCE)
    np.testing.assert_allclose(soft, likert_to_soft(wide_val), equal_nan=True)
    counts = np.stack([(wide_cat == k).sum(axis=1) for k in range(3)], axis=1)
    dist = soft_labels_from_ratings(table, ids, "category", CATEGORY)
    np.testing.assert_allclose(dist, votes_to_distribution(counts, empty="nan"), equal_nan=True)
    assert np.isnan(dist[5]).all()


def test_soft_labels_ferplus_scale():
    meta = {"type": "nominal", "names": list(FERPLUS_COLUMNS)}
    votes = [("p", 0)] * 3 + [("p", 1)] + [("p", 9)] * 2 + [("q", 9)] * 8 + [("q", 0)] * 2
    table = _table([(item, f"r{j}", "ferplus", v) for j, (item, v) in enumerate(votes)])
    y = soft_labels_from_ratings(table, ["p", "q"], "ferplus", meta)
    assert y.shape == (2, 8)
    np.testing.assert_allclose(y[0], [0.75, 0.25, 0, 0, 0, 0, 0, 0])
    assert np.isnan(y[1]).all()                       # 8 of 10 not-a-face: excluded


@pytest.mark.parametrize("rows, scale, meta, match", [
    ([("a", "r", "category", 3)], "category", CATEGORY, r"ratings\['value'\].*\[0, 2\]"),
    ([("a", "r", "category", 1.5)], "category", CATEGORY, r"integer class indices"),
    ([("a", "r", "valence", 0)], "valence", VALENCE, r"ratings\['value'\].*\[1, 5\]"),
    ([("a", "r", "valence", "high")], "valence", VALENCE, r"ratings\['value'\].*non-numeric"),
    ([("a", "r", "valence", 3)], "arousal", META, r"scale 'arousal' is not in scale_meta"),
    ([("a", "r", "valence", 3)], "valence", {"type": "likert", "low": 1},
     r"a likert scale needs 'high'"),
    ([("a", "r", "category", 0)], "category", {"type": "nominal"}, r"a nominal scale needs 'names'"),
    ([("a", "r", "category", 0)], "category", {"type": "nominal", "names": []},
     r"needs a non-empty 'names'"),
    ([("a", "r", "category", 0)], "category", {"type": "circular"}, r"scale_meta\['type'\]"),
    ([("a", "r", "valence", 3)], "valence", {"type": "likert", "low": 5, "high": 1},
     r"low must be < high"),
])
def test_soft_labels_bad_ratings_or_meta(rows, scale, meta, match):
    with pytest.raises(ValueError, match=match):
        soft_labels_from_ratings(_table(rows), ["a"], scale, meta)


def test_soft_labels_bad_arguments(small_ratings):
    with pytest.raises(TypeError, match="ratings must be a pandas DataFrame"):
        soft_labels_from_ratings(small_ratings.to_numpy(), ["a"], "category", CATEGORY)
    with pytest.raises(ValueError, match=r"ratings is missing column\(s\) \['scale'\]"):
        soft_labels_from_ratings(small_ratings.drop(columns="scale"), ["a"], "category",
                                 CATEGORY)
    with pytest.raises(ValueError, match="item_ids must be unique; 'a' repeats"):
        soft_labels_from_ratings(small_ratings, ["a", "b", "a"], "category", CATEGORY)
    with pytest.raises(ValueError, match="item_ids must be 1-D"):
        soft_labels_from_ratings(small_ratings, [["a"], ["b"]], "category", CATEGORY)
    with pytest.raises(TypeError, match="item_ids must be a 1-D sequence"):
        soft_labels_from_ratings(small_ratings, "ab", "category", CATEGORY)
    with pytest.raises(TypeError, match="scale_meta must be a dict"):
        soft_labels_from_ratings(small_ratings, ["a"], "category", "nominal")


def test_likert_means_checks_range_when_meta_given(small_ratings):
    np.testing.assert_allclose(likert_means(small_ratings, ["a", "b"], "category", META),
                               [1 / 3, 2.0])
    with pytest.raises(ValueError, match=r"ratings\['value'\] \(scale 'valence'\)"):
        likert_means(small_ratings, ["a"], "valence", {"type": "likert", "low": 3, "high": 5})


def test_soft_labels_from_ratings_honours_the_weight_column():
    """A crowd distribution stored as weighted rows (RAF-DB) comes back as itself."""
    import pandas as pd

    from affectlab.labels import likert_means, soft_labels_from_ratings

    ratings = pd.DataFrame({
        "item_id": ["a", "a", "a", "b", "b"],
        "rater_id": ["crowd"] * 3 + ["r1", "r2"],
        "scale": ["category"] * 3 + ["valence", "valence"],
        "value": [0, 1, 2, 2, 4],
        "weight": [0.6, 0.3, 0.1, 3.0, 1.0],
    })
    meta = {"type": "nominal", "names": ["x", "y", "z"]}
    dist = soft_labels_from_ratings(ratings, ["a"], "category", meta)
    np.testing.assert_allclose(dist, [[0.6, 0.3, 0.1]])
    # weighted mean of 2 (×3) and 4 (×1) is 2.5 → [(5-2.5)/4, (2.5-1)/4]
    np.testing.assert_allclose(likert_means(ratings, ["b"], "valence"), [2.5])
    soft = soft_labels_from_ratings(ratings, ["b"], "valence", {"type": "likert", "low": 1, "high": 5})
    np.testing.assert_allclose(soft, [[0.625, 0.375]])
    with pytest.raises(ValueError, match="weight"):
        soft_labels_from_ratings(ratings.assign(weight=-1.0), ["a"], "category", meta)
