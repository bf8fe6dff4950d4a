"""A run is written to by the principal that created it (or an admin): another editor can neither log into it,
re-point its artifacts, end it nor write its step-cache entry, and its reads stay open to every viewer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.services import serve_app

API = "/api/v1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    tokens = {}
    for name, role in (("alice", "editor"), ("bob", "editor"), ("boss", "admin"), ("vic", "viewer")):
        store.identity.create_principal(name)
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    with serve_app(create_app(store, open_artifact_store(str(tmp_path / "a")), auth=True)) as url:
        yield url, tokens
    store.close()


def call(url: str, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url + API + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=30)


def test_only_the_creator_or_an_admin_writes_to_a_run(server: tuple[str, dict[str, str]]) -> None:
    url, tokens = server
    experiment = call(url, tokens["alice"], "POST", "/experiments", {"name": "own"}).json()["id"]
    run = call(url, tokens["alice"], "POST", "/runs", {"experiment_id": experiment}).json()["id"]
    writes = [
        ("POST", f"/runs/{run}/params", {"params": {"lr": "0.1"}}),
        ("POST", f"/runs/{run}/tags", {"tags": {"stage": "x"}}),
        ("POST", "/metrics", {"rows": [[run, "loss", 0.5, 0, 1]]}),
        ("POST", f"/runs/{run}/artifacts", {"artifacts": [{"path": "model.pkl", "sha256": "a" * 64, "size": 1}]}),
        ("POST", "/runs/heartbeat", {"run_ids": [run]}),
        ("POST", f"/runs/{run}/end", {"status": "finished", "metrics": []}),
    ]
    for method, path, body in writes:
        refused = call(url, tokens["bob"], method, path, body)
        assert refused.status_code == 403, (path, refused.text)
        assert f"run {run} belongs to alice" in refused.json()["error"]["message"]
    assert call(url, tokens["vic"], "GET", f"/runs/{run}").status_code == 200  # reads stay open
    assert call(url, tokens["alice"], "POST", f"/runs/{run}/params", {"params": {"lr": "0.1"}}).status_code == 200
    assert call(url, tokens["alice"], "POST", "/metrics", {"rows": [[run, "loss", 0.4, 1, 2]]}).status_code == 200
    assert call(url, tokens["boss"], "POST", f"/runs/{run}/tags", {"tags": {"reviewed": "yes"}}).status_code == 200
    assert call(url, tokens["alice"], "POST", f"/runs/{run}/end", {"status": "finished", "metrics": []}).status_code == 200
    stored = call(url, tokens["vic"], "GET", f"/runs/{run}").json()
    assert stored["params"] == {"lr": "0.1"} and stored["tags"].get("stage") is None and stored["tags"]["reviewed"] == "yes"
    # a batch that mixes a run of one's own with someone else's is refused whole: nothing of it is stored
    own = call(url, tokens["bob"], "POST", "/runs", {"experiment_id": experiment}).json()["id"]
    mixed = call(url, tokens["bob"], "POST", "/metrics", {"rows": [[own, "m", 1.0, 0, 1], [run, "m", 1.0, 0, 1]]})
    assert mixed.status_code == 403
    assert call(url, tokens["bob"], "GET", f"/runs/{own}/metrics?key=m").json() == []
