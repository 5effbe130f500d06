"""A torch Dataset over any dataset directory (SPEC §7), face or speech.

Each item is a dict::

    x        face: (1, 64, 64) float32 in [0, 1]; speech: (frames, 40) float32 log-Mel fbank,
             z-normalised per dimension with the train-split statistics of the item's domain
    y        (K,) float32: the soft label of ``scale`` derived from ratings.parquet by the
             dataset's aggregator (meta.json ``aggregator``, default ``votes``: the vote
             fractions; see :mod:`affectlab.aggregators`) (target="soft"), or the one-hot of
             ``label`` (target="label")
    label    int: the dataset's ``label`` column (when it has no gaps) if ``scale`` is the
             label set's scale, else argmax of the soft label (lowest index on ties)
    index    int: position in this dataset (0..len-1), for per-item state (LDLVA's λ_i, ...)
    item_id  str; domain  str
    truth    generated data only: dict of the hidden truth columns (meta["truth_columns"]), with
             the ``true_dist_<class>`` columns gathered into one (K,) tensor ``true_dist``

Media are decoded once, at construction: faces into one (n, 64, 64) uint8 array, speech into
per-item fbank matrices (through the disk :class:`~affectlab.features.fbank.FbankCache` by default).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from affectlab.aggregators import aggregate_soft_labels, check_aggregator
from affectlab.data.contract import (
    SPLITS,
    ContractError,
    DatasetDir,
    face_boxes,
    label_codes,
    load_dataset,
)
from affectlab.features.audio import AudioLoadError, load_wav
from affectlab.features.face import FaceCropper, ImageLoadError, load_image, resize_face
from affectlab.features.fbank import CorpusNormalizer, FbankCache, FbankParams, fbank

logger = logging.getLogger(__name__)

IMAGE_SIZE = 64
TARGETS = ("soft", "label")


class EmotionDataset(Dataset):
    """Items of one dataset directory (optionally one split) with soft labels of one scale.

    data:          dataset directory path or a loaded :class:`DatasetDir`
    split:         None (all items) or one of "train", "val", "test"
    scale:         rating scale for ``y`` (a scale of the dataset's schema: "category", ...)
    target:        "soft" (y = soft label) or "label" (y = one-hot of ``label``)
    transform:     optional callable applied to ``x`` (a tensor) in ``__getitem__``
    feature_cache: speech only. True: the default disk cache; a :class:`FbankCache`: that one;
                   False: compute filterbanks without touching the disk.
    normalizers:   speech only. {domain: fitted CorpusNormalizer} to use instead of fitting on
                   this dataset's train split (e.g. the statistics saved with a trained model).
    aggregator:    how ratings become soft labels (:data:`affectlab.aggregators.AGGREGATORS`);
                   None: the dataset's meta.json ``aggregator`` (default ``votes``). A per-rater
                   model is fitted on the ratings of all items, whatever ``split``, so every
                   split gets its labels from the same fit.
    domains:       None (every domain) or the domains (corpora) whose items to keep; a name
                   the dataset does not have is a ValueError listing those it has. Speech is
                   normalised per domain as without it.

    Items without a rating on ``scale`` are excluded when the rating is needed (always for
    target="soft"; for target="label" only when there is no ``label`` column for the scale),
    as are speech clips shorter than one frame (25 ms). ``excluded`` counts them and
    ``excluded_reasons`` says why; a log message reports it too.
    """

    def __init__(self, data: str | os.PathLike | DatasetDir, split: str | None = None,
                 scale: str = "category", target: str = "soft",
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 feature_cache: bool | FbankCache = True,
                 normalizers: Mapping[Any, CorpusNormalizer] | None = None,
                 aggregator: str | None = None,
                 domains: Sequence[str] | None = None):
        self.ds = data if isinstance(data, DatasetDir) else load_dataset(data)
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be None or one of {SPLITS}, got {split!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        schema = self.ds.schema
        if scale not in schema.scales:
            raise ValueError(f"scale {scale!r} is not a scale of dataset {self.ds.name!r} "
                             f"(known: {', '.join(schema.scales)})")
        self.split, self.scale, self.target, self.transform = split, scale, target, transform
        self.aggregator = check_aggregator(schema.aggregator if aggregator is None
                                           else aggregator)
        self.modality = self.ds.modality
        self.excluded_reasons: dict[str, int] = {}

        items = self.ds.items
        rows = (np.flatnonzero(items["split"].to_numpy() == split) if split
                else np.arange(len(items)))
        if domains is not None:
            rows = rows[np.isin(items["domain"].to_numpy()[rows].astype(str),
                                check_domains(self.ds, domains))]
        soft = aggregate_soft_labels(self.ds.ratings, items["item_id"].to_numpy(), scale,
                                     schema.scale(scale), self.aggregator)[rows]
        soft = soft.astype(np.float32)
        label_col = self._label_column(soft.shape[1])
        rated = ~np.isnan(soft).any(axis=1)
        need_rating = target == "soft" or label_col is None
        keep = rated if need_rating else np.ones(len(rows), dtype=bool)
        self._exclude(f"no rating on scale {scale!r}", int((~keep).sum()))
        rows, soft = rows[keep], soft[keep]
        labels = (label_col[rows] if label_col is not None
                  else np.argmax(soft, axis=1).astype(np.int64))

        if self.modality == "face":
            self._images = self._load_faces(rows)
        else:
            feats = self._load_speech(rows, feature_cache)
            long_enough = np.array([f.shape[0] > 0 for f in feats], dtype=bool)
            self._exclude("shorter than one 25 ms frame", int((~long_enough).sum()))
            rows, soft, labels = rows[long_enough], soft[long_enough], labels[long_enough]
            feats = [f for f, ok in zip(feats, long_enough, strict=True) if ok]
            self.normalizers = self._normalizers(rows, feats, normalizers, feature_cache)
            domains = items["domain"].to_numpy()[rows]
            self._features = [self.normalizers[d].transform(f)
                              for f, d in zip(feats, domains, strict=True)]

        self.rows = rows
        self.soft_labels = soft                    # (n, K), NaN rows only for target="label"
        self.labels = labels.astype(np.int64)      # (n,)
        self.item_ids = items["item_id"].to_numpy()[rows].astype(str)
        self.domains = items["domain"].to_numpy()[rows].astype(str)
        self._truth = self._truth_columns(rows)
        if self.excluded:
            logger.info("%s (split=%s, scale=%s): excluded %d item(s): %s", self.ds.name, split,
                        scale, self.excluded, self.excluded_reasons)

    # --- public -----------------------------------------------------------------------------

    @property
    def excluded(self) -> int:
        """How many items of the split were left out (see ``excluded_reasons``)."""
        return sum(self.excluded_reasons.values())

    @property
    def num_classes(self) -> int:
        """K, the length of ``y``."""
        return int(self.soft_labels.shape[1]) if len(self.soft_labels) else self.num_scale_classes()

    @property
    def class_names(self) -> list[str]:
        """Names of the K entries of ``y`` ("low", "high" for a Likert scale)."""
        return self.ds.schema.class_names(self.scale)

    @property
    def collate_fn(self) -> Callable[[list[dict]], dict]:
        """:func:`collate_speech` for speech, torch's default collate for faces."""
        return collate_speech if self.modality == "speech" else default_collate

    def num_scale_classes(self) -> int:
        return self.ds.schema.num_classes(self.scale)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        i = int(i) % len(self)
        if self.modality == "face":
            x = torch.from_numpy(self._images[i]).to(torch.float32).div_(255.0).unsqueeze(0)
        else:
            x = torch.from_numpy(self._features[i])
        if self.transform is not None:
            x = self.transform(x)
        if self.target == "soft":
            y = torch.from_numpy(self.soft_labels[i].copy())
        else:
            y = torch.zeros(self.num_classes, dtype=torch.float32)
            y[self.labels[i]] = 1.0
        item = {"x": x, "y": y, "label": int(self.labels[i]), "index": i,
                "item_id": str(self.item_ids[i]), "domain": str(self.domains[i])}
        if self._truth:
            item["truth"] = {name: _to_tensor(col[i]) for name, col in self._truth.items()}
        return item

    # --- construction helpers ---------------------------------------------------------------

    def _exclude(self, reason: str, count: int) -> None:
        if count:
            self.excluded_reasons[reason] = self.excluded_reasons.get(reason, 0) + count

    def _label_column(self, k: int) -> np.ndarray | None:
        """The items' ``label`` column as class indices, when it labels ``self.scale`` and has
        no gaps (names or indices, read by :func:`~affectlab.data.contract.label_codes`)."""
        items, schema = self.ds.items, self.ds.schema
        if "label" not in items.columns or self.scale != schema.label_scale:
            return None
        codes = label_codes(items["label"], schema.label_names)
        if (codes < 0).any():
            return None
        if codes.max() >= k:
            raise ValueError(f"items 'label' must be class indices in 0..{k - 1}, "
                             f"found {codes.max()}")
        return codes

    def _load_faces(self, rows: np.ndarray) -> np.ndarray:
        """Faces in the corpus's own box (items' face-box columns, :func:`face_boxes`) cropped
        there, already-cropped faces (:func:`~affectlab.features.face.is_face_crop`) resized,
        larger images cropped around their largest detected face; one where none is found is
        used whole (resized) and reported in the log. ``face_sources`` counts each path."""
        images = np.empty((len(rows), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        cropper = FaceCropper(size=IMAGE_SIZE)  # the detector loads only if an image needs it
        boxes = face_boxes(self.ds.items)
        self.face_sources: dict[str, int] = {"box": 0, "crop": 0, "detected": 0,
                                             "whole image": 0}
        no_face = []
        for j, row in enumerate(rows):
            path = self.ds.media_path(int(row))
            with self._media_errors(int(row)):
                img = load_image(path)
            box = None if boxes is None or np.isnan(boxes[row, 0]) else boxes[row]
            face, source = _face_of(cropper, img, box, path.name)
            images[j] = face
            self.face_sources[source] += 1
            if source == "whole image":
                no_face.append(path.name)
        if no_face:
            logger.warning("%d image(s) larger than a face crop with no face detected were used "
                           "whole, resized to %d×%d: %s%s", len(no_face), IMAGE_SIZE, IMAGE_SIZE,
                           ", ".join(no_face[:5]), " …" if len(no_face) > 5 else "")
        return images

    def _load_speech(self, rows: np.ndarray, feature_cache: bool | FbankCache
                     ) -> list[np.ndarray]:
        if isinstance(feature_cache, FbankCache):
            cache: FbankCache | None = feature_cache
        elif feature_cache is True:
            cache = FbankCache()
        elif feature_cache is False:
            cache = None
        else:
            raise TypeError(f"feature_cache must be a bool or an FbankCache, "
                            f"got {type(feature_cache).__name__}")
        self._cache = cache
        return [self._fbank_of_row(int(r)) for r in rows]

    def _fbank_of_row(self, row: int) -> np.ndarray:
        path = self.ds.media_path(row)
        with self._media_errors(row):
            if self._cache is not None:
                return self._cache.get(path)
            params = FbankParams()
            wave, _ = load_wav(path, target_sr=params.sample_rate)
        return fbank(wave, params=params)

    @contextmanager
    def _media_errors(self, row: int) -> Iterator[None]:
        """A media file that is missing or does not decode: one ContractError naming the
        dataset, the item and the file (the loaders' messages name the path)."""
        try:
            yield
        except (ImageLoadError, AudioLoadError, FileNotFoundError) as exc:
            item_id = self.ds.items["item_id"].iat[row]
            raise ContractError(f"dataset {self.ds.name!r}, item {item_id!r}: {exc}") from exc

    def _normalizers(self, rows: np.ndarray, feats: list[np.ndarray],
                     given: Mapping[Any, CorpusNormalizer] | None, feature_cache
                     ) -> dict[Any, CorpusNormalizer]:
        """One normaliser per domain of the kept items: the given ones, else fitted on all
        train-split items of that domain (rated or not: features need no labels). A domain
        with no train items (a held-out corpus) is fitted on all its items, as the f-SPL paper
        normalises each corpus over itself."""
        items = self.ds.items
        domains = items["domain"].to_numpy()
        needed = sorted(set(domains[rows]))
        if given is not None:
            missing = [d for d in needed if d not in given]
            if missing:
                raise ValueError(f"normalizers has no entry for domain(s) {missing}")
            return {d: given[d] for d in needed}
        have = dict(zip(rows.tolist(), feats, strict=True))
        split = items["split"].to_numpy()
        out: dict[Any, CorpusNormalizer] = {}
        for dom in needed:
            pool = np.flatnonzero((domains == dom) & (split == "train"))
            if len(pool) == 0:
                logger.info("domain %r has no train items: normalising it over all its items", dom)
                pool = np.flatnonzero(domains == dom)
            norm = CorpusNormalizer()
            for r in pool:  # streamed, so the other splits' features are not all kept in memory
                f = have[r] if r in have else self._fbank_of_row(int(r))
                norm.partial_fit([f])
            if not norm.fitted:
                raise ValueError(f"domain {dom!r}: no clip long enough to fit the normaliser")
            out[dom] = norm
        return out

    def _truth_columns(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Hidden truth columns for the kept rows; true_dist_* gathered into one (n, K) array."""
        names = [c for c in self.ds.schema.truth_columns if c in self.ds.items.columns]
        if not names:
            return {}
        items = self.ds.items.iloc[rows]
        dist_cols = [c for c in names if c.startswith("true_dist_")]
        ordered = [f"true_dist_{n}" for n in self.ds.class_names]
        if dist_cols and set(dist_cols) == set(ordered):
            dist_cols = ordered  # in label-set order, whatever order meta lists them in
        out: dict[str, np.ndarray] = {}
        if dist_cols:
            out["true_dist"] = items[dist_cols].to_numpy(dtype=np.float32)
        for c in names:
            if c not in dist_cols:
                out[c] = items[c].to_numpy()
        return out


def check_domains(data: DatasetDir, domains: Sequence[str]) -> list[str]:
    """``domains`` as a list when every one is a domain of ``data``'s items, else a ValueError
    naming the unknown ones and the dataset's domains."""
    known = sorted(set(data.items["domain"].astype(str)))
    wanted = [str(d) for d in domains]
    unknown = [d for d in wanted if d not in known]
    if unknown or not wanted:
        raise ValueError(f"dataset {data.name!r} has no domain {', '.join(map(repr, unknown))} "
                         f"(its domains: {', '.join(known)})" if unknown else
                         "domains must name at least one domain")
    return wanted


def _to_tensor(value: Any) -> Any:
    """A truth value as a tensor (float32, int64 or bool); strings stay strings."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, bool | np.bool_):
        return torch.tensor(bool(value))
    if isinstance(value, int | np.integer):
        return torch.tensor(int(value), dtype=torch.int64)
    if isinstance(value, float | np.floating):
        return torch.tensor(float(value), dtype=torch.float32)
    return value


def collate_speech(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch variable-length speech items.

    Returns a dict with ``x`` (B, T_max, D) float32, zero-padded after each sequence's end
    (0 is the corpus mean after z-normalisation), ``lengths`` (B,) int64 frame counts, and the
    other keys collated as torch's default does (``y`` (B, K), ``label`` (B,), ``index`` (B,),
    ``item_id`` list, ``truth`` dict of batched tensors).
    """
    if not batch:
        raise ValueError("batch must contain at least one item")
    xs = [item["x"] for item in batch]
    if any(x.ndim != 2 for x in xs) or len({x.shape[1] for x in xs}) != 1:
        raise ValueError("every item's x must be (frames, D) with the same D, got shapes "
                         f"{[tuple(x.shape) for x in xs]}")
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.int64)
    padded = torch.zeros(len(xs), int(lengths.max()), xs[0].shape[1], dtype=xs[0].dtype)
    for j, x in enumerate(xs):
        padded[j, : x.shape[0]] = x
    rest = default_collate([{k: v for k, v in item.items() if k != "x"} for item in batch])
    return {"x": padded, "lengths": lengths, **rest}


def _face_of(cropper: FaceCropper, img: np.ndarray, box: np.ndarray | None,
             name: str) -> tuple[np.ndarray, str]:
    """One image's face crop and how it was found ("box", "crop", "detected" or "whole
    image"). A given box outside the image is logged and the image goes through detection."""
    if box is not None:
        try:
            return cropper.crop(img, tuple(int(round(v)) for v in box)), "box"
        except ValueError as exc:
            logger.warning("%s: the face box of items.parquet is not usable (%s); detecting "
                           "the face instead", name, exc)
    found = cropper.process(img)
    if found.ok:
        return found.face, found.source
    return resize_face(img, cropper.size), "whole image"
