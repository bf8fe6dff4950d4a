"""The run search grammar, parsed once here for every backend.

::

    filter   := clause ("and" clause)*
    clause   := field op value
    field    := ("metrics" | "params" | "tags") "." key     key may be quoted: metrics.`val loss`
              | "status" | "name" | "run_id" | "parent_run_id" | "start_time" | "end_time"
    op       := "=" | "!=" | "<" | "<=" | ">" | ">=" | "like"
    value    := number | 'text' | "text"          times: ms since the epoch or an ISO date

Examples: ``metrics.acc > 0.9 and params.model = 'rf'``,
``status = 'finished' and start_time >= '2026-11-01'``. ``metrics.*`` compares the
latest value of the metric; ``params.*`` compares numerically when the value is a number.

order_by items: ``"metrics.acc DESC"``, ``"params.lr"``, ``"start_time ASC"``.

Limits, so that one request costs bounded work on every backend: a filter is at most
``MAX_FILTER_LENGTH`` characters and ``MAX_CLAUSES`` clauses, an order list at most
``MAX_ORDER_KEYS`` keys (each clause and key is one join: SQLite refuses more than 64
tables in one query).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Literal

from keel.core.entities import RunStatus, ViewType
from keel.core.errors import InvalidArgument

Kind = Literal["metric", "param", "tag", "attr"]
ATTRIBUTES = ("status", "name", "run_id", "parent_run_id", "start_time", "end_time")
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
_PAGE_TOKEN = re.compile(rb'\{"offset": (0|[1-9][0-9]{0,17})\}')
MAX_RESULTS_LIMIT = 10_000
MAX_FILTER_LENGTH = 10_000
MAX_CLAUSES = 50
MAX_ORDER_KEYS = 10
MAX_ORDER_KEY_LENGTH = 300
_MAX_PAGE_TOKEN_LENGTH = 64


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
        if isinstance(c.value, float):
            raise _bad(filter_text, f"{c.key} compares with a quoted string, got {c.value!r}")
        if c.key == "status":
            if c.op not in ("=", "!="):
                raise _bad(filter_text, "status takes = or !=")
            if c.value not in {s.value for s in RunStatus}:
                raise _bad(filter_text, f"status {c.value!r} is not one of {', '.join(s.value for s in RunStatus)}")
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


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset in a token made by ``encode_page_token``; anything else, however nested or long, is a 400."""
    if not token:
        return 0
    if isinstance(token, str) and len(token) <= _MAX_PAGE_TOKEN_LENGTH:
        try:
            decoded = base64.urlsafe_b64decode(token.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            decoded = b""
        # a shape check rather than json.loads: a token is data from the client, and only one shape is ours
        m = _PAGE_TOKEN.fullmatch(decoded)
        if m:
            return int(m.group(1))
    raise InvalidArgument.for_field("page_token", token, "a token returned by a previous search")
