"""The run search grammar, parsed once here for every backend.

::

    filter   := clause ("and" clause)*
    clause   := field op value
    field    := ("metrics" | "params" | "tags") "." key     key may be quoted: metrics.`val loss`
              | "status" | "name" | "run_id" | "parent_run_id" | "start_time" | "end_time" | "kind" | "duration"
    op       := "=" | "!=" | "<" | "<=" | ">" | ">=" | "like"
    value    := number | 'text' | "text"          times: ms since the epoch or an ISO date; duration: ms

Examples: ``metrics.acc > 0.9 and params.model = 'rf'``,
``status = 'finished' and start_time >= '2026-11-01'``. ``metrics.*`` compares the
latest value of the metric; ``params.*`` compares numerically when the value is a number. ``kind`` is what the
run is to keel (``kind != 'step' and kind != 'trial'`` hides the steps of pipelines and the trials of studies);
``duration`` is ``end_time - start_time`` in ms (none while a run is running).

order_by items: ``"metrics.acc DESC"``, ``"params.lr"``, ``"start_time ASC"``. Runs without the key sort last
in either direction; ties are broken by start time (newest first), then run id.

Paging is keyset-based: a page token is a cursor holding the sort-key values of the page's last run, and the next
page is the runs strictly after it in the same order (``encode_page_token``): a page costs the same at any depth,
and runs logged while a client pages neither repeat nor shift the pages it has not fetched yet.

Limits, so that one request costs bounded work on every backend: a filter is at most
``MAX_FILTER_LENGTH`` characters and ``MAX_CLAUSES`` clauses, an order list at most
``MAX_ORDER_KEYS`` keys (each clause and key is one join: SQLite refuses more than 64
tables in one query).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from keel.core.entities import RunKind, RunStatus, ViewType
from keel.core.errors import InvalidArgument

Kind = Literal["metric", "param", "tag", "attr"]
ATTRIBUTES = ("status", "name", "run_id", "parent_run_id", "start_time", "end_time", "kind", "duration")
_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
}
_OPS = ("=", "!=", "<", "<=", ">", ">=", "like")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan))
      | (?P<op>==|!=|<=|>=|<>|=|<|>)
      | (?P<field>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_\-/:]+(?:\.[A-Za-z0-9_\-/:]+)*))?)
    )""",
    re.VERBOSE | re.IGNORECASE,
)
MAX_RESULTS_LIMIT = 10_000
MAX_FILTER_LENGTH = 10_000
MAX_CLAUSES = 50
MAX_ORDER_KEYS = 10
MAX_ORDER_KEY_LENGTH = 300
# a cursor holds the values of a row's sort keys: params and tags sort by their text (up to 8,000 characters each,
# MAX_ORDER_KEYS of them), so a bound that such a cursor fits in, against junk rather than to be reached
MAX_PAGE_TOKEN_LENGTH = 1_000_000
_TOKEN_PREFIX = "k1."
CursorValue = str | int | float | None


@dataclass(frozen=True, slots=True)
class Clause:
    kind: Kind
    key: str
    op: str
    value: str | float


@dataclass(frozen=True, slots=True)
class OrderKey:
    kind: Kind
    key: str
    descending: bool = False


def _bad(filter_text: str, why: str) -> InvalidArgument:
    shown = filter_text if len(filter_text) <= 200 else filter_text[:197] + "..."  # never echo a huge filter back
    return InvalidArgument(f"filter {shown!r} is not valid: {why}")


def _split_field(text: str, filter_text: str) -> tuple[Kind, str]:
    if "." in text:
        prefix, key = text.split(".", 1)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            raise _bad(filter_text, f"unknown field prefix {prefix!r}; expected metrics., params. or tags.")
        return kind, key.strip("`")
    name = text.lower()
    if name not in ATTRIBUTES:
        raise _bad(
            filter_text,
            f"unknown field {text!r}; expected metrics.<key>, params.<key>, tags.<key> or one of {', '.join(ATTRIBUTES)}",
        )
    return "attr", name


