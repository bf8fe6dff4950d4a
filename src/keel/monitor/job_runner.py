"""Running the scheduled jobs of ``keel.monitor.jobs``: which are due, once across replicas, retried on failure.

A replica considers the time slots that begin while it runs (no catch-up at start: a restarted scheduler does
not replay the past) and the dataset versions created since it started; it attempts each once. The attempt
takes a lease keyed by job and slot (or dataset version) in the store: of several replicas, one runs it. A job
that raises gives its lease back and is retried by the next passes (``RETRY_S`` doubling, at most ``ATTEMPTS``
times), each failure logged with its traceback and kept in ``failures`` (the scheduler's metrics count them).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from keel.context import Context
from keel.core.clock import now_ms
from keel.monitor.jobs import JOBS, Job, Trigger

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)
ATTEMPTS = 5
RETRY_S = 30.0
MAX_LEASE_MS = 86_400_000


@dataclass
class _Pending:
    job: Job
    trigger: Trigger
    key: str
    ttl_ms: int
    attempts: int = 0
    not_before: float = 0.0


@dataclass
class JobRunner:
    owner: str
    jobs: dict[str, Job] | None = None  # None: every job registered with @scheduled
    retry_s: float = RETRY_S
    started_ms: int = field(default_factory=now_ms)
    ran: list[Trigger] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (job, error)
    _attempted: set[str] = field(default_factory=set)
    _cron_checked: dict[str, int] = field(default_factory=dict)
    _retrying: list[_Pending] = field(default_factory=list)

    @property
    def registered(self) -> dict[str, Job]:
        return JOBS if self.jobs is None else self.jobs

    def run_due(self, ctx: Context, now: int) -> None:
        """Every job whose slot began, or whose dataset got a new version, since the last pass; then the retries."""
        for job in list(self.registered.values()):
            for trigger, key, ttl in self._due(job, ctx, now):
                self._attempt(_Pending(job, trigger, key, ttl), ctx)
        for pending in [p for p in self._retrying if time.monotonic() >= p.not_before]:
            self._retrying.remove(pending)
            self._attempt(pending, ctx)

    def on_alerts(self, ctx: Context, alerts: list[Any]) -> None:
        """The jobs that wait for these alerts (one replica ran the monitor that fired them: no lease needed)."""
        for alert in alerts:
            for job in list(self.registered.values()):
                if job.wants_alert(alert.monitor, alert.rule):
                    trigger = Trigger(job.name, "alert", alert.last_window_ms, alert=alert, ctx=ctx)
                    self._attempt(_Pending(job, trigger, f"job:{job.name}:alert:{alert.id}", 60_000), ctx)

    def _due(self, job: Job, ctx: Context, now: int) -> list[tuple[Trigger, str, int]]:
        out = []
        if job.every_ms:
            slot = now // job.every_ms * job.every_ms
            if slot >= self.started_ms:
                out.append(
                    (Trigger(job.name, "interval", slot, ctx=ctx), f"job:{job.name}:{slot}", min(job.every_ms, MAX_LEASE_MS))
                )
        if job.cron is not None:
            checked = self._cron_checked.get(job.name, self.started_ms)
            for slot in job.cron.slots(checked, now):
                # held a day: a replica whose pass comes late still finds the slot taken
                out.append((Trigger(job.name, "cron", slot, ctx=ctx), f"job:{job.name}:{slot}", MAX_LEASE_MS))
            self._cron_checked[job.name] = max(checked, now)
        for name in job.datasets:
            for version in self._versions(ctx, name):
                if version.created_at > self.started_ms:
                    ref = f"{version.name}@{version.version}"
                    trigger = Trigger(job.name, "dataset", version.created_at, dataset=ref, ctx=ctx)
                    out.append((trigger, f"job:{job.name}:dataset:{ref}", MAX_LEASE_MS))
        return [(t, k, ttl) for t, k, ttl in out if k not in self._attempted]

    @staticmethod
    def _versions(ctx: Context, name: str) -> list[Any]:
        """The dataset's versions; none while it does not exist yet (its first version is an event too)."""
        from keel.core.errors import NotFound

        try:
            return ctx.store.datasets.list_versions(name)
        except NotFound:
            return []

    def _attempt(self, pending: _Pending, ctx: Context) -> None:
        self._attempted.add(pending.key)
        if not ctx.store.monitors.acquire_lease(pending.key[:200], self.owner, pending.ttl_ms):
            return  # another replica runs it
        pending.attempts += 1
        try:
            pending.job.fn(pending.trigger)
        except Exception as exc:
            ctx.store.monitors.release_lease(pending.key[:200], self.owner)
            error = f"{type(exc).__name__}: {exc}"
            self.failures.append((pending.job.name, error))
            if pending.attempts < ATTEMPTS:
                pending.not_before = time.monotonic() + self.retry_s * 2 ** (pending.attempts - 1)
                self._retrying.append(pending)
            log.error("keel scheduler: job %s (%s) failed, attempt %d of %d: %s", pending.job.name, pending.trigger.kind,
                      pending.attempts, ATTEMPTS, error, exc_info=exc)  # fmt: skip
            return
        self.ran.append(pending.trigger)
