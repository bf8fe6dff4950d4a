"""JSON responses rendered by orjson (fast, and strict: no NaN sneaks out as invalid JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
