"""LDLVA (SPEC §5): neighbours, kernel, calibration floor, targets, centres, optimisers, bank."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from affectlab import methods
from affectlab.methods.base import TrainSetInfo
from affectlab.methods.ldlva import (
    LDLVA,
    CalibrationMLP,
    aggregate_neighbours,
    centre_repulsion,
    construct_target,
    knn_l1,
    local_similarity,
    rescale_aux,
    update_centres,
)
from affectlab.models.resnet import SmallResNet18

N, C, HW = 24, 3, 16


def _model(seed: int = 0) -> SmallResNet18:
    torch.manual_seed(seed)
    return SmallResNet18(num_classes=C, width=4, embedding_dim=8)


def _data(seed: int = 0, aux: bool = True):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, 1, HW, HW, generator=g)
    labels = torch.arange(N) % C
    soft = torch.full((N, C), 0.1)
    soft[torch.arange(N), labels] = 0.8
    a = torch.rand(N, 2, generator=g) * 4 + 1 if aux else None
    info = TrainSetInfo(n_items=N, num_classes=C, soft_labels=soft, labels=labels, aux=a)
    return x, info


def _batch(x, info, idx, split="train"):
    idx = torch.as_tensor(idx)
    return {"x": x[idx], "y": info.soft_labels[idx], "label": info.labels[idx], "index": idx,
            "split": split}


class _Items:
    """Indexable training items, as EmotionDataset gives them."""

    def __init__(self, x, info):
        self.x, self.info = x, info

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.info.soft_labels[i], "label": int(self.info.labels[i]),
                "index": i}


def _method(seed=0, **params) -> tuple[LDLVA, torch.Tensor, TrainSetInfo]:
    x, info = _data(seed)
    m = LDLVA(_model(seed), info, **params)
    return m, x, info


# --------------------------------------------------------------------------- pieces

@given(arrays(np.float64, st.tuples(st.integers(3, 12), st.integers(1, 3)),
              elements=st.floats(-5, 5)), st.integers(1, 2), st.integers(1, 4))
def test_knn_l1_matches_brute_force(aux, k, chunk):
    idx, dist = knn_l1(torch.as_tensor(aux), k, chunk=chunk)
    full = np.abs(aux[:, None, :] - aux[None, :, :]).sum(-1)
    np.fill_diagonal(full, np.inf)
    want = np.sort(full, axis=1)[:, :k]
    np.testing.assert_allclose(dist.numpy(), want, rtol=1e-5, atol=1e-5)
    # the returned indices point at items at those distances, never at the item itself
    got = full[np.arange(len(aux))[:, None], idx.numpy()]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not (idx.numpy() == np.arange(len(aux))[:, None]).any()


def test_local_similarity_hand_checked():
    # ‖(0,0) − (0.5,0.25)‖₁ = 0.75 → exp(−0.75/0.5) = exp(−1.5)
    aux = torch.tensor([[0.0, 0.0], [0.5, 0.25], [3.0, 3.0]])
    idx, dist = knn_l1(aux, 1)
    assert idx[:, 0].tolist() == [1, 0, 1]
    a = local_similarity(dist)
    assert a[0, 0].item() == pytest.approx(math.exp(-1.5), rel=1e-6)
    assert a[2, 0].item() == pytest.approx(math.exp(-(2.5 + 2.75) / 0.5), rel=1e-5)


def test_method_neighbour_similarity_hand_checked():
    x, info = _data()
    info.aux = torch.ones(N, 2)
    info.aux[:, 0] += torch.arange(N, dtype=torch.float32) * 0.1  # items on a line, 0.1 apart
    info.aux_bounds = torch.tensor([[1.0, 1.0], [5.0, 5.0]])  # Likert 1..5: ×0.5 into [−1, 1]
    m = LDLVA(_model(), info)
    # item 0's 8 nearest are items 1..8 at L1 distances 0.05..0.4 in the [−1, 1] space
    assert sorted(m.neighbour_index[0].tolist()) == list(range(1, 9))
    want = np.exp(-np.arange(1, 9) * 0.05 / 0.5)
    np.testing.assert_allclose(m.neighbour_similarity[0].numpy(), want, rtol=1e-5)


def test_rescale_aux_hand_checked():
    aux = torch.tensor([[1.0, 5.0], [3.0, 2.0], [4.5, 1.0]])
    got = rescale_aux(aux, torch.tensor([[1.0, 1.0], [5.0, 5.0]]))
    torch.testing.assert_close(got, torch.tensor([[-1.0, 1.0], [0.0, -0.5], [0.75, -1.0]]))
    # without bounds one map for all columns: min 1 → −1, max 5 → 1 (the same here)
    torch.testing.assert_close(rescale_aux(aux), got)
    torch.testing.assert_close(rescale_aux(torch.full((3, 2), 2.0)), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="column 1 has values outside its bounds"):
        rescale_aux(aux, torch.tensor([[1.0, 2.0], [5.0, 5.0]]))
    with pytest.raises(ValueError, match=r"\(2, A=2\)"):
        rescale_aux(aux, torch.tensor([1.0, 5.0]))
    with pytest.raises(ValueError, match="low must be below its high"):
        rescale_aux(aux, torch.tensor([[1.0, 5.0], [5.0, 5.0]]))


@pytest.mark.parametrize("bounds", [None, torch.tensor([[1.0, 1.0], [5.0, 5.0]])])
def test_valence_arousal_space_is_minus_one_to_one(bounds):
    """Likert means 1..5 enter neighbours and the kernel in [−1, 1] (SPEC §5), where the
    bandwidth 0.5 was set."""
    x, info = _data()
    info.aux_bounds = bounds
    m = LDLVA(_model(), info)
    assert m.aux_source == "aux"
    assert float(m.aux_space.min()) >= -1.0 and float(m.aux_space.max()) <= 1.0
    if bounds is not None:
        torch.testing.assert_close(m.aux_space, (info.aux - 3.0) / 2.0)
    else:  # smallest and largest value over both columns → −1 and 1
        assert float(m.aux_space.min()) == -1.0 and float(m.aux_space.max()) == 1.0
    # the neighbour table holds L1 distances in that space
    idx = m.neighbour_index
    want = (m.aux_space[:, None, :] - m.aux_space[idx]).abs().sum(-1)
    torch.testing.assert_close(m.neighbour_distance, want, rtol=1e-5, atol=1e-6)
    assert float(m.neighbour_distance.max()) <= 4.0


def test_aggregate_and_construct_hand_checked():
    p = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    c = torch.tensor([[3.0, 1.0]])
    d_tilde = aggregate_neighbours(p, c)
    assert d_tilde.tolist() == [[0.75, 0.25]]
    d = construct_target(torch.tensor([[0.0, 1.0]]), d_tilde, torch.tensor([0.2]))
    np.testing.assert_allclose(d.numpy(), [[0.15, 0.85]], rtol=1e-6)


def test_calibration_mlp_is_2f_512_256_1_with_batch_norm():
    """SPEC §5 and the authors' AdaptiveSimNet: 2F → 512 → 256 → 1, BN and ReLU after each
    hidden layer."""
    x, info = _data()
    m = LDLVA(_model(), info)
    f = m.model.feature_dim
    linears = [layer for layer in m.calibration.net if isinstance(layer, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (2 * f, 512), (512, 256), (256, 1)]
    kinds = [type(layer).__name__ for layer in m.calibration.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert m.params["calib_hidden"] == 512 and m.params["calib_hidden2"] == 256
    g = CalibrationMLP(feature_dim=3, hidden=(16, 8))
    assert g(torch.randn(5, 3), torch.randn(5, 2, 3)).shape == (5, 2)


def test_calibration_floor_is_sigmoid_minus_1_3():
    g = CalibrationMLP(feature_dim=4, hidden=(8, 6))
    g.eval()
    v_i, v_k = torch.randn(3, 4), torch.randn(3, 2, 4)
    with torch.no_grad():
        g.net[-1].weight.zero_()
        g.net[-1].bias.fill_(-10.0)
    s = g(v_i, v_k)
    assert s.shape == (3, 2)
    torch.testing.assert_close(s, torch.full((3, 2), torch.sigmoid(torch.tensor(-1.3)).item()))
    with torch.no_grad():
        g.net[-1].bias.fill_(2.0)
    assert torch.allclose(g(v_i, v_k), torch.sigmoid(torch.tensor(2.0)))


def test_calibration_floor_blocks_gradient_below_it():
    g = CalibrationMLP(feature_dim=2, hidden=(4, 3))
    with torch.no_grad():
        g.net[-1].bias.fill_(-10.0)
        g.net[-1].weight.zero_()
    g(torch.randn(4, 2), torch.randn(4, 3, 2)).sum().backward()
    assert g.net[-1].bias.grad.abs().max().item() == 0.0


def test_centre_update_one_step_hand_checked():
    centres = torch.zeros(2, 2)
    feats = torch.tensor([[2.0, 0.0], [4.0, 0.0], [0.0, 6.0]])
    update_centres(centres, feats, torch.tensor([0, 0, 1]), torch.tensor([1.0, 1.0, 0.5]),
                   lr=0.5, repulsion_lr=0.0)
    # the authors' rate: lr · Σ w (v − μ) / ((n_c + 1) · R), R = 3 rows
    # class 0: 0.5 · (2 + 4) / (3 · 3) = 1/3; class 1: 0.5 · 0.5 · 6 / (2 · 3) = 0.25
    torch.testing.assert_close(centres, torch.tensor([[1 / 3, 0.0], [0.0, 0.25]]))


def test_centre_repulsion_step_is_gradient_descent_on_repulsion_term():
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-0.3, 2.0]])
    ref = centres.clone().requires_grad_(True)
    centre_repulsion(ref).backward()
    got = update_centres(centres.clone(), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long),
                         torch.zeros(0), lr=0.5, repulsion_lr=0.05)
    torch.testing.assert_close(got, centres - 0.05 * ref.grad)
    assert centre_repulsion(got) < centre_repulsion(centres)  # pushed apart


def test_centre_repulsion_value_hand_checked():
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    assert centre_repulsion(mu).item() == pytest.approx(math.exp(-4 / 2))


def test_centres_move_toward_class_means():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(30, 5, generator=g) + 3
    labels = torch.arange(30) % 3
    means = torch.stack([feats[labels == c].mean(0) for c in range(3)])
    centres = torch.zeros(3, 5)
    gaps = []
    for _ in range(6):
        update_centres(centres, feats, labels, torch.ones(30), lr=0.5, repulsion_lr=0.0)
        gaps.append((centres - means).norm().item())
    # each step closes the gap by lr · n_c / ((n_c + 1) · R) = 0.5 · 10 / (11 · 30)
    np.testing.assert_allclose(np.array(gaps[1:]) / np.array(gaps[:-1]), 1 - 5 / 330, rtol=1e-4)


# --------------------------------------------------------------------------- the method

def test_target_matches_formula_from_bank():
    m, x, info = _method()
    m.eval()
    m.fill_bank([_batch(x, info, range(N))])
    idx = torch.tensor([0, 5, 7, 11])
    with torch.no_grad():
        m.theta[idx] = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    m.training_step(_batch(x, info, idx), 0, 0)
    with torch.no_grad():
        out = m.model(x[idx])
        neigh = m.neighbour_index[idx]
        a = torch.exp(-m.neighbour_distance[idx] / 0.5)
        s = m.calibration(out.features, m.bank_features[neigh])
        c = a * s
        d_tilde = (c.unsqueeze(-1) * m.bank_probs[neigh]).sum(1) / c.sum(1, keepdim=True)
        lam = torch.sigmoid(torch.tensor([-2.0, 0.0, 1.0, 3.0]))[:, None]
        want = (1 - lam) * torch.nn.functional.one_hot(info.labels[idx], C) + lam * d_tilde
    got = torch.as_tensor(m.constructed_distributions()[idx.numpy()])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert np.isnan(m.constructed_distributions()[1]).all()  # never trained on


def test_bank_and_exact_give_the_same_targets_when_bank_is_fresh():
    bank, x, info = _method(neighbour_mode="bank")
    exact = LDLVA(copy.deepcopy(bank.model), info, neighbour_mode="exact")
    exact.load_state_dict(bank.state_dict())
    exact.attach_dataset(_Items(x, info))
    bank.eval()
    exact.eval()
    bank.fill_bank([_batch(x, info, range(0, 12)), _batch(x, info, range(12, N))])
    idx = [3, 17, 8, 22, 0, 9]
    rb = bank.training_step(_batch(x, info, idx), 0, 0)
    re = exact.training_step(_batch(x, info, idx), 0, 0)
    torch.testing.assert_close(torch.as_tensor(bank.constructed_distributions()[idx]),
                               torch.as_tensor(exact.constructed_distributions()[idx]),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rb.loss, re.loss, rtol=1e-5, atol=1e-6)


def test_bank_differs_from_exact_when_stale():
    bank, x, info = _method()
    bank.eval()
    bank.fill_bank([_batch(x, info, range(N))])
    with torch.no_grad():  # weights move after the bank was filled
        bank.model.classifier.bias.add_(torch.tensor([3.0, -3.0, 0.0]))
    exact = copy.deepcopy(bank)
    exact.neighbour_mode = "exact"
    exact.attach_dataset(_Items(x, info))
    idx = [1, 2, 3]
    bank.training_step(_batch(x, info, idx), 0, 0)
    exact.training_step(_batch(x, info, idx), 0, 0)
    assert not np.allclose(bank.constructed_distributions()[idx],
                           exact.constructed_distributions()[idx], atol=1e-3)


def test_unseen_neighbours_use_one_hot_labels():
    m, x, info = _method()
    m.eval()
    idx = torch.tensor([4])
    with torch.no_grad():
        m.theta[4] = 50.0  # λ ≈ 1: the target is d̃ alone
    m.training_step(_batch(x, info, idx), 0, 0)
    neigh = m.neighbour_index[4]
    a = torch.exp(-m.neighbour_distance[4] / 0.5)  # calibration 1 for unseen neighbours
    want = (a[:, None] * torch.nn.functional.one_hot(info.labels[neigh], C)).sum(0) / a.sum()
    np.testing.assert_allclose(m.constructed_distributions()[4], want.numpy(), atol=1e-5)


def test_lambda_in_open_unit_interval_and_updates_only_seen_items():
    m, x, info = _method()
    opts = m.optimizers(1e-3, 0.0)
    before = m.lambdas().copy()
    idx = [0, 1, 2, 3, 4, 5]
    for step in range(3):
        for o in opts:
            o.zero_grad()
        r = m.training_step(_batch(x, info, idx), 0, step)
        r.loss.backward()
        for o in opts:
            o.step()
    lam = m.lambdas()
    assert lam.shape == (N,)
    assert ((lam > 0) & (lam < 1)).all()
    assert not np.allclose(lam[idx], before[idx])
    np.testing.assert_array_equal(lam[6:], before[6:])
    assert before[0] == pytest.approx(1 / (1 + math.exp(0.5)))  # θ₀ = −0.5


def test_loss_finite_with_gradients_everywhere():
    m, x, info = _method()
    m.train()
    m.fill_bank([_batch(x, info, range(N))])
    r = m.training_step(_batch(x, info, range(8)), 0, 0)
    assert torch.isfinite(r.loss)
    assert set(r.parts) == {"cls", "centre", "repulsion", "lambda"}
    r.loss.backward()
    assert m.theta.grad is not None and m.theta.grad[:8].abs().sum() > 0
    assert m.theta.grad[8:].abs().sum() == 0
    for name, p in m.named_parameters():
        if name != "theta":
            assert p.grad is not None, name
    assert m.calibration.net[0].weight.grad.abs().sum() > 0
    assert m.model.stem[0].weight.grad.abs().sum() > 0


def test_theta_has_its_own_sgd_optimiser_lr_10():
    m, _, _ = _method()
    adam, sgd = m.optimizers(1e-3, 1e-4)
    assert isinstance(adam, torch.optim.Adam) and isinstance(sgd, torch.optim.SGD)
    assert sgd.param_groups[0]["lr"] == 10.0
    assert [p for g in sgd.param_groups for p in g["params"]] == [m.theta]
    adam_ids = {id(p) for g in adam.param_groups for p in g["params"]}
    assert id(m.theta) not in adam_ids
    want = {id(p) for n, p in m.named_parameters() if n != "theta"}
    assert adam_ids == want
    assert any(id(p) in adam_ids for p in m.calibration.parameters())


def test_centres_update_during_training_and_loss_uses_them():
    m, x, info = _method()
    assert m.centres.abs().sum() == 0
    m.training_step(_batch(x, info, range(N)), 0, 0)
    assert m.centres.abs().sum() > 0


def _centres_after(rows_v, rows_y, rows_w, c, lr=0.5):
    """The authors' pull from zero centres, written out: lr · Σ w v / ((n_c + 1) · R)."""
    want = torch.zeros(c, rows_v.shape[1])
    for j in range(c):
        sel = rows_y == j
        want[j] = lr * (rows_w[sel, None] * rows_v[sel]).sum(0) / ((sel.sum() + 1) * len(rows_v))
    return want


