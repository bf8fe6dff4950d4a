"""The scheduler: runs every monitor as its windows end, and the scheduled jobs (``keel.monitor.jobs``: interval,
cron, a new dataset version, an alert; ``keel.monitor.job_runner``), once across replicas, retrying what fails.

Each pass goes over the monitors; a monitor whose next window has ended is run under a lease in the store
(``monitor:NAME``, held while it runs), so with several replicas (several ``keel scheduler`` processes, or
``keel server`` replicas) each window is computed once, and a replica that dies mid-run loses its lease after
``LEASE_MS``. A run that raises is retried with a growing delay (``RETRY_S`` doubling, at most a window), and
its failure is visible where alerts are: a ``keel-scheduler`` alert (critical) on the monitor, resolved by the next
run that succeeds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from keel.context import Context, resolve
from keel.core.clock import now_ms
from keel.core.monitoring import Alert, Monitor
from keel.monitor.job_runner import JobRunner
from keel.monitor.runner import RunSummary, run_monitor

__all__ = ["FAILURE_RULE", "Scheduler"]

log = logging.getLogger(__name__)
LEASE_MS = 10 * 60 * 1000
RETRY_S = 30.0
FAILURE_RULE = "keel-scheduler"


@dataclass
class _Retry:
    failures: int = 0
    not_before: float = 0.0


@dataclass
class Scheduler:
    """``run_pending()`` once, or ``run(stop)`` every ``interval`` seconds until ``stop`` is set."""

    ctx: Context | None = None
    interval: float = 5.0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    on_run: Callable[[Monitor, RunSummary], None] | None = None  # metrics, progress
    jobs: JobRunner | None = None  # None: one over every job registered with @scheduled
    _retries: dict[str, _Retry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.jobs is None:
            self.jobs = JobRunner(self.owner)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_pending()
            except Exception:  # the store is unreachable, say: log it and keep going
                log.exception("keel scheduler: a pass failed")
            stop.wait(self.interval)

    def run_pending(self, until_ms: int | None = None) -> list[RunSummary]:
        """Run every monitor whose next window has ended (and is not waiting to retry), the jobs its alerts trigger,
        then the jobs that are due; returns the monitors' runs (the jobs' are in ``jobs.ran`` and ``jobs.failures``)."""
        ctx = resolve(self.ctx)
        now = now_ms() if until_ms is None else until_ms
        done = []
        for monitor in ctx.store.monitors.list_monitors():
            retry = self._retries.get(monitor.name)
            if retry is not None and time.monotonic() < retry.not_before:
                continue
            if not self._due(monitor, ctx, now):
                continue
            summary = self._run_leased(monitor, ctx, now)
            if summary is not None:
                done.append(summary)
                if summary.fired and self.jobs is not None:
                    self.jobs.on_alerts(ctx, summary.fired)
        if self.jobs is not None:
            self.jobs.run_due(ctx, now)
        return done

    def _due(self, monitor: Monitor, ctx: Context, now: int) -> bool:
        stored = ctx.store.monitors.windows(monitor.name, since_ms=now - 2 * monitor.window_ms)
        if stored:
            return stored[-1].end_ms + monitor.window_ms <= now
        return bool(ctx.store.predictions.log_files(monitor.deployment, until_ms=now))

    def _run_leased(self, monitor: Monitor, ctx: Context, now: int) -> RunSummary | None:
        job = f"monitor:{monitor.name}"
        if not ctx.store.monitors.acquire_lease(job, self.owner, LEASE_MS):
            return None  # another replica runs it
        try:
            # a first run may compute a week of windows: the lease is renewed after each, so no replica takes it over
            def renew(_window: object) -> None:
                ctx.store.monitors.acquire_lease(job, self.owner, LEASE_MS)

            summary = run_monitor(monitor.name, until_ms=now, ctx=ctx, on_window=renew)
        except Exception as exc:  # noqa: BLE001 - whatever failed: recorded as an alert, retried later
            self._failed(monitor, ctx, now, exc)
            return None
        finally:
            ctx.store.monitors.release_lease(job, self.owner)
        self._retries.pop(monitor.name, None)
        ctx.store.monitors.resolve_alert(monitor.name, FAILURE_RULE)
        if self.on_run is not None:
            self.on_run(monitor, summary)
        return summary

    def _failed(self, monitor: Monitor, ctx: Context, now: int, exc: Exception) -> None:
        retry = self._retries.setdefault(monitor.name, _Retry())
        retry.failures += 1
        delay = min(RETRY_S * 2 ** (retry.failures - 1), monitor.window_ms / 1000)
        retry.not_before = time.monotonic() + delay
        message = f"run {retry.failures} failed ({type(exc).__name__}: {exc}); retrying in {delay:.0f} s"[:2000]
        log.error("keel scheduler: monitor %s: %s", monitor.name, message, exc_info=exc)
        try:
            ctx.store.monitors.open_alert(Alert(0, monitor.name, FAILURE_RULE, "critical", "firing", now, now, None, message))
        except Exception:  # the store itself failing: the log line above is what is left
            log.exception("keel scheduler: could not record the failure of monitor %s", monitor.name)
