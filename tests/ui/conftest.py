"""Real-browser fixtures for the web UI: the quickstart's store, a real ``keel server`` over it, headless Chromium.

The store is made once per session by ``keel quickstart --trials 4`` (about 30 s), as a user makes it. The browser is
Debian's ``chromium`` driven by Playwright (never ``playwright install``: browser downloads do not work here); it
resolves no host name but 127.0.0.1, so a page that needs the network fails here as it would offline. Every page a
test opens is watched: a request to another origin, a console error or an uncaught exception fails the test, and the
last view of each page is saved as a screenshot in ``$KEEL_TEST_ARTIFACTS/ui-screenshots`` (default: under pytest's
temporary folder; printed at the end of the session).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from keel.testing import services
from keel.testing.cli import keel_cmd

# read at import: the suite's autouse fixture clears every KEEL_* variable before each test
ARTIFACTS = os.environ.get("KEEL_TEST_ARTIFACTS")
CHROMIUM = os.environ.get("KEEL_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    # no network but the loopback server: a page that loads anything from elsewhere breaks here, as offline
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
NOT_NETWORK = ("data:", "blob:", "about:")
_shots: list[Path] = []


@dataclass(frozen=True)
class UiStore:
    """The quickstart's store: its folder (``.keel``), metadata URI and artifact root."""

    home: Path
    uri: str
    artifacts: str


@dataclass(frozen=True)
class AuthServer:
    """A server with tokens required, over a copy of the quickstart's store with one admin user."""

    url: str
    user: str
    token: str


@pytest.fixture(scope="session")
def ui_store(tmp_path_factory: pytest.TempPathFactory) -> UiStore:
    """``keel quickstart --trials 4`` in an empty folder, once per session."""
    folder = tmp_path_factory.mktemp("ui-quickstart")
    done = keel_cmd(folder, "quickstart", "--trials", "4", timeout=600)
    assert done.returncode == 0, f"keel quickstart failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    home = folder / ".keel"
    return UiStore(home, f"sqlite:///{home / 'keel.db'}", str(home / "artifacts"))


@pytest.fixture(scope="session")
def ui_url(ui_store: UiStore) -> Iterator[str]:
    """A real ``keel server`` (auth off: a loopback store without users) over the quickstart's store."""
    with services.keel_server(ui_store.uri, ui_store.artifacts) as url:
        yield url


@pytest.fixture(scope="session")
def auth_server(ui_store: UiStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A second server, tokens required, over a copy of the quickstart's store to which a user ``ana`` (admin) was added."""
    folder = tmp_path_factory.mktemp("ui-auth")
    home = folder / ".keel"
    home.mkdir()
    with sqlite3.connect(ui_store.home / "keel.db") as source, sqlite3.connect(home / "keel.db") as copy:
        source.backup(copy)  # consistent even while the other server reads it
    for command in (("users", "create", "ana"), ("roles", "grant", "ana", "admin")):
        done = keel_cmd(folder, *command)
        assert done.returncode == 0, done.stderr
    done = keel_cmd(folder, "tokens", "create", "ana", "--json")
    assert done.returncode == 0, done.stderr
    token = _json_field(done.stdout, "token")
    with services.keel_server(f"sqlite:///{home / 'keel.db'}", ui_store.artifacts) as url:
        yield AuthServer(url, "ana", token)


def _json_field(text: str, key: str) -> str:
    import json

    value = json.loads(text)[key]
    assert isinstance(value, str)
    return value


@pytest.fixture(scope="session")
def ui_runs(ui_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every run of the quickstart's store by experiment name, read over the REST API (the store's own view)."""
    experiments = httpx.get(f"{ui_url}/api/v1/experiments", timeout=30).raise_for_status().json()
    out: dict[str, list[dict[str, Any]]] = {}
    for experiment in experiments:
        body = {"experiment_ids": [experiment["id"]], "max_results": 1000}
        answer = httpx.post(f"{ui_url}/api/v1/runs/search", json=body, timeout=30).raise_for_status().json()
        out[experiment["name"]] = answer["runs"]
    return out


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each test's last page is saved: ``$KEEL_TEST_ARTIFACTS/ui-screenshots`` or under pytest's temp base."""
    base = Path(ARTIFACTS) if ARTIFACTS else tmp_path_factory.getbasetemp()
    folder = base / "ui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    _shots.append(folder)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium for the session (Playwright's own browsers are never downloaded)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A browser context and page on one server, with what they did: requests, console errors, page errors."""

    origin: str
    context: Any
    page: Any
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.origin + path

    def goto(self, path: str, status: int = 200) -> Any:
        """Open ``path`` of the server (or a full URL); assert the answer's status; return the response."""
        response = self.page.goto(path if path.startswith("http") else self.origin + path, wait_until="load")
        assert response is not None, path
        assert response.status == status, f"{path}: {response.status} {response.text()[:500]}"
        return response

    def problems(self) -> list[str]:
        return [f"request outside the server: {u}" for u in self.foreign] + [f"browser error: {e}" for e in self.errors]

    def assert_clean(self) -> None:
        """No request left the server, no console error, no uncaught exception so far."""
        assert not self.problems(), "\n".join(self.problems())


@pytest.fixture
def open_page(browser: Any, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Watched]]:
    """A factory: ``open_page(base_url)`` gives a fresh context (no cookies) and page watched for the whole test.

    At the end each page's last view is saved as a screenshot and any problem fails the test.
    """
    from playwright.sync_api import Error as PlaywrightError

    opened: list[Watched] = []

    def make(base_url: str) -> Watched:
        parts = urlsplit(base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        watched = Watched(origin, context, context.new_page())

        def on_request(req: Any) -> None:
            watched.requests.append(req.url)
            if not req.url.startswith(NOT_NETWORK) and not req.url.startswith(origin + "/"):
                watched.foreign.append(req.url)

        def on_console(message: Any) -> None:
            where = message.location.get("url", "")
            # the browser asks for /favicon.ico on its own (no page refers to it): its 404 is not a page's error
            if message.type == "error" and where != origin + "/favicon.ico":
                watched.errors.append(f"console: {message.text} ({where})")

        context.on("request", on_request)
        watched.page.on("console", on_console)
        watched.page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
        opened.append(watched)
        return watched

    yield make
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    for i, watched in enumerate(opened):
        suffix = f"-{i}" if len(opened) > 1 else ""
        try:
            watched.page.screenshot(path=str(screenshots / f"{name}{suffix}.png"), full_page=True)
        except PlaywrightError as exc:  # a crashed page still fails below, with its own errors
            watched.errors.append(f"screenshot failed: {exc}")
        watched.context.close()
    problems = [p for watched in opened for p in watched.problems()]
    assert not problems, "\n".join(problems)


@pytest.fixture
def ui_page(open_page: Callable[[str], Watched], ui_url: str) -> Watched:
    """A watched page on the quickstart's server."""
    return open_page(ui_url)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _shots:
        terminalreporter.write_line(f"UI screenshots: {_shots[0]}")
