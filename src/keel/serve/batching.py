"""Micro-batching: requests that arrive while a model is busy are answered by its next call, together.

No timer by default: an idle model takes a request at once (no added latency at low load), and under load the
requests that queued during one call form the next batch (up to ``max_batch_rows``), so throughput grows with
concurrency instead of latency. ``max_wait`` > 0 holds a batch open that long for more rows. The queue is bounded
in rows: past ``max_queue_rows`` a request is refused at once (the app answers 503 with ``Retry-After``) rather
than waiting behind a queue that only grows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

Runner = Callable[[Any, Sequence[str]], dict[str, Any]]
"""``run(X, outputs)`` -> ``{output name: array with one entry per row of X}`` (called in a worker thread)."""

Result = tuple[dict[str, Any], float] | BaseException
"""A request's answer: its outputs and the seconds its batch's call took, or what failed it."""

Answered = Callable[[list[Any], list[Any], list[int], list[Result], float], None]
"""``on_answered(tags, data, rows, results, seconds)``: one call's requests (the ``tag`` each was submitted with,
its input and rows), their results and the call's wall time, on the event loop once the call is over."""


class Overloaded(Exception):
    """The model's queue is full: try again later (the app answers 503 with ``Retry-After``)."""


@dataclass
class _Item:
    data: Any
    rows: int
    outputs: tuple[str, ...]
    future: asyncio.Future[tuple[dict[str, Any], float]]
    tag: Any = None


