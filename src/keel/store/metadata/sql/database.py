"""The unit of work of the SQL backend: one engine, transactions with retry and error translation.

Every entity store (runs, metrics, datasets, models, pipelines) talks to the database only
through ``Database``'s public API:

- ``transaction(write=...)``: one transaction; driver errors come out as ``keel.core.errors``
  (a constraint violation is ``Conflict``, an integer out of range ``InvalidArgument``, anything
  else ``StoreUnavailable``), never chained to the driver's exception.
- ``numbered_write(work)``: "take the next number, retry if a concurrent writer took it".
- ``by_dialect(build)`` / ``pick(...)``: statements with ``ON CONFLICT``, built once per dialect.

One way of writing SQL: SQLAlchemy Core expressions, built once at module level where they
are hot (building an expression costs more than running it on SQLite). The metric and param
writes, run a few thousand times a second, additionally go through ``compiled``: the same Core
statement compiled once per dialect to the driver's SQL and run with ``exec_driver_sql`` on
positional tuples, which skips SQLAlchemy's per-row parameter processing.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from keel.core.errors import Conflict, InvalidArgument, KeelError, StoreUnavailable
from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.engine import ensure_schema, make_engine

T = TypeVar("T")
_log = logging.getLogger("keel.store")
DIALECTS = ("sqlite", "postgresql")
LOCK_RETRIES = 8  # attempts at BEGIN when the database reports a lock (SQLite: within SQLITE_BUSY_TIMEOUT_S in all)
NUMBERED_WRITE_ATTEMPTS = 3
CHUNK = 900  # ids per IN (...): below SQLite's variable limit on old builds


def dialect_insert(dialect: str) -> Callable[[Any], Any]:
    """The ``insert`` of ``dialect`` (the one with ``on_conflict_do_*``), imported on first use: a process on SQLite
    never loads PostgreSQL's dialect (and asyncio, which it imports)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    raise KeyError(dialect)


class PerDialect(Mapping[str, T]):
    """``build(insert)`` for each dialect, built once on first use by a database of that dialect (then the same
    object every time: ``Database.compiled`` caches by it)."""

    def __init__(self, build: Callable[[Callable[[Any], Any]], T]) -> None:
        self._build = build
        self._built: dict[str, T] = {}
        self._lock = threading.Lock()

    def __getitem__(self, dialect: str) -> T:
        built = self._built.get(dialect)
        if built is None:
            with self._lock:
                built = self._built.get(dialect)
                if built is None:
                    built = self._built[dialect] = self._build(dialect_insert(dialect))
        return built

    def __iter__(self) -> Iterator[str]:
        return iter(DIALECTS)

    def __len__(self) -> int:
        return len(DIALECTS)


def by_dialect(build: Callable[[Callable[[Any], Any]], T]) -> PerDialect[T]:
    """``build(insert)`` for each dialect's ``insert`` (the one with ``on_conflict_do_*``), built on first use."""
    return PerDialect(build)


