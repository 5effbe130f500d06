"""Start a model from another's weights on a different label set (fine-tuning).

A network of this registry is a backbone plus a *head*: the one layer whose outputs are the
classes (``EmotionModel.head_name``: mini-Xception's last 3×3 conv before global pooling,
ResNet-18's ``classifier``, Conv-Pool's ``out``). :func:`init_head_from` copies everything but
the head from a source state dict, and builds the head for the target's K classes: the row of
each target class that maps by name to a source class (:mod:`affectlab.labelmap`, a user class
map first) is that class's source row (weights and bias); the other rows keep the fresh
initialisation the model was built with. :func:`init_from_shipped` does it from a registry
model's shipped weights (mini-Xception's FER2013 classes). The returned :class:`HeadInit` says
which classes were mapped and which are new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from affectlab.labelmap import match_classes
from affectlab.models.base import EmotionModel

__all__ = ["HeadInit", "init_from_shipped", "init_head_from"]


@dataclass(frozen=True)
class HeadInit:
    """What :func:`init_head_from` did. ``mapped``: target class → the source class its head
    row was copied from; ``new``: target classes initialised afresh; ``unused``: source
    classes no target class took."""

    source: str
    mapped: dict[str, str]
    new: list[str]
    unused: list[str]

    def summary(self) -> str:
        """One line for the CLI and the event log."""
        pairs = ", ".join(k if k == v else f"{k}←{v}" for k, v in self.mapped.items())
        line = f"initialised from {self.source}: {len(self.mapped)} class(es) mapped"
        line += f" ({pairs})" if pairs else ""
        line += f"; new: {', '.join(self.new)}" if self.new else "; no new class"
        return line + (f"; unused: {', '.join(self.unused)}" if self.unused else "")

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "mapped": dict(self.mapped), "new": list(self.new),
                "unused": list(self.unused)}


def _head_keys(model: EmotionModel) -> list[str]:
    head = getattr(model, "head_name", None)
    if not isinstance(head, str) or not isinstance(getattr(model, head, None), torch.nn.Module):
        raise ValueError(f"{type(model).__name__} does not name its head layer (head_name)")
    return [k for k in model.state_dict() if k.startswith(f"{head}.")]


def init_head_from(model: EmotionModel, source_state: Mapping[str, torch.Tensor],
                   source_classes: Sequence[str], target_classes: Sequence[str],
                   class_map: Mapping[str, str] | None = None, source: str = "the source"
                   ) -> HeadInit:
    """Load ``source_state`` into ``model`` except the head, whose rows are mapped by class
    name (see the module). ValueError naming the key when the backbones differ."""
    if len(target_classes) != model.num_classes:
        raise ValueError(f"target_classes has {len(target_classes)} names but the model has "
                         f"{model.num_classes} outputs")
    head_keys = set(_head_keys(model))
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for key, value in own.items():
        theirs = source_state.get(key)
        if theirs is None:
            raise ValueError(f"{source} has no weights for {key!r}: not the same network")
        expected = ((len(source_classes), *value.shape[1:]) if key in head_keys
                    else tuple(value.shape))
        if tuple(theirs.shape) != expected:
            raise ValueError(f"{source}: {key!r} is {tuple(theirs.shape)}, this model needs "
                             f"{expected} (other model parameters?)")
        state[key] = theirs
    match = match_classes(source_classes, target_classes, class_map)
    rows = match.row_sources()
    for key in head_keys:
        fresh = own[key].detach().clone()
        for t, s in rows.items():
            fresh[t] = source_state[key][s].to(fresh.dtype)
        state[key] = fresh
    model.load_state_dict(state)
    return HeadInit(source=source,
                    mapped={target_classes[t]: source_classes[s] for t, s in sorted(rows.items())},
                    new=match.target_only, unused=match.source_only)


def init_from_shipped(name: str, model: EmotionModel, target_classes: Sequence[str],
                      class_map: Mapping[str, str] | None = None) -> HeadInit:
    """:func:`init_head_from` the shipped weights of registry model ``name`` (its class names
    come with them)."""
    from affectlab import models

    shipped = models.create(name, pretrained=True)
    classes = getattr(shipped, "class_names", None)
    if not classes:
        raise ValueError(f"the shipped weights of {name!r} do not name their classes")
    return init_head_from(model, shipped.state_dict(), list(classes), target_classes, class_map,
                          source=f"the shipped {name} weights ({len(classes)} classes)")
