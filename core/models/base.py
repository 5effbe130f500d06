"""The contract every network in the model registry follows."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from affectlab.registry import Param

# Ceilings of the size parameters: generous for these small networks, low enough that a typed
# value cannot make one allocation of gigabytes (a width of 10⁶ would).
MAX_CLASSES = 1000
MAX_CHANNELS = 16
MAX_UNITS = 4096


def size_param(name: str, default: int, help: str, high: int = MAX_UNITS) -> Param:
    """A positive integer size (units, channels, kernel width) up to ``high``."""
    return Param(name, int, default, low=1, high=high, help=help)


def num_classes_param(default: int) -> Param:
    return Param("num_classes", int, default, low=2, high=MAX_CLASSES,
                 help="outputs; the engine sets it from the label scale")


IN_CHANNELS = size_param("in_channels", 1, "input channels (1: grayscale)", high=MAX_CHANNELS)
DROPOUT = Param("dropout", float, 0.0, low=0, high=1, high_open=True,
                help="dropout probability before the fully connected layers")


@dataclass
class ModelOutput:
    """What a forward pass returns.

    logits:    (B, K) class scores (before softmax)
    embedding: (B, D) the embedding layer: what f-SPL (after ReLU, before L2 normalisation) and
               the explore map use (SGM only with ``embedding="model"``)
    features:  (B, F) backbone features feeding the head (LDLVA's v_i; DMUE's branch input;
               the input of SGM's own linear embedding layer, SPEC §4)
    """

    logits: torch.Tensor
    embedding: torch.Tensor
    features: torch.Tensor


class EmotionModel(nn.Module):
    """Base class: subclasses set the attributes below and implement ``forward``; the model
    registry checks their keyword arguments against ``param_specs`` (one Param per argument).

    ``x`` is (B, 1, 64, 64) float in [0, 1] for faces, or (B, T, 40) filterbanks for speech with
    ``lengths`` (B,) giving each sequence's valid frames (padding after them is ignored).
    """

    modality: str = "face"
    param_specs: tuple[Param, ...] = ()
    head_name: str = "head"  # the layer whose outputs are the classes (fine-tuning maps its rows)
    num_classes: int
    embedding_dim: int
    feature_dim: int

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> ModelOutput:
        raise NotImplementedError
