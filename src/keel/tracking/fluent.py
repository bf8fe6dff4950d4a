"""Module-level tracking: ``keel.start_run`` and friends, on one process-wide client and a run stack.

A run started while another is active becomes its child (nested runs). The stack of active
runs belongs to the thread (and to the asyncio task) that started them, as in MLflow: a run
started in a worker thread is not a child of the main thread's run. It lives in a
``ContextVar`` holding an immutable tuple, so every thread and task sees its own stack; that
``ContextVar`` is ``keel.context``'s, so data, registry and evaluation read the current run id
(``ctx.run_id``) without importing tracking. The client is built over the current
``keel.context.Context``: ``set_client`` makes its context the current one.
A process-wide registry of open runs lets interpreter exit end the runs left open.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from keel import context as _context
from keel.core.entities import ArtifactRef, RunPage, RunStatus
from keel.core.errors import KeelError
from keel.tracking.client import Client
from keel.tracking.run import ActiveRun
from keel.tracking.writer import flush_all

_client: Client | None = None
_client_lock = threading.Lock()
_open: dict[str, ActiveRun] = {}  # runs started by start_run and not ended yet, in start order, any thread
_open_lock = threading.Lock()


def get_client() -> Client:
    """The process-wide client, over the current context (created on first use from configuration)."""
    global _client
    ctx = _context.current()
    client = _client
    if client is None or client.context is not ctx:
        with _client_lock:
            if _client is None or _client.context is not ctx:
                _client = Client(ctx)
            client = _client
    return client


def set_client(client: Client | None) -> None:
    """Use ``client`` for module-level calls, and its context wherever none is passed (``None``: rebuild
    both from configuration on next use)."""
    global _client
    with _client_lock:
        _client = client
        _context.set_current(client.context if client is not None else None)


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    parent: str | ActiveRun | None = None,
    project: str = "default",
) -> ActiveRun:
    """Start a run; use it as ``with keel.start_run(experiment="churn") as run: ...``.

    With a run already active in this thread (or task), the new run is its child unless
    ``parent`` says otherwise. A child goes to its parent's experiment unless ``experiment``
    is given.
    """
    client = get_client()
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if parent_id is None:
        current = active_run()
        if current is not None:
            parent_id = current.id
            client.remember_run(current.info)  # its experiment is known: no lookup for the child
    elif isinstance(parent, ActiveRun):
        client.remember_run(parent.info)
    run = client.create_run(experiment, name, project=project, parent_run_id=parent_id, tags=tags, params=params)
    active = ActiveRun(client, run, on_end=_forget)
    with _open_lock:
        _open[active.id] = active
    _push(active)
    return active


@contextlib.contextmanager
def attach(run_id: str, client: Client | None = None) -> Iterator[ActiveRun]:
    """Make an existing run the active one for a block (a pipeline step, a trial in a worker).

    The run is not ended on exit: whoever created it ends it.
    """
    client = client or get_client()
    active = ActiveRun(client, client.get_run(run_id))
    _push(active)
    try:
        yield active
    finally:
        _remove(active)


def _push(run: ActiveRun) -> None:
    _context.push_run(run)


def _remove(run: ActiveRun) -> None:
    _context.remove_run(run)


def _forget(run: ActiveRun) -> None:
    """A run ended: off this context's stack (another thread's stack skips it as ended) and off the registry."""
    _remove(run)
    with _open_lock:
        _open.pop(run.id, None)


def active_run() -> ActiveRun | None:
    """The innermost run active in this thread (or asyncio task), if any."""
    run = _context.current_run()
    return run if isinstance(run, ActiveRun) else None  # only tracking pushes runs: always an ActiveRun


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise KeelError("no active run: call keel.start_run() first (or use a `with keel.start_run():` block)")
    return run


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    _require_active().end(status)


def log_param(key: str, value: Any) -> None:
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _require_active().log_params(dict(params))


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    _require_active().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    _require_active().log_metrics(dict(metrics), step, timestamp)


def set_tag(key: str, value: Any) -> None:
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _require_active().set_tags(dict(tags))


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactRef]:
    return _require_active().log_artifact(path, name)


def flush() -> None:
    get_client().flush()


def search_runs(
    experiments: Sequence[str] | str | None = None,
    filter: str = "",
    order_by: Sequence[str] = (),
    max_results: int = 100,
    page_token: str | None = None,
) -> RunPage:
    return get_client().search_runs(experiments, filter, order_by, max_results, page_token)


@atexit.register
def _at_exit() -> None:
    """Flush buffered metrics and end runs still open, as finished (a script that simply returned).

    The registry, not a stack, says which: a thread's stack is invisible from the exiting one.
    Latest first, so children end before their parents.
    """
    with _open_lock:
        still_open = list(_open.values())
    for run in reversed(still_open):
        try:
            run.end(RunStatus.FINISHED)
        except Exception:  # noqa: BLE001
            _forget(run)
    flush_all()
