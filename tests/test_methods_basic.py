"""Soft-label methods (ce, emd2, ce+emd2) and CE + f-SPL (SPEC §2–3) on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from affectlab import methods
from affectlab.losses import emd2
from affectlab.methods.base import TrainSetInfo
from affectlab.methods.fspl import CEFSPL, split_triplet_batch
from affectlab.methods.softlabel import CEEMD2Method, EMD2Method, SoftCE
from affectlab.models.base import EmotionModel, ModelOutput

N, K, DIM = 30, 3, 6
MY_METHODS = ["ce", "ce+fspl-kl", "ce+fspl-rkl", "ce+fspl-pearson", "ce+fspl-hellinger",
              "ce+fspl-js", "emd2", "ce+emd2", "sgm"]
FSPL = [m for m in MY_METHODS if m.startswith("ce+fspl-")]


class TinyMLP(EmotionModel):
    """x (B, DIM) → FC → ReLU (embedding, 8-d) → FC K."""

    modality = "face"

    def __init__(self, num_classes: int = K, dim: int = DIM, emb: int = 8, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.num_classes, self.embedding_dim, self.feature_dim = num_classes, emb, dim
        self.fc = nn.Linear(dim, emb)
        self.out = nn.Linear(emb, num_classes)

    def forward(self, x, lengths=None):
        e = F.relu(self.fc(x))
        return ModelOutput(logits=self.out(e), embedding=e, features=x)


def _data(ordinal: bool = False, seed: int = 0):
    """Items of K classes; soft labels from a few discrete levels (as averaged ratings)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N) % K
    level = torch.tensor([0.6, 0.8, 1.0])[torch.randint(0, 3, (N,), generator=g)]
    soft = ((1 - level) / (K - 1)).unsqueeze(1).repeat(1, K)
    soft[torch.arange(N), labels] = level
    x = torch.randn(N, DIM, generator=g) + 2.0 * F.one_hot(labels, DIM).float()
    info = TrainSetInfo(n_items=N, num_classes=K, soft_labels=soft, labels=labels,
                        ordinal=ordinal)
    return x, info


def _batch(x, info, idx):
    idx = torch.as_tensor(idx)
    return {"x": x[idx], "y": info.soft_labels[idx], "label": info.labels[idx], "index": idx,
            "split": "train"}


def _make(name, seed=0, **params):
    x, info = _data(ordinal=name in ("emd2", "ce+emd2"))
    return methods.create(name, TinyMLP(seed=seed), info, **params), x, info


# -- registry ---------------------------------------------------------------------------------

def test_registry_lists_my_methods_with_params():
    specs = {s.name: s for s in methods.available()}
    for name in MY_METHODS:
        assert specs[name].implemented, name
        assert specs[name].description
    assert specs["ce"].params == {"class_weights": True}
    for name in FSPL:
        assert specs[name].params["alpha"] == 10.0
        assert name.removeprefix("ce+fspl-") != ""
    assert specs["ce+fspl-js"].description != specs["ce+fspl-kl"].description
    assert "Jensen" in specs["ce+fspl-js"].description
    assert specs["emd2"].ordinal_only and specs["ce+emd2"].ordinal_only
    assert not specs["ce"].ordinal_only
    assert specs["ce+emd2"].params["emd2_weight"] == 1.0
    assert specs["sgm"].params["sigma"] == 0.5 and specs["sgm"].params["k"] == 11


@pytest.mark.parametrize("name", MY_METHODS)
def test_create_every_name(name):
    method, _, _ = _make(name)
    assert isinstance(method, methods.Method)
    assert method.method_name == name


