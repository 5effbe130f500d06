"""What datasets and runs exist under the data directory (for the app's Home page and the CLI)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from affectlab.paths import datasets_dir


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    path: Path
    modality: str
    n_items: int | None
    classes: tuple[str, ...]
    generated: bool


def list_datasets(root: Path | None = None) -> list[DatasetSummary]:
    """Every directory under ``root`` (default: the datasets directory) holding a meta.json."""
    root = Path(root) if root is not None else datasets_dir()
    out = []
    for meta_path in sorted(root.glob("*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a broken dataset is reported by load_dataset when opened, not here
        prov = meta.get("provenance", {})
        out.append(DatasetSummary(
            name=str(meta.get("name", meta_path.parent.name)),
            path=meta_path.parent,
            modality=str(meta.get("modality", "?")),
            n_items=prov.get("n_items", prov.get("n")),
            classes=tuple(meta.get("label_set", {}).get("names", ())),
            generated=bool(meta.get("truth_columns")),
        ))
    return out
