"""Engines for SQLite and PostgreSQL, and bringing their schema to the current revision.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy handler instead of
failing with "database is locked" when a read transaction tries to upgrade.

A writer waits for the lock up to ``SQLITE_BUSY_TIMEOUT_S`` in all, but in two steps: a connection's
own busy timeout is ``SQLITE_LOCK_NOTICE_S``, and a ``BEGIN IMMEDIATE`` still blocked after it is
begun again with the rest of the budget (execution option ``keel_busy_ms``), once ``Database`` has
said what it waits for (``lock_notice``). The uncontended path runs no extra statement.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, column, create_engine, event, func, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from keel.core.errors import InvalidArgument, KeelError, MissingExtra, StoreUnavailable

SCHEMA_HEAD = "0017"  # a test pins this to Alembic's head revision
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0  # how long a writer waits for SQLite's write lock in all
SQLITE_LOCK_NOTICE_S = 2.0  # ... and after how long it says what it waits for
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
    notice_ms = _notice_ms()
    engine = create_engine(
        url,
        connect_args={"timeout": notice_ms / 1000, "check_same_thread": False},
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
        cur.execute(f"PRAGMA busy_timeout={notice_ms}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if not options.get("keel_write"):
            conn.exec_driver_sql("BEGIN DEFERRED")  # transaction control, not a query: Core has no BEGIN IMMEDIATE
            return
        busy_ms = options.get("keel_busy_ms")
        if busy_ms is None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        driver = conn.connection.driver_connection
        driver.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            driver.execute(f"PRAGMA busy_timeout={notice_ms}")  # the pooled connection goes back to the short wait

    return engine


def _notice_ms() -> int:
    return int(min(SQLITE_LOCK_NOTICE_S, SQLITE_BUSY_TIMEOUT_S) * 1000)


def lock_notice(engine: Engine) -> str:
    """What a writer blocked on ``engine``'s SQLite write lock waits for, as one line for the user."""
    path = Path(engine.url.database or ":memory:")
    holders = _other_processes_with(path)
    who = f"open in {', '.join(holders)}" if holders else "another process or connection is writing to it"
    return f"keel: waiting for the write lock on the metadata store {path} ({who}); will wait up to {SQLITE_BUSY_TIMEOUT_S:g} s"


def lock_timeout_message(engine: Engine, waited_s: float) -> str:
    """The error of a writer that gave up waiting for ``engine``'s SQLite write lock."""
    return (
        f"the metadata store {engine.url.database} stayed locked by another writer: gave up after {waited_s:.1f} s "
        f"(the limit is {SQLITE_BUSY_TIMEOUT_S:g} s); finish or stop the other keel process writing to it, and try again"
    )


def _other_processes_with(path: Path, limit: int = 3) -> list[str]:
    """Other processes that have the database (or its WAL) open, as "pid 12 (python train.py)": Linux /proc only,
    best effort, and only on the slow path: one of them holds the lock, though a reader is listed as well."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    try:
        targets = {str(path.resolve()), str(path.resolve()) + "-wal"}
        pids = [p for p in proc.iterdir() if p.name.isdigit() and int(p.name) != os.getpid()]
    except OSError:
        return []
    found: list[str] = []
    for pid in pids:
        try:
            if not any(os.readlink(fd) in targets for fd in (pid / "fd").iterdir()):
                continue
            cmd = " ".join((pid / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split())
        except OSError:
            continue  # gone, or not ours to look at
        found.append(f"pid {pid.name} ({cmd[:60]})" if cmd else f"pid {pid.name}")
        if len(found) >= limit:
            break
    return found


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
                    # a migration's DDL takes the write lock mid-transaction: it gets the whole budget at once
                    driver: Any = conn.connection.driver_connection
                    driver.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
                    try:
                        yield conn
                    finally:
                        driver.execute(f"PRAGMA busy_timeout={_notice_ms()}")
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


def create_at_head(engine: Engine) -> bool:
    """Create an empty SQLite database's tables at the head revision directly, and stamp it; False if it was not empty.

    Replaying every migration on a new store costs more than everything else a first ``keel.log_metric`` does (and
    imports Alembic); the tables of ``schema.py`` are the migrations' end state, which a test checks column by column
    and index by index. Their DDL is compiled ahead into ``sqlite_schema.sql`` (``keel.store.metadata.sql.ddl``; a
    test checks it against ``schema.py``), run in one transaction. PostgreSQL, shared and long-lived, always goes
    through the migrations.
    """
    from keel.store.metadata.sql.ddl import HEADER, SQLITE_SCHEMA

    script = SQLITE_SCHEMA.read_text()
    if not script.startswith(HEADER) or f"VALUES ('{SCHEMA_HEAD}')" not in script:
        return False  # a stale file (schema.py changed without regenerating it): the migrations, slower but right
    with _migration_lock(engine) as conn:
        driver: Any = conn.connection.driver_connection  # isolation_level None: keel says BEGIN itself
        if current_revision(engine) is not None or driver.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return False  # another process was first, or the file holds someone else's tables: migrations decide
        driver.executescript(f"BEGIN IMMEDIATE;\n{script}COMMIT;")  # all of it, or (on an error) none of it
    return True


def ensure_schema(engine: Engine) -> None:
    """Create a new SQLite database at the head revision; upgrade an older database in place; refuse one made by a newer
    keel."""
    try:
        revision = current_revision(engine)
        if revision == SCHEMA_HEAD:
            return
        if revision is not None and revision > SCHEMA_HEAD:
            raise KeelError(f"the database is at schema revision {revision}, newer than this keel ({SCHEMA_HEAD}); upgrade keel")
        if revision is None and engine.dialect.name == "sqlite" and create_at_head(engine):
            return
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the metadata store {engine.url!r}: {exc.__class__.__name__}: {exc}") from None
