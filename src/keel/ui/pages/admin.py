"""UI page for admins: users and service accounts with their role bindings, their tokens, and the trusted roles.

Read-only: changes go through ``keel users``/``keel tokens`` (or the REST API), which record them in the audit log.
A token is shown by its record only (id, name, scopes, expiry, last use, revocation): ``ApiToken`` holds no secret
and no hash, and nothing else of a token is read here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.core.clock import now_ms
from keel.core.identity import ALL_PROJECTS, DEFAULT_PROJECT, ApiToken
from keel.ui.pages.audit import require_admin
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)


@router.get("/ui/admin")
def admin(request: Request) -> HTMLResponse:
    """Every principal with its bindings and token count, every token record, and each project's trusted roles."""
    require_admin(request)
    identity = request.app.state.store.identity
    principals = identity.list_principals()
    bindings = identity.bindings()
    tokens = identity.list_tokens()
    by_principal: dict[str, list[Any]] = {}
    for b in bindings:
        by_principal.setdefault(b.principal, []).append(b)
    live = {p.name: 0 for p in principals}
    now = now_ms()
    for t in tokens:
        if token_state(t, now) == "active":
            live[t.principal] = live.get(t.principal, 0) + 1
    projects = sorted({DEFAULT_PROJECT} | {b.project for b in bindings if b.project != ALL_PROJECTS})
    trusted = [(p, identity.trusted_roles(p)) for p in projects]
    return page(request, "admin.html", title="Users and tokens", nav="admin", principals=principals, bindings=by_principal,
                live=live, tokens=[(t, token_state(t, now)) for t in tokens], trusted=trusted)  # fmt: skip


def token_state(token: ApiToken, now: int) -> str:
    """``revoked``, ``expired`` or ``active``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"
