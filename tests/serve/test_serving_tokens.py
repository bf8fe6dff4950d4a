"""``keel serve --require-token``: a prediction needs a token with the ``serve`` permission; health stays open; a
revoked token stops working within the verdict's lifetime; bad tokens from one client are rate-limited."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np

import keel.registry as registry
from keel.context import Context
from keel.serve import create_app
from keel.testing.services import serve_app, wait_ready


class Ones:
    def predict(self, X: object) -> np.ndarray:
        return np.ones(len(np.asarray(X)), dtype=np.int64)


def test_predictions_need_a_token_with_the_serve_permission(tmp_path: Path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    registry.register(Ones(), "ones", input_example=np.ones((3, 2)), ctx=ctx)
    ctx.store.deployments.create("ones", "models:/ones/1")
    identity = ctx.store.identity
    tokens = {}
    for name, role in (("svc", "service"), ("vic", "viewer"), ("ed", "editor")):
        identity.create_principal(name, "service" if role == "service" else "user")
        identity.grant(name, role)
        tokens[name] = identity.create_token(name).secret
    tokens["ed-read"] = identity.create_token("ed", scopes=["read"]).secret  # an editor's token narrowed to reading
    body = {"instances": [[1.0, 2.0]]}
    app = create_app("ones", ctx=ctx, prediction_log=None, require_token=True, token_ttl=0.5)
    with serve_app(app) as url:
        wait_ready(url)

        def predict(token: str | None, client: httpx.Client | None = None) -> httpx.Response:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            return (client or httpx).post(f"{url}/predict", json=body, headers=headers)  # type: ignore[attr-defined]

        missing = predict(None)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert predict(tokens["svc"]).json()["predictions"] == [1]
        assert predict(tokens["ed"]).status_code == 200
        for refused in ("vic", "ed-read"):
            answer = predict(tokens[refused])
            assert answer.status_code == 403 and "'serve' permission" in answer.json()["error"], refused
        v2 = httpx.post(f"{url}/v2/models/ones/infer", json={"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64",
                                                                          "data": [1.0, 2.0]}]})  # fmt: skip
        assert v2.status_code == 401
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200  # load balancers need no token
        # revocation: at most the verdict's lifetime later
        (svc_token,) = identity.list_tokens("svc")
        identity.revoke_token(svc_token.id)
        time.sleep(0.6)
        revoked = predict(tokens["svc"])
        assert revoked.status_code == 401 and tokens["svc"] not in revoked.text
        # a client that keeps failing is refused before its tokens are checked, good ones included
        bad = [predict("keel_000000000000_" + chr(65 + i % 26) * 43).status_code for i in range(21)]
        assert bad[:19] == [401] * 19 and bad[-1] == 429
        time.sleep(0.6)  # the editor's cached verdict expires: its token must be checked again, and the client is limited
        limited = predict(tokens["ed"])
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    ctx.close()


def test_a_replica_of_a_remote_store_checks_tokens_through_the_server(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A replica whose store is a keel server, as a service account: it verifies callers' tokens and reads their
    roles through the server (the service role may), and loads a model an admin uploaded (a trusted writer)."""
    from keel.server.app import create_app as platform_app
    from keel.store.artifacts import open_artifact_store
    from keel.store.metadata import open_store

    store = open_store(f"sqlite:///{tmp_path / 'server.db'}")
    tokens = {}
    for name, role in (("boss", "admin"), ("replica", "service"), ("ed", "editor"), ("vic", "viewer")):
        store.identity.create_principal(name, "service" if role == "service" else "user")
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    with serve_app(platform_app(store, open_artifact_store(str(tmp_path / "artifacts")), auth=True)) as server:

        def context(token: str) -> Context:
            monkeypatch.setenv("KEEL_TOKEN", token)
            ctx = Context(server, server)
            assert ctx.store is not None and ctx.artifacts is not None  # opened with this token
            return ctx

        admin = context(tokens["boss"])
        registry.register(Ones(), "ones", input_example=np.ones((3, 2)), ctx=admin)
        admin.store.deployments.create("ones", "models:/ones/1")
        replica = context(tokens["replica"])
        app = create_app("ones", ctx=replica, prediction_log=None, require_token=True)
        with serve_app(app) as url:
            wait_ready(url)
            body = {"instances": [[1.0, 2.0]]}
            ok = httpx.post(f"{url}/predict", json=body, headers={"authorization": f"Bearer {tokens['ed']}"})
            assert ok.status_code == 200 and ok.json()["predictions"] == [1], ok.text
            refused = httpx.post(f"{url}/predict", json=body, headers={"authorization": f"Bearer {tokens['vic']}"})
            assert refused.status_code == 403 and "vic may not call this model" in refused.json()["error"]
        for ctx in (admin, replica):
            ctx.close()
    store.close()
