"""The CUDA path of the engine (issue 4): training with mixed precision for every method, resume,
a GPU-trained run used on the CPU, the bench on the GPU.

These run only where a CUDA GPU is present (CI has none; the lent GPU machine runs them with
``pytest tests/test_cuda.py``); everywhere else they are skipped, and the CPU tests cover the same
code with ``device="cpu"``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import isolated_data_env, make_corpus, tiny_config

from affectlab.engine.events import read_events
from affectlab.engine.rundir import RunDir
from affectlab.engine.trainer import train

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

_ALL_METHODS = ["ce", "ce+fspl-kl", "ce+fspl-rkl", "ce+fspl-pearson", "ce+fspl-hellinger",
                "ce+fspl-js", "emd2", "ce+emd2", "sgm", "ldlva", "dmue"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cuda")
    mp = isolated_data_env(tmp)
    yield {"tmp": tmp, "face": make_corpus(tmp, "face", 80), "speech": make_corpus(tmp, "speech", 60)}
    mp.__exit__(None, None, None)


def _extra(name: str) -> dict:
    extra: dict = {"method_params": {"n_per_class": 4}} if name == "sgm" else {}
    if name in ("emd2", "ce+emd2"):
        extra["scale"] = "intensity"
    return extra


def _check_finished_on_cuda(result) -> dict:
    assert result.status == "finished"
    start = read_events(result.run_dir)[0][0]
    assert start["device"].startswith("cuda") and start["amp"] is True
    outputs, embeddings = RunDir(result.run_dir).read_outputs()
    assert len(embeddings) == len(outputs) > 0
    assert np.isfinite(embeddings).all() and np.isfinite(outputs["uncertainty"]).all()
    return start


@pytest.mark.parametrize("name", _ALL_METHODS)
def test_every_method_trains_on_cuda_with_mixed_precision(env, name):
    cfg = tiny_config(env["face"], env["tmp"] / f"face-{name}", method=name, device="cuda",
                      **_extra(name))
    result = train(cfg, progress=False)
    _check_finished_on_cuda(result)
    ckpt = RunDir(result.run_dir).load_checkpoint(map_location="cpu")  # weights_only=True
    assert ckpt["epoch"] == 2
    assert all(t.device.type == "cpu" for t in ckpt["method_state"].values()
               if isinstance(t, torch.Tensor))


def test_dmue_with_stacked_branches_trains_on_cuda_and_matches_the_loop(env):
    """branch_layout=stacked (the layout for GPUs) trains under mixed precision, and one float32
    step on the GPU gives the per-branch layout's loss and gradients."""
    import copy

    from affectlab import methods, models
    from affectlab.bench.training import _synthetic
    from affectlab.engine.device import place_on_device

    cfg = tiny_config(env["face"], env["tmp"] / "face-dmue-stacked", method="dmue", device="cuda",
                      method_params={"branch_layout": "stacked"})
    _check_finished_on_cuda(train(cfg, progress=False))
    cuda = torch.device("cuda")
    items, info = _synthetic("face", 64, 7, 0)
    model = models.create("resnet18", num_classes=7, width=8, embedding_dim=16)
    loop = place_on_device(methods.create("dmue", model, info, aux_dropout=0.0,
                                          branch_precision="float32"), cuda)
    stacked = copy.deepcopy(loop)
    stacked.params["branch_layout"] = "stacked"
    batch = items.batch(range(32), cuda)
    losses = []
    for m in (loop, stacked):
        m.train()
        torch.manual_seed(0)
        loss = m.training_step(batch, 8, 0).loss
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    grads = dict(loop.named_parameters())
    for name, p in stacked.named_parameters():
        if p.grad is not None and grads[name].grad is not None:
            scale = float(grads[name].grad.abs().max())
            torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-3, atol=1e-3 * scale,
                                       msg=name)


@pytest.mark.parametrize("name", ["ce", "ce+fspl-rkl", "ldlva"])
def test_speech_methods_train_on_cuda(env, name):
    cfg = tiny_config(env["speech"], env["tmp"] / f"speech-{name}", modality="speech",
                      method=name, device="cuda")
    _check_finished_on_cuda(train(cfg, progress=False))