def test_unknown_param_and_bad_values_rejected():
    x, info = _data()
    with pytest.raises(ValueError, match="no parameter"):
        methods.create("ce", TinyMLP(), info, alpha=3)
    with pytest.raises(ValueError, match="alpha"):
        methods.create("ce+fspl-kl", TinyMLP(), info, alpha=-1.0)
    with pytest.raises(ValueError, match="class_weights must be true or false"):
        methods.create("ce", TinyMLP(), info, class_weights="yes")
    with pytest.raises(ValueError, match="method_name"):
        CEFSPL(TinyMLP(), info, method_name="ce+fspl-xx")
    with pytest.raises(ValueError, match="decimals must be an integer"):  # built directly
        CEFSPL(TinyMLP(), info, method_name="ce+fspl-kl", decimals=2.5)
    with pytest.raises(ValueError, match="model outputs 4 classes"):
        methods.create("ce", TinyMLP(num_classes=4), info)
    bad = TrainSetInfo(n_items=N, num_classes=K, soft_labels=info.soft_labels[:5],
                       labels=info.labels)
    with pytest.raises(ValueError, match="soft_labels"):
        methods.create("ce", TinyMLP(), bad)


# -- ce ---------------------------------------------------------------------------------------

def test_ce_matches_hand_formula_with_paper_weights():
    method, x, info = _make("ce")
    y = info.soft_labels
    w = N / (K * y.sum(dim=0))  # N / (K·Σᵢ yᵢᶜ)
    batch = _batch(x, info, range(10))
    logits = method.model(batch["x"]).logits
    want = -(w * batch["y"] * logits.log_softmax(1)).sum(1).mean()
    got = method.training_step(batch, 0, 0)
    assert torch.allclose(got.loss, want, atol=1e-6)
    assert got.parts["ce"] == pytest.approx(float(want.detach()), abs=1e-6)


def test_ce_without_weights_is_torch_cross_entropy():
    method, x, info = _make("ce", class_weights=False)
    batch = _batch(x, info, range(12))
    want = F.cross_entropy(method.model(batch["x"]).logits, batch["y"])
    assert torch.allclose(method.training_step(batch, 0, 0).loss, want, atol=1e-6)


def test_class_weights_differ_from_one_on_unbalanced_labels():
    x, info = _data()
    keep = torch.cat([torch.arange(N)[info.labels != 2], torch.tensor([2])])
    sub = TrainSetInfo(len(keep), K, info.soft_labels[keep], info.labels[keep])
    method = SoftCE(TinyMLP(), sub, method_name="ce", class_weights=True)
    mass = sub.soft_labels.sum(0)
    assert torch.allclose(method.class_weight, (len(keep) / (K * mass)).float())
    assert float(method.class_weight[2]) > float(method.class_weight[0])


# -- emd2 / ce+emd2 ----------------------------------------------------------------------------

def test_emd2_rejected_for_unordered_label_set():
    x, info = _data(ordinal=False)
    for name in ("emd2", "ce+emd2"):
        with pytest.raises(ValueError, match="ordered label set"):
            methods.create(name, TinyMLP(), info)


def test_emd2_step_is_squared_cdf_gap_of_softmax():
    method, x, info = _make("emd2")
    assert isinstance(method, EMD2Method)
    batch = _batch(x, info, range(8))
    p = method.model(batch["x"]).logits.softmax(1).detach().double().numpy()
    t = batch["y"].double().numpy()
    want = ((np.cumsum(p, 1) - np.cumsum(t, 1)) ** 2).sum(1).mean()  # no 1/K, no root
    got = method.training_step(batch, 0, 0)
    assert float(got.loss.detach()) == pytest.approx(want, rel=1e-5)
    assert float(got.loss.detach()) == pytest.approx(float(emd2(torch.tensor(p), torch.tensor(t)).mean()),
                                            rel=1e-5)


def test_ce_emd2_is_ce_plus_weighted_emd2():
    m1, x, info = _make("ce+emd2", emd2_weight=1.0)
    m3, _, _ = _make("ce+emd2", emd2_weight=3.0)
    assert isinstance(m1, CEEMD2Method)
    batch = _batch(x, info, range(9))
    r1, r3 = m1.training_step(batch, 0, 0), m3.training_step(batch, 0, 0)
    assert r1.parts["ce"] == pytest.approx(r3.parts["ce"], rel=1e-6)
    assert float(r1.loss.detach()) == pytest.approx(r1.parts["ce"] + r1.parts["emd2"], rel=1e-5)
    assert float(r3.loss.detach()) == pytest.approx(r3.parts["ce"] + 3 * r3.parts["emd2"], rel=1e-5)
    ce_only, _, _ = _make("ce")
    assert r1.parts["ce"] == pytest.approx(float(ce_only.training_step(batch, 0, 0).loss.detach()),
                                           rel=1e-6)


