"""The contract every network in the model registry follows."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModelOutput:
    """What a forward pass returns.

    logits:    (B, K) class scores (before softmax)
    embedding: (B, D) the embedding layer: what f-SPL (after ReLU, before L2 normalisation), SGM
               and the explore map use
    features:  (B, F) backbone features feeding the head (LDLVA's v_i; DMUE's branch input)
    """

    logits: torch.Tensor
    embedding: torch.Tensor
    features: torch.Tensor


class EmotionModel(nn.Module):
    """Base class: subclasses set the attributes below and implement ``forward``.

    ``x`` is (B, 1, 64, 64) float in [0, 1] for faces, or (B, T, 40) filterbanks for speech with
    ``lengths`` (B,) giving each sequence's valid frames (padding after them is ignored).
    """

    modality: str = "face"
    num_classes: int
    embedding_dim: int
    feature_dim: int

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> ModelOutput:
        raise NotImplementedError
