"""JSON responses rendered by orjson (fast, and strict: no NaN sneaks out as invalid JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str) -> OrjsonResponse:
    """The one error shape of the API: ``{"error": {"code", "message"}}``."""
    return OrjsonResponse({"error": {"code": code, "message": message}}, status_code=status)
