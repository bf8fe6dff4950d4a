"""The prediction log's writer: rows offered by the request path, written to a sink by one background thread.

``offer`` appends a list under a lock and returns: it never waits for the sink. The queue is bounded in rows
(``capacity``, counting the batch being written too), so memory stays bounded when the sink is slow or down;
what does not fit is dropped and counted in ``dropped`` (and a warning is logged at most every
``WARN_EVERY_S`` seconds), never lost silently. The thread writes a batch of at most ``max_batch`` rows when
that many are waiting, when the oldest row has waited ``flush_interval`` seconds, or when ``flush``/``close``
asks. A sink that raises costs the rows of that batch (counted in ``failed``); the thread goes on.

>>> log = PredictionLog(ParquetSink("churn"))                         # doctest: +SKIP
>>> log.offer([{"request_id": "r1", "row": 0, "time": now_ms(), ...}]) # doctest: +SKIP
>>> log.close()                                                        # on SIGTERM: flush, stop   # doctest: +SKIP

A row is a dict with the keys of ``keel.core.predictions.LOG_COLUMNS``; ``inputs``, ``output`` and ``proba``
hold Python values (dicts, lists, numbers, numpy scalars and arrays): the sinks encode them as JSON off the
request path. An offered list belongs to the log from then on: the caller must not change it.

The server offers a ``LoggedBatch`` instead (``offer_batch``): one model call's requests as the batcher had them,
the input matrices and output arrays the model read and wrote, with no object made per row. The sinks turn a run
of batches into Arrow columns by concatenating those arrays (``keel.serve.parquet_sink``), or into the rows above
(``LoggedBatch.rows``) where they need rows. Measured at saturation on 2 cores shared with the load generator
(``bench/serving.py --log``): the event loop's cost of the log fell from about 13 µs to 1-2 µs a request, the
writer's hold on the GIL from about 6 µs to about 2.5 µs a row. A batch records what the model answered: a 500
that comes later, from rendering that answer, is in the metrics, not in the row's status.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, Protocol

import numpy as np
import orjson

from keel.context import Context, resolve
from keel.core.errors import InvalidArgument
from keel.serve.batching import Overloaded

__all__ = [
    "WARN_EVERY_S", "Entry", "LoggedBatch", "PredictionLog", "PredictionSink", "SinkFailure", "encode_json", "expand",
    "inputs_of", "is_matrix", "logged_batch", "request_rows", "sink_for",
]  # fmt: skip

log = logging.getLogger("keel.serve.predlog")
WARN_EVERY_S = 10.0
Row = dict[str, Any]
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass(slots=True, eq=False)
class LoggedBatch:
    """The log rows of one model call, as the batcher had them: per request its route's ``kind`` and ``model``, the
    model's input ``names``, the request id, input (``data``) and its rows (``sizes``), and the result (``(outputs,
    seconds)``, or None: the model failed on it). ``bodies[i]`` is the request's JSON body, kept only where the
    rows' inputs come from it (None for a numeric matrix: the matrix is the input). A failed request's rows have
    status 500, no outputs, and the call's ``seconds`` as latency.

    Tuples of strings, arrays and numbers: nothing here is tracked by the cyclic GC once a collection has seen it
    (a second of batches alive in lists made every collection of the serving process slower)."""

    deployment: str | None
    replica: str
    time: int  # ms since the epoch, when the call answered
    seconds: float  # the call's wall time
    kinds: tuple[str, ...]
    models: tuple[str, ...]
    names: tuple[tuple[str, ...] | None, ...]
    request_ids: tuple[str, ...]
    bodies: tuple[Any, ...]
    data: tuple[Any, ...]
    sizes: tuple[int, ...]
    results: tuple[tuple[dict[str, Any], float] | None, ...]
    size: int = 0  # rows in all

    def __post_init__(self) -> None:
        self.size = sum(self.sizes)

    def rows(self) -> list[Row]:
        """The batch as rows (``LOG_COLUMNS`` and ``input_names``), as ``offer`` takes them."""
        rows: list[Row] = []
        for kind, model, names, request_id, body, data, result in zip(
            self.kinds, self.models, self.names, self.request_ids, self.bodies, self.data, self.results, strict=True
        ):
            outputs, took = ({}, self.seconds) if result is None else result
            rows += request_rows(
                self.deployment, self.replica, kind, model, names, request_id, self.time, body, data, outputs, took,
                served=kind != "shadow", status=500 if result is None else 200,
            )  # fmt: skip
        return rows


_kind = attrgetter("kind")
_model = attrgetter("model")
_names = attrgetter("served.input_names")
_shape = attrgetter("shape")
_second = itemgetter(1)
_dtype_kind = attrgetter("dtype.kind")


def logged_batch(
    deployment: str | None, replica: str, tags: Sequence[Any], data: Sequence[Any], sizes: Sequence[int],
    results: Sequence[Any], seconds: float,
) -> LoggedBatch | None:  # fmt: skip
    """The ``LoggedBatch`` of one model call (the batcher's ``on_answered`` arguments; each tag is ``(route, request
    id, body)``), or None when none of its requests is a prediction. It runs on the event loop once per call: the
    checks are set operations over the requests (in C), with a loop in Python only for a batch that needs one."""
    ok = set(map(type, results)) == {tuple}
    if not ok:  # a request refused for its input (422) or for load (503) is no prediction: not logged
        kept = [i for i, r in enumerate(results) if not isinstance(r, InvalidArgument | Overloaded)]
        if not kept:
            return None
        tags, data, sizes = [tags[i] for i in kept], [data[i] for i in kept], [sizes[i] for i in kept]
        results = [None if isinstance(results[i], BaseException) else results[i] for i in kept]
    routes, request_ids, bodies = zip(*tags, strict=True)
    names = tuple(map(_names, routes))
    # a numeric matrix is the rows' inputs: the body is kept (alive until written) only where the inputs come from it
    if not _all_matrices(data, names):
        bodies = tuple(None if is_matrix(x, n) else body for body, x, n in zip(bodies, data, names, strict=True))
    else:
        bodies = (None,) * len(data)
    return LoggedBatch(
        deployment, replica, int(time.time() * 1000), seconds, tuple(map(_kind, routes)), tuple(map(_model, routes)),
        names, request_ids, bodies, tuple(data), tuple(sizes), tuple(results),
    )  # fmt: skip


def _all_matrices(data: Sequence[Any], names: tuple[tuple[str, ...] | None, ...]) -> bool:
    """``is_matrix`` for every request at once, in C."""
    if len(set(names)) != 1 or names[0] is None or set(map(type, data)) != {np.ndarray}:
        return False
    if set(map(len, map(_shape, data))) != {2}:
        return False
    return set(map(_second, map(_shape, data))) == {len(names[0])} and set(map(_dtype_kind, data)) <= set("biuf")


Entry = Row | LoggedBatch
"""What the queue holds and a sink is given: a row, or a batch of them."""


def expand(entries: Sequence[Entry]) -> list[Row]:
    """``entries`` as rows, batches expanded."""
    rows: list[Row] = []
    for entry in entries:
        if isinstance(entry, LoggedBatch):
            rows += entry.rows()
        else:
            rows.append(entry)
    return rows


def is_matrix(data: Any, names: Sequence[str] | None) -> bool:
    """Whether ``data`` is a numeric matrix with one column per input name: the rows' inputs are its rows."""
    return (
        isinstance(data, np.ndarray) and data.ndim == 2 and names is not None and data.shape[1] == len(names)
        and data.dtype.kind in "biuf"
    )  # fmt: skip