def _time_value(raw: str | float, filter_text: str) -> float:
    if isinstance(raw, float):
        return raw
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise _bad(filter_text, f"time {raw!r} is neither milliseconds nor an ISO date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() * 1000.0


def _tokens(text: str, filter_text: str) -> list[tuple[str, str]]:
    """Split stripped ``text`` into (kind, token) pairs in one pass: each match starts at ``pos``, nothing is copied."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):  # each token eats the blanks before it and text ends with no blank: no tail to test
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _bad(filter_text, f"unexpected text at {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def parse_filter(filter_text: str) -> list[Clause]:
    """Parse a filter string into clauses, or raise ``InvalidArgument`` naming the problem."""
    if filter_text is not None and not isinstance(filter_text, str):
        raise InvalidArgument.for_field("filter", filter_text, "a string")
    if filter_text and len(filter_text) > MAX_FILTER_LENGTH:
        raise InvalidArgument.for_field(
            "filter", filter_text, f"at most {MAX_FILTER_LENGTH:,} characters (got {len(filter_text):,})"
        )
    text = (filter_text or "").strip()
    if not text:
        return []
    tokens = _tokens(text, filter_text)
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        if len(clauses) == MAX_CLAUSES:
            raise _bad(filter_text, f"it has more than {MAX_CLAUSES} clauses, the most a filter may have")
        if len(tokens) - i < 3:
            raise _bad(filter_text, "a clause needs a field, an operator and a value")
        (fk, fv), (ok, ov), (vk, vv) = tokens[i : i + 3]
        if fk != "field":
            raise _bad(filter_text, f"expected a field, got {fv!r}")
        op = ov.lower()
        if not (ok == "op" or (ok == "field" and op == "like")):
            raise _bad(filter_text, f"expected an operator ({', '.join(_OPS)}) after {fv!r}, got {ov!r}")
        if op not in _OPS:  # '==' and '<>' from other languages: name the one to use
            equal = "=" if op == "==" else "!="
            raise _bad(filter_text, f"operator {ov!r} is not one of {', '.join(_OPS)}; write {fv} {equal} ...")
        if vk == "str":
            value: str | float = re.sub(r"\\(.)", r"\1", vv[1:-1])
        elif vk == "num":
            value = float(vv)
        else:
            raise _bad(filter_text, f"expected a number or a quoted string after {fv} {ov}, got {vv!r}")
        kind, key = _split_field(fv, filter_text)
        clauses.append(_checked(Clause(kind, key, op, value), filter_text))
        i += 3
        if i < len(tokens):
            if tokens[i][0] != "field" or tokens[i][1].lower() != "and":
                raise _bad(filter_text, f"expected 'and' between clauses, got {tokens[i][1]!r}")
            i += 1
            if i == len(tokens):
                raise _bad(filter_text, "it ends with 'and'")
    return clauses


def _checked(c: Clause, filter_text: str) -> Clause:
    if c.kind == "metric" and not isinstance(c.value, float):
        raise _bad(filter_text, f"metrics.{c.key} compares with a number, got {c.value!r}")
    if c.op == "like" and not isinstance(c.value, str):
        raise _bad(filter_text, "like compares with a quoted pattern")
    if c.kind == "attr":
        if c.key in ("start_time", "end_time"):
            return Clause(c.kind, c.key, c.op, _time_value(c.value, filter_text))
        if c.key == "duration":
            if not isinstance(c.value, float):
                raise _bad(filter_text, f"duration compares with a number of milliseconds, got {c.value!r}")
            return c
        if isinstance(c.value, float):
            raise _bad(filter_text, f"{c.key} compares with a quoted string, got {c.value!r}")
        if c.key == "status":
            if c.op not in ("=", "!="):
                raise _bad(filter_text, "status takes = or !=")
            if c.value not in {s.value for s in RunStatus}:
                raise _bad(filter_text, f"status {c.value!r} is not one of {', '.join(s.value for s in RunStatus)}")
        if c.key == "kind" and c.op != "like" and c.value not in {k.value for k in RunKind}:
            raise _bad(filter_text, f"kind {c.value!r} is not one of {', '.join(k.value for k in RunKind)}")
    if c.kind == "tag" and isinstance(c.value, float):
        raise _bad(filter_text, f"tags.{c.key} compares with a quoted string, got {c.value!r}")
    return c


def parse_order_by(items: list[str] | tuple[str, ...]) -> list[OrderKey]:
    if len(items) > MAX_ORDER_KEYS:
        raise InvalidArgument.for_field("order_by", items, f"at most {MAX_ORDER_KEYS} keys (got {len(items)})")
    keys: list[OrderKey] = []
    for item in items:
        if not isinstance(item, str) or len(item) > MAX_ORDER_KEY_LENGTH:
            raise InvalidArgument.for_field("order_by", item, f"a string of at most {MAX_ORDER_KEY_LENGTH} characters")
        parts = str(item).strip().split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise InvalidArgument.for_field("order_by", item, "'<field> [ASC|DESC]', e.g. 'metrics.acc DESC'")
        kind, key = _split_field(parts[0], str(item))
        keys.append(OrderKey(kind, key, len(parts) == 2 and parts[1].upper() == "DESC"))
    return keys


def check_max_results(max_results: object) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidArgument.for_field("max_results", max_results, f"an integer from 1 to {MAX_RESULTS_LIMIT}")
    return max_results


def check_view(view: object) -> ViewType:
    """Which runs or experiments to show: ``"active"`` (live, the default), ``"deleted"`` or ``"all"``."""
    try:
        return ViewType(view)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument.for_field("view", view, f"one of {', '.join(v.value for v in ViewType)}") from None


def order_fingerprint(orders: list[OrderKey] | tuple[OrderKey, ...]) -> str:
    """A short digest of an order list: a cursor made for one order is refused by a search in another."""
    text = json.dumps([[o.kind, o.key, o.descending] for o in orders])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_page_token(values: list[CursorValue], fingerprint: str) -> str:
    """A keyset cursor: the sort-key values of a page's last row (its id last), for the order ``fingerprint``.

    Opaque to clients: ``k1.`` then base64url of a JSON object and a checksum. The checksum is not a signature (a
    client could forge a well-formed cursor), only a guard against truncated or edited tokens: a forged cursor
    merely starts the page elsewhere in results the caller may read anyway.
    """
    body = json.dumps({"o": fingerprint, "k": values}, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_TOKEN_PREFIX}{base64.urlsafe_b64encode(body).decode().rstrip('=')}.{_digest(body)}"


def decode_page_token(token: str | None, fingerprint: str, kinds: list[str]) -> list[CursorValue] | None:
    """The cursor values in a token made by ``encode_page_token`` for the same order (``fingerprint``), each of the
    type its sort column holds (``kinds``: "float", "int" or "str"); None for no token. Anything else, an offset
    token of older keel versions included, is an ``InvalidArgument`` naming ``page_token``."""
    if not token:
        return None
    values = _cursor(token, fingerprint) if isinstance(token, str) and len(token) <= MAX_PAGE_TOKEN_LENGTH else None
    if values is None or len(values) != len(kinds) or not all(map(_fits, values, kinds)):
        raise InvalidArgument.for_field("page_token", token, "a token returned by a previous search with the same order_by")
    return [float(x) if kind == "float" and x is not None else x for x, kind in zip(values, kinds, strict=True)]


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def _cursor(token: str, fingerprint: str) -> list[Any] | None:
    """The values of a well-formed cursor for ``fingerprint``, else None."""
    encoded, _, digest = token.removeprefix(_TOKEN_PREFIX).rpartition(".")
    if not token.startswith(_TOKEN_PREFIX) or not encoded:
        return None
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if _digest(body) != digest:
            return None
        inner = json.loads(body, parse_constant=_finite_or_infinite)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(inner, dict) or inner.get("o") != fingerprint or not isinstance(inner.get("k"), list):
        return None
    return list(inner["k"])


def _finite_or_infinite(name: str) -> float:
    """``Infinity`` and ``-Infinity`` are metric values; NaN never is (the store keeps it as NULL)."""
    if name == "NaN":
        raise ValueError(name)
    return float(name)


def _fits(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
