"""EMD² (seed 003, SPEC §3): hand values, properties, POT and dlordinal agreement."""

import numpy as np
import ot
import pytest
import torch
from dlordinal.losses import EMDLoss
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from affectlab.losses import EMD2Loss, emd1, emd2

D64 = torch.float64


def dists(k_min=2, k_max=8):
    """Strategy: a pair of distributions over the same number of ordered classes."""
    def make(k):
        w = hnp.arrays(np.float64, k, elements=st.floats(0, 1))
        return st.tuples(w, w).filter(lambda ab: ab[0].sum() > 1e-3 and ab[1].sum() > 1e-3)
    return st.integers(k_min, k_max).flatmap(make).map(
        lambda ab: (torch.tensor(ab[0] / ab[0].sum()), torch.tensor(ab[1] / ab[1].sum())))


def test_hand_values():
    # CDF(p) = [.5, 1, 1], CDF(t) = [0, 0, 1]: EMD² = .25 + 1 = 1.25, l=1: .5 + 1 = 1.5
    # (half the mass moves 2 classes, half moves 1)
    p, t = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    assert float(emd2(p, t)) == pytest.approx(1.25)
    assert float(emd1(p, t)) == pytest.approx(1.5)
    # one-hot at 0 vs one-hot at 3 of 5: three CDF entries differ by 1 → 3 (no 1/K, no sqrt)
    e = torch.eye(5, dtype=D64)
    assert float(emd2(e[0], e[3])) == pytest.approx(3.0)


@given(dists())
def test_non_negative_symmetric_zero_iff_equal(pt):
    p, t = pt
    v = float(emd2(p, t))
    assert v >= 0
    assert float(emd2(t, p)) == pytest.approx(v, abs=1e-12)
    assert float(emd2(p, p)) == 0.0
    if float((p - t).abs().max()) > 1e-6:
        assert v > 0


@given(dists())
def test_emd1_is_pot_wasserstein_1d(pt):
    p, t = pt
    k = p.shape[0]
    x = np.arange(k, dtype=np.float64)
    ref = ot.wasserstein_1d(x, x, p.numpy(), t.numpy(), p=1)
    assert float(emd1(p, t)) == pytest.approx(float(ref), abs=1e-9)


def test_emd1_is_exact_ot_with_ground_cost_abs_difference():
    rng = np.random.default_rng(0)
    p, t = rng.dirichlet(np.ones(6), size=20), rng.dirichlet(np.ones(6), size=20)
    cost = np.abs(np.arange(6)[:, None] - np.arange(6)[None, :]).astype(float)
    ref = [ot.emd2(p[i], t[i], cost) for i in range(20)]
    assert np.allclose(emd1(torch.tensor(p), torch.tensor(t)).numpy(), ref, atol=1e-9)


@pytest.mark.parametrize("k", [2, 5, 9])
def test_emd2_loss_equals_dlordinal_on_one_hot(k):
    g = torch.Generator().manual_seed(k)
    logits = torch.randn(16, k, generator=g, dtype=D64) * 3
    y = torch.randint(0, k, (16,), generator=g)
    ref = EMDLoss(num_classes=k)
    assert float(EMD2Loss()(logits, y)) == pytest.approx(float(ref(logits, y)), rel=1e-12)
    onehot = torch.nn.functional.one_hot(y, k).to(D64)
    assert float(EMD2Loss()(logits, onehot)) == pytest.approx(float(ref(logits, onehot)),
                                                              rel=1e-12)


def test_emd2_loss_soft_targets_and_reductions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 4, generator=g, dtype=D64)
    t = torch.softmax(torch.randn(8, 4, generator=g, dtype=D64), dim=1)
    per = emd2(torch.softmax(logits, 1), t)
    assert torch.allclose(EMD2Loss(reduction="none")(logits, t), per)
    assert float(EMD2Loss(reduction="sum")(logits, t)) == pytest.approx(float(per.sum()))
    assert float(EMD2Loss()(t.log(), t)) == pytest.approx(0.0, abs=1e-12)  # optimum


def test_finite_gradients_at_saturated_logits():
    logits = torch.tensor([[60.0, -60.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    EMD2Loss()(logits, torch.tensor([2, 0])).backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(("p", "t", "match"), [
    (torch.ones(2, 3) / 3, torch.ones(2, 4) / 4, "p and t must have the same shape"),
    (torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5]), "p rows must sum to 1"),
    (torch.tensor([0.5, 0.5]), torch.tensor([1.5, -0.5]), "t has negative entries"),
    (torch.tensor([float("nan"), 1.0]), torch.tensor([0.5, 0.5]), "p contains NaN"),
])
def test_emd_bad_input(p, t, match):
    with pytest.raises(ValueError, match=match):
        emd2(p, t)
    with pytest.raises(ValueError, match=match):
        emd1(p, t)


def test_emd2_loss_bad_input():
    logits = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"target class indices must lie in \[0, 3\]"):
        EMD2Loss()(logits, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="target must have 4 classes"):
        EMD2Loss()(logits, torch.ones(3, 3) / 3)
    with pytest.raises(ValueError, match="target must have 3 rows"):
        EMD2Loss()(logits, torch.ones(2, 4) / 4)
    with pytest.raises(ValueError, match="logits must be 2-D"):
        EMD2Loss()(torch.zeros(4), torch.tensor([1]))
