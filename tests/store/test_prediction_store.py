"""The prediction-store contract on SQLite, PostgreSQL and the REST store against a real server."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from keel.core.errors import KeelError
from keel.core.predictions import MAX_LABELS_PER_CALL, PredictionLogFile
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.sql import engine as sql_engine
from keel.store.metadata.sql.store import SqlStore
from keel.testing.deployment_contract import AliasFollowingContract
from keel.testing.prediction_contract import PredictionStoreContract
from keel.testing.store_contract import unique


class TestPredictionStore(PredictionStoreContract):
    pass


def test_the_server_checks_what_a_client_sends(server_url: str) -> None:
    """A client that skips the REST store's checks (any HTTP client) is refused by the server's store: 400, nothing written."""
    store = open_store(server_url)
    try:
        name = unique("deploy")
        store.deployments.create(name, "models:/churn/1")
        labels_url = f"{server_url}/api/v1/deployments/{name}/labels"
        for bad in ([["bad id", 0, 1]], [["ok", -1, 1]], [["ok", "0", 1]], [["ok", True, 1]], [["ok", 0]]):
            answer = httpx.post(labels_url, json={"labels": [["good", 0, 1], *bad]})
            assert answer.status_code == 400, (bad, answer.text)
        good = httpx.post(labels_url, json={"labels": [["good", 0, {"y": 1}]]})
        assert good.status_code == 200 and good.json() == {"count": 1}
        assert [(x.request_id, x.label) for x in store.predictions.labels(name)] == [("good", {"y": 1})]
        file = {"deployment": name, "sha256": "0" * 64, "rows": 1, "start_ms": 5, "end_ms": 4, "replica": "r"}
        answer = httpx.post(f"{server_url}/api/v1/prediction-files", json={"file": file})
        assert answer.status_code == 400 and "end_ms" in answer.text
        assert store.predictions.log_files(name) == []
    finally:
        store.close()


def test_a_database_of_the_previous_revision_is_upgraded(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sql_engine.make_engine(uri)
    sql_engine.upgrade(engine, "0009")
    engine.dispose()
    old = SqlStore(uri, migrate=False)
    with pytest.raises(KeelError):  # no prediction tables before 0010
        old.predictions.log_files("anything")
    old.close()
    store = SqlStore(uri)
    try:
        assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD
        store.deployments.create("churn", "models:/churn/1")
        store.predictions.add_log_file(PredictionLogFile("churn", "a" * 64, 3, 1, 2, "r"))
        assert [f.rows for f in store.predictions.log_files("churn")] == [3]
    finally:
        store.close()


def test_a_hundred_thousand_labels_in_one_call(store: MetadataStore) -> None:
    name = unique("deploy")
    store.deployments.create(name, "models:/churn/1")
    ids = [f"req-{i}" for i in range(MAX_LABELS_PER_CALL)]
    started = time.perf_counter()
    assert store.predictions.log_labels(name, [(r, 0, i % 3) for i, r in enumerate(ids)]) == MAX_LABELS_PER_CALL
    got = store.predictions.labels(name, request_ids=ids)
    elapsed = time.perf_counter() - started
    assert len(got) == MAX_LABELS_PER_CALL and sorted(x.request_id for x in got) == sorted(ids)
    assert elapsed < 60, elapsed  # a loose bound: the point is that it is one call that completes


class TestAliasFollowing(AliasFollowingContract):
    pass
