"""Scheduled jobs: cron schedules, interval slots run once across scheduler replicas, dataset versions and alerts
as triggers, failures retried and kept; on a real store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

import keel.data
from keel.context import Context
from keel.core.errors import InvalidArgument
from keel.core.monitoring import Alert, Monitor
from keel.monitor.job_runner import JobRunner
from keel.monitor.jobs import Cron, Job, Trigger, scheduled


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def test_cron_fields_match_as_cron_has_them() -> None:
    nightly = Cron("0 3 * * *")
    assert nightly.matches(ms(2026, 11, 29, 3, 0)) and not nightly.matches(ms(2026, 11, 29, 3, 1))
    assert nightly.slots(ms(2026, 11, 28, 0, 0), ms(2026, 11, 30, 0, 0)) == [ms(2026, 11, 28, 3, 0), ms(2026, 11, 29, 3, 0)]
    quarter = Cron("*/15 9-17 * * 1-5")  # weekdays, office hours
    assert quarter.matches(ms(2026, 11, 30, 9, 45))  # a Monday
    assert not quarter.matches(ms(2026, 11, 29, 9, 45))  # a Sunday
    assert not quarter.matches(ms(2026, 11, 30, 18, 0))
    either = Cron("0 0 1 * 0")  # the 1st of the month or a Sunday
    assert either.matches(ms(2026, 12, 1, 0, 0)) and either.matches(ms(2026, 11, 29, 0, 0))
    assert not either.matches(ms(2026, 11, 30, 0, 0))
    assert Cron("0 0 * * 7").matches(ms(2026, 11, 29, 0, 0))  # 7 is Sunday too
    for bad in ("0 3 * *", "61 * * * *", "* * * * mon", "*/0 * * * *", "5-1 * * * *"):
        with pytest.raises(InvalidArgument, match="cron"):
            Cron(bad)


def test_scheduled_refuses_a_job_without_a_schedule_or_with_an_unknown_event() -> None:
    with pytest.raises(InvalidArgument, match="schedule"):
        scheduled("nothing")
    with pytest.raises(InvalidArgument, match="dataset:NAME or alert:MONITOR/RULE"):
        scheduled("odd", on=("table:x",))
    with pytest.raises(InvalidArgument, match="every"):
        scheduled("soon", every="soon")


@pytest.fixture
def ctx(tmp_path):
    context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    yield context
    context.close()


def test_an_interval_slot_runs_once_across_replicas_and_only_slots_that_begin_while_running(ctx: Context) -> None:
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(trigger: Trigger) -> None:
        with lock:
            ran.append((trigger.kind, trigger.at))

    jobs = {"hourly": Job("hourly", work, every_ms=3_600_000)}
    start = ms(2026, 11, 29, 10, 30)
    replicas = [JobRunner(f"replica-{i}", jobs, started_ms=start) for i in range(4)]
    threads = [threading.Thread(target=r.run_due, args=(ctx, ms(2026, 11, 29, 11, 0, 5))) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ran == [("interval", ms(2026, 11, 29, 11, 0))]  # 10:00 began before they started: not replayed
    for r in replicas:
        r.run_due(ctx, ms(2026, 11, 29, 11, 30))
    assert len(ran) == 1  # the same slot is attempted once per replica
    replicas[2].run_due(ctx, ms(2026, 11, 29, 12, 0, 1))
    assert ran[-1] == ("interval", ms(2026, 11, 29, 12, 0))


def test_a_new_dataset_version_and_an_alert_trigger_their_jobs(ctx: Context) -> None:
    seen: list[Trigger] = []
    jobs = {
        "on-data": Job("on-data", seen.append, on=("dataset:raw",)),
        "on-alert": Job("on-alert", seen.append, on=("alert:live/*",)),
    }
    runner = JobRunner("r", jobs, started_ms=0)
    runner.run_due(ctx, 10**13)  # the dataset does not exist yet: nothing, no error
    assert seen == []
    keel.data.log(pd.DataFrame({"x": [1, 2, 3]}), "raw", ctx=ctx)
    runner.run_due(ctx, 10**13)
    runner.run_due(ctx, 10**13)
    assert [(t.job, t.kind, t.dataset) for t in seen] == [("on-data", "dataset", "raw@1")]
    alert = Alert(7, "live", "drift", "warning", "firing", 1000, 1000, 0.5, "drift.share = 0.5 > 0.3")
    runner.on_alerts(ctx, [alert, Alert(8, "other", "drift", "warning", "firing", 1000, 1000, 0.5, "x")])
    assert [(t.job, t.kind, t.alert.id) for t in seen[1:]] == [("on-alert", "alert", 7)]


def test_a_failing_job_is_retried_then_given_up_and_every_failure_kept(ctx: Context) -> None:
    calls: list[int] = []

    def flaky(trigger: Trigger) -> Any:
        calls.append(trigger.at)
        if len(calls) < 3:
            raise RuntimeError(f"boom {len(calls)}")

    runner = JobRunner("r", {"flaky": Job("flaky", flaky, every_ms=60_000)}, retry_s=0.0, started_ms=0)
    for _ in range(5):
        runner.run_due(ctx, 120_000)
    assert len(calls) == 3 and calls == [120_000] * 3  # failed twice, succeeded on the third attempt
    assert runner.failures == [("flaky", "RuntimeError: boom 1"), ("flaky", "RuntimeError: boom 2")]
    assert [t.at for t in runner.ran] == [120_000]
    other = JobRunner("other", {"flaky": Job("flaky", flaky, every_ms=60_000)}, started_ms=0)
    other.run_due(ctx, 120_000)
    assert len(calls) == 3  # the successful run keeps its lease: another replica does not run the slot again


def test_the_scheduler_runs_jobs_next_to_monitors(ctx: Context) -> None:
    from keel.monitor.scheduler import Scheduler

    seen: list[Trigger] = []
    runner = JobRunner("r", {"tick": Job("tick", seen.append, every_ms=60_000)}, started_ms=0)
    ctx.store.deployments.create("live", "models:/m/1")
    ctx.store.monitors.create_monitor(Monitor("live", "live", 60_000))
    Scheduler(ctx, owner="r", jobs=runner).run_pending(180_000)
    assert [(t.kind, t.at) for t in seen] == [("interval", 180_000)]
