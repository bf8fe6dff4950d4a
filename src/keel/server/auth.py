"""Authentication and authorization of the platform API: one middleware (``Guard``) and one dependency
(``authorize``) that every route carries.

``Guard`` runs first, for every request:

1. the ``Host`` header must name this server (``allowed_hosts``): a page on another site that resolves its own
   name to 127.0.0.1 (DNS rebinding) gets 400, not the API;
2. a POST must say ``Content-Type: application/json`` (artifact uploads: ``application/octet-stream``), else 415:
   a cross-site form or ``text/plain`` POST cannot reach a route without the browser asking first (a preflight
   this server never answers); other changing methods always need a preflight, and may name no type, but a type
   they name must be one of those;
3. ``Authorization: Bearer <token>`` names the caller (``store.identity.authenticate``); a client that fails too
   often is refused for a while (429, ``Retry-After``) before its tokens are even checked;
4. with auth off (``keel server`` on loopback, no users yet, or ``--insecure``) every caller is the server's
   local user, an admin;
5. the request then runs as that principal (``keel.core.actor.acting_as``): the actor every record of the change
   carries is the authenticated one, never a field of the body.

``authorize`` then checks the route's permission (``keel.server.policy``) against the caller's in the request's
project: the union of the roles' permissions of its bindings in ``"*"`` and in that project (``keel.core.identity``),
narrowed by the token's scopes. Experiments and runs belong to a project: a route naming a run or an experiment in
its path is checked in that one's project (``ProjectIndex``, cached: it never changes); a route naming them in its
body (``PROJECT_IN_BODY``) only needs the permission in some project here, and its hook checks each project the body
names (``keel.server.ownership``); the other routes (models, datasets, deployments, monitors, identity, audit,
artifacts) are checked in the default project. Tokens never appear in logs, errors or records: a failure says
"invalid or expired token" and nothing else.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
import orjson
from fastapi import Request

from keel.core.actor import acting_as, local_actor
from keel.core.errors import NotFound, PermissionDenied, Unauthenticated
from keel.core.failures import FailureLimiter
from keel.core.identity import (
    ALL_PROJECTS,
    DEFAULT_PROJECT,
    PERMISSIONS,
    RoleBinding,
    effective_permissions,
    permissions_of,
    roles_union,
)  # fmt: skip
from keel.server.policy import POLICY, PUBLIC, alternatives, policy_for
from keel.store.metadata.base import MetadataStore

__all__ = [
    "PROJECT_IN_BODY", "Caller", "FailureLimiter", "Guard", "ProjectIndex", "authorize", "caller_of", "effective_permissions",
    "project_index",
]  # fmt: skip

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UI_PREFIX = "/ui"  # the web UI (keel.ui): pages for people, signed in with a cookie
UI_COOKIE = "keel_token"
PUBLIC_PATHS = frozenset(path for (_, path), needed in POLICY.items() if needed == PUBLIC)
JSON = "application/json"
UPLOAD_TYPES = frozenset({"application/octet-stream"})
# routes whose project is in the body (or whose answer is filtered by project): ``authorize`` lets a caller through
# with the permission in some project, the route (hook or hand-written) then checks every project it names
PROJECT_IN_BODY = frozenset({
    ("GET", "/api/v1/experiments"),  # filtered: the experiments of the projects the caller may read
    ("POST", "/api/v1/experiments"),  # project
    ("POST", "/api/v1/runs"),  # experiment_id
    ("POST", "/api/v1/runs/search"),  # experiment_ids (none: those the caller may read)
    ("POST", "/api/v1/runs/heartbeat"),  # run_ids
    ("POST", "/api/v1/metrics"),  # the run id of each row
    ("PUT", "/api/v1/step-cache/{cache_key}"),  # run_id
    ("GET", "/ui/runs"),  # filtered as the search; a named experiment's project is checked by the page (404)
    # the UI's other pages of experiments and runs: each lists or shows only what the caller may read in its project
    # (a run of a project the caller may not read answers 404, as if it did not exist)
    ("GET", "/ui/"),
    ("GET", "/ui/runs/{ref}"),
    ("GET", "/ui/runs/{ref}/artifacts/{path:path}"),
    ("GET", "/ui/compare"),
    ("GET", "/ui/data/metrics"),
})  # fmt: skip
CACHED = 100_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling and what they may do: ``permissions`` in the default project, already narrowed by the token's
    scopes; ``permissions_in(project)`` in another. A caller that is not authenticated has its ``permissions`` in
    every project (the open server's local user: all; the anonymous caller of a public route: none)."""

    name: str
    permissions: frozenset[str]
    bindings: tuple[RoleBinding, ...] = ()
    authenticated: bool = True
    token_id: str | None = None
    scopes: frozenset[str] = frozenset()  # the token's (empty: not narrowed)

    def may(self, permission: str) -> bool:
        """``permission`` in the default project."""
        return permission in self.permissions

    def permissions_in(self, project: str) -> frozenset[str]:
        """The permissions of the bindings in ``"*"`` or ``project`` (not on a model), narrowed by the token's scopes;
        ``project="*"``: those that hold in every project."""
        if not self.authenticated:
            return self.permissions
        return effective_permissions(self.bindings, self.scopes, project)

    def may_in(self, permission: str, project: str) -> bool:
        return permission in self.permissions_in(project)

    def may_everywhere(self, permission: str) -> bool:
        """``permission`` in every project (a ``"*"`` binding): no project needs to be looked up."""
        return self.may_in(permission, ALL_PROJECTS)

    def may_somewhere(self, permission: str) -> bool:
        """``permission`` in at least one project."""
        if not self.authenticated:
            return permission in self.permissions
        return any(self.may_in(permission, b.project) for b in self.bindings if not b.model)

    def promotes_some_model(self) -> bool:
        """A binding on some model grants ``promote`` (and the token's scopes allow it)."""
        on_models = any(b.model and "promote" in permissions_of(b.role) for b in self.bindings)
        return on_models and (not self.scopes or "promote" in self.scopes)

    def may_promote(self, model: str, protected: bool) -> bool:
        """Move ``model``'s aliases: ``promote`` on the project; on a protected model (one with bindings of its
        own) only through a binding on that model, or as an admin of the project."""
        if not protected:
            return self.may("promote")
        if self.may("admin"):
            return True
        own = roles_union(b.role for b in self.bindings if b.model == model and b.project in (ALL_PROJECTS, DEFAULT_PROJECT))
        return "promote" in own and (not self.scopes or "promote" in self.scopes)


