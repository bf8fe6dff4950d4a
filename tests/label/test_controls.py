"""The controls an annotator could try to get around: a request id reused for another answer, held tasks of an
excluded annotator, gold handed out when no real task is left, the answer column shown, gold met in one order by all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import keel.data
import keel.label
from keel.context import Context
from keel.core.actor import acting_as
from keel.core.errors import Conflict, InvalidArgument, PermissionDenied


@pytest.fixture(params=["sqlite", "postgres"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    if request.param == "sqlite":
        context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    else:
        context = Context(str(request.getfixturevalue("pg_store_url")), str(tmp_path / "artifacts"))
    yield context
    context.close()


def _project(ctx: Context, rows: int, *, gold_every: int = 0, overlap: int = 1, gold_rate: float = 0.0) -> str:
    name = f"ctl-{uuid.uuid4().hex[:8]}"
    known = [("a" if i % 2 else "b") if gold_every and i % gold_every == 0 else None for i in range(rows)]
    frame = pd.DataFrame({"text": [f"row {i}" for i in range(rows)], "known": known})
    version = keel.data.log(frame, f"{name}-data", run=False, ctx=ctx)
    keel.label.create_project(name, version.ref, classes=["a", "b"], guideline="g", overlap=overlap,
                              gold="known" if gold_every else None, gold_rate=gold_rate, ctx=ctx)  # fmt: skip
    return name


def test_a_request_id_reused_for_another_answer_is_refused_not_ignored(ctx: Context) -> None:
    name = _project(ctx, 4, overlap=2)
    with acting_as("ana"):
        first = keel.label.next_task(name, ctx=ctx)
        assert first is not None
        keel.label.submit(name, first.item, "a", request_id="r1", ctx=ctx)
        assert keel.label.submit(name, first.item, "a", request_id="r1", ctx=ctx).item == first.item  # a retry
        second = keel.label.next_task(name, ctx=ctx)
        assert second is not None
        with pytest.raises(Conflict, match="request id 'r1' was used by 'ana' for item"):
            keel.label.submit(name, second.item, "b", request_id="r1", ctx=ctx)
        with pytest.raises(Conflict, match="request id 'r1'"):
            keel.label.submit(name, first.item, "b", request_id="r1", ctx=ctx)  # the same item, another answer
        keel.label.submit(name, second.item, "b", request_id="r2", ctx=ctx)
    assert len(keel.label.annotations_of(name, ctx=ctx)) == 2


def test_excluding_an_annotator_frees_the_tasks_they_hold_at_once(ctx: Context) -> None:
    name = _project(ctx, 1)
    with acting_as("spam"):
        held = keel.label.next_task(name, ctx=ctx)
    assert held is not None
    with acting_as("bob"):
        assert keel.label.next_task(name, ctx=ctx) is None  # the only item is leased
    keel.label.exclude(name, "spam", "random answers", ctx=ctx)
    with acting_as("bob"):
        task = keel.label.next_task(name, ctx=ctx)
    assert task is not None and task.item == held.item
    with acting_as("spam"), pytest.raises(PermissionDenied, match="random answers"):
        keel.label.submit(name, held.item, "a", ctx=ctx)


def test_no_gold_is_handed_out_once_no_real_task_is_left(ctx: Context) -> None:
    name = _project(ctx, 6, gold_every=2, overlap=1, gold_rate=0.5)  # rows 0, 2, 4 gold; 1, 3, 5 tasks
    with acting_as("ana"):
        seen = []
        while (task := keel.label.next_task(name, ctx=ctx)) is not None:
            seen.append(task.item)
            keel.label.submit(name, task.item, "a", ctx=ctx)
    assert {"1", "3", "5"} <= set(seen)
    with acting_as("bob"):  # every task has its one answer: bob gets nothing, not the gold he has not seen
        assert keel.label.next_task(name, ctx=ctx) is None


def test_annotators_meet_the_gold_items_in_orders_of_their_own(ctx: Context) -> None:
    name = _project(ctx, 40, gold_every=2, overlap=8, gold_rate=0.5)  # 20 gold, 20 tasks
    orders = {}
    for who in ("ana", "ben", "chen", "dev"):
        gold = {i.key for i in keel.label.items_of(name, role="gold", ctx=ctx)}
        with acting_as(who):
            order = []
            for _ in range(12):
                task = keel.label.next_task(name, ctx=ctx)
                assert task is not None
                keel.label.submit(name, task.item, "a", ctx=ctx)
                if task.item in gold:
                    order.append(task.item)
        orders[who] = order
    firsts = {tuple(o[:3]) for o in orders.values()}
    assert len(firsts) > 1  # not one order that one annotator could pass on to the others


def test_the_answer_column_cannot_be_shown(ctx: Context) -> None:
    frame = pd.DataFrame({"text": ["x", "y"], "known": ["a", None]})
    name = f"ctl-{uuid.uuid4().hex[:8]}"
    version = keel.data.log(frame, f"{name}-data", run=False, ctx=ctx)
    with pytest.raises(InvalidArgument, match="fields must be columns other than the gold and qualification answers"):
        keel.label.create_project(name, version.ref, classes=["a", "b"], guideline="g", gold="known",
                                  fields=["text", "known"], ctx=ctx)  # fmt: skip
