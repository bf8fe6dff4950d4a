"""Run search compiled to SQL: parsed filter clauses and order keys (``keel.store.metadata.search``) to one SELECT."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, not_, or_, select

from keel.core.entities import RunStatus, ViewType
from keel.store.metadata import search
from keel.store.metadata.sql import experiments
from keel.store.metadata.sql import schema as t

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "like": lambda col, val: col.like(val),
}
_r = t.runs.c


def status_condition(op: str, value: str, stale_cutoff: int) -> Any:
    """``status = value`` (or ``!=``) as runs read: a ``running`` run silent since before ``stale_cutoff`` is ``killed``."""
    if value == RunStatus.KILLED.value:
        cond = or_(_r.status == value, and_(_r.status == RunStatus.RUNNING.value, _r.heartbeat < stale_cutoff))
    elif value == RunStatus.RUNNING.value:
        cond = and_(_r.status == value, _r.heartbeat >= stale_cutoff)
    else:
        cond = _r.status == value
    return not_(cond) if op == "!=" else cond


def search_query(
    experiment_ids: Sequence[int] | None,
    clauses: Sequence[search.Clause],
    orders: Sequence[search.OrderKey],
    *,
    stale_cutoff: int,
    view: ViewType = ViewType.ACTIVE,
) -> Any:
    """SELECT of ``runs`` rows matching every clause, in the given order (then newest first, then id); ``view``:
    live runs, deleted ones (deleted themselves or in a deleted experiment) or all."""
    query: Any = select(t.runs)
    if experiment_ids is not None:
        query = query.where(_r.experiment_id.in_(list(experiment_ids)))
    if view is not ViewType.ALL:
        deleted = or_(_r.deleted_at.is_not(None), _r.experiment_id.in_(experiments.DELETED_IDS))
        query = query.where(deleted if view is ViewType.DELETED else not_(deleted))
    for c in clauses:
        query = _filtered(query, c, stale_cutoff)
    sort: list[Any] = []
    for o in orders:
        query, cols = _ordered(query, o)
        sort.extend((col.desc() if o.descending else col.asc()).nulls_last() for col in cols)
    sort.extend([_r.start_time.desc(), _r.id])
    return query.order_by(*sort)


def _filtered(query: Any, c: search.Clause, stale_cutoff: int) -> Any:
    op = OPS[c.op]
    if c.kind == "metric":
        lm = t.latest_metrics.alias()
        return query.join(lm, and_(lm.c.run_id == _r.id, lm.c.key == c.key)).where(op(lm.c.value, c.value))
    if c.kind == "param":
        p = t.params.alias()
        column = p.c.num if isinstance(c.value, float) else p.c.value
        return query.join(p, and_(p.c.run_id == _r.id, p.c.key == c.key)).where(op(column, c.value))
    if c.kind == "tag":
        tg = t.tags.alias()
        return query.join(tg, and_(tg.c.run_id == _r.id, tg.c.key == c.key)).where(op(tg.c.value, c.value))
    if c.key == "status":
        return query.where(status_condition(c.op, str(c.value), stale_cutoff))
    if c.key == "run_id":
        return query.where(op(_r.id, c.value))
    return query.where(op(getattr(_r, c.key), c.value))


def _ordered(query: Any, o: search.OrderKey) -> tuple[Any, list[Any]]:
    """``query`` joined to what ``o`` sorts on, and the columns to sort by."""
    if o.kind == "metric":
        lm = t.latest_metrics.alias()
        return query.outerjoin(lm, and_(lm.c.run_id == _r.id, lm.c.key == o.key)), [lm.c.value]
    if o.kind == "param":
        p = t.params.alias()
        return query.outerjoin(p, and_(p.c.run_id == _r.id, p.c.key == o.key)), [p.c.num, p.c.value]
    if o.kind == "tag":
        tg = t.tags.alias()
        return query.outerjoin(tg, and_(tg.c.run_id == _r.id, tg.c.key == o.key)), [tg.c.value]
    return query, [_r.id if o.key == "run_id" else getattr(_r, o.key)]
