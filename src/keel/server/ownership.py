"""A run is written to by the principal that created it (or an admin), not by every editor.

The creator is the actor of the run's first audit event (``runs.create``): recorded by the store, in the
transaction that made the run, from the authenticated caller. It never changes, so it is cached. A run made
before the audit log existed has no such event and stays writable as before. Only the server checks this: a
local process acts as its own user on its own store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from fastapi import Request

from keel.core.errors import PermissionDenied
from keel.server.auth import caller_of
from keel.store.metadata.base import MetadataStore

__all__ = ["RunOwners", "require_run_owner"]

CACHED = 100_000


class RunOwners:
    """``owner(run_id)``: who created the run (None: unknown), from the audit log, remembered."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._owners: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def owner(self, run_id: str) -> str | None:
        with self._lock:
            if run_id in self._owners:
                return self._owners[run_id]
        first = self.store.audit.events(entity="run", entity_id=run_id, limit=1)
        owner = first[0].actor if first and first[0].action == "runs.create" else None
        with self._lock:
            self._owners[run_id] = owner
            if len(self._owners) > CACHED:
                self._owners.popitem(last=False)
        return owner


def require_run_owner(request: Request, run_ids: Iterable[str]) -> None:
    """``PermissionDenied`` unless the caller created each run (admins and an open server write to any)."""
    caller = caller_of(request)
    if not caller.authenticated or caller.may("admin"):
        return
    owners: RunOwners = request.app.state.run_owners
    for run_id in dict.fromkeys(run_ids):
        owner = owners.owner(run_id)
        if owner is not None and owner != caller.name:
            raise PermissionDenied(f"run {run_id} belongs to {owner}: only its creator (or an admin) writes to it")


def run_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before a store call that writes to ``kwargs["run_id"]``."""
    require_run_owner(request, [str(kwargs.get("run_id", ""))])


def runs_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before a store call that writes to each of ``kwargs["run_ids"]`` (heartbeats)."""
    require_run_owner(request, [str(r) for r in kwargs.get("run_ids", ())])
