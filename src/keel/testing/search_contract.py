"""The run search's keyset paging, as tests every backend must pass.

Subclass ``RunSearchPagingContract`` in a test module and provide a ``store`` fixture. A page token is a cursor
(the last run's sort-key values): paging through a search in any order gives exactly the runs of one big search,
in the same order, and runs logged between two page fetches neither repeat nor hide the runs already listed.
"""

from __future__ import annotations

import base64
import json
import math

import pytest

from keel.core.clock import now_ms
from keel.core.entities import RunKind, RunStatus
from keel.core.errors import InvalidArgument
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique

# every kind of sort key, both directions, with ties and missing values in each
ORDERS: list[list[str]] = [
    [],
    ["start_time ASC"],
    ["start_time DESC"],
    ["name"],
    ["name DESC", "metrics.acc"],
    ["metrics.acc DESC"],
    ["metrics.acc ASC"],
    ["metrics.loss DESC", "params.lr"],
    ["params.lr"],
    ["params.lr DESC"],
    ["params.lr", "name DESC"],
    ["params.model", "metrics.acc DESC"],
    ["params.model DESC"],
    ["tags.group DESC"],
    ["tags.group", "params.lr DESC"],
    ["end_time"],
    ["status", "run_id DESC"],
    ["duration DESC"],
    ["kind", "duration"],
]
RUNS = 23