def request_records(body: Any, data: Any, names: Sequence[str] | None, n: int) -> list[Any]:
    """A request's inputs, one per row, as objects: the body's records (what the model read of them, no more) where
    it sent records, else the parsed input's."""
    records: Any = body.get("records") if isinstance(body, dict) else None
    if isinstance(records, list) and len(records) == n and names is not None:
        return [{name: record.get(name) for name in names} for record in records]
    if isinstance(records, list) and len(records) == n:
        return records
    if hasattr(data, "to_dict"):
        return list(data.to_dict("records"))
    if names is not None and np.ndim(data) == 2:
        return [dict(zip(names, row, strict=True)) for row in np.asarray(data).tolist()]
    return list(np.asarray(data).tolist())


def request_rows(
    deployment: str | None,
    replica: str,
    route: str,
    model: str,
    names: Sequence[str] | None,
    request_id: str,
    now_ms: int,
    body: Any,
    data: Any,
    outputs: dict[str, Any],
    took: float,
    *,
    served: bool,
    status: int = 200,
) -> list[Row]:
    """One prediction-log row per input row of a request (``keel.core.predictions.LOG_COLUMNS``). Numeric inputs
    are rows of the matrix the model read, with ``input_names`` (the sinks turn them into columns or objects). A
    failed answer (``status`` 500) has no outputs: its rows say so, so that monitors see the error rate."""
    n = int(data.shape[0]) if hasattr(data, "shape") else len(data)
    extra: dict[str, Any] = {}
    if is_matrix(data, names):
        records: list[Any] = list(data)
        extra = {"input_names": tuple(names or ())}
    else:
        records = request_records(body, data, names, n)
    predicted = np.asarray(outputs["predict"]).tolist() if "predict" in outputs else [None] * n
    # rows of the probability matrix, not lists: a row dict holding only atoms and arrays is not tracked by the GC
    proba = list(np.asarray(outputs["predict_proba"])) if "predict_proba" in outputs else [None] * len(predicted)
    latency_ms = took * 1000.0
    # fmt: off
    return [
        {
            "request_id": request_id, "row": i, "time": now_ms, "deployment": deployment, "route": route,
            "model": model, "served": served, "inputs": records[i], "output": predicted[i], "proba": proba[i],
            "latency_ms": latency_ms, "replica": replica, "status": status, **extra,
        }
        for i in range(len(predicted))
    ]
    # fmt: on


