"""Reading the prediction log back, and the labels that arrive later.

>>> frame = read_predictions("churn", since="1h")          # the last hour, labels joined   # doctest: +SKIP
>>> log_labels(["r1", "r2"], [1, 0], deployment="churn")    # ground truth, days later       # doctest: +SKIP

Only the Parquet sink's files are read back (a Kafka topic is read by Kafka consumers).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from numbers import Integral
from typing import TYPE_CHECKING, Any

import orjson

from keel.context import Context, resolve
from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument
from keel.core.predictions import LOG_COLUMNS, MAX_LABELS_PER_CALL
from keel.serve.parquet_sink import INPUT_PREFIX, JSON_COLUMNS, arrow_schema, require_pyarrow
from keel.serve.predlog import encode_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["log_labels", "read_predictions", "window_ms"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_MOMENT = "a datetime, milliseconds since the epoch, or a duration ago such as '30m', '1h', '2d'"
_LABEL_QUERY_CHUNK = 5_000  # request ids per labels() call: keeps a REST query small


def window_ms(value: Any, field: str, now: int | None = None) -> int | None:
    """``value`` as ms since the epoch: a datetime (naive means UTC), an int (ms), an ISO 8601 string, or a
    duration string meaning that long before ``now`` ("90s", "30m", "1h", "2d", "1w")."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgument.for_field(field, value, _MOMENT)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, Integral):
        if int(value) < 0:
            raise InvalidArgument.for_field(field, value, _MOMENT)
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if match is not None:
            return (now if now is not None else now_ms()) - int(float(match[1]) * _UNIT_MS[match[2]])
        try:
            return window_ms(datetime.fromisoformat(value.strip()), field)
        except ValueError:
            pass
    raise InvalidArgument.for_field(field, value, _MOMENT)


def read_predictions(
    deployment: str, since: Any = None, until: Any = None, *, ctx: Context | None = None, labels: bool = True
) -> pd.DataFrame:
    """The rows logged for ``deployment`` with ``since <= time <= until`` (either end open when None), oldest
    first: ``LOG_COLUMNS`` (``inputs``/``output``/``proba`` decoded from JSON, ``time`` in ms since the epoch),
    plus ``label`` (None where none arrived yet) when ``labels``. Opens only the files whose span overlaps."""
    ctx = resolve(ctx)
    now = now_ms()
    since_ms, until_ms = window_ms(since, "since", now), window_ms(until, "until", now)
    if since_ms is not None and until_ms is not None and since_ms > until_ms:
        raise InvalidArgument.for_field("until", until, f"a moment at or after since ({since})")
    pa = require_pyarrow()
    import pandas as pd
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = ctx.store.predictions.log_files(deployment, since_ms=since_ms, until_ms=until_ms)
    tables = [pq.read_table(io.BytesIO(ctx.artifacts.get_bytes(f.sha256))) for f in files]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else arrow_schema().empty_table()
    if since_ms is not None:
        table = table.filter(pc.greater_equal(table["time"], since_ms))
    if until_ms is not None:
        table = table.filter(pc.less_equal(table["time"], until_ms))
    # stable: rows of one time keep their file order (request, row, primary before its shadows)
    table = table.take(pc.sort_indices(table, sort_keys=[("time", "ascending")]))
    numeric = [name for name in table.column_names if name.startswith(INPUT_PREFIX)]
    frame = table.select(list(LOG_COLUMNS)).to_pandas()
    for name in JSON_COLUMNS:  # decoded from Arrow: pandas may have turned a missing proba into NaN or NA
        frame[name] = pd.Series([None if text is None else orjson.loads(text) for text in table[name].to_pylist()], dtype=object)
    if numeric:
        frame["inputs"] = pd.Series(_inputs_from_columns(table, numeric, frame["inputs"].tolist()), dtype=object)
    if labels:
        frame["label"] = pd.Series(_labels_for(ctx, deployment, frame), dtype=object)  # None stays None, not NaN
    return frame


def _inputs_from_columns(table: Any, numeric: list[str], inputs: list[Any]) -> list[Any]:
    """Rows written as numeric columns get their ``inputs`` object back (a row of another file has null there)."""
    values = {name[len(INPUT_PREFIX) :]: table[name].to_pylist() for name in numeric}
    return [
        given if given is not None else {name: column[i] for name, column in values.items() if column[i] is not None}
        for i, given in enumerate(inputs)
    ]


def _labels_for(ctx: Context, deployment: str, frame: pd.DataFrame) -> list[Any]:
    ids = sorted(set(frame["request_id"]))
    known: dict[tuple[str, int], Any] = {}
    for start in range(0, len(ids), _LABEL_QUERY_CHUNK):
        for label in ctx.store.predictions.labels(deployment, request_ids=ids[start : start + _LABEL_QUERY_CHUNK]):
            known[(label.request_id, label.row)] = label.label
    return [known.get((rid, int(row))) for rid, row in zip(frame["request_id"], frame["row"], strict=True)]


def log_labels(
    request_ids: Sequence[str],
    labels: Sequence[Any],
    *,
    deployment: str,
    rows: Sequence[int] | None = None,
    ctx: Context | None = None,
) -> int:
    """Record the ground truth of predictions by request id (and ``rows``: the row within each request, 0 for
    all when None); sent again, a label replaces the earlier one. Returns how many were recorded.

    Each call to the store holds at most ``MAX_LABELS_PER_CALL`` labels and is atomic; a longer list is sent in
    several calls, and since labels are idempotent a failed call may simply be repeated whole."""
    ids, values = list(request_ids), list(labels)
    if len(values) != len(ids):
        raise InvalidArgument.for_field("labels", f"{len(values)} labels", f"one label per request id ({len(ids)})")
    if rows is None:
        if len(set(ids)) != len(ids):
            raise InvalidArgument.for_field("rows", None, "the row of each label when a request id repeats")
        positions = [0] * len(ids)
    else:
        positions = list(rows)
        if len(positions) != len(ids):
            raise InvalidArgument.for_field("rows", f"{len(positions)} rows", f"one row per request id ({len(ids)})")
        for row in positions:
            if isinstance(row, bool) or not isinstance(row, Integral) or int(row) < 0:
                raise InvalidArgument.for_field("rows", row, "non-negative whole numbers")
    # numpy and pandas scalars (a Series of labels) become the JSON values the store keeps
    triples = [
        (str(rid), int(row), orjson.loads(encode_json(value))) for rid, row, value in zip(ids, positions, values, strict=True)
    ]
    ctx = resolve(ctx)
    for start in range(0, len(triples), MAX_LABELS_PER_CALL):
        ctx.store.predictions.log_labels(deployment, triples[start : start + MAX_LABELS_PER_CALL])
    return len(triples)
