"""Soft delete and restore of runs and experiments on SQLite, PostgreSQL and REST (``keel.testing.lifecycle_contract``),
and the 0014 migration on a database made before it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.store import SqlStore
from keel.testing.lifecycle_contract import LifecycleContract


class TestLifecycle(LifecycleContract):
    pass


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_a_0013_database_is_upgraded_with_every_run_live_and_downgrades_back(empty_db_uri: str) -> None:
    engine = sql_engine.make_engine(empty_db_uri)
    sql_engine.upgrade(engine, "0013")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (name, description, created_at) VALUES ('default', '', 0)"))
        conn.execute(text("INSERT INTO experiments (project_id, name, created_at) SELECT id, 'old', 0 FROM projects"))
        conn.execute(
            text(
                "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, heartbeat, kind) "
                "SELECT :id, id, 'old-run', 'finished', 1000, 2000, 2000, 'run' FROM experiments"
            ),
            {"id": "d" * 32},
        )
    engine.dispose()
    store = SqlStore(empty_db_uri)  # opening upgrades to 0014
    assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD >= "0014"
    experiment = store.get_experiment_by_name("old")
    assert experiment.deleted_at is None and [e.id for e in store.list_experiments()] == [experiment.id]
    assert [r.id for r in store.search_runs(None).runs] == ["d" * 32]
    store.delete_run("d" * 32)
    assert store.search_runs(None).runs == [] and store.get_run("d" * 32).deleted
    sql_engine.downgrade(store.engine, "0013")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM runs")).scalars().all() == ["old-run"]
    store.close()