class PredictionSink(Protocol):
    """Where the writer thread sends batches of entries (rows, or ``LoggedBatch``es: ``expand`` makes rows of
    them). ``write`` is called from that one thread only; raising costs the batch (all its rows, or
    ``exc.failed_rows`` of them for a ``SinkFailure``)."""

    def write(self, rows: Sequence[Entry]) -> None: ...

    def close(self) -> None: ...


class SinkFailure(Exception):
    """A write that stored part of its batch: ``failed_rows`` of the rows were not stored."""

    def __init__(self, message: str, failed_rows: int) -> None:
        super().__init__(message)
        self.failed_rows = failed_rows


def inputs_of(row: Row) -> Any:
    """A row's inputs as an object: numeric rows travel from the request path as a matrix row and its
    ``input_names`` (no dict built per request), sinks that need an object make it here, on the writer thread."""
    names = row.get("input_names")
    values = row.get("inputs")
    if names is not None and values is not None and not isinstance(values, dict):
        return dict(zip(names, values.tolist() if hasattr(values, "tolist") else values, strict=True))
    return values


def encode_json(value: Any) -> bytes:
    """``value`` as compact JSON (numpy scalars and arrays as numbers and lists; anything else JSON has no type
    for, such as a pandas ``NA`` or a ``Decimal``, as its text: a log row is never lost to an odd input value)."""
    return orjson.dumps(value, default=_json_fallback, option=_JSON_OPTIONS)


