"""Keyset paging of the run search on SQLite, PostgreSQL and the REST store against a real server."""

from pathlib import Path

import pytest

from keel.store.metadata import open_store, search
from keel.store.metadata.sql import runs as sql_runs
from keel.store.metadata.sql.run_search import search_query, walk_parts, walk_range
from keel.testing.search_contract import ORDERS, RunSearchPagingContract, _all_pages, _populate


class TestRunSearchPaging(RunSearchPagingContract):
    pass


@pytest.mark.parametrize("broad", [1, 10**9])
def test_sqlite_split_plan_pages_as_the_one_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broad: int) -> None:
    """On SQLite a broad search sorted by a metric, a param or a tag runs as a query per part (runs with a value,
    walked along its index, for a param numbers then text, then runs without), one sorted by start time walks its
    index: with every search counted as broad, pages still concatenate to the one query's big search, filtered or not."""
    monkeypatch.setattr(sql_runs, "BROAD", broad)
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        exp_id, ids = _populate(store)
        walked = [o for o in ORDERS if walk_parts("sqlite", search.parse_order_by(o))]
        assert {search.parse_order_by(o)[0].kind for o in walked if o} == {"attr", "metric", "param", "tag"}
        for order in walked:
            for filtered in ("", "params.model != 'rf'", "metrics.acc > 0.1"):
                monkeypatch.setattr(sql_runs, "BROAD", 10**9)  # the one query: the reference
                whole = [r.id for r in store.search_runs([exp_id], filter=filtered, order_by=order, max_results=1000).runs]
                monkeypatch.setattr(sql_runs, "BROAD", broad)
                if not filtered:
                    assert sorted(whole) == sorted(ids)
                for size in (1, 3, 50):
                    seen, token = [], None
                    while True:
                        page = store.search_runs([exp_id], filter=filtered, order_by=order, max_results=size, page_token=token)
                        seen += [r.id for r in page.runs]
                        token = page.next_page_token
                        if token is None:
                            break
                    assert seen == whole, (order, filtered, size)
            assert _all_pages(store, exp_id, order, 2) == [
                r.id for r in store.search_runs([exp_id], order_by=order, max_results=1000).runs
            ]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("order", "index"),
    [
        ("metrics.acc DESC", "ix_latest_metrics_key_value"),
        ("params.lr DESC", "ix_params_key_num_value"),
        ("params.lr", "ix_params_key_num_value"),
        ("tags.group", "ix_tags_key_value"),
        ("tags.group DESC", "ix_tags_key_value"),
    ],
)
def test_sqlite_walks_the_sort_keys_index_past_a_filters(tmp_path: Path, order: str, index: str) -> None:
    """Each part of a split search (but the runs without the key) is planned along its sort key's index, not along
    the index of the filter's metric: what lets a page stop early instead of sorting every match."""
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    engine = store.engine  # type: ignore[attr-defined]
    try:
        exp_id, _ = _populate(store)
        orders = search.parse_order_by([order])
        clauses = search.parse_filter("metrics.loss > 0.5")
        for part in walk_parts("sqlite", orders)[:-1]:
            query, columns = search_query([exp_id], clauses, orders, stale_cutoff=0, leading=part)
            walked = query.where(walk_range(part, columns, None)).limit(10)
            compiled = walked.compile(engine, compile_kwargs={"render_postcompile": True})
            values = tuple(compiled.params[name] for name in compiled.positiontup or ())
            with engine.connect() as conn:
                plan = [r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)]
            searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
            assert index in searches[0], (part, plan)
            assert "USE TEMP B-TREE FOR ORDER BY" not in plan, (part, plan)
    finally:
        store.close()
