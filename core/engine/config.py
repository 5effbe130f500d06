"""Run configuration: one validated object says everything a training run needs.

A config is written by hand (YAML or JSON), built by the CLI from options, or by the app's form.
Unknown fields are errors (``extra="forbid"``) so a typo such as ``epoch: 3`` is reported by name
instead of silently training with the default. Numbers are bounded (a finite positive learning
rate, integer sizes within ceilings), model and method parameters are checked against the
registries' declarations, and a config file is read as bounded UTF-8 whose YAML may not repeat a
key, so what would fail (or run for ever) in the background worker is refused up front.

Defaults that depend on the method (``lr``, ``batch_size``, left as ``None``) are filled in from
:data:`METHOD_DEFAULTS`: the f-SPL paper trains with Adam, lr 1e-4, batch 100 (SPEC §2); the
other methods get CPU-friendly values (Adam lr 1e-3, batch 32) that train the small models of
this project in a few epochs. The values used are the ones written to ``<run>/config.yaml``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Hashable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from affectlab.errors import UserDataError

__all__ = ["ConfigError", "MAX_BATCH_SIZE", "MAX_CONFIG_BYTES", "MAX_EPOCHS", "MAX_SEED",
           "MAX_WORKERS", "METHOD_DEFAULTS", "RunConfig", "load_config", "parse_overrides",
           "save_config"]

# Ceilings: far beyond what a run of this project needs, low enough that a typed value cannot
# occupy the worker for ever or exhaust memory.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 100_000
MAX_WORKERS = 64
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_CONFIG_BYTES = 1 << 20

# Method-dependent defaults: (lr, batch_size). f-SPL: the paper's Adam lr 1e-4, batch 100.
_FSPL_DEFAULTS = {"lr": 1e-4, "batch_size": 100}
_GENERIC_DEFAULTS = {"lr": 1e-3, "batch_size": 32}
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "ce+fspl-kl": _FSPL_DEFAULTS, "ce+fspl-rkl": _FSPL_DEFAULTS,
    "ce+fspl-pearson": _FSPL_DEFAULTS, "ce+fspl-hellinger": _FSPL_DEFAULTS,
    "ce+fspl-js": _FSPL_DEFAULTS,
}


class ConfigError(UserDataError):
    """A run config is invalid; the message names the file (when there is one) and the field."""


def _registered(value: str, kind: str, known: list[str]) -> str:
    """``value`` if it names a registered ``kind`` (method / model), else the list of names."""
    if value not in known:
        raise ValueError(f"unknown {kind} {value!r}; known {kind}s: {', '.join(known)}")
    return value


def _known_methods() -> list[str]:
    from affectlab.methods import available

    return [spec.name for spec in available()]


def _known_models() -> list[str]:
    from affectlab.models import available

    return [spec.name for spec in available()]


class RunConfig(BaseModel):
    """Everything a training run needs.

    dataset:          dataset directory (SPEC §7)
    model:            model registry name; ``model_params`` its keyword arguments (num_classes
                      is set by the engine from the label scale)
    pretrained:       start from the model's shipped weights (mini_xception: FER2013), on any
                      label set: the head's rows are mapped to the dataset's classes by name
                      (:mod:`affectlab.models.finetune`), the other classes start fresh
    init_from:        start from a trained run's weights instead (its directory; the same model)
    class_map:        class names to read as others when mapping classes by name, {old: new}
                      (e.g. ``calm: neutral``), before the synonym table of affectlab.labelmap
    method:           method registry name; ``method_params`` override its paper defaults
    scale:            ratings scale giving the soft labels (None: the label set's scale)
    target:           what the method trains on: "soft" (the ratings' soft labels of ``scale``)
                      or "label" (the single dataset label, one-hot, as the papers' label-noise
                      and flip-detection experiments train; the methods then see no ratings of
                      the scale); evaluation is always against the ratings' soft labels
    train_domains:    domains (corpora) whose items are trained and validated on; None: all
    test_domains:     domains whose items make the test split; None: all. With both set to
                      different corpora a run trains on one and tests on the other (f-SPL's
                      cross-corpus protocol); speech is normalised per domain either way
    epochs, batch_size, lr, weight_decay, seed: the usual; batch_size/lr None = method default
    device:           "auto" (CUDA when available), "cpu" or "cuda"
    amp:              mixed precision; None = on exactly when training on CUDA
    num_workers:      DataLoader worker processes (0: load in the training process)
    checkpoint_every: write ``checkpoints/last.pt`` every this many epochs (and at the end)
    out:              run directory (None: ``<runs_dir>/<name>``)
    name:             run name (None: ``<method>-<model>-<timestamp>``)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dataset: Path
    model: str
    model_params: dict[str, Any] = Field(default_factory=dict)
    pretrained: bool = False
    init_from: Path | None = None
    class_map: dict[str, str] = Field(default_factory=dict)
    method: str = "ce"
    method_params: dict[str, Any] = Field(default_factory=dict)
    scale: str | None = None
    target: Literal["soft", "label"] = "soft"
    train_domains: list[str] | None = Field(None, min_length=1)
    test_domains: list[str] | None = Field(None, min_length=1)
    # strict integers: 2.5 or 1e20 epochs are refused, not truncated; true is not 1
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS, strict=True)
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_SIZE, strict=True)
    lr: float | None = Field(None, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=MAX_SEED, strict=True)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool | None = None
    num_workers: int = Field(0, ge=0, le=MAX_WORKERS, strict=True)
    checkpoint_every: int = Field(1, ge=1, le=MAX_EPOCHS, strict=True)
    out: Path | None = None
    name: str | None = None

    # lax floats, so YAML's "1e-3" (a string to YAML 1.1) still reads as a number; not a flag
    @field_validator("lr", "weight_decay", mode="before")
    @classmethod
    def _number_not_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"must be a finite number, got {value!r}")
        return value

    @field_validator("train_domains", "test_domains")
    @classmethod
    def _domains_distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if any(not isinstance(d, str) or not d.strip() for d in value):
                raise ValueError(f"must list domain names, got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"lists a domain twice: {value!r}")
        return value

    @field_validator("method")
    @classmethod
    def _method_known(cls, value: str) -> str:
        return _registered(value, "method", _known_methods())

    @field_validator("model")
    @classmethod
    def _model_known(cls, value: str) -> str:
        return _registered(value, "model", _known_models())

    @field_validator("name")
    @classmethod
    def _name_safe(cls, value: str | None) -> str | None:
        from affectlab.paths import safe_name

        # one rule for every name that becomes a directory (affectlab.paths.NAME_RULE)
        return None if value is None else safe_name(value, "name")

    # parameters are checked here (names, types, bounds), so train --prepare and the app's form
    # tell of a bad one, not the worker once started; info.data lacks the name when the name
    # itself was refused. The config keeps the values given (defaults stay implicit).
    @field_validator("method_params")
    @classmethod
    def _method_params_known(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from affectlab.methods import check_params

        if "method" in info.data:
            check_params(info.data["method"], value)
        return value

    @field_validator("model_params")
    @classmethod
    def _model_params_known(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from affectlab.models import check_params

        if "model" in info.data:
            check_params(info.data["model"], value)
        return value

    @field_validator("class_map", mode="before")
    @classmethod
    def _class_map_pairs(cls, value: Any) -> Any:
        from affectlab.labelmap import parse_class_map

        return parse_class_map(value) if isinstance(value, dict | list) else value

    @model_validator(mode="after")
    def _one_starting_point(self) -> RunConfig:
        if self.pretrained and self.init_from is not None:
            raise ValueError("pretrained and init_from are two starting points; choose one")
        return self

    @model_validator(mode="after")
    def _fill_defaults(self) -> RunConfig:
        defaults = METHOD_DEFAULTS.get(self.method, _GENERIC_DEFAULTS)
        # object.__setattr__: plain assignment would re-run validation recursively
        for key, value in defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        if self.name is None:
            # the random suffix keeps two runs started in the same second apart
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            object.__setattr__(self, "name",
                               f"{self.method}-{self.model}-{stamp}-{secrets.token_hex(2)}")
        return self

    def run_dir(self) -> Path:
        """The run directory: ``out``, else ``<runs_dir>/<name>`` (absolute)."""
        if self.out is not None:
            return Path(self.out).expanduser().resolve()
        from affectlab.paths import child_path, runs_dir

        return child_path(runs_dir(), str(self.name), "run name")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable dict (paths as strings)."""
        return self.model_dump(mode="json")


def _format_errors(exc: ValidationError, source: str | None) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see RunConfig for the valid fields)"
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            msg = str(err["ctx"]["error"])              # our own message, without "Value error, "
        elif err["type"] != "missing":
            msg += f", got {_short(err.get('input'))}"
        lines.append(f"{field}: {msg}")
    where = f"{source}: " if source else ""
    return where + "invalid run config: " + "; ".join(lines)


def validate_config(data: dict[str, Any], source: str | None = None) -> RunConfig:
    """Build a :class:`RunConfig` from a dict; errors become :class:`ConfigError` naming fields."""
    if not isinstance(data, dict):
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}a run config must be a mapping of fields, "
                          f"got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from exc


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last
    silently) and aliases (a run config needs none, and a few aliases can expand to gigabytes)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is not "
                                              "allowed in a run config", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, Hashable) and key in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicated key {key!r} (first at line {first[key]})",
                        key_node.start_mark)
                if isinstance(key, Hashable):
                    first[key] = line
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicated key {key!r}")
        out[key] = value
    return out


def _parse(text: str, path: Path) -> Any:
    """The document in ``text`` (JSON or YAML by ``path``'s suffix), or a one-line
    ConfigError naming the file and where in it."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(text, object_pairs_hook=_json_object)
        if suffix in (".yaml", ".yml"):
            return yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader: plain data only
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: cannot parse JSON at line {exc.lineno}, column "
                          f"{exc.colno}: {exc.msg}") from exc
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: cannot parse YAML{where}: {problem}") from exc
    raise ConfigError(f"{path}: config must be .yaml, .yml or .json")


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading BOM dropped), at most MAX_CONFIG_BYTES."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size} bytes; a run config may have at most "
                              f"{MAX_CONFIG_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start})") from exc


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a run config from YAML (.yaml/.yml) or JSON (.json); ``overrides`` (dotted keys
    allowed, e.g. ``model_params.width``) are applied before validation."""
    path = Path(path)
    data = _parse(_read_text(path), path)
    data = {} if data is None else data
    if overrides and isinstance(data, dict):
        data = apply_overrides(data, overrides)
    return validate_config(data, source=str(path))


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Write the config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    os.replace(tmp, path)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``overrides`` set; ``a.b`` sets key ``b`` of mapping ``a``."""
    out = json.loads(json.dumps(data, default=str))  # deep copy of plain data
    for key, value in overrides.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=3", "model_params.width=8"]`` → ``{"epochs": 3, "model_params.width": 8}``.

    Values are parsed as YAML scalars (numbers, booleans, null, lists); anything else is a string.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):
            try:  # YAML 1.1 reads "1e-3" as a string; a number is meant
                value = float(value) if _FLOAT.fullmatch(value.strip()) else value
            except ValueError:
                pass
        out[key.strip()] = value
    return out


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
