"""The default prediction-log sink: one Parquet blob per batch in the artifact store, indexed in the metadata store.

Blobs are content-addressed (so the same bytes are stored once, and S3 works like a folder); the index entry
(``PredictionLogFile``: deployment, time span, rows, replica) is what lets ``read_predictions`` open only the
files of a window. ``output`` and ``proba`` are stored as JSON text (they vary by model, and one file mixes the
routes of a deployment). ``inputs`` too, unless every row of the batch has the same numeric columns (rows of the
matrix the model read, with their ``input_names``): then each column is a float64 column ``inputs.<name>`` and
``inputs`` is null. That is cheaper to write (no JSON per row on the serving process) and to read by column (the
monitors read features one by one); ``read_predictions`` gives ``inputs`` back as objects either way.
"""

from __future__ import annotations

import io
import os
import socket
from typing import Any

from keel.context import Context, resolve
from keel.core.errors import MissingExtra
from keel.core.predictions import LOG_COLUMNS, PredictionLogFile
from keel.serve.predlog import Row, encode_json, inputs_of

__all__ = ["ParquetSink", "arrow_schema", "default_replica", "require_pyarrow", "rows_to_parquet"]

JSON_COLUMNS = ("inputs", "output", "proba")


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
    """The Parquet schema of a log file, one field per ``LOG_COLUMNS`` entry."""
    pa = require_pyarrow()
    types = {
        "request_id": pa.string(), "row": pa.int64(), "time": pa.int64(), "deployment": pa.string(),
        "route": pa.string(), "model": pa.string(), "served": pa.bool_(), "inputs": pa.string(),
        "output": pa.string(), "proba": pa.string(), "latency_ms": pa.float64(), "replica": pa.string(),
    }  # fmt: skip
    return pa.schema([pa.field(name, types[name]) for name in LOG_COLUMNS])


INPUT_PREFIX = "inputs."


def _numeric_inputs(rows: list[Row]) -> dict[str, Any] | None:
    """``{name: float64 column}`` when every row carries a matrix row under the same ``input_names``, else None."""
    import numpy as np

    names = rows[0].get("input_names")
    if names is None or any(row.get("input_names") != names for row in rows):
        return None
    matrix = np.vstack([row["inputs"] for row in rows]).astype(np.float64, copy=False)
    return {name: matrix[:, j] for j, name in enumerate(names)}


def rows_to_parquet(rows: list[Row], deployment: str, replica: str) -> bytes:
    """The rows as one zstd-compressed Parquet file; a row's missing deployment or replica is the sink's."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [row.get(name) for row in rows] for name in LOG_COLUMNS if name not in JSON_COLUMNS}
    columns["output"] = [encode_json(row.get("output")).decode() for row in rows]  # always JSON: None is "null"
    columns["proba"] = [None if (p := row.get("proba")) is None else encode_json(p).decode() for row in rows]
    numeric = _numeric_inputs(rows)
    columns["inputs"] = [None] * len(rows) if numeric is not None else [encode_json(inputs_of(row)).decode() for row in rows]
    columns["deployment"] = [d or deployment for d in columns["deployment"]]
    columns["replica"] = [r or replica for r in columns["replica"]]
    table = pa.Table.from_pydict(columns, schema=arrow_schema())
    for name, values in (numeric or {}).items():
        table = table.append_column(pa.field(INPUT_PREFIX + name, pa.float64()), pa.array(values))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


class ParquetSink:
    """Writes each batch as a Parquet blob (``ctx.artifacts``) and indexes it (``ctx.store.predictions``)."""

    def __init__(self, deployment: str, ctx: Context | None = None, replica: str | None = None) -> None:
        self.deployment = deployment
        self.ctx = ctx
        self.replica = replica or default_replica()

    def __repr__(self) -> str:
        return f"ParquetSink({self.deployment!r}, replica={self.replica!r})"

    def write(self, rows: list[Row]) -> None:
        if not rows:
            return
        ctx = resolve(self.ctx)
        times = [int(row["time"]) for row in rows]
        blob = ctx.artifacts.put_bytes(rows_to_parquet(rows, self.deployment, self.replica))
        entry = PredictionLogFile(
            deployment=self.deployment, sha256=blob.sha256, rows=len(rows), start_ms=min(times), end_ms=max(times),
            replica=self.replica, size=blob.size,
        )  # fmt: skip
        ctx.store.predictions.add_log_file(entry)

    def close(self) -> None:
        """Nothing to release: every write is complete when it returns."""
