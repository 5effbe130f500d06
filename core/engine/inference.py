"""Predictions for single files or arrays, from a trained run or a registry model with shipped
weights (``affectlab predict``, the live page).

Images: a 64×64 image is taken as an already-cropped face (the dataset contract's format);
anything else goes through OpenCV's Haar cropper, and an image with no face is reported, not
guessed at. Audio: 40-d Kaldi log-Mel filterbanks, z-normalised with the run's training
statistics (its first domain) or, for a model without them, over the clip itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FilePrediction", "Predictor", "IMAGE_SUFFIXES", "AUDIO_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}
FACE_SIZE = 64


@dataclass
class FilePrediction:
    """One file's result: ``distribution`` {class: p} (None when ``error`` says why not)."""

    file: str
    distribution: dict[str, float] | None = None
    predicted: str | None = None
    uncertainty: float | None = None
    note: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"file": self.file}
        if self.error is not None:
            out["error"] = self.error
        else:
            out.update({"predicted": self.predicted, "distribution": self.distribution,
                        "uncertainty": self.uncertainty})
            if self.note:
                out["note"] = self.note
        return out


class Predictor:
    """A trained method (or bare model) with its class names, modality and speech normaliser.

    ``predict_batch(x (B, …), lengths (B,) | None)`` → Prediction; ``predict_files(paths)``.
    """

    def __init__(self, method, class_names: list[str], modality: str, normalizer=None):
        if len(class_names) != method.model.num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but the model has "
                             f"{method.model.num_classes} outputs")
        self.method = method.eval()
        self.class_names = list(class_names)
        self.modality = modality
        self.normalizer = normalizer
        self._cropper = None

    @classmethod
    def from_name_or_run(cls, name_or_run: str | os.PathLike, weights: str = "last"
                         ) -> Predictor:
        """A run directory (its trained method) or a registry model name with shipped
        weights (``mini_xception``: FER2013 classes)."""
        path = Path(name_or_run)
        if path.is_dir():
            from affectlab.engine.runs import load_run

            run = load_run(path, weights=weights)
            if run.method is None:
                raise FileNotFoundError(f"run {path} has no saved weights yet")
            return cls(run.method, run.class_names, run.model_info["modality"], run.normalizer())
        from affectlab import models
        from affectlab.methods.base import Method

        name = str(name_or_run)
        specs = {s.name: s for s in models.available()}
        if name not in specs:
            raise ValueError(f"{name!r} is neither a run directory nor a model name; known "
                             f"models: {', '.join(sorted(specs))}")
        if not specs[name].has_pretrained:
            raise ValueError(f"model {name!r} has no shipped weights; pass a trained run "
                             "directory instead")
        model = models.create(name, pretrained=True)
        names = list(getattr(model, "class_names", None) or [])
        if not names:
            raise ValueError(f"model {name!r} does not name its classes")
        return cls(Method(model, None, method_name="pretrained"), names, specs[name].modality)

    @torch.no_grad()
    def predict_batch(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        batch = {"x": x, "lengths": lengths, "index": torch.arange(x.shape[0]),
                 "split": "predict"}
        return self.method.predict(batch)

    def _face_input(self, path: Path) -> tuple[torch.Tensor | None, str, str | None]:
        from affectlab.features.face import FaceCropper, load_image

        img = load_image(path)
        if img.shape == (FACE_SIZE, FACE_SIZE):
            face, note = img, "64×64 image used as the face crop"
        else:
            if self._cropper is None:
                self._cropper = FaceCropper(size=FACE_SIZE)
            res = self._cropper.process(img)
            if not res.ok:
                return None, "", res.reason
            face, note = res.face, res.reason
        x = torch.from_numpy(face.astype(np.float32) / 255.0)[None, None]
        return x, note, None

    def _speech_input(self, path: Path) -> tuple[torch.Tensor | None, str, str | None]:
        from affectlab.features.audio import load_wav
        from affectlab.features.fbank import CorpusNormalizer, FbankParams, fbank

        params = FbankParams()
        wave, _ = load_wav(path, target_sr=params.sample_rate)
        feats = fbank(wave, params=params)
        if feats.shape[0] == 0:
            return None, "", "clip shorter than one 25 ms frame"
        if self.normalizer is not None:
            norm, note = self.normalizer, "normalised with the training statistics"
        else:
            norm, note = CorpusNormalizer().fit([feats]), "normalised over the clip itself"
        return torch.from_numpy(norm.transform(feats))[None], note, None

    def predict_file(self, path: str | os.PathLike) -> FilePrediction:
        path = Path(path)
        suffix = path.suffix.lower()
        kind = ("face" if suffix in IMAGE_SUFFIXES
                else "speech" if suffix in AUDIO_SUFFIXES else None)
        if kind is None:
            return FilePrediction(str(path), error=f"unsupported file type {suffix or '(none)'}; "
                                  f"images: {sorted(IMAGE_SUFFIXES)}, "
                                  f"audio: {sorted(AUDIO_SUFFIXES)}")
        if kind != self.modality:
            return FilePrediction(str(path), error=f"a {kind} file, but the model is for "
                                  f"{self.modality}")
        try:
            x, note, err = (self._face_input(path) if kind == "face"
                            else self._speech_input(path))
        except (OSError, ValueError) as exc:
            return FilePrediction(str(path), error=str(exc))
        if err is not None:
            return FilePrediction(str(path), error=err)
        lengths = torch.tensor([x.shape[1]]) if kind == "speech" else None
        pred = self.predict_batch(x, lengths)
        probs = pred.probs[0].float().cpu().numpy()
        dist = {name: float(p) for name, p in zip(self.class_names, probs, strict=True)}
        return FilePrediction(str(path), dist, self.class_names[int(probs.argmax())],
                              float(pred.uncertainty.reshape(-1)[0]), note)

    def predict_files(self, paths) -> list[FilePrediction]:
        return [self.predict_file(p) for p in paths]
