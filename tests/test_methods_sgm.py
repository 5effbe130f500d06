"""SGM method (SPEC §4): balanced batches, loss, k-NN prediction, reference bank, linear
embedding, sub-classes (Algorithm 2)."""

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
from affectlab.models.resnet import SmallResNet18

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
    x = 0.05 * x  # classes start crowded together: posteriors near uniform, a high loss
    method = methods.create("sgm", Linear(seed=1), info, n_per_class=5)
    assert isinstance(method, SGMMethod)
    batch = _batch(x, info, method.batch_sampler(0, 0, 0)[0])
    first = method.training_step(batch, 0, 0)
    z = method.head(method.model(batch["x"]).features)  # the linear layer on the features
    want = float(sgm_loss(z.detach(), batch["y"], sigma=0.5))
    assert float(first.loss.detach()) == pytest.approx(want, rel=1e-6)
    first.loss.backward()
    g = method.head.weight.grad
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
    method = methods.create("sgm", Linear(identity=True), info, embedding="model")
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
    method = methods.create("sgm", Linear(identity=True), info, k=1, embedding="model")
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
    method = methods.create("sgm", Linear(), info, embedding="model")
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


# -- linear embedding (SPEC §4: no ReLU after the last layer, d = 32 or 64) ---------------

def _faces(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % K
    return (torch.rand(n, 1, 16, 16, generator=g),
            TrainSetInfo(n, K, F.one_hot(labels, K).float(), labels))


def test_default_embedding_is_linear_64_and_can_be_negative():
    x, info = _faces()
    model = SmallResNet18(num_classes=K, width=4)
    method = methods.create("sgm", model, info, n_per_class=2)
    assert method.params["embedding"] == "linear" and method.embedding_dim == 64
    assert isinstance(method.head, nn.Linear)
    assert (method.head.in_features, method.head.out_features) == (model.feature_dim, 64)
    method.eval()
    batch = {"x": x, "index": torch.arange(len(x)), "split": "test"}
    method.fit_reference(method.embed(x).detach())
    z = method.predict(batch).embedding
    out = model(x)
    assert z.shape == (len(x), 64) and method.bank_z.shape == (len(x), 64)
    torch.testing.assert_close(z, method.head(out.features))  # linear in the features
    assert float(z.min()) < 0  # no ReLU: the whole of R^d, not the positive orthant
    assert float(out.embedding.detach().min()) >= 0  # the model's own (ReLU) layer, left unused


def test_embedding_dim_option_and_model_embedding():
    x, info = _faces()
    m32 = methods.create("sgm", SmallResNet18(num_classes=K, width=4), info, embedding_dim=32)
    assert m32.embed(x).shape == (len(x), 32) and m32.bank_z.shape[1] == 32
    model = SmallResNet18(num_classes=K, width=4, embedding_dim=16)
    plain = methods.create("sgm", model, info, embedding="model")
    assert plain.head is None and plain.embedding_dim == 16
    torch.testing.assert_close(plain.embed(x), model(x).embedding)
    with pytest.raises(ValueError, match="embedding must be one of linear, model"):
        methods.create("sgm", model, info, embedding="relu")


# -- sub-classes (Algorithm 2) ----------------------------------------------------------

def _two_blob_classes(n_per=12, seed=0, soft=True):
    """K classes, each two blobs 4 apart along axis 3 (the hidden sub-class)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(2 * n_per)
    comp = torch.arange(2).repeat_interleave(n_per).repeat(K)
    x = 8.0 * torch.eye(K, D)[labels] + 0.3 * torch.randn(len(labels), D, generator=g)
    x[:, 3] += 4.0 * comp
    y = F.one_hot(labels, K).float()
    if soft:
        y = y * 0.7 + 0.1
    return x, TrainSetInfo(len(labels), K, y, labels), comp


def _one_blob_classes(n_per=40, seed=0):
    """K classes of one Gaussian blob each: mixtures split them with soft responsibilities."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(K).repeat_interleave(n_per)
    x = 8.0 * torch.eye(K, D)[labels] + torch.randn(len(labels), D, generator=g)
    return x, TrainSetInfo(len(labels), K, F.one_hot(labels, K).float(), labels)


@pytest.mark.parametrize("level", [2, 3, 4])
def test_refined_labels_are_one_hot_with_k_times_l_groups(level):
    x, info = _one_blob_classes()
    ref = refine_labels(info, x, level)
    fine = ref.info.soft_labels
    # hard relabelling: every row one-hot (mixture responsibilities would be fractional here)
    assert torch.equal((fine > 0).sum(1), torch.ones(len(x), dtype=torch.long))
    assert torch.equal(fine.max(1).values, torch.ones(len(x)))
    assert ref.level == level and ref.info.num_classes == K * level == fine.shape[1]
    assert torch.equal(fine.argmax(1), ref.info.labels)
    # sub-class k_j + g lies in original class j; every group has members
    assert ref.parent.tolist() == [j for j in range(K) for _ in range(level)]
    assert torch.equal(ref.parent[ref.info.labels], info.labels)
    assert torch.bincount(ref.info.labels, minlength=K * level).min() > 0


def test_refine_labels_recovers_planted_subclasses():
    x, info, comp = _two_blob_classes(soft=False)
    ref = refine_labels(info, x, 2)
    truth = (info.labels * 2 + comp).numpy()
    assert adjusted_rand_score(truth, ref.info.labels.numpy()) > 0.95
    with pytest.raises(ValueError, match="n_items"):
        refine_labels(info, x[:3])
    with pytest.raises(ValueError, match="level must be an integer ≥ 2"):
        refine_labels(info, x, 1)


def test_soft_label_mass_of_each_class_goes_whole_to_one_component():
    x, info, comp = _two_blob_classes(soft=True)
    ref = refine_labels(info, x, 2)
    fine = ref.info.soft_labels
    assert torch.allclose(fine.sum(1), torch.ones(len(x)), atol=1e-6)
    for j in range(K):
        cols = fine[:, ref.parent == j]  # (n, 2): class j's two sub-classes
        assert torch.equal((cols > 0).sum(1), torch.ones(len(x), dtype=torch.long))
        torch.testing.assert_close(cols.sum(1), info.soft_labels[:, j])  # Σ_g y'_(j,g) = y_j
    # an item's own class mass sits on its own hard component
    assert adjusted_rand_score((info.labels * 2 + comp).numpy(), fine.argmax(1).numpy()) > 0.95


def test_mass_of_a_class_nobody_is_argmax_of_moves_to_the_items_own_class():
    x, info, _ = _two_blob_classes(soft=False)
    rows = {0: [0.7, 0.0, 0.3], 1: [0.0, 0.7, 0.3], 2: [0.3, 0.6, 0.1]}  # class 2: no argmax
    y = torch.tensor([rows[int(c)] for c in info.labels])
    ref = refine_labels(TrainSetInfo(len(x), K, y, info.labels), x, 2)
    assert ref.info.num_classes == 2 * 2 and set(ref.parent.tolist()) == {0, 1}
    fine = ref.info.soft_labels
    torch.testing.assert_close(fine.sum(1), torch.ones(len(x)))
    per_class = torch.zeros(len(x), K).index_add_(1, ref.parent, fine)
    own = y.argmax(1)
    want = y.clone()
    want[torch.arange(len(x)), own] += y[:, 2]
    want[:, 2] = 0
    torch.testing.assert_close(per_class, want)


def test_bic_and_fixed_components_options():
    x, info, _ = _two_blob_classes(n_per=60, soft=False)
    bic = refine_labels(info, x, 4, components="bic")
    assert bic.info.num_classes == 2 * K  # two blobs a class: BIC picks 2 of 1..4
    fixed = refine_labels(info, x, 3, components=2)
    assert fixed.info.num_classes == 2 * K


def test_subclass_levels_refine_each_original_class_during_training():
    x, info, comp = _two_blob_classes()
    method = methods.create("sgm", Linear(identity=True), info, subclass_levels=3,
                            subclass_every=2, n_per_class=3, embedding="model")
    assert method.level == 1 and torch.equal(method.subclass_of(), info.labels)
    method.on_epoch_end(_loader(x, info))
    assert method.level == 1 and method.targets is None
    method.on_epoch_end(_loader(x, info))
    assert method.level == 2 and method.targets.shape == (len(x), 2 * K)
    assert adjusted_rand_score((info.labels * 2 + comp).numpy(),
                               method.subclass_of().numpy()) > 0.95
    batches = method.batch_sampler(0, 0, 0)
    assert all(len(b) == 3 * 2 * K for b in batches)  # balanced over the 6 sub-classes
    r = method.training_step(_batch(x, info, batches[0]), 0, 0)
    assert math.isfinite(float(r.loss.detach())) and r.parts["level"] == 2.0
    method.on_epoch_end(_loader(x, info))
    method.on_epoch_end(_loader(x, info))
    # level 3: three components of each ORIGINAL class (K·3), not the level-2 groups split again
    assert method.level == 3 and method.targets.shape == (len(x), 3 * K)
    assert torch.equal(method.refinements[-1].parent[method.subclass_of()], info.labels)
    for _ in range(2):
        method.on_epoch_end(_loader(x, info))
    assert method.level == 3  # no deeper than subclass_levels
    pred = method.predict(_batch(x, info, range(4), split="val"))
    assert pred.probs.shape == (4, K)  # predictions stay over the original classes
    assert np.isfinite(pred.uncertainty.numpy()).all()


def _refined_to_level_2():
    x, info, _ = _two_blob_classes()
    method = methods.create("sgm", Linear(identity=True), info, subclass_levels=3,
                            subclass_every=2, n_per_class=3, embedding="model")
    for _ in range(3):
        method.on_epoch_end(_loader(x, info))
    assert method.level == 2 and method._epochs_done == 3
    return x, info, method


def _rebuilt(info, state):
    fresh = methods.create("sgm", Linear(identity=True), info, subclass_levels=3,
                           subclass_every=2, n_per_class=3, embedding="model")
    fresh.load_state_dict(state)
    return fresh


def test_refinement_state_survives_a_checkpoint(tmp_path):
    """A resumed or rebuilt run has the sub-classes it trained on: level, targets, ids, names
    and the epoch count of the schedule come back from the state_dict, through a
    weights_only load; the next level then comes at the same epoch as without the stop."""
    from affectlab.engine.checkpoint import check_plain

    x, info, method = _refined_to_level_2()
    state = method.state_dict()
    check_plain(state)
    torch.save(state, tmp_path / "m.pt")
    other = _rebuilt(info, torch.load(tmp_path / "m.pt", weights_only=True))
    assert other.level == 2 and other._epochs_done == 3
    assert torch.equal(other.targets, method.targets)
    assert torch.equal(other.subclass_of(), method.subclass_of())
    assert other.refinements[-1].names == method.refinements[-1].names
    assert torch.equal(other.train_subclasses(), method.train_subclasses())
    b = _batch(x, info, method.batch_sampler(0, 0, 0)[0])
    assert torch.equal(other.training_step(b, 0, 0).loss, method.training_step(b, 0, 0).loss)
    assert method.batch_sampler(0, 1, 7) == other.batch_sampler(0, 1, 7)
    for m in (method, other):  # epoch 4: level 3 in both
        m.on_epoch_end(_loader(x, info))
    assert method.level == other.level == 3
    assert torch.equal(other.subclass_of(), method.subclass_of())


def test_a_state_dict_without_refinement_state_loads_at_level_1():
    x, info, method = _refined_to_level_2()
    old = {k: v for k, v in method.state_dict().items() if k != "_extra_state"}
    other = _rebuilt(info, old)
    assert other.level == 1 and other.targets is None and other.train_subclasses() is None
    assert torch.equal(other.bank_z, method.bank_z)


def test_a_refinement_state_that_does_not_fit_is_refused():
    x, info, method = _refined_to_level_2()
    state = method.state_dict()
    extra = state["_extra_state"]
    for bad in ({**extra, "level": 3},  # level 3 without a level-3 refinement
                {**extra, "refinements": [{**extra["refinements"][0],
                                           "labels": torch.zeros(5, dtype=torch.long)}]},
                {**extra, "refinements": [{**extra["refinements"][0],
                                           "parent": extra["refinements"][0]["parent"] + K}]}):
        with pytest.raises(ValueError, match="does not fit"):
            _rebuilt(info, {**state, "_extra_state": bad})
    with pytest.raises(ValueError, match="subclass_levels"):
        fresh = methods.create("sgm", Linear(identity=True), info, embedding="model")
        fresh.load_state_dict(state)  # saved at level 2, rebuilt with no sub-classes


def test_prediction_equals_the_subclass_vote_summed_per_class():
    """The k-NN vote over original soft labels = the vote over sub-class labels, each class's
    sub-classes summed (Σ_g y'_(j,g) = y_j)."""
    x, info, _ = _two_blob_classes()
    method = methods.create("sgm", Linear(identity=True), info, k=5, embedding="model")
    method.fit_reference(x)
    ref = method.refine()
    query = x[:9] + 0.1
    fine_vote = knn_soft_vote(query, x, ref.info.soft_labels, k=5)
    summed = torch.zeros(9, K).index_add_(1, ref.parent, fine_vote)
    got = method.predict({"x": query, "index": torch.arange(9), "split": "test"}).probs
    torch.testing.assert_close(got, summed)
