"""JSON responses rendered by orjson (fast, and strict: no NaN sneaks out as invalid JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> OrjsonResponse:
    """The one error shape of the API: ``{"error": {"code", "message"}}``, plus ``"details"`` (JSON data the
    error carries, ``KeelError.details_fields``) when there are any."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return OrjsonResponse({"error": error}, status_code=status)
