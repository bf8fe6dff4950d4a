"""Registry, deployment and trust policy at the server, run before the store call (hooks of the endpoint table,
``keel.server.endpoints``): the actor a change records is the authenticated caller, never a field of the body,
and moving a protected model's aliases needs a binding on that model."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from keel.core.deployment_records import parse_model_uri
from keel.core.errors import InvalidArgument, PermissionDenied
from keel.core.promotion import MAX_ACTOR_LENGTH
from keel.server.auth import caller_of
from keel.server.endpoints import Hook
from keel.server.ownership import (
    children_hook,
    create_run_hook,
    experiment_hook,
    link_hook,
    run_hook,
    runs_hook,
    search_hook,
    version_runs_hook,
)


def set_actor(request: Request, kwargs: dict[str, Any]) -> None:
    """The actor the store records: the caller's name, whatever ``actor`` the body carried (ignored)."""
    kwargs["actor"] = caller_of(request).name[:MAX_ACTOR_LENGTH]


def check_promotion(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``models.move_alias``: a model with role bindings of its own is protected: only callers with a
    ``promote`` binding on it (or admins) move its aliases, and a forced move (no gates) of it needs an admin. The
    store then checks the gates and the holder in one transaction."""
    set_actor(request, kwargs)
    caller = caller_of(request)
    if not caller.authenticated:
        return  # auth off: one local user, an admin
    name = str(kwargs.get("name", ""))
    protected = bool(request.app.state.store.identity.bindings(model=name))
    if not caller.may_promote(name, protected):
        raise PermissionDenied(f"{caller.name} may not move the aliases of model {name!r}: it is protected (keel roles)")
    if protected and kwargs.get("force") and not caller.may("admin"):
        raise PermissionDenied(f"a forced move (no gates) of the protected model {name!r} needs an admin")


UNAUTHENTICATED = "(an unauthenticated caller)"


def _model_of(uri: Any) -> str | None:
    """The model a route URI names (``models:/churn/3``, ``models:/churn@production``: ``churn``); None for anything
    else (the store refuses it with a clear error)."""
    try:
        return parse_model_uri(uri)[0]
    except InvalidArgument:
        return None


def _check_serving(request: Request, models: set[str], what: str) -> None:
    """Answering traffic with a protected model is promoting it: only its own bindings and admins may (an unprotected
    one needs no more than the route's permission, already checked)."""
    caller = caller_of(request)
    if not caller.authenticated:
        return
    identity = request.app.state.store.identity
    for model in sorted(m for m in models if m):
        if identity.bindings(model=model) and not caller.may_promote(model, True):
            raise PermissionDenied(f"{caller.name} may not {what} model {model!r}: it is protected (keel roles)")


def check_routes(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``deployments.create`` and ``set_routes``: the actor is the caller, and a protected model may answer
    traffic (as primary or canary) only by its own bindings' or an admin's change. Shadows answer nobody."""
    set_actor(request, kwargs)
    answering = {_model_of(kwargs.get("primary"))} | {_model_of(c[0]) for c in kwargs.get("canaries") or ()}
    _check_serving(request, {m for m in answering if m}, "route traffic to")


def check_rollback(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``deployments.rollback``: it changes what answers, from the current routes to earlier ones (or pins
    an alias's earlier version): the models of both need the caller's promotion rights when protected."""
    set_actor(request, kwargs)
    store = request.app.state.store
    name = str(kwargs.get("name", ""))
    current = store.deployments.get(name)
    models = {_model_of(current.primary)} | {_model_of(uri) for uri, _ in current.canaries}
    for change in store.deployments.history(name)[-5:]:  # the rollback's target is among the last changes
        routes = change.from_routes or {}
        models |= {_model_of(routes.get("primary"))} | {_model_of(c[0]) for c in routes.get("canaries") or ()}
    _check_serving(request, {m for m in models if m}, "roll back the routes of")


def for_caller(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``identity.blob_trust``: the question is always asked for the caller, whoever the query names. A server
    without authentication knows nobody: every caller is its one local user, so "you wrote it" would hold for
    anyone, and the question is asked for no one (nothing is trusted by authorship)."""
    caller = caller_of(request)
    kwargs["principal"] = caller.name if caller.authenticated else UNAUTHENTICATED


def lease_owner(request: Request, kwargs: dict[str, Any]) -> None:
    """Before ``monitors.acquire_lease`` and ``release_lease``: a lease is held by the caller's scheduler, so the
    owner the store keeps is prefixed with the caller: another principal can neither release nor renew it."""
    caller = caller_of(request)
    if caller.authenticated:
        kwargs["owner"] = f"{caller.name}/{kwargs.get('owner', '')}"[:200]


HOOKS: dict[str, Hook] = {
    "monitors.acquire_lease": lease_owner,
    "monitors.release_lease": lease_owner,
    # a run is written to by its creator (or an admin of its project), in a project where the caller may write; what
    # a body names is checked in its project, and what lists runs of several projects is filtered: keel.server.ownership
    "log_params": run_hook,
    "set_tags": run_hook,
    "set_trial_result": run_hook,
    "log_artifacts": run_hook,
    "delete_run": run_hook,
    "restore_run": run_hook,
    "heartbeat": runs_hook,
    "pipelines.save_step": run_hook,
    "get_or_create_experiment": experiment_hook,
    "create_run": create_run_hook,
    "search_runs": search_hook,
    "list_child_runs": children_hook,
    "datasets.link_run": link_hook,
    "datasets.runs_of_version": version_runs_hook,
    "identity.blob_trust": for_caller,
    "models.move_alias": check_promotion,
    "deployments.create": check_routes,
    "deployments.set_routes": check_routes,
    "deployments.rollback": check_rollback,
}