class Batcher:
    """One model's queue. ``submit`` returns the model's outputs for that input and the seconds its batch took."""

    def __init__(
        self,
        run: Runner,
        *,
        max_batch_rows: int = 64,
        max_queue_rows: int = 2048,
        max_wait: float = 0.0,
        inline_rows: int = 0,
        inline_budget: float | None = None,
        on_batch: Callable[[int], None] | None = None,
        on_call: Callable[[float], None] | None = None,
        on_answered: Answered | None = None,
    ) -> None:
        self.run = run
        self.inline_rows = inline_rows  # batches this small run on the event loop: cheaper than a thread hop
        # with a budget (seconds), only while the model's recent calls took less: a slow model moves to a thread
        self.inline_budget = inline_budget
        self.recent_seconds: float | None = None  # moving average of the model's batch calls
        self.max_batch_rows, self.max_queue_rows, self.max_wait = max_batch_rows, max_queue_rows, max_wait
        self.on_batch = on_batch
        self.on_call = on_call  # told the seconds each batch took, waiting for a thread included
        self.on_answered = on_answered  # the prediction log's hook: one call per batch, never per request
        self._pending: deque[_Item] = deque()
        self.queued_rows = 0
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, data: Any, rows: int, outputs: Sequence[str], tag: Any = None) -> tuple[dict[str, Any], float]:
        """The outputs for ``data`` and the seconds its batch took; ``tag`` goes to ``on_answered`` with the result."""
        if self.queued_rows and self.queued_rows + rows > self.max_queue_rows:  # an oversized lone request still runs
            raise Overloaded(f"{self.queued_rows} rows already queued (at most {self.max_queue_rows})")
        loop = asyncio.get_running_loop()
        item = _Item(data, rows, tuple(outputs), loop.create_future(), tag)
        self._pending.append(item)
        self.queued_rows += rows
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())  # held: a task nobody references may be collected
        return await item.future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Item] = []
        try:
            while self._pending:
                if self.max_wait > 0 and self.queued_rows < self.max_batch_rows:
                    await asyncio.sleep(self.max_wait)
                batch = self._take()
                started = time.perf_counter()
                if self._inline(sum(item.rows for item in batch)):
                    results = self._run_batch(batch)
                else:
                    results = await loop.run_in_executor(None, self._run_batch, batch)
                seconds = time.perf_counter() - started
                if self.on_call is not None:
                    self.on_call(seconds)
                if self.on_answered is not None:
                    self._tell(batch, results, seconds)
                self._remember(results)
                for item, result in zip(batch, results, strict=True):
                    if item.future.done():  # the client went away
                        continue
                    if isinstance(result, BaseException):
                        item.future.set_exception(result)
                    else:
                        item.future.set_result(result)
                batch = []
                await asyncio.sleep(0)  # let requests that arrived meanwhile be parsed and queued
        except BaseException as exc:  # the executor shut down, the task was cancelled: no request may wait forever
            failure = exc if isinstance(exc, Exception) else Overloaded("the server is stopping")
            for item in [*batch, *self._pending]:
                if not item.future.done():
                    item.future.set_exception(failure)
            self._pending.clear()
            self.queued_rows = 0
            raise
        finally:
            self._draining = False

    def _tell(self, batch: list[_Item], results: list[Result], seconds: float) -> None:
        assert self.on_answered is not None
        try:
            tags = [item.tag for item in batch]
            self.on_answered(tags, [item.data for item in batch], [item.rows for item in batch], results, seconds)
        except Exception:  # the log is never worth an answer: say so, answer anyway
            log.warning("the batch hook failed on a batch of %d requests", len(batch), exc_info=True)

    def _inline(self, rows: int) -> bool:
        if rows > self.inline_rows:
            return False
        if self.inline_budget is None:
            return True
        return self.recent_seconds is not None and self.recent_seconds <= self.inline_budget  # measured in a thread first

    def _remember(self, results: list[Result]) -> None:
        took = next((r[1] for r in results if not isinstance(r, BaseException)), None)
        if took is not None:
            self.recent_seconds = took if self.recent_seconds is None else 0.8 * self.recent_seconds + 0.2 * took

    def _take(self) -> list[_Item]:
        batch = [self._pending.popleft()]
        rows = batch[0].rows
        while self._pending and rows + self._pending[0].rows <= self.max_batch_rows and _joins(batch[0], self._pending[0]):
            item = self._pending.popleft()
            batch.append(item)
            rows += item.rows
        self.queued_rows -= rows
        return batch

    def _run_batch(self, batch: list[_Item]) -> list[Result]:
        """In a worker thread: one model call for the whole batch; when it fails, each request alone, so only the
        request that makes the model raise gets the error."""
        outputs = tuple(dict.fromkeys(name for item in batch for name in item.outputs))
        if self.on_batch is not None:
            self.on_batch(sum(item.rows for item in batch))
        if len(batch) > 1:
            started = time.perf_counter()
            try:
                joined = self.run(_concat([item.data for item in batch]), outputs)
                parts = _split(joined, [item.rows for item in batch], batch)
            except Exception:  # retried one by one below, where each error reaches its request
                log.debug("a batch of %d requests failed: answering them one by one", len(batch), exc_info=True)
            else:
                took = time.perf_counter() - started
                return [(part, took) for part in parts]
        answers: list[Result] = []
        for item in batch:
            started = time.perf_counter()
            try:
                result = self.run(item.data, item.outputs)
                _check_rows(result, item.rows)
                answers.append((result, time.perf_counter() - started))
            except Exception as exc:  # noqa: BLE001 - the model's error goes to that request's caller
                answers.append(exc)
        return answers


def _joins(first: _Item, other: _Item) -> bool:
    """Only inputs of one kind concatenate (frames with frames, arrays of one width with each other)."""
    same_width = getattr(first.data, "shape", (0, 0))[1:] == getattr(other.data, "shape", (0, 0))[1:]
    return type(first.data) is type(other.data) and same_width


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


class WrongOutput(Exception):
    """The model answered with another number of rows than it was given: its answers cannot be told apart."""


def _check_rows(outputs: dict[str, Any], rows: int) -> None:
    for name, values in outputs.items():
        got = len(values) if hasattr(values, "__len__") else None
        if got != rows:
            raise WrongOutput(f"{name} returned {got if got is not None else 'a scalar'} rows for {rows} input rows")


def _split(outputs: dict[str, Any], sizes: list[int], batch: list[_Item]) -> list[dict[str, Any]]:
    """Each request's rows of the batch's outputs. A batch answered with another number of rows is never split
    (rows would reach the wrong clients): it raises, and its requests are answered one by one."""
    _check_rows(outputs, sum(sizes))
    edges = np.cumsum([0, *sizes])
    return [{name: outputs[name][edges[i] : edges[i + 1]] for name in item.outputs} for i, item in enumerate(batch)]
