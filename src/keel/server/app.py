"""The platform server: ``create_app(store, artifacts)`` builds the FastAPI application.

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx status: each ``KeelError``
class maps to one status, request validation failures to 400.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from keel.core.errors import KeelError
from keel.server.responses import OrjsonResponse
from keel.server.routes import artifacts, datasets, models, pipelines, tracking
from keel.store.artifacts import ArtifactStore
from keel.store.metadata.base import TrackingStore

log = logging.getLogger("keel.server")


def _error(status: int, code: str, message: str) -> OrjsonResponse:
    return OrjsonResponse({"error": {"code": code, "message": message}}, status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        got = err.get("input")
        shown = repr(got)[:60] if "input" in err and err.get("type") != "missing" else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}" + (f" (got {shown})" if shown else ""))
    return "; ".join(parts)


def create_app(store: TrackingStore, artifact_store: ArtifactStore) -> FastAPI:
    """The REST API over ``store`` and ``artifact_store``; OpenAPI schema at ``/openapi.json``."""
    from keel import __version__

    app = FastAPI(title="keel", version=__version__, default_response_class=OrjsonResponse)
    app.state.store = store
    app.state.artifacts = artifact_store
    routers = (tracking, artifacts, datasets, pipelines, models)
    for router in [r for module in routers for r in (module.read, module.write)]:
        app.include_router(router)

    @app.get("/api/v1/health", tags=["health"])
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "store": repr(store),
            "heartbeat_timeout": store.heartbeat_timeout,
        }

    @app.exception_handler(KeelError)
    async def keel_error(_: Request, exc: KeelError) -> OrjsonResponse:
        return _error(exc.http_status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> OrjsonResponse:
        return _error(400, "invalid_argument", _describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> OrjsonResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unexpected error")
        return _error(500, "internal", f"unexpected {exc.__class__.__name__}; see the server log")

    return app
