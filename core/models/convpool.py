"""Conv-Pool network of the f-SPL paper (SPEC §2) for variable-length filterbank input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.models.base import DROPOUT, EmotionModel, ModelOutput, num_classes_param, size_param


class ConvPool(EmotionModel):
    """Conv1d over time (128 kernels, width 16) → ReLU → global max pool over valid frames →
    FC 128 → ReLU (the embedding g, where f-SPL is taken) → FC 128 → ReLU → FC K.

    Input (B, T, n_mels) with optional ``lengths`` (B,); sequences shorter than the kernel are
    zero-padded to its width.
    """

    modality = "speech"
    param_specs = (
        num_classes_param(2),
        size_param("n_mels", 40, "filterbank channels of the input (the features' 40)", high=512),
        size_param("channels", 128, "Conv1d kernels (the paper: 128)"),
        size_param("kernel_width", 16, "Conv1d width in frames (the paper: 16)", high=1024),
        size_param("hidden", 128, "units of the fully connected layers (the paper: 128)"),
        DROPOUT,
    )

    head_name = "out"

    def __init__(self, num_classes: int = 2, n_mels: int = 40, channels: int = 128,
                 kernel_width: int = 16, hidden: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.n_mels = n_mels
        self.kernel_width = kernel_width
        self.embedding_dim = hidden
        self.feature_dim = channels
        self.conv = nn.Conv1d(n_mels, channels, kernel_width)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> ModelOutput:
        if x.ndim != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"x must be (B, T, {self.n_mels}) filterbanks, got {tuple(x.shape)}")
        batch, frames, _ = x.shape
        if lengths is None:
            lengths = torch.full((batch,), frames, device=x.device, dtype=torch.long)
        if frames < self.kernel_width:
            x = F.pad(x, (0, 0, 0, self.kernel_width - frames))
        h = F.relu(self.conv(x.transpose(1, 2)))  # (B, C, T')
        # a conv output position is valid when its whole window lies inside the sequence
        valid_out = (lengths.clamp_min(self.kernel_width) - self.kernel_width + 1).to(h.device)
        positions = torch.arange(h.shape[-1], device=h.device)
        mask = positions[None, :] < valid_out[:, None]
        pooled = h.masked_fill(~mask[:, None, :], float("-inf")).amax(dim=-1)
        embedding = F.relu(self.fc1(self.dropout(pooled)))
        hidden = F.relu(self.fc2(self.dropout(embedding)))
        return ModelOutput(logits=self.out(hidden), embedding=embedding, features=pooled)
