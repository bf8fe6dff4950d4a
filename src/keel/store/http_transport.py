"""The one HTTP transport of the stores that talk to a ``keel server`` (metadata and artifacts).

``HttpTransport`` owns the httpx client, the base URL, the auth header, timeouts, resends and
the mapping of every failure to a keel error: a keel error answer (``{"error": {"code",
"message"}}``) comes back as the same class, anything else that is not a keel answer (a 5xx
or a 2xx that is not JSON, a dropped connection, a timeout) as ``StoreUnavailable``. No httpx
exception ever leaves it.

Resends: a request that is safe to repeat (``GET``/``HEAD``, or one carrying an
``Idempotency-Key`` the server applies once) is sent again on a connection error, a timeout or
a 502/503/504, up to ``RETRIES`` times, backing off exponentially with jitter. A resend, and a
later request under a key that never got an answer, also carries ``Keel-Resend: 1``: only then
does the server look the key up before parsing the body, so a first send costs no extra read.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import orjson

from keel.core.errors import NotFound, StoreUnavailable, error_from_dict

API = "/api/v1"
IDEMPOTENCY_KEY = "idempotency-key"
RESEND = "keel-resend"
RETRIES = 3  # resends of a repeatable request after the first attempt
BACKOFF_S = 0.2  # first wait; doubles per resend, up to MAX_BACKOFF_S, each drawn in [half, full]
MAX_BACKOFF_S = 5.0
RETRY_STATUS = frozenset({502, 503, 504})
_REPEATABLE = frozenset({"GET", "HEAD"})
_UNANSWERED_MAX = 10_000  # keys remembered as sent without an answer: a few hundred KB at most
log = logging.getLogger("keel.store")


def backoff(attempt: int) -> float:
    """Seconds to wait before resend number ``attempt + 1``: exponential, capped, with jitter."""
    return min(MAX_BACKOFF_S, BACKOFF_S * 2.0 ** min(attempt, 30)) * random.uniform(0.5, 1.0)


def configured_token() -> str | None:
    """The token of the settings (``KEEL_TOKEN`` or ``keel.toml``), if any."""
    from keel.core.config import load_settings

    token = load_settings().token
    return str(token) if token else None


class HttpTransport:
    """HTTP to one keel server. Thread safe (httpx's client is); ``close`` when done.

    ``token``: sent as ``Authorization: Bearer <token>``; ``None`` takes the configured one,
    ``""`` sends none. ``timeout``: seconds or an ``httpx.Timeout``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | Any = 60.0,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        import httpx

        self.url = base_url.rstrip("/")
        token = configured_token() if token is None else token
        merged = {**(headers or {})}
        if token:
            merged["authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self._client = httpx.Client(base_url=self.url, timeout=timeout, headers=merged)
        self._unanswered: dict[str, None] = {}  # idempotency keys sent without an answer, oldest first

    # sending --------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        resend: bool | None = None,
    ) -> Any:
        """One request, its response returned whatever its status.

        Resent when repeatable (``resend=None``: a GET/HEAD or a request with an idempotency key;
        ``False`` for a read whose failure must be seen, such as a body cut short on purpose).
        """
        headers = dict(headers or {})
        if method not in _REPEATABLE and not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"  # the server refuses a change sent as anything else (415)
        if idempotency_key is not None:
            headers[IDEMPOTENCY_KEY] = idempotency_key
        replayable = content is None or isinstance(content, bytes)
        if resend is None:
            resend = method in _REPEATABLE or idempotency_key is not None
        resends = RETRIES if replayable and resend else 0
        failure = ""
        for attempt in range(resends + 1):
            if attempt and idempotency_key is not None:
                log.warning("keel: resending batch %s to %s%s after: %s", idempotency_key, self.url, path, failure)
            elif attempt:
                log.warning("keel: resending %s %s%s after: %s", method, self.url, path, failure)
            if idempotency_key is not None and (attempt or idempotency_key in self._unanswered):
                headers[RESEND] = "1"
            try:
                response = self._client.request(method, path, content=content, params=params, headers=headers)
            except self._httpx.HTTPError as exc:
                failure = f"cannot reach keel server {self.url}: {exc.__class__.__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUS or not resends:
                    if idempotency_key is not None:
                        self._unanswered.pop(idempotency_key, None)
                    return response
                failure = f"keel server {self.url} answered HTTP {response.status_code}: {response.text[:200]}"
            if attempt < resends:
                time.sleep(backoff(attempt))
        if idempotency_key is not None:
            if len(self._unanswered) >= _UNANSWERED_MAX:
                self._unanswered.pop(next(iter(self._unanswered)))
            self._unanswered[idempotency_key] = None
        raise StoreUnavailable(f"{failure} (sent {resends + 1} times)" if resends else failure)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """A JSON request under ``/api/v1``: ``body`` encoded by orjson, the answer decoded (or raised)."""
        content = orjson.dumps(body) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        response = self.send(method, API + path, content=content, params=params, headers=headers, idempotency_key=idempotency_key)
        return self.answer(response)

    @contextlib.contextmanager
    def stream(self, method: str, path: str) -> Iterator[Any]:
        """A streamed response (checked before the body is read); a body cut short is ``StoreUnavailable``."""
        try:
            with self._client.stream(method, path) as response:
                if response.status_code >= 400:
                    response.read()
                    self.check(response)
                yield response
        except self._httpx.HTTPError as exc:  # includes a body the server cut short
            raise StoreUnavailable(f"keel server {self.url} broke off {method} {path}: {exc}") from None

    # answers --------------------------------------------------------------------------------
    def answer(self, response: Any) -> Any:
        """The decoded JSON body of a success; the keel error of a failure."""
        try:
            payload = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            # not a keel server's answer: a proxy's error page, a captive portal, another service on the port
            self._not_keel(response)
        if response.status_code >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            raise error_from_dict(error if isinstance(error, dict) else {"message": str(payload)[:200]}, response.status_code)
        return payload

    def check(self, response: Any) -> None:
        """Raise the keel error of a failed response whose body is not needed (HEAD, PUT of bytes, streams)."""
        if response.status_code < 400:
            return
        if not response.content:  # HEAD answers carry no body: the status says it all
            if response.status_code == 404:
                raise NotFound(f"{response.request.method} {response.request.url.path} is not on keel server {self.url}")
            if response.status_code >= 500:
                raise StoreUnavailable(f"keel server {self.url} answered HTTP {response.status_code}")
        self.answer(response)

    def _not_keel(self, response: Any) -> NoReturn:
        if response.status_code >= 500 or response.status_code < 400:
            raise StoreUnavailable(
                f"keel server {self.url} answered HTTP {response.status_code} with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from None
        raise error_from_dict({"message": response.text[:200]}, response.status_code) from None

    def close(self) -> None:
        self._client.close()
