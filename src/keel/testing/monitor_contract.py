"""The monitor-store contract (monitors, window results, alerts, actions, leases), as tests every backend must pass.

Names are unique per test: the PostgreSQL database and the server are shared by the whole session.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from keel.core.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from keel.core.monitoring import ActionRecord, Alert, AlertRule, Monitor, MonitorWindow
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique

HOUR = 3_600_000
DRIFT = AlertRule("drift", "drift.share > 0.3", 2, "critical", ("log", "webhook:https://example.com/hook"))
LATENCY = AlertRule("latency", "health.latency_p99_ms > 250", severity="warning", actions=("rollback",))


def _deployment(store: MetadataStore) -> str:
    name = unique("deploy")
    store.deployments.create(name, "models:/churn/1")
    return name


def _monitor(store: MetadataStore, deployment: str | None = None, **fields: Any) -> Monitor:
    given = {"name": unique("mon"), "deployment": deployment or _deployment(store), "window_ms": HOUR, "rules": (DRIFT,),
             **fields}  # fmt: skip
    return store.monitors.create_monitor(Monitor(**given))


def _window(monitor: str, start: int, **fields: Any) -> MonitorWindow:
    given = {"values": {"drift.share": 0.5, "health.latency_p99_ms": 12}, "rows": 100, "labelled_rows": 0, **fields}
    return MonitorWindow(monitor, start, start + HOUR, **given)


def _alert(monitor: str, window: int, value: float | None = 0.5, *, rule: str = "drift", message: str = "") -> Alert:
    return Alert(0, monitor, rule, "critical", "firing", window, window, value, message or f"drift.share = {value}")


def _later() -> None:
    time.sleep(0.003)  # so that the next write is stamped at a later millisecond


class MonitorStoreContract:
    # monitors -----------------------------------------------------------------------------------------------------
    def test_a_monitor_is_created_read_and_listed(self, store: MetadataStore) -> None:
        deployment = _deployment(store)
        created = _monitor(store, deployment, reference="churn-train@3", rules=(DRIFT, LATENCY))
        assert (created.deployment, created.window_ms, created.reference, created.rules) == (
            deployment, HOUR, "churn-train@3", (DRIFT, LATENCY)
        )  # fmt: skip
        assert created.created_at > 0 and created.updated_at == created.created_at
        assert store.monitors.get_monitor(created.name) == created
        other = _monitor(store, deployment, name="a-" + unique("mon"), rules=(), reference=None)
        elsewhere = _monitor(store)
        assert store.monitors.list_monitors(deployment) == [other, created]  # by name
        everything = store.monitors.list_monitors()
        assert {other.name, created.name, elsewhere.name} <= {m.name for m in everything}
        assert [m.name for m in everything] == sorted(m.name for m in everything)
        assert store.monitors.list_monitors(_deployment(store)) == []

    def test_a_taken_name_an_unknown_deployment_or_monitor_are_refused(self, store: MetadataStore) -> None:
        first = _monitor(store)
        with pytest.raises(AlreadyExists) as taken:
            store.monitors.create_monitor(Monitor(first.name, _deployment(store), 60_000))
        assert isinstance(taken.value, Conflict)  # an older client catches it as a Conflict
        assert store.monitors.get_monitor(first.name) == first
        missing = unique("deploy")
        with pytest.raises(NotFound):
            store.monitors.create_monitor(Monitor(unique("mon"), missing))
        assert store.monitors.list_monitors(missing) == []
        with pytest.raises(NotFound):
            store.monitors.get_monitor(unique("mon"))
        with pytest.raises(NotFound):
            store.monitors.update_monitor(Monitor(unique("mon"), first.deployment))

    def test_an_update_replaces_rules_window_and_reference_but_not_the_deployment(self, store: MetadataStore) -> None:
        created = _monitor(store)
        _later()
        changed = Monitor(created.name, created.deployment, 60_000, "churn-train@4", (LATENCY,))
        updated = store.monitors.update_monitor(changed)
        assert (updated.window_ms, updated.reference, updated.rules) == (60_000, "churn-train@4", (LATENCY,))
        assert updated.created_at == created.created_at and updated.updated_at > created.updated_at
        assert store.monitors.get_monitor(created.name) == updated
        with pytest.raises(InvalidArgument, match="deployment"):
            store.monitors.update_monitor(replace(changed, deployment=_deployment(store), rules=()))
        assert store.monitors.get_monitor(created.name) == updated

    # windows ------------------------------------------------------------------------------------------------------
    def test_a_window_computed_again_replaces_the_earlier_result(self, store: MetadataStore) -> None:
        monitor = _monitor(store).name
        first = store.monitors.put_window(_window(monitor, 0, profile_sha256="a" * 64))
        assert (first.monitor, first.start_ms, first.end_ms, first.rows, first.profile_sha256) == (
            monitor,
            0,
            HOUR,
            100,
            "a" * 64,
        )
        assert first.values == {"drift.share": 0.5, "health.latency_p99_ms": 12.0} and first.computed_at > 0
        _later()
        again = store.monitors.put_window(
            _window(monitor, 0, values={"drift.share": 0.1, "performance.realised.accuracy": 0.93}, labelled_rows=40)
        )
        assert again.values == {"drift.share": 0.1, "performance.realised.accuracy": 0.93}  # replaced, not merged
        assert (again.labelled_rows, again.profile_sha256) == (40, None) and again.computed_at > first.computed_at
        assert store.monitors.windows(monitor) == [again]

    def test_windows_are_a_time_series_oldest_first(self, store: MetadataStore) -> None:
        monitor = _monitor(store).name
        for n in (3, 1, 0, 2):
            store.monitors.put_window(_window(monitor, n * HOUR, values={"drift.share": n / 10}))
        store.monitors.put_window(_window(_monitor(store).name, HOUR))  # another monitor's window is not in its series

        def starts(**bounds: Any) -> list[int]:
            return [w.start_ms // HOUR for w in store.monitors.windows(monitor, **bounds)]

        assert starts() == [0, 1, 2, 3]
        assert [w.values["drift.share"] for w in store.monitors.windows(monitor)] == [0.0, 0.1, 0.2, 0.3]
        assert starts(since_ms=HOUR, until_ms=2 * HOUR) == [1, 2]  # both ends included, on start_ms
        assert starts(since_ms=HOUR + 1) == [2, 3] and starts(until_ms=HOUR - 1) == [0]
        assert starts(since_ms=4 * HOUR) == [] and starts(since_ms=3 * HOUR, until_ms=0) == []

    def test_windows_of_an_unknown_monitor_are_not_found(self, store: MetadataStore) -> None:
        missing = unique("mon")
        with pytest.raises(NotFound):
            store.monitors.put_window(_window(missing, 0))
        with pytest.raises(NotFound):
            store.monitors.windows(missing)

    # alerts -------------------------------------------------------------------------------------------------------
    def test_a_rule_that_keeps_firing_updates_one_alert(self, store: MetadataStore) -> None:
        monitor = _monitor(store).name
        opened, created = store.monitors.open_alert(_alert(monitor, 0, 0.5))
        assert created and opened.id > 0 and opened.state == "firing" and opened.resolved_at is None
        assert (opened.monitor, opened.rule, opened.severity, opened.windows) == (monitor, "drift", "critical", 1)
        assert (opened.first_window_ms, opened.last_window_ms, opened.value, opened.created_at > 0) == (0, 0, 0.5, True)
        again, created = store.monitors.open_alert(_alert(monitor, 0, 0.5))  # the same window sent again
        assert not created and again == opened
        later, created = store.monitors.open_alert(_alert(monitor, HOUR, 0.7, message="worse"))
        assert not created and later.id == opened.id
        assert (later.first_window_ms, later.last_window_ms, later.value, later.message, later.windows) == (
            0, HOUR, 0.7, "worse", 2
        )  # fmt: skip
        assert later.created_at == opened.created_at
        third, _ = store.monitors.open_alert(_alert(monitor, 2 * HOUR, None, message="no value"))
        assert (third.last_window_ms, third.value, third.windows) == (2 * HOUR, None, 3)
        # an earlier window computed again (late labels): counted already, and not newer than the last one
        recomputed, created = store.monitors.open_alert(_alert(monitor, HOUR, 0.9, message="recomputed"))
        assert not created and recomputed == third
        assert store.monitors.alerts(monitor=monitor) == [third]

    def test_of_replicas_firing_the_same_rule_at_once_one_creates_the_alert(self, store: MetadataStore) -> None:
        monitor, replicas = _monitor(store).name, 6
        start = threading.Barrier(replicas)
        opened: list[tuple[Alert, bool]] = []

        def fire() -> None:
            start.wait()
            opened.append(store.monitors.open_alert(_alert(monitor, HOUR)))

        threads = [threading.Thread(target=fire) for _ in range(replicas)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(created for _, created in opened) == [False] * (replicas - 1) + [True]
        assert {alert.id for alert, _ in opened} == {a.id for a in store.monitors.alerts(monitor=monitor)}
        assert [a.windows for a in store.monitors.alerts(monitor=monitor)] == [1]

    def test_a_resolved_rule_fires_a_new_alert(self, store: MetadataStore) -> None:
        monitor = _monitor(store, rules=(DRIFT, LATENCY)).name
        assert store.monitors.resolve_alert(monitor, "drift") is None  # nothing fires
        first, _ = store.monitors.open_alert(_alert(monitor, 0))
        other, _ = store.monitors.open_alert(_alert(monitor, 0, 300.0, rule="latency"))
        assert other.id != first.id  # one alert per rule
        resolved = store.monitors.resolve_alert(monitor, "drift")
        assert resolved is not None and resolved.id == first.id and resolved.state == "resolved"
        assert resolved.resolved_at is not None and resolved.resolved_at >= first.created_at
        assert (resolved.value, resolved.windows, resolved.last_window_ms) == (first.value, 1, 0)
        assert store.monitors.resolve_alert(monitor, "drift") is None  # resolved already
        _later()
        fresh, created = store.monitors.open_alert(_alert(monitor, 2 * HOUR, 0.6))
        assert created and fresh.id not in (first.id, other.id) and fresh.windows == 1 and fresh.first_window_ms == 2 * HOUR
        assert [(a.id, a.state) for a in store.monitors.alerts(monitor=monitor)] == [
            (fresh.id, "firing"), (other.id, "firing"), (first.id, "resolved")
        ]  # fmt: skip
        with pytest.raises(NotFound):
            store.monitors.resolve_alert(unique("mon"), "drift")
        with pytest.raises(NotFound):
            store.monitors.open_alert(_alert(unique("mon"), 0))

    def test_alerts_are_filtered_by_monitor_state_and_time_newest_first(self, store: MetadataStore) -> None:
        one, two = _monitor(store).name, _monitor(store).name
        a, _ = store.monitors.open_alert(_alert(one, 0))
        _later()
        b, _ = store.monitors.open_alert(_alert(two, 0))
        _later()
        c, _ = store.monitors.open_alert(_alert(one, 0, rule="latency"))
        store.monitors.resolve_alert(one, "drift")
        ids = [x.id for x in store.monitors.alerts(since_ms=a.created_at)]
        assert ids[:3] == [c.id, b.id, a.id]
        assert [x.id for x in store.monitors.alerts(monitor=one)] == [c.id, a.id]
        assert [x.id for x in store.monitors.alerts(monitor=one, state="firing")] == [c.id]
        assert [x.id for x in store.monitors.alerts(monitor=one, state="resolved")] == [a.id]
        assert [x.id for x in store.monitors.alerts(monitor=one, since_ms=b.created_at)] == [c.id]
        assert store.monitors.alerts(monitor=two, state="resolved") == []
        assert store.monitors.alerts(monitor=one, since_ms=c.created_at + 60_000) == []
        with pytest.raises(InvalidArgument):
            store.monitors.alerts(state="open")
        with pytest.raises(InvalidArgument):
            store.monitors.alerts(since_ms=-1)
        with pytest.raises(NotFound):
            store.monitors.alerts(monitor=unique("mon"))

    # actions ------------------------------------------------------------------------------------------------------
    def test_an_action_retried_updates_its_record_and_counts_the_attempt(self, store: MetadataStore) -> None:
        monitor = _monitor(store).name
        alert, _ = store.monitors.open_alert(_alert(monitor, 0))
        failed = store.monitors.record_action(ActionRecord(alert.id, "webhook:https://example.com/hook", "failed", "HTTP 503"))
        assert (failed.alert_id, failed.status, failed.detail, failed.attempts, failed.at > 0) == (
            alert.id, "failed", "HTTP 503", 1, True
        )  # fmt: skip
        logged = store.monitors.record_action(ActionRecord(alert.id, "log", "ok", "logged", attempts=7))  # attempts: the store's
        assert logged.attempts == 1
        _later()
        ok = store.monitors.record_action(ActionRecord(alert.id, "webhook:https://example.com/hook", "ok", "HTTP 200"))
        assert (ok.status, ok.detail, ok.attempts) == ("ok", "HTTP 200", 2) and ok.at > failed.at
        again = store.monitors.record_action(ActionRecord(alert.id, "webhook:https://example.com/hook", "ok"))
        assert (again.detail, again.attempts) == ("", 3)
        assert store.monitors.actions(alert.id) == [logged, again]  # by action
        other, _ = store.monitors.open_alert(_alert(monitor, 0, rule="latency"))
        assert store.monitors.actions(other.id) == []

    def test_actions_of_an_unknown_alert_are_not_found(self, store: MetadataStore) -> None:
        missing = 2**62
        with pytest.raises(NotFound):
            store.monitors.record_action(ActionRecord(missing, "log", "ok"))
        with pytest.raises(NotFound):
            store.monitors.actions(missing)
        with pytest.raises(InvalidArgument):
            store.monitors.actions(0)

    # leases -------------------------------------------------------------------------------------------------------
    def test_a_lease_is_held_by_one_owner_until_it_runs_out(self, store: MetadataStore) -> None:
        job = unique("job")
        assert store.monitors.acquire_lease(job, "replica-a", 60_000)
        assert not store.monitors.acquire_lease(job, "replica-b", 60_000)  # held by another
        assert store.monitors.acquire_lease(job, "replica-a", 60_000)  # renewed by its owner
        store.monitors.release_lease(job, "replica-b")  # not b's: nothing happens
        assert not store.monitors.acquire_lease(job, "replica-b", 60_000)
        store.monitors.release_lease(job, "replica-a")
        assert store.monitors.acquire_lease(job, "replica-b", 60_000)  # given back: free
        assert store.monitors.acquire_lease(unique("job"), "replica-a", 60_000)  # another job is another lease
        short = unique("job")
        assert store.monitors.acquire_lease(short, "replica-a", 1)
        time.sleep(0.02)
        assert store.monitors.acquire_lease(short, "replica-b", 60_000)  # ran out: taken over
        assert not store.monitors.acquire_lease(short, "replica-a", 60_000)
        store.monitors.release_lease(unique("job"), "nobody")  # no lease: nothing to give back

    def test_of_replicas_asking_at_once_one_gets_the_lease(self, store: MetadataStore) -> None:
        job, replicas = unique("job"), 8
        start = threading.Barrier(replicas)
        got: list[str] = []

        def ask(owner: str) -> None:
            start.wait()
            if store.monitors.acquire_lease(job, owner, 60_000):
                got.append(owner)

        threads = [threading.Thread(target=ask, args=(f"replica-{n}",)) for n in range(replicas)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(got) == 1
        losers = [f"replica-{n}" for n in range(replicas) if f"replica-{n}" != got[0]]
        assert [store.monitors.acquire_lease(job, owner, 60_000) for owner in losers] == [False] * (replicas - 1)

    # bad input ----------------------------------------------------------------------------------------------------
    @pytest.mark.parametrize(
        "change",
        [
            {"window_ms": 999},
            {"window_ms": True},
            {"name": "/bad name"},
            {"reference": ""},
            {"rules": [DRIFT]},
            {"rules": (DRIFT, DRIFT)},
            {"rules": (replace(DRIFT, severity="panic"),)},
            {"rules": (replace(DRIFT, actions=("shell:rm -rf /",)),)},
            {"rules": (replace(DRIFT, for_windows=0),)},
            {"rules": (replace(DRIFT, expression=" "),)},
        ],
    )
    def test_a_bad_monitor_is_refused_and_nothing_is_written(self, store: MetadataStore, change: dict[str, Any]) -> None:
        deployment = _deployment(store)
        name = unique("mon")
        with pytest.raises(InvalidArgument):
            store.monitors.create_monitor(Monitor(**{"name": name, "deployment": deployment, **change}))
        assert store.monitors.list_monitors(deployment) == []
        created = _monitor(store, deployment)
        with pytest.raises(InvalidArgument):
            store.monitors.update_monitor(Monitor(**{"name": created.name, "deployment": deployment, **change}))
        assert store.monitors.get_monitor(created.name) == created

    @pytest.mark.parametrize(
        "change",
        [
            {"values": {"drift.share": float("nan")}},
            {"values": {"drift.share": float("inf")}},
            {"values": {"drift.share": "0.5"}},
            {"values": {"drift.share": True}},
            {"values": {"": 1.0}},
            {"values": {"a\nb": 1.0}},
            {"end_ms": 0},
            {"rows": -1},
            {"labelled_rows": 1.5},
            {"profile_sha256": "A" * 64},
        ],
    )
    def test_a_bad_window_is_refused_and_nothing_is_written(self, store: MetadataStore, change: dict[str, Any]) -> None:
        monitor = _monitor(store).name
        good = store.monitors.put_window(_window(monitor, 0))
        with pytest.raises(InvalidArgument):
            store.monitors.put_window(replace(_window(monitor, 0), **change))  # would replace the good one
        with pytest.raises(InvalidArgument):
            store.monitors.put_window(replace(_window(monitor, HOUR), **change))
        assert store.monitors.windows(monitor) == [good]

    @pytest.mark.parametrize(
        "change",
        [
            {"value": float("nan")},
            {"value": float("-inf")},
            {"value": "0.5"},
            {"severity": "panic"},
            {"first_window_ms": 2 * HOUR},
            {"last_window_ms": -1},
            {"rule": ""},
            {"message": 5},
        ],
    )
    def test_a_bad_alert_is_refused_and_nothing_is_written(self, store: MetadataStore, change: dict[str, Any]) -> None:
        monitor = _monitor(store).name
        with pytest.raises(InvalidArgument):
            store.monitors.open_alert(replace(_alert(monitor, 0), **change))
        assert store.monitors.alerts(monitor=monitor) == []
        opened, _ = store.monitors.open_alert(_alert(monitor, 0))
        with pytest.raises(InvalidArgument):
            store.monitors.open_alert(replace(_alert(monitor, HOUR), **change))
        assert store.monitors.alerts(monitor=monitor) == [opened]

    @pytest.mark.parametrize(
        "change",
        [{"status": "maybe"}, {"action": "shell:ls"}, {"alert_id": 0}, {"alert_id": True}, {"detail": None}, {"attempts": 0}],
    )
    def test_a_bad_action_record_is_refused_and_nothing_is_written(self, store: MetadataStore, change: dict[str, Any]) -> None:
        alert, _ = store.monitors.open_alert(_alert(_monitor(store).name, 0))
        with pytest.raises(InvalidArgument):
            store.monitors.record_action(replace(ActionRecord(alert.id, "log", "ok"), **change))
        assert store.monitors.actions(alert.id) == []

    @pytest.mark.parametrize(
        "bad", [("", "owner", 1000), ("job", "", 1000), ("job", "owner", 0), ("job", "owner", 86_400_001), ("job", 5, 1000)]
    )
    def test_a_bad_lease_request_is_refused(self, store: MetadataStore, bad: tuple[Any, Any, Any]) -> None:
        job = unique("job") if bad[0] == "job" else bad[0]
        with pytest.raises(InvalidArgument):
            store.monitors.acquire_lease(job, bad[1], bad[2])
        if bad[0] == "job":
            assert store.monitors.acquire_lease(job, "someone", 60_000)  # the refused request took nothing
        with pytest.raises(InvalidArgument):
            store.monitors.release_lease("", "owner")
