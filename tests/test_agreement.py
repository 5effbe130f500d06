"""Inter-rater agreement (SPEC §1): Krippendorff's α from the long ratings table and per-rater
agreement with the leave-one-out consensus."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from affectlab.agreement import (
    LEVELS,
    default_level,
    krippendorff_alpha,
    rater_agreement,
    reliability_matrix,
)

NAN = np.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 coders × 12 units
# example with missing values. Published: nominal .743, ordinal .815, interval .849, ratio .797.
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])
PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def long_table(matrix: np.ndarray, raters=None, scale: str | None = None) -> pd.DataFrame:
    """Raters × items matrix (NaN = not rated) → the contract's long ratings table."""
    r, i = np.nonzero(~np.isnan(matrix))
    raters = np.asarray(raters if raters is not None else [f"c{k}" for k in range(len(matrix))])
    df = pd.DataFrame({"item_id": [f"u{j:03d}" for j in i], "rater_id": raters[r],
                       "value": matrix[r, i]})
    if scale is not None:
        df["scale"] = scale
    return df


def nominal_alpha_by_hand(matrix: np.ndarray) -> float:
    """Nominal α from its definition: coincidences of pairable values within units."""
    values = np.unique(matrix[~np.isnan(matrix)])
    o = {(c, k): 0.0 for c in values for k in values}
    for unit in matrix.T:
        v = unit[~np.isnan(unit)]
        if len(v) < 2:
            continue
        for a, b in itertools.permutations(range(len(v)), 2):
            o[(v[a], v[b])] += 1.0 / (len(v) - 1)
    n_c = {c: sum(o[(c, k)] for k in values) for c in values}
    n = sum(n_c.values())
    observed = sum(o[(c, k)] for c in values for k in values if c != k)
    expected = sum(n_c[c] * n_c[k] for c in values for k in values if c != k)
    return 1.0 - (n - 1) * observed / expected


# --------------------------------------------------------------------------- alpha


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_reproduces_krippendorff_2011_example(level):
    alpha = krippendorff_alpha(long_table(KRIPPENDORFF_2011), level=level)
    assert round(alpha, 3) == PUBLISHED[level]


def test_nominal_alpha_matches_hand_computation():
    df = long_table(KRIPPENDORFF_2011)
    by_hand = nominal_alpha_by_hand(KRIPPENDORFF_2011)
    assert by_hand == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(df, level="nominal") == pytest.approx(by_hand, abs=1e-12)


def test_tiny_alpha_worked_by_hand():
    # Two coders, four units: (1,1), (1,2), (2,2), (2,2). Pairable values n = 8; n_1 = 3, n_2 = 5.
    # Observed disagreeing pairs: unit 2 contributes o_12 = o_21 = 1 → D_o ∝ 2.
    # α = 1 − (n − 1)·Σ_{c≠k} o_ck / Σ_{c≠k} n_c·n_k = 1 − 7·2 / (2·3·5) = 1 − 14/30.
    m = np.array([[1, 1, 2, 2], [1, 2, 2, 2]], dtype=float)
    assert krippendorff_alpha(long_table(m), level="nominal") == pytest.approx(1 - 14 / 30)
    # Interval: δ² = 1 for the one disagreeing pair, the same arithmetic.
    assert krippendorff_alpha(long_table(m), level="interval") == pytest.approx(1 - 14 / 30)


@given(
    arrays(np.float64, (5, 9), elements=st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, NAN])),
    st.sampled_from(LEVELS),
)
def test_alpha_agrees_with_package_on_reliability_matrix(matrix, level):
    assume(not np.isnan(matrix).all())   # an empty table is an error, tested elsewhere
    df = long_table(matrix)
    pairable = (~np.isnan(matrix)).sum(axis=0) >= 2
    paired_values = np.unique(matrix[:, pairable][~np.isnan(matrix[:, pairable])])
    ours = krippendorff_alpha(df, level=level)
    if len(paired_values) < 2:
        assert np.isnan(ours)        # α undefined: no pair, or all pairs one value
        return
    ref = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    assert ours == pytest.approx(ref, abs=1e-10)


