"""One registry class for models, losses and methods, with declared, bounded parameters.

Every entry declares its parameters as :class:`Param` (type, default, bounds, allowed values,
help), in the spirit of scikit-learn's ``_parameter_constraints``, so that the run config, the
CLI, the Train form and the factories check and show the same rules and raise one error type,
:class:`ParamError` (a ValueError)::

    LOSSES = Registry("loss", plural="losses")
    LOSSES.register("sgm", SGMLoss, params=(Param("sigma", float, 0.5, low=0, low_open=True),))
    LOSSES.check("sgm", {"sigma": -1})
    # ParamError: loss 'sgm': sigma must be a finite number > 0, got -1

Checks that relate two parameters or depend on the data stay with the factory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from affectlab.validation import Interval, ParamError, check_scalar, expected_scalar

__all__ = ["Entry", "KINDS", "Param", "ParamError", "Registry", "check_values"]

KINDS = (bool, int, float, str, object)  # object: any value, checked by the factory itself


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    kind:      bool, int, float (finite; ints accepted), str, or object (anything)
    default:   its value when not given (must itself pass the declaration)
    low/high:  bounds of a number, closed unless ``low_open``/``high_open``
    choices:   the allowed values, when only a few are
    also:      values allowed besides the kind (SGM's ``'bic'`` beside an integer)
    help:      one line for the CLI and the Train form
    """

    name: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    also: tuple[Any, ...] = ()
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TypeError(f"Param {self.name!r}: kind must be one of "
                            f"{', '.join(k.__name__ for k in KINDS)}, got {self.kind!r}")
        object.__setattr__(self, "choices", tuple(self.choices))
        object.__setattr__(self, "also", tuple(self.also))
        # the default must pass its own declaration (and a float one is stored as a float)
        object.__setattr__(self, "default",
                           self.check(self.default, where=f"declared default of {self.name!r}"))

    @property
    def interval(self) -> Interval | None:
        if self.low is None and self.high is None:
            return None
        return Interval(self.low, self.high, self.low_open, self.high_open)

    @property
    def expected(self) -> str:
        """What a value must be, in words ('a finite number > 0')."""
        return expected_scalar(self.kind, self.interval, self.choices, self.also)

    def __str__(self) -> str:
        """``name=default`` and, where the declaration limits it, what values are allowed:
        ``alpha=10.0 (a finite number ≥ 0)``."""
        limited = self.interval is not None or self.choices or self.also
        return f"{self.name}={self.default!r}" + (f" ({self.expected})" if limited else "")

    def check(self, value: Any, where: str = "") -> Any:
        """``value`` (ints as int, numbers of a float parameter as float), or ParamError."""
        return check_scalar(value, self.name, self.kind, interval=self.interval,
                            choices=self.choices, also=self.also, where=where)


def check_values(where: str, params: Sequence[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter: its checked value from ``values``, else its default. A name
    that is not declared is refused, listing the valid ones; ``where`` starts each message
    ("method 'sgm'")."""
    if not isinstance(values, Mapping):
        raise ParamError(f"{where}: parameters must be a mapping of name to value, got "
                         f"{type(values).__name__}")
    declared = {p.name: p for p in params}
    unknown = sorted((k for k in values if k not in declared), key=str)
    if unknown:
        raise ParamError(f"{where} has no parameter(s) {unknown}; valid: {sorted(declared)}")
    return {name: p.check(values[name], where) if name in values else p.default
            for name, p in declared.items()}


@dataclass(frozen=True)
class Entry:
    """A registered name: its factory, declared parameters, one-line description and the
    registry's metadata (a model's modality, a method's ``ordinal_only``…)."""

    kind: str
    name: str
    factory: Callable[..., Any]
    params: tuple[Param, ...]
    description: str
    metadata: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"{self.kind} {self.name!r}"

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """See :func:`check_values`."""
        return check_values(self.where, self.params, values)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


class Registry:
    """Names → factories with declared parameters.

    ``kind`` names what is registered in messages ("unknown loss 'x'; known losses: …");
    ``metadata`` maps the metadata keys an entry may carry to their defaults (an attribute of
    the factory with the same name, when it has one, is its entry's default).
    """

    def __init__(self, kind: str, *, plural: str | None = None,
                 metadata: Mapping[str, Any] | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._metadata = dict(metadata or {})
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any] | None = None, *,
                 params: Sequence[Param] | None = None, description: str | None = None,
                 replace: bool = False, **metadata: Any):
        """Register ``factory`` (a class or function) as ``name``; returns the factory, so it
        serves as a decorator too (``@REG.register("x")``).

        ``params`` default to the factory's ``param_specs`` attribute, ``description`` to its
        ``description`` attribute or the first line of its docstring. A taken name is refused
        unless ``replace``.
        """
        if factory is None:
            def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
                return self.register(name, f, params=params, description=description,
                                     replace=replace, **metadata)
            return decorator
        self._entries[name] = self._entry(name, factory, params, description, replace, metadata)
        return factory

    def _entry(self, name: str, factory: Callable[..., Any], params: Sequence[Param] | None,
               description: str | None, replace: bool, metadata: dict[str, Any]) -> Entry:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a {self.kind} name must be non-empty text, got {name!r}")
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered (replace=True to "
                             "replace it)")
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r}: factory must be callable, got "
                            f"{type(factory).__name__}")
        unknown = sorted(set(metadata) - set(self._metadata))
        if unknown:
            raise TypeError(f"{self.kind} {name!r}: unknown metadata {unknown}; valid: "
                            f"{sorted(self._metadata)}")
        params = tuple(getattr(factory, "param_specs", ()) if params is None else params)
        if not all(isinstance(p, Param) for p in params):
            raise TypeError(f"{self.kind} {name!r}: params must be Param declarations")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.kind} {name!r}: a parameter is declared twice in {names}")
        if description is None:
            description = (getattr(factory, "description", "")
                           or _first_line(getattr(factory, "__doc__", "")))
        meta = {key: metadata[key] if key in metadata else getattr(factory, key, default)
                for key, default in self._metadata.items()}
        return Entry(self.kind, name, factory, params, str(description), MappingProxyType(meta))

    def unregister(self, name: str) -> None:
        """Remove ``name`` (ParamError if it is not registered)."""
        self.get(name)
        del self._entries[name]

    @contextlib.contextmanager
    def registered(self, name: str, factory: Callable[..., Any], **kw: Any) -> Iterator[Entry]:
        """``name`` registered inside the block only (tests, plugins tried out)."""
        self.register(name, factory, **kw)
        try:
            yield self._entries[name]
        finally:
            self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        """The entry of ``name``; an unknown name gets ParamError listing the known ones."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise ParamError(f"unknown {self.kind} {name!r}; known {self.plural}: "
                             f"{', '.join(self._entries)}")
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def available(self) -> list[Entry]:
        """Every entry, in registration order."""
        return list(self._entries.values())

    def check(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` checked against ``name``'s declarations, defaults filled in."""
        return self.get(name).check(params)

    def create(self, name: str, /, *args: Any, **params: Any) -> Any:
        """``factory(*args, **checked params)`` of ``name``."""
        entry = self.get(name)
        return entry.factory(*args, **entry.check(params))
