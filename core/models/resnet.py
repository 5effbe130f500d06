"""A ResNet-18-style backbone for small grayscale images (64×64 faces), split so that DMUE can
duplicate the last stage (``forward_early`` → ``layer4`` → ``forward_head``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.models.base import (
    DROPOUT,
    IN_CHANNELS,
    EmotionModel,
    ModelOutput,
    num_classes_param,
    size_param,
)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.down is None else self.down(x)))


def make_stage(cin: int, cout: int, stride: int, blocks: int = 2) -> nn.Sequential:
    rest = [BasicBlock(cout, cout, 1) for _ in range(blocks - 1)]
    return nn.Sequential(BasicBlock(cin, cout, stride), *rest)


class SmallResNet18(EmotionModel):
    """Stem conv 3×3 (stride 1, no max-pool: the inputs are only 64×64) and four stages of two
    basic blocks (widths w, 2w, 4w, 8w; strides 1, 2, 2, 2) → global average pool (features,
    8w) → FC → ReLU (embedding) → FC K."""

    modality = "face"
    # width ≤ 128: DMUE copies the last stage (8w channels) once per class
    param_specs = (
        num_classes_param(7),
        IN_CHANNELS,
        size_param("width", 32, "channels of the first stage (stages: w, 2w, 4w, 8w)", high=128),
        size_param("embedding_dim", 128, "size of the embedding layer"),
        DROPOUT,
    )

    head_name = "classifier"

    def __init__(self, num_classes: int = 7, in_channels: int = 1, width: int = 32,
                 embedding_dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.feature_dim = 8 * width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.layer1 = make_stage(width, width, 1)
        self.layer2 = make_stage(width, 2 * width, 2)
        self.layer3 = make_stage(2 * width, 4 * width, 2)
        self.layer4 = make_stage(4 * width, 8 * width, 2)
        self.embed = nn.Linear(8 * width, embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward_early(self, x: torch.Tensor) -> torch.Tensor:
        """Shared stem and stages 1–3: (B, C, H, W) → (B, 4w, H/4, W/4)."""
        if x.ndim != 4:
            raise ValueError(f"x must be (B, C, H, W), got {tuple(x.shape)}")
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def forward_head(self, h: torch.Tensor) -> ModelOutput:
        """Pooled features of the last stage's output → embedding → logits."""
        features = h.mean(dim=(2, 3))
        embedding = F.relu(self.embed(self.dropout(features)))
        return ModelOutput(logits=self.classifier(embedding), embedding=embedding, features=features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> ModelOutput:
        return self.forward_head(self.layer4(self.forward_early(x)))
