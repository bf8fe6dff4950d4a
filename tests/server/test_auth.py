"""Authentication at the platform server, over real HTTP on 127.0.0.1: tokens expired, revoked or of the wrong
scope; DNS rebinding and cross-site requests refused; failed tokens rate-limited; the actor of a change is the
caller; protected models; tokens never in answers or logs; ``keel server`` refusing to run open on a public
address."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.services import free_port, serve_app

API = "/api/v1"


class Secured:
    def __init__(self, url: str, store: MetadataStore) -> None:
        self.url, self.store = url, store

    def token(self, name: str, role: str | None = None, *, model: str | None = None, **kwargs: Any) -> str:
        if name not in {p.name for p in self.store.identity.list_principals()}:
            self.store.identity.create_principal(name)
        if role is not None:
            self.store.identity.grant(name, role, model=model)
        return self.store.identity.create_token(name, **kwargs).secret

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**({"authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + API + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    app = create_app(store, open_artifact_store(str(tmp_path / "artifacts")), auth=True)
    with serve_app(app) as url:
        yield Secured(url, store)
    store.close()


def test_a_token_opens_what_its_role_and_scopes_allow(secured: Secured) -> None:
    editor = secured.token("ed", "editor")
    assert secured.call("POST", "/experiments", editor, json={"name": "e1"}).status_code == 200
    reader = secured.token("ed", scopes=["read"])  # the same editor, a token narrowed to reading
    assert secured.call("GET", "/experiments", reader).status_code == 200
    refused = secured.call("POST", "/experiments", reader, json={"name": "e2"})
    assert refused.status_code == 403 and "'write' permission" in refused.json()["error"]["message"]
    viewer = secured.token("vi", "viewer", scopes=["read", "write"])  # a scope cannot grant what the role has not
    assert secured.call("POST", "/experiments", viewer, json={"name": "e3"}).status_code == 403


def test_expired_revoked_and_malformed_tokens_are_refused_with_one_message(secured: Secured) -> None:
    expiring = secured.token("ex", "viewer", expires_at=int(time.time() * 1000) + 1500)
    assert secured.call("GET", "/experiments", expiring).status_code == 200
    time.sleep(1.6)
    revoked = secured.token("rv", "viewer")
    assert secured.call("GET", "/experiments", revoked).status_code == 200  # verified once, cached by the store
    token_id = next(t.id for t in secured.store.identity.list_tokens("rv"))
    secured.store.identity.revoke_token(token_id)
    for token in (expiring, revoked, revoked[:-1] + ("A" if revoked[-1] != "A" else "B"), "keel_nonsense", "x" * 40):
        answer = secured.call("GET", "/experiments", token)
        assert answer.status_code == 401, token
        assert answer.json()["error"] == {"code": "unauthenticated", "message": "invalid or expired token"}
        assert token not in answer.text and answer.headers["www-authenticate"].startswith("Bearer")
    assert secured.call("GET", "/experiments", None).status_code == 401
    assert secured.call("GET", "/health", None).status_code == 200  # public


def test_dns_rebinding_and_cross_site_requests_are_refused(secured: Secured) -> None:
    admin = secured.token("ad", "admin")
    rebound = secured.call("GET", "/experiments", admin, headers={"host": "evil.example:5050"})
    assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "bad_host"
    assert secured.call("GET", "/experiments", admin, headers={"host": "localhost:5050"}).status_code == 200
    # what a page on another site can send without a preflight: text/plain and forms
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        answer = secured.call("POST", "/experiments", admin, content=b'{"name": "csrf"}', headers={"content-type": kind})
        assert answer.status_code == 415 and answer.json()["error"]["code"] == "unsupported_media_type", kind
    answer = secured.call("POST", "/metrics", admin, content=b"{}", headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    assert "csrf" not in {e.name for e in secured.store.list_experiments()}
    assert "set-cookie" not in {k.lower() for k in secured.call("GET", "/experiments", admin).headers}


def test_repeated_token_failures_are_rate_limited_per_client(secured: Secured) -> None:
    good = secured.token("ok", "viewer")
    statuses = [secured.call("GET", "/experiments", "keel_000000000000_" + "A" * 43).status_code for _ in range(22)]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]
    limited = secured.call("GET", "/experiments", good)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert secured.call("GET", "/health", None).status_code == 200  # no token, no failure: health still answers


def test_the_actor_of_a_change_is_the_caller_never_the_body(secured: Secured) -> None:
    editor = secured.token("erin", "editor")
    version = secured.store.models.create_version("churn", flavor="sklearn", artifact_sha256="a" * 64, size=1, signature={})
    body = {"version": version.version, "force": True, "actor": "mallory", "reason": "spoof"}
    moved = secured.call("PUT", "/models/churn/aliases/production", editor, json=body)
    assert moved.status_code == 200, moved.text
    (change,) = secured.store.models.alias_history("churn")
    assert change.actor == "erin"
    created = secured.call("POST", "/deployments", editor, json={"name": "web", "primary": "models:/churn/1", "actor": "mallory"})
    assert created.status_code == 200, created.text
    assert [c.actor for c in secured.store.deployments.history("web")] == ["erin"]


def test_a_protected_model_moves_only_for_its_own_bindings_and_admins(secured: Secured) -> None:
    for name in ("churn", "fraud"):
        secured.store.models.create_version(name, flavor="sklearn", artifact_sha256="a" * 64, size=1, signature={})
    editor = secured.token("ed", "editor")
    owner = secured.token("owner", "editor", model="churn")  # protects churn: its own editor binding
    admin = secured.token("boss", "admin")
    body = {"version": 1, "force": True, "reason": "release"}
    refused = secured.call("PUT", "/models/churn/aliases/production", editor, json=body)
    assert refused.status_code == 403 and "protected" in refused.json()["error"]["message"]
    assert secured.call("PUT", "/models/fraud/aliases/production", editor, json=body).status_code == 200  # not protected
    forced = secured.call("PUT", "/models/churn/aliases/production", owner, json=body)
    assert forced.status_code == 403 and "needs an admin" in forced.json()["error"]["message"]
    assert secured.call("PUT", "/models/churn/aliases/production", admin, json=body).status_code == 200
    assert [c.actor for c in secured.store.models.alias_history("churn")] == ["boss"]


def test_a_protected_model_answers_traffic_only_by_its_own_bindings_change(secured: Secured) -> None:
    """Routing a deployment to a protected model is promoting it: the same rule as moving its aliases."""
    for _ in (1, 2):
        secured.store.models.create_version("churn", flavor="sklearn", artifact_sha256="a" * 64, size=1, signature={})
    editor = secured.token("ed", "editor")
    secured.token("owner", "editor")  # an editor of the project ...
    owner = secured.token("owner", "editor", model="churn")  # ... and of churn, which this binding protects
    created = secured.call("POST", "/deployments", owner, json={"name": "web", "primary": "models:/churn/1"})
    assert created.status_code == 200, created.text
    for body in ({"primary": "models:/churn/2"}, {"canaries": [["models:/churn/2", 0.5]]}):
        refused = secured.call("PUT", "/deployments/web/routes", editor, json=body)
        assert refused.status_code == 403 and "protected" in refused.json()["error"]["message"], refused.text
    assert secured.call("PUT", "/deployments/web/routes", owner, json={"primary": "models:/churn/2"}).status_code == 200
    refused = secured.call("POST", "/deployments/web/rollback", editor, json={"reason": "back"})
    assert refused.status_code == 403
    assert secured.call("POST", "/deployments", editor, json={"name": "web2", "primary": "models:/churn/2"}).status_code == 403
    assert secured.store.deployments.get("web").primary == "models:/churn/2"
    shadowed = secured.call("PUT", "/deployments/web/routes", editor, json={"shadows": ["models:/churn/1"]})
    assert shadowed.status_code == 200  # a shadow answers nobody


def test_a_scheduler_account_rolls_back_and_keeps_its_own_leases(secured: Secured) -> None:
    """The service role has what a monitor's actions need (deploy: roll back, add a shadow), and a lease taken by
    one principal's scheduler cannot be released or taken over by another principal naming the same owner."""
    for _ in (1, 2):
        secured.store.models.create_version("fraud", flavor="sklearn", artifact_sha256="a" * 64, size=1, signature={})
    editor = secured.token("ed", "editor")
    assert secured.call("POST", "/deployments", editor, json={"name": "live", "primary": "models:/fraud/1"}).status_code == 200
    assert secured.call("PUT", "/deployments/live/routes", editor, json={"primary": "models:/fraud/2"}).status_code == 200
    scheduler, other = secured.token("sched", "service"), secured.token("intruder", "service")
    rolled = secured.call("POST", "/deployments/live/rollback", scheduler, json={"reason": "alert 7"})
    assert rolled.status_code == 200, rolled.text
    assert secured.store.deployments.get("live").primary == "models:/fraud/1"
    assert secured.call("POST", "/deployments", scheduler, json={"name": "x", "primary": "models:/fraud/1"}).status_code == 403
    lease = {"job": "monitor:live", "owner": "replica-1", "ttl_ms": 60_000}
    assert secured.call("POST", "/scheduler-leases/acquire", scheduler, json=lease).json() == {"acquired": True}
    secured.call("POST", "/scheduler-leases/release", other, json={"job": "monitor:live", "owner": "replica-1"})
    assert secured.call("POST", "/scheduler-leases/acquire", other, json=lease).json() == {"acquired": False}  # still held
    assert secured.call("POST", "/scheduler-leases/acquire", scheduler, json=lease).json() == {
        "acquired": True
    }  # renewed by its owner


