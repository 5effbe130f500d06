"""Every method under autocast, as the trainer runs it on CUDA (float16 network outputs).

CUDA is absent in CI, so the same code path is taken on the CPU with ``torch.autocast("cpu",
float16)``: the losses must upcast float16 logits and keep the targets in float32 (a float16 row
of soft labels sums to 1 only within ~1e-3), and the step must stay finite and differentiable.
"""

from __future__ import annotations

import pytest
import torch

from affectlab import methods, models
from affectlab.bench.training import _synthetic
from affectlab.methods.sgm import EmbeddingKnnMethod

ALL = [s.name for s in methods.available()]


def _method_and_batch(name: str):
    items, info = _synthetic("face", 64, 7, seed=0)
    torch.manual_seed(0)
    model = models.create("resnet18", num_classes=7, width=4, embedding_dim=8)
    knn = issubclass(methods.method_class(name), EmbeddingKnnMethod)  # sgm, triplet
    params = {"n_per_class": 2} if knn else {}
    method = methods.create(name, model, info, **params)
    if name == "ldlva":
        method.fill_bank(items.batch(range(s, s + 16), torch.device("cpu")) for s in range(0, 64, 16))
    sampled = method.batch_sampler(16, 0, 0)
    idx = [int(i) for i in next(iter(sampled))] if sampled is not None else list(range(16))
    return method, items.batch(idx, torch.device("cpu"))


@pytest.mark.parametrize("name", ALL)
def test_training_step_and_prediction_under_float16_autocast(name):
    method, batch = _method_and_batch(name)
    method.train()
    with torch.autocast("cpu", dtype=torch.float16):
        result = method.training_step(batch, 0, 0)
    assert result.loss.dtype == torch.float32 and torch.isfinite(result.loss)
    result.loss.backward()
    grads = [p.grad for p in method.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    method.eval()
    if isinstance(method, EmbeddingKnnMethod):  # k-NN over the training embeddings
        with torch.no_grad():
            method.fit_reference(method.embed(batch["x"]), index=batch["index"])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        pred = method.predict(batch)
    probs = pred.probs.float()
    assert torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-3)
    assert torch.isfinite(pred.uncertainty.float()).all()
