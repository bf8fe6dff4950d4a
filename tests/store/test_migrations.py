"""Schema migrations: an older database is upgraded in place, its data intact; a newer one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from keel.core.entities import RunStatus
from keel.core.errors import KeelError
from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.store import SqlStore


def test_schema_head_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(sql_engine.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == sql_engine.SCHEMA_HEAD


def _make_revision_0001_database(uri: str) -> None:
    """A database as keel 0001 left it: runs with metrics, but no latest_metrics table."""
    engine = sql_engine.make_engine(uri)
    sql_engine.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO projects (name, description, created_at) VALUES ('default', '', 0)"))
        conn.execute(text("INSERT INTO experiments (project_id, name, created_at) SELECT id, 'old', 0 FROM projects"))
        for n, run_id in ((1, "a" * 32), (2, "b" * 32)):
            conn.execute(
                text(
                    "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, heartbeat) "
                    "SELECT :id, id, :name, 'finished', 1000, 2000, 2000 FROM experiments"
                ),
                {"id": run_id, "name": f"old-{n}"},
            )
            pk = conn.execute(text("SELECT pk FROM runs WHERE id = :id"), {"id": run_id}).scalar()
            conn.execute(text("INSERT INTO params (run_id, key, value, num) VALUES (:id, 'lr', '0.1', 0.1)"), {"id": run_id})
            for step in range(5):
                conn.execute(
                    text("INSERT INTO metrics (run_pk, key, value, step, timestamp) VALUES (:pk, 'acc', :v, :s, :t)"),
                    {"pk": pk, "v": step / 10 + n, "s": step, "t": 1000 + step},
                )
    assert sql_engine.current_revision(engine) == "0001"
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_old_database_is_upgraded_in_place(empty_db_uri: str) -> None:
    _make_revision_0001_database(empty_db_uri)
    store = SqlStore(empty_db_uri)  # opening upgrades
    assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD
    old = store.get_run("b" * 32)
    assert old.status is RunStatus.FINISHED and old.params == {"lr": "0.1"}
    assert old.metrics["acc"].step == 4 and old.metrics["acc"].value == pytest.approx(2.4)  # backfilled latest
    assert [r.name for r in store.search_runs(None, filter="metrics.acc > 2").runs] == ["old-2"]
    assert len(store.get_metric_history("a" * 32, "acc")) == 5
    # and the upgraded database takes new writes
    run = store.create_run(store.get_experiment_by_name("old").id, "new")
    store.log_metrics([(run.id, "acc", 9.0, 0, 1)])
    assert store.get_run(run.id).metrics["acc"].value == 9.0
    store.close()


def test_database_from_a_newer_keel_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    SqlStore(uri).close()
    engine = sql_engine.make_engine(uri)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(KeelError, match="newer than this keel"):
        SqlStore(uri)