# -- training makes progress (every method of this file) ---------------------------------------

def _fixed_batch(method, x, info):
    custom = method.batch_sampler(8, 0, 0)
    idx = custom[0] if custom is not None else list(range(N))
    return _batch(x, info, idx)


@pytest.mark.parametrize("name", ["ce", "emd2", "ce+emd2", *FSPL])
def test_loss_finite_gradients_flow_and_decrease(name):
    method, x, info = _make(name)
    batch = _fixed_batch(method, x, info)
    opt = method.optimizers(lr=0.05, weight_decay=0.0)[0]
    first = method.training_step(batch, 0, 0)
    assert math.isfinite(float(first.loss.detach()))
    first.loss.backward()
    for pname, p in method.model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert float(p.grad.abs().sum()) > 0, pname
    opt.step()
    for step in range(1, 40):
        opt.zero_grad()
        loss = method.training_step(batch, 0, step).loss
        loss.backward()
        opt.step()
    last = float(method.training_step(batch, 0, 40).loss.detach())
    assert last < 0.8 * float(first.loss.detach())


# -- f-SPL batches ------------------------------------------------------------------------------

def test_fspl_batches_hold_balanced_triplets():
    method, x, info = _make("ce+fspl-kl")
    b = 4
    batches = method.batch_sampler(b, epoch=0, seed=1)
    assert [len(x) for x in batches[:-1]] == [3 * b] * (len(batches) - 1)
    assert len(batches[-1]) % 3 == 0
    anchors = [i for bt in batches for i in bt[:len(bt) // 3]]
    assert sorted(anchors) == list(range(N))  # every item an anchor once per epoch
    y = info.soft_labels.double()
    # anchors without any key pair (c, 2 − c) get the sampler's nearest-pair fallback
    t = method.triplet_sampler(1).triplets(0)
    fallback = set(t.anchor[t.fallback].tolist())
    assert len(fallback) < N // 2
    for bt in batches:
        n = len(bt) // 3
        a, s, d = (torch.tensor(bt[j * n:(j + 1) * n]) for j in range(3))
        c_s = 2 - (y[a] - y[s]).abs().sum(1)
        c_d = 2 - (y[a] - y[d]).abs().sum(1)
        ok = torch.tensor([i not in fallback for i in a.tolist()])
        # keys round C to 0.01, so each balanced triplet's C_s + C_d is 2 within two roundings
        assert torch.all((c_s + c_d - 2)[ok].abs() <= 0.01 + 1e-9)
        assert abs(float((c_s - 1)[ok].sum() + (c_d - 1)[ok].sum())) <= 0.01 * n + 1e-9
        assert torch.all(c_s >= c_d)
        assert torch.all(a != s) and torch.all(a != d)


def test_fspl_batches_balanced_for_likert_style_labels():
    """Two-class Likert soft labels (f-SPL §4.1): every anchor has a key pair, so every batch
    satisfies Σ(C − 1) = 0 up to the key rounding."""
    levels = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    v = levels[torch.arange(40) % 5]
    soft = torch.stack([1 - v, v], dim=1)
    info = TrainSetInfo(40, 2, soft, soft.argmax(1))
    method = CEFSPL(TinyMLP(num_classes=2), info, method_name="ce+fspl-kl")
    assert method.triplet_sampler(0).triplets(0).n_fallback == 0
    for bt in method.batch_sampler(7, 0, 0):
        n = len(bt) // 3
        a, s, d = (torch.tensor(bt[j * n:(j + 1) * n]) for j in range(3))
        c = torch.cat([2 - (soft[a] - soft[s]).abs().sum(1), 2 - (soft[a] - soft[d]).abs().sum(1)])
        assert abs(float((c - 1).sum())) <= 1e-6  # exact here: C takes values k/4


def test_fspl_batches_change_with_epoch_and_repeat_with_seed():
    method, _, _ = _make("ce+fspl-rkl")
    assert method.batch_sampler(5, 0, 3) == method.batch_sampler(5, 0, 3)
    assert method.batch_sampler(5, 0, 3) != method.batch_sampler(5, 1, 3)


def test_fspl_step_reports_balance_and_alpha_weighting():
    x, info = _data()
    m10 = CEFSPL(TinyMLP(), info, method_name="ce+fspl-pearson")
    m0 = CEFSPL(TinyMLP(), info, method_name="ce+fspl-pearson", alpha=0.0)
    batch = _batch(x, info, m10.batch_sampler(6, 0, 0)[0])
    r10, r0 = m10.training_step(batch, 0, 0), m0.training_step(batch, 0, 0)
    assert r10.parts["ce"] == pytest.approx(r0.parts["ce"], rel=1e-6)
    assert r10.parts["fspl"] == pytest.approx(r0.parts["fspl"], rel=1e-6)
    assert r10.parts["fspl"] > 0
    assert float(r0.loss.detach()) == pytest.approx(r0.parts["ce"], rel=1e-6)
    assert float(r10.loss.detach()) == pytest.approx(r10.parts["ce"] + 10 * r10.parts["fspl"], rel=1e-5)
    y, b = batch["y"].double(), 6
    c = torch.cat([2 - (y[:b] - y[b:2 * b]).abs().sum(1), 2 - (y[:b] - y[2 * b:]).abs().sum(1)])
    assert r10.parts["balance"] == pytest.approx(float((c - 1).mean()), abs=1e-6)


def test_fspl_part_matches_hand_computation():
    """Pearson f-SPL (C − S)² with S = 2 − √2‖ĝ_a − ĝ_p‖ and C = 2 − Σ|y_a − y_p|."""
    x, info = _data()
    method = CEFSPL(TinyMLP(), info, method_name="ce+fspl-pearson", class_weights=False)
    idx = method.batch_sampler(5, 0, 0)[0]
    batch = _batch(x, info, idx)
    out = method.model(batch["x"])
    g = F.normalize(out.embedding.detach().double(), dim=1)
    y = batch["y"].double()
    b = 5

    def sim(i, j):
        return 2 - math.sqrt(2) * (g[i] - g[j]).norm(dim=1)

    s_s, s_d = sim(slice(0, b), slice(b, 2 * b)), sim(slice(0, b), slice(2 * b, 3 * b))
    c_s = 2 - (y[:b] - y[b:2 * b]).abs().sum(1)
    c_d = 2 - (y[:b] - y[2 * b:]).abs().sum(1)
    want_f = ((c_s - s_s) ** 2 + (c_d - s_d) ** 2).mean()
    want_ce = -(y[:b] * out.logits.detach().double()[:b].log_softmax(1)).sum(1).mean()
    r = method.training_step(batch, 0, 0)
    assert r.parts["fspl"] == pytest.approx(float(want_f), rel=1e-5)
    assert r.parts["ce"] == pytest.approx(float(want_ce), rel=1e-5)  # anchors only


def test_fspl_rejects_batches_not_made_of_triplets():
    method, x, info = _make("ce+fspl-kl")
    with pytest.raises(ValueError, match="3·B"):
        method.training_step(_batch(x, info, range(7)), 0, 0)
    assert split_triplet_batch(9) == 3
    with pytest.raises(ValueError):
        split_triplet_batch(0)


@pytest.mark.parametrize("name", FSPL)
def test_every_divergence_is_used(name):
    method, x, info = _make(name)
    assert method.divergence == name.removeprefix("ce+fspl-")
    assert method.fspl.divergence == method.divergence


def test_fspl_default_predict_is_softmax():
    method, x, info = _make("ce+fspl-js")
    pred = method.predict(_batch(x, info, range(5)))
    assert pred.probs.shape == (5, K) and pred.embedding.shape == (5, 8)
    assert torch.allclose(pred.probs.sum(1), torch.ones(5))
