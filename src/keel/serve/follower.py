"""Following a deployment: read its routes from the store, load and warm what changed, swap the table whole.

Every replica polls the store (one small read per interval): no coordination between replicas, so scaling out is
running more of them. An alias moved in this process (``model.alias_moved``) wakes the poll at once; one moved
elsewhere is seen at the next poll, since the store bumps the deployment when an alias it follows moves and the
poll resolves aliases anyway. Loading happens on the follower's thread: requests keep being answered by the old
table until the new one is complete and warm; a change that cannot load (a missing or corrupt model) leaves the
old table in service and is retried at the next change or after ``retry_after`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.deployments import Deployment
from keel.core.errors import KeelError
from keel.core.hooks import subscribe
from keel.registry import resolve
from keel.serve.batching import Batcher
from keel.serve.models import ServedModel, load_served_version
from keel.serve.routing import Route, RouteTable

log = logging.getLogger(__name__)

BatcherFactory = Callable[[ServedModel, bool], Batcher]
"""``make(served, shadow)``: a model's queue (a shadow's never runs on the event loop: it must not delay answers)."""


def build_table(
    deployment: Deployment | None,
    uris: dict[str, str],
    ctx: Context,
    make_batcher: BatcherFactory,
    previous: RouteTable | None = None,
    *,
    warm: bool = True,
) -> RouteTable:
    """The table for ``deployment`` (None: one model, ``uris["primary"]``), reusing the loaded models (and their
    queues) of ``previous`` that still serve the same version, loading and warming the others."""
    # keyed by (shadow?, version): a shadow naming the primary's version gets a queue of its own, so its copies of
    # the traffic can never fill the queue the answers wait in
    kept: dict[tuple[bool, str], tuple[ServedModel, Batcher]] = {}
    if previous is not None:
        for route in previous.routes():
            kept.setdefault((route.kind == "shadow", route.served.requested.uri), (route.served, route.batcher))
    resolved: dict[str, str] = {}

    def make(kind: str, uri: str, weight: float = 0.0) -> Route:
        version = resolve(uri, ctx)
        resolved[uri] = version.uri
        key = (kind == "shadow", version.uri)
        if key not in kept:
            loaded = next((m for (_, v), (m, _) in kept.items() if v == version.uri), None)
            served = loaded or load_served_version(version, ctx)
            if warm and loaded is None:
                served.warm()
            kept[key] = (served, make_batcher(served, kind == "shadow"))
        served, batcher = kept[key]
        return Route(kind, uri, served, batcher, weight)

    if deployment is None:
        return RouteTable(None, 0, make("primary", uris["primary"], 1.0), resolved=resolved)
    return RouteTable(
        deployment.name,
        deployment.updated_at,
        make("primary", deployment.primary, deployment.primary_weight),
        tuple(make("canary", uri, weight) for uri, weight in deployment.canaries),
        tuple(make("shadow", uri) for uri in deployment.shadows),
        deployment.sticky_key,
        resolved,
    )


class Follower:
    """Keeps ``on_table`` fed with the current table of deployment ``name``, or of the one model ``model_uri``
    (loaded once). ``start`` loads the first table on the follower's thread, retried every ``first_retry`` seconds
    until it loads (the store or the artifacts may come up after the server); ``stop`` at shutdown."""

    def __init__(
        self,
        name: str | None,
        ctx: Context | None,
        make_batcher: BatcherFactory,
        on_table: Callable[[RouteTable], None],
        *,
        model_uri: str | None = None,
        poll_interval: float = 1.0,
        retry_after: float = 30.0,
        first_retry: float = 2.0,
    ) -> None:
        self.name, self.model_uri, self.ctx = name, model_uri, _ctx(ctx)
        self.first_retry = first_retry
        self.make_batcher, self.on_table = make_batcher, on_table
        self.poll_interval, self.retry_after = poll_interval, retry_after
        self.table: RouteTable | None = None
        self.error: str | None = None
        self.swaps = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple[int, float] | None = None  # (updated_at, when) of the change that could not load
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()  # start and stop: a server stopped while it starts must not subscribe after

    def start(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if self.name is not None:
                self._unsubscribe = subscribe("model.alias_moved", self._on_alias_moved)
            self._thread = threading.Thread(target=self._loop, name=f"keel-follow-{self.name or 'model'}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stop.set()
            self._wake.set()
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)

    def _on_alias_moved(self, payload: dict[str, Any]) -> None:
        table = self.table
        if table is not None and any(f"models:/{payload.get('model')}@{payload.get('alias')}" == uri for uri in table.resolved):
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - the store is down, say: keep serving what we have, try again next poll
                self.error = _message(exc)
                log.warning("%s: cannot read its routes: %s", self.name or self.model_uri, self.error)
            self._wake.wait(self.poll_interval if self.table is not None else self.first_retry)
            self._wake.clear()

    def poll(self) -> bool:
        """Read the deployment; when its routes or what its aliases name changed, build, warm and swap. True when
        a new table went into service."""
        current = self.table
        if self.name is None:  # one model: loaded once
            if current is not None:
                return False
            table = self._build(None, lambda: build_table(None, {"primary": str(self.model_uri)}, self.ctx, self.make_batcher))
            return table is not None
        deployment = self.ctx.store.deployments.get(self.name)
        if current is not None and deployment.updated_at == current.updated_at and not self._aliases_moved(current):
            return False
        wait = self.retry_after if current is not None else self.first_retry
        if self._failed is not None and self._failed[0] == deployment.updated_at:
            if time.monotonic() - self._failed[1] < wait:
                return False
        table = self._build(deployment, lambda: build_table(deployment, {}, self.ctx, self.make_batcher, current))
        return table is not None

    def _build(self, deployment: Deployment | None, build: Callable[[], RouteTable]) -> RouteTable | None:
        try:
            table = build()
        except Exception as exc:  # noqa: BLE001 - a change that cannot load must not stop the serving of the last one
            changed = deployment.updated_at if deployment is not None else 0
            self._failed = (changed, time.monotonic())
            self.error = f"cannot load {self.name or self.model_uri}: {_message(exc)}"
            log.error("%s; %s", self.error, "still serving the previous routes" if self.table else "not ready yet")
            return None
        if self._stop.is_set():
            return None
        self._failed, self.error = None, None
        self._install(table)
        return table

    def _aliases_moved(self, table: RouteTable) -> bool:
        return any(resolve(uri, self.ctx).uri != version for uri, version in table.resolved.items() if "@" in uri)

    def _install(self, table: RouteTable) -> None:
        previous, self.table = self.table, table
        self.on_table(table)
        if previous is not None:
            self.swaps += 1
            log.info("deployment %s: now serving %s", self.name, ", ".join(f"{r.kind} {r.model}" for r in table.routes()))


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, KeelError) else f"{type(exc).__name__}: {exc}"
