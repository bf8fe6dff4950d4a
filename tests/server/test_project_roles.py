"""Roles per project at the server, over real HTTP on 127.0.0.1: experiments and their runs are checked in their own
project (a role in "research" opens research's runs and nothing of "default"), "*" bindings hold everywhere, token
scopes still narrow, and what lists across projects (experiments, searches, child runs, a dataset's runs) shows only
the projects the caller may read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.services import serve_app

API = "/api/v1"
GRANTS = {
    "rex": ("editor", "research"),
    "vera": ("viewer", "research"),
    "dan": ("editor", "default"),
    "dora": ("viewer", "default"),
    "alla": ("viewer", "*"),
    "eve": ("editor", "*"),
    "ada": ("admin", "research"),
}


@dataclass
class World:
    url: str
    tokens: dict[str, str]
    research: int  # an experiment of "research", made by rex
    default: int  # an experiment of "default", made by dan
    research_run: str
    default_run: str

    def call(self, who: str, method: str, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.tokens[who]}"}
        return httpx.request(method, self.url + API + path, json=body, headers=headers, timeout=30)

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        answer = self.call(who, method, path, body)
        assert answer.status_code == 200, (who, method, path, answer.text)
        return answer.json()

    def refused(self, who: str, method: str, path: str, body: Any = None) -> str:
        answer = self.call(who, method, path, body)
        assert answer.status_code == 403, (who, method, path, answer.status_code, answer.text)
        return str(answer.json()["error"]["message"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    tokens = {}
    for name, (role, project) in GRANTS.items():
        store.identity.create_principal(name)
        store.identity.grant(name, role, project=project)  # any project name: roles per project are enforced
        tokens[name] = store.identity.create_token(name).secret
    tokens["rex-reader"] = store.identity.create_token("rex", scopes=["read"]).secret
    with serve_app(create_app(store, open_artifact_store(str(tmp_path / "a")), auth=True)) as url:
        w = World(url, tokens, 0, 0, "", "")
        w.research = w.ok("rex", "POST", "/experiments", {"name": "r", "project": "research"})["id"]
        w.default = w.ok("dan", "POST", "/experiments", {"name": "d"})["id"]
        w.research_run = w.ok("rex", "POST", "/runs", {"experiment_id": w.research})["id"]
        w.default_run = w.ok("dan", "POST", "/runs", {"experiment_id": w.default})["id"]
        yield w
    store.close()


def test_an_editor_of_a_project_writes_there_and_nowhere_else(world: World) -> None:
    w = world
    assert w.ok("rex", "GET", f"/experiments/{w.research}")["project"] == "research"
    assert "in project 'default'" in w.refused("rex", "POST", "/experiments", {"name": "x"})  # no project: default
    w.refused("rex", "POST", "/experiments", {"name": "x", "project": "other"})
    w.refused("rex", "POST", "/runs", {"experiment_id": w.default})
    run = w.ok("rex", "POST", "/runs", {"experiment_id": w.research})["id"]
    for method, path, body in [
        ("POST", f"/runs/{run}/params", {"params": {"lr": "0.1"}}),
        ("POST", f"/runs/{run}/tags", {"tags": {"stage": "x"}}),
        ("POST", "/metrics", {"rows": [[run, "loss", 0.5, 0, 1]]}),
        ("POST", "/runs/heartbeat", {"run_ids": [run]}),
    ]:
        w.ok("rex", method, path, body)
    assert [m[0] for m in w.ok("rex", "GET", f"/runs/{run}/metrics?key=loss")] == [0.5]
    # into a run of "default": refused, whether the run is named in the path or in the body
    d = w.default_run
    for method, path, body in [
        ("POST", f"/runs/{d}/params", {"params": {"lr": "0.1"}}),
        ("POST", f"/runs/{d}/tags", {"tags": {"stage": "x"}}),
        ("POST", f"/runs/{d}/artifacts", {"artifacts": [{"path": "model.pkl", "sha256": "a" * 64, "size": 1}]}),
        ("POST", f"/runs/{d}/end", {"status": "finished", "metrics": []}),
        ("POST", "/metrics", {"rows": [[run, "loss", 0.4, 1, 2], [d, "loss", 0.4, 1, 2]]}),  # refused whole
        ("POST", "/runs/heartbeat", {"run_ids": [run, d]}),
        ("PUT", f"/step-cache/{'c' * 64}", {"run_id": d, "step": "s", "outputs": {}}),
        ("GET", f"/runs/{d}", None),
        ("GET", f"/runs/{d}/metrics?key=loss", None),
        ("GET", f"/runs/{d}/artifacts", None),
        ("GET", f"/experiments/{w.default}", None),
        ("GET", f"/experiments/{w.default}/latest-run?kind=run&name=x", None),
    ]:
        w.refused("rex", method, path, body)
    assert [m[0] for m in w.ok("rex", "GET", f"/runs/{run}/metrics?key=loss")] == [0.5]  # nothing of the mixed batch
    assert w.ok("dan", "GET", f"/runs/{d}")["params"] == {}
    # the editor of "default" cannot reach research's run either
    w.refused("dan", "POST", f"/runs/{w.research_run}/params", {"params": {"lr": "0.2"}})
    w.refused("dan", "GET", f"/runs/{w.research_run}")


def test_an_admin_of_a_project_writes_to_any_run_of_it_only(world: World) -> None:
    w = world
    w.ok("ada", "POST", f"/runs/{w.research_run}/tags", {"tags": {"reviewed": "yes"}})  # rex's run, ada's project
    assert w.ok("rex", "GET", f"/runs/{w.research_run}")["tags"]["reviewed"] == "yes"
    w.refused("ada", "POST", f"/runs/{w.default_run}/tags", {"tags": {"reviewed": "yes"}})
    w.refused("ada", "GET", "/identity/principals")  # identity is checked in "default"


def test_a_viewer_of_a_project_reads_it_and_sees_nothing_of_the_others(world: World) -> None:
    w = world
    w.ok("rex", "POST", "/metrics", {"rows": [[w.research_run, "acc", 0.9, 0, 1]]})
    assert w.ok("vera", "GET", f"/runs/{w.research_run}")["metrics"]["acc"]["value"] == 0.9
    assert w.ok("vera", "GET", f"/experiments/{w.research}")["name"] == "r"
    w.refused("vera", "POST", f"/runs/{w.research_run}/params", {"params": {"a": "1"}})  # reads only
    w.refused("vera", "GET", f"/runs/{w.default_run}")
    assert [e["project"] for e in w.ok("vera", "GET", "/experiments")] == ["research"]
    assert w.ok("vera", "GET", "/experiments?project=default") == []
    assert w.ok("vera", "GET", "/experiments?name=d&project=default") == []
    assert [e["project"] for e in w.ok("dora", "GET", "/experiments")] == ["default"]
    # "*" bindings hold in every project
    assert sorted(e["project"] for e in w.ok("alla", "GET", "/experiments")) == ["default", "research"]
    assert w.ok("alla", "GET", f"/runs/{w.research_run}")["id"] == w.research_run
    assert w.ok("alla", "GET", f"/runs/{w.default_run}")["id"] == w.default_run
    eve_run = w.ok("eve", "POST", "/runs", {"experiment_id": w.research})["id"]
    w.ok("eve", "POST", "/metrics", {"rows": [[eve_run, "acc", 0.5, 0, 1]]})
    # a run that does not exist: checked in "default" (404 there, 403 elsewhere: its existence is not told)
    assert w.call("dora", "GET", f"/runs/{'0' * 32}").status_code == 404
    w.refused("vera", "GET", f"/runs/{'0' * 32}")


def test_token_scopes_still_narrow_a_project_role(world: World) -> None:
    w = world
    assert w.ok("rex-reader", "GET", f"/runs/{w.research_run}")["id"] == w.research_run
    message = w.refused("rex-reader", "POST", "/runs", {"experiment_id": w.research})
    assert "write" in message
    w.refused("rex-reader", "POST", f"/runs/{w.research_run}/params", {"params": {"a": "1"}})
    w.refused("rex-reader", "POST", "/metrics", {"rows": [[w.research_run, "m", 1.0, 0, 1]]})


def test_a_search_needs_read_in_every_project_it_names(world: World) -> None:
    w = world
    both = {"experiment_ids": [w.research, w.default]}
    assert "in project 'default'" in w.refused("vera", "POST", "/runs/search", both)
    w.refused("dora", "POST", "/runs/search", both)
    assert [r["id"] for r in w.ok("vera", "POST", "/runs/search", {"experiment_ids": [w.research]})["runs"]] == [w.research_run]
    assert [r["id"] for r in w.ok("vera", "POST", "/runs/search", {})["runs"]] == [w.research_run]  # all it may read
    assert [r["id"] for r in w.ok("dora", "POST", "/runs/search", {})["runs"]] == [w.default_run]
    assert {r["id"] for r in w.ok("alla", "POST", "/runs/search", both)["runs"]} == {w.research_run, w.default_run}
    assert {r["id"] for r in w.ok("alla", "POST", "/runs/search", {})["runs"]} == {w.research_run, w.default_run}


def test_children_and_a_datasets_runs_are_filtered_by_project(world: World) -> None:
    w = world
    # a child may live in another project than its parent: made by an editor of both
    child = w.ok("eve", "POST", "/runs", {"experiment_id": w.default, "parent_run_id": w.research_run})["id"]
    same = w.ok("rex", "POST", "/runs", {"experiment_id": w.research, "parent_run_id": w.research_run})["id"]
    w.refused("dan", "POST", "/runs", {"experiment_id": w.default, "parent_run_id": w.research_run})  # cannot read it
    assert [r["id"] for r in w.ok("vera", "GET", f"/runs/{w.research_run}/children")] == [same]
    assert {r["id"] for r in w.ok("alla", "GET", f"/runs/{w.research_run}/children")} == {same, child}
    w.refused("dora", "GET", f"/runs/{w.research_run}/children")
    body = {"name": "ds", "content_hash": "c" * 64, "artifact_sha256": "b" * 64, "size": 1, "row_count": 2,
            "schema": [["x", "int64", False]]}  # fmt: skip
    version = w.ok("eve", "POST", "/datasets/versions", body)["version"]["id"]
    for run in (w.research_run, w.default_run):
        w.ok("eve", "POST", f"/datasets/versions/{version}/runs", {"run_id": run, "direction": "input"})
    # linking a run is writing to its lineage: the editor of "default" may not link research's run
    w.refused("dan", "POST", f"/datasets/versions/{version}/runs", {"run_id": w.research_run, "direction": "output"})
    assert [r for r, _ in w.ok("dora", "GET", f"/datasets/versions/{version}/runs")] == [w.default_run]
    assert {r for r, _ in w.ok("alla", "GET", f"/datasets/versions/{version}/runs")} == {w.research_run, w.default_run}
    w.refused("vera", "GET", f"/datasets/versions/{version}/runs")  # datasets are in "default"
