"""Run search compiled to SQL: parsed filter clauses and order keys (``keel.store.metadata.search``) to one SELECT."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import LargeBinary, and_, false, literal, not_, or_, select

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
# the part of a search a query of it returns, split by its first sort key (``walk_parts``)
Leading = Literal["any", "with", "text", "without"]
# a filter matching at least this many runs is broad: walking the sort key's index finds a page's runs sooner than
# sorting every match (a narrower one is cheaper to sort than to look for along the index)
BROAD = 2000


def status_condition(op: str, value: str, stale_cutoff: int) -> Any:
    """``status = value`` (or ``!=``) as runs read: a ``running`` run silent since before ``stale_cutoff`` is ``killed``."""
    if value == RunStatus.KILLED.value:
        cond = or_(_r.status == value, and_(_r.status == RunStatus.RUNNING.value, _r.heartbeat < stale_cutoff))
    elif value == RunStatus.RUNNING.value:
        cond = and_(_r.status == value, _r.heartbeat >= stale_cutoff)
    else:
        cond = _r.status == value
    return not_(cond) if op == "!=" else cond


@dataclass(frozen=True, slots=True)
class SortColumn:
    """One column of a search's order: ``kind`` is the type of its values ("float", "int" or "str") in a cursor."""

    column: Any
    descending: bool
    kind: str


def search_query(
    experiment_ids: Sequence[int] | None,
    clauses: Sequence[search.Clause],
    orders: Sequence[search.OrderKey],
    *,
    stale_cutoff: int,
    view: ViewType = ViewType.ACTIVE,
    leading: Leading = "any",
) -> tuple[Any, list[SortColumn]]:
    """SELECT of ``runs`` rows matching every clause, in the given order (then newest first, then id), and the columns
    it sorts by, selected too as ``_k0``, ``_k1``... (a page's cursor is the last row's values of them); ``view``:
    live runs, deleted ones (deleted themselves or in a deleted experiment) or all.

    ``leading`` names a part of a search split by its first key (see ``walk_parts``): ``"with"`` the runs that
    have a value of it (for a param: a number), joined so that its index can drive the scan in the sort's order,
    ``"text"`` the runs whose param is text, ``"without"`` the others; ``"any"`` is the one query."""
    query: Any = select(t.runs)
    if experiment_ids is not None:
        query = query.where(_r.experiment_id.in_(list(experiment_ids)))
    if view is not ViewType.ALL:
        deleted = or_(_r.deleted_at.is_not(None), _r.experiment_id.in_(experiments.DELETED_IDS))
        query = query.where(deleted if view is ViewType.DELETED else not_(deleted))
    for c in clauses:
        query = _filtered(query, c, stale_cutoff)
    columns: list[SortColumn] = []
    for n, o in enumerate(orders):
        query, cols = _ordered(query, o, leading if n == 0 else "any")
        columns.extend(SortColumn(col, o.descending, kind) for col, kind in cols)
    # the tiebreakers: the id is unique, so every row has its own place and a cursor names one position
    columns += [SortColumn(_r.start_time, True, "int"), SortColumn(_r.id, False, "str")]
    query = query.add_columns(*(c.column.label(f"_k{i}") for i, c in enumerate(columns)))
    sort = [(c.column.desc() if c.descending else c.column.asc()).nulls_last() for c in columns]
    return query.order_by(*sort), columns


def cursor_of(row: Any, columns: Sequence[SortColumn]) -> list[Any]:
    """The sort-key values of ``row`` (selected by ``search_query``): what the next page starts after."""
    return [getattr(row, f"_k{i}") for i in range(len(columns))]


def walk_parts(dialect: str, orders: Sequence[search.OrderKey]) -> tuple[Leading, ...]:
    """The parts, in the sort's order, of a broad search that walks an index in that order; () for the one query.

    SQLite's planner has no histograms: for a filter on a metric it scans that metric's index and sorts every match
    before the first row comes out (0.3 to 0.7 s at 100,000 runs). When the filter matches many runs (``BROAD``),
    walking the sort key's index and stopping at the page's end is much cheaper; a range on the sort column is what
    makes the planner take that path (``walk_range``). On SQLite, by the first key:

    - start time (or no order: newest first): one part along ``(experiment_id, start_time)``;
    - a metric: the runs with a value of it along ``(key, value)`` of latest values, then the runs without;
    - a param: the runs whose value is a number along ``(key, num, value)``, then those whose value is text along the
      same index (``num IS NULL``), then the runs without it: numbers before text, as ``ORDER BY num, value`` sorts;
    - a tag: the runs with it along ``(key, value)``, then the runs without.

    Missing values are last in either direction, as in the one query. PostgreSQL, with its statistics, plans this by
    itself."""
    if dialect != "sqlite":
        return ()
    if not orders or (orders[0].kind == "attr" and orders[0].key == "start_time"):
        return ("any",)
    return _PARTS.get(orders[0].kind, ())


