"""Scheduled jobs: pipelines the scheduler runs on an interval, on a cron schedule, or when something happens
(a new version of a dataset, an alert).

>>> @scheduled("nightly-retrain", cron="0 3 * * *", on=("dataset:churn-raw", "alert:churn-hourly/drift"))
... def nightly(trigger: Trigger) -> None:
...     train.run(dataset=trigger.dataset or "churn-raw")          # doctest: +SKIP

Jobs are code: the process running the scheduler registers them (``keel scheduler --import my_jobs``); nothing in
the store says what to import. Each run of a job is keyed (``job:NAME:SLOT`` for a time slot, ``job:NAME:dataset:REF``
for a dataset version) and taken as a lease in the store, so with several replicas it runs once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keel.core.errors import InvalidArgument

__all__ = ["JOBS", "Cron", "Job", "Trigger", "scheduled"]

_ON = re.compile(r"(dataset:[^\s@]{1,200}|alert:[^\s/]{1,128}/[^\s]{1,128})")


@dataclass(frozen=True)
class Trigger:
    """Why a job runs: ``kind`` is interval, cron, dataset or alert; ``at`` the slot or event time (ms)."""

    job: str
    kind: str
    at: int
    dataset: str | None = None  # the new version's reference, for a dataset trigger
    alert: Any = None  # the keel.core.monitoring.Alert, for an alert trigger
    ctx: Any = None


class Cron:
    """A five-field cron schedule (minute hour day-of-month month day-of-week, UTC): ``*``, ``*/n``, ``a-b``,
    ``a-b/n`` and lists; day-of-week 0-6 from Sunday (7 is Sunday too). Day-of-month and day-of-week both
    restricted: either matches, as cron has it."""

    _RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))

    def __init__(self, text: str) -> None:
        fields = text.split() if isinstance(text, str) else []
        if len(fields) != 5:
            raise InvalidArgument.for_field("cron", text, "five fields: minute hour day-of-month month day-of-week")
        self.text = text
        self.sets = [self._field(f, lo, hi, text) for f, (lo, hi) in zip(fields, self._RANGES, strict=True)]
        if 7 in self.sets[4]:
            self.sets[4] = self.sets[4] | {0}
        self.any_dom, self.any_dow = fields[2] == "*", fields[4] == "*"

    @staticmethod
    def _field(part: str, lo: int, hi: int, text: str) -> frozenset[int]:
        out: set[int] = set()
        for item in part.split(","):
            match = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", item)
            if match is None:
                raise InvalidArgument.for_field("cron", text, f"fields of numbers, ranges, lists and steps (got {item!r})")
            span, step = match[1], int(match[2] or 1)
            start, end = (lo, hi) if span == "*" else (int(span.split("-")[0]), int(span.split("-")[-1]))
            if not (lo <= start <= end <= hi) or step < 1:
                raise InvalidArgument.for_field("cron", text, f"{item!r} within {lo}-{hi}")
            out.update(range(start, end + 1, step))
        return frozenset(out)

    def matches(self, ms: int) -> bool:
        t = datetime.fromtimestamp(ms / 1000, UTC)
        minute, hour, dom, month, dow = self.sets
        if t.minute not in minute or t.hour not in hour or t.month not in month:
            return False
        day_ok, week_ok = t.day in dom, (t.isoweekday() % 7) in dow
        if self.any_dom or self.any_dow:
            return day_ok and week_ok
        return day_ok or week_ok

    def slots(self, after_ms: int, until_ms: int) -> list[int]:
        """The minutes (ms) in ``(after_ms, until_ms]`` the schedule matches."""
        first = after_ms // 60_000 * 60_000 + 60_000
        return [m for m in range(first, until_ms + 1, 60_000) if self.matches(m)]


@dataclass
class Job:
    name: str
    fn: Callable[[Trigger], Any]
    every_ms: int | None = None
    cron: Cron | None = None
    on: tuple[str, ...] = field(default_factory=tuple)

    def wants_alert(self, monitor: str, rule: str) -> bool:
        return f"alert:{monitor}/{rule}" in self.on or f"alert:{monitor}/*" in self.on

    @property
    def datasets(self) -> list[str]:
        return [o.removeprefix("dataset:") for o in self.on if o.startswith("dataset:")]


JOBS: dict[str, Job] = {}


def scheduled(
    name: str, *, every: str | int | None = None, cron: str | None = None, on: tuple[str, ...] | list[str] = ()
) -> Callable[[Callable[[Trigger], Any]], Callable[[Trigger], Any]]:
    """Register ``fn(trigger)`` as the job ``name``: ``every`` ("1h", "30m", or ms), ``cron`` ("0 3 * * *", UTC),
    ``on`` events ("dataset:NAME" for each new version, "alert:MONITOR/RULE" or "alert:MONITOR/*")."""
    from keel.core.validation import check_name
    from keel.serve.predictions import duration_ms

    check_name(name, "job")
    events = tuple(on)
    for event in events:
        if not isinstance(event, str) or _ON.fullmatch(event) is None:
            raise InvalidArgument.for_field("on", event, "dataset:NAME or alert:MONITOR/RULE (RULE may be *)")
    if every is None and cron is None and not events:
        raise InvalidArgument.for_field("schedule", name, "every=..., cron=... or on=[...]")

    every_ms = duration_ms(every, "every") if every is not None else None  # bad schedules fail here, not later
    schedule = Cron(cron) if cron is not None else None

    def register(fn: Callable[[Trigger], Any]) -> Callable[[Trigger], Any]:
        JOBS[name] = Job(name, fn, every_ms, schedule, events)
        return fn

    return register
