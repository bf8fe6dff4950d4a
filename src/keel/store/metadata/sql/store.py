"""``SqlStore``: the tracking store on SQLite or PostgreSQL (SQLAlchemy Core).

Hot path: ``log_metrics`` turns a batch into one packed block per (run, key)
(``metric_blocks``) and one upsert per (run, key) into ``latest_metrics``, in one
transaction. A batch id, when given, is inserted first in that transaction
(``metric_batches``): a batch already applied inserts nothing and writes nothing, and
on PostgreSQL a concurrent resend waits on the first one's row and then sees it.
"""

from __future__ import annotations

import contextlib
import math
import operator
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, not_, or_, select
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import (
    ArtifactRef,
    CodeVersion,
    Environment,
    Experiment,
    LatestMetric,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from keel.core.errors import Conflict, InvalidArgument, KeelError, NotFound, StoreUnavailable
from keel.store.metadata import search
from keel.store.metadata.base import BATCH_ID_RETENTION_MS, MetricRow, TrackingStore, check_batch_id
from keel.store.metadata.sql import metric_blocks
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql import statements as q

if TYPE_CHECKING:
    from keel.store.metadata.sql.datasets import SqlDatasetStore
    from keel.store.metadata.sql.models import SqlModelStore
    from keel.store.metadata.sql.pipelines import SqlPipelineStore
from keel.store.metadata.sql.engine import ensure_schema, make_engine

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "like": lambda col, val: col.like(val),
}
_CHUNK = 900  # below SQLite's variable limit on old builds
_RETRIES = 8
_PRUNE_EVERY_MS = 60_000  # forget old batch ids at most once a minute per store


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class SqlStore(TrackingStore):
    """Tracking store over a SQL database. See ``TrackingStore`` for the contract."""

    def __init__(self, uri: str, *, heartbeat_timeout: float = 30.0, migrate: bool = True) -> None:
        self.uri = uri
        self.heartbeat_timeout = heartbeat_timeout
        self._pk_cache: dict[str, int] = {}
        self._known_experiments: set[int] = set()
        self._datasets: SqlDatasetStore | None = None
        self.engine = make_engine(uri)
        self.dialect = self.engine.dialect.name
        ph = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        values = " VALUES (" + ", ".join([ph] * 5) + ")"
        self._insert_params_sql = (
            f"INSERT INTO params (run_id, key, value, num) VALUES ({ph}, {ph}, {ph}, {ph}) ON CONFLICT DO NOTHING"
        )
        self._insert_blocks_sql = (
            "INSERT INTO metric_blocks (run_pk, key, count, vals, steps, stamps) VALUES (" + ", ".join([ph] * 6) + ")"
        )
        self._claim_batch_sql = f"INSERT INTO metric_batches (id, created_at) VALUES ({ph}, {ph}) ON CONFLICT DO NOTHING"
        self._prune_batches_sql = f"DELETE FROM metric_batches WHERE created_at < {ph}"
        self._next_prune = 0
        self._upsert_latest_sql = (
            "INSERT INTO latest_metrics (run_id, key, value, step, timestamp)"
            + values
            + " ON CONFLICT (run_id, key) DO UPDATE SET "
            "value = excluded.value, step = excluded.step, timestamp = excluded.timestamp "
            "WHERE excluded.step > latest_metrics.step OR "
            "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
        )
        if migrate:
            ensure_schema(self.engine)

    @property
    def datasets(self) -> SqlDatasetStore:
        """Dataset versions on the same database."""
        if self._datasets is None:
            from keel.store.metadata.sql.datasets import SqlDatasetStore

            self._datasets = SqlDatasetStore(self)
        return self._datasets

    @property
    def models(self) -> SqlModelStore:
        """The model registry on the same database."""
        from keel.store.metadata.sql.models import SqlModelStore

        return SqlModelStore(self)

    @property
    def pipelines(self) -> SqlPipelineStore:
        """The step cache on the same database."""
        from keel.store.metadata.sql.pipelines import SqlPipelineStore

        return SqlPipelineStore(self)

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # transactions -------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, write: bool = True) -> Iterator[Connection]:
        """One transaction, driver errors translated.

        Lock contention is retried where it happens: at ``BEGIN IMMEDIATE`` (after SQLite's own
        busy timeout), before the body runs. A failure inside the body is not retried here: a
        generator context manager cannot run its body twice, and callers that can retry
        (the metric writer) do so themselves.
        """
        conn, trans = self._begin(write)
        try:
            yield conn
            trans.commit()
        except BaseException as exc:
            if trans.is_active:
                trans.rollback()
            conn.close()
            if isinstance(exc, KeelError) or not isinstance(exc, (SQLAlchemyError, OverflowError)):
                raise
            if isinstance(exc, OverflowError):
                raise InvalidArgument(f"a number is out of range for the database (64-bit integers): {exc}") from None
            if isinstance(exc, SAIntegrityError):
                raise Conflict(f"write refused by the database: {exc.orig}") from None
            raise StoreUnavailable(f"metadata store error: {exc.__class__.__name__}: {exc}") from None
        conn.close()

    def _begin(self, write: bool) -> tuple[Connection, Any]:
        attempt = 0
        while True:
            conn = None
            try:
                conn = self.engine.connect()
                if write:
                    conn = conn.execution_options(keel_write=True)
                return conn, conn.begin()
            except OperationalError as exc:
                if conn is not None:
                    conn.close()
                locked = "locked" in str(exc.orig) or "busy" in str(exc.orig)
                attempt += 1
                if not locked or attempt >= _RETRIES:
                    raise StoreUnavailable(f"metadata store error: {exc.orig}") from None
                time.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))
            except SQLAlchemyError as exc:
                if conn is not None:
                    conn.close()
                raise StoreUnavailable(f"metadata store error: {exc.__class__.__name__}: {exc}") from None

    def _insert(self, table: Any) -> Any:
        """An INSERT with ``on_conflict_*`` (same API on both dialects)."""
        from sqlalchemy.dialects import postgresql, sqlite

        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # experiments ----------------------------------------------------------------------
    def get_or_create_experiment(self, name: str, project: str = "default") -> Experiment:
        v.check_name(name, "experiment")
        v.check_name(project, "project")
        for _ in range(3):
            try:
                with self._tx() as conn:
                    project_id = conn.execute(select(t.projects.c.id).where(t.projects.c.name == project)).scalar()
                    if project_id is None:
                        project_id = conn.execute(
                            t.projects.insert().values(name=project, description="", created_at=now_ms())
                        ).inserted_primary_key[0]  # type: ignore[index]
                    row = conn.execute(
                        select(t.experiments).where(t.experiments.c.project_id == project_id, t.experiments.c.name == name)
                    ).first()
                    if row is None:
                        created = now_ms()
                        exp_id = conn.execute(
                            t.experiments.insert().values(project_id=project_id, name=name, created_at=created)
                        ).inserted_primary_key[0]  # type: ignore[index]
                        return Experiment(id=exp_id, name=name, project=project, created_at=created)
                    return Experiment(id=row.id, name=row.name, project=project, created_at=row.created_at)
            except Conflict:
                continue  # created concurrently by another writer: read it on the next pass
        return self.get_experiment_by_name(name, project)

    def _experiment_query(self) -> Any:
        return select(t.experiments, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == t.experiments.c.project_id
        )

    @staticmethod
    def _experiment(row: Any) -> Experiment:
        return Experiment(id=row.id, name=row.name, project=row.project, created_at=row.created_at)

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self._tx(write=False) as conn:
            row = conn.execute(self._experiment_query().where(t.experiments.c.id == experiment_id)).first()
        if row is None:
            raise NotFound(f"experiment {experiment_id} does not exist")
        return self._experiment(row)

    def get_experiment_by_name(self, name: str, project: str = "default") -> Experiment:
        with self._tx(write=False) as conn:
            row = conn.execute(self._experiment_query().where(t.experiments.c.name == name, t.projects.c.name == project)).first()
        if row is None:
            raise NotFound(f"experiment {name!r} does not exist in project {project!r}")
        return self._experiment(row)

    def list_experiments(self, project: str | None = None) -> list[Experiment]:
        query = self._experiment_query().order_by(t.experiments.c.id)
        if project is not None:
            query = query.where(t.projects.c.name == project)
        with self._tx(write=False) as conn:
            return [self._experiment(r) for r in conn.execute(query)]

    # runs -----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        code: CodeVersion | None = None,
        environment: Environment | None = None,
        start_time: int | None = None,
    ) -> Run:
        run_id = uuid.uuid4().hex
        name = v.check_name(name, "run name") if name else f"run-{run_id[:8]}"
        tag_rows = self._tag_rows(run_id, tags or {})
        param_rows = self._param_rows(run_id, params or {})
        start = v.check_timestamp(start_time) if start_time is not None else now_ms()
        code = code or CodeVersion()
        env = environment or Environment()
        with self._tx() as conn:
            if experiment_id not in self._known_experiments:  # experiments are never deleted
                if conn.execute(q.experiment_exists, {"experiment_id": experiment_id}).first() is None:
                    raise NotFound(f"experiment {experiment_id} does not exist")
            if parent_run_id is not None and self._status(conn, parent_run_id) is None:
                raise NotFound(f"parent run {parent_run_id!r} does not exist")
            result = conn.execute(
                q.insert_run,
                dict(
                    id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    start_time=start,
                    heartbeat=start,
                    parent_run_id=parent_run_id,
                    git_commit=code.git_commit,
                    git_dirty_hash=code.git_dirty_hash,
                    entry_point=code.entry_point,
                    entry_point_hash=code.entry_point_hash,
                    python_version=env.python_version,
                    platform=env.platform,
                    packages_hash=env.packages_hash,
                    packages_blob=env.packages_blob,
                ),
            )
            pk = result.inserted_primary_key[0]  # type: ignore[index]
            if tag_rows:
                conn.execute(q.insert_tags, tag_rows)
            if param_rows:
                conn.execute(q.insert_params, param_rows)
        self._known_experiments.add(experiment_id)
        self._pk_cache[run_id] = pk
        return Run(
            id=run_id,
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING,
            start_time=start,
            parent_run_id=parent_run_id,
            heartbeat=start,
            params={r["key"]: r["value"] for r in param_rows},
            tags={r["key"]: r["value"] for r in tag_rows},
            code=code,
            environment=env,
        )

    @staticmethod
    def _tag_rows(run_id: str, tags: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(tags, Mapping):
            raise InvalidArgument.for_field("tags", tags, "a mapping of key to value")
        return [{"run_id": run_id, "key": v.check_key(k, "tag key"), "value": v.tag_to_str(k, val)} for k, val in tags.items()]

    @staticmethod
    def _param_rows(run_id: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(params, Mapping):
            raise InvalidArgument.for_field("params", params, "a mapping of key to value")
        rows = []
        for k, val in params.items():
            text = v.param_to_str(v.check_key(k, "param key"), val)
            rows.append({"run_id": run_id, "key": k, "value": text, "num": _as_number(text)})
        return rows

    def _status(self, conn: Connection, run_id: str) -> str | None:
        if not isinstance(run_id, str):
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
        return conn.execute(q.run_status, {"run_id": run_id}).scalar()

    def _require_known_run(self, conn: Connection, run_id: str) -> None:
        """Existence check, skipped for runs this store has seen (runs are never deleted)."""
        if run_id not in self._pk_cache:
            self._require_run(conn, run_id)

    def _require_run(self, conn: Connection, run_id: str) -> str:
        status = self._status(conn, run_id)
        if status is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return status

    def get_run(self, run_id: str) -> Run:
        with self._tx(write=False) as conn:
            return self._get_run(conn, run_id)

    def _get_run(self, conn: Connection, run_id: str) -> Run:
        row = conn.execute(q.run_row, {"run_id": run_id}).first()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return self._load_runs(conn, [row])[0]

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[MetricRow] = (),
        batch_id: str | None = None,
    ) -> None:
        if batch_id is not None:
            check_batch_id(batch_id)
        try:
            status = RunStatus(status)
        except ValueError:
            raise InvalidArgument.for_field("status", status, "one of finished, failed, killed") from None
        if not status.is_terminal:
            raise InvalidArgument.for_field("status", status.value, "one of finished, failed, killed")
        end = v.check_timestamp(end_time) if end_time is not None else now_ms()
        prepared = self._prepare_metrics(metrics) if metrics else None
        with self._tx() as conn:
            if batch_id is not None and not self._claim_batch(conn, batch_id):
                return  # a resend of an end that was applied: done already
            if prepared is not None:
                self._write_metrics(conn, *prepared)
            updated = conn.execute(q.end_run, {"run_id": run_id, "status": status.value, "end_time": end}).rowcount
            if updated != 1:
                current = self._require_run(conn, run_id)
                raise Conflict(f"run {run_id!r} has already ended as {current}")

    def heartbeat(self, run_ids: Sequence[str], time_ms: int | None = None) -> None:
        if not run_ids:
            return
        moment = v.check_timestamp(time_ms) if time_ms is not None else now_ms()
        with self._tx() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id.in_(list(run_ids)), t.runs.c.status == RunStatus.RUNNING.value)
                .values(heartbeat=moment)
            )

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        rows = self._param_rows(run_id, params)
        if not rows:
            return
        with self._tx() as conn:
            self._require_known_run(conn, run_id)
            # Insert what is new; only when some key already existed, compare values (and roll
            # everything back on a difference). The common case is one statement.
            inserted = conn.exec_driver_sql(
                self._insert_params_sql, [(r["run_id"], r["key"], r["value"], r["num"]) for r in rows]
            ).rowcount
            if inserted == len(rows):
                return
            existing = dict(conn.execute(q.existing_params, {"run_id": run_id, "keys": [r["key"] for r in rows]}).all())
            for r in rows:
                if r["key"] in existing and existing[r["key"]] != r["value"]:
                    raise Conflict(
                        f"param {r['key']!r} of run {run_id} is already {existing[r['key']]!r}; "
                        f"it cannot be changed to {r['value']!r} (params are immutable; log a new run)"
                    )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        rows = self._tag_rows(run_id, tags)
        if not rows:
            return
        with self._tx() as conn:
            self._require_known_run(conn, run_id)
            stmt = self._insert(t.tags)
            conn.execute(stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}), rows)

    # metrics: the hot path --------------------------------------------------------------
    def log_metrics(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        if batch_id is not None:
            check_batch_id(batch_id)
        if not rows:
            return
        prepared = self._prepare_metrics(rows)
        with self._tx() as conn:
            if batch_id is not None and not self._claim_batch(conn, batch_id):
                return  # applied before: the client resent it after losing the answer
            self._write_metrics(conn, *prepared)

    def metric_batch_applied(self, batch_id: str) -> bool:
        check_batch_id(batch_id)
        with self._tx(write=False) as conn:
            return conn.execute(select(t.metric_batches.c.id).where(t.metric_batches.c.id == batch_id)).first() is not None

    def _claim_batch(self, conn: Connection, batch_id: str) -> bool:
        """Record ``batch_id`` in this transaction; False if it was applied already (nothing to write)."""
        now = now_ms()
        if now >= self._next_prune:  # keep the table bounded: ids older than the retention go
            self._next_prune = now + _PRUNE_EVERY_MS
            conn.exec_driver_sql(self._prune_batches_sql, (now - BATCH_ID_RETENTION_MS,))
        return bool(conn.exec_driver_sql(self._claim_batch_sql, (batch_id, now)).rowcount == 1)

    def _prepare_metrics(self, rows: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """Validate a batch, group it into blocks and find the latest values, outside any transaction."""
        rows = rows if isinstance(rows, list) else list(rows)
        try:
            groups = metric_blocks.group(rows)
        except metric_blocks.NotFastPath:
            groups = metric_blocks.group(_slow_checked_metric_rows(rows))
        for _, key in groups:
            v.check_key(key, "metric key")
        pks = self._run_pks({run_id for run_id, _ in groups})
        return metric_blocks.blocks(groups, pks)

    def _write_metrics(self, conn: Connection, blocks: list[Any], latest: list[Any]) -> None:
        conn.exec_driver_sql(self._insert_blocks_sql, blocks)
        conn.exec_driver_sql(self._upsert_latest_sql, latest)

    def _run_pks(self, run_ids: set[Any]) -> dict[str, int]:
        """Integer keys of runs (cached: a run's key never changes). Raises ``NotFound``."""
        unknown = [r for r in run_ids if r not in self._pk_cache]
        if unknown:
            for run_id in unknown:
                if not isinstance(run_id, str):
                    raise InvalidArgument.for_field("run_id", run_id, "a run id string")
            with self._tx(write=False) as conn:
                for i in range(0, len(unknown), _CHUNK):
                    chunk = unknown[i : i + _CHUNK]
                    self._pk_cache.update(conn.execute(select(t.runs.c.id, t.runs.c.pk).where(t.runs.c.id.in_(chunk))).all())
            missing = run_ids - self._pk_cache.keys()
            if missing:
                raise NotFound(f"run {sorted(missing)[0]!r} does not exist")
        return self._pk_cache

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self._tx(write=False) as conn:
            pk = conn.execute(select(t.runs.c.pk).where(t.runs.c.id == run_id)).scalar()
            if pk is None:
                raise NotFound(f"run {run_id!r} does not exist")
            mb = t.metric_blocks.c
            result = conn.execute(
                select(mb.count, mb.vals, mb.steps, mb.stamps).where(mb.run_pk == pk, mb.key == key).order_by(mb.id)
            ).all()
        return [Metric(run_id, key, value, step, ts) for value, step, ts in metric_blocks.expand(result)]

    # artifacts ---------------------------------------------------------------------------
    def log_artifacts(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        if not refs:
            return
        for ref in refs:
            v.check_artifact_path(ref.path)
            v.check_sha256(ref.sha256)
            if isinstance(ref.size, bool) or not isinstance(ref.size, int) or ref.size < 0:
                raise InvalidArgument.for_field("artifact size", ref.size, "a non-negative integer")
        created = now_ms()
        with self._tx() as conn:
            self._require_known_run(conn, run_id)
            blobs = {r.sha256: r for r in refs}
            conn.execute(
                self._insert(t.artifacts).on_conflict_do_nothing(index_elements=["sha256"]),
                [{"sha256": r.sha256, "size": r.size, "media_type": r.media_type, "created_at": created} for r in blobs.values()],
            )
            stmt = self._insert(t.run_artifacts)
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["run_id", "path"], set_={"sha256": stmt.excluded.sha256}),
                [{"run_id": run_id, "path": r.path, "sha256": r.sha256} for r in refs],
            )

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        with self._tx(write=False) as conn:
            self._require_run(conn, run_id)
            result = conn.execute(
                select(t.run_artifacts.c.path, t.artifacts.c.sha256, t.artifacts.c.size, t.artifacts.c.media_type)
                .join(t.artifacts, t.artifacts.c.sha256 == t.run_artifacts.c.sha256)
                .where(t.run_artifacts.c.run_id == run_id)
                .order_by(t.run_artifacts.c.path)
            )
            return [ArtifactRef(path=p, sha256=s, size=z, media_type=m) for p, s, z, m in result]

    # search ------------------------------------------------------------------------------
    def _stale_cutoff(self) -> int:
        return now_ms() - int(self.heartbeat_timeout * 1000)

    def _status_condition(self, op: str, value: str) -> Any:
        r = t.runs.c
        cutoff = self._stale_cutoff()
        if value == RunStatus.KILLED.value:
            cond = or_(r.status == value, and_(r.status == RunStatus.RUNNING.value, r.heartbeat < cutoff))
        elif value == RunStatus.RUNNING.value:
            cond = and_(r.status == value, r.heartbeat >= cutoff)
        else:
            cond = r.status == value
        return not_(cond) if op == "!=" else cond

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        clauses = search.parse_filter(filter)
        orders = search.parse_order_by(list(order_by))
        limit = search.check_max_results(max_results)
        offset = search.decode_page_token(page_token)
        r = t.runs.c
        query: Any = select(t.runs)
        if experiment_ids is not None:
            query = query.where(r.experiment_id.in_(list(experiment_ids)))
        for c in clauses:
            op = _OPS[c.op]
            if c.kind == "metric":
                lm = t.latest_metrics.alias()
                query = query.join(lm, and_(lm.c.run_id == r.id, lm.c.key == c.key)).where(op(lm.c.value, c.value))
            elif c.kind == "param":
                p = t.params.alias()
                column = p.c.num if isinstance(c.value, float) else p.c.value
                query = query.join(p, and_(p.c.run_id == r.id, p.c.key == c.key)).where(op(column, c.value))
            elif c.kind == "tag":
                tg = t.tags.alias()
                query = query.join(tg, and_(tg.c.run_id == r.id, tg.c.key == c.key)).where(op(tg.c.value, c.value))
            elif c.key == "status":
                query = query.where(self._status_condition(c.op, str(c.value)))
            elif c.key == "run_id":
                query = query.where(op(r.id, c.value))
            else:
                query = query.where(op(getattr(r, c.key), c.value))
        sort: list[Any] = []
        for o in orders:
            if o.kind == "metric":
                lm = t.latest_metrics.alias()
                query = query.outerjoin(lm, and_(lm.c.run_id == r.id, lm.c.key == o.key))
                cols = [lm.c.value]
            elif o.kind == "param":
                p = t.params.alias()
                query = query.outerjoin(p, and_(p.c.run_id == r.id, p.c.key == o.key))
                cols = [p.c.num, p.c.value]
            elif o.kind == "tag":
                tg = t.tags.alias()
                query = query.outerjoin(tg, and_(tg.c.run_id == r.id, tg.c.key == o.key))
                cols = [tg.c.value]
            else:
                cols = [r.id if o.key == "run_id" else getattr(r, o.key)]
            sort.extend((col.desc() if o.descending else col.asc()).nulls_last() for col in cols)
        sort.extend([r.start_time.desc(), r.id])
        query = query.order_by(*sort).limit(limit + 1).offset(offset)
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
            more = len(rows) > limit
            runs = self._load_runs(conn, rows[:limit])
        return RunPage(runs=runs, next_page_token=search.encode_page_token(offset + limit) if more else None)

    # loading -------------------------------------------------------------------------------
    def _load_runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        ids = [row.id for row in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, LatestMetric]] = {i: {} for i in ids}
        for i in range(0, len(ids), _CHUNK):
            chunk = {"ids": ids[i : i + _CHUNK]}
            for run_id, key, value in conn.execute(q.params_of, chunk):
                params[run_id][key] = value
            for run_id, key, value in conn.execute(q.tags_of, chunk):
                tags[run_id][key] = value
            for run_id, key, value, step, ts in conn.execute(q.latest_of, chunk):
                metrics[run_id][key] = LatestMetric(key, math.nan if value is None else value, step, ts)
        cutoff = self._stale_cutoff()
        runs = []
        for row in rows:
            status = RunStatus(row.status)
            if status is RunStatus.RUNNING and (row.heartbeat or row.start_time) < cutoff:
                status = RunStatus.KILLED
            runs.append(
                Run(
                    id=row.id,
                    experiment_id=row.experiment_id,
                    name=row.name,
                    status=status,
                    start_time=row.start_time,
                    end_time=row.end_time,
                    parent_run_id=row.parent_run_id,
                    heartbeat=row.heartbeat,
                    params=params[row.id],
                    tags=tags[row.id],
                    metrics=metrics[row.id],
                    code=CodeVersion(row.git_commit, row.git_dirty_hash, row.entry_point, row.entry_point_hash),
                    environment=Environment(row.python_version, row.platform, row.packages_hash, row.packages_blob),
                )
            )
        return runs

    def close(self) -> None:
        self.engine.dispose()


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
