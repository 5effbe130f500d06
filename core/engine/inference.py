"""Predictions for single files or arrays, from a trained run or a registry model with shipped
weights (``affectlab predict``, the live page).

Images: an already-cropped face (:func:`affectlab.features.face.is_face_crop`: at most 128 px
and about square, e.g. FER2013's 48×48; or ``crop=True``) is resized to 64×64; anything else goes
through the face detector (YuNet, Haar as the fallback), and an image with no face is reported,
not guessed at. The note says which path was taken. With several faces the largest is the
answer and ``faces`` lists every face (box, distribution), largest first.

Audio: 40-d Kaldi log-Mel filterbanks, z-normalised with the run's training statistics (its first
domain) or, for a model without them, over the clip itself.
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
    faces: list[dict[str, Any]] | None = None  # every face, when an image holds several

    def to_dict(self) -> dict[str, Any]:
        out = {"file": self.file}
        if self.error is not None:
            out["error"] = self.error
        else:
            out.update({"predicted": self.predicted, "distribution": self.distribution,
                        "uncertainty": self.uncertainty})
            if self.note:
                out["note"] = self.note
            if self.faces:
                out["faces"] = self.faces
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

    def _face_input(self, path: Path, crop: bool | None = None):
        """(x (N, 1, 64, 64) for every face, largest first, note, error, boxes)."""
        from affectlab.features.face import FaceCropper, load_image

        if self._cropper is None:
            self._cropper = FaceCropper(size=FACE_SIZE)
        res = self._cropper.process(load_image(path), crop=crop)
        if not res.ok:
            return None, "", res.reason, ()
        x = torch.from_numpy(np.stack(res.faces).astype(np.float32) / 255.0)[:, None]
        return x, res.reason, None, res.boxes

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

    def predict_file(self, path: str | os.PathLike, crop: bool | None = None) -> FilePrediction:
        """One file's prediction; ``crop`` (images): True takes the whole image as the face,
        False always detects, None decides by the already-cropped rule."""
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
        boxes = ()
        try:
            if kind == "face":
                x, note, err, boxes = self._face_input(path, crop)
            else:
                x, note, err = self._speech_input(path)
        except (OSError, ValueError) as exc:
            return FilePrediction(str(path), error=str(exc))
        if err is not None:
            return FilePrediction(str(path), error=err)
        lengths = torch.tensor([x.shape[1]]) if kind == "speech" else None
        pred = self.predict_batch(x, lengths)
        probs = pred.probs.float().cpu().numpy()
        unc = pred.uncertainty.reshape(-1).float().cpu().numpy()
        answers = [self._answer(p, u) for p, u in zip(probs, unc, strict=True)]
        out = FilePrediction(str(path), *answers[0], note)
        if len(boxes) > 1:
            out.faces = [{"box": list(b), "predicted": a[1], "distribution": a[0],
                          "uncertainty": a[2]} for b, a in zip(boxes, answers, strict=True)]
        return out

    def _answer(self, probs: np.ndarray, uncertainty: float):
        dist = {name: float(p) for name, p in zip(self.class_names, probs, strict=True)}
        return dist, self.class_names[int(probs.argmax())], float(uncertainty)

    def predict_files(self, paths, crop: bool | None = None) -> list[FilePrediction]:
        return [self.predict_file(p, crop=crop) for p in paths]