def test_alpha_of_perfect_agreement_is_one():
    m = np.array([[1, 2, 3, 4, NAN], [1, 2, 3, 4, 5], [NAN, 2, 3, 4, 5]])
    for level in LEVELS:
        assert krippendorff_alpha(long_table(m), level=level) == pytest.approx(1.0)


def test_alpha_undefined_is_nan():
    same = np.array([[3, 3, 3], [3, 3, 3]], dtype=float)
    unpaired = np.array([[1, NAN, NAN], [NAN, 2, NAN]])
    assert np.isnan(krippendorff_alpha(long_table(same)))
    assert np.isnan(krippendorff_alpha(long_table(unpaired)))


def test_alpha_value_domain():
    df = long_table(KRIPPENDORFF_2011)
    wide = krippendorff_alpha(df, level="ordinal", value_domain=[0, 1, 2, 3, 4, 5, 6, 7])
    assert wide == pytest.approx(krippendorff_alpha(df, level="ordinal"))
    with pytest.raises(ValueError, match="value_domain must contain every rating value; 5"):
        krippendorff_alpha(df, level="ordinal", value_domain=[1, 2, 3, 4])


def test_alpha_picks_one_scale():
    valence = long_table(KRIPPENDORFF_2011, scale="valence")
    noise = long_table(np.random.default_rng(0).integers(1, 6, (4, 12)).astype(float),
                       scale="arousal")
    both = pd.concat([valence, noise], ignore_index=True)
    assert krippendorff_alpha(both, "valence") == pytest.approx(0.743, abs=5e-4)
    with pytest.raises(ValueError, match="ratings holds several scales"):
        krippendorff_alpha(both)
    with pytest.raises(ValueError, match="ratings has no rows for scale 'dominance'"):
        krippendorff_alpha(both, "dominance")


def test_reliability_matrix_round_trip():
    raters = ["d", "a", "c", "b"]   # unsorted ids: rows come back sorted
    df = long_table(KRIPPENDORFF_2011, raters=raters)
    matrix, rater_ids, item_ids = reliability_matrix(df)
    assert list(rater_ids) == ["a", "b", "c", "d"]
    assert list(item_ids) == [f"u{j:03d}" for j in range(12)]
    order = np.argsort(raters)
    np.testing.assert_array_equal(matrix, KRIPPENDORFF_2011[order])


def test_duplicate_ratings_raise_or_keep_last():
    df = long_table(KRIPPENDORFF_2011)
    extra = pd.DataFrame({"item_id": ["u005"], "rater_id": ["c0"], "value": [4.0]})
    dup = pd.concat([df, extra], ignore_index=True)
    with pytest.raises(ValueError, match="more than one rating by rater 'c0' for item 'u005'"):
        krippendorff_alpha(dup)
    matrix, _, _ = reliability_matrix(dup, duplicates="last")
    assert matrix[0, 5] == 4.0
    with pytest.raises(ValueError, match="duplicates must be"):
        reliability_matrix(dup, duplicates="first")


@pytest.mark.parametrize("mutate, match", [
    (lambda df: df.drop(columns="rater_id"), r"ratings is missing column\(s\) \['rater_id'\]"),
    (lambda df: df.assign(value=df["value"].astype(object).where(df.index != 2, "x")),
     r"ratings\['value'\] must be numeric and finite; row 2 is 'x'"),
    (lambda df: df.assign(value=df["value"].where(df.index != 0, np.inf)),
     r"ratings\['value'\] must be numeric and finite; row 0"),
    (lambda df: df.iloc[:0], r"ratings has no rows"),
])
def test_agreement_bad_tables(mutate, match):
    bad = mutate(long_table(KRIPPENDORFF_2011))
    with pytest.raises(ValueError, match=match):
        krippendorff_alpha(bad)
    with pytest.raises(ValueError, match=match):
        rater_agreement(bad)


