"""The REST API: OpenAPI, one auth dependency on every mutating route, JSON 4xx errors, never a 500."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import httpx
import pytest

from keel.core.errors import PermissionDenied
from keel.server.app import create_app
from keel.server.auth import authorize
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.services import serve_app


def test_every_route_goes_through_the_auth_dependency(tmp_path: Path) -> None:
    """Swap the auth dependency for one that refuses everyone: every route of the schema must answer 403."""
    app = create_app(open_store(f"sqlite:///{tmp_path / 'k.db'}"), open_artifact_store(str(tmp_path / "a")))

    def refuse() -> None:
        raise PermissionDenied("nobody may do anything")

    app.dependency_overrides[authorize] = refuse
    with serve_app(app) as url:
        paths = httpx.get(f"{url}/openapi.json").json()["paths"]
        operations = [(m.upper(), p) for p, ops in paths.items() for m in ops]
        assert len(operations) >= 80
        for method, path in operations:
            concrete = re.sub(r"\{\w+\}", "1", path.replace("{run_id}", "0" * 32).replace("{sha256}", "a" * 64))
            response = httpx.request(method, url + concrete, json={} if method == "POST" else None)
            assert response.status_code == 403, f"{method} {path} skips the auth dependency: {response.text}"


def test_openapi_schema_describes_the_api(server_url: str) -> None:
    schema = httpx.get(f"{server_url}/openapi.json").json()
    assert schema["info"]["title"] == "keel"
    for path in ("/api/v1/runs", "/api/v1/metrics", "/api/v1/runs/search", "/api/v1/artifacts/{sha256}"):
        assert path in schema["paths"]


def _run_id(server_url: str) -> str:
    exp = httpx.post(f"{server_url}/api/v1/experiments", json={"name": "api-tests"}).json()
    return httpx.post(f"{server_url}/api/v1/runs", json={"experiment_id": exp["id"]}).json()["id"]


@pytest.mark.parametrize(
    "method, path, body, status, needle",
    [
        ("POST", "/api/v1/experiments", {"name": "../x"}, 400, "experiment must be"),
        ("POST", "/api/v1/experiments", {}, 400, "name: Field required"),
        ("POST", "/api/v1/runs", {"experiment_id": "seven"}, 400, "experiment_id"),
        ("POST", "/api/v1/runs", {"experiment_id": 99999999}, 404, "experiment 99999999 does not exist"),
        ("POST", "/api/v1/runs", {"experiment_id": 1, "colour": "red"}, 400, "colour: Extra inputs"),
        ("GET", "/api/v1/runs/0123456789abcdef0123456789abcdef", None, 404, "does not exist"),
        ("POST", "/api/v1/metrics", "not json", 400, "not valid JSON"),
        ("POST", "/api/v1/metrics", {"rows": "x"}, 400, "rows must be a list"),
        ("POST", "/api/v1/metrics", {"rows": [[1, 2]]}, 400, "metric row must be"),
        ("POST", "/api/v1/metrics", {"rows": [["RUN", "loss", "lots", 0, 0]]}, 400, "value must be a number"),
        ("POST", "/api/v1/metrics", {"rows": [["RUN", "loss", 1.0, None, 0]]}, 400, "step must be a finite integer"),
        ("POST", "/api/v1/metrics", {"rows": [["RUN", "", 1.0, 0, 0]]}, 400, "metric key must be"),
        ("POST", "/api/v1/runs/RUN/params", {"params": {"a b!": "1"}}, 400, "param key must be"),
        ("POST", "/api/v1/runs/RUN/end", {"status": "paused"}, 400, "status must be one of"),
        ("POST", "/api/v1/runs/search", {"filter": "metrics.a >> 1"}, 400, "filter"),
        ("POST", "/api/v1/runs/search", {"max_results": -1}, 400, "max_results must be"),
        (
            "POST",
            "/api/v1/runs/RUN/artifacts",
            {"artifacts": [{"path": "../x", "sha256": "a" * 64, "size": 1}]},
            400,
            "artifact path",
        ),
        ("GET", "/api/v1/nothing-here", None, 404, "Not Found"),
        ("DELETE", "/api/v1/experiments", None, 405, "Method Not Allowed"),
    ],
)
def test_bad_requests_get_a_json_4xx_that_names_the_problem(
    server_url: str, method: str, path: str, body: object, status: int, needle: str
) -> None:
    run_id = _run_id(server_url)
    kwargs: dict = {"headers": {"content-type": "application/json"}}
    if isinstance(body, str):
        kwargs["content"] = body
    elif body is not None:
        kwargs["content"] = httpx.Request("POST", "/", json=body).content.replace(b"RUN", run_id.encode())
    response = httpx.request(method, server_url + path.replace("RUN", run_id), **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"], error
    assert error["code"]


def test_nothing_is_half_written_by_a_refused_batch(server_url: str) -> None:
    run_id = _run_id(server_url)
    rows = [[run_id, "loss", 0.5, 0, 1], [run_id, "loss", "bad", 1, 2]]
    assert httpx.post(f"{server_url}/api/v1/metrics", json={"rows": rows}).status_code == 400
    assert httpx.get(f"{server_url}/api/v1/runs/{run_id}/metrics", params={"key": "loss"}).json() == []


JUNK = [None, 0, -1, 2**70, 1.5, "", "x", "../..", "\x00", [], {}, [1, "a"], {"a": None}, True, "NaN", "a" * 300]


def test_no_input_produces_a_500(server_url: str) -> None:
    """A bounded random walk over routes and junk bodies: every answer is a 2xx or a JSON 4xx."""
    run_id = _run_id(server_url)
    rng = random.Random(7)
    routes = [
        ("POST", "/api/v1/experiments", ["name", "project"]),
        ("POST", "/api/v1/runs", ["experiment_id", "name", "parent_run_id", "tags", "params", "start_time", "code"]),
        ("POST", f"/api/v1/runs/{run_id}/params", ["params"]),
        ("POST", f"/api/v1/runs/{run_id}/tags", ["tags"]),
        ("POST", f"/api/v1/runs/{run_id}/end", ["status", "end_time"]),
        ("POST", "/api/v1/runs/heartbeat", ["run_ids", "time"]),
        ("POST", "/api/v1/runs/search", ["experiment_ids", "filter", "order_by", "max_results", "page_token"]),
        ("POST", "/api/v1/metrics", ["rows"]),
        ("POST", f"/api/v1/runs/{run_id}/artifacts", ["artifacts"]),
    ]
    with httpx.Client(base_url=server_url) as client:
        for (method, path, fields), _ in itertools.product(routes, range(25)):
            body = {f: rng.choice(JUNK) for f in fields if rng.random() < 0.8}
            if path.endswith("/metrics") and rng.random() < 0.5:
                body = {"rows": [[run_id, rng.choice(JUNK), rng.choice(JUNK), rng.choice(JUNK), rng.choice(JUNK)]]}
            response = client.request(method, path, json=body)
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert response.json()["error"]["message"]
        for bad_id in ["x" * 40, "%00", "..", "a-b"]:
            response = client.get(f"/api/v1/runs/{bad_id}")
            assert 400 <= response.status_code < 500


def test_out_of_range_numbers_are_a_4xx(server_url: str) -> None:
    huge = 10**30
    checks = [
        ("GET", f"/api/v1/experiments/{huge}", None),
        ("POST", "/api/v1/runs", {"experiment_id": huge}),
        ("POST", "/api/v1/runs/search", {"experiment_ids": [huge]}),
        ("POST", "/api/v1/metrics", {"rows": [[[1], "k", 1.0, 1, 1000]]}),
        ("POST", "/api/v1/metrics", {"rows": [["r" * 32, {"a": 1}, 1.0, 1, 1000]]}),
    ]
    for method, path, body in checks:
        response = httpx.request(method, server_url + path, json=body)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["error"]["message"]