def test_centre_update_uses_batch_and_neighbour_rows_at_the_authors_rate():
    m, x, info = _method(repulsion_scale=0.0)
    m.eval()
    m.fill_bank([_batch(x, info, range(N))])
    idx = torch.tensor([0, 5, 7, 11])
    with torch.no_grad():
        m.theta.copy_(torch.linspace(-2, 2, N))
        v = m.model(x[idx]).features
    neigh = m.neighbour_index[idx].reshape(-1)
    rows_v = torch.cat([v, m.bank_features[neigh]])            # R = B · (1 + K) = 36 rows
    rows_y = torch.cat([info.labels[idx], info.labels[neigh]])
    rows_w = 1 - torch.sigmoid(m.theta.detach()[torch.cat([idx, neigh])])
    want = _centres_after(rows_v, rows_y, rows_w, C)
    m.training_step(_batch(x, info, idx), 0, 0)
    torch.testing.assert_close(m.centres, want, rtol=1e-5, atol=1e-7)


def test_centre_update_leaves_out_unseen_neighbours():
    m, x, info = _method(repulsion_scale=0.0)
    m.eval()
    idx = torch.tensor([1, 2, 3])
    with torch.no_grad():
        v = m.model(x[idx]).features
    m.training_step(_batch(x, info, idx), 0, 0)  # empty bank: the batch's own rows only
    lam = torch.sigmoid(m.theta.detach()[idx])
    torch.testing.assert_close(m.centres, _centres_after(v, info.labels[idx], 1 - lam, C),
                               rtol=1e-5, atol=1e-7)