def test_agreement_bad_arguments():
    df = long_table(KRIPPENDORFF_2011)
    with pytest.raises(TypeError, match="ratings must be a pandas DataFrame"):
        krippendorff_alpha(KRIPPENDORFF_2011)
    with pytest.raises(ValueError, match="level must be one of"):
        krippendorff_alpha(df, level="cardinal")
    with pytest.raises(ValueError, match="level must be one of"):
        rater_agreement(df, level="cardinal")
    with pytest.raises(ValueError, match=r"ratings is missing column\(s\) \['scale'\]"):
        krippendorff_alpha(df, scale="valence")
    with pytest.raises(ValueError, match="min_items must be a positive integer"):
        rater_agreement(df, min_items=0)


def test_default_level():
    assert default_level({"type": "nominal", "names": ["a"]}) == "nominal"
    assert default_level({"type": "ordinal", "names": ["a"]}) == "ordinal"
    assert default_level({"type": "likert", "low": 1, "high": 5}) == "interval"
    with pytest.raises(ValueError, match=r"scale_meta\['type'\]"):
        default_level({"type": "circular"})
    with pytest.raises(ValueError, match="scale_meta must be"):
        default_level({"names": []})


# --------------------------------------------------------------------------- per rater


def test_rater_agreement_nominal_worked_by_hand():
    # c0 matches the others' plurality on 8 of its 9 paired units (unit 6: the others split
    # 2/3/4 and c0 said 1); c2 on 7 of 10 (units 2, 6, 8 miss); c1 9/10, c3 10/11.
    out = rater_agreement(long_table(KRIPPENDORFF_2011), min_items=1)
    assert list(out["rater_id"]) == ["c0", "c1", "c2", "c3"]
    assert out["n_items"].tolist() == [9, 10, 10, 11]
    np.testing.assert_allclose(out["agreement"], [8 / 9, 9 / 10, 7 / 10, 10 / 11])
    assert "accuracy" in out.attrs["statistic"]


def test_rater_agreement_nominal_tie_gets_fractional_credit():
    # One item, votes a=0, b=0, c=1. For a: the others are {0, 1}, a two-way tie that includes
    # a's own choice → 1/2. Same for b. For c: the others are {0, 0} → 0.
    df = pd.DataFrame({"item_id": ["i"] * 3, "rater_id": ["a", "b", "c"], "value": [0, 0, 1]})
    out = rater_agreement(df, min_items=1)
    np.testing.assert_allclose(out["agreement"], [0.5, 0.5, 0.0])


def _reference_per_rater(matrix: np.ndarray, level: str) -> list[float]:
    """Loop reference: the same statistic, rater by rater, with scipy/numpy."""
    result = []
    for r in range(len(matrix)):
        xs, ys = [], []
        for j in range(matrix.shape[1]):
            others = np.delete(matrix[:, j], r)
            others = others[~np.isnan(others)]
            if np.isnan(matrix[r, j]) or others.size == 0:
                continue
            if level == "nominal":
                vals, cnt = np.unique(others, return_counts=True)
                top = vals[cnt == cnt.max()]
                xs.append(float(matrix[r, j] in top) / len(top))
            else:
                xs.append(matrix[r, j])
                ys.append(others.mean())
        if level == "nominal":
            result.append(np.mean(xs))
        elif level == "ordinal":
            result.append(scipy.stats.spearmanr(xs, ys).statistic)
        else:
            result.append(np.corrcoef(xs, ys)[0, 1])
    return result


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_rater_agreement_matches_loop_reference(level):
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, 60)
    matrix = np.clip(truth + rng.integers(-1, 2, (8, 60)), 1, 5).astype(float)
    matrix[rng.random(matrix.shape) < 0.3] = NAN
    out = rater_agreement(long_table(matrix), level=level)
    np.testing.assert_allclose(out["agreement"], _reference_per_rater(matrix, level), atol=1e-10)
    n_ref = [int(np.sum(~np.isnan(row) & ((~np.isnan(np.delete(matrix, r, 0))).sum(0) > 0)))
             for r, row in enumerate(matrix)]
    assert out["n_items"].tolist() == n_ref


