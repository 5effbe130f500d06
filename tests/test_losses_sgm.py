"""SGM loss with soft labels (seed 002, SPEC §4) and the class-balanced batch sampler."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from affectlab.losses import ClassBalancedBatchSampler, SGMLoss, sgm_loss
from affectlab.losses.sgm import sgm_centres, sgm_posterior

D64 = torch.float64


def test_hand_value_two_points():
    # z = 0 (class 0), z = 1 (class 1): μ = 0, 1; P(w_0 | 0) = 1 / (1 + exp(−1/(2·0.25)))
    p = 1 / (1 + math.exp(-2.0))
    z = torch.tensor([[0.0], [1.0]], dtype=D64)
    want = 2 * (1 - p) ** 2  # per item: (p − 1)² + ((1 − p) − 0)²
    assert float(sgm_loss(z, torch.tensor([0, 1]))) == pytest.approx(want, rel=1e-12)
    # norm term: mean ‖z‖ = 0.5
    assert float(sgm_loss(z, torch.tensor([0, 1]), norm_weight=2.0)) == \
        pytest.approx(want + 1.0, rel=1e-12)


def test_soft_weighted_centres():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]], dtype=D64)
    y = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=D64)
    mu, present = sgm_centres(z, y)
    # μ_0 = (1·z0 + .5·z1)/1.5 = [2/3, 0]; μ_1 = (.5·z1 + 1·z2)/1.5 = [2/3, 8/3]
    assert torch.allclose(mu, torch.tensor([[2 / 3, 0.0], [2 / 3, 8 / 3]], dtype=D64))
    assert present.all()


@given(st.integers(2, 12), st.integers(1, 6), st.integers(0, 2**31 - 1),
       st.floats(0.05, 5.0))
def test_posterior_rows_sum_to_one(n, k, seed, sigma):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=g, dtype=D64) * 10
    y = torch.softmax(torch.randn(n, k, generator=g, dtype=D64), 1)
    y[:, 0] = 0  # class 0 absent
    y = y / y.sum(1, keepdim=True) if k > 1 else torch.ones(n, 1, dtype=D64)
    mu, present = sgm_centres(z, y)
    post = sgm_posterior(z, mu, present, sigma)
    assert torch.allclose(post.sum(1), torch.ones(n, dtype=D64))
    assert torch.all(post[:, ~present] == 0)
    v = float(sgm_loss(z, y, sigma=sigma))
    assert 0 <= v <= 2 + 1e-12  # ‖P − y‖² of two distributions is at most 2


def test_zero_at_well_separated_centres():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=D64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    z = centres[labels].clone().requires_grad_()
    loss = SGMLoss()(z, labels)
    # nearest other centre is 10 away: posterior tail exp(−100/(2·0.25)) ≈ e^−200
    assert float(loss.detach()) < 1e-80
    loss.backward()
    assert torch.isfinite(z.grad).all()


def test_absent_class_equals_loss_on_present_classes():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(8, 4, generator=g, dtype=D64)
    y3 = torch.softmax(torch.randn(8, 3, generator=g, dtype=D64), 1)
    y5 = torch.zeros(8, 5, dtype=D64)
    y5[:, [0, 2, 4]] = y3  # classes 1 and 3 absent from the batch
    assert float(sgm_loss(z, y5)) == pytest.approx(float(sgm_loss(z, y3)), rel=1e-12)


def test_gradients_finite_when_far_or_coincident():
    for z in (torch.tensor([[0.0, 0.0], [1e3, 0.0], [0.0, 0.0]], dtype=D64),
              torch.zeros(3, 2, dtype=D64)):
        z = z.clone().requires_grad_()
        sgm_loss(z, torch.tensor([0, 1, 1]), norm_weight=1.0).backward()
        assert torch.isfinite(z.grad).all()


def test_integer_targets_equal_one_hot_and_reductions():
    z = torch.randn(6, 3, dtype=D64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    onehot = torch.nn.functional.one_hot(y).to(D64)
    assert float(sgm_loss(z, y)) == pytest.approx(float(sgm_loss(z, onehot)))
    per = SGMLoss(reduction="none")(z, onehot)
    assert per.shape == (6,) and float(per.mean()) == pytest.approx(float(sgm_loss(z, y)))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"z": torch.zeros(4), "target": torch.tensor([0, 1, 0, 1])}, "z must be 2-D"),
    ({"z": torch.zeros(4, 2), "target": torch.tensor([0, 1])}, "target must have 4 rows"),
    ({"z": torch.zeros(2, 2), "target": torch.tensor([[0.5, 0.2], [1.0, 0.0]])},
     "target rows must sum to 1"),
    ({"z": torch.full((2, 2), float("nan")), "target": torch.tensor([0, 1])}, "z contains NaN"),
    ({"z": torch.zeros(2, 2), "target": torch.tensor([0, 1]), "sigma": 0.0}, "sigma must be"),
    ({"z": torch.zeros(2, 2), "target": torch.tensor([0, 1]), "norm_weight": -1.0},
     "norm_weight must be"),
])
def test_sgm_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sgm_loss(**kwargs)


# -- ClassBalancedBatchSampler ---------------------------------------------------------------

def test_balanced_batches():
    labels = np.repeat([0, 1, 2, 3], [50, 20, 7, 40])
    s = ClassBalancedBatchSampler(labels, n_per_class=5, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 117 // 20
    for b in batches:
        assert np.array_equal(np.bincount(labels[b], minlength=4), [5, 5, 5, 5])
        for c in range(4):  # within one class, no repeat before its pool is used up
            members = [i for i in b if labels[i] == c]
            assert len(set(members)) == 5
    # the 7-item class is used up before any of its items comes back: first 7 draws distinct
    seen = [i for b in batches[:2] for i in b if labels[i] == 2]
    assert len(set(seen[:7])) == 7


def test_small_class_repeats_within_batch():
    labels = np.array([0] * 10 + [1] * 2)
    for b in ClassBalancedBatchSampler(labels, n_per_class=4, n_batches=3):
        assert np.bincount(labels[b]).tolist() == [4, 4]


def test_epochs_seeds_and_class_subsets():
    y = np.random.default_rng(0).dirichlet(np.ones(6), size=300)  # soft → argmax classes
    s = ClassBalancedBatchSampler(y, n_per_class=4, classes_per_batch=3, n_batches=10, seed=1)
    first = list(s)
    assert first == list(s)
    s.set_epoch(1)
    assert first != list(s)
    hard = y.argmax(1)
    for b in first:
        counts = np.bincount(hard[b], minlength=6)
        assert sorted(counts[counts > 0].tolist()) == [4, 4, 4]


def test_works_as_dataloader_batch_sampler():
    labels = torch.tensor([0, 1] * 10)
    ds = TensorDataset(torch.arange(20), labels)
    dl = DataLoader(ds, batch_sampler=ClassBalancedBatchSampler(labels.numpy(), n_per_class=3))
    for _, yb in dl:
        assert yb.bincount().tolist() == [3, 3]


@pytest.mark.parametrize(("labels", "kwargs", "match"), [
    (np.array([0, 1]), {"n_per_class": 0}, "n_per_class must be"),
    (np.array([0, 1]), {"classes_per_batch": 3},
     r"classes_per_batch must be an integer in \[1, 2\]"),
    (np.array([0, 1]), {"n_batches": 0}, "n_batches must be"),
    (np.array([0.5, 1.0]), {}, "integer class indices"),
    (np.array([-1, 1]), {}, "class indices ≥ 0"),
    (np.array([], dtype=int), {}, "at least one item"),
])
def test_sampler_bad_input(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassBalancedBatchSampler(labels, **kwargs)
