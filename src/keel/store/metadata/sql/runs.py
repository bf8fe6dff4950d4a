"""Runs on the SQL backend: their lifecycle, params, tags, loading, and search.

The run lifecycle (create, params, end, load) uses statements built once at module level, so a
small run stays well under a millisecond of keel overhead; the param insert, run for every
``log_params``, is one of the hot statements run as compiled driver SQL (``Database.compiled``).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import (
    CodeVersion,
    Environment,
    LatestMetric,
    Run,
    RunKind,
    RunPage,
    RunStatus,
    StepInfo,
    TrialInfo,
    TrialState,
    ViewType,
)
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata import search
from keel.store.metadata.base import MetricRow, check_batch_id, check_run_kind, check_trial_result
from keel.store.metadata.search import Clause, OrderKey
from keel.store.metadata.sql import experiments
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect, chunks
from keel.store.metadata.sql.run_search import (
    BROAD,
    Leading,
    cursor_of,
    part_of,
    rows_after,
    search_query,
    status_condition,
    walk_parts,
    walk_range,
)

if TYPE_CHECKING:
    from keel.store.metadata.sql.metrics import SqlMetricStore

PARAM_COLUMNS = ("run_id", "key", "value", "num")
_r = t.runs.c
_run_status = select(_r.status).where(_r.id == bindparam("run_id"))
_run_row = select(t.runs).where(_r.id == bindparam("run_id"))
_run_pks = select(_r.id, _r.pk).where(_r.id.in_(bindparam("ids", expanding=True)))
_insert_run = t.runs.insert()
_insert_tags = t.tags.insert()
_insert_params = t.params.insert()
_insert_new_params_by_dialect = by_dialect(lambda insert: insert(t.params).on_conflict_do_nothing())


def _upsert_tags(insert: Any) -> Any:
    stmt = insert(t.tags)
    return stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value})


_upsert_tags_by_dialect = by_dialect(_upsert_tags)
_existing_params = select(t.params.c.key, t.params.c.value).where(
    t.params.c.run_id == bindparam("run_id"), t.params.c.key.in_(bindparam("keys", expanding=True))
)
_existing_tags = select(t.tags.c.key, t.tags.c.value).where(
    t.tags.c.run_id == bindparam("run_id"), t.tags.c.key.in_(bindparam("keys", expanding=True))
)
_end_run = (
    t.runs.update()
    .where(_r.id == bindparam("run_id"), _r.status == RunStatus.RUNNING.value)
    .values(status=bindparam("status"), end_time=bindparam("end_time"), heartbeat=bindparam("end_time"))
)
_heartbeat = (
    t.runs.update()
    .where(_r.id.in_(bindparam("ids", expanding=True)), _r.status == RunStatus.RUNNING.value)
    .values(heartbeat=bindparam("moment"))
)
_params_of = select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(
    t.params.c.run_id.in_(bindparam("ids", expanding=True))
)
_tags_of = select(t.tags.c.run_id, t.tags.c.key, t.tags.c.value).where(t.tags.c.run_id.in_(bindparam("ids", expanding=True)))
_set_trial_result = (
    t.runs.update()
    .where(_r.id == bindparam("run_id"), _r.kind == RunKind.TRIAL.value)
    .values(trial_state=bindparam("state"), trial_value=bindparam("value"))
)
_ex = t.experiments.c
_liveness = (
    select(_r.id, _r.deleted_at, _ex.deleted_at.label("experiment_deleted_at"), _r.experiment_id)
    .join(t.experiments, _ex.id == _r.experiment_id)
    .where(_r.id.in_(bindparam("ids", expanding=True)))
)
_deleted_experiments = select(_ex.id, _ex.deleted_at).where(
    _ex.id.in_(bindparam("ids", expanding=True)), _ex.deleted_at.is_not(None)
)
_run_deletion = (
    select(_r.deleted_at, _r.experiment_id, _ex.deleted_at.label("experiment_deleted_at"))
    .join(t.experiments, _ex.id == _r.experiment_id)
    .where(_r.id == bindparam("run_id"))
)
_set_deleted = t.runs.update().where(_r.id.in_(bindparam("ids", expanding=True))).values(deleted_at=bindparam("moment"))
_lm = t.latest_metrics.c
_latest_of = select(_lm.run_id, _lm.key, _lm.value, _lm.step, _lm.timestamp).where(
    _lm.run_id.in_(bindparam("ids", expanding=True))
)


def run_status(conn: Connection, run_id: str) -> str | None:
    """The stored status of ``run_id`` (not corrected for a stale heartbeat), None when there is no such run."""
    if not isinstance(run_id, str):
        raise InvalidArgument.for_field("run_id", run_id, "a run id string")
    return conn.execute(_run_status, {"run_id": run_id}).scalar()


def require_run(conn: Connection, run_id: str) -> str:
    """The stored status of ``run_id``; ``NotFound`` when there is no such run."""
    status = run_status(conn, run_id)
    if status is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return status


def check_writable(conn: Connection, run_ids: Iterable[str]) -> None:
    """In a write transaction: ``NotFound`` unless every run exists, ``Conflict`` when one is deleted (or its
    experiment is): a deleted run is read-only until it is restored."""
    ids = list(dict.fromkeys(run_ids))
    for run_id in ids:
        if not isinstance(run_id, str):
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
    found = {}
    for chunk in chunks(ids):
        found.update({row.id: row for row in conn.execute(_liveness, {"ids": chunk})})
    for run_id in ids:
        row = found.get(run_id)
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        if row.deleted_at is not None:
            raise Conflict(
                f"run {run_id} is deleted, so it cannot be written to: restore it first (keel runs restore {run_id[:12]})"
            )
        if row.experiment_deleted_at is not None:
            raise Conflict(
                f"run {run_id} is in experiment {row.experiment_id}, which is deleted, so it cannot be written to: "
                "restore the experiment first (keel experiments restore)"
            )


class RunKeys:
    """Integer keys of runs (``runs.pk``) by id, cached: a run's key never changes (a purged run's stays cached, but
    every write checks its run exists first: ``check_writable``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pks: dict[str, int] = {}

    def remember(self, run_id: str, pk: int) -> None:
        self._pks[run_id] = pk

    def require_known(self, conn: Connection, run_id: str) -> None:
        """``require_run``, skipped for runs this store has seen."""
        if run_id not in self._pks:
            require_run(conn, run_id)

    def pks(self, run_ids: set[Any]) -> Mapping[str, int]:
        """A mapping holding the key of every run of ``run_ids`` (in its own read transaction). Raises ``NotFound``."""
        unknown = [r for r in run_ids if r not in self._pks]
        if unknown:
            for run_id in unknown:
                if not isinstance(run_id, str):
                    raise InvalidArgument.for_field("run_id", run_id, "a run id string")
            with self.db.transaction(write=False) as conn:
                for chunk in chunks(unknown):
                    self._pks.update(conn.execute(_run_pks, {"ids": chunk}).all())
            missing = run_ids - self._pks.keys()
            if missing:
                raise NotFound(f"run {sorted(missing)[0]!r} does not exist")
        return self._pks


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def tag_rows(run_id: str, tags: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(tags, Mapping):
        raise InvalidArgument.for_field("tags", tags, "a mapping of key to value")
    return [{"run_id": run_id, "key": v.check_key(k, "tag key"), "value": v.tag_to_str(k, val)} for k, val in tags.items()]


def param_rows(run_id: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(params, Mapping):
        raise InvalidArgument.for_field("params", params, "a mapping of key to value")
    rows = []
    for k, val in params.items():
        text = v.param_to_str(v.check_key(k, "param key"), val)
        rows.append({"run_id": run_id, "key": k, "value": text, "num": _as_number(text)})
    return rows


def _trial_params_json(trial: TrialInfo | None) -> str | None:
    if trial is None:
        return None
    try:
        return json.dumps(dict(trial.params), allow_nan=True)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field("trial params", trial.params, "values JSON can hold") from None


def _trial_of(row: Any) -> TrialInfo | None:
    if row.kind != RunKind.TRIAL.value or row.trial_number is None:
        return None
    state = TrialState(row.trial_state) if row.trial_state is not None else None
    value = row.trial_value
    if value is None and state is TrialState.COMPLETE:
        value = math.nan  # stored as NULL
    return TrialInfo(row.trial_number, json.loads(row.trial_params or "{}"), state, value)


class SqlRunStore:
    """Runs, their params and tags; ending a run also stores its last metrics (``SqlMetricStore``)."""

    def __init__(self, db: Database, keys: RunKeys, metrics: SqlMetricStore, heartbeat_timeout: float) -> None:
        self.db = db
        self.keys = keys
        self.metrics = metrics
        self.heartbeat_timeout = heartbeat_timeout
        self._insert_new_params_sql = db.compiled(db.pick(_insert_new_params_by_dialect), PARAM_COLUMNS)
        self._upsert_tags = db.pick(_upsert_tags_by_dialect)

    def stale_cutoff(self) -> int:
        """Runs ``running`` whose heartbeat is older than this (ms) read as killed."""
        return now_ms() - int(self.heartbeat_timeout * 1000)

    def create(
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
        kind: RunKind = RunKind.RUN,
        step: StepInfo | None = None,
        trial: TrialInfo | None = None,
    ) -> Run:
        kind, step, trial = check_run_kind(kind, step, trial)
        trial_params = _trial_params_json(trial)
        run_id = uuid.uuid4().hex
        name = v.check_name(name, "run name") if name else f"run-{run_id[:8]}"
        tag_list = tag_rows(run_id, tags or {})
        param_list = param_rows(run_id, params or {})
        start = v.check_timestamp(start_time) if start_time is not None else now_ms()
        code = code or CodeVersion()
        env = environment or Environment()
        with self.db.transaction() as conn:
            experiment = conn.execute(experiments.DELETED_AT, {"experiment_id": experiment_id}).first()
            if experiment is None:
                raise NotFound(f"experiment {experiment_id} does not exist")
            if experiment.deleted_at is not None:
                raise Conflict(
                    f"experiment {experiment_id} is deleted: restore it (keel experiments restore) or use another experiment"
                )
            if parent_run_id is not None:
                if run_status(conn, parent_run_id) is None:
                    raise NotFound(f"parent run {parent_run_id!r} does not exist")
                check_writable(conn, [parent_run_id])  # a deleted run gets no new children
            if step is not None and step.cached_from is not None and run_status(conn, step.cached_from) is None:
                raise NotFound(f"run {step.cached_from!r} (the run a cached step reuses) does not exist")
            result = conn.execute(
                _insert_run,
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
                    kind=kind.value,
                    step_name=step.name if step else None,
                    cache_key=step.cache_key if step else None,
                    cached_from=step.cached_from if step else None,
                    trial_number=trial.number if trial else None,
                    trial_params=trial_params,
                    trial_state=None,
                    trial_value=None,
                ),
            )
            pk = result.inserted_primary_key[0]  # type: ignore[index]
            if tag_list:
                conn.execute(_insert_tags, tag_list)
            if param_list:
                conn.execute(_insert_params, param_list)
            append_event(conn, "runs.create", "run", run_id, None, {
                "name": name, "experiment_id": experiment_id, "parent_run_id": parent_run_id, "kind": kind.value,
                "step": step.name if step else None, "trial": trial.number if trial else None,
                "params": sorted(r["key"] for r in param_list), "tags": {r["key"]: r["value"] for r in tag_list},
            })  # fmt: skip
        self.keys.remember(run_id, pk)
        return Run(
            id=run_id,
            experiment_id=experiment_id,
            name=name,
            status=RunStatus.RUNNING,
            start_time=start,
            parent_run_id=parent_run_id,
            heartbeat=start,
            params={r["key"]: r["value"] for r in param_list},
            tags={r["key"]: r["value"] for r in tag_list},
            code=code,
            environment=env,
            kind=kind,
            step=step,
            trial=TrialInfo(trial.number, json.loads(trial_params)) if trial is not None and trial_params is not None else None,
        )

    def set_trial_result(self, run_id: str, state: TrialState, value: float | None = None) -> None:
        state, value = check_trial_result(state, value)
        stored = None if value is not None and math.isnan(value) else value  # NULL reads back as NaN (SQLite has none)
        with self.db.transaction() as conn:
            check_writable(conn, [run_id])
            updated = conn.execute(_set_trial_result, {"run_id": run_id, "state": state.value, "value": stored}).rowcount
            if updated != 1:
                require_run(conn, run_id)
                raise InvalidArgument.for_field("run_id", run_id, "the id of a trial run")
            append_event(conn, "runs.set_trial_result", "run", run_id, None, {"state": state.value, "value": stored})

    def children(self, parent_run_id: str, *, status: RunStatus | None = None, kind: RunKind | None = None) -> list[Run]:
        query = select(t.runs).where(_r.parent_run_id == parent_run_id)
        if status is not None:
            try:
                status = RunStatus(status)
            except ValueError:
                raise InvalidArgument.for_field("status", status, "a run status") from None
            query = query.where(status_condition("=", status.value, self.stale_cutoff()))
        if kind is not None:
            query = query.where(_r.kind == check_run_kind(kind, None, None)[0].value)
        with self.db.transaction(write=False) as conn:
            require_run(conn, parent_run_id)
            return self.load(conn, conn.execute(query.order_by(_r.start_time, _r.pk)).all())

    def latest(self, experiment_id: int, *, kind: RunKind, name: str) -> Run | None:
        kind = check_run_kind(kind, None, None)[0]
        if not isinstance(name, str):
            raise InvalidArgument.for_field("name", name, "a run name")
        query = (
            select(t.runs)
            .where(_r.experiment_id == experiment_id, _r.kind == kind.value, _r.name == name, _r.deleted_at.is_(None))
            .order_by(_r.start_time.desc(), _r.pk.desc())
            .limit(1)
        )
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(query).all()
            return self.load(conn, rows)[0] if rows else None

    def get(self, run_id: str) -> Run:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_run_row, {"run_id": run_id}).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            return self.load(conn, [row])[0]

    def end(
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
        prepared = self.metrics.prepare(metrics) if metrics else None
        with self.db.transaction() as conn:
            if batch_id is not None and not self.metrics.claim_batch(conn, batch_id):
                return  # a resend of an end that was applied: done already
            check_writable(conn, [run_id])
            if prepared is not None:
                self.metrics.write(conn, prepared)
            updated = conn.execute(_end_run, {"run_id": run_id, "status": status.value, "end_time": end}).rowcount
            if updated != 1:
                current = require_run(conn, run_id)
                raise Conflict(f"run {run_id!r} has already ended as {current}")
            after = {"status": status.value, "end_time": end, "metrics": len(metrics)}
            append_event(conn, "runs.end", "run", run_id, {"status": RunStatus.RUNNING.value}, after)

    def heartbeat(self, run_ids: Sequence[str], time_ms: int | None = None) -> None:
        if not run_ids:
            return
        moment = v.check_timestamp(time_ms) if time_ms is not None else now_ms()
        with self.db.transaction() as conn:
            conn.execute(_heartbeat, {"ids": list(run_ids), "moment": moment})

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        rows = param_rows(run_id, params)
        if not rows:
            return
        with self.db.transaction() as conn:
            check_writable(conn, [run_id])
            # Insert what is new; only when some key already existed, compare values (and roll
            # everything back on a difference). The common case is one statement.
            inserted = conn.exec_driver_sql(
                self._insert_new_params_sql, [(r["run_id"], r["key"], r["value"], r["num"]) for r in rows]
            ).rowcount
            if inserted != len(rows):
                existing = dict(conn.execute(_existing_params, {"run_id": run_id, "keys": [r["key"] for r in rows]}).all())
                for r in rows:
                    if r["key"] in existing and existing[r["key"]] != r["value"]:
                        raise Conflict(
                            f"param {r['key']!r} of run {run_id} is already {existing[r['key']]!r}; "
                            f"it cannot be changed to {r['value']!r} (params are immutable; log a new run)"
                        )
            if inserted:  # values are immutable and stay in the run: the keys say what was logged
                append_event(conn, "runs.log_params", "run", run_id, None, {"params": sorted(r["key"] for r in rows)})

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        rows = tag_rows(run_id, tags)
        if not rows:
            return
        with self.db.transaction() as conn:
            check_writable(conn, [run_id])
            keys = [r["key"] for r in rows]
            before = dict(conn.execute(_existing_tags, {"run_id": run_id, "keys": keys}).all())
            conn.execute(self._upsert_tags, rows)
            after = {r["key"]: r["value"] for r in rows}
            append_event(conn, "runs.set_tags", "run", run_id, {k: before.get(k) for k in after}, after)

    def search(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE,
    ) -> RunPage:
        clauses = search.parse_filter(filter)
        orders = search.parse_order_by(list(order_by))
        limit = search.check_max_results(max_results)
        view = search.check_view(view)
        fingerprint = search.order_fingerprint(orders)
        cutoff = self.stale_cutoff()
        query, columns = search_query(experiment_ids, clauses, orders, stale_cutoff=cutoff, view=view)
        start = search.decode_page_token(page_token, fingerprint, [c.kind for c in columns])
        if start is not None:
            query = query.where(rows_after(columns, start))
        rows: Sequence[Any]
        with self.db.transaction(write=False) as conn:
            parts = walk_parts(self.db.dialect, orders)
            if parts and self._broad(conn, query):
                rows = self._walk(conn, parts, experiment_ids, clauses, orders, cutoff, view, start, limit + 1)
            else:
                rows = conn.execute(query.limit(limit + 1)).all()
            more = len(rows) > limit
            runs = self.load(conn, rows[:limit])
        token = search.encode_page_token(cursor_of(rows[limit - 1], columns), fingerprint) if more else None
        return RunPage(runs=runs, next_page_token=token)

    @staticmethod
    def _broad(conn: Connection, query: Any) -> bool:
        """Whether ``query`` matches at least ``BROAD`` runs: counted no further, so cheap either way."""
        probe = select(func.count()).select_from(query.order_by(None).with_only_columns(_r.id).limit(BROAD).subquery())
        return bool(conn.execute(probe).scalar_one() >= BROAD)

    @staticmethod
    def _walk(
        conn: Connection,
        parts: tuple[Leading, ...],
        experiment_ids: Sequence[int] | None,
        clauses: Sequence[Clause],
        orders: Sequence[OrderKey],
        cutoff: int,
        view: ViewType,
        start: list[Any] | None,
        wanted: int,
    ) -> list[Any]:
        """The rows of a broad search on SQLite (``walk_parts``): from the part that holds the cursor, each part along
        its index, until the page is full (a part's rows all sort before the next part's)."""
        rows: list[Any] = []
        first = part_of(parts, start)
        for n, part in enumerate(parts[first:], first):
            query, columns = search_query(experiment_ids, clauses, orders, stale_cutoff=cutoff, view=view, leading=part)
            cursor = start if n == first else None
            in_range = walk_range(part, columns, cursor)
            if in_range is not None:
                query = query.where(in_range)
            if cursor is not None:
                query = query.where(rows_after(columns, cursor))
            rows += conn.execute(query.limit(wanted - len(rows))).all()
            if len(rows) >= wanted:
                break
        return rows

    def delete(self, run_id: str) -> None:
        """Soft-delete ``run_id`` and its descendants still live, all with the same moment (what ``restore`` undoes)."""
        moment = now_ms()
        with self.db.transaction() as conn:
            row = self._deletion(conn, run_id)
            if row.deleted_at is not None:
                raise Conflict(f"run {run_id} is deleted already")
            ids = [run_id, *self._descendants(conn, run_id, lambda c: c.is_(None))]
            for chunk in chunks(ids):
                conn.execute(_set_deleted, {"ids": chunk, "moment": moment})
            append_event(conn, "runs.delete", "run", run_id, {"deleted_at": None}, {"deleted_at": moment, "runs": len(ids)})

    def restore(self, run_id: str) -> None:
        """Restore ``run_id`` and the descendants its deletion hid (those deleted at the same moment)."""
        with self.db.transaction() as conn:
            row = self._deletion(conn, run_id)
            if row.experiment_deleted_at is not None:
                raise Conflict(
                    f"run {run_id} is in experiment {row.experiment_id}, which is deleted: restore the experiment instead"
                )
            if row.deleted_at is None:
                raise Conflict(f"run {run_id} is not deleted: there is nothing to restore")
            moment = row.deleted_at
            ids = [run_id, *self._descendants(conn, run_id, lambda c: c == moment)]
            for chunk in chunks(ids):
                conn.execute(_set_deleted, {"ids": chunk, "moment": None})
            append_event(conn, "runs.restore", "run", run_id, {"deleted_at": moment}, {"deleted_at": None, "runs": len(ids)})

    @staticmethod
    def _deletion(conn: Connection, run_id: str) -> Any:
        if not isinstance(run_id, str):
            raise InvalidArgument.for_field("run_id", run_id, "a run id string")
        row = conn.execute(_run_deletion, {"run_id": run_id}).first()
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return row

    @staticmethod
    def _descendants(conn: Connection, run_id: str, deleted: Any) -> list[str]:
        """Children, grandchildren... of ``run_id`` whose ``deleted_at`` matches ``deleted`` (a column condition);
        the walk stops at a child that does not match (its own subtree was deleted at another moment)."""
        found: list[str] = []
        frontier = [run_id]
        while frontier:
            children: list[str] = []
            for chunk in chunks(frontier):
                query = select(_r.id).where(_r.parent_run_id.in_(chunk), deleted(_r.deleted_at))
                children += conn.execute(query).scalars().all()
            found += children
            frontier = children
        return found

    def load(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        """Runs of ``runs`` rows, with their params, tags and latest metrics, statuses corrected for stale heartbeats."""
        ids = [row.id for row in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, LatestMetric]] = {i: {} for i in ids}
        for chunk in chunks(ids):
            for run_id, key, value in conn.execute(_params_of, {"ids": chunk}):
                params[run_id][key] = value
            for run_id, key, value in conn.execute(_tags_of, {"ids": chunk}):
                tags[run_id][key] = value
            for run_id, key, value, step, ts in conn.execute(_latest_of, {"ids": chunk}):
                metrics[run_id][key] = LatestMetric(key, math.nan if value is None else value, step, ts)
        experiment_ids = list({row.experiment_id for row in rows})
        deleted_experiments: dict[int, int] = {}
        for chunk in chunks(experiment_ids):
            deleted_experiments.update((i, d) for i, d in conn.execute(_deleted_experiments, {"ids": chunk}))
        cutoff = self.stale_cutoff()
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
                    kind=RunKind(row.kind),
                    step=StepInfo(row.step_name, row.cache_key, row.cached_from)
                    if row.kind == RunKind.STEP.value and row.step_name is not None and row.cache_key is not None
                    else None,
                    trial=_trial_of(row),
                    deleted_at=row.deleted_at if row.deleted_at is not None else deleted_experiments.get(row.experiment_id),
                )
            )
        return runs
