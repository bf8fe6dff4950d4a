"""The default prediction-log sink: one Parquet blob per batch in the artifact store, indexed in the metadata store.

Blobs are content-addressed (so the same bytes are stored once, and S3 works like a folder); the index entry
(``PredictionLogFile``: deployment, time span, rows, replica) is what lets ``read_predictions`` open only the
files of a window.

A batch becomes Arrow columns with (almost) no Python work per row, since the writer shares the serving process's
GIL: whatever it spends per row the event loop waits for. So each of ``inputs``, ``output`` and ``proba`` is typed
when the whole batch allows it, and JSON text (as every file before this format) otherwise:

- ``inputs``: when every row is a row of a numeric matrix with the same ``input_names``, one float64 column
  ``inputs.<name>`` per input (``inputs`` itself null);
- ``output``: an int64, float64 (NaN and infinities null, as JSON has them) or bool column when every output is a
  number or every one a bool of that type; a string column marked ``keel.encoding: text`` when every one is a
  string; JSON text otherwise;
- ``proba``: a list<float64> (or list<float32>: ONNX models answer in float32) column when every row has a vector
  of probabilities of that type or none; JSON otherwise.

``read_predictions`` reads the type of each file's columns, so files of either format give the same frame.
"""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, is_, itemgetter, ne
from typing import Any

from keel.context import Context, resolve
from keel.core.errors import MissingExtra
from keel.core.predictions import LOG_COLUMNS, PredictionLogFile
from keel.serve.predlog import Entry, LoggedBatch, Row, encode_json, expand, inputs_of, is_matrix, request_records

__all__ = [
    "ParquetSink", "arrow_schema", "default_replica", "require_pyarrow", "rows_to_parquet", "rows_to_table", "table_to_parquet",
]  # fmt: skip

JSON_COLUMNS = ("inputs", "output", "proba")
INPUT_PREFIX = "inputs."
ENCODING_KEY = b"keel.encoding"  # field metadata: b"text" on a string column of plain strings, not JSON
_PLAIN = (
    "request_id", "row", "time", "deployment", "route", "model", "served", "latency_ms", "replica", "status",
)  # fmt: skip
_TAKEN = (*_PLAIN, "output", "proba")  # what one pass over the rows takes out
_take = itemgetter(*_TAKEN)
_REPEATING = ["deployment", "route", "model", "replica", "inputs", "output", "proba"]  # classes; JSON of a few shapes


def default_replica() -> str:
    """This process, as the log names it: ``host-pid``."""
    return f"{socket.gethostname()}-{os.getpid()}"


def require_pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtra("pyarrow", "data") from None
    return pyarrow


def arrow_schema() -> Any:
    """The Parquet schema of a log file with every value as JSON text, one field per ``LOG_COLUMNS`` entry (the
    format of the files before typed columns, and still what an empty window reads as)."""
    pa = require_pyarrow()
    types = {**_plain_types(pa), "inputs": pa.string(), "output": pa.string(), "proba": pa.string()}
    return pa.schema([pa.field(name, types[name]) for name in LOG_COLUMNS])


def _plain_types(pa: Any) -> dict[str, Any]:
    return {
        "request_id": pa.string(), "row": pa.int64(), "time": pa.int64(), "deployment": pa.string(),
        "route": pa.string(), "model": pa.string(), "served": pa.bool_(), "latency_ms": pa.float64(),
        "replica": pa.string(), "status": pa.int64(),
    }  # fmt: skip


def _columns(rows: list[Row]) -> dict[str, list[Any]]:
    """The columns of ``_TAKEN``: one pass in C when every row has every key (as the serving app's rows do)."""
    try:
        return dict(zip(_TAKEN, map(list, zip(*map(_take, rows), strict=True)), strict=True))
    except KeyError:
        return {name: [row.get(name) for row in rows] for name in _TAKEN}


def _numeric_inputs(rows: list[Row]) -> tuple[tuple[str, ...], Any] | None:
    """``(input_names, float64 matrix)`` when every row carries a numeric matrix row under the same ``input_names``."""
    import numpy as np

    try:
        names_column = list(map(itemgetter("input_names"), rows))
    except KeyError:
        return None
    names = names_column[0]
    # list.count compares by identity first: the rows of one model share its names tuple
    if names is None or names_column.count(names) != len(rows):
        return None
    values = list(map(itemgetter("inputs"), rows))
    if not _vectors(values, "biuf") or set(map(_shape, values)) != {(len(names),)}:
        return None
    # one contiguous column per input: Arrow takes each without a copy
    return names, np.ascontiguousarray(np.concatenate(values).reshape(len(rows), len(names)).T, dtype=np.float64)


