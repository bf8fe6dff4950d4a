"""Metrics on the SQL backend: the hot path.

``log_metrics`` turns a batch into one packed block per (run, key) (``metric_blocks``) and one
upsert per (run, key) into ``latest_metrics``, in one transaction. A batch id, when given, is
inserted first in that transaction (``metric_batches``): a batch already applied inserts nothing
and writes nothing, and on PostgreSQL a concurrent resend waits on the first one's row and then
sees it. The three writes are Core statements run as compiled driver SQL (``Database.compiled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import Metric
from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata.base import BATCH_ID_RETENTION_MS, MetricRow, check_batch_id
from keel.store.metadata.sql import metric_blocks
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.database import Database, by_dialect
from keel.store.metadata.sql.runs import RunKeys, check_writable

PRUNE_EVERY_MS = 60_000  # forget old batch ids at most once a minute per store
BLOCK_COLUMNS = ("run_pk", "key", "count", "vals", "steps", "stamps")
LATEST_COLUMNS = ("run_id", "key", "value", "step", "timestamp")
BATCH_COLUMNS = ("id", "created_at")

_insert_blocks = t.metric_blocks.insert().inline()  # inline: no RETURNING of the ids on PostgreSQL


def _upsert_latest(insert: Any) -> Any:
    """Insert or move the latest value of (run, key), never back to an older step (or same step, older time)."""
    lm = t.latest_metrics
    stmt = insert(lm)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"value": new.value, "step": new.step, "timestamp": new.timestamp},
        where=or_(new.step > lm.c.step, and_(new.step == lm.c.step, new.timestamp >= lm.c.timestamp)),
    )


_upsert_latest_by_dialect = by_dialect(_upsert_latest)
_claim_batch_by_dialect = by_dialect(lambda insert: insert(t.metric_batches).on_conflict_do_nothing())
_prune_batches = t.metric_batches.delete().where(t.metric_batches.c.created_at < bindparam("before"))
_batch_applied = select(t.metric_batches.c.id).where(t.metric_batches.c.id == bindparam("batch_id"))
_mb = t.metric_blocks.c
_run_pk = select(t.runs.c.pk).where(t.runs.c.id == bindparam("run_id"))
_history = (
    select(_mb.count, _mb.vals, _mb.steps, _mb.stamps)
    .where(_mb.run_pk == bindparam("run_pk"), _mb.key == bindparam("key"))
    .order_by(_mb.id)
)

PreparedMetrics = tuple[list[Any], list[Any]]
"""A validated batch: (block rows, latest rows), as positional tuples."""


class SqlMetricStore:
    """Metric values (packed blocks), the latest value per (run, key), and applied batch ids."""

    def __init__(self, db: Database, keys: RunKeys) -> None:
        self.db = db
        self.keys = keys
        self._next_prune = 0
        self._insert_blocks_sql = db.compiled(_insert_blocks, BLOCK_COLUMNS)
        self._upsert_latest_sql = db.compiled(db.pick(_upsert_latest_by_dialect), LATEST_COLUMNS)
        self._claim_batch_sql = db.compiled(db.pick(_claim_batch_by_dialect), BATCH_COLUMNS)
        self._prune_batches_sql = db.compiled(_prune_batches, ("before",))

    def log(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        if batch_id is not None:
            check_batch_id(batch_id)
        if not rows:
            return
        prepared = self.prepare(rows)
        with self.db.transaction() as conn:
            if batch_id is not None and not self.claim_batch(conn, batch_id):
                return  # applied before: the client resent it after losing the answer
            self.write(conn, prepared)

    def batch_applied(self, batch_id: str) -> bool:
        check_batch_id(batch_id)
        with self.db.transaction(write=False) as conn:
            return conn.execute(_batch_applied, {"batch_id": batch_id}).first() is not None

    def claim_batch(self, conn: Connection, batch_id: str) -> bool:
        """Record ``batch_id`` in this transaction; False if it was applied already (nothing to write)."""
        now = now_ms()
        if now >= self._next_prune:  # keep the table bounded: ids older than the retention go
            self._next_prune = now + PRUNE_EVERY_MS
            conn.exec_driver_sql(self._prune_batches_sql, (now - BATCH_ID_RETENTION_MS,))
        return bool(conn.exec_driver_sql(self._claim_batch_sql, (batch_id, now)).rowcount == 1)

    def prepare(self, rows: Sequence[Any]) -> PreparedMetrics:
        """Validate a batch, group it into blocks and find the latest values, outside any transaction."""
        rows = rows if isinstance(rows, list) else list(rows)
        try:
            groups = metric_blocks.group(rows)
        except metric_blocks.NotFastPath:
            groups = metric_blocks.group(_slow_checked_metric_rows(rows))
        for _, key in groups:
            v.check_key(key, "metric key")
        pks = self.keys.pks({run_id for run_id, _ in groups})
        return metric_blocks.blocks(groups, pks)

    def write(self, conn: Connection, prepared: PreparedMetrics) -> None:
        blocks, latest = prepared
        check_writable(conn, {row[0] for row in latest})  # a deleted run is read-only
        conn.exec_driver_sql(self._insert_blocks_sql, blocks)
        conn.exec_driver_sql(self._upsert_latest_sql, latest)

    def history(self, run_id: str, key: str) -> list[Metric]:
        with self.db.transaction(write=False) as conn:
            pk = conn.execute(_run_pk, {"run_id": run_id}).scalar()
            if pk is None:
                raise NotFound(f"run {run_id!r} does not exist")
            result = conn.execute(_history, {"run_pk": pk, "key": key}).all()
        return [Metric(run_id, key, value, step, ts) for value, step, ts in metric_blocks.expand(result)]

    def series(self, run_id: str, key: str) -> tuple[Sequence[int], Sequence[float]]:
        """(steps, values) of ``key`` as two arrays, in the order of ``history``."""
        with self.db.transaction(write=False) as conn:
            pk = conn.execute(_run_pk, {"run_id": run_id}).scalar()
            if pk is None:
                raise NotFound(f"run {run_id!r} does not exist")
            result = conn.execute(_history, {"run_pk": pk, "key": key}).all()
        return metric_blocks.columns(result)


def _slow_checked_metric_rows(rows: Sequence[Any]) -> list[MetricRow]:
    out: list[Any] = []
    for row in rows:
        if not isinstance(row, (tuple, list)) or len(row) != 5:
            raise InvalidArgument.for_field("metric row", row, "(run_id, key, value, step, timestamp)")
        run_id, key, value, step, ts = row
        if not isinstance(run_id, str):
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
        key = v.check_key(key, "metric key")
        value = v.check_metric_value(value, key)
        out.append((run_id, key, value, v.check_step(step), v.check_timestamp(ts)))
    return out
