"""Label-project policy at the server (hooks of the endpoint table, ``keel.server.endpoints``): an annotator without
``read`` lists only their own annotations, whoever the query names. Who answers is never a request's field: the
store records ``keel.core.actor.current_actor()``, which ``keel.server.auth.Guard`` sets to the token's principal."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from keel.server.auth import caller_of
from keel.server.endpoints import Hook


def own_annotations(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``labels.annotations``: a caller who may not ``read`` (an annotator) sees their own answers only; others'
    would tell them the answers of items they have still to do, and of the gold items."""
    caller = caller_of(request)
    if not caller.may("read"):
        kwargs["annotator"] = caller.name


HOOKS: dict[str, Hook] = {"labels.annotations": own_annotations}