_shape, _dtype = attrgetter("shape"), attrgetter("dtype")


def _vectors(values: list[Any], kinds: str) -> bool:
    """Whether every value is a 1-d numpy array of one of the dtype ``kinds`` (loops in C: no Python per value)."""
    import numpy as np

    return (
        set(map(type, values)) == {np.ndarray}
        and set(map(len, map(_shape, values))) == {1}
        and all(dtype.kind in kinds for dtype in set(map(_dtype, values)))
    )


def _output_column(pa: Any, outputs: list[Any]) -> tuple[Any, Any]:
    """``(field, array)`` of the outputs: typed when they are all numbers, all bools or all strings, else JSON."""
    import numpy as np

    kinds = set(map(type, outputs))
    try:
        if all(issubclass(k, int | np.integer) and not issubclass(k, bool) for k in kinds):
            return pa.field("output", pa.int64()), pa.array(outputs, pa.int64())
        if all(issubclass(k, float) for k in kinds):
            values = np.asarray(outputs, dtype=np.float64)
            return pa.field("output", pa.float64()), pa.array(values, pa.float64(), mask=~np.isfinite(values))
        if all(issubclass(k, bool | np.bool_) for k in kinds):
            return pa.field("output", pa.bool_()), pa.array(outputs, pa.bool_())
        if kinds == {str}:
            return pa.field("output", pa.string(), metadata={ENCODING_KEY: b"text"}), pa.array(outputs, pa.string())
    except (OverflowError, pa.ArrowException):  # an unsigned number past int64, say: JSON text holds it
        pass
    return pa.field("output", pa.string()), pa.array([encode_json(o).decode() for o in outputs], pa.string())


def _proba_column(pa: Any, probas: list[Any]) -> tuple[Any, Any]:
    """``(field, array)`` of the probabilities: list<float64> or list<float32> when every row has a vector of that
    type or None."""
    import numpy as np

    absent = list(map(is_, probas, repeat(None)))  # not probas.count(None): an array compared to None is an array
    missing = absent.count(True)
    if missing == len(probas):
        return pa.field("proba", pa.string()), pa.nulls(len(probas), pa.string())
    present = [p for p in probas if p is not None] if missing else probas
    dtypes = set(map(_dtype, present)) if _vectors(present, "f") else set()
    if len(dtypes) == 1 and dtypes.pop() in (np.dtype(np.float32), np.dtype(np.float64)):
        lengths = map(len, probas) if not missing else (0 if p is None else len(p) for p in probas)
        offsets = np.zeros(len(probas) + 1, dtype=np.int32)
        np.cumsum(np.fromiter(lengths, dtype=np.int32, count=len(probas)), out=offsets[1:])
        mask = pa.array(absent, pa.bool_()) if missing else None
        array = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(present)), mask=mask)
        return pa.field("proba", array.type), array
    texts = [None if p is None else encode_json(p).decode() for p in probas]
    return pa.field("proba", pa.string()), pa.array(texts, pa.string())


def rows_to_table(entries: Sequence[Entry], deployment: str, replica: str) -> Any:
    """The rows (or ``LoggedBatch``es) as an Arrow table (typed columns where the batch allows); a row's missing
    deployment or replica is the sink's."""
    batches = [entry for entry in entries if isinstance(entry, LoggedBatch)]
    proba = output = None
    if batches and len(batches) == len(entries):
        columns, numeric, inputs, proba, output = _batch_columns(batches)
    else:
        rows: list[Row] = expand(entries) if batches else list(entries)  # type: ignore[arg-type]
        columns, numeric = _columns(rows), _numeric_inputs(rows)
        inputs = None if numeric is not None else [encode_json(inputs_of(row)).decode() for row in rows]
    return _table(columns, numeric, inputs, proba, output, deployment, replica)


Columns = dict[str, list[Any]]
Numeric = tuple[tuple[str, ...], Any]  # input names, float64 matrix with one row per input


