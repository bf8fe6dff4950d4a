"""Mounting the UI on the platform server's app: the pages' routers, the static files, login and logout.

Every page is a GET route under ``/ui`` behind the same ``authorize`` dependency as the REST API, so each has its
line in ``keel.server.policy``. Pages live in ``keel.ui.pages``, one module per area, each with a ``router``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from keel.core.errors import InvalidArgument, TooManyFailures, Unauthenticated
from keel.core.identity import effective_permissions
from keel.server.app import check_policies
from keel.server.auth import UI_COOKIE
from keel.ui.pages import admin, audit, compare, datasets, deployments, home, label, models, monitors, run_detail, runs
from keel.ui.respond import page

STATIC = Path(__file__).parent / "static"
COOKIE = UI_COOKIE  # HttpOnly, SameSite=Strict, Path=/ui: the browser's bearer token, never sent to /api
COOKIE_DAYS = 7
PAGES = (home, runs, run_detail, compare, datasets, models, deployments, audit, monitors, admin, label)


def install_ui(app: FastAPI) -> None:
    """Add the UI to ``app`` (made by ``keel.server.app.create_app``): ``/`` redirects to ``/ui/``."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for module in PAGES:
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/ui/") -> HTMLResponse:
        return page(request, "login.html", title="Sign in", next=_local(next), auth=bool(request.app.state.auth))

    @app.post("/ui/session", include_in_schema=False)
    def login(request: Request, body: dict[str, Any]) -> Response:
        token = body.get("token")
        if not isinstance(token, str) or not token.strip():
            raise InvalidArgument.for_field("token", token, "an API token (keel tokens create)")
        limiter = request.app.state.limiter
        client = request.client.host if request.client else "unknown"
        wait = limiter.retry_after(client)
        if wait is not None:  # as the API's Guard answers a client over the limit: 429, not another 401
            raise TooManyFailures("too many failed sign-ins: try again later", retry_after=wait)
        identity = request.app.state.store.identity
        try:
            principal, record = identity.authenticate(token.strip())
        except Unauthenticated:
            limiter.failed(client)
            raise Unauthenticated("invalid or expired token") from None
        permissions = effective_permissions(tuple(identity.bindings(principal.name)), record.scopes)
        # an annotator may not read the experiments page: their home is the label projects
        home = "/ui/label" if "read" not in permissions and "annotate" in permissions else "/ui/"
        answer = JSONResponse({"home": home})
        answer.set_cookie(COOKIE, token.strip(), max_age=COOKIE_DAYS * 86400, path="/ui", httponly=True, samesite="strict",
                          secure=request.url.scheme == "https")  # fmt: skip
        return answer

    @app.post("/ui/logout", include_in_schema=False)
    def logout() -> Response:
        answer = Response(status_code=204)
        answer.delete_cookie(COOKIE, path="/ui")
        return answer

    check_policies(app)  # the pages too: a page without a line in keel.server.policy stops the server


def _local(target: str) -> str:
    """Where to go after signing in: a path of this server only (never ``//evil.example`` or ``https://...``)."""
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui/"
