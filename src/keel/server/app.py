"""The platform server: ``create_app(store, artifacts)`` builds the FastAPI application.

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status: each ``KeelError``
class maps to one status, request validation failures to 400, a body over its limit to 413
(``keel.server.limits``). Messages never carry the server's paths (``keel.server.redaction``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from keel.core.config import MAX_ARTIFACT_BYTES, MAX_REQUEST_BYTES
from keel.core.errors import KeelError, StoreUnavailable
from keel.core.failures import FailureLimiter
from keel.server.auth import Guard, ProjectIndex, authorize
from keel.server.endpoints import routers as table_routers
from keel.server.limits import BodyLimit
from keel.server.ownership import RunOwners
from keel.server.policy import policy_for
from keel.server.redaction import redactor
from keel.server.responses import OrjsonResponse, error_response
from keel.server.routes import artifacts, labels, models, tracking
from keel.store.artifacts import ArtifactStore
from keel.store.metadata.base import MetadataStore

log = logging.getLogger("keel.server")


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        got = err.get("input")
        shown = repr(got)[:60] if "input" in err and err.get("type") != "missing" else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}" + (f" (got {shown})" if shown else ""))
    return "; ".join(parts)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (JSON) with ``change`` applied to every string in it: an error's details are redacted like its message."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _kind(store: object) -> str:
    """What a store is ("sqlite", "postgresql", "local", "s3"...), never where: no path, no credentials."""
    dialect = getattr(store, "dialect", None)
    if isinstance(dialect, str):
        return dialect
    if getattr(store, "local", False):
        return "local"
    url = str(getattr(store, "url", ""))
    return url.split("://", 1)[0] if "://" in url else type(store).__name__


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def create_app(
    store: MetadataStore,
    artifact_store: ArtifactStore,
    *,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    max_artifact_bytes: int = MAX_ARTIFACT_BYTES,
    auth: bool | None = None,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
    limiter: FailureLimiter | None = None,
) -> FastAPI:
    """The REST API over ``store`` and ``artifact_store``; OpenAPI schema at ``/openapi.json``.

    Request bodies are limited to ``max_request_bytes`` (JSON) and ``max_artifact_bytes``
    (artifact uploads); the ``keel server`` command passes the configured limits. ``auth``: tokens required on
    every route but health and docs (None: when the store has principals); ``allowed_hosts``: what the ``Host``
    header may name (``keel.server.auth.Guard``); ``limiter``: how many failed tokens a client may send (default: 20
    a minute).
    """
    from keel import __version__
    from keel.serve.openapi_docs import install_offline_docs

    if auth is None:
        auth = store.identity.count_principals() > 0
    app = FastAPI(title="keel", version=__version__, default_response_class=OrjsonResponse, dependencies=[Depends(authorize)])
    install_offline_docs(app)  # /docs and /redoc from files in the package: no CDN
    app.state.store = store
    app.state.artifacts = artifact_store
    app.state.auth = auth
    app.state.run_owners = RunOwners(store)
    app.state.projects = ProjectIndex(store)  # the project of a run or an experiment (keel.server.auth)
    app.add_middleware(BodyLimit, max_request_bytes=max_request_bytes, max_artifact_bytes=max_artifact_bytes)
    # added last, so it runs first: a request from a wrong host, of a wrong type or without a valid token stops here
    hosts = frozenset(h.lower() for h in allowed_hosts)
    app.state.limiter = limiter or FailureLimiter()  # the UI's sign-in counts failures with the same limiter
    app.add_middleware(Guard, store=store, auth=auth, allowed_hosts=hosts, limiter=app.state.limiter)
    redact = redactor(store, artifact_store)
    # hand-written routes first (the metric flush, end_run, GET /experiments), then one per entry of the endpoint table
    generated = table_routers({**models.HOOKS, **labels.HOOKS})
    for router in (tracking.read, tracking.write, artifacts.read, artifacts.write, *generated):
        app.include_router(router)

    @app.get("/api/v1/health", tags=["health"])
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "store": _kind(store),
            "artifacts": _kind(artifact_store),
            "heartbeat_timeout": store.heartbeat_timeout,
        }

    @app.exception_handler(KeelError)
    async def keel_error(_: Request, exc: KeelError) -> OrjsonResponse:
        # only StoreUnavailable reports what a filesystem or driver said; the others may echo the client's values
        drivers = isinstance(exc, StoreUnavailable)
        details = _map_strings(exc.details, lambda text: redact(text, drivers))
        return error_response(exc.http_status, exc.code, redact(exc.message, drivers), details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> OrjsonResponse:
        return error_response(400, "invalid_argument", _describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> OrjsonResponse:
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _: ClientDisconnect) -> OrjsonResponse:
        # the client's choice (a crash, a timeout, Ctrl-C), not a server fault: one line, no traceback
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.warning("%s disconnected during %s %s; nothing was stored from it", client, request.method, request.url.path)
        return error_response(400, "client_disconnected", "the client disconnected before its request was read")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unexpected error")
        return error_response(500, "internal", f"unexpected {exc.__class__.__name__}; see the server log")

    check_policies(app)
    return app


def check_policies(app: FastAPI) -> None:
    """Every route (the OpenAPI schema's operations and the UI's pages, which it leaves out) has a line in
    ``keel.server.policy``, or the server does not start."""
    from fastapi.routing import APIRoute

    operations = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    operations |= {(m, route.path) for route in app.routes if isinstance(route, APIRoute) for m in route.methods or ()}
    missing = [f"{method} {path}" for method, path in sorted(operations) if policy_for(method, path) is None]
    if missing:
        raise RuntimeError(f"routes without an access policy (keel.server.policy): {', '.join(sorted(missing))}")
