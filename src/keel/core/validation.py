"""Validation shared by the SDK (to fail at the call) and the stores (to never trust a client).

Every message follows one template: ``<field> must be <expected>; got <value>``.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from keel.core.errors import InvalidArgument

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
# matched with fullmatch: "$" would also accept a trailing newline
_KEY_RE = re.compile(r"[A-Za-z0-9_\-./ :]+")
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_\-. ]{0,127}"
"""Experiment, project, run, dataset and model names (the one definition: references such as
``name@3`` and ``models:/name@alias`` embed it)."""
ALIAS_PATTERN = r"[a-z][a-z0-9_\-]{0,63}"
"""Model aliases (``production``, ``staging``, ...)."""
_NAME_RE = re.compile(NAME_PATTERN)
_ALIAS_RE = re.compile(ALIAS_PATTERN)
_KEY_EXPECTED = "a non-empty string of at most 250 characters from letters, digits, '_', '-', '.', '/', ':' and spaces"


def check_key(key: Any, field: str = "key") -> str:
    """Validate a param/metric/tag key."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not _KEY_RE.fullmatch(key):
        raise InvalidArgument.for_field(field, key, _KEY_EXPECTED)
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidArgument.for_field(field, key, "a relative key without '..' segments")
    return key


def check_name(name: Any, field: str) -> str:
    """Validate an experiment/project/run name."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidArgument.for_field(
            field, name, "1-128 characters from letters, digits, '_', '-', '.', spaces, starting with a letter or digit"
        )
    return name


def check_alias(alias: Any) -> str:
    """Validate a model alias."""
    if not isinstance(alias, str) or not _ALIAS_RE.fullmatch(alias):
        raise InvalidArgument.for_field("alias", alias, "1-64 lowercase letters, digits, '_' or '-', starting with a letter")
    return alias


def check_count(value: Any, field: str) -> int:
    """A size or a count: a non-negative integer (``bool`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument.for_field(field, value, "a non-negative integer")
    return value


def check_version_number(version: Any, expected: str = "a positive integer") -> int:
    """A dataset or model version number: 1, 2, ..."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgument.for_field("version", version, expected)
    return version


_INT64 = 2**63


def check_step(step: Any) -> int:
    """A metric step: a finite 64-bit integer (floats that are whole numbers are accepted)."""
    if isinstance(step, bool):
        raise InvalidArgument.for_field("step", step, "a finite integer")
    if isinstance(step, float) and math.isfinite(step) and step.is_integer():
        step = int(step)
    if isinstance(step, int):
        if -_INT64 <= step < _INT64:
            return step
        raise InvalidArgument.for_field("step", step, "a finite integer that fits in 64 bits")
    raise InvalidArgument.for_field("step", step, "a finite integer")


def check_timestamp(ts: Any) -> int:
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or not 0 <= ts < _INT64:
        raise InvalidArgument.for_field("timestamp", ts, "a non-negative number of milliseconds since the epoch")
    return int(ts)


def check_metric_value(value: Any, key: str = "") -> float:
    """A metric value: any real number. NaN and infinities are kept (they are real outcomes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)  # numpy scalars and the like
        except (TypeError, ValueError):
            field = f"metric {key!r} value" if key else "metric value"
            raise InvalidArgument.for_field(field, value, "a number") from None
    return float(value)


def param_to_str(key: str, value: Any) -> str:
    """The stored text of a param value: the one conversion every store applies (SDK, pipelines, REST).

    Strings are kept as they are and numbers as ``str()`` writes them (``0.1``, ``3``, ``nan``).
    Everything else is JSON, so any reader (filters, the UI, another language) can decode it:
    ``None`` -> ``null``, ``True`` -> ``true``, dicts, lists and tuples -> their JSON text. Leaves
    JSON cannot hold become numbers, lists or strings (a set -> a sorted list, a numpy scalar or
    array -> its Python value). Objects that are neither (a path, an enum) keep their ``str()``.

    >>> [param_to_str("p", x) for x in ("adam", 3, 0.1, None, True, {"a": [1, None]})]
    ['adam', '3', '0.1', 'null', 'true', '{"a": [1, null]}']
    """
    text = value if isinstance(value, str) else _param_text(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidArgument.for_field(f"param {key!r} value", text, f"at most {MAX_PARAM_VALUE_LENGTH} characters")
    return text


def _param_text(value: Any) -> str:
    if isinstance(value, bool) or _is_array_bool(value):
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


def _is_array_bool(value: Any) -> bool:
    """A numpy bool (``numpy.bool_``; ``numpy.bool`` in numpy 2), found without importing numpy."""
    return type(value).__name__ in ("bool", "bool_") and callable(getattr(value, "item", None))


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
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays (duck typed: core imports no numpy)
    if callable(tolist):
        try:
            return tolist()
        except (TypeError, ValueError):
            pass
    return str(value)


def tag_to_str(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidArgument.for_field(f"tag {key!r} value", text, f"at most {MAX_TAG_VALUE_LENGTH} characters")
    return text


def check_artifact_path(path: Any) -> str:
    """An artifact name inside a run: relative, '/'-separated, no '..', no backslash, no control characters."""
    expected = (
        "a relative path without '..', control or format characters (NUL, CR, LF, bidi controls, zero-width spaces, ...),"
        " backslashes or a leading '/'"
    )
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise InvalidArgument.for_field("artifact path", path, expected)
    if has_control_characters(path) or "\\" in path or path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise InvalidArgument.for_field("artifact path", path, expected)
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument.for_field("artifact path", path, expected)
    return path


def has_control_characters(text: str) -> bool:
    """True if ``text`` holds a control character (Unicode category Cc: NUL, CR, LF, ESC, DEL...) or a format
    character (Cf: bidi marks, embeddings and isolates, U+061C, zero-width spaces and joiners...): both make a
    path read differently from what it is. By category, not a list, so no such character is forgotten."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def check_sha256(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InvalidArgument.for_field("sha256", value, "64 lowercase hex characters")
    return value
