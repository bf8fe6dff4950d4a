"""Engines for SQLite and PostgreSQL, and bringing their schema to the current revision.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy handler instead of
failing with "database is locked" when a read transaction tries to upgrade.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, column, create_engine, event, func, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from keel.core.errors import InvalidArgument, KeelError, MissingExtra, StoreUnavailable

SCHEMA_HEAD = "0013"  # a test pins this to Alembic's head revision
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0
_PG_MIGRATION_LOCK = 7_270_001


def make_engine(uri: str) -> Engine:
    try:
        url = make_url(uri)
    except ArgumentError:
        raise InvalidArgument.for_field("store URI", uri, "a valid database URL") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        except ModuleNotFoundError:
            raise MissingExtra("psycopg", "postgres") from None
    raise InvalidArgument.for_field("store URI", uri, "a sqlite:// or postgresql+psycopg:// URL")


def _sqlite_engine(url: Any) -> Engine:
    database = url.database
    memory = database in (None, "", ":memory:")
    if not memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        poolclass=StaticPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # keel issues BEGIN itself (below)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("keel_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")  # transaction control, not a query: Core has no BEGIN IMMEDIATE

    return engine


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Any]:
    """Serialise migrations across processes: a file lock for SQLite, an advisory lock for PostgreSQL."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database in (None, "", ":memory:"):
            with engine.connect() as conn:
                yield conn
            return
        lock_path = Path(database).expanduser().with_suffix(".migrate.lock")
        with open(lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.execute(select(func.pg_advisory_lock(_PG_MIGRATION_LOCK)))
            conn.commit()
            try:
                yield conn
            finally:
                conn.execute(select(func.pg_advisory_unlock(_PG_MIGRATION_LOCK)))
                conn.commit()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision of the database, or None for an empty one."""
    with engine.connect() as conn:
        try:
            return conn.execute(select(column("version_num")).select_from(table("alembic_version"))).scalar()
        except SQLAlchemyError:
            return None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic), holding a cross-process lock."""
    from alembic import command
    from alembic.config import Config

    with _migration_lock(engine) as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (Alembic), holding the same lock. On SQLite with foreign keys off: dropping
    a column rebuilds the table, whose ``DROP TABLE`` they refuse, and the pragma is a no-op inside a transaction, so
    it is set before one begins (the migrations check the keys themselves) and set back on after."""
    from alembic import command
    from alembic.config import Config

    with _migration_lock(engine) as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
            conn.commit()
        finally:
            if sqlite:
                conn.rollback()  # nothing left after a commit; after a failure, out of the transaction first
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def ensure_schema(engine: Engine) -> None:
    """Upgrade an older database in place; refuse one made by a newer keel."""
    try:
        revision = current_revision(engine)
        if revision == SCHEMA_HEAD:
            return
        if revision is not None and revision > SCHEMA_HEAD:
            raise KeelError(f"the database is at schema revision {revision}, newer than this keel ({SCHEMA_HEAD}); upgrade keel")
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the metadata store {engine.url!r}: {exc.__class__.__name__}: {exc}") from None
