"""A new SQLite store is created from ``schema.py`` at the head revision instead of replaying every migration
(the start-up cost of a first ``keel.log_metric``). Both roads must give the same database, column by column,
index by index, constraint by constraint, or the next migration would meet a table it does not expect."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.store import SqlStore


def _structure(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for table in sorted(tables):
            columns = sorted(conn.execute(f"PRAGMA table_xinfo('{table}')").fetchall(), key=lambda r: r[1])
            foreign = sorted((r[2], r[3], r[4], r[5], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list('{table}')"))
            indexes = {}
            for _, name, unique, origin, partial in conn.execute(f"PRAGMA index_list('{table}')"):
                cols = [r[2] for r in conn.execute(f"PRAGMA index_info('{name}')")]
                key = name if origin == "c" else f"{origin}:{','.join(cols)}"  # automatic indexes are named by position
                indexes[key] = (unique, origin, partial, cols)
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            constraints = sorted(re.findall(r"CONSTRAINT\s+\"?(\w+)\"?\s+(\w+)", sql))
            checks = sorted(re.sub(r"\s+", " ", c) for c in re.findall(r"CHECK\s*\((.*?)\)", sql))
            out[table] = {
                "columns": columns,
                "foreign": foreign,
                "indexes": indexes,
                "constraints": constraints,
                "checks": checks,
            }
        partial = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE%'").fetchall()
        out["partial indexes"] = sorted((n, re.sub(r"\s+", " ", s.split("WHERE", 1)[1]).strip()) for n, s in partial)
        out["revision"] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return out
    finally:
        conn.close()


def test_a_new_store_equals_one_built_by_every_migration(tmp_path: Path) -> None:
    migrated, created = tmp_path / "migrated.db", tmp_path / "created.db"
    sql_engine.upgrade(sql_engine.make_engine(f"sqlite:///{migrated}"))
    SqlStore(f"sqlite:///{created}").close()  # the fast road: a new file
    a, b = _structure(migrated), _structure(created)
    assert a["revision"] == b["revision"] == [(sql_engine.SCHEMA_HEAD,)]
    assert sorted(a) == sorted(b), "the same tables"
    for table in a:
        assert a[table] == b[table], table


def test_a_new_store_takes_the_migrations_that_follow(tmp_path: Path) -> None:
    """Going back one revision and up again works on a created store: the names the migrations use exist."""
    uri = f"sqlite:///{tmp_path / 'created.db'}"
    SqlStore(uri).close()
    engine = sql_engine.make_engine(uri)
    previous = f"{int(sql_engine.SCHEMA_HEAD) - 1:04d}"
    sql_engine.downgrade(engine, previous)
    assert sql_engine.current_revision(engine) == previous
    sql_engine.upgrade(engine)
    assert sql_engine.current_revision(engine) == sql_engine.SCHEMA_HEAD


def test_a_file_with_foreign_tables_is_not_created_over(tmp_path: Path) -> None:
    """A SQLite file that holds someone else's tables is never stamped as keel's: the migrations meet it as it is."""
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.commit()
    conn.close()
    engine = sql_engine.make_engine(f"sqlite:///{path}")
    assert sql_engine.create_at_head(engine) is False
    assert sql_engine.current_revision(engine) is None
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
    conn.close()


def test_the_packaged_ddl_is_schema_py_compiled() -> None:
    """``sqlite_schema.sql`` is what ``schema.py`` compiles to at the head revision (a new store runs that file)."""
    from keel.store.metadata.sql.ddl import SQLITE_SCHEMA, sqlite_ddl

    assert SQLITE_SCHEMA.read_text() == sqlite_ddl(sql_engine.SCHEMA_HEAD), (
        "sqlite_schema.sql is stale: run `python -m keel.store.metadata.sql.ddl`"
    )


def test_a_stale_ddl_file_falls_back_to_the_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the file fall behind the head revision, a new store is still made right: by the migrations."""
    from keel.store.metadata.sql import ddl

    stale = tmp_path / "stale.sql"
    stale.write_text(ddl.HEADER + "CREATE TABLE nothing_else (id INTEGER);\n")
    monkeypatch.setattr(ddl, "SQLITE_SCHEMA", stale)
    uri = f"sqlite:///{tmp_path / 'k.db'}"
    assert sql_engine.create_at_head(sql_engine.make_engine(uri)) is False
    SqlStore(uri).close()
    assert _structure(tmp_path / "k.db")["revision"] == [(sql_engine.SCHEMA_HEAD,)]
    assert "nothing_else" not in _structure(tmp_path / "k.db")
