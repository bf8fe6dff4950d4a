"""One HTTP transport for the metadata and artifact stores (issue 9): the same auth header, resends and error
mapping whichever store speaks, against real loopback HTTP peers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from keel.core.errors import KeelError, NotFound, StoreUnavailable
from keel.store.artifacts.http import HttpArtifactStore
from keel.store.metadata.rest.client import RestStore

SHA = "a" * 64


class _Recorder:
    """A loopback HTTP server answering every request with ``status`` and ``body``, recording what it got."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                recorder.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Iterator[_Recorder]:
    server = _Recorder(*request.param)
    yield server
    server.close()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.store import http_transport

    monkeypatch.setattr(http_transport, "BACKOFF_S", 0.001)


@pytest.mark.parametrize("recorder", [(200, b'{"heartbeat_timeout": 30}')], indirect=True)
def test_the_configured_token_reaches_the_server_from_both_stores(recorder: _Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TOKEN", "s3cret")
    store, artifacts = RestStore(recorder.url), HttpArtifactStore(recorder.url)
    assert store.heartbeat_timeout == 30.0
    assert artifacts.exists(SHA)
    assert [(m, h.get("authorization")) for m, _, h in recorder.requests] == [("GET", "Bearer s3cret"), ("HEAD", "Bearer s3cret")]
    store.close()
    artifacts.close()


@pytest.mark.parametrize("recorder", [(200, b"{}")], indirect=True)
def test_an_explicit_empty_token_sends_no_auth_header(recorder: _Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TOKEN", "s3cret")
    artifacts = HttpArtifactStore(recorder.url, token="")
    artifacts.exists(SHA)
    assert "authorization" not in recorder.requests[0][2]
    artifacts.close()


@pytest.mark.parametrize("recorder", [(503, b"<html>maintenance</html>", "text/html")], indirect=True)
def test_a_read_is_resent_on_a_proxy_503_then_store_unavailable(recorder: _Recorder, no_backoff: None) -> None:
    store = RestStore(recorder.url)
    with pytest.raises(StoreUnavailable, match="503") as raised:
        store.get_run("0" * 32)
    assert raised.value.__cause__ is None
    assert [m for m, _, _ in recorder.requests] == ["GET"] * 4
    store.close()


@pytest.mark.parametrize("recorder", [(500, b"<html>upstream crashed</html>", "text/html")], indirect=True)
def test_an_artifact_request_answered_by_a_non_keel_500_is_store_unavailable(recorder: _Recorder) -> None:
    artifacts = HttpArtifactStore(recorder.url)
    with pytest.raises(StoreUnavailable, match="HTTP 500"):
        artifacts.put_bytes(b"hello")  # HEAD says 500 (no body): unavailable, not "missing"
    with pytest.raises(StoreUnavailable, match="upstream crashed"):
        artifacts.get_bytes(SHA)
    artifacts.close()


@pytest.mark.parametrize("recorder", [(404, b'{"error": {"code": "not_found", "message": "no such blob"}}')], indirect=True)
def test_an_artifact_error_comes_back_as_the_same_keel_error(recorder: _Recorder) -> None:
    artifacts = HttpArtifactStore(recorder.url)
    with pytest.raises(NotFound, match="no such blob") as raised:
        artifacts.get_bytes(SHA)
    assert type(raised.value) is NotFound and isinstance(raised.value, KeelError)
    assert not artifacts.exists(SHA)
    artifacts.close()
