"""Who may delete and restore over the server (issue 13): a run only its creator or an admin; an experiment whoever
may write in its project; a viewer neither. Each change is in the audit log under the caller's name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.services import serve_app

API = "/api/v1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], MetadataStore]]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    tokens = {}
    for name, role in (("alice", "editor"), ("bob", "editor"), ("boss", "admin"), ("vic", "viewer")):
        store.identity.create_principal(name)
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    with serve_app(create_app(store, open_artifact_store(str(tmp_path / "a")), auth=True)) as url:
        yield url, tokens, store
    store.close()


def call(url: str, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url + API + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=30)


def test_only_the_creator_or_an_admin_deletes_or_restores_a_run(server: tuple[str, dict[str, str], MetadataStore]) -> None:
    url, tokens, store = server
    experiment = call(url, tokens["alice"], "POST", "/experiments", {"name": "own"}).json()["id"]
    run = call(url, tokens["alice"], "POST", "/runs", {"experiment_id": experiment}).json()["id"]
    for who in ("bob", "vic"):
        refused = call(url, tokens[who], "DELETE", f"/runs/{run}")
        assert refused.status_code == 403, refused.text
    assert call(url, tokens["vic"], "GET", f"/runs/{run}").json()["deleted_at"] is None
    assert call(url, tokens["alice"], "DELETE", f"/runs/{run}").status_code == 200
    assert call(url, tokens["vic"], "GET", f"/runs/{run}").json()["deleted_at"] is not None
    assert call(url, tokens["bob"], "POST", f"/runs/{run}/restore", {}).status_code == 403
    assert call(url, tokens["boss"], "POST", f"/runs/{run}/restore", {}).status_code == 200
    again = call(url, tokens["boss"], "POST", f"/runs/{run}/restore", {})
    assert again.status_code == 409 and "not deleted" in again.json()["error"]["message"]
    events = store.audit.events(entity="run", entity_id=run)
    assert [(e.action, e.actor) for e in events][1:] == [("runs.delete", "alice"), ("runs.restore", "boss")]


def test_deleting_an_experiment_needs_write_in_its_project(server: tuple[str, dict[str, str], MetadataStore]) -> None:
    url, tokens, store = server
    experiment = call(url, tokens["alice"], "POST", "/experiments", {"name": "shared"}).json()["id"]
    assert call(url, tokens["vic"], "DELETE", f"/experiments/{experiment}").status_code == 403
    assert call(url, tokens["bob"], "DELETE", f"/experiments/{experiment}").status_code == 200  # any editor
    assert call(url, tokens["vic"], "GET", "/experiments").json() == []
    deleted = call(url, tokens["vic"], "GET", "/experiments?view=deleted").json()
    assert [e["id"] for e in deleted] == [experiment] and deleted[0]["deleted_at"] is not None
    assert call(url, tokens["vic"], "GET", "/experiments?name=shared").json()[0]["id"] == experiment  # by name: found
    assert call(url, tokens["vic"], "POST", f"/experiments/{experiment}/restore", {}).status_code == 403
    assert call(url, tokens["alice"], "POST", f"/experiments/{experiment}/restore", {}).status_code == 200
    assert [e["id"] for e in call(url, tokens["vic"], "GET", "/experiments").json()] == [experiment]
    bad = call(url, tokens["vic"], "GET", "/experiments?view=sideways")
    assert bad.status_code == 400 and "view" in bad.json()["error"]["message"]
    events = store.audit.events(entity="experiment", entity_id=str(experiment))
    assert [(e.action, e.actor) for e in events][1:] == [("experiments.delete", "bob"), ("experiments.restore", "alice")]
