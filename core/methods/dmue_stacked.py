"""DMUE's auxiliary branches in one stacked pass (``branch_layout="stacked"``).

The per-branch layout (:mod:`affectlab.methods.dmue`) runs each branch's copy of the last
stage twice per step (a training pass over the items not labelled c, a latent pass over those
labelled c): 2C small forward passes of a dozen kernels per block. On a GPU at batch 256 that
step is bound by kernel launches (about 1,800 per step against ce's 500), not by arithmetic.
Here both passes of every branch run in the same kernels, as 2C groups over the whole batch:

- A convolution of all groups is one call: their weights concatenated along the output
  channels, a plain convolution with 2C·C_out outputs where every group reads the shared
  ``h`` (the first block), ``groups=2C`` after that.
- BatchNorm is computed with a mask (B, 2C) of the rows each group's statistics see, so each
  pass of branch c normalises over exactly the items SPEC §6 gives it (training: the items not
  labelled c; latent: those labelled c), and the running statistics are updated from those
  items alone, the training pass's first and the latent pass's second, as the per-branch
  layout does (momentum and the unbiased variance of ``nn.BatchNorm2d``; a pass that saw no
  item leaves them alone). All layers' updates are one batched computation per pass.
- The classifiers are one batched matrix product; dropout is drawn for the training groups.

No host sync and no shape that depends on the labels: every tensor of the step has the same
shape at every step (what CUDA graphs and compilers need); a test runs the step on PyTorch's
``meta`` device, where any read-back would fail. The parameters stay where they are
(each branch's own modules, the same state_dict and optimiser); they are concatenated at each
call.

What it costs: each group runs over all B rows, 2C·B items through the stage where the
per-branch layout runs C·B (and (C − 1)·B with gradients), so on a CPU, where the step is
bound by arithmetic, it is slower; the masked rows' results are computed and discarded. A
branch whose rows are all masked gets zero gradients instead of none (an optimiser with
momentum or weight decay still moves it a little in such a batch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.losses import no_autocast

__all__ = ["GroupRows", "masked_batch_norm", "stacked_branches"]


@dataclass
class GroupRows:
    """The rows each group's BatchNorm statistics see, shared by every layer of one stacked
    pass: ``mask`` (N, P·C) 0/1 for P passes of C branches (group p·C + c is pass p of branch
    c; the running-statistics updates of a later pass apply after an earlier one's). The
    batch statistics are collected here and applied at the end by :meth:`apply_updates`."""

    mask: torch.Tensor
    passes: int
    updates: list[tuple[Sequence[nn.BatchNorm2d], torch.Tensor, torch.Tensor, int]] = field(
        default_factory=list)
    _counts: dict[int, torch.Tensor] = field(default_factory=dict)

    def count(self, spatial: int) -> torch.Tensor:
        """(G,) values per channel each group's statistics average, at ``spatial`` = H·W."""
        if spatial not in self._counts:
            self._counts[spatial] = self.mask.float().sum(0) * spatial
        return self._counts[spatial]

    @torch.no_grad()
    def apply_updates(self) -> None:
        """nn.BatchNorm2d's update for every collected layer: r ← (1 − m)·r + m·statistic (the
        variance unbiased), for the groups that saw at least one row, pass after pass."""
        by_shape: dict[tuple[int, int], list] = {}
        for bns, mean, var, spatial in self.updates:
            by_shape.setdefault((mean.shape[1], spatial), []).append((bns, mean, var))
        branches = self.mask.shape[1] // self.passes
        for p in range(self.passes):
            for (_, spatial), layers in by_shape.items():
                self._update_phase(range(p * branches, (p + 1) * branches), spatial, layers)
        self.updates.clear()

    def _update_phase(self, phase: range, spatial: int, layers: list) -> None:
        momentum = layers[0][0][0].momentum
        count = self.count(spatial)[phase.start:phase.stop].repeat(len(layers)).unsqueeze(1)
        has = count > 0
        factor = count / (count - 1).clamp_min(1)
        stats = {"running_mean": torch.cat([mean[phase.start:phase.stop] for _, mean, _ in layers]),
                 "running_var": torch.cat([var[phase.start:phase.stop] for _, _, var in layers])
                 * factor}
        modules = [bn for bns, _, _ in layers for bn in bns]
        for name, value in stats.items():
            running = [getattr(bn, name) for bn in modules]
            old = torch.stack(running)
            new = torch.where(has, (1 - momentum) * old + momentum * value, old)
            torch._foreach_copy_(running, list(new.unbind(0)))
        torch._foreach_add_([bn.num_batches_tracked for bn in modules],
                            list(has.squeeze(1).long().unbind(0)))


def _check_batch_norm(bn: nn.BatchNorm2d) -> None:
    if bn.momentum is None or not bn.track_running_stats or not bn.affine:
        raise TypeError("stacked branches need affine BatchNorm with a momentum that tracks "
                        "running statistics")


def masked_batch_norm(x: torch.Tensor, rows: GroupRows,
                      bns: Sequence[nn.BatchNorm2d]) -> torch.Tensor:
    """The BatchNorms ``bns`` of C branches, ``rows.passes`` times each, over one tensor: ``x``
    (N, G·ch, H, W) with group g = p·C + c (pass p of branch c) in channel group g. In training
    mode group g's statistics average the rows of ``rows.mask[:, g]`` (their update is queued
    on ``rows``); in eval mode the running statistics normalise. Returns float32 (N, G·ch, H,
    W); rows outside a group's mask are normalised too but carry no weight in its
    statistics."""
    passes = rows.passes
    groups = len(bns) * passes
    n, gc, hh, ww = x.shape
    ch = gc // groups
    first = bns[0]
    _check_batch_norm(first)
    with no_autocast():  # statistics in float32 whatever precision the convolutions ran in
        xv = x.float().reshape(n, groups, ch, hh, ww)
        if first.training:
            m = rows.mask.float()
            denom = rows.count(hh * ww).clamp_min(1).unsqueeze(1)
            mean = torch.einsum("ngchw,ng->gc", xv, m) / denom
            centred = xv - mean.view(1, groups, ch, 1, 1)
            var = torch.einsum("ngchw,ng->gc", centred * centred, m) / denom
            rows.updates.append((bns, mean.detach(), var.detach(), hh * ww))
        else:
            mean = torch.stack([bn.running_mean for bn in bns]).repeat(passes, 1)
            var = torch.stack([bn.running_var for bn in bns]).repeat(passes, 1)
            centred = xv - mean.view(1, groups, ch, 1, 1)
        # one copy of each parameter, tiled: its gradient is summed by one kernel per layer
        weight = torch.stack([bn.weight for bn in bns]).repeat(passes, 1)
        bias = torch.stack([bn.bias for bn in bns]).repeat(passes, 1).view(1, groups, ch, 1, 1)
        scale = (weight * torch.rsqrt(var + first.eps)).view(1, groups, ch, 1, 1)
        return torch.addcmul(bias, centred, scale).reshape(n, gc, hh, ww)


def _stacked_conv(x: torch.Tensor, convs: Sequence[nn.Conv2d], passes: int,
                  shared: bool) -> torch.Tensor:
    """The convolutions ``convs`` of C branches, ``passes`` times each, in one call: ``x`` (N,
    C_in, H, W) read by every group when ``shared``, else (N, G·C_in, H, W) with group g's
    input in channel group g; → (N, G·C_out, H', W'), G = passes·C."""
    first = convs[0]
    if first.bias is not None or first.groups != 1:
        raise TypeError("stacked branches need bias-free, ungrouped convolutions")
    weight = torch.cat([c.weight for c in convs]).repeat(passes, 1, 1, 1)
    return F.conv2d(x, weight, None, first.stride, first.padding, first.dilation,
                    1 if shared else passes * len(convs))


def _stacked_block(blocks: Sequence[nn.Module], x: torch.Tensor, rows: GroupRows,
                   shared: bool) -> torch.Tensor:
    """One BasicBlock of every group (conv–BN–ReLU–conv–BN + shortcut → ReLU)."""
    p = rows.passes
    h = F.relu(masked_batch_norm(_stacked_conv(x, [b.conv1 for b in blocks], p, shared), rows,
                                 [b.bn1 for b in blocks]))
    h = masked_batch_norm(_stacked_conv(h, [b.conv2 for b in blocks], p, False), rows,
                          [b.bn2 for b in blocks])
    if blocks[0].down is None:
        skip = x.repeat(1, p * len(blocks), 1, 1) if shared else x
    else:
        skip = masked_batch_norm(_stacked_conv(x, [b.down[0] for b in blocks], p, shared), rows,
                                 [b.down[1] for b in blocks])
    return F.relu(h + skip)


def stacked_branches(branches: Sequence[nn.Module], h: torch.Tensor, mask: torch.Tensor,
                     passes: int, dropout_groups: int, *,
                     stage_precision: Callable[[], AbstractContextManager] = contextlib.nullcontext,
                     ) -> torch.Tensor:
    """``passes`` passes of C :class:`~affectlab.methods.dmue.AuxiliaryBranch` run at once
    over one input, as G = passes·C groups (group p·C + c: pass p of branch c).

    ``h`` (N, C_in, H, W), read by every group; ``mask`` (N, G): the rows each group's
    BatchNorm statistics see (and whose statistics update the running ones, pass by pass);
    the first ``dropout_groups`` groups' features go through their branch's dropout (in
    training mode). ``stage_precision()`` is entered around the stages as in AuxiliaryBranch.
    Returns logits (G, N, K) of every row (the caller keeps the rows of its mask); the running
    statistics are updated before it returns.
    """
    groups = passes * len(branches)
    rows = GroupRows(mask, passes)
    with stage_precision():
        x = h
        for depth, blocks in enumerate(zip(*(b.stage for b in branches), strict=True)):
            x = _stacked_block(blocks, x, rows, depth == 0)
        pooled = x.mean(dim=(2, 3))
    rows.apply_updates()
    n = pooled.shape[0]
    f = pooled.reshape(n, groups, -1).transpose(0, 1)
    f = f.to(torch.promote_types(f.dtype, torch.float32))
    first = branches[0]
    if first.training and first.dropout.p > 0 and dropout_groups > 0:
        f = torch.cat([F.dropout(f[:dropout_groups], first.dropout.p), f[dropout_groups:]])
    weight = torch.stack([b.classifier.weight for b in branches]).repeat(passes, 1, 1)  # (G, K, F)
    bias = torch.stack([b.classifier.bias for b in branches]).repeat(passes, 1).unsqueeze(1)
    return torch.baddbmm(bias, f, weight.transpose(1, 2))
