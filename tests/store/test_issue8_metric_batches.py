"""Issue 8: metric batches carry an id the store applies once, kept in the database (migration 0007)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from keel.core.clock import now_ms
from keel.core.entities import RunStatus
from keel.store.metadata.base import BATCH_ID_RETENTION_MS
from keel.store.metadata.rest.client import RestStore
from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.metric_blocks import pack
from keel.store.metadata.sql.store import SqlStore
from keel.testing.services import keel_server

JSON_TYPE = {"content-type": "application/json"}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_a_database_at_0006_is_upgraded_and_deduplicates(empty_db_uri: str) -> None:
    engine = sql_engine.make_engine(empty_db_uri)
    sql_engine.upgrade(engine, "0006")
    engine.dispose()
    old = SqlStore(empty_db_uri, migrate=False)  # a keel of revision 0006 wrote this run
    with old.engine.begin() as conn:
        assert sql_engine.current_revision(old.engine) == "0006"
        conn.execute(text("INSERT INTO projects (name, description, created_at) VALUES ('default', '', 0)"))
        conn.execute(text("INSERT INTO experiments (project_id, name, created_at) SELECT id, 'old', 0 FROM projects"))
        # the run as that keel wrote it (today's runs have more columns: migration 0008)
        conn.execute(text("INSERT INTO runs (id, experiment_id, name, status, start_time, heartbeat) "
                          "SELECT :id, id, 'old', 'running', 0, 0 FROM experiments"), {"id": "e" * 32})  # fmt: skip
        # and its one metric value, one block as 0006 packs it (today's write path checks columns 0014 adds)
        conn.execute(
            text("INSERT INTO metric_blocks (run_pk, key, count, vals, steps, stamps) SELECT pk, 'acc', 1, :v, :s, :t FROM runs"),
            {"v": pack([0.5], "d"), "s": pack([0], "q"), "t": pack([1], "q")},
        )
    run_id = "e" * 32
    old.close()

    store = SqlStore(empty_db_uri)  # opening upgrades
    assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD
    assert [m.value for m in store.get_metric_history(run_id, "acc")] == [0.5]
    for _ in range(2):
        store.log_metrics([(run_id, "acc", 0.7, 1, 2)], batch_id="retry-1")
    assert [m.value for m in store.get_metric_history(run_id, "acc")] == [0.5, 0.7]
    store.close()


def test_batch_ids_older_than_a_day_are_pruned(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'k.db'}")
    run = store.create_run(store.get_or_create_experiment("prune").id)
    stale = now_ms() - BATCH_ID_RETENTION_MS - 60_000
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO metric_batches (id, created_at) VALUES ('ancient', :t)"), {"t": stale})
    assert store.metric_batch_applied("ancient")
    store.log_metrics([(run.id, "m", 1.0, 0, 0)], batch_id="fresh")
    assert not store.metric_batch_applied("ancient") and store.metric_batch_applied("fresh")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM metric_batches")).scalar() == 1
    store.close()


def test_a_batch_resent_after_a_server_restart_is_stored_once(tmp_path: Path) -> None:
    """300,000 values became 600,000 after a restart: the applied ids live in the database, not the server."""
    db, artifacts = f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "artifacts")
    with keel_server(db, artifacts) as url:
        store = RestStore(url)
        run = store.create_run(store.get_or_create_experiment("restart").id)
        batch = [(run.id, "loss", float(i), i, 1000 + i) for i in range(2000)]
        store.log_metrics(batch, batch_id="flush-1")
        store.end_run(run.id, RunStatus.FINISHED, metrics=[(run.id, "auc", 0.8, 0, 1)], batch_id="end-1")
        store.close()
    with keel_server(db, artifacts) as url:  # a new server process on the same database
        store = RestStore(url)
        store.log_metrics(batch, batch_id="flush-1")  # the client never saw the first answer
        store.end_run(run.id, RunStatus.FINISHED, metrics=[(run.id, "auc", 0.8, 0, 1)], batch_id="end-1")
        assert len(store.get_metric_history(run.id, "loss")) == 2000
        assert [m.value for m in store.get_metric_history(run.id, "auc")] == [0.8]
        store.close()


def test_the_server_deduplicates_raw_requests_and_checks_the_key(server_url: str) -> None:
    """What any HTTP client sees: the same Idempotency-Key twice stores once; a malformed key is a 400."""
    store = RestStore(server_url)
    run = store.create_run(store.get_or_create_experiment(f"raw-{uuid.uuid4().hex[:8]}").id)
    body = orjson.dumps({"rows": [[run.id, "m", 1.5, 0, 10], [run.id, "m", 2.5, 1, 11]]})
    key = uuid.uuid4().hex
    with httpx.Client(base_url=server_url) as http:
        for _ in range(3):
            answer = http.post("/api/v1/metrics", content=body, headers={"idempotency-key": key, **JSON_TYPE})
            assert answer.status_code == 200
        assert http.get(f"/api/v1/metric-batches/{key}").json() == {"applied": True}
        bad = http.post("/api/v1/metrics", content=body, headers={"idempotency-key": "two words", **JSON_TYPE})
        assert bad.status_code == 400 and "batch_id" in bad.json()["error"]["message"]
        ended = http.post(f"/api/v1/runs/{run.id}/end", json={"status": "finished"}, headers={"idempotency-key": key + "e"})
        again = http.post(f"/api/v1/runs/{run.id}/end", json={"status": "finished"}, headers={"idempotency-key": key + "e"})
        assert ended.status_code == 200 and again.status_code == 200
    assert [m.value for m in store.get_metric_history(run.id, "m")] == [1.5, 2.5]
    store.close()