def open_caller() -> Caller:
    """The caller of a server with auth off: its own local user, allowed everything."""
    return Caller(local_actor(), frozenset(PERMISSIONS), authenticated=False)


@dataclass
class Guard:
    """The ASGI middleware of the module docstring. ``auth``: tokens required (else every caller is
    ``open_caller()``); ``allowed_hosts``: host names (no port) the ``Host`` header may carry, ``"*"`` for any."""

    app: Callable[[Scope, Receive, Send], Awaitable[None]]
    store: MetadataStore
    auth: bool
    allowed_hosts: frozenset[str]
    limiter: FailureLimiter = field(default_factory=FailureLimiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = _hostname(headers.get("host", ""))
        if "*" not in self.allowed_hosts and host not in self.allowed_hosts:
            await _refuse(send, 400, "bad_host", f"this server does not answer for the host {host[:100]!r}")
            return
        method = scope["method"]
        # POST is the one changing method a page on another site may send without a preflight: it must say JSON. Any
        # other (a preflight guards it) may leave its type out, but a type it names must be one keel reads.
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if method == "POST" or (method not in SAFE_METHODS and kind):
            if kind != JSON and kind not in UPLOAD_TYPES:
                message = f"a request that changes something must send Content-Type: {JSON} (got {kind[:60]!r})"
                await _refuse(send, 415, "unsupported_media_type", message)
                return
        caller = await self._caller(scope, headers, send)
        if caller is None:
            return  # refused, answered
        scope.setdefault("state", {})["caller"] = caller
        with acting_as(caller.name):
            await self.app(scope, receive, send)

    async def _caller(self, scope: Scope, headers: dict[str, str], send: Send) -> Caller | None:
        authorization = headers.get("authorization", "")
        path = scope.get("path", "")
        from_cookie = False
        if not authorization and path.startswith(UI_PREFIX):  # a browser: its token is the UI's cookie (Path=/ui)
            token = _cookie(headers.get("cookie", ""), UI_COOKIE)
            if token:
                authorization, from_cookie = f"Bearer {token}", True
        if not self.auth and not authorization:
            return open_caller()
        if not authorization:
            if path.startswith(UI_PREFIX) and scope["method"] == "GET" and not _public_path(path):
                await _to_login(scope, send)  # a person, not a program: the sign-in page rather than a 401
                return None
            if not _public_path(path):  # 401 before anything reads the body
                await _refuse(send, 401, "unauthenticated", "this server requires a token: send Authorization: Bearer <token>",
                              {"www-authenticate": 'Bearer realm="keel"'})  # fmt: skip
                return None
            return Caller("anonymous", frozenset(), authenticated=False)  # public routes only (authorize)
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            await _refuse(send, 429, "too_many_failures", "too many failed authentications: try again later",
                          {"retry-after": str(max(1, math.ceil(wait)))})  # fmt: skip
            return None
        scheme, _, token = authorization.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("invalid or expired token")
            return await anyio.to_thread.run_sync(self._authenticate, token.strip())
        except Unauthenticated as exc:
            self.limiter.failed(client)
            if from_cookie and scope["method"] == "GET":
                await _to_login(scope, send)  # an expired or revoked token in the cookie: sign in again
                return None
            await _refuse(send, 401, exc.code, "invalid or expired token", {"www-authenticate": 'Bearer realm="keel"'})
            return None

    def _authenticate(self, token: str) -> Caller:
        principal, record = self.store.identity.authenticate(token)
        bindings = tuple(self.store.identity.bindings(principal.name))
        permissions = effective_permissions(bindings, record.scopes)
        return Caller(principal.name, permissions, bindings, token_id=record.id, scopes=frozenset(record.scopes))


class ProjectIndex:
    """The project of a run and of an experiment, looked up in the store once: neither ever changes. None: no such
    run or experiment (not remembered: it may be created later)."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._experiments: dict[int, str] = {}
        self._lock = threading.Lock()

    def of_experiment(self, experiment_id: int) -> str | None:
        with self._lock:
            found = self._experiments.get(experiment_id)
        if found is not None:
            return found
        try:
            project = self.store.get_experiment(experiment_id).project
        except NotFound:
            return None
        with self._lock:
            if len(self._experiments) < CACHED:
                self._experiments[experiment_id] = project
        return project

    def of_run(self, run_id: str) -> str | None:
        with self._lock:
            found = self._runs.get(run_id)
        if found is not None:
            return found
        try:
            experiment_id = self.store.get_run(run_id).experiment_id
        except NotFound:
            return None
        project = self.of_experiment(experiment_id)
        if project is not None:
            with self._lock:
                self._runs[run_id] = project
                if len(self._runs) > CACHED:
                    self._runs.popitem(last=False)
        return project


def project_index(request: Request) -> ProjectIndex:
    """The app's ``ProjectIndex`` (``create_app`` makes it)."""
    index = request.app.state.projects
    assert isinstance(index, ProjectIndex)
    return index


def caller_of(request: Request) -> Caller:
    """The caller ``Guard`` put on the request (an app without ``Guard``: the open caller)."""
    caller = request.scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else open_caller()


def authorize(request: Request) -> Caller:
    """The dependency on every route: the route's permission (``keel.server.policy``), or 401/403."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    needed = policy_for(request.method, path) if isinstance(path, str) else None
    caller = caller_of(request)
    if needed == PUBLIC:
        return caller
    if needed is None:  # fail closed: a route nobody decided about is nobody's
        raise PermissionDenied(f"no access policy for {request.method} {path}: refused")
    if not caller.authenticated and not caller.permissions:
        raise Unauthenticated("this server requires a token: send Authorization: Bearer <token> (keel tokens create)")
    if "|" in needed:  # alternatives: the first the caller has in the route's project (refused: named by the first)
        choices = alternatives(needed)
        project = _project_of(request)
        needed = next((p for p in choices if caller.may_in(p, project)), choices[0])
    if needed == "promote" and caller.promotes_some_model():
        return caller  # a binding on one model: the route's hook checks it is this model (check_promotion)
    if caller.may_everywhere(needed):
        return caller  # no project to look up
    if not caller.may_somewhere(needed):
        raise PermissionDenied(f"{caller.name} may not {needed} here (this route needs the {needed!r} permission)")
    if (request.method, path) in PROJECT_IN_BODY:
        return caller  # the route checks each project its body names
    project = _project_of(request)
    if not caller.may_in(needed, project):
        raise PermissionDenied(
            f"{caller.name} may not {needed} in project {project!r} (this route needs the {needed!r} permission)"
        )
    return caller


def _project_of(request: Request) -> str:
    """The project of the run or experiment the path names; the default project for every other route, and for a
    run or experiment that does not exist (the route then answers 404 to a caller allowed in the default project,
    403 to others: whether it exists elsewhere is not told)."""
    params = request.path_params
    index = project_index(request)
    project: str | None = None
    if "run_id" in params:
        project = index.of_run(str(params["run_id"]))
    elif "experiment_id" in params:
        try:
            project = index.of_experiment(int(params["experiment_id"]))
        except ValueError:
            project = None  # not a number: the route answers 422
    return project or DEFAULT_PROJECT


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _public_path(path: str) -> bool:
    """A path anyone may fetch: the public lines of the policy (no parameters), the offline docs' files and the UI's
    own scripts and styles (keel's, the same for everyone)."""
    return path in PUBLIC_PATHS or path.startswith(("/docs-static/", "/ui/static/"))


def _cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value.strip('"')
    return None


async def _to_login(scope: Scope, send: Send) -> None:
    """303 to the sign-in page, which sends the browser back here after (a path of this server only)."""
    target = scope.get("path", "/ui/")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    location = "/ui/login?" + urlencode({"next": target})
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b""})


def _hostname(host: str) -> str:
    """The host name of a ``Host`` header, without its port (IPv6 in brackets kept without them)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _refuse(send: Send, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
