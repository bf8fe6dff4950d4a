"""Checks of identity-store arguments, the same on every backend and on the REST client (before a request is made).

Each raises ``InvalidArgument`` naming its field; the checks of names, roles and scopes are in ``keel.core.identity``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument
from keel.core.identity import ALL_PROJECTS, PRINCIPAL_KINDS, check_scopes
from keel.core.validation import check_name, has_control_characters

__all__ = [
    "BAD_TOKEN", "LAST_USED_EVERY_MS", "check_expires_at", "check_kind", "check_model", "check_project",
    "check_scope_list", "check_token_id", "check_token_name",
]  # fmt: skip

BAD_TOKEN = "invalid or expired token"  # one message for every failure of authenticate: it tells a guesser nothing
LAST_USED_EVERY_MS = 60_000  # a token's last_used_at is noted at most this often (a write per request would be a lot)
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")


def check_kind(kind: Any) -> str:
    if kind not in PRINCIPAL_KINDS:
        raise InvalidArgument.for_field("kind", kind, " | ".join(PRINCIPAL_KINDS))
    return str(kind)


def check_project(project: Any) -> str:
    """A project a role can be granted in: ``"*"`` (every project) or a project's name. Experiments and their runs
    are checked in their own project; models, datasets and deployments (no project of their own yet) in
    ``"default"``."""
    if project == ALL_PROJECTS:
        return ALL_PROJECTS
    return check_name(project, "project")


def check_model(model: Any) -> str | None:
    """A model name, or None (every model)."""
    return None if model is None else check_name(model, "model")


def check_token_id(token_id: Any) -> str:
    if not isinstance(token_id, str) or not _TOKEN_ID.fullmatch(token_id):
        raise InvalidArgument.for_field("token_id", token_id, "12 lowercase hex characters (the id of keel_<id>_<secret>)")
    return token_id


def check_token_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > 128 or has_control_characters(name):
        raise InvalidArgument.for_field("name", name, "at most 128 characters, no control characters")
    return name


def check_scope_list(scopes: Any) -> tuple[str, ...]:
    """Permissions, each once, in the order given (a bare string is refused: it is not a list of one)."""
    if isinstance(scopes, str) or not isinstance(scopes, Sequence):
        raise InvalidArgument.for_field("scopes", scopes, "a list of permissions")
    return check_scopes(list(scopes))


def check_expires_at(expires_at: Any) -> int | None:
    """None (never), or a time in the future in ms since the epoch."""
    if expires_at is None:
        return None
    if isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= now_ms():
        raise InvalidArgument.for_field("expires_at", expires_at, "a time in the future (ms since the epoch)")
    return expires_at