@pytest.mark.parametrize("level", ["nominal", "interval"])
def test_rater_agreement_finds_the_spammer(level):
    rng = np.random.default_rng(11)
    truth = rng.integers(1, 6, 200)
    matrix = np.clip(truth + rng.normal(0, 0.5, (10, 200)).round(), 1, 5)
    matrix[3] = rng.integers(1, 6, 200)            # rater c3 answers at random
    out = rater_agreement(long_table(matrix), level=level)
    assert out["agreement"].idxmin() == 3
    assert out["agreement"].drop(index=3).min() > out["agreement"][3] + 0.2


def test_rater_agreement_constant_rater_and_min_items():
    m = np.array([[3, 3, 3, 3], [1, 2, 4, 5], [2, 2, 5, 4], [1, NAN, NAN, 2]], dtype=float)
    out = rater_agreement(long_table(m), level="interval")
    assert np.isnan(out["agreement"][0])             # constant ratings: r undefined
    assert out["n_items"][3] == 2 and np.isnan(out["agreement"][3])   # below min_items=3
    assert np.isfinite(out["agreement"][1])
    assert rater_agreement(long_table(m), level="interval", min_items=2)["agreement"][3] == 1.0


def test_rater_agreement_rater_without_paired_items():
    m = np.array([[1, 2, NAN], [1, 2, NAN], [NAN, NAN, 3]])
    out = rater_agreement(long_table(m), min_items=1)
    assert out["n_items"].tolist() == [2, 2, 0]
    assert np.isnan(out["agreement"][2])


# --------------------------------------------------------------------------- anonymous votes


def test_alpha_of_anonymous_votes_is_alpha_of_their_value_counts():
    """FER+-style votes (rater_id null): α needs only how often each value went to each item,
    so it equals krippendorff.alpha(value_counts=...) and the α of the same votes under any
    distinct rater ids."""
    counts = np.array([[4, 0, 1, 3], [0, 6, 1, 1], [2, 2, 0, 0], [0, 0, 0, 1]])
    rows = [(f"u{i}", v) for i, row in enumerate(counts) for v, c in enumerate(row)
            for _ in range(c)]
    anonymous = pd.DataFrame({"item_id": [i for i, _ in rows], "rater_id": None,
                              "value": [float(v) for _, v in rows]})
    expected = krippendorff.alpha(value_counts=counts[:3], level_of_measurement="nominal")
    assert krippendorff_alpha(anonymous) == pytest.approx(expected)  # u3 has one vote: unpairable
    named = anonymous.assign(rater_id=[f"t{k}" for k in range(len(anonymous))])
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(anonymous, level=level) == \
            pytest.approx(krippendorff_alpha(named, level=level))
    # anonymous votes on one item are distinct raters, never duplicates
    assert krippendorff_alpha(anonymous, duplicates="raise") == pytest.approx(expected)


def test_per_rater_statistics_refuse_anonymous_votes():
    from affectlab.agreement import AnonymousRatingsError, require_rater_ids

    df = long_table(KRIPPENDORFF_2011, scale="category")
    df.loc[df.index[:3], "rater_id"] = None
    msg = r"ratings of scale 'category' are anonymous vote counts \(3 of \d+ have no rater_id"
    with pytest.raises(AnonymousRatingsError, match=msg + r".*\(each rater against the others\)"):
        rater_agreement(df, "category")
    with pytest.raises(AnonymousRatingsError, match=msg):
        reliability_matrix(df, "category")
    with pytest.raises(AnonymousRatingsError, match="per-rater statistics need rater identities"):
        require_rater_ids(df)
    require_rater_ids(df, "other")               # another scale's ratings are all named
    assert np.isfinite(krippendorff_alpha(df, "category"))