def _table(
    columns: Columns, numeric: Numeric | None, inputs: list[str] | None, proba: Made, output: Made,
    deployment: str, replica: str,
) -> Any:  # fmt: skip
    """The table of ``columns`` (``_TAKEN``), the inputs as columns (``numeric``) or as JSON text (``inputs``), and
    ``proba`` and ``output`` when already made."""
    pa = require_pyarrow()
    types = _plain_types(pa)
    n = len(columns["request_id"])
    for name, default in (("deployment", deployment), ("replica", replica)):
        if None in columns[name] or "" in columns[name]:
            columns[name] = [value or default for value in columns[name]]
    arrays = {name: (pa.field(name, types[name]), pa.array(columns[name], types[name])) for name in _PLAIN}
    if inputs is not None:
        arrays["inputs"] = pa.field("inputs", pa.string()), pa.array(inputs, pa.string())
    else:
        arrays["inputs"] = pa.field("inputs", pa.string()), pa.nulls(n, pa.string())
    arrays["output"] = output or _output_column(pa, columns["output"])
    arrays["proba"] = proba or _proba_column(pa, columns["proba"])
    fields = [arrays[name][0] for name in LOG_COLUMNS]
    data = [arrays[name][1] for name in LOG_COLUMNS]
    if numeric is not None:
        names, matrix = numeric
        fields += [pa.field(INPUT_PREFIX + name, pa.float64()) for name in names]
        data += [pa.array(column) for column in matrix]
    return pa.Table.from_arrays(data, schema=pa.schema(fields))


Made = tuple[Any, Any] | None  # (field, array) of a column made from arrays, or None: made from the row values


def _batch_columns(batches: list[LoggedBatch]) -> tuple[Columns, Numeric | None, list[str] | None, Made, Made]:
    """The columns of a run of batches, made from each call's tuples and arrays (the writer shares the serving
    process's GIL: the work per row is in C wherever the batch allows): what ``_columns``, ``_numeric_inputs`` and
    the JSON inputs make of the same rows one by one."""
    import numpy as np

    columns: Columns = {name: [] for name in _TAKEN}
    ids, row, time_, deployment_, route, model_, served, latency, replica_, status, output, proba = (
        columns[name] for name in _TAKEN
    )
    data: list[Any] = []
    names_seen: set[tuple[str, ...] | None] = set()
    outputs: list[Any] = []  # per request: its "predict" array, None when it failed
    probas: list[Any] = []  # per request: its "predict_proba" matrix or None
    sizes: list[int] = []
    for batch in batches:
        k = batch.size
        time_ += [batch.time] * k
        deployment_ += [batch.deployment] * k
        replica_ += [batch.replica] * k
        names_seen.update(batch.names)
        data += batch.data
        sizes += batch.sizes
        if k == len(batch.sizes) and None not in batch.results:  # one row per request, every one answered
            ids += batch.request_ids
            route += batch.kinds
            model_ += batch.models
            served += map(ne, batch.kinds, repeat("shadow"))
            latency += [result[1] * 1000.0 for result in batch.results]  # type: ignore[index]
            status += [200] * k
            answers = list(map(itemgetter(0), batch.results))  # type: ignore[arg-type]
            outputs += map(_get, answers, repeat("predict"))
            probas += map(_get, answers, repeat("predict_proba"))
            continue
        for kind, model, request_id, result, n in zip(
            batch.kinds, batch.models, batch.request_ids, batch.results, batch.sizes, strict=True
        ):
            ids += [request_id] * n
            route += [kind] * n
            model_ += [model] * n
            served += [kind != "shadow"] * n
            status += [200 if result is not None else 500] * n
            latency += [(batch.seconds if result is None else result[1]) * 1000.0] * n
            outputs.append(None if result is None else result[0].get("predict"))
            probas.append(None if result is None else result[0].get("predict_proba"))
    row += np.concatenate([np.arange(n) for n in sizes]).tolist() if set(sizes) != {1} else [0] * len(sizes)
    output_column = _batch_output(outputs)
    if output_column is None:
        output += _per_row(outputs, sizes, lambda o: np.asarray(o).tolist())
    proba_column = _batch_proba(probas)
    if proba_column is None:
        proba += _per_row(probas, sizes, lambda p: list(np.asarray(p)))
    numeric: Numeric | None = None
    inputs: list[str] | None = None
    names = next(iter(names_seen)) if len(names_seen) == 1 else None
    matrix = _concatenated(data) if names is not None else None
    if matrix is not None and is_matrix(matrix, names):
        numeric = names, np.ascontiguousarray(matrix.T, dtype=np.float64)  # type: ignore[assignment]
    else:
        inputs = []
        for batch in batches:
            for names_i, body, x, n in zip(batch.names, batch.bodies, batch.data, batch.sizes, strict=True):
                if is_matrix(x, names_i):
                    records = [dict(zip(names_i or (), r, strict=True)) for r in x.tolist()]
                else:
                    records = request_records(body, x, names_i, n)
                inputs += [encode_json(record).decode() for record in records]
    return columns, numeric, inputs, proba_column, output_column


