"""Request body size limits, enforced while the body streams in.

A body announced larger than its limit (``Content-Length``) is refused with 413 before a
byte of it is read; a body without a length (chunked encoding) is counted chunk by chunk
and refused as soon as it passes the limit, so the server never holds more than the limit.
Artifact uploads (``PUT /api/v1/artifacts/...``) have their own, larger limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.server.responses import error_response

ARTIFACT_UPLOAD_PREFIX = "/api/v1/artifacts/"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes its limit.

    An ``HTTPException`` because FastAPI turns any other error raised while it reads a body
    into a 400 "error parsing the body"; the app's handler renders it as a JSON 413.
    """

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"request body is larger than {limit:,} bytes, this server's limit ({setting})")


class BodyLimit:
    """ASGI middleware: a JSON 413 for a request body over its limit."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_artifact_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_artifact_bytes = max_artifact_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if scope.get("method") == "PUT" and str(scope.get("path", "")).startswith(ARTIFACT_UPLOAD_PREFIX):
            return self.max_artifact_bytes, "KEEL_MAX_ARTIFACT_BYTES"
        return self.max_request_bytes, "KEEL_MAX_REQUEST_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            too_large = BodyTooLarge(limit, setting)
            await error_response(413, "payload_too_large", str(too_large.detail))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length before we see it
    return None