def test_far_apart_aux_does_not_underflow():
    x, info = _data()
    info.aux = torch.arange(N, dtype=torch.float32)[:, None]
    m = LDLVA(_model(), info, bandwidth=1e-4)  # neighbours ≥ 2/23 apart in [−1, 1]
    assert m.neighbour_similarity.max() == 0.0  # a_ik underflows …
    r = m.training_step(_batch(x, info, range(6)), 0, 0)
    assert torch.isfinite(r.loss)  # … but the normalised weights do not
    np.testing.assert_allclose(m.constructed_distributions()[:6].sum(1), 1.0, atol=1e-5)


def test_without_aux_soft_labels_are_the_auxiliary_space():
    x, info = _data(aux=False)
    m = LDLVA(_model(), info, num_neighbors=4)
    assert m.aux_source == "soft_labels"
    # soft labels of one class are identical (8 items a class): neighbours share the label
    assert (info.labels[m.neighbour_index] == info.labels[:, None]).all()


def test_predict_train_and_test_splits():
    m, x, info = _method()
    m.eval()
    idx = [2, 9, 13]
    p = m.predict(_batch(x, info, idx))
    np.testing.assert_allclose(p.uncertainty.numpy(), m.lambdas()[idx], rtol=1e-6)
    assert p.latent.shape == (3, C)
    torch.testing.assert_close(p.latent.sum(1), torch.ones(3))
    assert p.probs.shape == (3, C) and p.embedding.shape == (3, 8)
    q = m.predict(_batch(x, info, idx, split="test"))
    assert q.latent is None
    ent = -(q.probs * q.probs.log()).sum(1)
    torch.testing.assert_close(q.uncertainty, ent)


