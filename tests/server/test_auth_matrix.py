"""Every route of the OpenAPI schema, called as every role, against ``keel.server.policy``: a role with the
route's permission gets past auth (whatever the store then says of the dummy input, never a 5xx), a role without
it gets 403, no token 401. A route with no line in the policy table stops the server from starting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from keel.core.identity import ROLE_PERMISSIONS
from keel.server.app import check_policies, create_app
from keel.server.policy import PUBLIC, alternatives, policy_for
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.services import serve_app

ROLES = ("viewer", "editor", "admin", "service", "annotator")
DUMMY = {
    "run_id": "0" * 32, "sha256": "a" * 64, "version_id": "1", "experiment_id": "1", "name": "m", "alias": "production",
    "version": "1", "deployment": "d", "monitor": "mon", "rule": "r", "alert_id": "1", "cache_key": "c" * 64,
    "batch_id": "b" * 32, "token_id": "0" * 12,
}  # fmt: skip


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], MetadataStore]]:
    """A server with auth on and one principal (and token) per role, plus one with no role."""
    base = tmp_path_factory.mktemp("auth")
    store = open_store(f"sqlite:///{base / 'keel.db'}")
    tokens = {}
    for role in (*ROLES, "none"):
        store.identity.create_principal(f"{role}-user", "service" if role == "service" else "user")
        if role != "none":
            store.identity.grant(f"{role}-user", role)
        tokens[role] = store.identity.create_token(f"{role}-user", name="matrix").secret
    app = create_app(store, open_artifact_store(str(base / "artifacts")), auth=True)
    with serve_app(app) as url:
        yield url, tokens, store
    store.close()


def operations(url: str) -> list[tuple[str, str]]:
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


def call(url: str, method: str, path: str, token: str | None) -> httpx.Response:
    concrete = re.sub(r"\{(\w+)\}", lambda m: DUMMY[m.group(1)], path)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if method in ("GET", "HEAD", "DELETE"):
        return httpx.request(method, url + concrete, headers=headers, timeout=30)
    return httpx.request(method, url + concrete, headers=headers, json={}, timeout=30)


def test_every_route_answers_each_role_as_the_policy_says(secured: tuple[str, dict[str, str], Any]) -> None:
    url, tokens, _ = secured
    ops = operations(url)
    assert len(ops) >= 80
    checked = 0
    for method, path in ops:
        needed = policy_for(method, path)
        assert needed is not None, f"{method} {path} has no access policy"
        if needed == PUBLIC:
            assert call(url, method, path, None).status_code < 400
            continue
        anonymous = call(url, method, path, None)
        assert anonymous.status_code == 401, f"{method} {path} without a token: {anonymous.status_code} {anonymous.text}"
        for role in (*ROLES, "none"):
            allowed = role != "none" and any(p in ROLE_PERMISSIONS[role] for p in alternatives(needed))
            answer = call(url, method, path, tokens[role])
            assert answer.status_code < 500, f"{method} {path} as {role}: {answer.status_code} {answer.text}"
            if allowed:
                assert answer.status_code not in (401, 403), f"{method} {path} refused {role}: {answer.text}"
            else:
                assert answer.status_code == 403, f"{method} {path} let {role} in ({answer.status_code}): {answer.text}"
                assert method == "HEAD" or answer.json()["error"]["code"] == "permission_denied"
            checked += 1
    assert checked == (len(ROLES) + 1) * sum(policy_for(m, p) != PUBLIC for m, p in ops)


def test_a_route_without_a_policy_stops_the_server_from_starting(tmp_path: Path) -> None:
    app = create_app(open_store(f"sqlite:///{tmp_path / 'k.db'}"), open_artifact_store(str(tmp_path / "a")))

    @app.post("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match=r"routes without an access policy .*POST /api/v1/forgotten"):
        check_policies(app)
    assert isinstance(app, FastAPI)
