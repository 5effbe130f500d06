"""Tolerant readers for the small JSON/YAML files of runs and datasets: a missing or broken file
reads as {} so listings never fail on one bad directory (the loaders that need the file report
it themselves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def read_json_dict(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_yaml_dict(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``, or {} when it is missing, unreadable or not a mapping."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}