def test_a_cancelled_cuda_run_resumes_to_the_end(env):
    cfg = tiny_config(env["face"], env["tmp"] / "resume", method="dmue", device="cuda", epochs=3)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 6

    assert train(cfg, progress=False, should_stop=stop).status == "cancelled"
    # the checkpoint's CUDA generator states come back as tensors, on the GPU when mapped there
    assert all(t.device.type == "cuda" for t in RunDir(cfg.run_dir()).load_checkpoint(
        map_location="cuda")["rng"]["cuda"])
    resumed = train(cfg, progress=False, resume=True)
    assert resumed.status == "finished" and resumed.epochs_done == 3
    starts = [e for e in read_events(resumed.run_dir)[0] if e["type"] == "start"]
    assert [s["start_epoch"] for s in starts][-1] >= 1


def test_a_cuda_trained_run_predicts_on_the_cpu(env):
    from affectlab.engine.inference import Predictor

    cfg = tiny_config(env["face"], env["tmp"] / "for-cpu", method="ce", device="cuda", epochs=1)
    run_dir = train(cfg, progress=False).run_dir
    predictor = Predictor.from_name_or_run(run_dir)
    assert all(p.device.type == "cpu" for p in predictor.method.parameters())
    media = sorted((env["face"]).rglob("*.png"))[:3]
    results = predictor.predict_files(media)
    assert [r.error for r in results] == [None] * 3
    assert all(abs(sum(r.distribution.values()) - 1) < 1e-4 for r in results)


def test_bench_times_every_method_on_cuda():
    from affectlab.bench.training import run_bench

    frame = run_bench("face", steps=2, batch_size=16, warmup=1, device="cuda",
                      model_params={"width": 8, "embedding_dim": 16})
    assert frame.attrs["device"].startswith("cuda")
    timed = frame.dropna(subset=["ratio"])
    assert set(_ALL_METHODS) <= set(timed["method"])
    assert (timed["step_ms"] > 0).all()


def test_image_networks_train_in_channels_last_order_on_cuda(env):
    from affectlab.engine.device import to_device_layout, use_channels_last
    from affectlab.engine.runs import load_run

    assert use_channels_last(torch.device("cuda")) and not use_channels_last(torch.device("cpu"))
    x = torch.rand(2, 1, 8, 8, device="cuda")
    assert to_device_layout(x, x.device).is_contiguous(memory_format=torch.channels_last)
    cfg = tiny_config(env["face"], env["tmp"] / "layout", method="ce", device="cuda", epochs=1)
    run_dir = train(cfg, progress=False).run_dir
    # the saved weights load into a CPU model in its ordinary layout, with the same values
    method = load_run(run_dir).method
    conv = next(m for m in method.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.device.type == "cpu" and torch.isfinite(conv.weight).all()


@pytest.mark.parametrize("name", ["ce", "ce+fspl-kl", "ce+fspl-js", "emd2", "ce+emd2", "sgm",
                                  "dmue-stacked"])
def test_a_gpu_step_does_not_wait_for_the_gpu_until_it_is_read(name):
    """Under the trainer's settings (AMP, value checks skipped) the forward and backward of a step
    queue kernels without reading anything back; the one read is StepResult.logged()."""
    from affectlab import methods, models
    from affectlab.bench.training import _synthetic
    from affectlab.engine.device import place_on_device
    from affectlab.losses import skip_value_checks

    cuda = torch.device("cuda")
    items, info = _synthetic("face", 128, 7, 0)
    model = models.create("resnet18", num_classes=7, width=8, embedding_dim=16)
    params = {"sgm": {"n_per_class": 4}, "dmue-stacked": {"branch_layout": "stacked"}}.get(name, {})
    name = name.removesuffix("-stacked")  # dmue's stacked layout has no label-dependent shape
    method = place_on_device(methods.create(name, model, info, **params), cuda)
    sampled = method.batch_sampler(8, 0, 0)
    batch = items.batch(sampled[0] if sampled is not None else range(24), cuda)
    method.train()
    for step in range(2):  # the first step may allocate and autotune
        with torch.autocast("cuda", dtype=torch.float16), skip_value_checks():
            torch.cuda.synchronize()
            if step == 1:
                torch.cuda.set_sync_debug_mode("error")
            try:
                result = method.training_step(batch, 0, step)
                result.loss.backward()
            finally:
                torch.cuda.set_sync_debug_mode(0)
    assert set(result.logged()) == {"loss", *result.parts}
