"""What datasets and runs exist under the data directory (for the app's Home page and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affectlab.data.schema import ContractError, DatasetMeta
from affectlab.paths import datasets_dir


@dataclass(frozen=True)
class DatasetSummary:
    """generated: made by the corpus generator (provenance ``source`` "generated"); source: the
    provenance's ``source`` ("generated", an importer's corpus path, "annotation campaign …",
    "explore selection", …; "" when unrecorded); has_truth: items carry hidden-truth columns
    (a generated corpus, and datasets taken from one)."""

    name: str
    path: Path
    modality: str
    n_items: int | None
    classes: tuple[str, ...]
    generated: bool
    error: str | None = None  # why its meta.json breaks the contract, if it does
    source: str = ""
    has_truth: bool = False


def list_datasets(root: Path | None = None) -> list[DatasetSummary]:
    """Every directory under ``root`` (default: the datasets directory) holding a meta.json.

    A meta.json that breaks the contract is still listed, with modality "?", no classes and the
    reason in ``error``, so that it does not silently vanish (pages that need a valid dataset
    leave such entries out)."""
    root = Path(root) if root is not None else datasets_dir()
    out = []
    for meta_path in sorted(root.glob("*/meta.json")):
        try:
            meta = DatasetMeta.read(meta_path)
        except ContractError as exc:
            out.append(DatasetSummary(meta_path.parent.name, meta_path.parent, "?", None, (),
                                      False, error=str(exc)))
            continue
        prov = meta.provenance
        source = str(prov.get("source") or "")
        out.append(DatasetSummary(
            name=meta.name,
            path=meta_path.parent,
            modality=meta.modality,
            n_items=prov.get("n_items", prov.get("n")),
            classes=tuple(meta.label_names),
            generated=source == "generated",
            source=source,
            has_truth=bool(meta.truth_columns),
        ))
    return out
