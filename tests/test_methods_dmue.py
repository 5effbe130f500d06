"""DMUE (SPEC §6): branches, latent distributions, ramps, L_sp, pairwise uncertainty, inference."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from affectlab import methods
from affectlab.methods.base import TrainSetInfo
from affectlab.methods.dmue import (
    BRANCH_LAYOUTS,
    DMUE,
    PairwiseUncertainty,
    branch_stage_precision,
    class_similarity_stats,
    latent_distribution,
    latent_distribution_rows,
    one_hot,
    ramp_down,
    ramp_up,
    remap_labels,
    row_normalised_gram,
    sharpen,
    similarity_preserving_loss,
    soft_loss,
)
from affectlab.methods.dmue_stacked import GroupRows, masked_batch_norm
from affectlab.models.convpool import ConvPool
from affectlab.models.resnet import SmallResNet18

C, B, HW = 4, 12, 16


def _model(seed: int = 0, dropout: float = 0.0) -> SmallResNet18:
    torch.manual_seed(seed)
    return SmallResNet18(num_classes=C, width=4, embedding_dim=8, dropout=dropout)


def _info(n: int = B) -> TrainSetInfo:
    labels = torch.arange(n) % C
    return TrainSetInfo(n_items=n, num_classes=C, soft_labels=F.one_hot(labels, C).float(),
                        labels=labels)


def _batch(seed: int = 0, labels=None):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(B) % C if labels is None else torch.as_tensor(labels)
    return {"x": torch.rand(len(labels), 1, HW, HW, generator=g), "label": labels,
            "index": torch.arange(len(labels)), "split": "train"}


def _method(**params) -> DMUE:
    return DMUE(_model(), _info(), **params)


# --------------------------------------------------------------------------- pieces

def test_ramps_hand_checked():
    a = 6
    assert ramp_up(0, a) == pytest.approx(math.exp(-5))
    assert ramp_up(3, a) == pytest.approx(math.exp(-1.25))
    assert ramp_up(6, a) == 1.0 and ramp_up(9, a) == 1.0
    assert ramp_down(0, a) == 1.0 and ramp_down(5, a) == 1.0
    assert ramp_down(6, a) == 1.0  # exp(−(1 − 6/6)²)
    assert ramp_down(12, a) == pytest.approx(math.exp(-0.25))
    assert ramp_down(18, a) == pytest.approx(math.exp(-4 / 9))
    with pytest.raises(ValueError, match="ramp epoch"):
        ramp_up(1, 0)


def test_sharpen_hand_checked_and_temperature_direction():
    p = torch.tensor([[0.8, 0.2]])
    torch.testing.assert_close(sharpen(p, 0.5), torch.tensor([[0.64 / 0.68, 0.04 / 0.68]]))
    torch.testing.assert_close(sharpen(p, 1.0), p)
    q = sharpen(p, 1.2)  # p^(1/1.2): exponent below 1, so T = 1.2 flattens a little
    want = p ** (1 / 1.2)
    torch.testing.assert_close(q, want / want.sum())

    def ent(r):
        return float(-(r * r.log()).sum())

    assert ent(sharpen(p, 0.5)) < ent(p) < ent(q)
    with pytest.raises(ValueError, match="temperature"):
        sharpen(p, 0.0)


@given(arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(2, 6)),
              elements=st.floats(-8, 8, width=32)), st.data(), st.floats(0.3, 3.0))
def test_latent_distribution_properties(logits, data, temperature):
    label = data.draw(st.integers(0, logits.shape[1]))
    z = torch.as_tensor(logits)
    lat = latent_distribution(z, label, temperature)
    assert lat.shape == (z.shape[0], z.shape[1] + 1)
    assert (lat[:, label] == 0).all()
    torch.testing.assert_close(lat.sum(1), torch.ones(z.shape[0]))
    others = torch.cat([lat[:, :label], lat[:, label + 1:]], dim=1)
    torch.testing.assert_close(others, sharpen(z.softmax(-1), temperature))


def test_latent_distribution_hand_checked_and_detached():
    z = torch.log(torch.tensor([[0.5, 0.25, 0.25]])).requires_grad_(True)
    lat = latent_distribution(z, 1, temperature=1.0)
    torch.testing.assert_close(lat, torch.tensor([[0.5, 0.0, 0.25, 0.25]]))
    assert not lat.requires_grad


def test_remap_labels():
    assert remap_labels(torch.tensor([0, 1, 3, 4]), 2).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="must not contain 2"):
        remap_labels(torch.tensor([2]), 2)


def test_soft_loss_hand_checked():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    latent = torch.tensor([[0.0, 0.5, 0.5]])
    # zeroed softmax (0, .3, .2) − latent (0, .5, .5) → (0, −.2, −.3): mean of squares / 3
    assert soft_loss(logits, torch.tensor([0]), latent).item() == pytest.approx(0.13 / 3)


def _sp_by_masks(aux, target, labels, num_classes):
    """Supplement eq. 4–5 written with the masks M^i (rows normalised over unmasked entries)."""
    total = 0.0
    for c in range(num_classes):
        m = (labels != c).float()
        mask = m[:, None] * m[None, :]
        n_c = int(m.sum())
        a_tar = (target @ target.t()) * mask
        a_tar = a_tar / a_tar.norm(dim=1, keepdim=True).clamp_min(1e-12)
        full_aux = torch.zeros(len(labels), aux[c].shape[1])
        full_aux[labels != c] = aux[c]
        a_aux = (full_aux @ full_aux.t()) * mask
        a_aux = a_aux / a_aux.norm(dim=1, keepdim=True).clamp_min(1e-12)
        total += float(((a_tar - a_aux) ** 2).sum()) / n_c**2
    return total / num_classes


def test_similarity_preserving_loss_matches_mask_formulation():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    target = torch.rand(7, 5, generator=g)
    aux = [torch.randn(int((labels != c).sum()), 2, generator=g) for c in range(3)]
    got = similarity_preserving_loss(aux, target, labels).item()
    assert got == pytest.approx(_sp_by_masks(aux, target, labels, 3), rel=1e-5)
    assert got > 0


def test_similarity_preserving_loss_outputs_of_different_widths_and_a_missing_branch():
    g = torch.Generator().manual_seed(2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 1])
    target = torch.rand(7, 5, generator=g)
    aux = [torch.randn(int((labels != c).sum()), w, generator=g) for c, w in enumerate((2, 4, 3))]
    got = similarity_preserving_loss(aux, target, labels).item()
    assert got == pytest.approx(_sp_by_masks(aux, target, labels, 3), rel=1e-5)
    # a branch without outputs is left out of the mean over classes
    two = similarity_preserving_loss([aux[0], None, aux[2]], target, labels).item()
    want = 1.5 * _sp_by_masks(aux, target, labels, 3) - 0.5 * _sp_by_masks(
        [aux[1]], target, torch.where(labels == 1, 0, 5), 1)
    assert two == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match=r"aux_outputs\[1\]"):
        similarity_preserving_loss([aux[0], aux[0], aux[2]], target, labels)


def test_similarity_preserving_loss_zero_when_grams_agree():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    target = torch.rand(6, 4, generator=g)
    # same features up to scale → same row-normalised Gram matrices
    aux = [3.0 * target[labels != c] for c in range(3)]
    assert similarity_preserving_loss(aux, target, labels).item() == pytest.approx(0, abs=1e-7)
    # an orthogonal rotation of the features keeps the Gram matrix too
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))
    aux = [target[labels != c] @ q for c in range(3)]
    assert similarity_preserving_loss(aux, target, labels).item() == pytest.approx(0, abs=1e-6)


def test_row_normalised_gram_rows_unit_norm():
    G = row_normalised_gram(torch.randn(5, 3))
    torch.testing.assert_close(G.norm(dim=1), torch.ones(5))


def test_class_similarity_stats_hand_checked():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    stats = class_similarity_stats(f, labels, num_classes=3)
    # item 0: class 0 mean cos (1 + 1)/2 = 1, class 1 cos 0, class 2 absent → row min 0
    torch.testing.assert_close(stats[0], torch.tensor([1.0, 0.0, 0.0]))
    # item 2: class 0 mean 0, class 1 (itself) 1
    torch.testing.assert_close(stats[2], torch.tensor([0.0, 1.0, 0.0]))
    same = class_similarity_stats(torch.ones(3, 2), labels, 3)  # constant rows → 0
    assert torch.equal(same, torch.zeros(3, 3))


# --------------------------------------------------------------------------- the method

def test_shapes_and_branches_are_copies_of_layer4():
    m = _method()
    assert len(m.aux_branches) == C
    for br in m.aux_branches:
        assert br.classifier.out_features == C - 1
        assert br.stage is not m.model.layer4
        for p, q in zip(br.stage.parameters(), m.model.layer4.parameters(), strict=True):
            assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()
    r = m.training_step(_batch(), epoch=2, step=0)
    assert r.loss.ndim == 0 and torch.isfinite(r.loss)
    assert set(r.parts) >= {"ce_scaled", "soft", "sp", "aux", "s_mean", "ramp_up", "ramp_down"}


@pytest.mark.parametrize("epoch", [0, 3, 6, 10])
def test_loss_is_the_ramped_sum_of_its_parts(epoch):
    m = _method()
    r = m.training_step(_batch(), epoch=epoch, step=0)
    p = r.parts
    assert p["ramp_up"] == pytest.approx(ramp_up(epoch, 6))
    assert p["ramp_down"] == pytest.approx(ramp_down(epoch, 6))
    want = (p["ramp_up"] * p["ce_scaled"] + p["ramp_up"] * (0.5 * p["soft"] + 1000 * p["sp"])
            + p["ramp_down"] * p["aux"])
    assert r.loss.item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("layout", BRANCH_LAYOUTS)
def test_aux_branch_never_gets_gradient_from_its_own_class(layout):
    m = _method(branch_layout=layout)
    m.eval()  # BatchNorm on running statistics: items cannot influence each other
    batch = _batch()
    x = batch["x"].clone().requires_grad_(True)
    labels = batch["label"]
    h = m.model.forward_early(x)
    if layout == "stacked":
        _, outs, rows, _ = m._branches_stacked(h, labels)
    else:
        _, outs, rows = m._auxiliary(h, labels)
    assert outs.shape == (C, B, C - 1) and rows.shape == (C, B)
    assert torch.equal(rows, labels.unsqueeze(0) != torch.arange(C).unsqueeze(1))
    for c in range(C):
        x.grad = None
        (outs[c] * rows[c].unsqueeze(1)).sum().backward(retain_graph=True)  # what L_sp sees
        g = x.grad.abs().flatten(1).sum(1)
        assert (g[labels == c] == 0).all()
        assert (g[labels != c] > 0).all()


def test_aux_branch_trained_only_on_other_labels_in_a_step():
    m = _method()
    seen: dict[int, list[tuple[bool, int]]] = {c: [] for c in range(C)}
    for c, br in enumerate(m.aux_branches):
        br.stage.register_forward_hook(
            lambda mod, inp, out, c=c: seen[c].append((torch.is_grad_enabled(), inp[0].shape[0])))
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    m.training_step(_batch(labels=labels), epoch=1, step=0)
    for c in range(C):
        n_c = int((labels == c).sum())
        # one pass with gradients over the other items, one without over the label-c items
        assert sorted(seen[c]) == sorted([(True, B - n_c), (False, n_c)])


def test_uncertainty_module_is_trained_and_in_optimiser():
    m = _method()
    (opt,) = m.optimizers(1e-3, 0.0)
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in ids for p in m.uncertainty.parameters())
    assert all(id(p) in ids for p in m.aux_branches.parameters())
    r = m.training_step(_batch(), epoch=7, step=0)
    r.loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
    assert all(p.grad.abs().sum() > 0 for p in m.uncertainty.parameters())
    before = [p.detach().clone() for p in m.uncertainty.parameters()]
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, m.uncertainty.parameters(),
                                                       strict=True))


def test_pairwise_uncertainty_in_unit_interval():
    mod = PairwiseUncertainty(3)
    s = mod(torch.rand(6, 5), torch.tensor([0, 1, 2, 0, 1, 1]))
    assert s.shape == (6,) and ((s > 0) & (s < 1)).all()


def test_latent_in_training_has_zero_at_label():
    m = _method()
    batch = _batch()
    h = m.model.forward_early(batch["x"])
    lat = m._mine_latent(h, batch["label"])
    assert (lat[torch.arange(B), batch["label"]] == 0).all()
    torch.testing.assert_close(lat.sum(1), torch.ones(B))


def test_inference_ignores_auxiliary_branches():
    m = _method()
    m.eval()
    batch = _batch(seed=3)
    p = m.predict(batch)
    torch.testing.assert_close(p.probs, m.model(batch["x"]).logits.softmax(-1))
    assert p.latent is not None and p.latent.shape == (B, C)
    assert ((p.uncertainty > 0) & (p.uncertainty < 1)).all()
    m.aux_branches = None  # delete the branches
    q = m.predict(batch)
    torch.testing.assert_close(q.probs, p.probs)
    torch.testing.assert_close(q.uncertainty, p.uncertainty)
    torch.testing.assert_close(q.embedding, p.embedding)
    assert q.latent is None


def test_predict_without_labels_uses_predicted_class():
    m = _method()
    m.eval()
    batch = _batch(seed=4)
    p = m.predict({"x": batch["x"]})
    assert p.latent is None
    with torch.no_grad():
        out = m.model(batch["x"])
        s = m.uncertainty(out.features, out.logits.argmax(-1))
    torch.testing.assert_close(p.uncertainty, 1 - s)


def test_registry_and_validation():
    m = methods.create("dmue", _model(), _info(), ramp_epoch=3)
    assert isinstance(m, DMUE) and m.params["temperature"] == 1.2 and m.params["sp_weight"] == 1000
    with pytest.raises(TypeError, match="forward_early"):
        DMUE(ConvPool(num_classes=C), _info())
    two = TrainSetInfo(n_items=4, num_classes=2, soft_labels=torch.eye(2)[[0, 1, 0, 1]],
                       labels=torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="at least 3 classes"):
        DMUE(SmallResNet18(num_classes=2, width=4, embedding_dim=8), two)
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0)
    with pytest.raises(ValueError, match="label"):
        _method().training_step(_batch(labels=[0, 1, C]), 0, 0)


# --------------------------------------------------------------------------- fast path vs reference

def _reference_step(m: DMUE, batch, epoch: int) -> torch.Tensor:
    """The straightforward per-branch DMUE step (SPEC §6): a training pass of branch c over the
    items not labelled c, a no-grad latent pass over those labelled c, L_sp class by class over
    the restricted Gram matrices, all in the default memory layout."""
    x, labels = batch["x"], batch["label"]
    h = m.model.forward_early(x)
    out = m.model.forward_head(m.model.layer4(h))
    aux_losses, aux_out = [], []
    for c, br in enumerate(m.aux_branches):
        rows = (labels != c).nonzero(as_tuple=True)[0]
        if rows.numel() == 0:
            aux_out.append(None)
            continue
        _, z = br(h[rows])
        aux_losses.append(F.cross_entropy(z, remap_labels(labels[rows], c)))
        aux_out.append(z)
    latent = torch.zeros(len(labels), C)
    with torch.no_grad():
        for c, br in enumerate(m.aux_branches):
            rows = (labels == c).nonzero(as_tuple=True)[0]
            if rows.numel():
                latent[rows] = latent_distribution(br(h[rows], dropout=False)[1], c, 1.2)
    s = m.uncertainty(out.features, labels)
    ce = F.cross_entropy(out.logits * s.unsqueeze(1), labels)
    g_main = out.features @ out.features.t()
    sp = []
    for c, z in enumerate(aux_out):
        keep = (labels != c).nonzero(as_tuple=True)[0]
        if z is not None:
            g_tar = F.normalize(g_main[keep][:, keep], p=2, dim=1)
            sp.append(((row_normalised_gram(z) - g_tar) ** 2).mean())
    l_sp = torch.stack(sp).mean()
    l_aux = torch.stack(aux_losses).mean()
    up, down = ramp_up(epoch, 6), ramp_down(epoch, 6)
    return up * ce + up * (0.5 * soft_loss(out.logits, labels, latent) + 1000 * l_sp) + down * l_aux


@pytest.mark.parametrize("layout", BRANCH_LAYOUTS)
@pytest.mark.parametrize("labels", [
    [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3],   # every class present
    [0, 1, 1, 0, 2, 2, 0, 1, 2, 2, 1, 0],   # class 3 absent: its branch sees every item
    [2] * B,                                # one class: branch 2 sees no item
])
def test_fast_step_matches_per_branch_reference(labels, layout):
    # the stacked layout draws one dropout mask for all branches: compare without branch dropout
    dropout = {"aux_dropout": 0.0} if layout == "stacked" else {}
    fast = DMUE(_model(dropout=0.2), _info(), branch_precision="float32", branch_layout=layout,
                **dropout)
    ref = copy.deepcopy(fast)
    batch = _batch(seed=5, labels=labels)
    torch.manual_seed(11)  # same dropout masks, drawn in the same order
    got = fast.training_step(batch, epoch=8, step=0).loss
    torch.manual_seed(11)
    want = _reference_step(ref, batch, epoch=8)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    got.backward()
    want.backward()
    ref_params = dict(ref.named_parameters())
    for name, p in fast.named_parameters():
        q = ref_params[name]
        if q.grad is None:  # a branch that saw no item in this batch
            assert p.grad is None or not p.grad.any(), name
            continue
        # float32 sums in another order: agree to 1e-4 of the tensor's largest gradient
        scale = float(q.grad.abs().max())
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4 * scale, msg=name)
    # BatchNorm running statistics: each branch updated over the same items, in the same order
    ref_buffers = dict(ref.named_buffers())
    for name, b in fast.named_buffers():
        torch.testing.assert_close(b, ref_buffers[name], rtol=1e-5, atol=1e-6, msg=name)


# --------------------------------------------------------------------------- branch precision

def test_branch_stage_precision_choices(monkeypatch):
    from affectlab.methods import dmue as dmue_module

    cpu = torch.device("cpu")
    with branch_stage_precision("float32", cpu)():
        assert not torch.is_autocast_enabled("cpu")
    with branch_stage_precision("bfloat16", cpu)():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(dmue_module, "cpu_computes_bfloat16", lambda: False)
    with branch_stage_precision("auto", cpu)():
        assert not torch.is_autocast_enabled("cpu")  # emulated bfloat16 would be slower
    monkeypatch.setattr(dmue_module, "cpu_computes_bfloat16", lambda: True)
    with branch_stage_precision("auto", cpu)():
        assert torch.is_autocast_enabled("cpu")
    # inside an outer float16 autocast, "float32" switches it off for the branch stages
    with torch.autocast("cpu", dtype=torch.float16), branch_stage_precision("float32", cpu)():
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="branch_precision"):
        branch_stage_precision("fp8", cpu)
    with pytest.raises(ValueError, match="branch_precision"):
        _method(branch_precision="half")


def test_bfloat16_branches_stay_close_to_float32_branches():
    """The branches' convolutions in bfloat16 (the default on CPUs that compute it natively)
    change the step only by rounding: the same loss parts to a few parts in a thousand, the
    same latent distributions to 0.01, gradients pointing the same way."""
    exact = DMUE(_model(), _info(), branch_precision="float32")
    rounded = copy.deepcopy(exact)
    rounded.params["branch_precision"] = "bfloat16"
    batch = _batch(seed=3, labels=[0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    results = []
    for m in (exact, rounded):
        torch.manual_seed(7)  # same dropout masks
        r = m.training_step(batch, epoch=8, step=0)
        r.loss.backward()
        results.append(r)
    for part in ("ce_scaled", "soft", "aux", "s_mean"):
        assert results[1].parts[part] == pytest.approx(results[0].parts[part], rel=2e-2), part
    assert results[1].parts["sp"] == pytest.approx(results[0].parts["sp"], rel=0.1, abs=1e-4)
    h = exact.model.forward_early(batch["x"])
    lat_exact = exact._mine_latent(h, batch["label"])
    lat_rounded = rounded._mine_latent(h, batch["label"])
    assert torch.allclose(lat_rounded.sum(1), torch.ones(B), atol=1e-5)
    assert (lat_rounded - lat_exact).abs().max() < 0.01
    grads_exact = dict(exact.named_parameters())
    cosines = []
    for name, p in rounded.named_parameters():
        q = grads_exact[name]
        if p.grad is None or not q.grad.any():
            continue
        cosines.append(float(F.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0)))
    # bfloat16 keeps 8 bits of mantissa: each tensor's gradient within ~15° of float32's,
    # most of them within ~5°
    assert min(cosines) > 0.95 and float(np.median(cosines)) > 0.995
    # the target branch (the inference network) computes in float32 either way
    assert all(p.dtype == torch.float32 for p in rounded.parameters())


# --------------------------------------------------------------------------- stacked layout

def _batch_norms(n: int, ch: int, seed: int) -> list[torch.nn.BatchNorm2d]:
    torch.manual_seed(seed)
    bns = [torch.nn.BatchNorm2d(ch) for _ in range(n)]
    for bn in bns:  # not the identity, so that a mix-up of groups shows
        torch.nn.init.uniform_(bn.weight, 0.5, 2.0)
        torch.nn.init.uniform_(bn.bias, -1.0, 1.0)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bns


def test_masked_batch_norm_matches_batch_norm_on_each_groups_rows():
    """Two passes of two BatchNorms as four groups: each group's rows are normalised exactly as
    nn.BatchNorm2d normalises those rows alone, with the same gradients, and the running
    statistics end where two BatchNorm calls in pass order leave them; a group with no row
    leaves them alone."""
    n, ch, hw, passes = 10, 3, 4, 2
    bns = _batch_norms(2, ch, seed=0)
    ref = copy.deepcopy(bns)
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(n, passes * 2 * ch, hw, hw, generator=g) * 3 + 1).requires_grad_(True)
    mask = (torch.rand(n, 4, generator=g) > 0.4).float()
    mask[:, 3] = 0  # pass 1 of branch 1 sees no row
    rows = GroupRows(mask, passes)
    y = masked_batch_norm(x, rows, bns)
    rows.apply_updates()
    weights = torch.randn(y.shape, generator=g)
    ((y * weights).reshape(n, 4, ch, hw, hw) * mask.view(n, 4, 1, 1, 1)).sum().backward()
    x_ref = x.detach().clone().requires_grad_(True)
    for group in range(4):
        keep = mask[:, group].bool()
        if not keep.any():
            continue
        cols = slice(group * ch, (group + 1) * ch)
        y_ref = ref[group % 2](x_ref[keep][:, cols])
        torch.testing.assert_close(y[keep][:, cols], y_ref, rtol=1e-5, atol=1e-5)
        (y_ref * weights[keep][:, cols]).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    for got, want in zip(bns, ref, strict=True):
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=1e-5,
                                       atol=1e-6, msg=name)
        torch.testing.assert_close(got.weight.grad, want.weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got.bias.grad, want.bias.grad, rtol=1e-4, atol=1e-5)
    assert int(bns[0].num_batches_tracked) == 2 and int(bns[1].num_batches_tracked) == 1
    # eval mode: the running statistics normalise every row, as nn.BatchNorm2d in eval mode
    for bn in [*bns, *ref]:
        bn.eval()
    with torch.no_grad():
        y = masked_batch_norm(x, GroupRows(mask, passes), bns)
        for group in range(4):
            cols = slice(group * ch, (group + 1) * ch)
            torch.testing.assert_close(y[:, cols], ref[group % 2](x[:, cols]), rtol=1e-5, atol=1e-5)


def test_latent_distribution_rows_matches_latent_distribution_row_by_row():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(9, C - 1, generator=g) * 3
    labels = torch.tensor([0, 1, 2, 3, 3, 0, 2, 1, 1])
    got = latent_distribution_rows(logits, labels, 1.2)
    want = torch.cat([latent_distribution(logits[i:i + 1], int(y), 1.2)
                      for i, y in enumerate(labels)])
    torch.testing.assert_close(got, want)
    assert (got[torch.arange(9), labels] == 0).all() and not got.requires_grad


def test_stacked_layout_keeps_the_checkpoint_format_and_drops_out_only_the_training_passes():
    loop = _method()
    stacked = _method(branch_layout="stacked")
    assert loop.state_dict().keys() == stacked.state_dict().keys()
    stacked.load_state_dict(loop.state_dict())  # a run trained one way resumes the other
    batch = _batch(seed=4, labels=[0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    h = stacked.model.forward_early(batch["x"]).detach()
    outputs = []
    for dropout in (0.0, 0.5):
        m = copy.deepcopy(stacked)
        for br in m.aux_branches:
            br.dropout.p = dropout
        torch.manual_seed(0)
        outputs.append(m._branches_stacked(h, batch["label"]))
    (_, z_plain, rows, latent_plain), (_, z_dropped, _, latent_dropped) = outputs
    torch.testing.assert_close(latent_dropped, latent_plain)  # no dropout in the latent pass
    assert not torch.allclose(z_dropped[rows], z_plain[rows])
    assert torch.allclose(latent_plain.sum(1), torch.ones(B))


def test_stacked_branches_in_bfloat16_stay_close_to_float32():
    exact = DMUE(_model(), _info(), branch_precision="float32", branch_layout="stacked",
                 aux_dropout=0.0)
    rounded = copy.deepcopy(exact)
    rounded.params["branch_precision"] = "bfloat16"
    batch = _batch(seed=3, labels=[0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    parts = [m.training_step(batch, epoch=8, step=0).parts for m in (exact, rounded)]
    for part in ("ce_scaled", "soft", "aux", "s_mean"):
        assert parts[1][part] == pytest.approx(parts[0][part], rel=2e-2), part


@pytest.mark.parametrize("layout", BRANCH_LAYOUTS)
def test_only_the_stacked_step_runs_without_reading_the_labels_back(layout):
    """On PyTorch's meta device tensors have shapes and no data: a step runs there only if it
    never reads a value back to the host (a GPU sync) and no shape depends on the labels
    (what CUDA graphs need). The stacked layout does; the loop gathers each branch's rows."""
    from affectlab.losses import skip_value_checks

    m = _method(branch_layout=layout).to("meta").train()
    batch = {"x": torch.empty(B, 1, HW, HW, device="meta"),
             "label": torch.empty(B, dtype=torch.long, device="meta")}
    with skip_value_checks(True):  # as on CUDA: the per-call value checks read values back
        if layout == "loop":
            with pytest.raises(NotImplementedError, match="meta"):
                m.training_step(batch, epoch=8, step=0)
            return
        result = m.training_step(batch, epoch=8, step=0)
    result.loss.backward()
    assert result.loss.shape == () and result.loss.device.type == "meta"
    assert all(p.grad is not None for p in m.aux_branches.parameters())


def test_one_hot_matches_torch_and_zeroes_what_is_out_of_range():
    labels = torch.tensor([0, 3, 1, 2, 3])
    assert torch.equal(one_hot(labels, C, torch.float32), F.one_hot(labels, C).float())
    assert one_hot(torch.tensor([C]), C, torch.float32).sum() == 0
