"""``SqlMonitorStore``: monitors, their window results, alerts, actions and scheduler leases on the ``SqlStore``'s database.

The writes a scheduler may retry are idempotent through unique keys: a window by ``(monitor, start_ms)`` and an
action record by ``(alert_id, action)`` (``ON CONFLICT ... DO UPDATE``, one statement per dialect), a firing alert by
``(monitor, rule)``: looked up in the transaction, and a partial unique index (``state = 'firing'``) refuses a second
one that a concurrent writer inserted meanwhile, after which the write runs again and updates that one.

An alert counts the distinct breaching windows it has seen by its span: a window after ``last_window_ms`` (or before
``first_window_ms``) is one more; one inside the span (the same window sent again, or recomputed when late labels
arrived) was counted already. ``value`` and ``message`` are the newest window's.

A lease is taken in one statement (``INSERT ... ON CONFLICT (job) DO UPDATE ... WHERE owner = me OR until_ms <= now``):
``RETURNING`` says whether it was, so of several replicas asking at once exactly one gets it.
Inputs are checked in ``keel.core.monitoring``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import BigInteger, Connection, bindparam, select

from keel.core.clock import now_ms
from keel.core.errors import AlreadyExists, InvalidArgument, NotFound
from keel.core.monitoring import (
    ALERT_STATES,
    ActionRecord,
    Alert,
    AlertRule,
    Monitor,
    MonitorWindow,
    check_action_record,
    check_alert,
    check_lease,
    check_monitor,
    check_window,
)
from keel.core.predictions import check_time_bound
from keel.core.validation import check_name
from keel.store.metadata.monitors import MonitorStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect

_m = t.monitors.c
_w = t.monitor_windows.c
_a = t.monitor_alerts.c
_r = t.monitor_actions.c
_lease = t.scheduler_leases.c
_d = t.deployments.c
_MAX_ID = 2**31 - 1  # the largest integer key on every backend: a larger alert id names no alert
_WINDOW_FIELDS = ("end_ms", "numbers", "rows", "labelled_rows", "profile_sha256", "computed_at")


def _upsert_window(insert: Any) -> Any:
    stmt = insert(t.monitor_windows)
    return stmt.on_conflict_do_update(
        index_elements=["monitor_id", "start_ms"], set_={f: stmt.excluded[f] for f in _WINDOW_FIELDS}
    )


def _upsert_action(insert: Any) -> Any:
    stmt = insert(t.monitor_actions)
    return stmt.on_conflict_do_update(
        index_elements=["alert_id", "action"],
        set_={"status": stmt.excluded.status, "detail": stmt.excluded.detail, "at": stmt.excluded.at,
              "attempts": _r.attempts + 1},
    )  # fmt: skip


def _take_lease(insert: Any) -> Any:
    stmt = insert(t.scheduler_leases)
    return stmt.on_conflict_do_update(
        index_elements=["job"],
        set_={"owner": stmt.excluded.owner, "until_ms": stmt.excluded.until_ms},
        where=(_lease.owner == stmt.excluded.owner) | (_lease.until_ms <= bindparam("now", type_=BigInteger())),  # ours, or over
    ).returning(_lease.job)  # a row only when inserted or updated (a row count is not reliable on every driver)


_upsert_window_by_dialect = by_dialect(_upsert_window)
_upsert_action_by_dialect = by_dialect(_upsert_action)
_take_lease_by_dialect = by_dialect(_take_lease)


def _rules_json(rules: tuple[AlertRule, ...]) -> str:
    return json.dumps([r.to_dict() for r in rules])


def _audited_action(action: str) -> str:
    """An action as the audit log shows it: a webhook URL may carry a secret (Slack's do), so only its scheme and host,
    and a digest of the whole URL so that a change of it is still seen."""
    if not action.startswith("webhook:"):
        return action
    url = urlsplit(action.removeprefix("webhook:"))
    return f"webhook:{url.scheme}://{url.hostname or ''}/... sha256:{hashlib.sha256(action.encode()).hexdigest()[:16]}"


def _summary(monitor: Monitor) -> dict[str, Any]:
    """What the audit log records of a monitor: its rules as stored, webhook URLs reduced (``_audited_action``)."""
    rules = [{**r.to_dict(), "actions": [_audited_action(a) for a in r.actions]} for r in monitor.rules]
    return {"deployment": monitor.deployment, "window_ms": monitor.window_ms, "reference": monitor.reference, "rules": rules}


def _monitor(r: Any) -> Monitor:
    rules = tuple(AlertRule.from_dict(d) for d in json.loads(r.rules))
    return Monitor(r.name, r.deployment, r.window_ms, r.reference, rules, r.created_at, r.updated_at)


def _window(monitor: str, r: Any) -> MonitorWindow:
    return MonitorWindow(monitor, r.start_ms, r.end_ms, json.loads(r.numbers), r.rows, r.labelled_rows, r.profile_sha256,
                         r.computed_at)  # fmt: skip


def _alert(r: Any) -> Alert:
    return Alert(r.id, r.monitor, r.rule, r.severity, r.state, r.first_window_ms, r.last_window_ms, r.value, r.message,
                 r.windows, r.created_at, r.resolved_at)  # fmt: skip


def _action(r: Any) -> ActionRecord:
    return ActionRecord(r.alert_id, r.action, r.status, r.detail, r.attempts, r.at)


_MONITORS = select(t.monitors, _d.name.label("deployment")).join(t.deployments, _d.id == _m.deployment_id)
_ALERTS = select(t.monitor_alerts, _m.name.label("monitor")).join(t.monitors, _m.id == _a.monitor_id)


class SqlMonitorStore(MonitorStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._upsert_window = db.pick(_upsert_window_by_dialect)
        self._upsert_action = db.pick(_upsert_action_by_dialect)
        self._take_lease = db.pick(_take_lease_by_dialect)

    # lookups ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _monitor_row(conn: Connection, name: str) -> Any:
        row = conn.execute(_MONITORS.where(_m.name == name)).first()
        if row is None:
            raise NotFound(f"monitor {name!r} does not exist")
        return row

    @staticmethod
    def _alert_exists(conn: Connection, alert_id: int) -> None:
        if alert_id > _MAX_ID or conn.execute(select(_a.id).where(_a.id == alert_id)).first() is None:
            raise NotFound(f"alert {alert_id} does not exist")

    @classmethod
    def _monitor_id(cls, conn: Connection, name: str) -> int:
        return int(cls._monitor_row(conn, name).id)

    # monitors -----------------------------------------------------------------------------------------------------
    def create_monitor(self, monitor: Monitor) -> Monitor:
        monitor = check_monitor(monitor)
        with self.db.transaction() as conn:
            deployment_id = conn.execute(select(_d.id).where(_d.name == monitor.deployment)).scalar()
            if deployment_id is None:
                raise NotFound(f"deployment {monitor.deployment!r} does not exist")
            if conn.execute(select(_m.id).where(_m.name == monitor.name)).first() is not None:
                raise AlreadyExists(f"monitor {monitor.name!r} already exists")
            at = now_ms()
            conn.execute(
                t.monitors.insert().values(
                    name=monitor.name, deployment_id=deployment_id, window_ms=monitor.window_ms, reference=monitor.reference,
                    rules=_rules_json(monitor.rules), created_at=at, updated_at=at,
                )
            )  # fmt: skip
            append_event(conn, "monitors.create", "monitor", monitor.name, None, _summary(monitor))
            return _monitor(self._monitor_row(conn, monitor.name))

    def get_monitor(self, name: str) -> Monitor:
        check_name(name, "monitor")
        with self.db.transaction(write=False) as conn:
            return _monitor(self._monitor_row(conn, name))

    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        query = _MONITORS
        if deployment is not None:
            query = query.where(_d.name == check_name(deployment, "deployment"))
        with self.db.transaction(write=False) as conn:
            rows = list(conn.execute(query))
        return sorted((_monitor(r) for r in rows), key=lambda m: m.name)  # in Python: one order whatever the collation

    def update_monitor(self, monitor: Monitor) -> Monitor:
        monitor = check_monitor(monitor)
        with self.db.transaction() as conn:
            row = self._monitor_row(conn, monitor.name)
            if row.deployment != monitor.deployment:
                raise InvalidArgument.for_field(
                    "deployment", monitor.deployment, f"the monitor's deployment ({row.deployment!r}): it cannot change"
                )
            conn.execute(
                t.monitors.update().where(_m.id == row.id).values(
                    window_ms=monitor.window_ms, reference=monitor.reference, rules=_rules_json(monitor.rules),
                    updated_at=max(now_ms(), row.updated_at + 1),  # a later stamp even within the same millisecond
                )
            )  # fmt: skip
            append_event(conn, "monitors.update", "monitor", monitor.name, _summary(_monitor(row)), _summary(monitor))
            return _monitor(self._monitor_row(conn, monitor.name))

    # windows ------------------------------------------------------------------------------------------------------
    def put_window(self, window: MonitorWindow) -> MonitorWindow:
        window = check_window(window)
        numbers = json.dumps({k: float(v) for k, v in window.values.items()}, allow_nan=False)
        with self.db.transaction() as conn:
            monitor_id = self._monitor_id(conn, window.monitor)
            conn.execute(
                self._upsert_window.values(
                    monitor_id=monitor_id, start_ms=window.start_ms, end_ms=window.end_ms, numbers=numbers, rows=window.rows,
                    labelled_rows=window.labelled_rows, profile_sha256=window.profile_sha256, computed_at=now_ms(),
                )
            )  # fmt: skip
            stored = conn.execute(
                select(t.monitor_windows).where(_w.monitor_id == monitor_id, _w.start_ms == window.start_ms)
            ).one()
        return _window(window.monitor, stored)

    def windows(self, monitor: str, *, since_ms: int | None = None, until_ms: int | None = None) -> list[MonitorWindow]:
        check_name(monitor, "monitor")
        since, until = check_time_bound(since_ms, "since_ms"), check_time_bound(until_ms, "until_ms")
        with self.db.transaction(write=False) as conn:
            query = select(t.monitor_windows).where(_w.monitor_id == self._monitor_id(conn, monitor))
            if since is not None:
                query = query.where(_w.start_ms >= since)
            if until is not None:
                query = query.where(_w.start_ms <= until)
            rows = conn.execute(query.order_by(_w.start_ms)).all()
        return [_window(monitor, r) for r in rows]

    # alerts -------------------------------------------------------------------------------------------------------
    def open_alert(self, alert: Alert) -> tuple[Alert, bool]:
        alert = check_alert(alert)
        # a concurrent writer may insert the rule's firing alert between our read and our insert: the partial unique
        # index refuses ours (Conflict), and the next attempt finds theirs and updates it
        return self.db.numbered_write(lambda conn: self._open_alert(conn, alert))

    def _open_alert(self, conn: Connection, alert: Alert) -> tuple[Alert, bool]:
        monitor_id = self._monitor_id(conn, alert.monitor)
        firing = conn.execute(_ALERTS.where(_a.monitor_id == monitor_id, _a.rule == alert.rule, _a.state == "firing")).first()
        value = None if alert.value is None else float(alert.value)
        if firing is None:
            alert_id = conn.execute(
                t.monitor_alerts.insert().values(
                    monitor_id=monitor_id, rule=alert.rule, severity=alert.severity, state="firing",
                    first_window_ms=alert.first_window_ms, last_window_ms=alert.last_window_ms, value=value,
                    message=alert.message, windows=1, created_at=now_ms(), resolved_at=None,
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            opened = self._alert(conn, int(alert_id))
            # raised and resolved are audited; a firing alert counting one more window is monitoring data, not a change
            append_event(conn, "monitors.alert_raised", "alert", alert_id, None, {
                "monitor": alert.monitor, "rule": alert.rule, "severity": alert.severity, "value": value,
                "first_window_ms": alert.first_window_ms, "last_window_ms": alert.last_window_ms,
            })  # fmt: skip
            return opened, True
        newer = alert.last_window_ms >= firing.last_window_ms
        outside = alert.last_window_ms > firing.last_window_ms or alert.first_window_ms < firing.first_window_ms
        changes: dict[str, Any] = {
            "first_window_ms": min(firing.first_window_ms, alert.first_window_ms),
            "last_window_ms": max(firing.last_window_ms, alert.last_window_ms),
            "windows": firing.windows + (1 if outside else 0),
        }
        if newer:
            changes.update(value=value, message=alert.message)
        conn.execute(t.monitor_alerts.update().where(_a.id == firing.id).values(**changes))
        return self._alert(conn, firing.id), False

    @staticmethod
    def _alert(conn: Connection, alert_id: int) -> Alert:
        return _alert(conn.execute(_ALERTS.where(_a.id == alert_id)).one())

    def resolve_alert(self, monitor: str, rule: str) -> Alert | None:
        check_name(monitor, "monitor")
        check_name(rule, "rule")
        with self.db.transaction() as conn:
            monitor_id = self._monitor_id(conn, monitor)
            firing = conn.execute(
                select(_a.id).where(_a.monitor_id == monitor_id, _a.rule == rule, _a.state == "firing")
            ).scalar()
            if firing is None:
                return None
            conn.execute(t.monitor_alerts.update().where(_a.id == firing).values(state="resolved", resolved_at=now_ms()))
            after = {"monitor": monitor, "rule": rule, "state": "resolved"}
            append_event(conn, "monitors.alert_resolved", "alert", firing, {"state": "firing"}, after)
            return self._alert(conn, int(firing))

    def alerts(self, *, monitor: str | None = None, state: str | None = None, since_ms: int | None = None) -> list[Alert]:
        if state is not None and state not in ALERT_STATES:
            raise InvalidArgument.for_field("state", state, " or ".join(ALERT_STATES))
        since = check_time_bound(since_ms, "since_ms")
        query = _ALERTS
        with self.db.transaction(write=False) as conn:
            if monitor is not None:
                query = query.where(_a.monitor_id == self._monitor_id(conn, check_name(monitor, "monitor")))
            if state is not None:
                query = query.where(_a.state == state)
            if since is not None:
                query = query.where(_a.created_at >= since)
            rows = conn.execute(query.order_by(_a.created_at.desc(), _a.id.desc())).all()
        return [_alert(r) for r in rows]

    # actions ------------------------------------------------------------------------------------------------------
    def record_action(self, record: ActionRecord) -> ActionRecord:
        record = check_action_record(record)
        with self.db.transaction() as conn:
            self._alert_exists(conn, record.alert_id)
            conn.execute(
                self._upsert_action.values(
                    alert_id=record.alert_id, action=record.action, status=record.status, detail=record.detail, attempts=1,
                    at=now_ms(),
                )
            )  # fmt: skip
            stored = conn.execute(
                select(t.monitor_actions).where(_r.alert_id == record.alert_id, _r.action == record.action)
            ).one()
            after = {"action": _audited_action(record.action), "status": record.status, "attempts": stored.attempts}
            append_event(conn, "monitors.record_action", "alert", record.alert_id, None, after)
        return _action(stored)

    def actions(self, alert_id: int) -> list[ActionRecord]:
        if isinstance(alert_id, bool) or not isinstance(alert_id, int) or not 1 <= alert_id < 2**63:
            raise InvalidArgument.for_field("alert_id", alert_id, "a positive integer")
        with self.db.transaction(write=False) as conn:
            self._alert_exists(conn, alert_id)
            rows = conn.execute(select(t.monitor_actions).where(_r.alert_id == alert_id)).all()
        return sorted((_action(r) for r in rows), key=lambda a: a.action)

    # leases -------------------------------------------------------------------------------------------------------
    def acquire_lease(self, job: str, owner: str, ttl_ms: int) -> bool:
        job, owner, ttl_ms = check_lease(job, owner, ttl_ms)
        with self.db.transaction() as conn:
            now = now_ms()
            taken = conn.execute(self._take_lease, {"job": job, "owner": owner, "until_ms": now + ttl_ms, "now": now})
            return taken.first() is not None

    def release_lease(self, job: str, owner: str) -> None:
        job, owner, _ = check_lease(job, owner, 1)
        with self.db.transaction() as conn:
            conn.execute(t.scheduler_leases.delete().where(_lease.job == job, _lease.owner == owner))