class Database:
    """The engine and its transactions. Thread safe; one instance per ``SqlStore``."""

    def __init__(self, uri: str, *, migrate: bool = True) -> None:
        self.engine = make_engine(uri)
        self.dialect: str = self.engine.dialect.name
        self._compiled: dict[int, str] = {}
        if migrate:
            ensure_schema(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # statements ------------------------------------------------------------------------------
    def insert(self, table: Any) -> Any:
        """An INSERT of this database's dialect, with ``on_conflict_do_nothing/update``."""
        return dialect_insert(self.dialect)(table)

    def pick(self, statements: Mapping[str, T]) -> T:
        """This database's statement of a ``by_dialect`` pair."""
        return statements[self.dialect]

    def compiled(self, statement: Any, columns: Sequence[str]) -> str:
        """``statement`` as this driver's SQL taking positional tuples in ``columns`` order (see the module doc).

        Compiled once per database. Only for hot INSERT/DELETE statements built at module level
        (INSERTs with ``.inline()``: no RETURNING); run with ``conn.exec_driver_sql(sql, tuples)``.
        """
        sql = self._compiled.get(id(statement))
        if sql is None:
            dialect: Any = self.engine.dialect
            if not dialect.positional:  # psycopg: the same SQL with %s placeholders, whose order we can know
                dialect = type(dialect)(paramstyle="format")
            compiled = statement.compile(dialect=dialect, column_keys=list(columns))
            if tuple(compiled.positiontup or ()) != tuple(columns):
                raise AssertionError(f"{statement} binds {compiled.positiontup}, not {columns}")
            sql = self._compiled[id(statement)] = compiled.string
        return sql

    # transactions ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, write: bool = True) -> Iterator[Connection]:
        """One transaction, driver errors translated.

        Lock contention is retried where it happens: at ``BEGIN IMMEDIATE`` (after SQLite's own
        busy timeout), before the body runs. A failure inside the body is not retried here: a
        generator context manager cannot run its body twice, and callers that can retry
        (``numbered_write``, the metric writer) do so themselves.
        """
        conn, trans = self._begin(write)
        try:
            yield conn
            trans.commit()
        except BaseException as exc:
            if trans.is_active:
                trans.rollback()
            conn.close()
            translated = _translated(exc)
            if translated is exc:
                raise
            raise translated from None
        conn.close()

    def _begin(self, write: bool) -> tuple[Connection, Any]:
        """A connection in a new transaction. A write blocked on SQLite's lock for ``SQLITE_LOCK_NOTICE_S`` says once
        what it waits for, then waits out the rest of ``SQLITE_BUSY_TIMEOUT_S`` (see engine) and ends in a
        ``StoreUnavailable`` naming the store."""
        started = time.monotonic()
        wait = _LockWait(self.engine) if write and self.dialect == "sqlite" else None
        busy_ms: int | None = None
        attempt = 0
        while True:
            conn = None
            try:
                conn = self.engine.connect()
                if write:
                    conn = conn.execution_options(keel_write=True, keel_busy_ms=busy_ms)
                return conn, conn.begin()
            except OperationalError as exc:
                if conn is not None:
                    conn.close()
                locked = "locked" in str(exc.orig) or "busy" in str(exc.orig)
                if not locked:
                    raise StoreUnavailable(f"metadata store error: {exc.orig}") from None
                attempt += 1
                pause = min(0.05 * 2**attempt, 1.0) * (0.5 + random.random())
                if wait is None:
                    if attempt >= LOCK_RETRIES:
                        raise StoreUnavailable(f"metadata store error: {exc.orig}") from None
                else:
                    waited = time.monotonic() - started
                    step = wait.after_failure(waited, attempt, pause)
                    if step is None:
                        raise StoreUnavailable(sql_engine.lock_timeout_message(self.engine, waited)) from None
                    pause, busy_ms = step
                time.sleep(pause)
            except SQLAlchemyError as exc:
                if conn is not None:
                    conn.close()
                raise StoreUnavailable(f"metadata store error: {exc.__class__.__name__}: {exc}") from None

    def numbered_write(self, work: Callable[[Connection], T], *, exhausted: str | None = None) -> T:
        """Run ``work`` in a write transaction, again in a new one when it raises ``Conflict``.

        For "take the next number (or create the row) and insert": two writers may take the same
        number; the unique constraint refuses the second, which then sees the first one's row on
        its next pass. After ``NUMBERED_WRITE_ATTEMPTS`` the last ``Conflict`` propagates, or one
        saying ``exhausted`` when given.
        """
        for attempt in range(NUMBERED_WRITE_ATTEMPTS):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except Conflict:
                if attempt + 1 < NUMBERED_WRITE_ATTEMPTS:
                    continue  # a concurrent writer took the number (or created the row): try again
                if exhausted is None:
                    raise
                raise Conflict(exhausted) from None
        raise AssertionError("unreachable")


class _LockWait:
    """One SQLite writer's wait for the write lock: when to say so, how long the next attempt may block, when to stop."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.budget = sql_engine.SQLITE_BUSY_TIMEOUT_S
        self.notice = min(sql_engine.SQLITE_LOCK_NOTICE_S, self.budget)
        self.noticed = False

    def after_failure(self, waited: float, attempt: int, pause: float) -> tuple[float, int] | None:
        """The pause before the next attempt and that attempt's busy timeout (ms); None once the budget is spent."""
        remaining = self.budget - waited
        if remaining <= 0.001 or attempt >= LOCK_RETRIES:
            return None
        if not self.noticed and waited >= self.notice * 0.95:
            self.noticed = True
            _log.warning("%s", sql_engine.lock_notice(self.engine))
        pause = min(pause, remaining)
        # before the notice, block only until it is due (a lock reported at once must not make us wait silently)
        until = remaining if self.noticed else self.notice - waited
        return pause, max(int((until - pause) * 1000), 1)


def next_number(conn: Connection, column: Any, *where: Any) -> int:
    """One more than the highest ``column`` among the rows matching ``where`` (1 for none)."""
    return int(conn.execute(select(func.max(column)).where(*where)).scalar() or 0) + 1


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``CHUNK`` (for ``IN (...)`` lists)."""
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _translated(exc: BaseException) -> BaseException:
    """The keel error for a driver error raised inside a transaction; any other exception as it is."""
    if isinstance(exc, KeelError) or not isinstance(exc, (SQLAlchemyError, OverflowError)):
        return exc
    if isinstance(exc, OverflowError):
        return InvalidArgument(f"a number is out of range for the database (64-bit integers): {exc}")
    if isinstance(exc, SAIntegrityError):
        return Conflict(f"write refused by the database: {exc.orig}")
    return StoreUnavailable(f"metadata store error: {exc.__class__.__name__}: {exc}")
