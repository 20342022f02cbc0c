"""Frozen parameter dataclasses: the one shape every stage's settings take.

A stage declares ``@dataclass(frozen=True) class FooParams(Params)`` with units
in field comments and defaults. ``to_dict`` is exactly what provenance stores
and what ``cxgraph.toml`` holds; ``from_dict`` validates and rejects unknown
keys with a message that names them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Self

from cxgraph.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Params:
    """Base for stage parameters. Subclasses are frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "") -> Self:
        data = dict(data or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"{where or cls.__name__}: unknown parameter(s) {unknown}; "
                f"expected some of {sorted(names)}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(v, hints[k], f"{where or cls.__name__}.{k}") for k, v in data.items()}
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        return self.from_dict({**self.to_dict(), **changes})


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert TOML/CLI values to the annotated type, or say what is wrong."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {hint}, got {value!r}")
    if origin is tuple:
        item = args[0] if args else Any
        if isinstance(value, str):  # "1,2,3" for numbers; one element for strings (may hold ",")
            value = [value] if item is str else [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(_coerce(v, item, where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {list(value)!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, float, str):
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if hint is not str and isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return hint(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from e
    return value
