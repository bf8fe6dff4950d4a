"""Issue 8, the server under bad input: bounded search, strict page tokens, body limits (413),
streamed and verified downloads, strict names and paths, quiet disconnects, no server paths in
answers, and ``keel server`` on a busy port."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from keel.core.config import load_settings
from keel.core.entities import ArtifactRef
from keel.core.errors import Conflict, InvalidArgument, KeelError
from keel.core.validation import check_artifact_path, check_key, check_name
from keel.store.artifacts import open_artifact_store
from keel.store.artifacts.http import HttpArtifactStore
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest.client import RestStore
from keel.testing.services import free_port

MAX_REQUEST = 100_000
MAX_ARTIFACT = 300_000

JSON_TYPE = {"content-type": "application/json"}
UPLOAD_TYPE = {"content-type": "application/octet-stream"}


@dataclass
class Server:
    url: str
    pid: int
    root: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def _keel_server(root: Path, env: dict[str, str]) -> Iterator[Server]:
    """``keel server`` in a subprocess with its output in a file we can read while it runs."""
    port = free_port()
    log = root / "server.log"
    cmd = [sys.executable, "-m", "keel.cli.main", "server", "--port", str(port)]
    cmd += ["--store", f"sqlite:///{root / 'keel.db'}", "--artifacts", str(root / "artifacts")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "keel server did not start"
            time.sleep(0.1)
        yield Server(url, proc.pid, root, log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with small body limits (set the way users set them: KEEL_* variables)."""
    env = {"KEEL_MAX_REQUEST_BYTES": str(MAX_REQUEST), "KEEL_MAX_ARTIFACT_BYTES": str(MAX_ARTIFACT)}
    with _keel_server(tmp_path_factory.mktemp("small-server"), env) as server:
        yield server


def _experiment(store: MetadataStore) -> int:
    return store.get_or_create_experiment(f"issue8-{uuid.uuid4().hex[:8]}").id


# search: linear, bounded -------------------------------------------------------------------


def test_a_huge_filter_is_refused_quickly(store: MetadataStore) -> None:
    huge = " and ".join(f"metrics.m{i} > {i}" for i in range(60_000))  # about 1 MB
    assert len(huge) > 1_000_000
    started = time.monotonic()
    with pytest.raises(InvalidArgument, match="at most 10,000 characters") as caught:
        store.search_runs(None, filter=huge)
    assert time.monotonic() - started < 3.0
    assert len(caught.value.message) < 500  # the message does not echo the megabyte back


def test_too_many_clauses_is_a_400_naming_the_limit(store: MetadataStore) -> None:
    exp = _experiment(store)
    run = store.create_run(exp, "r")
    store.log_params(run.id, {f"p{i}": str(i) for i in range(64)})
    many = " and ".join(f"params.p{i} = {i}" for i in range(64))
    with pytest.raises(InvalidArgument, match="more than 50 clauses"):
        store.search_runs([exp], filter=many)
    # the most allowed, with the most order keys, still runs (SQLite caps a query at 64 tables)
    most = " and ".join(f"params.p{i} = {i}" for i in range(50))
    orders = [f"params.p{i}" for i in range(10)]
    assert [r.id for r in store.search_runs([exp], filter=most, order_by=orders).runs] == [run.id]
    with pytest.raises(InvalidArgument, match="order_by must be at most 10 keys"):
        store.search_runs([exp], order_by=[f"params.p{i}" for i in range(11)])


def test_too_many_clauses_over_http_is_a_json_400(server_url: str) -> None:
    many = " and ".join(f"metrics.m{i} > 0" for i in range(64))
    response = httpx.post(f"{server_url}/api/v1/runs/search", json={"filter": many})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_argument"
    assert "more than 50 clauses" in response.json()["error"]["message"]


