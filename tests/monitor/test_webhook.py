"""The webhook action against a real HTTP receiver on 127.0.0.1: delivered once, retried with one idempotency key on
5xx, 429 and timeouts, not retried on other 4xx, a refused connection reported as failed, Retry-After honoured (and
capped), numpy numbers in the JSON, and no URL secret in logs or details."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from keel.core.errors import InvalidArgument
from keel.monitor.webhook import idempotency_key, post_webhook


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0


@dataclass
class Seen:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server answering POSTs with the scripted replies in turn (then 200), recording each request."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.seen.append(Seen(time.monotonic(), self.path, dict(self.headers.items()), body))
                reply = receiver.replies.pop(0) if receiver.replies else Reply()
                time.sleep(reply.delay)
                payload = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    thread = threading.Thread(target=rec.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()
    thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


KEY = idempotency_key(17, "webhook:http://127.0.0.1/hook")


def test_delivered_first_try_as_json_with_the_idempotency_key(receiver: Receiver) -> None:
    result = post_webhook(f"{receiver.url}/hook", {"alert": 17, "rule": "drifting"}, idempotency_key=KEY)
    assert (result.status, result.attempts, result.http_status, result.ok) == ("ok", 1, 200, True)
    assert result.detail == f"HTTP 200 from {receiver.url}"
    [seen] = receiver.seen
    assert seen.path == "/hook"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Idempotency-Key"] == KEY
    assert json.loads(seen.body) == {"alert": 17, "rule": "drifting"}


def test_a_500_is_retried_with_the_same_idempotency_key(receiver: Receiver) -> None:
    receiver.replies = [Reply(500, body="database down"), Reply(503), Reply(200)]
    started = time.monotonic()
    result = post_webhook(receiver.url, {"alert": 1}, idempotency_key=KEY, backoff=0.1)
    assert (result.status, result.attempts, result.http_status) == ("ok", 3, 200)
    assert [s.headers["Idempotency-Key"] for s in receiver.seen] == [KEY, KEY, KEY]
    assert len({s.body for s in receiver.seen}) == 1
    gaps = [b.at - a.at for a, b in zip(receiver.seen, receiver.seen[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # exponential backoff: 0.1 then 0.2
    assert time.monotonic() - started < 5


def test_a_400_is_not_retried(receiver: Receiver) -> None:
    receiver.replies = [Reply(400, body='{"error": "bad\\nfield"}'), Reply(200)]
    result = post_webhook(receiver.url, {"alert": 1}, idempotency_key=KEY, backoff=0.01)
    assert (result.status, result.attempts, result.http_status, result.ok) == ("failed", 1, 400, False)
    assert result.detail == f'HTTP 400 from {receiver.url}: {{"error": "bad\\nfield"}}'
    assert len(receiver.seen) == 1


def test_server_errors_to_the_end_fail_after_every_attempt(receiver: Receiver) -> None:
    receiver.replies = [Reply(502, body="bad gateway")] * 3
    result = post_webhook(receiver.url, {"alert": 1}, idempotency_key=KEY, attempts=3, backoff=0.01)
    assert (result.status, result.attempts, result.http_status) == ("failed", 3, 502)
    assert result.detail == f"HTTP 502 from {receiver.url}: bad gateway (after 3 attempts)"
    assert len(receiver.seen) == 3


def test_connection_refused_fails_after_n_attempts_without_raising() -> None:
    url = f"http://127.0.0.1:{_free_port()}/hook"
    started = time.monotonic()
    result = post_webhook(url, {"alert": 1}, idempotency_key=KEY, attempts=3, backoff=0.05)
    assert (result.status, result.attempts, result.http_status) == ("failed", 3, None)
    assert result.detail.startswith("ConnectError: ")
    assert result.detail.endswith("(after 3 attempts)")
    assert time.monotonic() - started >= 0.05 + 0.1  # it waited between the attempts


def test_retry_after_is_honoured(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, {"Retry-After": "1"}), Reply(200)]
    result = post_webhook(receiver.url, {"alert": 1}, idempotency_key=KEY, backoff=0.01)
    assert (result.status, result.attempts) == ("ok", 2)
    first, second = receiver.seen
    assert second.at - first.at >= 0.95  # the receiver's second, not the 0.01 s backoff


def test_retry_after_as_a_date_and_its_cap(receiver: Receiver) -> None:
    from email.utils import formatdate

    receiver.replies = [Reply(503, {"Retry-After": formatdate(time.time() + 3600, usegmt=True)}), Reply(200)]
    started = time.monotonic()
    result = post_webhook(receiver.url, {"alert": 1}, idempotency_key=KEY, backoff=0.01, max_retry_after=0.3)
    assert (result.status, result.attempts) == ("ok", 2)
    first, second = receiver.seen
    assert 0.25 <= second.at - first.at < 2  # an hour asked, capped at 0.3 s
    assert time.monotonic() - started < 3


def test_a_timeout_is_retried(receiver: Receiver) -> None:
    receiver.replies = [Reply(200, delay=1.0), Reply(200)]
    result = post_webhook(receiver.url, {"alert": 1}, idempotency_key=KEY, timeout=0.2, backoff=0.01)
    assert (result.status, result.attempts) == ("ok", 2)
    assert [s.headers["Idempotency-Key"] for s in receiver.seen] == [KEY, KEY]


def test_numpy_numbers_and_non_finite_values_encode_as_json(receiver: Receiver) -> None:
    payload = {"value": np.float32(0.5), "windows": np.int64(3), "firing": np.bool_(True), "scores": np.array([0.25, 1.0]),
               "nan": float("nan"), "inf": np.float64("inf"), "nested": {"t": (np.int32(1), "x")}}  # fmt: skip
    assert post_webhook(receiver.url, payload, idempotency_key=KEY).ok
    assert json.loads(receiver.seen[0].body) == {"value": 0.5, "windows": 3, "firing": True, "scores": [0.25, 1.0],
                                                 "nan": None, "inf": None, "nested": {"t": [1, "x"]}}  # fmt: skip


def test_no_secret_of_the_url_reaches_logs_or_details(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.replies = [Reply(500), Reply(404)]
    secret_url = f"{receiver.url}/hooks/T0KEN-PATH?token=s3cr3t".replace("http://", "http://bot:pa55word@")
    result = post_webhook(secret_url, {"alert": 1}, idempotency_key=KEY, backoff=0.01)
    assert (result.status, result.attempts, result.http_status) == ("failed", 2, 404)
    refused = post_webhook(f"http://user:pa55word@127.0.0.1:{_free_port()}/T0KEN-PATH?token=s3cr3t", {}, idempotency_key=KEY,
                           attempts=2, backoff=0.01)  # fmt: skip
    assert refused.status == "failed"
    assert receiver.seen[0].path == "/hooks/T0KEN-PATH?token=s3cr3t"  # the receiver did get the full URL
    assert receiver.seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"bot:pa55word").decode()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert receiver.url in logged
    for text in (logged, result.detail, refused.detail):
        assert "s3cr3t" not in text and "T0KEN" not in text and "pa55word" not in text


def test_the_idempotency_key_hides_the_action_and_is_stable() -> None:
    key = idempotency_key(17, "webhook:https://hooks.example/x?token=s3cr3t")
    assert key == idempotency_key(17, "webhook:https://hooks.example/x?token=s3cr3t")
    assert key.startswith("keel-alert-17-") and "s3cr3t" not in key
    assert key != idempotency_key(18, "webhook:https://hooks.example/x?token=s3cr3t")
    assert key != idempotency_key(17, "webhook:https://hooks.example/y")


@pytest.mark.parametrize(
    ("kwargs", "field_"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": "http://127.0.0.1:notaport/x"}, "url"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
        ({"idempotency_key": "clé"}, "idempotency_key"),
        ({"attempts": 0}, "attempts"),
        ({"backoff": -1}, "backoff"),
        ({"timeout": 0}, "timeout"),
        ({"payload": [1, 2]}, "payload"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(kwargs: dict[str, object], field_: str) -> None:
    args: dict[str, object] = {"url": "http://127.0.0.1:9/x", "payload": {}, "idempotency_key": KEY} | kwargs
    with pytest.raises(InvalidArgument, match=f"^{field_} must be"):
        post_webhook(**args)  # type: ignore[arg-type]
