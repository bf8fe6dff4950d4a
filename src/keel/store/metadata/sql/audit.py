"""The audit log on the SQL backend: ``append_event``, called by the other SQL stores inside the transaction of the
change they record, and ``SqlAuditStore``, which reads it.

What is audited: every change of runs (creation, end, tags, params, trial results, artifact references),
experiments (creation), datasets (new versions, run links, validation records), models (versions, alias moves with
the gates' verdict), deployments (creation, routes, rollbacks, alias-follow changes), monitors (creation, rule
changes, alerts raised and resolved, action records), the step cache and prediction labels (a count and a digest).
Not audited, by choice: metric values (append-only data, in batches of thousands; the creation and end of their
run are audited, and the end records how many values it carried), heartbeats, monitor windows, a firing alert
counting one more window, scheduler leases (operational state rewritten every few seconds, not a change anyone
makes), and the prediction log's file index (serving's data, written by replicas at every flush).

Appends are serialized so that the chain never forks: on PostgreSQL the transaction takes a transaction-scoped
advisory lock before it reads the head; on SQLite every write transaction begins ``IMMEDIATE`` (``engine.py``), so
the head read inside it is the head. The lock is held until commit, so ``append_event`` is the last thing a
transaction does (after its row locks): a transaction that appended and then waited on a row lock could deadlock
with one holding that row and waiting for the log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from keel.core.actor import current_actor
from keel.core.audit import GENESIS, AuditEvent, canonical_json, make_event
from keel.core.clock import now_ms
from keel.store.metadata.audit import MAX_PAGE, AuditStore, check_page
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.database import Database

__all__ = ["AUDIT_LOCK", "SqlAuditStore", "append_event"]

AUDIT_LOCK = 7_270_012
"""The PostgreSQL advisory lock key that serializes appends (the migration lock is 7_270_001)."""

_a = t.audit_events.c
_head = select(t.audit_events).order_by(_a.seq.desc()).limit(1)
_head_link = select(_a.seq, _a.hash).order_by(_a.seq.desc()).limit(1)


def append_event(conn: Connection, action: str, entity: str, entity_id: Any, before: Any, after: Any) -> None:
    """Append one event, by ``current_actor()``, to the chain, in ``conn``'s (write) transaction.

    ``before``/``after``: small JSON summaries (ids, names, versions, routes; never secrets), or None.
    Call it last in the transaction (see the module docstring).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK)))
    elif not conn.get_execution_options().get("keel_write"):
        raise AssertionError("append_event needs a write transaction (BEGIN IMMEDIATE): the head must not move under it")
    head_sql, insert_sql = _statements(conn)
    last = conn.exec_driver_sql(head_sql).first()
    seq, prev_hash = (int(last[0]) + 1, str(last[1])) if last is not None else (1, GENESIS)
    event = make_event(
        seq, prev_hash, now_ms(), current_actor()[:128], action[:64], entity[:32], str(entity_id)[:256],
        None if before is None else canonical_json(before), None if after is None else canonical_json(after),
    )  # fmt: skip
    conn.exec_driver_sql(insert_sql, tuple(getattr(event, name) for name in _COLUMNS))


_COLUMNS = ("seq", "at", "actor", "action", "entity", "entity_id", "before", "after", "prev_hash", "hash")
_INSERT = t.audit_events.insert().inline()
_compiled: dict[str, tuple[str, str]] = {}


def _statements(conn: Connection) -> tuple[str, str]:
    """The head query and the insert as this driver's SQL, compiled once per dialect: an event is appended on
    every change (three for a run), so SQLAlchemy's per-call statement handling would cost more than the event."""
    name = conn.dialect.name
    found = _compiled.get(name)
    if found is None:
        dialect: Any = conn.dialect
        if not dialect.positional:  # psycopg: %s placeholders, whose order we can know
            dialect = type(dialect)(paramstyle="format")
        compiled = _INSERT.compile(dialect=dialect, column_keys=list(_COLUMNS))
        if tuple(compiled.positiontup or ()) != _COLUMNS:
            raise AssertionError(f"the audit insert binds {compiled.positiontup}, not {_COLUMNS}")
        head = str(_head_link.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        found = _compiled[name] = (head, compiled.string)
    return found


def _event(r: Any) -> AuditEvent:
    return AuditEvent(r.seq, r.at, r.actor, r.action, r.entity, r.entity_id, r.before, r.after, r.prev_hash, r.hash)


class SqlAuditStore(AuditStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    def events(
        self, *, after_seq: int = 0, limit: int = MAX_PAGE, entity: str | None = None, entity_id: str | None = None
    ) -> list[AuditEvent]:
        check_page(after_seq, limit, entity, entity_id)
        query = select(t.audit_events).where(_a.seq > after_seq)
        if entity is not None:
            query = query.where(_a.entity == entity)
        if entity_id is not None:
            query = query.where(_a.entity_id == entity_id)
        with self.db.transaction(write=False) as conn:
            return [_event(r) for r in conn.execute(query.order_by(_a.seq).limit(limit))]

    def head(self) -> AuditEvent | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_head).first()
        return None if row is None else _event(row)
