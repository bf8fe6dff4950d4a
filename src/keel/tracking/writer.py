"""The metric hot path: an in-process buffer flushed in batches by one background thread.

``add`` only appends a tuple under a lock. The thread flushes every ``flush_interval``
(or sooner when the buffer is large) with one ``log_metrics`` call, i.e. one transaction
or one HTTP request, and sends heartbeats for live runs. ``flush()`` is synchronous and
waits for a flush in progress, so after it returns every value added before it is stored.

Each batch gets an id when it is first sent and keeps it until the store accepts it: a
resend (after a timeout, when the server may have committed anyway) carries the same id
and the store applies it once. A batch that could not be sent waits, whole, in
``_pending``; new values form the next batch, so a resend is never a different batch.
After a failed send the thread waits before trying again, exponentially longer with
jitter, up to ``MAX_BACKOFF_S``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TypeVar

from keel.core.clock import now_ms
from keel.core.errors import KeelError, StoreUnavailable
from keel.store.metadata.base import MetadataStore, MetricRow, new_batch_id

log = logging.getLogger("keel.tracking")
T = TypeVar("T")
MAX_BACKOFF_S = 30.0
Batch = tuple[str, list[MetricRow]]  # (batch id, rows)
_WRITERS: weakref.WeakSet[MetricWriter] = weakref.WeakSet()


class MetricWriter:
    def __init__(
        self,
        store: MetadataStore,
        flush_interval: float = 0.5,
        heartbeat_interval: float = 5.0,
        max_buffer: int = 50_000,
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self.max_buffer = max_buffer
        self._buffer: list[MetricRow] = []
        self._pending: list[Batch] = []  # sent at least once, not accepted yet; guarded by _flush_lock
        self._failures = 0
        self._retry_at = 0.0  # monotonic time before which the thread does not resend
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
            size = len(self._buffer)
        if self._thread is None:
            self._start()
        if size >= self.max_buffer:
            self._wake.set()

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

    def flush_into(self, write: Callable[[list[MetricRow], str], T], run_id: str) -> T:
        """Hand the values buffered for ``run_id`` and a batch id to ``write`` (an ``end_run`` that stores
        them in its own transaction); other runs' values stay for the next flush.

        If ``write`` fails, the values wait for the next flush under the same batch id: should the
        failed call have been applied after all (a timeout), the store recognises the id and does
        not store them twice.
        """
        with self._flush_lock:
            with self._lock:
                mine = [r for r in self._buffer if r[0] == run_id]
                if mine:
                    self._buffer = [r for r in self._buffer if r[0] != run_id]
            batch_id = new_batch_id()
            try:
                return write(mine, batch_id)
            except BaseException:
                if mine:
                    self._pending.append((batch_id, mine))
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
            # batches that failed before go first, each under its own id; new values wait behind them
            if self._pending and not self._send_pending(raise_errors):
                return
            with self._lock:
                fresh, self._buffer = self._buffer, []
            if fresh:
                self._pending.append((new_batch_id(), fresh))
                self._send_pending(raise_errors)

    def _send_pending(self, raise_errors: bool) -> bool:
        """Send pending batches in order; False when one could not be sent (it stays, with its id)."""
        while self._pending:
            batch_id, batch = self._pending[0]
            try:
                self.store.log_metrics(batch, batch_id=batch_id)
            except StoreUnavailable:
                self._note_failure()
                if raise_errors:
                    raise
                log.warning("keel: metric flush failed, will retry", exc_info=True)
                return False
            except KeelError as exc:
                # one bad run (ended elsewhere, unknown id) must not cost the other runs their values
                self._pending.pop(0)
                self._store_run_by_run(batch_id, batch, exc, raise_errors)
                continue
            except Exception:
                self._note_failure()  # not a keel error: a driver or a bug; keep the batch and say so
                raise
            self._pending.pop(0)
            self._failures, self._retry_at = 0, 0.0
        return True

    def _note_failure(self) -> None:
        self._failures += 1
        # the exponent is capped: 2.0**1024 overflows, and an outage of a few hours makes that many failures
        delay = min(MAX_BACKOFF_S, self.flush_interval * 2 ** min(self._failures, 16))
        self._retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)

    def _store_run_by_run(self, batch_id: str, batch: list[MetricRow], first: KeelError, raise_errors: bool) -> None:
        by_run: dict[str, list[MetricRow]] = {}
        for row in batch:
            by_run.setdefault(str(row[0]), []).append(row)
        if len(by_run) == 1:
            failures = [first]
        else:
            failures = []
            for n, rows in enumerate(by_run.values()):
                part_id = f"{batch_id}.{n}"  # the same for every resend of this part
                try:
                    self.store.log_metrics(rows, batch_id=part_id)
                except StoreUnavailable:
                    self._note_failure()
                    self._pending.append((part_id, rows))
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
            if time.monotonic() >= self._retry_at:  # after a failure, back off before resending
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
