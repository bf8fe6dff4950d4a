"""Keyset paging of the run search on SQLite, PostgreSQL and the REST store against a real server."""

from pathlib import Path

import pytest

from keel.store.metadata import open_store
from keel.store.metadata.sql import runs as sql_runs
from keel.testing.search_contract import ORDERS, RunSearchPagingContract, _all_pages, _populate


class TestRunSearchPaging(RunSearchPagingContract):
    pass


@pytest.mark.parametrize("broad", [1, 10**9])
def test_sqlite_split_plan_pages_as_the_one_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broad: int) -> None:
    """On SQLite a broad search sorted by a metric runs as two queries (runs with the metric, walked along its index,
    then runs without), one sorted by start time walks its index: with every search counted as broad, pages still
    concatenate to the one query's big search."""
    monkeypatch.setattr(sql_runs, "BROAD", broad)
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        exp_id, ids = _populate(store)
        for order in [o for o in ORDERS if not o or o[0].startswith(("metrics.", "start_time"))]:
            monkeypatch.setattr(sql_runs, "BROAD", 10**9)  # the one query: the reference
            whole = [r.id for r in store.search_runs([exp_id], order_by=order, max_results=1000).runs]
            monkeypatch.setattr(sql_runs, "BROAD", broad)
            assert sorted(whole) == sorted(ids)
            for size in (1, 3, 50):
                assert _all_pages(store, exp_id, order, size) == whole, (order, size)
            filtered = "params.model != 'rf'"
            expected = [r.id for r in store.search_runs([exp_id], filter=filtered, max_results=1000).runs]
            got = [r.id for r in store.search_runs([exp_id], filter=filtered, order_by=order, max_results=1000).runs]
            assert sorted(got) == sorted(expected)
    finally:
        store.close()
