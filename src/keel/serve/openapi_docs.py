"""``/docs`` (Swagger UI) and ``/redoc`` served with no network.

FastAPI's own pages load their JavaScript and CSS from a CDN: on a host with no internet they stay blank.
The files come from the PyPI package ``fastapi-offline`` (MIT; swagger-ui-dist 5 and redoc 2, refreshed by
its maintainer), a core dependency of keel: keel's repository keeps no minified third-party bundles.
Only its ``static`` folder is used, not its ``FastAPIOffline`` constructor, so that this works on any app.

>>> app = FastAPI(docs_url=None, redoc_url=None)   # doctest: +SKIP
>>> install_offline_docs(app)                      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

STATIC_URL = "/docs-static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def assets_dir() -> Path:
    """The folder holding ``ASSETS`` (inside the installed ``fastapi_offline`` package)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_offline_docs(
    app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc", static_url: str = STATIC_URL
) -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url`` from files under ``static_url``.

    FastAPI's CDN pages at those paths, if the app was made with them, are removed first (as is what an earlier
    call installed). An app without an OpenAPI schema (``openapi_url=None``) gets no docs.
    """
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    replaced = {docs_url, redoc_url, static_url}  # FastAPI's own pages, or an earlier call's: calling twice is harmless
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, (Route, Mount)) and r.path in replaced)]
    app.mount(static_url, StaticFiles(directory=assets_dir()), name="keel-offline-docs")
    # swagger-ui asks validator.swagger.io to check the schema unless told not to: no request leaves the host
    swagger_parameters = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{static_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{static_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{static_url}/favicon.png",
            swagger_ui_parameters=swagger_parameters,
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{static_url}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{static_url}/favicon.png",
            with_google_fonts=False,
        )

    app.docs_url, app.redoc_url = docs_url, redoc_url
