"""Answering a page: a template in the layout, with the UI's security headers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from keel.server.auth import caller_of
from keel.ui.templates import render

# no inline script anywhere: what runs is keel's own files (and uPlot's); styles may be inline for charts' sizes
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


def page(request: Request, template: str, *, title: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` in the layout, as an HTML answer with the UI's security headers."""
    caller = caller_of(request)
    html = render(template, title=title, request=request, caller=caller, params=query_params(request), **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
           "cache-control": "no-store"}  # fmt: skip


def query_params(request: Request) -> dict[str, Any]:
    """The page's query as a dict; a key given several times (``c=...&c=...``) keeps all its values, as a list."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    return out
