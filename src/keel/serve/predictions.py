"""Reading the prediction log back, and the labels that arrive later.

>>> frame = read_predictions("churn", since="1h")          # the last hour, labels joined   # doctest: +SKIP
>>> log_labels(["r1", "r2"], [1, 0], deployment="churn")    # ground truth, days later       # doctest: +SKIP

Only the Parquet sink's files are read back (a Kafka topic is read by Kafka consumers).
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from numbers import Integral
from typing import TYPE_CHECKING, Any

import orjson

from keel.context import Context, resolve
from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument, KeelError
from keel.core.predictions import LOG_COLUMNS, MAX_LABELS_PER_CALL
from keel.serve.parquet_sink import ENCODING_KEY, INPUT_PREFIX, JSON_COLUMNS, arrow_schema, require_pyarrow
from keel.serve.predlog import encode_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["duration_ms", "labels_for", "log_labels", "read_log_file", "read_predictions", "window_ms"]

log = logging.getLogger(__name__)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_MOMENT = "a datetime, milliseconds since the epoch, or a duration ago such as '30m', '1h', '2d'"
_LABEL_QUERY_CHUNK = 5_000  # request ids per labels() call: keeps a REST query small
_LABEL_BULK_ABOVE = 20_000  # past this many request ids, one query for every label since the oldest prediction
_CLOCK_SKEW_MS = 3_600_000  # a replica's clock against the store's: labels recorded this much "before" still count


def duration_ms(value: Any, field: str) -> int:
    """A length of time as ms: "500ms", "30s", "10m", "1h", "2d", "1w", or an int (ms)."""
    if isinstance(value, Integral) and not isinstance(value, bool) and int(value) > 0:
        return int(value)
    match = _DURATION.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if match is None or float(match[1]) <= 0:
        raise InvalidArgument.for_field(field, value, "a length of time such as '30s', '10m', '1h', '1d'")
    return int(float(match[1]) * _UNIT_MS[match[2]])


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

    files = ctx.store.predictions.log_files(deployment, since_ms=since_ms, until_ms=until_ms)
    tables, decoded = [], []
    for file in files:
        table = read_log_file(ctx, deployment, file.sha256)
        if table is None:
            continue
        if "deployment" in table.column_names:  # an index entry pointing at another deployment's file adds nothing
            table = table.filter(pc.equal(table["deployment"], deployment))
        if since_ms is not None:
            table = table.filter(pc.greater_equal(table["time"], since_ms))
        if until_ms is not None:
            table = table.filter(pc.less_equal(table["time"], until_ms))
        # each file's own types (JSON text or typed columns): decoded before files of other types are joined
        decoded.append(values_of(table))
        tables.append(with_status(table).select([name for name in LOG_COLUMNS if name not in JSON_COLUMNS]))
    plain = arrow_schema().empty_table().drop_columns(list(JSON_COLUMNS))
    table = pa.concat_tables(tables, promote_options="permissive") if tables else plain
    values = {name: [v for file in decoded for v in file[name]] for name in JSON_COLUMNS}
    # stable: rows of one time keep their file order (request, row, primary before its shadows)
    order = pc.sort_indices(table, sort_keys=[("time", "ascending")])
    frame = table.take(order).to_pandas()
    frame["status"] = frame["status"].astype("Int64")  # None (older files) stays missing, not a float NaN
    positions = order.to_pylist()
    for name in JSON_COLUMNS:  # objects: pandas would turn a missing proba into NaN or NA
        frame.insert(LOG_COLUMNS.index(name), name, pd.Series([values[name][i] for i in positions], dtype=object))
    if labels:
        oldest = int(frame["time"].min()) if len(frame) else None
        frame["label"] = pd.Series(labels_for(ctx, deployment, frame, oldest), dtype=object)  # None stays None, not NaN
    return frame


def with_status(table: Any) -> Any:
    """``table`` with a ``status`` column: files written before it existed get nulls (answered, status unknown)."""
    import pyarrow as pa

    if "status" in table.column_names:
        return table
    return table.append_column(pa.field("status", pa.int64()), pa.nulls(table.num_rows, pa.int64()))


def read_log_file(ctx: Context, deployment: str, sha256: str) -> Any:
    """One indexed file, or None (with a warning) when its blob is missing or is not a prediction-log file: one bad
    index entry must not make a deployment's whole log unreadable (compare and the monitors read it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(ctx.artifacts.get_bytes(sha256)))
    except (KeelError, pa.ArrowException, OSError) as exc:
        log.warning("prediction log of %s: skipping file %s: %s", deployment, sha256[:12], exc)
        return None
    if not {"request_id", "time"} <= set(table.column_names):
        log.warning("prediction log of %s: skipping file %s: not a prediction-log file", deployment, sha256[:12])
        return None
    return table


