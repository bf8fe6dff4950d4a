"""The UI's front page: the experiments the caller may read, newest first, with their run counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.server.auth import caller_of
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)


@router.get("/ui/")
def experiments(request: Request) -> HTMLResponse:
    """Every experiment of a project the caller may read; a link to its runs."""
    store = request.app.state.store
    caller = caller_of(request)
    listed = [e for e in store.list_experiments() if caller.may_in("read", e.project)]
    listed.sort(key=lambda e: e.created_at, reverse=True)
    return page(request, "home.html", title="Experiments", experiments=listed)
