"""/docs and /redoc with no network: every script, style sheet and icon comes from the server itself."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount, Route

from keel.context import Context
from keel.serve import create_app
from keel.serve.openapi_docs import STATIC_URL, install_offline_docs
from keel.testing.services import serve_app


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]


def check_docs(url: str) -> None:
    """Both pages answer HTML whose assets are local, answer 200 and are what the page expects."""
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for page, wanted in (("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}), ("/redoc", {"redoc.standalone.js"})):
        r = httpx.get(f"{url}{page}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
        parser = _Links()
        parser.feed(r.text)
        assert {u.rsplit("/", 1)[-1] for u in parser.urls} >= wanted
        for asset in parser.urls:
            assert asset.startswith(f"{STATIC_URL}/"), asset
            got = httpx.get(f"{url}{asset}")
            assert got.status_code == 200, asset
            assert kinds[Path(asset).suffix] in got.headers["content-type"]
            assert len(got.content) > 1000  # the real bundle, not an empty placeholder
    schema = httpx.get(f"{url}/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")


def test_the_inference_app_serves_its_docs_offline(tmp_path: Path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    app = create_app("models:/absent/1", ctx=ctx)  # the docs answer whether or not a model ever loads
    install_offline_docs(app)  # a second call (create_app already made one) replaces, never duplicates
    paths = [r.path for r in app.router.routes if isinstance(r, (Route, Mount))]
    assert paths.count("/docs") == 1 and paths.count("/redoc") == 1 and paths.count(STATIC_URL) == 1
    with serve_app(app) as url:
        check_docs(url)
        body = httpx.get(f"{url}/docs").text
        assert '"validatorUrl": null' in body  # swagger-ui would otherwise send the schema to validator.swagger.io
    ctx.close()


def test_the_platform_server_serves_its_docs_offline(server_url: str) -> None:
    check_docs(server_url)


def test_fastapis_cdn_pages_are_replaced_and_an_app_without_schema_gets_none() -> None:
    app = FastAPI()  # FastAPI's own /docs and /redoc, from a CDN
    install_offline_docs(app, docs_url="/docs", redoc_url="/redoc")
    with serve_app(app) as url:
        assert "cdn.jsdelivr" not in httpx.get(f"{url}/docs").text
        check_docs(url)
    bare = FastAPI(openapi_url=None)
    install_offline_docs(bare)
    assert not [r for r in bare.router.routes if getattr(r, "path", None) in ("/docs", "/redoc", STATIC_URL)]


@pytest.mark.parametrize("name", ["swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"])
def test_the_assets_ship_with_the_installed_package(name: str) -> None:
    from keel.serve.openapi_docs import assets_dir

    assert (assets_dir() / name).stat().st_size > 1000