def values_of(table: Any) -> dict[str, list[Any]]:
    """A file's ``inputs``, ``output`` and ``proba`` as Python values, whichever way the file stores them."""
    values = {name: _decoded(table.schema.field(name), table[name]) for name in JSON_COLUMNS}
    numeric = [name for name in table.column_names if name.startswith(INPUT_PREFIX)]
    if numeric:
        values["inputs"] = _inputs_from_columns(table, numeric, values["inputs"])
    return values


def _decoded(field: Any, column: Any) -> list[Any]:
    """JSON text decoded; a typed column (or a string column of plain text) as its values."""
    import pyarrow as pa

    if pa.types.is_string(field.type) and (field.metadata or {}).get(ENCODING_KEY) != b"text":
        return [None if text is None else orjson.loads(text) for text in column.to_pylist()]
    if pa.types.is_list(field.type) and pa.types.is_floating(field.type.value_type):
        return _float_lists(column.combine_chunks())
    values: list[Any] = column.to_pylist()
    return values


def _float_lists(array: Any) -> list[Any]:
    """A list<float> column as the lists JSON text of the same numbers decodes to: a float32 as the shortest decimal
    that names it (0.9, not 0.8999999761581421), NaN and infinities as None."""
    import numpy as np

    flat = array.values.to_numpy(zero_copy_only=False)  # offsets index into values (a null list may hide some)
    if flat.dtype != np.float64:
        flat = flat.astype(str).astype(np.float64)  # numpy's shortest round-trip text, as orjson writes a float32
    values: list[Any] = flat.tolist()
    if not np.isfinite(flat).all():
        values = [v if np.isfinite(v) else None for v in values]
    lists: list[Any] = [values[a:b] for a, b in itertools.pairwise(array.offsets.to_numpy().tolist())]
    if array.null_count:
        lists = [None if null else v for v, null in zip(lists, array.is_null().to_pylist(), strict=True)]
    return lists


def _inputs_from_columns(table: Any, numeric: list[str], inputs: list[Any]) -> list[Any]:
    """Rows written as numeric columns get their ``inputs`` object back (null values left out, as before)."""
    values = {name[len(INPUT_PREFIX) :]: table[name].to_pylist() for name in numeric}
    return [
        given if given is not None else {name: column[i] for name, column in values.items() if column[i] is not None}
        for i, given in enumerate(inputs)
    ]


def labels_for(ctx: Context, deployment: str, frame: pd.DataFrame, since_ms: int | None = None) -> list[Any]:
    """The label of each row of ``frame`` (its ``request_id`` and ``row`` columns), None where none arrived.
    ``since_ms``: when the oldest of these predictions was made; with many rows, the labels recorded since then
    come in one query (a label is recorded after its prediction) instead of one query per few thousand ids."""
    ids = sorted(set(frame["request_id"]))
    known: dict[tuple[str, int], Any] = {}
    if since_ms is not None and len(ids) > _LABEL_BULK_ABOVE:
        wanted = set(ids)
        for label in ctx.store.predictions.labels(deployment, since_ms=max(0, since_ms - _CLOCK_SKEW_MS)):
            if label.request_id in wanted:
                known[(label.request_id, label.row)] = label.label
        ids = []
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
