"""Export a campaign's result: a SPEC §7 dataset directory, a CSV long table, or JSON lines.

The dataset export goes through :func:`affectlab.data.contract.write_dataset`, so ``affectlab train``
reads it like any dataset: ``items.parquet`` (the campaign's items with the source dataset's
other columns, e.g. split, domain and hidden truth, plus ``n_ratings`` and, when a nominal scale
exists, ``ds_label``: the Dawid–Skene most probable class), ``ratings.parquet`` (one row per
rating: item_id, rater_id, scale, value, timestamp, time_spent) and ``meta.json`` (the campaign's
scales and label set; ``aggregator``: how the dataset's readers turn its ratings into soft
labels, the export's choice, default ``votes``; provenance: ``source`` "annotation campaign
NAME", ``exported_at``, ``n_items``, ``n_raters``, ``n_ratings``, what was left out). Media are
hard-linked into the new directory when source and target share a file system, otherwise
copied.

Left out of the dataset and the JSON lines: ratings of revoked raters; left out of the dataset:
broken items (media that cannot be decoded: training would fail on them). The CSV holds every
rating, with the ``rater_revoked`` flag. :func:`train_command` is the command line that trains
on an exported dataset.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affectlab.aggregators import DEFAULT_AGGREGATOR, check_aggregator
from affectlab.annotate import aggregate
from affectlab.annotate.store import utcnow
from affectlab.data.contract import SPLITS, media_file, write_dataset
from affectlab.data.schema import LabelSet
from affectlab.fileio import link_or_copy
from affectlab.scales import as_scale

__all__ = ["FORMATS", "CampaignData", "check_format", "export_campaign", "train_command"]

FORMATS = ("dataset", "csv", "jsonl")
# a model that trains on each modality out of the box (affectlab.models)
DEFAULT_MODEL = {"face": "resnet18", "speech": "convpool"}


def train_command(dataset: str | os.PathLike, modality: str, method: str = "ce") -> str:
    """``affectlab train --dataset DIR --model … --method …`` for an exported dataset."""
    if modality not in DEFAULT_MODEL:
        raise ValueError(f"modality must be one of {sorted(DEFAULT_MODEL)}, got {modality!r}")
    return (f"affectlab train --dataset {shlex.quote(str(dataset))} "
            f"--model {DEFAULT_MODEL[modality]} --method {shlex.quote(method)}")


def _ds_labels(ratings: pd.DataFrame, ids: list[str], scales: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, meta in scales.items():
        if as_scale(meta, f"scales[{name!r}]").type == "nominal":
            post = aggregate.weighted_soft_labels(ratings, ids, name, meta)
            rated = ~np.isnan(post).any(axis=1)
            out[name] = np.where(rated, np.argmax(np.nan_to_num(post, nan=-1.0), axis=1), -1)
    return out


def check_format(format: str) -> None:
    """ValueError unless ``format`` is one of :data:`FORMATS`."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")


@dataclass(frozen=True)
class CampaignData:
    """What an export reads from a campaign (the owner's session gathers it, so this module
    needs no session): its settings, items (with ``broken``), every rating (with
    ``rater_revoked``) and the ratings that count for labels (revoked raters left out)."""

    settings: dict
    items: pd.DataFrame
    ratings: pd.DataFrame
    label_ratings: pd.DataFrame


def export_campaign(data: CampaignData, out: str | os.PathLike, *,
                    format: str = "dataset", overwrite: bool = False, link: bool = True,
                    aggregator: str = DEFAULT_AGGREGATOR) -> Path:
    """See :meth:`affectlab.annotate.service.OwnerSession.export`. Returns the written path."""
    check_format(format)
    check_aggregator(aggregator)
    settings, items = data.settings, data.items
    out = Path(out)
    if format == "csv":
        _check_target(out, overwrite)
        data.ratings.to_csv(out, index=False)
        return out
    all_ratings = data.ratings
    ratings = data.label_ratings
    if format == "jsonl":
        _check_target(out, overwrite)
        _write_jsonl(out, settings, items, ratings)
        return out
    left_out = {"n_broken_items": int(items["broken"].notna().sum()),
                "n_revoked_raters": int(all_ratings.loc[all_ratings["rater_revoked"],
                                                        "rater_id"].nunique())}
    usable = items[items["broken"].isna()].drop(columns="broken").reset_index(drop=True)
    ratings = ratings[ratings["item_id"].isin(usable["item_id"])]
    return _write_dataset_dir(out, settings, usable, ratings, overwrite, link, left_out,
                              aggregator)


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True)")
    out.parent.mkdir(parents=True, exist_ok=True)