def _populate(store: MetadataStore) -> tuple[int, list[str]]:
    """Runs sharing start times, names and metric values, some without a metric, param or tag, one with NaN and
    ones with infinities, params that are numbers, text, or the same number in other words ("1e-1" and "0.1"):
    every tie and NULL a cursor has to get past."""
    exp = store.get_or_create_experiment(unique("paging"))
    base = now_ms() - 100_000
    ids: list[str] = []
    for i in range(RUNS):
        params = {"model": ["rf", "lr", "xgb"][i % 3]}
        if i % 5:
            params["lr"] = {0: "auto", 3: "1e-1", 5: "inf"}.get(i % 7, str((i % 4) / 10))
        tags = {"group": "even" if i % 2 == 0 else "odd"} if i % 6 else {}
        parent = ids[0] if i % 9 == 8 else None  # a few children, with their own kind
        kind = RunKind.TRIAL if parent else (RunKind.STUDY if i == 0 else RunKind.RUN)
        start = base + (i // 3) * 1000
        run = store.create_run(
            exp.id, f"run-{i % 8}", params=params, tags=tags, start_time=start, parent_run_id=parent, kind=kind
        )
        metrics = []
        if i % 4:
            acc = {5: math.inf, 9: -math.inf, 13: math.nan}.get(i, (i % 5) / 4)
            metrics.append((run.id, "acc", acc, 0, base))
        if i % 3 == 0:
            metrics.append((run.id, "loss", float(i % 2), 0, base))
        if metrics:
            store.log_metrics(metrics)
        if i % 2:
            store.end_run(run.id, RunStatus.FINISHED, end_time=base + 50_000 + (i % 3) * 1000)
        ids.append(run.id)
    return exp.id, ids


def _all_pages(store: MetadataStore, exp_id: int, order: list[str], size: int) -> list[str]:
    seen: list[str] = []
    token = None
    for _ in range(RUNS + 2):
        page = store.search_runs([exp_id], order_by=order, max_results=size, page_token=token)
        seen.extend(r.id for r in page.runs)
        token = page.next_page_token
        if token is None:
            return seen
        assert isinstance(token, str)
    raise AssertionError("paging did not end")


class RunSearchPagingContract:
    @pytest.mark.parametrize("size", [1, 4])
    def test_pages_concatenated_are_one_big_search_in_every_order(self, store: MetadataStore, size: int) -> None:
        exp_id, ids = _populate(store)
        for order in ORDERS:
            whole = [r.id for r in store.search_runs([exp_id], order_by=order, max_results=1000).runs]
            assert sorted(whole) == sorted(ids), order
            assert _all_pages(store, exp_id, order, size) == whole, order

    def test_kind_and_duration_filter_and_sort(self, store: MetadataStore) -> None:
        exp_id, ids = _populate(store)

        def found(filter: str, order: tuple[str, ...] = ()) -> list[str]:
            return [r.id for r in store.search_runs([exp_id], filter=filter, order_by=list(order), max_results=1000).runs]

        children = {r.id for r in store.list_child_runs(ids[0])}
        assert children and all(store.get_run(c).kind is RunKind.TRIAL for c in children)
        assert set(found("kind = 'trial'")) == children
        assert set(found("kind != 'step' and kind != 'trial'")) == set(ids) - children
        assert found("kind = 'study'") == [ids[0]]
        ended = [store.get_run(i) for i in ids if i not in set(found("status = 'running'"))]
        durations = {r.id: r.end_time - r.start_time for r in ended if r.end_time is not None}
        assert set(found("duration >= 0")) == set(durations)
        longest = max(durations.values())
        assert set(found(f"duration >= {longest}")) == {i for i, d in durations.items() if d == longest}
        by_length = found("", ("duration DESC",))
        assert [durations[i] for i in by_length[: len(durations)]] == sorted(durations.values(), reverse=True)
        with pytest.raises(InvalidArgument, match="kind 'potato' is not one of"):
            found("kind = 'potato'")
        with pytest.raises(InvalidArgument, match="duration compares with a number"):
            found("duration > 'long'")

    def test_runs_without_the_sort_key_come_last_in_both_directions(self, store: MetadataStore) -> None:
        exp_id, _ = _populate(store)
        for direction in ("ASC", "DESC"):
            runs = store.search_runs([exp_id], order_by=[f"metrics.loss {direction}"], max_results=1000).runs
            has = ["loss" in r.metrics for r in runs]
            assert has == sorted(has, reverse=True), direction  # every run with the metric before every run without
            values = [r.metrics["loss"].value for r in runs if "loss" in r.metrics]
            assert values == sorted(values, reverse=direction == "DESC")

    def test_params_sort_numbers_by_value_then_text_then_runs_without(self, store: MetadataStore) -> None:
        exp_id, ids = _populate(store)
        lr = {run.id: run.params.get("lr") for run in (store.get_run(i) for i in ids)}

        def number(text: str) -> float | None:
            try:
                value = float(text)
            except ValueError:
                return None
            return value if math.isfinite(value) else None

        numbers = [v for v in lr.values() if v is not None and number(v) is not None]
        texts = [v for v in lr.values() if v is not None and number(v) is None]
        assert {"auto", "inf"} <= set(texts) and {"1e-1", "0.1"} <= set(numbers)
        for descending in (False, True):
            order = ["params.lr DESC" if descending else "params.lr"]
            got = [lr[r.id] for r in store.search_runs([exp_id], order_by=order, max_results=1000).runs]
            by_number = sorted(numbers, key=lambda v: (number(v), v), reverse=descending)
            missing = [None] * (len(ids) - len(numbers) - len(texts))
            assert got == by_number + sorted(texts, reverse=descending) + missing, order

    @pytest.mark.parametrize("order", [[], ["metrics.acc DESC"], ["name"], ["params.lr DESC"]])
    def test_runs_logged_between_pages_neither_repeat_nor_hide_others(self, store: MetadataStore, order: list[str]) -> None:
        exp_id, _ = _populate(store)
        before = [r.id for r in store.search_runs([exp_id], order_by=order, max_results=1000).runs]
        seen: list[str] = []
        page = store.search_runs([exp_id], order_by=order, max_results=5)
        added: set[str] = set()
        while True:
            seen.extend(r.id for r in page.runs)
            if page.next_page_token is None:
                break
            # new runs on both sides of the cursor: newer and older, best and worst, first and last by name
            for name, acc, lr, start in (("run-0", 9.0, "0.9", now_ms()), ("zzz", -9.0, "0.0", now_ms() - 10**9)):
                run = store.create_run(exp_id, name, params={"lr": lr}, start_time=start)
                store.log_metrics([(run.id, "acc", acc, 0, now_ms())])
                added.add(run.id)
            page = store.search_runs([exp_id], order_by=order, max_results=5, page_token=page.next_page_token)
        assert len(seen) == len(set(seen)), "a run was listed twice"
        assert [i for i in seen if i not in added] == before, "a run was skipped or moved"

    def test_a_token_is_refused_unless_made_by_a_search_in_the_same_order(self, store: MetadataStore) -> None:
        exp_id, _ = _populate(store)
        token = store.search_runs([exp_id], order_by=["metrics.acc DESC"], max_results=2).next_page_token
        assert token is not None
        assert len(store.search_runs([exp_id], order_by=["metrics.acc DESC"], max_results=2, page_token=token).runs) == 2
        old_offset = base64.urlsafe_b64encode(json.dumps({"offset": 2}).encode()).decode()
        edited = token[:-1] + ("0" if token[-1] != "0" else "1")
        prefix, body = token.split(".", 2)[:2]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        moved = prefix + "." + base64.urlsafe_b64encode(raw.replace(b'"k":[', b'"k":[1,')).decode().rstrip("=")
        for bad in (old_offset, edited, token[: len(token) // 2], moved + "." + token.rsplit(".", 1)[1], "k1..", "x" * 100):
            with pytest.raises(InvalidArgument, match="page_token"):
                store.search_runs([exp_id], order_by=["metrics.acc DESC"], max_results=2, page_token=bad)
        with pytest.raises(InvalidArgument, match="page_token"):  # a cursor of one order means nothing in another
            store.search_runs([exp_id], order_by=["metrics.acc ASC"], max_results=2, page_token=token)