def _json_fallback(value: Any) -> Any:
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, without importing pandas
        return None
    item = getattr(value, "item", None)  # numpy and pandas scalars orjson does not know (float16, Timestamp's value)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class PredictionLog:
    """A bounded queue of logged rows and the daemon thread that writes them to ``sink`` (one per process)."""

    def __init__(
        self, sink: PredictionSink, *, capacity: int = 100_000, max_batch: int = 10_000, flush_interval: float = 1.0
    ) -> None:
        for name, value in (("capacity", capacity), ("max_batch", max_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgument.for_field(name, value, "a positive whole number of rows")
        if not flush_interval > 0:
            raise InvalidArgument.for_field("flush_interval", flush_interval, "a positive number of seconds")
        self.sink = sink
        self.capacity = capacity
        self.max_batch = max_batch
        self.flush_interval = float(flush_interval)
        self.written = 0  # rows the sink stored
        self.dropped = 0  # rows refused by offer: the queue was full, or the log closed
        self.failed = 0  # rows the sink raised on
        # rows and batches, not the lists they were offered in: a row of atoms and arrays is not tracked by the cyclic
        # GC, a list is, and a second's worth of lists kept alive made every collection of the serving process slower
        self._entries: collections.deque[Entry] = collections.deque()
        self._unsent = 0  # rows in _entries
        self._pending = 0  # rows accepted and not written or failed yet: _unsent + the batch being written
        self._accepted = 0
        self._done = 0
        self._oldest = 0.0  # monotonic time the oldest unsent row arrived
        self._flushes = 0  # flush() calls waiting: write now, whatever the interval
        self._closed = False
        self._dropped_unreported = 0
        self._warned_at = float("-inf")
        self._failure_warned_at = float("-inf")  # read and set by the writer thread only
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"PredictionLog({self.sink!r}, written={self.written}, dropped={self.dropped}, failed={self.failed})"

    @property
    def queued(self) -> int:
        """Rows accepted and not yet written (or failed): the queue depth."""
        return self._pending

    # the request path ------------------------------------------------------------------------
    def offer(self, rows: list[Row]) -> bool:
        """Queue ``rows`` for writing; False (and the rows counted in ``dropped``) when they do not fit."""
        return self._queue(rows, len(rows))

    def offer_batch(self, batch: LoggedBatch) -> bool:
        """Queue one model call's rows (``LoggedBatch``); False (and its rows counted in ``dropped``) when they do
        not fit."""
        return self._queue((batch,), batch.size)

    def _queue(self, entries: Sequence[Entry], n: int) -> bool:
        if n == 0:
            return True
        with self._cond:
            if self._closed or self._pending + n > self.capacity:
                self.dropped += n
                report = self._drop_report(n)
                accepted = False
            else:
                if not self._unsent:
                    self._oldest = time.monotonic()
                self._entries.extend(entries)
                self._unsent += n
                self._pending += n
                self._accepted += n
                if self._unsent >= self.max_batch:
                    self._cond.notify()
                report, accepted = None, True
            start = accepted and self._thread is None
            if start:
                self._thread = threading.Thread(target=self._run, name="keel-prediction-log", daemon=True)
        if start:
            assert self._thread is not None
            self._thread.start()
        if report is not None:
            log.warning("keel: the prediction log is full (sink too slow or failing): dropped %d rows, %d in all", *report)
        return accepted

    def _drop_report(self, n: int) -> tuple[int, int] | None:
        """What to warn about, at most once every ``WARN_EVERY_S`` seconds (called under the lock)."""
        self._dropped_unreported += n
        now = time.monotonic()
        if now - self._warned_at < WARN_EVERY_S:
            return None
        self._warned_at = now
        report = (self._dropped_unreported, self.dropped)
        self._dropped_unreported = 0
        return report

    # shutting down ---------------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every row offered so far is written (or failed), at most ``timeout`` seconds."""
        with self._cond:
            target = self._accepted
            self._flushes += 1
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(lambda: self._done >= target, timeout=timeout)
            finally:
                self._flushes -= 1
        if not done:
            log.warning("keel: the prediction log did not flush within %.1f s: %d rows still queued", timeout, self.queued)

    def close(self, timeout: float = 10.0) -> None:
        """Flush, stop the thread and close the sink; rows offered afterwards are dropped (and counted)."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        try:
            self.sink.close()
        except Exception:  # shutting down: say what failed, let the rest of the shutdown run
            log.warning("keel: closing the prediction log's sink failed", exc_info=True)

    # the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._closed and not self._unsent:
                        return
                    wait = None if not self._unsent else max(0.0, self._oldest + self.flush_interval - time.monotonic())
                    self._cond.wait(timeout=wait)
                batch, rows = self._take()
            self._write(batch, rows)

    def _due(self) -> bool:
        if not self._unsent:
            return False
        return (
            self._unsent >= self.max_batch
            or self._flushes > 0
            or self._closed
            or time.monotonic() - self._oldest >= self.flush_interval
        )

    def _take(self) -> tuple[list[Entry], int]:
        """Entries from the front of the queue, up to ``max_batch`` rows (at least one entry), and their rows (under
        the lock)."""
        pop, entries = self._entries.popleft, self._entries
        batch: list[Entry] = []
        rows = 0
        while entries and (not batch or rows + _rows_of(entries[0]) <= self.max_batch):
            entry = pop()
            batch.append(entry)
            rows += _rows_of(entry)
        self._unsent -= rows
        if self._unsent:
            self._oldest = time.monotonic()  # the rest waits at most one more interval
        return batch, rows

    def _write(self, batch: list[Entry], rows: int) -> None:
        failed = 0
        try:
            self.sink.write(batch)
        except Exception as exc:  # noqa: BLE001 - any sink error costs this batch only; the writer goes on
            failed = exc.failed_rows if isinstance(exc, SinkFailure) else rows
            failed = min(max(failed, 0), rows)
            if time.monotonic() - self._failure_warned_at >= WARN_EVERY_S:
                self._failure_warned_at = time.monotonic()
                log.warning("keel: the prediction log's sink failed on %d of %d rows (%d failed in all): %s",
                            failed, rows, self.failed + failed, exc)  # fmt: skip
        with self._cond:
            self.written += rows - failed
            self.failed += failed
            self._pending -= rows
            self._done += rows
            self._cond.notify_all()


def _rows_of(entry: Entry) -> int:
    return entry.size if isinstance(entry, LoggedBatch) else 1


def sink_for(deployment: str, ctx: Context | None = None) -> PredictionSink | None:
    """The sink the settings choose (``KEEL_PREDICTION_LOG``): ``parquet`` (the default), ``kafka://...`` or
    ``off`` (None)."""
    # imported here: the sinks import SinkFailure and encode_json from this module
    from keel.serve.kafka_sink import KafkaSink, parse_kafka_url
    from keel.serve.parquet_sink import ParquetSink

    ctx = resolve(ctx)
    choice = ctx.settings.prediction_log
    if choice == "off":
        return None
    if choice == "parquet":
        return ParquetSink(deployment, ctx)
    bootstrap, topic, fmt = parse_kafka_url(choice)
    return KafkaSink(deployment, bootstrap, topic=topic, fmt=fmt)
