"""/docs and /redoc of a platform server that requires tokens: the pages and every file they load answer without
one, from the server itself (issue 13: "blank offline"); nothing else becomes public with them."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.testing.services import serve_app

_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Assets(HTMLParser):
    """Every ``<script src>`` and ``<link href>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [v for k, v in attrs if k == wanted and v]


@pytest.fixture
def secured_url(tmp_path: Path) -> Iterator[str]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    store.identity.create_principal("ana")  # a store with users: tokens required
    app = create_app(store, open_artifact_store(str(tmp_path / "artifacts")), auth=True)
    with serve_app(app) as url:
        yield url
    store.close()


@pytest.mark.parametrize(("page", "bundle"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_the_docs_pages_load_only_same_origin_files_that_answer_without_a_token(secured_url: str, page: str, bundle: str) -> None:
    assert httpx.get(f"{secured_url}/api/v1/experiments").status_code == 401  # the API itself is closed
    answer = httpx.get(f"{secured_url}{page}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    text = answer.text.lower()
    assert "cdn" not in text and "http://" not in text and "https://" not in text and "fonts.googleapis" not in text
    parser = _Assets()
    parser.feed(answer.text)
    assert any(u.endswith(f"/{bundle}") for u in parser.urls), parser.urls
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # a path on this server
        asset = httpx.get(f"{secured_url}{url}")
        assert asset.status_code == 200, url
        assert _TYPES[Path(url).suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
    schema = httpx.get(f"{secured_url}/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "keel"


def test_only_the_docs_files_are_public_not_neighbouring_paths(secured_url: str) -> None:
    assert httpx.get(f"{secured_url}/docs-static/../api/v1/experiments").status_code in (401, 404)
    assert httpx.get(f"{secured_url}/docs-static/nothing-here.js").status_code == 404
    assert httpx.get(f"{secured_url}/docs-staticx/swagger-ui.css").status_code in (401, 404)
