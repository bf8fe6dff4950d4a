"""Model registry policy at the server. The routes are made from the endpoint table (``keel.server.endpoints``);
alias moves go through the store's gates (``ModelStore.move_alias``), with the actor set here."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from keel.core.promotion import MAX_ACTOR_LENGTH


def mark_actor(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``models.move_alias``: the actor the store records.

    The only way to move an alias over HTTP: the store checks the gates and the holder in one transaction, and
    a move without gates is refused unless the body says ``force`` (then recorded as forced)."""
    principal = getattr(request.state, "principal", None)
    # TODO(issue 12, governance): the actor is the authenticated principal. Until then the server cannot verify a
    # name a client sends, so it records it as given but marked "(client-declared)"; no name: the principal's.
    who = (principal.name if principal else "unknown")[:MAX_ACTOR_LENGTH]
    declared = kwargs.get("actor") or ""
    if declared:  # the name the client gave, cut so the whole record fits the store's actor field
        room = MAX_ACTOR_LENGTH - len(f"{who} as  (client-declared)")
        kwargs["actor"] = f"{who} as {declared[: max(room, 0)]} (client-declared)" if room > 0 else who
    else:
        kwargs["actor"] = who


HOOKS = {
    "models.move_alias": mark_actor,
    # a deployment's history records who changed it: the same mark for a name the server cannot verify
    "deployments.create": mark_actor,
    "deployments.set_routes": mark_actor,
    "deployments.rollback": mark_actor,
}
