"""Model registry policy at the server. The routes are made from the endpoint table (``keel.server.endpoints``);
alias moves go through the store's gates (``ModelStore.move_alias``), with the actor set here."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def mark_actor(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``models.move_alias``: the actor the store records.

    The only way to move an alias over HTTP: the store checks the gates and the holder in one transaction, and
    a move without gates is refused unless the body says ``force`` (then recorded as forced)."""
    principal = getattr(request.state, "principal", None)
    # TODO(issue 12, governance): the actor is the authenticated principal. Until then the server cannot verify a
    # name a client sends, so it records it as given but marked "(client-declared)"; no name: the principal's.
    actor = kwargs.get("actor") or ""
    kwargs["actor"] = f"{actor} (client-declared)" if actor else (principal.name if principal else "unknown")


HOOKS = {"models.move_alias": mark_actor}
