"""The metric hot path: an in-process buffer flushed in batches by one background thread.

``add`` only appends a tuple under a lock. The thread flushes every ``flush_interval``
(or sooner when the buffer is large) with one ``log_metrics`` call, i.e. one transaction
or one HTTP request, and sends heartbeats for live runs. ``flush()`` is synchronous and
waits for a flush in progress, so after it returns every value added before it is stored.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TypeVar

from keel.core.clock import now_ms
from keel.core.errors import KeelError, StoreUnavailable
from keel.store.metadata.base import MetricRow, TrackingStore

log = logging.getLogger("keel.tracking")
T = TypeVar("T")
_WRITERS: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


class MetricWriter:
    def __init__(
        self,
        store: TrackingStore,
        flush_interval: float = 0.5,
        heartbeat_interval: float = 5.0,
        max_buffer: int = 50_000,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.max_buffer = max_buffer
        self._buffer: list[MetricRow] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: set[str] = set()
        self._last_heartbeat = 0.0
        self._error: KeelError | None = None
        _WRITERS.add(self)

    # called by the SDK -------------------------------------------------------------
    def add(self, row: MetricRow) -> None:
        with self._lock:
            self._buffer.append(row)
            size = len(self._buffer)
        if self._thread is None:
            self._start()
        if size >= self.max_buffer:
            self._wake.set()

    def extend(self, rows: Iterable[MetricRow]) -> None:
        with self._lock:
            self._buffer.extend(rows)
        if self._thread is None:
            self._start()

    def track(self, run_id: str) -> None:
        """Send heartbeats for ``run_id`` until ``untrack``."""
        self._live.add(run_id)
        if self._thread is None:
            self._start()

    def untrack(self, run_id: str) -> None:
        self._live.discard(run_id)

    def flush(self) -> None:
        """Store everything added so far; raise the first error a background flush met."""
        self._flush_once(raise_errors=True)
        self.raise_background_error()

    def raise_background_error(self) -> None:
        """Raise (once) the first error a background flush met, e.g. values for a run that does not exist."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def flush_into(self, write: Callable[[list[MetricRow]], T], run_id: str) -> T:
        """Hand the values buffered for ``run_id`` to ``write`` (an ``end_run`` that stores them in its
        own transaction); other runs' values stay for the next flush. If ``write`` fails, they go back."""
        with self._flush_lock:
            with self._lock:
                mine = [r for r in self._buffer if r[0] == run_id]
                if mine:
                    self._buffer = [r for r in self._buffer if r[0] != run_id]
            try:
                return write(mine)
            except BaseException:
                with self._lock:
                    self._buffer[:0] = mine
                raise

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._flush_once(raise_errors=False)

    # background --------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="keel-metric-writer", daemon=True)
                self._thread.start()

    def _flush_once(self, raise_errors: bool) -> None:
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                self.store.log_metrics(batch)
            except StoreUnavailable:
                with self._lock:  # keep the values and retry at the next flush
                    self._buffer[:0] = batch
                if raise_errors:
                    raise
                log.warning("keel: metric flush failed, will retry", exc_info=True)
            except KeelError as exc:
                # one bad run (ended elsewhere, unknown id) must not cost the other runs their values
                self._store_run_by_run(batch, exc, raise_errors)
            except Exception:
                with self._lock:  # not a keel error: a driver or a bug; keep the values and say so
                    self._buffer[:0] = batch
                raise

    def _store_run_by_run(self, batch: list[MetricRow], first: KeelError, raise_errors: bool) -> None:
        by_run: dict[str, list[MetricRow]] = {}
        for row in batch:
            by_run.setdefault(str(row[0]), []).append(row)
        if len(by_run) == 1:
            failures = [first]
        else:
            failures = []
            for rows in by_run.values():
                try:
                    self.store.log_metrics(rows)
                except StoreUnavailable:
                    with self._lock:
                        self._buffer[:0] = rows
                except KeelError as exc:
                    failures.append(exc)
        for failure in failures:
            log.error("keel: dropped metric values: %s", failure)
            self._error = self._error or failure
        if failures and raise_errors:
            error, self._error = self._error, None
            raise error if error is not None else failures[0]

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:  # the thread must outlive any error: it is the only one that flushes and beats
                self._flush_once(raise_errors=False)
            except Exception:
                log.exception("keel: unexpected error in the metric writer; values kept for the next flush")
            now = time.monotonic()
            if self._live and now - self._last_heartbeat >= self.heartbeat_interval:
                self._last_heartbeat = now
                try:
                    self.store.heartbeat(sorted(self._live), now_ms())
                except Exception:
                    log.warning("keel: heartbeat failed", exc_info=True)


def flush_all() -> None:
    """Flush every writer of the process (run at interpreter exit)."""
    for writer in list(_WRITERS):
        try:
            writer.close()
        except Exception:
            log.exception("keel: final metric flush failed")
