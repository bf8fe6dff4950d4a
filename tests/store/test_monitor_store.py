"""The monitor-store contract on SQLite, PostgreSQL and the REST store against a real server; the server's own checks
of what any HTTP client sends; the migration from the previous revision."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from keel.core.errors import KeelError
from keel.core.monitoring import Alert, AlertRule, Monitor, MonitorWindow
from keel.store.metadata import open_store
from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.store import SqlStore
from keel.testing.monitor_contract import HOUR, MonitorStoreContract
from keel.testing.store_contract import unique


class TestMonitorStore(MonitorStoreContract):
    pass


def _post(url: str, method: str, body: bytes) -> httpx.Response:
    return httpx.request(method, url, content=body, headers={"content-type": "application/json"})


def test_the_server_checks_what_a_client_sends(server_url: str) -> None:
    """A client that skips the REST store's checks (any HTTP client) is refused by the server: 400, nothing written."""
    store = open_store(server_url)
    api = f"{server_url}/api/v1"
    try:
        deployment = unique("deploy")
        store.deployments.create(deployment, "models:/churn/1")
        name = unique("mon")
        rule = {"name": "drift", "expression": "drift.share > 0.3"}
        for bad in (
            {"name": name, "deployment": deployment, "window_ms": 10},
            {"name": name, "deployment": deployment, "rules": [{**rule, "actions": ["shell:ls"]}]},
            {"name": name, "deployment": deployment, "rules": [rule, rule]},
            {"name": name, "deployment": deployment, "window_ms": "3600000"},
            {"name": name, "deployment": deployment, "extra": 1},
        ):
            answer = httpx.post(f"{api}/monitors", json={"monitor": bad})
            assert answer.status_code == 400, (bad, answer.text)
        assert store.monitors.list_monitors(deployment) == []
        good = httpx.post(f"{api}/monitors", json={"monitor": {"name": name, "deployment": deployment, "rules": [rule]}})
        assert good.status_code == 200 and good.json()["rules"][0]["for_windows"] == 1
        assert httpx.put(f"{api}/monitors", json={"monitor": {"name": name, "deployment": "other"}}).status_code == 400
        assert store.monitors.get_monitor(name).rules == (AlertRule("drift", "drift.share > 0.3"),)

        window = {"monitor": name, "start_ms": 0, "end_ms": HOUR, "values": {"drift.share": 0.5}}
        for raw in (  # JSON as Python writes it (NaN, Infinity) and numbers no float holds
            b'{"window": {"monitor": "%s", "start_ms": 0, "end_ms": 3600000, "values": {"drift.share": NaN}}}',
            b'{"window": {"monitor": "%s", "start_ms": 0, "end_ms": 3600000, "values": {"drift.share": Infinity}}}',
            b'{"window": {"monitor": "%s", "start_ms": 0, "end_ms": 3600000, "values": {"drift.share": 1' + b"0" * 400 + b"}}}",
            b'{"window": {"monitor": "%s", "start_ms": 0, "end_ms": 3600000, "values": {"drift.share": "0.5"}}}',
            b'{"window": {"monitor": "%s", "start_ms": 5, "end_ms": 5}}',
        ):
            answer = _post(f"{api}/monitor-windows", "PUT", raw.replace(b"%s", name.encode()))
            assert answer.status_code == 400, (raw, answer.text)
        assert store.monitors.windows(name) == []
        assert httpx.put(f"{api}/monitor-windows", json={"window": window}).status_code == 200
        assert [w.values for w in store.monitors.windows(name)] == [{"drift.share": 0.5}]

        alert = {"monitor": name, "rule": "drift", "severity": "critical", "first_window_ms": 0, "last_window_ms": 0}
        for bad_alert in ({**alert, "severity": "panic"}, {**alert, "first_window_ms": 5}, {**alert, "value": True}):
            assert httpx.post(f"{api}/monitor-alerts", json={"alert": bad_alert}).status_code == 400, bad_alert
        answer = _post(f"{api}/monitor-alerts", "POST", b'{"alert": {"monitor": "%s", "rule": "drift", "severity": "info", '
                       b'"first_window_ms": 0, "last_window_ms": 0, "value": NaN}}' % name.encode())  # fmt: skip
        assert answer.status_code == 400, answer.text
        assert store.monitors.alerts(monitor=name) == []
        opened = httpx.post(f"{api}/monitor-alerts", json={"alert": alert}).json()
        assert opened["created"] is True and opened["alert"]["windows"] == 1
        alert_id = opened["alert"]["id"]

        for bad_record in ({"alert_id": alert_id, "action": "shell:ls", "status": "ok"},
                           {"alert_id": alert_id, "action": "log", "status": "maybe"}):  # fmt: skip
            assert httpx.post(f"{api}/monitor-actions", json={"record": bad_record}).status_code == 400
        assert store.monitors.actions(alert_id) == []
        missing = httpx.post(f"{api}/monitor-actions", json={"record": {"alert_id": 2**62, "action": "log", "status": "ok"}})
        assert missing.status_code == 404

        for bad_lease in ({"job": "j", "owner": "o", "ttl_ms": 0}, {"job": "", "owner": "o", "ttl_ms": 10}):
            assert httpx.post(f"{api}/scheduler-leases/acquire", json=bad_lease).status_code == 400
        assert httpx.post(f"{api}/monitor-alerts", json={"alert": alert}).json()["created"] is False
    finally:
        store.close()


def test_resending_over_rest_is_idempotent(server_url: str) -> None:
    """What a scheduler resends (the same window, the same firing alert) changes nothing more over HTTP."""
    store = open_store(server_url)
    try:
        deployment = unique("deploy")
        store.deployments.create(deployment, "models:/churn/1")
        name = store.monitors.create_monitor(Monitor(unique("mon"), deployment)).name
        for _ in range(3):
            store.monitors.put_window(MonitorWindow(name, 0, HOUR, {"drift.share": 0.4}, rows=9))
            alert, _ = store.monitors.open_alert(Alert(0, name, "drift", "warning", "firing", 0, 0, 0.4, "m"))
        assert [(w.start_ms, w.rows) for w in store.monitors.windows(name)] == [(0, 9)]
        assert [(a.id, a.windows) for a in store.monitors.alerts(monitor=name)] == [(alert.id, 1)]
    finally:
        store.close()


def test_a_database_of_the_previous_revision_is_upgraded(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sql_engine.make_engine(uri)
    sql_engine.upgrade(engine, "0010")
    engine.dispose()
    old = SqlStore(uri, migrate=False)
    with pytest.raises(KeelError):  # no monitor tables before 0011
        old.monitors.list_monitors()
    old.close()
    store = SqlStore(uri)
    try:
        assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD
        store.deployments.create("churn", "models:/churn/1")
        store.monitors.create_monitor(Monitor("churn-hourly", "churn"))
        assert [m.name for m in store.monitors.list_monitors("churn")] == ["churn-hourly"]
        assert store.monitors.acquire_lease("job", "me", 1000)
    finally:
        store.close()


def test_the_migration_goes_down_and_up_again(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'k.db'}"
    SqlStore(uri).close()
    engine = sql_engine.make_engine(uri)
    try:
        sql_engine.downgrade(engine, "0010")
        assert sql_engine.current_revision(engine) == "0010"
        sql_engine.upgrade(engine)
        assert sql_engine.current_revision(engine) == sql_engine.SCHEMA_HEAD
    finally:
        engine.dispose()
