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
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Protocol

import orjson

from keel.context import Context, resolve
from keel.core.errors import InvalidArgument

__all__ = ["WARN_EVERY_S", "PredictionLog", "PredictionSink", "SinkFailure", "encode_json", "inputs_of", "sink_for"]

log = logging.getLogger("keel.serve.predlog")
WARN_EVERY_S = 10.0
Row = dict[str, Any]
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class PredictionSink(Protocol):
    """Where the writer thread sends batches. ``write`` is called from that one thread only; raising costs the
    batch (all its rows, or ``exc.failed_rows`` of them for a ``SinkFailure``)."""

    def write(self, rows: list[Row]) -> None: ...

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
        # rows, not the lists they were offered in: a row of atoms and arrays is not tracked by the cyclic GC, a list
        # is, and a second's worth of lists kept alive made every collection of the serving process slower
        self._rows: collections.deque[Row] = collections.deque()
        self._unsent = 0  # rows in _rows
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
        n = len(rows)
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
                self._rows.extend(rows)
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
                batch = self._take()
            self._write(batch)

    def _due(self) -> bool:
        if not self._unsent:
            return False
        return (
            self._unsent >= self.max_batch
            or self._flushes > 0
            or self._closed
            or time.monotonic() - self._oldest >= self.flush_interval
        )

    def _take(self) -> list[Row]:
        """Up to ``max_batch`` rows from the front of the queue (under the lock)."""
        take = min(self.max_batch, len(self._rows))
        pop = self._rows.popleft
        batch = [pop() for _ in range(take)]
        self._unsent -= len(batch)
        if self._unsent:
            self._oldest = time.monotonic()  # the rest waits at most one more interval
        return batch

    def _write(self, batch: list[Row]) -> None:
        failed = 0
        try:
            self.sink.write(batch)
        except Exception as exc:  # noqa: BLE001 - any sink error costs this batch only; the writer goes on
            failed = exc.failed_rows if isinstance(exc, SinkFailure) else len(batch)
            failed = min(max(failed, 0), len(batch))
            if time.monotonic() - self._failure_warned_at >= WARN_EVERY_S:
                self._failure_warned_at = time.monotonic()
                log.warning("keel: the prediction log's sink failed on %d of %d rows (%d failed in all): %s",
                            failed, len(batch), self.failed + failed, exc)  # fmt: skip
        with self._cond:
            self.written += len(batch) - failed
            self.failed += failed
            self._pending -= len(batch)
            self._done += len(batch)
            self._cond.notify_all()


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
