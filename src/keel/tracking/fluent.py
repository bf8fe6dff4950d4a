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
from keel.core.entities import NOTE_TAG, ArtifactRef, Experiment, Run, RunStatus, ViewType
from keel.core.errors import InvalidArgument, KeelError
from keel.store.artifacts import ArtifactStore
from keel.tracking import frame
from keel.tracking.client import Client
from keel.tracking.run import ActiveRun
from keel.tracking.writer import flush_all

_client: Client | None = None
_client_lock = threading.Lock()
_open: dict[str, ActiveRun] = {}  # runs started by start_run and not ended yet, in start order, any thread
_open_lock = threading.Lock()
_experiment: str | None = None  # set_experiment's: where start_run puts a top-level run without an experiment


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
    global _client, _experiment
    with _client_lock:
        _client = client
        _context.set_current(client.context if client is not None else None)
        if client is None:
            _experiment = None  # back to configuration: the configured experiment too


def set_store(uri: str, artifacts: str | ArtifactStore | None = None) -> Client:
    """Point the module-level API at the store at ``uri`` (a ``sqlite:///``, ``postgresql://`` or ``http(s)://``
    URI; ``artifacts``: where blobs go, default as configured). Runs active already keep their store.
    The experiment chosen with ``set_experiment`` stays chosen. Returns the new client."""
    if not isinstance(uri, str) or not uri:
        raise InvalidArgument.for_field("uri", uri, "a store URI (sqlite:///..., postgresql://..., http(s)://...)")
    client = Client(uri, artifacts)
    previous = _client
    if previous is not None:
        previous.flush()  # what the old store's runs buffered lands there, not nowhere
    set_client(client)
    return client


def set_experiment(name: str, project: str = "default") -> Experiment:
    """Make ``name`` the experiment of the next top-level runs started without ``experiment=`` (created if
    missing, as in MLflow); ``set_client(None)`` goes back to the configured one."""
    global _experiment
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument.for_field("name", name, "a non-empty experiment name")
    experiment = get_client().store.get_or_create_experiment(name, project)
    _experiment = name
    return experiment


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    parent: str | ActiveRun | None = None,
    project: str = "default",
    description: str | None = None,
) -> ActiveRun:
    """Start a run; use it as ``with keel.start_run(experiment="churn") as run: ...``.

    With a run already active in this thread (or task), the new run is its child unless
    ``parent`` says otherwise. A child goes to its parent's experiment unless ``experiment``
    is given. ``description``: the run's notes (``keel.set_description`` changes them later).
    """
    if description is not None:
        if not isinstance(description, str):
            raise InvalidArgument.for_field("description", description, "a string")
        tags = {**(tags or {}), NOTE_TAG: description}
    client = get_client()
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if parent_id is None:
        current = active_run()
        if current is not None:
            parent_id = current.id
            client.remember_run(current.info)  # its experiment is known: no lookup for the child
    elif isinstance(parent, ActiveRun):
        client.remember_run(parent.info)
    if experiment is None and parent_id is None:
        experiment = _experiment  # a child still goes with its parent
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
    """End the active run (``finished`` unless ``status`` says ``failed`` or ``killed``)."""
    _require_active().end(status)


def log_param(key: str, value: Any) -> None:
    """Log one param of the active run (immutable; see ``Client.log_param`` for how values are stored)."""
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params of the active run in one call (all or none)."""
    _require_active().log_params(dict(params))


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    """Log one metric value of the active run (buffered; without ``step``, steps count up from 0 per key).

    ``step``: an integer; ``timestamp``: milliseconds since the epoch (default: now). NaN and infinities are
    kept. ``InvalidArgument`` for a bad key, value or step; ``KeelError`` when no run is active.
    ``keel.log_metric("loss", 0.42, step=3)``.
    """
    _require_active().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    """Log several metric values of the active run at one step and time (a bad one logs none)."""
    _require_active().log_metrics(dict(metrics), step, timestamp)


def set_tag(key: str, value: Any) -> None:
    """Set one tag of the active run (tags can change; params cannot)."""
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags of the active run."""
    _require_active().set_tags(dict(tags))


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactRef]:
    """Store a file, or every file below a directory, as artifacts of the active run."""
    return _require_active().log_artifact(path, name)


