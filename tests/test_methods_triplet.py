"""``triplet``: pytorch-metric-learning's triplet-margin loss on SGM's embedding and batches."""

from __future__ import annotations

import pytest
import torch

pml = pytest.importorskip("pytorch_metric_learning")

from pytorch_metric_learning import losses, miners, reducers  # noqa: E402

from affectlab import methods  # noqa: E402
from affectlab.methods import TrainSetInfo  # noqa: E402
from affectlab.methods.sgm import SGMMethod  # noqa: E402
from affectlab.models import create as create_model  # noqa: E402


def _info(n: int = 42, k: int = 3) -> TrainSetInfo:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % k
    soft = torch.nn.functional.one_hot(labels, k).float() * 0.7 + 0.1
    return TrainSetInfo(n_items=n, num_classes=k, soft_labels=soft / soft.sum(1, keepdim=True),
                        labels=labels, aux=torch.rand(n, 2, generator=g))


def _method(name: str = "triplet", **params):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=3, width=4, embedding_dim=16)
    return methods.create(name, model, _info(), **params)


def test_registered_with_the_sgm_embedding_and_batches():
    assert "triplet" in methods.names()
    m, s = _method(n_per_class=4), _method("sgm", n_per_class=4)
    assert m.embedding_dim == s.embedding_dim == 64
    assert m.batch_sampler(0, 0, 7) == s.batch_sampler(0, 0, 7)  # the same batches
    assert "sigma" not in m.params and m.params["triplets"] == "semihard"
    assert isinstance(s, SGMMethod)


def test_loss_is_pml_triplet_margin_on_semihard_triplets():
    m = _method(margin=0.3)
    z = torch.randn(12, 64, generator=torch.Generator().manual_seed(1))
    y = torch.nn.functional.one_hot(torch.arange(12) % 3, 3).float()
    loss, name = m.embedding_loss(z, y)
    labels = torch.arange(12) % 3
    mined = miners.TripletMarginMiner(margin=0.3, type_of_triplets="semihard")(z, labels)
    expected = losses.TripletMarginLoss(margin=0.3)(z, labels, mined)
    assert name == "triplet" and torch.allclose(loss, expected)


def test_training_steps_lower_the_loss_and_predict_by_knn():
    m = _method(n_per_class=6, triplets="all")
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x = torch.rand(18, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    idx = torch.arange(18)
    batch = {"x": x, "y": m.info.soft_labels[idx], "index": idx}
    labels = m.info.soft_labels[idx].argmax(1)
    # the mean over every triplet (the loss itself averages the non-zero ones only)
    every = losses.TripletMarginLoss(margin=0.2, reducer=reducers.MeanReducer())

    def all_triplets() -> float:
        # in train mode (batch statistics, what the steps optimise): eval mode reads BatchNorm
        # running statistics that 15 steps have barely moved, so its value depends on the
        # thread count's rounding (0.18 on one thread, 0.23 on two, from 0.20)
        with torch.no_grad():
            return float(every(m.embed(x), labels))

    before = all_triplets()
    for step in range(15):
        out = m.training_step(batch, 0, step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert all_triplets() < 0.5 * before
    m.eval()
    m.fit_reference(m.embed(x).detach(), index=idx)
    pred = m.predict({"x": x, "split": "train", "index": idx})
    torch.testing.assert_close(pred.probs.sum(1), torch.ones(18))