_PARTS: dict[str, tuple[Leading, ...]] = {
    "metric": ("with", "without"),
    "param": ("with", "text", "without"),
    "tag": ("with", "without"),
}


def part_of(parts: Sequence[Leading], cursor: Sequence[Any] | None) -> int:
    """The index in ``parts`` (``walk_parts``) of the part that holds the cursor's row: where the next page starts."""
    if cursor is None or parts[0] == "any" or cursor[0] is not None:
        return 0
    if parts[1] == "text" and cursor[1] is not None:  # a param's number is NULL: text, unless its text is too
        return 1
    return len(parts) - 1


def walk_range(part: Leading, columns: Sequence[SortColumn], cursor: Sequence[Any] | None) -> Any:
    """The range that makes the planner walk the index of ``part`` (from ``cursor`` when it is in that part), or None
    for the part without the key."""
    if part == "without":
        return None
    n = 1 if part == "text" else 0  # a param's text part is in the order of its text
    return index_range(columns[n], None if cursor is None else cursor[n])


# every text is >= '' and, in SQLite, below every BLOB (x''): two ends that bound any text in a range
_BOUNDS = {"float": (-math.inf, math.inf), "int": (-(2**63) + 1, 2**63 - 1), "str": ("", literal(b"", LargeBinary))}


def index_range(column: SortColumn, value: Any) -> Any:
    """A two-sided range on a sort column, from the cursor's ``value`` (or the end) to the far end, which the planner
    takes as a reason to walk its index (``rows_after`` then decides exactly: an ``OR`` is no range). SQLite only:
    the upper end of a text column is a BLOB."""
    low, high = _BOUNDS[column.kind]
    if column.descending:
        return and_(column.column >= low, column.column <= (high if value is None else value))
    return and_(column.column >= (low if value is None else value), column.column <= high)


def rows_after(columns: Sequence[SortColumn], values: Sequence[Any]) -> Any:
    """The rows strictly after the cursor ``values`` in the order of ``columns``, NULLs last in both directions:
    ``(a, b, ...) > (va, vb, ...)`` written out, since row-value comparisons cannot mix directions nor place NULLs."""
    alternatives = []
    for i, (col, value) in enumerate(zip(columns, values, strict=True)):
        if value is not None:  # nothing sorts after NULL in a column: NULLs are last
            beyond = col.column < value if col.descending else col.column > value
            ties = [c.column.is_(None) if v is None else c.column == v for c, v in zip(columns[:i], values[:i], strict=True)]
            alternatives.append(and_(*ties, or_(beyond, col.column.is_(None))))
    return or_(*alternatives) if alternatives else false()


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
    return query.where(op(_attribute(c.key), c.value))


_TIMES = ("start_time", "end_time", "duration")


def _ordered(query: Any, o: search.OrderKey, leading: Leading = "any") -> tuple[Any, list[tuple[Any, str]]]:
    """``query`` joined to what ``o`` sorts on, and the columns to sort by with the type of their values."""
    if o.kind == "metric":
        lm = t.latest_metrics.alias()
        on = and_(lm.c.run_id == _r.id, lm.c.key == o.key)
        if leading == "with":  # an inner join: the metric's (key, value) index can then drive the scan
            return query.join(lm, on), [(lm.c.value, "float")]
        if leading == "without":
            return query.outerjoin(lm, on).where(lm.c.value.is_(None)), [(lm.c.value, "float")]
        return query.outerjoin(lm, on), [(lm.c.value, "float")]
    if o.kind == "param":  # numbers in numeric order, then text in text order
        p = t.params.alias()
        on, cols = and_(p.c.run_id == _r.id, p.c.key == o.key), [(p.c.num, "float"), (p.c.value, "str")]
        if leading == "with":  # inner joins: the (key, num, value) index can then drive the scan
            return query.join(p, on), cols
        if leading == "text":
            return query.join(p, on).where(p.c.num.is_(None)), cols
        if leading == "without":
            return query.outerjoin(p, on).where(p.c.value.is_(None)), cols
        return query.outerjoin(p, on), cols
    if o.kind == "tag":
        tg = t.tags.alias()
        on = and_(tg.c.run_id == _r.id, tg.c.key == o.key)
        if leading == "with":
            return query.join(tg, on), [(tg.c.value, "str")]
        if leading == "without":
            return query.outerjoin(tg, on).where(tg.c.value.is_(None)), [(tg.c.value, "str")]
        return query.outerjoin(tg, on), [(tg.c.value, "str")]
    return query, [(_attribute(o.key), "int" if o.key in _TIMES else "str")]


def _attribute(key: str) -> Any:
    """The column (or expression) of a run attribute of the search grammar."""
    if key == "run_id":
        return _r.id
    if key == "duration":
        return _r.end_time - _r.start_time
    return getattr(_r, key)