def log_dict(dictionary: Mapping[str, Any], name: str) -> ArtifactRef:
    """Store a dict as the active run's artifact ``name`` (``.json``, or ``.yaml``/``.yml``)."""
    return _require_active().log_dict(dictionary, name)


def log_text(text: str, name: str) -> ArtifactRef:
    """Store text (UTF-8) as the active run's artifact ``name``."""
    return _require_active().log_text(text, name)


def log_table(table: Any, name: str) -> ArtifactRef:
    """Store a pandas DataFrame (or pyarrow Table) as the active run's Parquet artifact ``name`` (``.parquet``)."""
    return _require_active().log_table(table, name)


def log_figure(figure: Any, name: str) -> ArtifactRef:
    """Store a matplotlib Figure (``.png``/``.svg``) or a plotly Figure (``.html``, offline) of the active run."""
    return _require_active().log_figure(figure, name)


def log_image(image: Any, name: str) -> ArtifactRef:
    """Store a numpy array or PIL image as the active run's PNG artifact ``name`` (``.png``)."""
    return _require_active().log_image(image, name)


def flush() -> None:
    """Store every buffered metric value now."""
    get_client().flush()


def set_description(text: str) -> None:
    """Set the active run's description (its notes, shown by ``keel runs show``), replacing the one it had."""
    _require_active().set_description(text)


def delete_run(run_id: str) -> None:
    """Soft-delete a run (and its child runs): hidden from ``search_runs`` and ``keel runs list``, read-only,
    restorable with ``keel.restore_run`` until ``keel gc`` purges it.

    >>> keel.delete_run(run.id)                 # doctest: +SKIP
    >>> keel.search_runs(view="deleted")        # doctest: +SKIP
    """
    get_client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Bring back a deleted run (and the child runs its deletion hid)."""
    get_client().restore_run(run_id)


def delete_experiment(experiment: str | int, project: str = "default") -> None:
    """Soft-delete an experiment by name (or id): it and its runs are hidden and read-only until
    ``keel.restore_experiment``; ``keel gc`` purges it for good."""
    get_client().delete_experiment(experiment, project)


def restore_experiment(experiment: str | int, project: str = "default") -> None:
    """Bring back a deleted experiment (by name or id) and its runs."""
    get_client().restore_experiment(experiment, project)


def search_runs(
    experiment_names: Sequence[str] | str | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 100_000,
    output: str = "frame",
    *,
    project: str = "default",
    view: ViewType | str = ViewType.ACTIVE,
) -> Any:
    """Runs matching ``filter`` (the grammar of ``keel runs list``: ``"metrics.auc > 0.9 and params.model = 'rf'"``)
    in the experiments named (default: every experiment), sorted by ``order_by`` (``["metrics.auc DESC"]``), at
    most ``max_results`` of them.

    ``output="frame"``: a pandas DataFrame as ``mlflow.search_runs`` gives, one row per run, columns ``run_id``,
    ``experiment``, ``name``, ``status``, ``start_time``, ``end_time`` (UTC), then ``params.*``, ``metrics.*``
    (latest values) and ``tags.*`` (needs ``keel[data]``). ``output="list"``: the ``Run`` objects.
    Deleted runs (and the runs of deleted experiments) are left out unless ``view`` is ``"deleted"`` or ``"all"``.
    For one page at a time, use ``Client.search_runs``.
    """
    if output not in ("frame", "list"):
        raise InvalidArgument.for_field("output", output, "'frame' or 'list'")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise InvalidArgument.for_field("max_results", max_results, "a positive integer")
    client = get_client()
    client.flush()  # the latest metrics this process logged are part of what it searches
    runs: list[Run] = []
    for run in client.iter_runs(
        experiment_names, filter or "", tuple(order_by or ()), project=project, page_size=min(max_results, 1000), view=view
    ):
        runs.append(run)
        if len(runs) >= max_results:
            break
    if output == "list":
        return runs
    names: dict[int, str] = {}

    def experiment_name(experiment_id: int) -> str:
        if experiment_id not in names:
            names[experiment_id] = client.store.get_experiment(experiment_id).name
        return names[experiment_id]

    return frame.runs_frame(runs, experiment_name)


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