def test_the_failure_limiter_keeps_at_most_max_clients() -> None:
    from keel.core.failures import MAX_CLIENTS, FailureLimiter

    limiter = FailureLimiter(limit=2)
    for i in range(MAX_CLIENTS + 50):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._failures) == MAX_CLIENTS
    assert (
        "10.0.0.0" not in limiter._failures
        and f"10.0.{(MAX_CLIENTS + 49) // 256}.{(MAX_CLIENTS + 49) % 256}" in limiter._failures
    )
    limiter.failed("10.0.0.1")  # a client seen again moves to the recent end
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is not None and limiter.retry_after("10.9.9.9") is None


def test_tokens_never_appear_in_answers_or_logs(secured: Secured, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = secured.token("ty", "viewer")
    secured.call("GET", "/experiments", token)
    wrong = token[:-3] + "xyz"
    answers = [secured.call("GET", "/experiments", wrong), secured.call("POST", "/experiments", token, json={"name": "n"})]
    for answer in answers:
        assert token not in answer.text and wrong not in answer.text and token.split("_", 2)[2] not in answer.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in logged and wrong not in logged and token.split("_", 2)[2] not in logged


def test_an_open_server_is_one_local_admin_and_records_that_user(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    with serve_app(create_app(store, open_artifact_store(str(tmp_path / "a")))) as url:  # no users: auth off
        assert httpx.post(f"{url}{API}/experiments", json={"name": "e"}).status_code == 200
        assert httpx.get(f"{url}{API}/experiments", headers={"host": "evil.example"}).status_code == 400
    store.close()


def keel_server(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "keel.cli.main", "server", *args]
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_keel_server_refuses_to_run_open_on_a_public_address(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keel.db'}"
    base = ("--store", db, "--artifacts", str(tmp_path / "a"), "--port", str(free_port()))
    refused = keel_server("--host", "0.0.0.0", *base)
    out = refused.communicate(timeout=60)[0].decode()
    assert refused.returncode != 0 and "refusing to serve 0.0.0.0 without authentication" in out and "--insecure" in out
    insecure = keel_server("--host", "0.0.0.0", "--insecure", *base)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and insecure.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{base[-1]}{API}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{base[-1]}{API}/experiments", timeout=5).status_code == 200
    finally:
        insecure.terminate()
        out = insecure.communicate(timeout=30)[0].decode()
    assert "OPEN: no authentication" in out and "WARNING: --insecure" in out
    on = keel_server("--auth", "on", *base)
    out = on.communicate(timeout=60)[0].decode()
    assert on.returncode != 0 and "has no users" in out
