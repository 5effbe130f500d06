"""SGM method (SPEC §4): balanced batches, loss, k-NN prediction, reference bank, sub-classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score
from torch import nn

from affectlab import methods
from affectlab.losses import sgm_loss
from affectlab.methods.base import TrainSetInfo
from affectlab.methods.sgm import SGMMethod, knn_soft_vote, refine_labels
from affectlab.models.base import EmotionModel, ModelOutput

K, D = 3, 4


class Linear(EmotionModel):
    """x (B, D) → FC (embedding, no ReLU, D-d) → FC K. ``identity`` starts the FC at I."""

    def __init__(self, num_classes=K, dim=D, identity=False, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.num_classes, self.embedding_dim, self.feature_dim = num_classes, dim, dim
        self.fc = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, num_classes)
        if identity:
            with torch.no_grad():
                self.fc.weight.copy_(torch.eye(dim))
                self.fc.bias.zero_()

    def forward(self, x, lengths=None):
        e = self.fc(x)
        return ModelOutput(self.out(e), e, x)


def _clusters(n_per=10, seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(n_per)
    centres = 5.0 * torch.eye(K, D)
    x = centres[labels] + spread * torch.randn(len(labels), D, generator=g)
    soft = F.one_hot(labels, K).float() * 0.8 + 0.2 / K
    return x, TrainSetInfo(len(labels), K, soft, labels)


def _batch(x, info, idx, split="train"):
    idx = torch.as_tensor(idx)
    return {"x": x[idx], "y": info.soft_labels[idx], "label": info.labels[idx], "index": idx,
            "split": split}


def _loader(x, info, bs=7):
    return [_batch(x, info, range(i, min(i + bs, len(x)))) for i in range(0, len(x), bs)]


def test_batches_are_class_balanced():
    x, info = _clusters(n_per=12)
    method = methods.create("sgm", Linear(), info, n_per_class=4)
    batches = method.batch_sampler(999, epoch=0, seed=0)
    assert len(batches) == 36 // 12
    for b in batches:
        assert len(b) == 4 * K
        assert torch.bincount(info.labels[torch.tensor(b)], minlength=K).tolist() == [4] * K
    assert batches != method.batch_sampler(999, epoch=1, seed=0)


def test_step_is_sgm_loss_and_training_reduces_it():
    x, info = _clusters(spread=2.0)
    method = methods.create("sgm", Linear(seed=1), info, n_per_class=5)
    assert isinstance(method, SGMMethod)
    batch = _batch(x, info, method.batch_sampler(0, 0, 0)[0])
    first = method.training_step(batch, 0, 0)
    z = method.model(batch["x"]).embedding
    want = float(sgm_loss(z.detach(), batch["y"], sigma=0.5))
    assert float(first.loss.detach()) == pytest.approx(want, rel=1e-6)
    first.loss.backward()
    g = method.model.fc.weight.grad
    assert g is not None and torch.isfinite(g).all() and float(g.abs().sum()) > 0
    opt = method.optimizers(lr=0.05, weight_decay=0.0)[0]
    opt.step()
    for step in range(30):
        opt.zero_grad()
        method.training_step(batch, 0, step).loss.backward()
        opt.step()
    last = method.training_step(batch, 0, 31).loss.detach()
    assert float(last) < 0.5 * float(first.loss.detach())


def test_knn_soft_vote_hand_example():
    ref = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    y = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]])
    q = torch.tensor([[0.9], [5.0]])
    got = knn_soft_vote(q, ref, y, k=2)
    assert torch.allclose(got, torch.tensor([[0.75, 0.25], [0.25, 0.75]]))
    # excluding row 1 for the first query: neighbours 0 and 2
    got = knn_soft_vote(q, ref, y, k=2, exclude=torch.tensor([1, -1]))
    assert torch.allclose(got[0], torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="share D"):
        knn_soft_vote(q, torch.zeros(4, 2), y, k=1)


def test_knn_prediction_recovers_separated_clusters():
    x, info = _clusters()
    method = methods.create("sgm", Linear(identity=True), info)
    with pytest.raises(RuntimeError, match="fit_reference"):
        method.predict(_batch(x, info, range(3)))
    method.on_epoch_end(_loader(x, info))
    assert bool(method.bank_filled.all())
    assert torch.allclose(method.bank_z, x, atol=1e-6)
    xt, info_t = _clusters(n_per=5, seed=7)
    pred = method.predict(_batch(xt, info_t, range(len(xt)), split="test"))
    assert torch.equal(pred.probs.argmax(1), info_t.labels)
    # k = 11 > 10 per class: one neighbour from another class at most
    assert torch.allclose(pred.probs.sum(1), torch.ones(len(xt)))
    assert torch.all(pred.probs.max(1).values > 0.6)
    ent = -(pred.probs * pred.probs.log()).sum(1)
    assert torch.allclose(pred.uncertainty, ent, atol=1e-6)


def test_training_items_are_not_their_own_neighbour():
    x, info = _clusters(n_per=3)
    x[0] = torch.tensor([100.0, 0, 0, 0])  # far from everyone
    info.soft_labels[0] = torch.tensor([0.0, 0.0, 1.0])
    method = methods.create("sgm", Linear(identity=True), info, k=1)
    method.fit_reference(x)
    own = method.predict(_batch(x, info, [0], split="test")).probs
    loo = method.predict(_batch(x, info, [0], split="train")).probs
    assert torch.allclose(own, info.soft_labels[0:1])
    assert torch.allclose(loo, info.soft_labels[1:2])  # item 1 is item 0's nearest other


def test_bank_is_saved_with_state_dict_and_hook_keeps_train_mode():
    x, info = _clusters()
    method = methods.create("sgm", Linear(seed=2), info)
    method.train()
    method.on_epoch_end(_loader(x, info))
    assert method.model.training
    other = methods.create("sgm", Linear(seed=3), info)
    other.load_state_dict(method.state_dict())
    b = _batch(x, info, range(6), split="val")
    assert torch.allclose(other.predict(b).probs, method.predict(b).probs)


def test_fit_reference_validation():
    x, info = _clusters()
    method = methods.create("sgm", Linear(), info)
    with pytest.raises(ValueError, match="n_items"):
        method.fit_reference(x[:5])
    with pytest.raises(ValueError, match=r"\(m, 4\)"):
        method.fit_reference(torch.zeros(len(x), 2))
    with pytest.raises(ValueError, match="index"):
        method.fit_reference(x[:2], index=torch.tensor([0, 99]))
    bad = x.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        method.fit_reference(bad)
    with pytest.raises(ValueError, match="sigma"):
        methods.create("sgm", Linear(), info, sigma=0.0)
    with pytest.raises(ValueError, match="subclass_components"):
        methods.create("sgm", Linear(), info, subclass_components=0)


def _two_blob_classes(n_per=12, seed=0):
    """K classes, each two blobs 4 apart along axis 3 (the hidden sub-class)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(2 * n_per)
    comp = torch.arange(2).repeat_interleave(n_per).repeat(K)
    x = 8.0 * torch.eye(K, D)[labels] + 0.3 * torch.randn(len(labels), D, generator=g)
    x[:, 3] += 4.0 * comp
    soft = F.one_hot(labels, K).float() * 0.7 + 0.1
    return x, TrainSetInfo(len(labels), K, soft, labels), comp


