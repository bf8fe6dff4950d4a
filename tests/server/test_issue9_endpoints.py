"""Issue 9: one endpoint table makes both the REST client's methods and the server's routes.

A store method over HTTP is one entry (verb, path, schema, converters): the routes the server mounts are the
table's, with the same URLs, bodies and auth as before; the client's methods are the table's; a new method needs
its ABC method, its implementation, one entry and one schema (the toy store below is exactly that).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

from keel.core.actor import local_actor
from keel.core.errors import InvalidArgument, NotFound
from keel.server.app import create_app
from keel.server.auth import authorize
from keel.server.endpoints import routers
from keel.server.routes.models import HOOKS
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.rest.client import RestModelStore, RestStore
from keel.store.metadata.rest.endpoints import GROUPS, Arg, Endpoints, Result, endpoint
from keel.store.metadata.rest.schemas import AliasIn
from keel.testing.services import serve_app


def _app(tmp_path: Path) -> FastAPI:
    return create_app(open_store(f"sqlite:///{tmp_path / 'k.db'}"), open_artifact_store(str(tmp_path / "a")))


def _operations(app: FastAPI) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}


def test_every_entry_of_the_table_is_one_route_with_its_schema_and_auth(tmp_path: Path) -> None:
    app = _app(tmp_path)
    schema = app.openapi()
    guarded = {}
    for router in routers(HOOKS):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for method in route.methods or ():
                guarded[(method, route.path)] = any(d.dependency is authorize for d in router.dependencies)
    mounted = [ep for group in GROUPS for ep in group.endpoints() if ep.mount]
    assert len(mounted) == len(guarded)  # 36 + the 6 deployment and 4 prediction entries (issue 10) + 13 monitor (11)
    for ep in mounted:
        assert guarded[(ep.verb, "/api/v1" + ep.path)], f"{ep.verb} {ep.path}: every route goes through authorize"
        operation = schema["paths"]["/api/v1" + ep.path][ep.verb.lower()]
        if ep.body is not None:  # the body's schema, by name, in the OpenAPI document
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{ep.body.__name__}"
        else:
            assert "requestBody" not in operation
        assert operation["operationId"].startswith(ep.operation + "_")
    # the hand-written routes are still there, and the table names them
    hand_written = {("POST", "/api/v1/metrics"), ("POST", "/api/v1/runs/{run_id}/end"), ("GET", "/api/v1/experiments")}
    assert hand_written <= _operations(app) and not hand_written & set(guarded)


def test_the_openapi_document_keeps_every_route_and_body_of_the_previous_server(server_url: str) -> None:
    schema = httpx.get(f"{server_url}/openapi.json").json()
    bodies = {
        ("post", "/api/v1/experiments"): "ExperimentIn",
        ("post", "/api/v1/runs"): "RunIn",
        ("post", "/api/v1/runs/heartbeat"): "HeartbeatIn",
        ("post", "/api/v1/runs/{run_id}/artifacts"): "ArtifactsIn",
        ("post", "/api/v1/runs/{run_id}/end"): "EndRunIn",
        ("post", "/api/v1/datasets/versions"): "DatasetVersionIn",
        ("put", "/api/v1/step-cache/{cache_key}"): "StepCacheIn",
        ("put", "/api/v1/models/{name}/aliases/{alias}"): "AliasIn",
    }
    for (method, path), name in bodies.items():
        ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + name)
    components = schema["components"]["schemas"]
    # JSON names kept where the store's parameter is named otherwise (time_ms, refs, schema)
    assert set(components["HeartbeatIn"]["properties"]) == {"run_ids", "time"}
    assert set(components["ArtifactsIn"]["properties"]) == {"artifacts"}
    assert "schema" in components["DatasetVersionIn"]["properties"]
    version = schema["paths"]["/api/v1/datasets/by-name/versions"]["get"]["parameters"]
    assert {p["name"]: p["schema"].get("default") for p in version} == {"name": None, "version": "latest"}
    assert len(schema["paths"]) >= 30


def test_bodies_of_the_previous_client_are_still_understood(server_url: str) -> None:
    """Raw JSON as the hand-written client sent it: the wire did not change."""
    api = f"{server_url}/api/v1"
    exp = httpx.post(f"{api}/experiments", json={"name": "issue9-endpoints"}).json()
    run = httpx.post(f"{api}/runs", json={"experiment_id": exp["id"], "tags": {"t": "1"}, "params": {"p": "2"}}).json()
    assert httpx.post(f"{api}/runs/heartbeat", json={"run_ids": [run["id"]], "time": 1234}).json() == {}
    art = {"path": "m.bin", "sha256": "a" * 64, "size": 3}
    assert httpx.post(f"{api}/runs/{run['id']}/artifacts", json={"artifacts": [art]}).json() == {}
    got = httpx.get(f"{api}/runs/{run['id']}").json()
    assert (got["heartbeat"], got["tags"], got["params"]) == (1234, {"t": "1"}, {"p": "2"})
    assert httpx.get(f"{api}/runs/{run['id']}/artifacts").json() == [{**art, "media_type": "application/octet-stream"}]
    # the old names of renamed fields only: a store parameter name is not a JSON name
    bad = httpx.post(f"{api}/runs/heartbeat", json={"run_ids": [run["id"]], "time_ms": 1})
    assert bad.status_code == 400 and "time_ms" in bad.json()["error"]["message"]
    body = {"name": "issue9ds", "content_hash": "c" * 64, "artifact_sha256": "b" * 64, "size": 1, "row_count": 2,
            "schema": [["x", "int64", False]]}  # fmt: skip
    created = httpx.post(f"{api}/datasets/versions", json=body).json()
    assert created["created"] is True and created["version"]["schema"] == [["x", "int64", False]]
    for query in ({"name": "issue9ds"}, {"name": "issue9ds", "version": "latest"}, {"name": "issue9ds", "version": "1"}):
        assert httpx.get(f"{api}/datasets/by-name/versions", params=query).json()["id"] == created["version"]["id"]
    wrong = httpx.get(f"{api}/datasets/by-name/versions", params={"name": "issue9ds", "version": "newest"})
    assert wrong.status_code == 400 and "'latest'" in wrong.json()["error"]["message"]
    assert httpx.get(f"{api}/step-cache/{'d' * 64}").json() == {"entry": None}
    assert httpx.get(f"{api}/step-cache/nothex").status_code == 400


def test_the_server_records_its_caller_as_the_actor_whatever_the_body_declares(server_url: str) -> None:
    """The hook of models.move_alias (server policy) runs between the table's validation and the store call: the
    actor is the caller (on this open server, its local user), never the ``actor`` a client writes in the body."""
    api = f"{server_url}/api/v1"
    caller = local_actor()  # the server runs as this process's user
    body = {"name": "issue9m", "flavor": "pickle", "artifact_sha256": "e" * 64, "size": 1, "signature": {}}
    assert httpx.post(f"{api}/models/versions", json=body).json()["version"] == 1
    moved = httpx.put(f"{api}/models/issue9m/aliases/staging", json={"version": 1, "force": True, "actor": "ann"}).json()
    assert moved["actor"] == caller and moved["forced"] is True
    anonymous = httpx.put(f"{api}/models/issue9m/aliases/canary", json={"version": 1, "force": True}).json()
    assert anonymous["actor"] == caller
    # the generated client method: checks before a request, then the same route
    store = RestStore(server_url)
    try:
        models = store.models
        assert isinstance(models, RestModelStore)
        with pytest.raises(InvalidArgument):
            models.move_alias("issue9m", "Bad Alias!", 1, actor="me", force=True)
        change = models.move_alias("issue9m", "staging", None, actor="bob", force=True, reason="retire")
        assert (change.to_version, change.actor, change.reason) == (None, caller, "retire")
        assert [c.actor for c in models.alias_history("issue9m", "staging")] == [caller, caller]
    finally:
        store.close()
    assert set(AliasIn.model_fields) == {"version", "rules", "require_valid_data", "expected_from", "force", "actor", "reason"}


# a new store method, end to end: its ABC, an implementation, one schema, one entry -----------------------------------


class EchoStore(abc.ABC):
    @abc.abstractmethod
    def shout(self, run_id: str, text: str, *, times: int = 1) -> list[str]:
        """``text`` in capitals, ``times`` times, tagged with the run."""

    @abc.abstractmethod
    def count(self, run_id: str) -> int: ...


class MemoryEcho(EchoStore):
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def shout(self, run_id: str, text: str, *, times: int = 1) -> list[str]:
        if times < 1:
            raise InvalidArgument.for_field("times", times, "a positive integer")
        self.calls[run_id] = self.calls.get(run_id, 0) + 1
        return [f"{run_id}:{text.upper()}"] * times

    def count(self, run_id: str) -> int:
        if run_id not in self.calls:
            raise NotFound(f"run {run_id} never shouted")
        return self.calls[run_id]


class ShoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    times: int = 1


class EchoEndpoints(Endpoints, store=EchoStore, attribute="echo", tag="echo"):
    shout = endpoint(
        "POST", "/echo/{run_id}", body=ShoutIn, result=Result(lambda xs: {"shouts": xs}, lambda data, _: data["shouts"])
    )
    count = endpoint("GET", "/echo/{run_id}", result=Result(lambda n: {"count": n}, lambda data, _: int(data["count"])))


class RestEcho(EchoEndpoints, EchoStore):
    def __init__(self, store: RestStore) -> None:
        self.transport = store.transport


def test_a_new_store_method_is_its_abc_an_implementation_one_schema_and_one_entry(tmp_path: Path) -> None:
    app = _app(tmp_path)
    echo = MemoryEcho()
    app.state.store.echo = echo  # the sub-store the entries' attribute names
    app.dependency_overrides[authorize] = lambda: None  # the echo routes have no line in keel.server.policy
    for router in routers({}, groups=(EchoEndpoints,)):
        app.include_router(router)
    assert {("POST", "/api/v1/echo/{run_id}"), ("GET", "/api/v1/echo/{run_id}")} <= _operations(app)
    with serve_app(app) as url:
        store = RestStore(url)
        try:
            client = RestEcho(store)
            assert client.shout("r1", "hi", times=2) == ["r1:HI", "r1:HI"]
            assert client.shout("r1", text="again") == ["r1:AGAIN"]
            assert client.count("r1") == 2 and echo.calls == {"r1": 2}
            with pytest.raises(InvalidArgument, match="times must be a positive integer"):
                client.shout("r1", "x", times=0)  # the server's store refused it: the error crossed as its class
            with pytest.raises(NotFound, match="never shouted"):
                client.count("r2")
            with pytest.raises(TypeError):
                client.shout("r1")  # the ABC's signature is the client method's
        finally:
            store.close()
        # its routes carry the auth dependency like every other
        app.dependency_overrides[authorize] = _refuse
        assert httpx.post(f"{url}/api/v1/echo/r1", json={"text": "x"}).status_code == 403
        assert httpx.get(f"{url}/api/v1/echo/r1").status_code == 403


def _refuse() -> None:
    from keel.core.errors import PermissionDenied

    raise PermissionDenied("nobody may write")


def test_an_entry_that_does_not_place_every_parameter_is_refused_when_the_table_is_made() -> None:
    with pytest.raises(TypeError, match="travel as"):

        class Lost(Endpoints, store=EchoStore, attribute="echo", tag="echo"):  # times is in no schema
            shout = endpoint("POST", "/echo/{run_id}", body=type("TextIn", (BaseModel,), {"__annotations__": {"text": str}}))
            count = endpoint("GET", "/echo/{run_id}")

    with pytest.raises(TypeError, match=r"no endpoint for \['count'\]"):

        class Missing(Endpoints, store=EchoStore, attribute="echo", tag="echo"):
            shout = endpoint("POST", "/echo/{run_id}", body=ShoutIn)

    with pytest.raises(TypeError, match="hooks for no endpoint"):
        routers({"models.nothing": lambda request, kwargs: None})
    assert Arg().wire is None  # an argument travels under its own name unless told otherwise


def test_the_client_methods_are_the_tables(tmp_path: Path) -> None:
    """No hand-written client method per endpoint: every entry is the REST class's method, with the ABC's signature."""
    import inspect

    store = RestStore("http://127.0.0.1:9")
    try:
        for group, target in zip(
            GROUPS,
            (
                store,
                store.datasets,
                store.pipelines,
                store.models,
                store.deployments,
                store.predictions,
                store.monitors,
                store.audit,
                store.identity,
                store.labels,
                store.privacy,
            ),
            strict=True,
        ):
            for ep in group.endpoints():
                method: Any = getattr(target, ep.name)
                assert method.__func__ is ep.function, ep.key
                abc_method = getattr(group.store, ep.name)
                assert list(inspect.signature(method).parameters) == list(inspect.signature(abc_method).parameters)[1:]
        assert {"log_metrics", "end_run"} == set(GROUPS[0].hand_written)
    finally:
        store.close()
