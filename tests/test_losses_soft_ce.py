"""Soft-label cross-entropy and the class weights N / (K·Σᵢ yᵢᶜ) (SPEC §2)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from affectlab.losses import SoftCrossEntropyLoss, class_weights_from_soft_labels, soft_cross_entropy

D64 = torch.float64


def test_hand_value():
    # logits [0, 0] → p = [.5, .5]; −(.75·ln .5 + .25·ln .5) = ln 2
    assert float(soft_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.75, 0.25]]))) == \
        pytest.approx(math.log(2))
    # weights [2, 1]: −(2·.75 + .25)·ln .5 = 1.75·ln 2
    got = soft_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.75, 0.25]]), torch.tensor([2., 1]))
    assert float(got) == pytest.approx(1.75 * math.log(2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch_cross_entropy_with_probability_targets(reduction):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(10, 4, generator=g, dtype=D64)
    y = torch.softmax(torch.randn(10, 4, generator=g, dtype=D64), 1)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=D64)
    ours = SoftCrossEntropyLoss(weight=w, reduction=reduction)(logits, y)
    ref = F.cross_entropy(logits, y, weight=w, reduction=reduction)
    assert torch.allclose(ours, ref, rtol=1e-12)
    assert torch.allclose(soft_cross_entropy(logits, y, reduction=reduction),
                          F.cross_entropy(logits, y, reduction=reduction))


def test_integer_targets_are_one_hot():
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 2, 1, 1, 0])
    assert float(soft_cross_entropy(logits, y)) == pytest.approx(float(F.cross_entropy(logits, y)))


@given(hnp.arrays(np.float64, 4, elements=st.floats(0.01, 1)),
       hnp.arrays(np.float64, 4, elements=st.floats(-5, 5)))
def test_bounded_below_by_entropy_with_equality_at_target(w, z):
    y = torch.tensor(w / w.sum()).unsqueeze(0)
    entropy = float(-(y * y.log()).sum())
    assert float(soft_cross_entropy(torch.tensor(z).unsqueeze(0), y)) >= entropy - 1e-12
    opt = y.log().clone().requires_grad_()
    loss = soft_cross_entropy(opt, y)
    assert float(loss.detach()) == pytest.approx(entropy, abs=1e-12)
    loss.backward()
    assert float(opt.grad.abs().max()) < 1e-12  # the gradient softmax − y vanishes


def test_class_weights():
    y = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # N = 4, K = 2, mass = [2.5, 1.5] → [4/5, 4/3]
    assert torch.allclose(class_weights_from_soft_labels(y), torch.tensor([0.8, 4 / 3], dtype=D64))
    assert torch.allclose(class_weights_from_soft_labels(np.eye(3)), torch.ones(3, dtype=D64))


def test_class_weights_zero_mass_class_gets_zero_weight():
    y = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    with pytest.warns(RuntimeWarning, match=r"classes \[2\] have no mass"):
        w = class_weights_from_soft_labels(y)
    assert torch.allclose(w, torch.tensor([2 / (3 * 1.5), 2 / (3 * 0.5), 0.0], dtype=D64))


@pytest.mark.parametrize(("labels", "match"), [
    (np.array([0.5, 0.5]), "labels must be 2-D"),
    (np.array([[0.5, 0.6]]), "labels rows must sum to 1"),
    (np.array([[np.nan, 1.0]]), "labels contains NaN"),
    (np.zeros((0, 2)), "at least one row"),
])
def test_class_weights_bad_input(labels, match):
    with pytest.raises(ValueError, match=match):
        class_weights_from_soft_labels(labels)


def test_soft_ce_bad_input():
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="target rows must sum to 1"):
        soft_cross_entropy(z, torch.tensor([[0.5, 0.2, 0.2], [1.0, 0, 0]]))
    with pytest.raises(ValueError, match="target must have 3 classes"):
        soft_cross_entropy(z, torch.ones(2, 2) / 2)
    with pytest.raises(ValueError, match="weight must have 3 entries"):
        soft_cross_entropy(z, torch.tensor([0, 1]), weight=torch.ones(2))
    with pytest.raises(ValueError, match="weight must be non-negative"):
        soft_cross_entropy(z, torch.tensor([0, 1]), weight=-torch.ones(3))
    with pytest.raises(ValueError, match="logits contains NaN"):
        soft_cross_entropy(torch.full((2, 3), float("nan")), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction must be"):
        SoftCrossEntropyLoss(reduction="batchmean")
