"""How the SDK turns a param value into the text a store keeps.

Strings are kept as they are and numbers as ``str()`` writes them (``0.1``, ``3``, ``nan``),
as before. Everything else is stored as JSON, so any reader (filters, the UI, another
language) can decode it: ``None`` -> ``null``, ``True`` -> ``true``, dicts, lists and tuples
-> their JSON text (``{"depth": 3, "loss": "log"}``). Leaves JSON cannot hold (a set, a
path, a numpy scalar) become numbers, lists or strings. Objects that are neither
(a path, an enum) keep their ``str()``.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any


def param_text(value: Any) -> str:
    """The stored text of a param value.

    >>> [param_text(v) for v in ("adam", 3, 0.1, None, True, {"a": [1, None]})]
    ['adam', '3', '0.1', 'null', 'true', '{"a": [1, null]}']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or _is_numpy_bool(value):
        return "true" if value else "false"
    if isinstance(value, numbers.Number):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, (Mapping, list, tuple)):
        try:
            return json.dumps(_plain(value), default=_json_leaf, ensure_ascii=False)
        except (TypeError, ValueError):  # keys JSON cannot hold, or a cycle: the text is all there is
            return str(value)
    return str(value)


def _is_numpy_bool(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")  # numpy 2 and 1


def _plain(value: Any) -> Any:
    """Mappings that are not dicts, as dicts (``json`` only walks dicts, lists and tuples)."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _json_leaf(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays: Python numbers and lists
    return str(value)