def test_refine_labels_splits_mass_by_component():
    x, info, comp = _two_blob_classes()
    ref = refine_labels(info, x, n_components=2)
    assert ref.info.num_classes == 2 * K
    fine = ref.info.soft_labels
    assert torch.allclose(fine.sum(1), torch.ones(len(x)), atol=1e-6)
    # Σ_m y'_(c,m) = y_c: the finer label keeps each class's mass
    coarse = torch.zeros(len(x), K).index_add_(1, ref.parent, fine)
    assert torch.allclose(coarse, info.soft_labels, atol=1e-5)
    truth = (info.labels * 2 + comp).numpy()
    assert adjusted_rand_score(truth, ref.info.labels.numpy()) > 0.95
    assert torch.equal(fine.argmax(1), ref.info.labels)
    with pytest.raises(ValueError, match="n_items"):
        refine_labels(info, x[:3])


def test_subclass_levels_refine_during_training():
    x, info, comp = _two_blob_classes()
    method = methods.create("sgm", Linear(identity=True), info, subclass_levels=1,
                            subclass_every=2, n_per_class=3)
    method.on_epoch_end(_loader(x, info))
    assert method.level == 0 and method.targets is None
    method.on_epoch_end(_loader(x, info))
    assert method.level == 1 and method.targets.shape == (len(x), 2 * K)
    assert adjusted_rand_score((info.labels * 2 + comp).numpy(),
                               method.subclass_of().numpy()) > 0.95
    batches = method.batch_sampler(0, 0, 0)
    assert all(len(b) == 3 * 2 * K for b in batches)  # balanced over the 6 sub-classes
    r = method.training_step(_batch(x, info, batches[0]), 0, 0)
    assert math.isfinite(float(r.loss.detach())) and r.parts["level"] == 1.0
    method.on_epoch_end(_loader(x, info))
    method.on_epoch_end(_loader(x, info))
    assert method.level == 1  # no deeper than subclass_levels
    pred = method.predict(_batch(x, info, range(4), split="val"))
    assert pred.probs.shape == (4, K)  # predictions stay over the original classes
    assert np.isfinite(pred.uncertainty.numpy()).all()
