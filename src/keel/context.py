"""The context every capability works in: settings, the metadata store, the artifact store, the current run.

It sits below the capabilities (layer 1.5: it imports only ``keel.core`` and ``keel.store``), so
``keel.data``, ``keel.registry`` and ``keel.evaluation`` receive a ``Context`` instead of reaching into
``keel.tracking``. ``keel.tracking.Client`` is built over one (``client.context``).

>>> ctx = Context("sqlite:///other.db")                 # doctest: +SKIP
>>> keel.data.log(df, "orders", ctx=ctx)                 # doctest: +SKIP

The current run belongs to the thread (and asyncio task) that started it: the run stack is a
``ContextVar`` kept here and pushed/popped by ``keel.tracking.fluent``, so a capability reads the run
id (``ctx.run_id``) without importing tracking. The current context is process wide, like the
tracking client it backs (``keel.set_client`` sets both).
"""

from __future__ import annotations

import contextvars
import mimetypes
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from keel.core import validation as v
from keel.core.config import Settings, load_settings
from keel.core.entities import ArtifactRef
from keel.core.errors import InvalidArgument
from keel.store.artifacts import ArtifactStore, open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore

REMOTE_SCHEMES = ("http://", "https://")


class RunHandle(Protocol):
    """What the run stack holds: a run being recorded (``keel.tracking.ActiveRun``)."""

    @property
    def id(self) -> str: ...

    @property
    def ended(self) -> bool: ...


_runs: contextvars.ContextVar[tuple[RunHandle, ...]] = contextvars.ContextVar("keel_run_stack", default=())


def push_run(run: RunHandle) -> None:
    """Make ``run`` the current run of this thread (or task), above the ones active already."""
    _runs.set((*_runs.get(), run))


def remove_run(run: RunHandle) -> None:
    stack = _runs.get()
    if run in stack:
        _runs.set(tuple(r for r in stack if r is not run))


def current_run() -> RunHandle | None:
    """The innermost run active in this thread (or asyncio task), if any."""
    for run in reversed(_runs.get()):
        if not run.ended:  # ended from another thread: its stack entry is stale
            return run
    return None


def current_run_id() -> str | None:
    run = current_run()
    return run.id if run is not None else None


class Context:
    """Settings, a metadata store and an artifact store (opened on first use), for one process or one test.

    ``store``: a URI or an open store (default: the configured one); ``artifacts``: a URL or an open store
    (default: the configured URL, else the server's for http stores, else ``<home>/artifacts``).
    """

    def __init__(
        self,
        store: str | MetadataStore | None = None,
        artifacts: str | ArtifactStore | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        uri = store if isinstance(store, str) else self.settings.store
        self.store: MetadataStore = (
            store if isinstance(store, MetadataStore) else open_store(uri, heartbeat_timeout=self.settings.heartbeat_timeout)
        )
        self._artifacts_arg = artifacts
        self._artifacts: ArtifactStore | None = artifacts if isinstance(artifacts, ArtifactStore) else None
        self._artifacts_lock = threading.Lock()
        self._flushers: list[weakref.WeakMethod[Callable[[], None]]] = []

    def __repr__(self) -> str:
        return f"Context(store={type(self.store).__name__})"

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store, opened on first use."""
        if self._artifacts is None:
            with self._artifacts_lock:
                if self._artifacts is None:
                    self._artifacts = open_artifact_store(self._configured_artifacts_url())
        return self._artifacts

    def _configured_artifacts_url(self) -> str:
        if isinstance(self._artifacts_arg, str):
            return self._artifacts_arg
        if self.settings.artifacts is not None:
            return self.settings.artifacts
        store_uri = str(getattr(self.store, "uri", ""))
        return store_uri if store_uri.startswith(REMOTE_SCHEMES) else str(self.settings.home / "artifacts")

    # where the stores are, for worker processes that open their own ----------------------
    @property
    def store_uri(self) -> str:
        """The URI a worker process opens the same metadata store with."""
        uri = getattr(self.store, "uri", None)
        if not uri:
            raise InvalidArgument("pipelines on the process or Ray executors need a store opened from a URI")
        return str(uri)

    @property
    def artifacts_url(self) -> str:
        """The URL a worker process opens the same artifact store with."""
        url = getattr(self.artifacts, "url", None)
        return str(url) if url is not None else str(self.settings.home / "artifacts")

    @property
    def shared_source(self) -> str | None:
        """The keel server this context's metadata or blobs come from, if any: a store this process does not own."""
        for url in (getattr(self.store, "uri", None), getattr(self.artifacts, "url", None)):
            if isinstance(url, str) and url.startswith(REMOTE_SCHEMES):
                return url
        return None

    # the current run ----------------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        """The run active in this thread (or task), if any: what capabilities link their reads and writes to."""
        return current_run_id()

    # buffered writes ------------------------------------------------------------------------
    def add_flusher(self, flush: Callable[[], None]) -> None:
        """Register a bound method that stores buffered writes (a tracking client's metric writer); held weakly."""
        self._flushers.append(weakref.WeakMethod(flush))

    def flush(self) -> None:
        """Store what the writers over this context still buffer, before a read that needs it."""
        alive = []
        for ref in self._flushers:
            fn = ref()
            if fn is not None:
                fn()
                alive.append(ref)
        self._flushers = alive

    # artifacts of runs ------------------------------------------------------------------------
    def log_bytes(self, run_id: str, data: bytes, name: str, media_type: str | None = None) -> ArtifactRef:
        """Store ``data`` and record it as the artifact ``name`` of ``run_id``."""
        v.check_artifact_path(name)
        info = self.artifacts.put_bytes(data)
        ref = ArtifactRef(name, info.sha256, info.size, media_type or media_type_of(name))
        self.store.log_artifacts(run_id, [ref])
        return ref

    def log_text(self, run_id: str, text: str, name: str) -> ArtifactRef:
        """Store ``text`` (UTF-8) as the artifact ``name`` of ``run_id``."""
        return self.log_bytes(run_id, text.encode(), name)

    def close(self) -> None:
        """Close the metadata store (its connections); the context is done."""
        self.store.close()


def media_type_of(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


_current: Context | None = None
_current_lock = threading.Lock()


def current() -> Context:
    """The process-wide context, created from configuration on first use (``keel.set_client`` replaces it)."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = Context()
    return _current


def set_current(ctx: Context | None) -> None:
    """Use ``ctx`` where no context is passed (``None``: rebuild from configuration on next use)."""
    global _current
    _current = ctx


def resolve(ctx: Context | None) -> Context:
    """``ctx``, else the current context: what every ``ctx: Context | None = None`` parameter means."""
    return ctx if ctx is not None else current()
