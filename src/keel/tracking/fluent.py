"""Module-level tracking: ``keel.start_run`` and friends, on one process-wide client and a run stack.

A run started while another is active becomes its child (nested runs).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from keel.core.entities import ArtifactRef, RunPage, RunStatus
from keel.core.errors import KeelError
from keel.tracking.client import Client
from keel.tracking.run import ActiveRun
from keel.tracking.writer import flush_all

_client: Client | None = None
_client_lock = threading.Lock()
_stack: list[ActiveRun] = []


def get_client() -> Client:
    """The process-wide client, created on first use from configuration."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = Client()
    return _client


def set_client(client: Client | None) -> None:
    """Use ``client`` for module-level calls (``None``: rebuild from configuration on next use)."""
    global _client
    _client = client


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

    With a run already active, the new run is its child unless ``parent`` says otherwise,
    and it inherits the parent's experiment.
    """
    client = get_client()
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if parent_id is None and _stack:
        parent_id = _stack[-1].id
    if experiment is None and parent_id is not None and _stack:
        experiment_id = _stack[-1].info.experiment_id
        experiment = client.store.get_experiment(experiment_id).name
    run = client.create_run(experiment, name, project=project, parent_run_id=parent_id, tags=tags, params=params)
    active = ActiveRun(client, run, on_end=_pop)
    _stack.append(active)
    return active


@contextlib.contextmanager
def attach(run_id: str, client: Client | None = None) -> Iterator[ActiveRun]:
    """Make an existing run the active one for a block (a pipeline step, a trial in a worker).

    The run is not ended on exit: whoever created it ends it.
    """
    client = client or get_client()
    active = ActiveRun(client, client.get_run(run_id))
    _stack.append(active)
    try:
        yield active
    finally:
        _pop(active)


def _pop(run: ActiveRun) -> None:
    if run in _stack:
        _stack.remove(run)


def active_run() -> ActiveRun | None:
    return _stack[-1] if _stack else None


def _require_active() -> ActiveRun:
    if not _stack:
        raise KeelError("no active run: call keel.start_run() first (or use a `with keel.start_run():` block)")
    return _stack[-1]


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
    """Flush buffered metrics and end runs still open, as finished (a script that simply returned)."""
    while _stack:
        try:
            _stack[-1].end(RunStatus.FINISHED)
        except Exception:  # noqa: BLE001
            _stack.pop()
    flush_all()
