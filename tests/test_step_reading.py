"""Reading a training step back from the device: the value checks a GPU step skips, the one
transfer of loss and parts, and the finite-loss check that replaces them (affectlab.engine.step)."""

from __future__ import annotations

import pytest
import torch

from affectlab.engine.step import forward_and_read, train_step
from affectlab.losses import fspl, skip_value_checks, soft_cross_entropy, value_checks_on
from affectlab.losses._checks import as_float_tensor, check_distribution, check_range
from affectlab.methods.base import StepResult


def test_value_checks_are_on_by_default_and_restored_after_the_block():
    assert value_checks_on()
    with skip_value_checks():
        assert not value_checks_on()
        with skip_value_checks(False):
            assert value_checks_on()
        assert not value_checks_on()
    assert value_checks_on()
    with pytest.raises(RuntimeError), skip_value_checks():
        raise RuntimeError("leaves the block")
    assert value_checks_on()


def test_skipping_drops_value_checks_but_keeps_shape_checks():
    nan = torch.tensor([[float("nan"), 1.0]])
    with pytest.raises(ValueError, match="contains NaN"):
        as_float_tensor(nan, "x")
    with pytest.raises(ValueError, match="rows must sum to 1"):
        check_distribution(torch.tensor([[0.2, 0.2]]), "p")
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\]"):
        check_range(torch.tensor([3.0]), "c", 0.0, 2.0)
    with skip_value_checks():
        assert torch.isnan(as_float_tensor(nan, "x")).any()
        check_distribution(torch.tensor([[0.2, 0.2]]), "p")
        check_range(torch.tensor([3.0]), "c", 0.0, 2.0)
        with pytest.raises(ValueError, match="must be 2-D"):
            as_float_tensor(torch.zeros(3), "x", ndim=2)
        with pytest.raises(ValueError, match="3 classes"):
            soft_cross_entropy(torch.zeros(2, 3), torch.full((2, 4), 0.25))


def test_skipped_checks_leave_the_values_unchanged():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    y = torch.softmax(torch.randn(6, 4, generator=g), 1)
    s, c = torch.rand(6, generator=g) * 2, torch.rand(6, generator=g) * 2
    checked = (soft_cross_entropy(logits, y), fspl(s, c, "kl"))
    with skip_value_checks():
        skipped = (soft_cross_entropy(logits, y), fspl(s, c, "kl"))
    for a, b in zip(checked, skipped, strict=True):
        assert torch.equal(a, b)


def test_step_result_reads_tensor_and_float_parts_together():
    loss = torch.tensor(1.5, requires_grad=True) * 2
    r = StepResult(loss, {"ce": torch.tensor(0.25), "level": 2.0, "mean": torch.ones(1) * 0.5})
    assert r.logged() == {"loss": 3.0, "ce": 0.25, "level": 2.0, "mean": 0.5}
    assert r.parts == {"ce": 0.25, "level": 2.0, "mean": 0.5}
    assert all(type(v) is float for v in r.parts.values())
    assert StepResult(torch.tensor(0.0)).parts == {}


class _Fixed(torch.nn.Module):
    """A stand-in method whose loss is the given value."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.value = value

    def training_step(self, batch, epoch, step):
        loss = self.w * self.value
        return StepResult(loss, {"part": loss.detach() / 2})


def test_forward_and_read_returns_the_floats_and_stops_a_diverged_step():
    batch = {"x": torch.zeros(2, 1)}
    result, losses = forward_and_read(_Fixed(3.0), batch, 0, 0, amp=False)
    assert losses == {"loss": 3.0, "part": 1.5} and result.loss.requires_grad
    for bad in (float("nan"), float("inf")):
        with pytest.raises(FloatingPointError, match=r"epoch 2, training step 8: \{'part'"):
            forward_and_read(_Fixed(bad), batch, 1, 7, amp=False)


def test_a_cpu_step_keeps_its_value_checks():
    seen = []

    class Probe(_Fixed):
        def training_step(self, batch, epoch, step):
            seen.append(value_checks_on())
            return super().training_step(batch, epoch, step)

    forward_and_read(Probe(1.0), {"x": torch.zeros(1)}, 0, 0, amp=False)
    assert seen == [True]


def test_train_step_is_one_sgd_step_of_the_loss_gradient():
    """loss = w·3 with w = 1: one SGD step (lr 0.1) moves w to 1 − 0.1·3 = 0.7, and the
    gradients are handed to ``sync_gradients`` between backward and the optimiser step."""
    method = _Fixed(3.0)
    opt = torch.optim.SGD(method.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    seen = []
    _, losses = train_step(method, {"x": torch.zeros(1)}, [opt], scaler, 0, 0, amp=False,
                           sync_gradients=lambda: seen.append(float(method.w.grad)))
    assert losses == {"loss": 3.0, "part": 1.5} and seen == [3.0]
    assert method.w.item() == pytest.approx(0.7)
    # the gradient is zeroed before the next step, not accumulated: 0.7 − 0.1·3 = 0.4
    train_step(method, {"x": torch.zeros(1)}, [opt], scaler, 0, 1, amp=False)
    assert method.w.item() == pytest.approx(0.4)


def test_train_step_steps_after_the_gradients_are_synchronised():
    """What sync_gradients leaves is what the optimisers use (DDP's averaged gradients)."""
    method = _Fixed(3.0)
    opt = torch.optim.SGD(method.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)

    def halve():
        method.w.grad.mul_(0.5)

    train_step(method, {"x": torch.zeros(1)}, [opt], scaler, 0, 0, amp=False, sync_gradients=halve)
    assert method.w.item() == pytest.approx(1 - 0.1 * 1.5)
