"""The DDL of a new SQLite store, compiled once from ``schema.py`` into ``sqlite_schema.sql`` (package data).

Compiling forty tables' DDL is a third of a first ``keel.log_metric``'s start-up in a new folder; the file makes it
one ``executescript``. ``tests/store/test_fresh_schema.py`` fails when the file and ``schema.py`` differ, and a
store created from it must equal one built by every migration. After changing ``schema.py``:

    python -m keel.store.metadata.sql.ddl      # rewrites sqlite_schema.sql
"""

from __future__ import annotations

from pathlib import Path

SQLITE_SCHEMA = Path(__file__).with_name("sqlite_schema.sql")
HEADER = "-- generated from keel/store/metadata/sql/schema.py by `python -m keel.store.metadata.sql.ddl`: do not edit\n"


def sqlite_ddl(head: str) -> str:
    """Every table and index of ``schema.py`` as SQLite DDL, then the Alembic version table stamped at ``head``."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from keel.store.metadata.sql.schema import metadata

    dialect = sqlite.dialect()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        indexes = sorted((i for i in table.indexes if _on_sqlite(i)), key=_name)
        statements += [str(CreateIndex(index).compile(dialect=dialect)).strip() for index in indexes]
    statements.append(  # the table Alembic itself creates, so later migrations find their revision
        "CREATE TABLE alembic_version "
        "(version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{head}')")
    return HEADER + "".join(f"{s};\n" for s in statements)


def _name(index: object) -> str:
    return str(getattr(index, "name", ""))


def _on_sqlite(index: object) -> bool:
    """Whether ``create_all`` would make ``index`` on SQLite (``Index(...).ddl_if(dialect=...)`` names another)."""
    condition = getattr(index, "_ddl_if", None)  # SQLAlchemy's record of ddl_if(): (dialect, callable_, state)
    if condition is None:
        return True
    if condition.callable_ is not None:
        raise NotImplementedError("a ddl_if with a callable: compile it with create_all instead")
    return condition.dialect in (None, "sqlite")


if __name__ == "__main__":
    from keel.store.metadata.sql.engine import SCHEMA_HEAD

    SQLITE_SCHEMA.write_text(sqlite_ddl(SCHEMA_HEAD))
    print(f"wrote {SQLITE_SCHEMA}")