_get = dict.get


def _concatenated(parts: list[Any]) -> Any:
    """The requests' inputs as one matrix when every one is a 2-d numeric array of one width, else None."""
    import numpy as np

    if set(map(type, parts)) != {np.ndarray}:
        return None
    try:
        joined = np.concatenate(parts)
    except ValueError:  # arrays of other dimensions or widths
        return None
    return joined if joined.ndim == 2 and len(joined) == sum(map(len, parts)) and joined.dtype.kind in "biuf" else None


def _batch_output(outputs: list[Any]) -> tuple[Any, Any] | None:
    """``(field, array)`` of the outputs when every request answered with a 1-d array of one numeric or bool dtype
    (made from the arrays, no Python number per row; the same column ``_output_column`` makes of their values);
    None otherwise."""
    import numpy as np

    if not outputs or set(map(type, outputs)) != {np.ndarray}:
        return None
    kinds = {(o.ndim, o.dtype) for o in outputs}
    if len(kinds) != 1 or kinds.pop()[0] != 1:
        return None
    pa = require_pyarrow()
    values = np.concatenate(outputs)
    kind = values.dtype.kind
    if kind == "b":
        return pa.field("output", pa.bool_()), pa.array(values, pa.bool_())
    if kind == "i" or (kind == "u" and (not len(values) or values.max() <= np.iinfo(np.int64).max)):
        return pa.field("output", pa.int64()), pa.array(values.astype(np.int64), pa.int64())
    if kind == "f":
        values = values.astype(np.float64)
        return pa.field("output", pa.float64()), pa.array(values, pa.float64(), mask=~np.isfinite(values))
    return None


def _per_row(parts: list[Any], sizes: list[int], rows_of: Any) -> list[Any]:
    """Each request's part as its rows (``rows_of(part)``), None for each row of an absent part."""
    values: list[Any] = []
    for part, n in zip(parts, sizes, strict=True):
        values += [None] * n if part is None else rows_of(part)
    return values


def _batch_proba(probas: list[Any]) -> tuple[Any, Any] | None:
    """``(field, array)`` of the probabilities when every request has a matrix of one float type and width (one
    concatenation, no array per row); None otherwise."""
    import numpy as np

    if not probas or any(type(p) is not np.ndarray or p.ndim != 2 for p in probas):
        return None
    shapes = {(p.shape[1], p.dtype) for p in probas}
    if len(shapes) != 1:
        return None
    width, dtype = shapes.pop()
    if width == 0 or dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    pa = require_pyarrow()
    values = np.concatenate(probas).ravel()
    offsets = np.arange(0, values.size + 1, width, dtype=np.int32)
    array = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
    return pa.field("proba", array.type), array


def rows_to_parquet(rows: Sequence[Entry], deployment: str, replica: str) -> bytes:
    """The rows as one zstd-compressed Parquet file (``rows_to_table``)."""
    return table_to_parquet(rows_to_table(rows, deployment, replica))


def table_to_parquet(table: Any) -> bytes:
    """``table`` as zstd-compressed Parquet. Dictionaries only for the columns that repeat a few values (a
    dictionary of request ids or of floats costs time and makes the file bigger); statistics only for ``time``,
    the column a window filters on."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=_REPEATING, write_statistics=["time"])
    return buffer.getvalue()


class ParquetSink:
    """Writes each batch as a Parquet blob (``ctx.artifacts``) and indexes it (``ctx.store.predictions``)."""

    def __init__(self, deployment: str, ctx: Context | None = None, replica: str | None = None) -> None:
        self.deployment = deployment
        self.ctx = ctx
        self.replica = replica or default_replica()

    def __repr__(self) -> str:
        return f"ParquetSink({self.deployment!r}, replica={self.replica!r})"

    def write(self, rows: Sequence[Entry]) -> None:
        if not rows:
            return
        import pyarrow.compute as pc

        ctx = resolve(self.ctx)
        table = rows_to_table(rows, self.deployment, self.replica)
        span = pc.min_max(table["time"]).as_py()
        blob = ctx.artifacts.put_bytes(table_to_parquet(table))
        entry = PredictionLogFile(
            deployment=self.deployment, sha256=blob.sha256, rows=table.num_rows, start_ms=span["min"], end_ms=span["max"],
            replica=self.replica, size=blob.size,
        )  # fmt: skip
        ctx.store.predictions.add_log_file(entry)

    def close(self) -> None:
        """Nothing to release: every write is complete when it returns."""
