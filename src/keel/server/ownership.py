"""A run is written to by the principal that created it (or an admin of its project), not by every editor; and the
checks of the projects a request's body names (``keel.server.auth.PROJECT_IN_BODY``), run as hooks of the endpoint
table (``keel.server.routes.models.HOOKS``) or by the hand-written routes.

The creator is the actor of the run's first audit event (``runs.create``): recorded by the store, in the
transaction that made the run, from the authenticated caller. It never changes, so it is cached. A run made
before the audit log existed has no such event and stays writable as before. Only the server checks this: a
local process acts as its own user on its own store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Request

from keel.core.entities import Run, ViewType
from keel.core.errors import PermissionDenied
from keel.core.identity import DEFAULT_PROJECT
from keel.server.auth import caller_of, project_index
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
    """``PermissionDenied`` unless the caller may write in each run's project and created the run (an admin of the
    run's project, and an open server, write to any)."""
    caller = caller_of(request)
    if not caller.authenticated or caller.may_everywhere("admin"):
        return
    owners: RunOwners = request.app.state.run_owners
    # writing everywhere and admin nowhere (an editor of "*"): no project changes the answer, none is looked up
    by_project = not caller.may_everywhere("write") or caller.may_somewhere("admin")
    for run_id in dict.fromkeys(run_ids):
        if by_project and caller.may_in("admin", _run_project(request, run_id, "write")):
            continue
        owner = owners.owner(run_id)
        if owner is not None and owner != caller.name:
            raise PermissionDenied(f"run {run_id} belongs to {owner}: only its creator (or an admin) writes to it")


def _run_project(request: Request, run_id: str, permission: str) -> str:
    """The project of ``run_id`` (the default one when there is no such run: the store then says so), after checking
    the caller has ``permission`` there."""
    project = project_index(request).of_run(run_id) or DEFAULT_PROJECT
    _require(request, permission, project)
    return project


def _require(request: Request, permission: str, project: str) -> None:
    caller = caller_of(request)
    if not caller.may_in(permission, project):
        raise PermissionDenied(f"{caller.name} may not {permission} in project {project!r}")


def _checks_projects(request: Request, permission: str) -> bool:
    """False when no project needs checking: the caller has ``permission`` in every project (or auth is off)."""
    return caller_of(request).authenticated and not caller_of(request).may_everywhere(permission)


def _readable(request: Request, run: Run) -> bool:
    project = project_index(request).of_experiment(run.experiment_id) or DEFAULT_PROJECT
    return caller_of(request).may_in("read", project)


def run_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before a store call that writes to ``kwargs["run_id"]``."""
    require_run_owner(request, [str(kwargs.get("run_id", ""))])


def runs_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before a store call that writes to each of ``kwargs["run_ids"]`` (heartbeats)."""
    require_run_owner(request, [str(r) for r in kwargs.get("run_ids", ())])


def experiment_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``get_or_create_experiment``: ``write`` in the project named (the store checks the name)."""
    if _checks_projects(request, "write"):
        _require(request, "write", str(kwargs.get("project", DEFAULT_PROJECT)))


def create_run_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``create_run``: ``write`` in the experiment's project, and ``read`` in the parent run's."""
    if not _checks_projects(request, "write") and not _checks_projects(request, "read"):
        return
    experiment = project_index(request).of_experiment(int(kwargs["experiment_id"]))
    _require(request, "write", experiment or DEFAULT_PROJECT)
    if kwargs.get("parent_run_id"):
        _run_project(request, str(kwargs["parent_run_id"]), "read")


def search_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``search_runs``: ``read`` in the project of every experiment named; none named (every experiment): the
    experiments of the projects the caller may read."""
    if not _checks_projects(request, "read"):
        return
    caller, index = caller_of(request), project_index(request)
    ids = kwargs.get("experiment_ids")
    if ids is None:
        store: MetadataStore = request.app.state.store
        every = store.list_experiments(view=ViewType.ALL)  # the search's own view hides what it should
        kwargs["experiment_ids"] = [e.id for e in every if caller.may_in("read", e.project)]
        return
    for experiment_id in dict.fromkeys(ids):
        _require(request, "read", index.of_experiment(int(experiment_id)) or DEFAULT_PROJECT)


def link_hook(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``datasets.link_run``: the run's lineage is written to, so ``write`` in its project too."""
    if _checks_projects(request, "write"):
        _run_project(request, str(kwargs.get("run_id", "")), "write")


def children_hook(request: Request, kwargs: dict[str, Any]) -> Callable[[list[Run]], list[Run]] | None:
    """Before ``list_child_runs``: a child may be in another experiment, so in a project the caller may not read."""
    if not _checks_projects(request, "read"):
        return None
    return lambda runs: [run for run in runs if _readable(request, run)]


def version_runs_hook(
    request: Request, kwargs: dict[str, Any]
) -> Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None:
    """Before ``datasets.runs_of_version``: only the runs of the projects the caller may read."""
    if not _checks_projects(request, "read"):
        return None
    caller, index = caller_of(request), project_index(request)

    def readable(links: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(r, d) for r, d in links if caller.may_in("read", index.of_run(r) or DEFAULT_PROJECT)]

    return readable