def test_registry_creates_ldlva_with_defaults():
    x, info = _data()
    m = methods.create("ldlva", _model(), info, neighbour_mode="exact")
    assert isinstance(m, LDLVA) and m.neighbour_mode == "exact"
    assert m.params["gamma"] == 0.01 and m.k == 8
    with pytest.raises(ValueError, match="no parameter"):
        methods.create("ldlva", _model(), info, nope=1)


def test_input_validation():
    x, info = _data()
    with pytest.raises(ValueError, match="neighbour_mode"):
        LDLVA(_model(), info, neighbour_mode="fast")
    with pytest.raises(ValueError, match="bandwidth"):
        LDLVA(_model(), info, bandwidth=0.0)
    bad = copy.copy(info)
    bad.aux = torch.zeros(N - 1, 2)
    with pytest.raises(ValueError, match="info.aux"):
        LDLVA(_model(), bad)
    with pytest.raises(ValueError, match="more than k"):
        knn_l1(torch.zeros(8, 2), 8)
    with pytest.raises(ValueError, match="NaN"):
        knn_l1(torch.tensor([[0.0], [float("nan")], [1.0]]), 1)
    with pytest.raises(TypeError, match="aux"):
        knn_l1(np.zeros((4, 2)), 1)
    m = LDLVA(_model(), info, neighbour_mode="exact")
    with pytest.raises(RuntimeError, match="attach_dataset"):
        m.training_step(_batch(x, info, [0, 1]), 0, 0)
    with pytest.raises(ValueError, match="index"):
        m.training_step({"x": x[:2], "index": torch.tensor([0, N])}, 0, 0)
    with pytest.raises(ValueError, match="contribution"):
        aggregate_neighbours(torch.ones(1, 2, 3), torch.zeros(1, 2))