def test_a_nested_page_token_is_a_400_not_a_500(server_url: str, store: MetadataStore) -> None:
    nested = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
    response = httpx.post(f"{server_url}/api/v1/runs/search", json={"page_token": nested})
    assert response.status_code == 400, response.text
    assert "page_token must be a token returned by a previous search" in response.json()["error"]["message"]
    forged = [
        nested,
        base64.urlsafe_b64encode(b'{"offset": 1, "x": [1]}').decode(),
        base64.urlsafe_b64encode(b'{"offset": -5}').decode(),
    ]
    for token in forged:
        with pytest.raises(InvalidArgument, match="page_token"):
            store.search_runs(None, page_token=token)
    exp = _experiment(store)
    for name in ("a", "b", "c"):
        store.create_run(exp, name)
    first = store.search_runs([exp], max_results=2)
    assert first.next_page_token
    assert len(store.search_runs([exp], max_results=2, page_token=first.next_page_token).runs) == 1


# body limits -------------------------------------------------------------------------------


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_default_body_limits() -> None:
    settings = load_settings()
    assert settings.max_request_bytes == 64 << 20
    assert settings.max_artifact_bytes == 5 << 30


@pytest.mark.parametrize("path", ["/api/v1/metrics", "/api/v1/runs/search", "/api/v1/experiments"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_json_body_over_the_limit_is_a_413(small_server: Server, path: str, chunked: bool) -> None:
    body = b'{"rows": []}' + b" " * (MAX_REQUEST + 10)
    content = _chunks(len(body)) if chunked else body
    response = httpx.post(small_server.url + path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert f"{MAX_REQUEST:,} bytes" in error["message"] and "KEEL_MAX_REQUEST_BYTES" in error["message"]
    # a body under the limit is served as before
    ok = httpx.post(small_server.url + "/api/v1/metrics", content=b'{"rows": []}' + b" " * (MAX_REQUEST - 100), headers=JSON_TYPE)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_over_the_artifact_limit_is_a_413_and_stores_nothing(small_server: Server, chunked: bool) -> None:
    data = os.urandom(MAX_ARTIFACT + 1)
    sha = hashlib.sha256(data).hexdigest()
    content = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data
    response = httpx.put(f"{small_server.url}/api/v1/artifacts/{sha}", content=content, headers=UPLOAD_TYPE)
    assert response.status_code == 413, response.text
    assert "KEEL_MAX_ARTIFACT_BYTES" in response.json()["error"]["message"]
    assert httpx.head(f"{small_server.url}/api/v1/artifacts/{sha}").status_code == 404
    # the artifact limit, not the JSON one, applies to uploads
    fits = os.urandom(MAX_REQUEST * 2)
    store = HttpArtifactStore(small_server.url)
    assert store.put_bytes(fits).size == len(fits)
    assert store.get_bytes(hashlib.sha256(fits).hexdigest()) == fits


# downloads: streamed and verified ----------------------------------------------------------


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_downloads_are_streamed_not_read_into_memory(small_server: Server, tmp_path: Path) -> None:
    size = 96 << 20
    blob = tmp_path / "big.bin"
    with open(blob, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(os.urandom(1 << 20))
    sha = open_artifact_store(str(small_server.root / "artifacts")).put_file(blob).sha256  # the server's folder
    before = _peak_rss_kb(small_server.pid)
    dest = HttpArtifactStore(small_server.url, timeout=120).download(sha, tmp_path / "copy.bin")
    assert dest.stat().st_size == size
    grown_mb = (_peak_rss_kb(small_server.pid) - before) / 1024
    assert grown_mb < 48, f"the server's peak memory grew by {grown_mb:.0f} MB for a 96 MB download"


def test_a_corrupted_blob_is_cut_off_mid_stream_never_served_whole(small_server: Server, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    sha = open_artifact_store(str(small_server.root / "artifacts")).put_bytes(data).sha256
    stored = small_server.root / "artifacts" / "sha256" / sha[:2] / sha
    stored.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped at the very end
    with pytest.raises(httpx.RemoteProtocolError):  # the body never completes
        httpx.get(f"{small_server.url}/api/v1/artifacts/{sha}", timeout=30)
    with pytest.raises(KeelError):
        HttpArtifactStore(small_server.url).download(sha, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists() and not (tmp_path / ".out.bin.part").exists()
    assert httpx.get(f"{small_server.url}/api/v1/health").status_code == 200
    assert "Traceback" not in small_server.log_text()


# names, keys and paths ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["loss\n", "lr.x\n"])
def test_keys_and_names_with_a_trailing_newline_are_refused(store: MetadataStore, key: str) -> None:
    with pytest.raises(InvalidArgument):
        check_key(key)
    with pytest.raises(InvalidArgument):
        check_name(key, "experiment")
    run = store.create_run(_experiment(store), "r")
    with pytest.raises(InvalidArgument):
        store.log_params(run.id, {key: "1"})
    with pytest.raises(InvalidArgument):
        store.get_or_create_experiment(f"exp{key}")
    assert store.get_run(run.id).params == {}


@pytest.mark.parametrize(
    "path",
    [
        "report\r\n.html",
        "a\nb.txt",
        "x\x1b[31m.txt",
        "evil\u202egnp.exe",
        "a\u2066b",
        "rtl\u200f.txt",
        "del\x7f",
        "c1\x85.txt",
        "arabic\u061cmark.txt",
        "zero\u200bwidth.txt",  # format characters (Cf) missing from a hand-written list
    ],
)
def test_artifact_paths_with_control_or_bidi_characters_are_refused(store: MetadataStore, path: str) -> None:
    with pytest.raises(InvalidArgument, match="control or format characters"):
        check_artifact_path(path)
    run = store.create_run(_experiment(store), "r")
    with pytest.raises(InvalidArgument):
        store.log_artifacts(run.id, [ArtifactRef(path, "a" * 64, 1)])
    assert store.list_artifacts(run.id) == []
    assert check_artifact_path("plots/ünïcode λ.png") == "plots/ünïcode λ.png"  # letters of any script are fine


# client disconnects ------------------------------------------------------------------------


def _send_partial(url: str, head: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"x" * 1000)
        time.sleep(0.2)


def test_a_client_that_disconnects_mid_body_is_one_quiet_log_line(small_server: Server) -> None:
    sha = "b" * 64
    _send_partial(
        small_server.url,
        f"PUT /api/v1/artifacts/{sha} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 200000\r\n\r\n",
    )
    _send_partial(
        small_server.url,
        "POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n",
    )
    deadline = time.monotonic() + 15
    while small_server.log_text().count("disconnected during") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    log = small_server.log_text()
    assert "disconnected during PUT /api/v1/artifacts/" in log and "disconnected during POST /api/v1/metrics" in log, log
    assert "Traceback" not in log and "unexpected error" not in log, log
    assert httpx.head(f"{small_server.url}/api/v1/artifacts/{sha}").status_code == 404


# no server paths in answers ----------------------------------------------------------------


def test_health_and_errors_do_not_show_server_paths(small_server: Server) -> None:
    health = httpx.get(f"{small_server.url}/api/v1/health").json()
    assert health["store"] == "sqlite" and health["artifacts"] == "local"
    missing = httpx.get(f"{small_server.url}/api/v1/artifacts/{'c' * 64}")
    assert missing.status_code == 404
    text = missing.text + str(health)
    assert str(small_server.root) not in text and "/tmp" not in text and "keel.db" not in text, text


def test_health_names_postgresql_without_credentials(pg_store_url: str, tmp_path: Path) -> None:
    from keel.testing.services import keel_server

    with keel_server(pg_store_url, str(tmp_path / "artifacts")) as url:
        health = httpx.get(f"{url}/api/v1/health").json()
    assert health["store"] == "postgresql"
    assert "postgres@" not in str(health) and "127.0.0.1" not in str(health)


def test_store_messages_with_server_paths_are_redacted(tmp_path: Path) -> None:
    from keel.server.redaction import SERVER_PATH, redactor
    from keel.store.metadata import open_store

    store = open_store(f"sqlite:///{tmp_path / 'db' / 'keel.db'}")
    artifacts = open_artifact_store(str(tmp_path / "blobs"))
    redact = redactor(store, artifacts)
    leaked = f"artifact abc at {tmp_path / 'blobs' / 'sha256' / 'ab' / 'abc'} is corrupted; see /var/lib/keel/x.log"
    assert redact(leaked, True) == f"artifact abc at {SERVER_PATH} is corrupted; see {SERVER_PATH}"
    # a client's own input is echoed as sent, but the server's own folders are still hidden
    echoed = f"artifact path must be relative; got '/etc/passwd' (in {tmp_path / 'db'})"
    assert redact(echoed, False) == f"artifact path must be relative; got '/etc/passwd' (in {SERVER_PATH})"
    assert redact("key must be from letters and '/'; see http://example.com/a/b", True).endswith("http://example.com/a/b")
    store.close()


def test_only_a_resend_is_looked_up_before_its_body_is_parsed(server_url: str) -> None:
    """A first send goes straight to the store, which deduplicates in its write transaction; the lookup that
    answers a resend without parsing it runs only for requests marked ``Keel-Resend``."""
    store = RestStore(server_url)
    run = store.create_run(store.get_or_create_experiment(f"resend-{uuid.uuid4().hex[:8]}").id)
    body = orjson.dumps({"rows": [[run.id, "m", 1.5, 0, 10]]})
    key = uuid.uuid4().hex
    with httpx.Client(base_url=server_url) as http:
        assert http.post("/api/v1/metrics", content=body, headers={"idempotency-key": key, **JSON_TYPE}).json() == {"stored": 1}
        # not marked as a resend: parsed (this garbage is refused), so no lookup ran
        garbage = http.post("/api/v1/metrics", content=b"{not json", headers={"idempotency-key": key, **JSON_TYPE})
        assert garbage.status_code == 400
        resend = http.post(
            "/api/v1/metrics", content=b"{not json", headers={"idempotency-key": key, "keel-resend": "1", **JSON_TYPE}
        )
        assert resend.json() == {"stored": 0, "duplicate": True}
        # the store's own claim is the guarantee: the same batch unmarked is still stored once
        assert http.post("/api/v1/metrics", content=body, headers={"idempotency-key": key, **JSON_TYPE}).status_code == 200
    assert [m.value for m in store.get_metric_history(run.id, "m")] == [1.5]
    store.close()


def test_a_conflict_over_the_server_shows_the_clients_own_paths(server_url: str) -> None:
    """The client's values come back as sent: only the server's own locations are hidden."""
    store = RestStore(server_url)
    run = store.create_run(store.get_or_create_experiment(f"paths-{uuid.uuid4().hex[:8]}").id)
    store.log_params(run.id, {"data": "/data/train.csv"})
    with pytest.raises(Conflict) as caught:
        store.log_params(run.id, {"data": "/data/v2/train.csv"})
    message = str(caught.value)
    assert "'/data/train.csv'" in message and "'/data/v2/train.csv'" in message, message
    assert "<server path>" not in message
    store.close()


# keel server on a busy port ----------------------------------------------------------------


def test_keel_server_on_a_port_in_use_fails_with_one_line_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cmd = [sys.executable, "-m", "keel.cli.main", "server", "--port", str(port), "--store", f"sqlite:///{tmp_path / 'k.db'}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "keel server on" not in done.stdout
    assert done.stderr.strip().splitlines() == [
        f"keel: error: cannot listen on 127.0.0.1:{port}: the port is in use (choose another with --port)"
    ]
