"""The webhook action of alerts: POST the alert as JSON, retried, and report what happened without raising.

>>> key = idempotency_key(17, "webhook:https://hooks.example/keel")
>>> result = post_webhook("https://hooks.example/keel", {"alert": 17}, idempotency_key=key)  # doctest: +SKIP
>>> result.status, result.attempts   # doctest: +SKIP
('ok', 1)

Retried with exponential backoff (``backoff``, ``2 * backoff``, ...) on connection errors, timeouts, 5xx and 429
(a ``Retry-After`` the receiver sends is waited instead, up to ``max_retry_after``); never on another 4xx, which
retrying cannot fix. Every attempt carries the same ``Idempotency-Key`` so a receiver can drop the repeats of a
delivery it already took. Logs and ``detail`` name only the URL's scheme and host: a webhook URL often holds a token.
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from keel.core.errors import InvalidArgument

__all__ = ["WebhookResult", "idempotency_key", "post_webhook"]

log = logging.getLogger(__name__)

_RETRIED = frozenset({408, 425, 429})  # and every 5xx
_MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """``status`` is ``ok`` or ``failed`` (an ``ActionRecord``'s statuses); ``http_status`` the last response's."""

    status: str
    attempts: int
    detail: str
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def idempotency_key(alert_id: int, action: str) -> str:
    """The ``Idempotency-Key`` of an alert's action: the alert id and a digest of the action (its URL may hold a
    token, which a header that proxies log should not repeat)."""
    return f"keel-alert-{alert_id}-{hashlib.sha256(action.encode()).hexdigest()[:16]}"


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    attempts: int = 4,
    backoff: float = 0.5,
    timeout: float = 5.0,
    max_retry_after: float = 60.0,
) -> WebhookResult:
    """POST ``payload`` as JSON to ``url``; retry what can succeed later; never raise for a failed delivery.

    Bad arguments (not an http(s) URL, a key that is not printable ASCII, ...) are ``InvalidArgument``: those are
    mistakes in the rule, not failed deliveries.
    """
    import httpx

    target = target_of(url)
    if not isinstance(payload, Mapping):
        raise InvalidArgument.for_field("payload", type(payload).__name__, "a mapping (a JSON object)")
    _check_options(idempotency_key, attempts, backoff, timeout, max_retry_after)
    body = json.dumps(_plain(payload), allow_nan=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key, "User-Agent": "keel-webhook"}
    headers.update(_basic_auth(url))
    extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
    detail, status = "", None
    # the transport, not httpx.Client: the client logs every request's full URL (at INFO), token and all
    with httpx.HTTPTransport() as transport:
        for attempt in range(1, attempts + 1):
            wait = backoff * 2 ** (attempt - 1)
            try:
                request = httpx.Request("POST", url, content=body, headers=headers, extensions=extensions)
                status, answer, retry_after = _send(transport, request)
            except httpx.HTTPError as exc:  # connection refused, timeouts, protocol errors: all may pass later
                status, detail = None, _redact(f"{type(exc).__name__}: {exc}", url, target)
            else:
                if 200 <= status < 300:
                    return WebhookResult("ok", attempt, f"HTTP {status} from {target}", status)
                detail = f"HTTP {status} from {target}" + (f": {answer}" if answer else "")
                if status < 500 and status not in _RETRIED:
                    log.warning("webhook to %s refused: HTTP %d (not retried)", target, status)
                    return WebhookResult("failed", attempt, detail, status)
                wait = _retry_after(retry_after, wait, max_retry_after)
            if attempt < attempts:
                log.warning("webhook to %s: attempt %d of %d failed (%s); again in %.2fs", target, attempt, attempts,
                            detail, wait)  # fmt: skip
                time.sleep(wait)
    log.warning("webhook to %s failed after %d attempts: %s", target, attempts, detail)
    return WebhookResult("failed", attempts, f"{detail} (after {attempts} attempts)", status)


def _send(transport: Any, request: Any) -> tuple[int, str, str | None]:
    """One POST: the status, the start of the answer as one line, and the ``Retry-After`` header."""
    response = transport.handle_request(request)
    try:
        head = b""
        for chunk in response.iter_bytes():  # a receiver's answer is read only as far as a detail shows it
            head += chunk
            if len(head) >= _MAX_DETAIL * 4:
                break
        answer = _snippet(head.decode("utf-8", errors="replace"))
        return response.status_code, answer, response.headers.get("Retry-After")
    finally:
        response.close()


def _basic_auth(url: str) -> dict[str, str]:
    """``user:password@`` in the URL as Basic auth, as httpx's client would send it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return {}
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def target_of(url: Any) -> str:
    """The URL's scheme and host (what logs may show), or ``InvalidArgument``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    try:
        host, port = (parts.hostname, parts.port) if parts is not None else (None, None)
    except ValueError:  # a port that is not a number
        host, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise InvalidArgument.for_field("url", "<hidden>", "an http:// or https:// URL with a host")
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _check_options(key: Any, attempts: Any, backoff: Any, timeout: Any, max_retry_after: Any) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= 200 or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidArgument.for_field("idempotency_key", key, "1 to 200 printable ASCII characters without spaces")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise InvalidArgument.for_field("attempts", attempts, "an integer from 1 to 20")
    for name, value, low in (("backoff", backoff, 0.0), ("timeout", timeout, 1e-3), ("max_retry_after", max_retry_after, 0.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= 3600:
            raise InvalidArgument.for_field(name, value, f"a number of seconds from {low:g} to 3600")


def _retry_after(header: str | None, default: float, cap: float) -> float:
    """Seconds to wait before the next attempt: the receiver's ``Retry-After`` (seconds or an HTTP date) when it
    sends one, capped so that a receiver cannot park the scheduler; else the backoff."""
    if not header:
        return default
    header = header.strip()
    seconds: float | None
    if header.isdigit():
        seconds = float(header)
    else:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return min(seconds, cap)


def _plain(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars and arrays as numbers and lists, NaN and infinities as null,
    anything unknown as its text (a payload must never stop an alert's delivery)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if type(value).__module__ == "numpy":  # duck-typed: numpy is an optional extra, never imported here
        if hasattr(value, "tolist"):
            return _plain(value.tolist())  # scalars give a Python number, arrays nested lists
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _snippet(text: str) -> str:
    """The start of a receiver's answer, one line of printable text (stored in the action's record)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text[: _MAX_DETAIL * 2]).split())
    return flat[:_MAX_DETAIL]


def _redact(text: str, url: str, target: str) -> str:
    """An error's text without the URL's path, query or credentials (an error may quote the URL, or parts of it)."""
    parts = urlsplit(url)
    text = text.replace(url, target)
    for secret in (parts.query, parts.path if len(parts.path) > 1 else "", parts.password or "", parts.fragment):
        if secret:
            text = text.replace(secret, "<hidden>")
    return _snippet(text)
