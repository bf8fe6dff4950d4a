"""Checking pipeline and step arguments against their type hints, before anything runs.

A pipeline given ``C="abc"`` for ``C: float`` should fail at the call, naming the param,
not minutes later inside a step after runs were recorded. Only what the hints say is
checked, and leniently where Python itself is: an ``int`` passes for ``float``, numpy
scalars pass for ``int``/``float``. Hints that cannot be resolved or checked (forward
references to missing names, protocols, type variables) are skipped, never guessed.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import json
import numbers
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from keel.core.errors import InvalidArgument
from keel.pipelines.steps import find_outputs

_UNCHECKED = object()  # a hint this module does not know how to check


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The resolved hints of ``fn`` (empty when they cannot be resolved: nothing is checked then)."""
    try:
        return typing.get_type_hints(fn, include_extras=False)
    except Exception:  # noqa: BLE001 - unresolvable hints (a name only imported under TYPE_CHECKING): check nothing
        return {}


def check_arguments(fn: Callable[..., Any], arguments: Mapping[str, Any], where: str) -> None:
    """Raise ``InvalidArgument`` naming the first argument whose value does not fit its hint.

    Pass only the arguments the caller gave: defaults are the function's own business. ``None`` fits
    a parameter whose default is ``None`` (``C: float = None`` is an optional float, as people write it).
    Arguments that are (or contain) outputs of other steps are not known yet and are skipped.
    """
    hints = type_hints(fn)
    none_default = _none_defaults(fn)
    for name, value in arguments.items():
        hint = hints.get(name)
        if hint is None or find_outputs(value) or (value is None and name in none_default):
            continue
        if _matches(value, hint) is False:
            raise InvalidArgument.for_field(f"{where} param {name!r}", value, f"of type {describe(hint)}")


def _none_defaults(fn: Callable[..., Any]) -> set[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.default is None}


def cli_value(fn: Callable[..., Any], name: str, raw: str) -> Any:
    """A command-line value for param ``name`` of ``fn``: the string itself when the hint takes a string, a
    ``Path`` when it takes a path (``Path``, ``os.PathLike``), else JSON when it parses (``2``, ``[1, 2]``,
    ``true``), else the string. So ``-p tag=2024`` stays ``"2024"`` for ``tag: str``."""
    hint = type_hints(fn).get(name)
    if str in _members(hint):
        return raw
    if _path_like(hint):
        return Path(raw)
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def restore_paths(fn: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Params read back from JSON (``resume``): a string for a path-hinted param becomes a ``Path`` again."""
    hints = type_hints(fn)
    return {k: Path(v) if isinstance(v, str) and _path_like(hints.get(k)) else v for k, v in params.items()}


def _path_like(hint: Any) -> bool:
    kinds = _members(hint)
    return bool(kinds) and str not in kinds and all(isinstance(k, type) and issubclass(k, os.PathLike) for k in kinds)


def _members(hint: Any) -> list[Any]:
    """The types a hint allows besides ``None`` (empty when there is no hint)."""
    if hint is None:
        return []
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _members(args[0])
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(hint, types.UnionType)):
        return [m for a in args if a is not type(None) for m in _members(a)]
    return [origin or hint]


def describe(hint: Any) -> str:
    """A hint as people write it: ``float``, ``list[int]``, ``str | None``."""
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__
    return str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool | None:
    """True or False when the hint can be checked, None when it cannot (then the value passes)."""
    if hint is Any or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _matches(value, args[0])
    if origin is typing.Union or (hasattr(types, "UnionType") and isinstance(hint, types.UnionType)):
        results = [_matches(value, a) for a in args]
        return True if any(r is not False for r in results) else False
    if origin is typing.Literal:
        return value in args
    if origin is not None:
        return _matches_generic(value, origin, args)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is complex:
        return isinstance(value, numbers.Number) and not isinstance(value, bool)
    if isinstance(hint, type):
        if getattr(hint, "_is_protocol", False):
            return None
        return isinstance(value, hint)
    return None  # TypeVar, NewType, strings left unresolved: not checked


def _matches_generic(given: Any, origin: Any, args: tuple[Any, ...]) -> bool | None:
    if not isinstance(origin, type):
        return None
    if not isinstance(given, origin):
        return False
    value: Any = given  # a container of the hinted kind; its items are checked below
    if not args:
        return True
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) is not False for v in value)
        return len(value) == len(args) and all(_matches(v, a) is not False for v, a in zip(value, args, strict=True))
    if issubclass(origin, cabc.Mapping) and len(args) == 2:
        return all(_matches(k, args[0]) is not False and _matches(v, args[1]) is not False for k, v in value.items())
    if issubclass(origin, (cabc.Sequence, cabc.Set)) and not isinstance(value, (str, bytes)) and len(args) == 1:
        return all(_matches(v, args[0]) is not False for v in value)
    return True
