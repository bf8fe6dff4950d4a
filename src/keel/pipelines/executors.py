"""Executors run step tasks: in this process, in a pool of local processes, or on Ray.

A task carries the function, its literal arguments and references to upstream outputs;
the worker loads inputs from the artifact store, runs the function with the step's run
active (so ``keel.log_metric`` inside a step lands on that step), stores the output and
returns a reference. The same task gives the same result on every executor.
"""

from __future__ import annotations

import contextlib
import io
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidArgument, MissingExtra
from keel.pipelines.steps import walk
from keel.pipelines.values import OutputRef, load_output, select, store_output

if TYPE_CHECKING:
    from keel.context import Context
    from keel.tracking.client import Client

EXECUTORS = ("inline", "process", "ray")


@dataclass(frozen=True)
class Upstream:
    """An argument that is (part of) another step's output."""

    ref: OutputRef
    index: Any = None


@dataclass
class StepTask:
    node_id: str
    step: str
    fn: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    run_id: str
    store: str
    artifacts: str


@dataclass
class TaskResult:
    node_id: str
    ok: bool
    output: OutputRef | None = None
    error: str = ""
    traceback: str = ""
    logs: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _resolve(value: Any, ctx: Context, cache: dict[str, Any]) -> Any:
    """Task arguments with upstream references replaced by the outputs (each loaded once per task)."""

    def load(item: Any) -> Any:
        if not isinstance(item, Upstream):
            return item
        key = item.ref.sha256 + item.ref.dataset
        if key not in cache:
            cache[key] = load_output(item.ref, ctx.artifacts, ctx)
        return select(cache[key], item.index)

    return walk(value, load)


class _Tee(io.StringIO):
    """Captures a step's output for its log artifact while still showing it."""

    def __init__(self, echo: Any) -> None:
        super().__init__()
        self._echo = echo

    def write(self, s: str) -> int:
        if self._echo is not None:
            self._echo.write(s)
        return super().write(s)


_worker_clients: dict[tuple[str, str], Client] = {}


def _client_for(store: str, artifacts: str) -> Client:
    from keel.tracking.client import Client

    key = (store, artifacts)
    if key not in _worker_clients:
        _worker_clients[key] = Client(store, artifacts)
    return _worker_clients[key]


def execute(task: StepTask, client: Client | None = None, echo: bool = False) -> TaskResult:
    """Run one step task to completion and store its output. Never raises: failures are in the result."""
    import sys

    from keel.tracking.fluent import attach

    started = time.perf_counter()
    client = client or _client_for(task.store, task.artifacts)
    out = _Tee(sys.stdout if echo else None)
    try:
        cache: dict[str, Any] = {}
        args = _resolve(task.args, client.context, cache)
        kwargs = _resolve(task.kwargs, client.context, cache)
        with attach(task.run_id, client), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            value = task.fn(*args, **kwargs)
        ref = store_output(value, client.artifacts, task.step)
        client.flush()
        return TaskResult(task.node_id, True, ref, logs=out.getvalue(), seconds=time.perf_counter() - started)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return TaskResult(
            task.node_id, False, None, f"{type(exc).__name__}: {exc}", traceback.format_exc(), out.getvalue(),
            time.perf_counter() - started,
        )  # fmt: skip


def pack(task: StepTask) -> bytes:
    """Pickle a task for another process. Code from the user's own modules (the step, or an
    objective passed as an argument) travels by value, so workers need not import it: a Ray
    worker does not share the driver's sys.path."""
    import sys

    import cloudpickle

    for fn in (task.fn, *task.args, *task.kwargs.values()):
        if not callable(fn):
            continue
        module = sys.modules.get(getattr(fn, "__module__", "") or "")
        path = getattr(module, "__file__", None) or ""
        if (
            module is not None
            and module.__name__ != "__main__"
            and "site-packages" not in path
            and not module.__name__.startswith("keel.")
        ):
            cloudpickle.register_pickle_by_value(module)
    return bytes(cloudpickle.dumps(task))


def _execute_pickled(blob: bytes) -> TaskResult:
    import cloudpickle

    return execute(cloudpickle.loads(blob))


class Executor:
    """Where a pipeline's steps (and tune's trials) run: each task is submitted and its future waited on."""

    name = "executor"

    def submit(self, task: StepTask) -> Future[TaskResult]:
        """Start one task; the returned future holds its result once it is done."""
        raise NotImplementedError

    @property
    def parallelism(self) -> int:
        """How many tasks can run at once: tune keeps this many trials in flight unless ``parallel`` says otherwise."""
        return 1

    def shutdown(self) -> None:
        """Release the workers (a process pool waits for its steps and cancels those not started)."""
        pass


class InlineExecutor(Executor):
    """Runs each step in this process, one at a time (the default; easiest to debug)."""

    name = "inline"

    def __init__(self, client: Client) -> None:
        self.client = client

    def submit(self, task: StepTask) -> Future[TaskResult]:
        future: Future[TaskResult] = Future()
        future.set_result(execute(task, self.client, echo=True))
        return future


class ProcessExecutor(Executor):
    """Independent steps in parallel, in a pool of local processes (spawned: no inherited threads)."""

    name = "process"

    def __init__(self, max_workers: int | None = None) -> None:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        self.workers = max_workers or os.cpu_count() or 2
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    @property
    def parallelism(self) -> int:
        return self.workers

    def submit(self, task: StepTask) -> Future[TaskResult]:
        return self.pool.submit(_execute_pickled, pack(task))

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """Steps as Ray tasks: a local Ray started on demand, or a cluster at ``address`` (``ray://host:port``)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise MissingExtra("ray", "ray") from None
        import os

        self.ray = ray
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a local Ray stays on loopback
                ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 2, include_dashboard=False, log_to_driver=False,
                    _node_ip_address="127.0.0.1",
                )  # fmt: skip
        self._remote = ray.remote(_execute_pickled)

    @property
    def parallelism(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 1))

    def submit(self, task: StepTask) -> Future[TaskResult]:
        future: Future[TaskResult] = self._remote.remote(pack(task)).future()
        return future


def make_executor(name: str | Executor, client: Client, address: str | None = None) -> Executor:
    if isinstance(name, Executor):
        return name
    if name == "inline":
        return InlineExecutor(client)
    if name == "process":
        return ProcessExecutor()
    if name == "ray":
        from keel.core.config import load_settings

        return RayExecutor(address or load_settings().ray_address)
    raise InvalidArgument.for_field("executor", name, f"one of {', '.join(EXECUTORS)}")
