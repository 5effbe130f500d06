"""affectlab.uncertainty: one [0, 1] scale for every method's uncertainty."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from affectlab.labels import entropy
from affectlab.uncertainty import probs_uncertainty, uncertainty_kinds, unit_uncertainty


def test_entropy_is_divided_by_log_k():
    # uniform over 7 classes: log 7 nats → 1; one-hot → 0; half/half → log 2 / log 7
    raw = np.array([np.log(7), 0.0, np.log(2)])
    np.testing.assert_allclose(unit_uncertainty(raw, "entropy", 7), [1.0, 0.0, np.log(2) / np.log(7)])
    # the raw Explore values 0.6–1.9 nats (K = 7) land inside [0, 1]
    out = unit_uncertainty([0.6, 1.9], "entropy", 7)
    np.testing.assert_allclose(out, [0.6 / np.log(7), 1.9 / np.log(7)])
    assert (out > 0).all() and (out < 1).all()


def test_dmue_and_ldlva_values_are_already_on_the_scale():
    np.testing.assert_allclose(unit_uncertainty([0.3, 0.95], "dmue", 7), [0.3, 0.95])
    np.testing.assert_allclose(unit_uncertainty([0.1, 0.8], "lambda", 7), [0.1, 0.8])


def test_mixed_kinds_nan_and_rounding():
    raw = np.array([np.log(4), 0.7, np.nan, np.log(4) + 1e-9, -1e-12])
    kinds = np.array(["entropy", "lambda", "entropy", "entropy", "dmue"], dtype=object)
    out = unit_uncertainty(raw, kinds, 4)
    np.testing.assert_allclose(out[[0, 1, 3, 4]], [1.0, 0.7, 1.0, 0.0])
    assert np.isnan(out[2])
    assert unit_uncertainty(0.5, "entropy", 1) == 0.0  # one class: nothing to be unsure of


def test_unit_uncertainty_validates():
    with pytest.raises(ValueError, match="kind must be one of"):
        unit_uncertainty([0.1], "variance", 3)
    with pytest.raises(ValueError, match="num_classes"):
        unit_uncertainty([0.1], "entropy", 0)
    with pytest.raises(ValueError, match="num_classes"):
        unit_uncertainty([0.1], "entropy", True)


def test_kinds_follow_the_method_and_split():
    splits = ["train", "val", "test"]
    assert uncertainty_kinds("ce", splits).tolist() == ["entropy"] * 3
    assert uncertainty_kinds("sgm", splits).tolist() == ["entropy"] * 3
    assert uncertainty_kinds("dmue", splits).tolist() == ["dmue"] * 3
    # LDLVA holds λ for its training items only; the other splits report entropy
    assert uncertainty_kinds("ldlva", splits).tolist() == ["lambda", "entropy", "entropy"]
    assert uncertainty_kinds(None, splits).tolist() == ["entropy"] * 3


def test_probs_uncertainty_agrees_with_scipy_and_labels(rng):
    p = rng.dirichlet(np.ones(5), size=20)
    out = probs_uncertainty(p)
    np.testing.assert_allclose(out, scipy_entropy(p, axis=1) / np.log(5), atol=1e-12)
    np.testing.assert_allclose(out, entropy(p, normalize=True), atol=1e-12)
    assert probs_uncertainty(np.full(3, 1 / 3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="class axis"):
        probs_uncertainty(np.float64(0.5))