def _write_jsonl(out: Path, settings: dict, items: pd.DataFrame, ratings: pd.DataFrame) -> None:
    ids = items["item_id"].tolist()
    scales = settings["scales"]
    soft = aggregate.soft_labels(ratings, ids, scales)
    weighted = {s: aggregate.weighted_soft_labels(ratings, ids, s, m) for s, m in scales.items()}
    by_item = {k: g for k, g in ratings.groupby("item_id")}
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w") as fh:
        for pos, row in enumerate(items.itertuples(index=False)):
            rows = by_item.get(row.item_id)
            record = {
                "item_id": row.item_id, "media": row.media, "is_gold": bool(row.is_gold),
                "broken": row.broken,
                "ratings": [] if rows is None else [
                    {"rater_id": r, "scale": s, "value": float(v)}
                    for r, s, v in zip(rows["rater_id"], rows["scale"], rows["value"],
                                       strict=True)],
                "soft": {s: _nan_to_none(y[pos]) for s, y in soft.items()},
                "weighted": {s: _nan_to_none(y[pos]) for s, y in weighted.items()},
            }
            fh.write(json.dumps(record) + "\n")
    tmp.replace(out)  # readers never see a half-written file


def _nan_to_none(row: np.ndarray) -> list[float] | None:
    return None if np.isnan(row).any() else [float(x) for x in row]


def _provenance(settings: dict, n_items: int, ratings: pd.DataFrame,
                left_out: dict[str, int]) -> dict:
    return {"source": f"annotation campaign {settings['name']}", "campaign": settings["name"],
            "campaign_source": settings["source"],
            "exported_at": utcnow().isoformat(timespec="seconds") + "Z",
            "n_items": int(n_items), "n_raters": int(ratings["rater_id"].nunique()),
            "n_ratings": int(len(ratings)), "ratings_per_item": settings["ratings_per_item"],
            "max_ratings": settings["max_ratings"], "left_out": dict(left_out)}


def _write_dataset_dir(out: Path, settings: dict, items: pd.DataFrame, ratings: pd.DataFrame,
                       overwrite: bool, link: bool, left_out: dict[str, int],
                       aggregator: str) -> Path:
    ids = items["item_id"].tolist()
    table = items.drop(columns=["is_gold"]).copy()
    table.insert(2, "modality", settings["modality"])
    if "split" not in table.columns:
        table["split"] = "train"
    table["split"] = table["split"].where(table["split"].isin(SPLITS), "train")
    if "domain" not in table.columns:
        table["domain"] = settings["name"]
    table["domain"] = table["domain"].fillna(settings["name"]).astype(str)
    table["is_gold"] = items["is_gold"].to_numpy()
    counts = ratings.groupby("item_id")["rater_id"].nunique()
    table["n_ratings"] = counts.reindex(ids).fillna(0).astype(np.int64).to_numpy()
    label_set = LabelSet.model_validate(settings["label_set"])
    for name, label in _ds_labels(ratings, ids, settings["scales"]).items():
        table["ds_label" if name == label_set.scale else f"ds_label_{name}"] = label
    long = ratings[["item_id", "rater_id", "scale", "value", "timestamp", "time_spent"]].copy()
    long["value"] = long["value"].astype(np.float64)
    meta = {"name": out.name, "modality": settings["modality"],
            "label_set": settings["label_set"], "scales": settings["scales"],
            "aggregator": aggregator,
            "provenance": _provenance(settings, len(table), long, left_out),
            "truth_columns": [c for c in table.columns
                              if c.startswith("true_") or c in ("subclass", "flipped")]}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.media.", dir=out.parent))
    try:
        root = Path(settings["media_root"])
        for rel in table["media"]:
            link_or_copy(media_file(root, rel), staging / rel, link)
        write_dataset(out, table, long, meta, media_dir=staging, overwrite=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
