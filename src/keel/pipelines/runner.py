"""Running a pipeline: record it, reuse cached steps, schedule the rest on an executor.

The pipeline run is a tracking run (experiment = the pipeline's name) and every step run
is its child, so lineage from raw data to a model is a query over runs. A step is skipped
when an earlier successful run has the same cache key: the step's code hash, its literal
inputs and the cache keys of the steps it reads from. So a change to a step's code
invalidates that step and everything downstream of it, and nothing else.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from keel.core.entities import ArtifactRef, RunStatus
from keel.core.errors import InvalidArgument, KeelError
from keel.pipelines.dag import Dag, Node
from keel.pipelines.executors import StepTask, TaskResult, Upstream, make_executor
from keel.pipelines.steps import Pipeline, StepOutput, load_pipeline
from keel.pipelines.values import OutputRef, cache_key, input_key, load_output, select


class StepFailed(KeelError):
    code = "step_failed"
    http_status = 422


@dataclass
class StepRecord:
    node: str
    step: str
    run_id: str
    status: str  # "ran", "cached", "failed", "skipped"
    cache_key: str
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str
    status: RunStatus
    steps: list[StepRecord] = field(default_factory=list)
    output_template: Any = None
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    client: Any = field(default=None, repr=False)

    @property
    def output(self) -> Any:
        """The pipeline function's return value, with step outputs loaded."""
        return self._load(self.output_template)

    def _load(self, value: Any) -> Any:
        if isinstance(value, StepOutput):
            return select(load_output(self.outputs[value.node_id], self.client.artifacts), value.index)
        if isinstance(value, (list, tuple)):
            return type(value)(self._load(v) for v in value)
        if isinstance(value, dict):
            return {k: self._load(v) for k, v in value.items()}
        return value

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.node == name:
                return record
        raise InvalidArgument.for_field("step", name, f"one of {', '.join(r.node for r in self.steps)}")

    def output_of(self, node: str) -> Any:
        return load_output(self.outputs[node], self.client.artifacts)


def _plain_params(node: Node) -> dict[str, Any]:
    """A step call's literal arguments that read well as run params."""
    try:
        bound = inspect.signature(node.step.fn).bind_partial(*node.args, **node.kwargs).arguments
    except TypeError as exc:
        raise InvalidArgument(f"step {node.id!r}: {exc}") from None
    return {k: v for k, v in bound.items() if isinstance(v, (str, int, float, bool)) and len(str(v)) < 500}


def _inputs_tag(node: Node, outputs: dict[str, OutputRef]) -> str:
    """Which upstream outputs a step read: ``{"step": "sha256 or dataset ref"}``, for lineage queries."""
    return json.dumps({d: outputs[d].sha256 or outputs[d].dataset for d in sorted(node.deps)})


def _arguments(value: Any, outputs: dict[str, OutputRef]) -> Any:
    if isinstance(value, StepOutput):
        return Upstream(outputs[value.node_id], value.index)
    if isinstance(value, list):
        return [_arguments(v, outputs) for v in value]
    if isinstance(value, tuple):
        return tuple(_arguments(v, outputs) for v in value)
    if isinstance(value, dict):
        return {k: _arguments(v, outputs) for k, v in value.items()}
    return value


def run_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    executor: Any = "inline",
    cache: bool = True,
    experiment: str | None = None,
    reuse: dict[str, OutputRef] | None = None,
    tags: dict[str, str] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    client: Any = None,
) -> PipelineResult:
    """Run ``pipeline`` with ``params`` and return a ``PipelineResult``.

    ``executor``: ``"inline"``, ``"process"`` or ``"ray"``; ``cache=False`` runs every step;
    ``reuse`` maps cache keys to outputs to take as they are (``resume``). A failed step
    (after its retries) fails the run and skips what depends on it; its traceback is a tag
    and an artifact of its step run.
    """
    from keel.tracking.fluent import get_client

    client = client or get_client()
    try:  # record the defaults too: a run says every value it ran with
        bound = inspect.signature(pipeline.fn).bind(**params)
    except TypeError as exc:
        raise InvalidArgument(f"pipeline {pipeline.name!r}: {exc}") from None
    bound.apply_defaults()
    params = dict(bound.arguments)
    dag = pipeline.build(**params)  # bad params and cycles fail here, before anything is recorded
    order = dag.order()
    keys: dict[str, str] = {}
    for node_id in order:
        node = dag.nodes[node_id]
        args = [input_key(a, keys, f"step {node_id!r} argument {i}") for i, a in enumerate(node.args)]
        kwargs = {k: input_key(v, keys, f"step {node_id!r} argument {k!r}") for k, v in node.kwargs.items()}
        keys[node_id] = cache_key(node.step.name, node.step.code_hash, args, kwargs)
    runner = make_executor(executor, client)
    run_params = {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool))}
    run_tags = {
        "keel.kind": "pipeline",
        "keel.pipeline": pipeline.ref,
        "keel.executor": runner.name,
        "keel.params": json.dumps(params, default=str)[:8000],
        **(tags or {}),
    }
    run = client.create_run(experiment or pipeline.name, f"{pipeline.name}", tags=run_tags, params=run_params)
    result = PipelineResult(pipeline.name, run.id, RunStatus.RUNNING, output_template=dag.output, client=client)
    records: dict[str, StepRecord] = {}
    try:
        _schedule(dag, order, keys, runner, client, run, cache, reuse or {}, result, records, on_step)
    except BaseException as exc:  # an executor crash or Ctrl-C, not a step failure: close what is open
        _abandon(client, run.id, result.outputs.keys(), records, exc)
        raise
    finally:
        runner.shutdown()
    failed = [r for r in records.values() if r.status == "failed"]
    result.steps = [records[n] for n in order if n in records]
    result.status = RunStatus.FAILED if failed else RunStatus.FINISHED
    client.log_metrics(run.id, {
        "steps_ran": sum(r.status == "ran" for r in result.steps),
        "steps_cached": sum(r.status == "cached" for r in result.steps),
        "steps_failed": len(failed),
    })  # fmt: skip
    if failed:
        client.set_tag(run.id, "keel.error", f"step {failed[0].node!r} failed: {failed[0].error}"[:8000])
    client.end_run(run.id, result.status)
    return result


def _schedule(
    dag: Dag,
    order: list[str],
    keys: dict[str, str],
    runner: Any,
    client: Any,
    run: Any,
    cache: bool,
    reuse: dict[str, OutputRef],
    result: PipelineResult,
    records: dict[str, StepRecord],
    on_step: Callable[[StepRecord], None] | None,
) -> None:
    pending = list(order)
    running: dict[Future[TaskResult], tuple[str, StepTask, int]] = {}
    blocked: set[str] = set()

    def finish(record: StepRecord) -> None:
        records[record.node] = record
        if on_step is not None:
            on_step(record)

    def start_ready() -> bool:
        """Start (or take from the cache) every step whose inputs are there; True if any was."""
        ready = [n for n in pending if dag.nodes[n].deps <= result.outputs.keys()]
        for node_id in ready:
            pending.remove(node_id)
            node = dag.nodes[node_id]
            key = keys[node_id]
            started = time.perf_counter()
            hit = reuse.get(key)
            source = "resumed"
            if hit is None and cache and node.step.cache:
                found = client.store.pipelines.find_step(key)
                if found is not None:
                    hit, source = OutputRef.from_dict(found.outputs["output"]), found.run_id
            if hit is not None:
                step_run = client.create_run(
                        None, node_id, parent_run_id=run.id, capture_code=False,
                        tags={"keel.kind": "step", "keel.step": node.step.name, "keel.cache_key": key,
                              "keel.cached": "true", "keel.cached_from": source},
                    )  # fmt: skip
                client.end_run(step_run.id, RunStatus.FINISHED)
                result.outputs[node_id] = hit
                finish(StepRecord(node_id, node.step.name, step_run.id, "cached", key, 0, time.perf_counter() - started))
                continue
            step_run = client.create_run(
                    None, node_id, parent_run_id=run.id, capture_code=False, params=_plain_params(node),
                    tags={"keel.kind": "step", "keel.step": node.step.name, "keel.cache_key": key, "keel.cached": "false",
                          "keel.code_hash": node.step.code_hash, "keel.inputs": _inputs_tag(node, result.outputs)},
                )  # fmt: skip
            task = StepTask(
                    node_id, node.step.name, node.step.fn, _arguments(node.args, result.outputs),
                    _arguments(node.kwargs, result.outputs), step_run.id, _store_uri(client), _artifacts_url(client),
                )  # fmt: skip
            running[runner.submit(task)] = (node_id, task, 1)
        return bool(ready)

    while pending or running:
        while start_ready():
            pass  # cached steps make their children ready at once

        if not running:
            break
        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in done:
            node_id, task, attempt = running.pop(future)
            node = dag.nodes[node_id]
            outcome = future.result()
            if outcome.logs:
                client.log_text(task.run_id, outcome.logs, f"logs/attempt-{attempt}.txt")
            if outcome.ok and outcome.output is not None:
                client.store.pipelines.save_step(keys[node_id], task.run_id, node.step.name, {"output": outcome.output.to_dict()})
                output = outcome.output
                client.set_tags(task.run_id, {"keel.attempts": attempt, "keel.output": output.sha256 or output.dataset})
                if output.kind == "pickle":  # the output is an artifact of the step's run
                    ref = ArtifactRef("output.pkl", output.sha256, output.size, "application/x-python-pickle")
                    client.store.log_artifacts(task.run_id, [ref])
                client.end_run(task.run_id, RunStatus.FINISHED)
                result.outputs[node_id] = outcome.output
                finish(StepRecord(node_id, node.step.name, task.run_id, "ran", keys[node_id], attempt, outcome.seconds))
            elif attempt <= node.step.retry:
                client.log_text(task.run_id, outcome.traceback, f"tracebacks/attempt-{attempt}.txt")
                running[runner.submit(task)] = (node_id, task, attempt + 1)
            else:
                client.log_text(task.run_id, outcome.traceback, "traceback.txt")
                client.set_tags(task.run_id, {"keel.error": outcome.error[:8000], "keel.attempts": attempt})
                client.end_run(task.run_id, RunStatus.FAILED)
                finish(
                    StepRecord(
                        node_id, node.step.name, task.run_id, "failed", keys[node_id], attempt, outcome.seconds, outcome.error
                    )
                )
                blocked |= dag.downstream(node_id)
        for node_id in [n for n in pending if n in blocked]:
            pending.remove(node_id)
            finish(StepRecord(node_id, dag.nodes[node_id].step.name, "", "skipped", keys[node_id]))


def _abandon(client: Any, run_id: str, done: Any, records: dict[str, StepRecord], exc: BaseException) -> None:
    """End the pipeline run and its unfinished step runs, so none of them stays ``running``."""
    status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
    for step_run in client.iter_runs(filter=f"parent_run_id = '{run_id}' and status = 'running'"):
        try:
            client.end_run(step_run.id, status)
        except KeelError:
            pass
    try:
        client.set_tag(run_id, "keel.error", f"{type(exc).__name__}: {exc}"[:8000])
        client.end_run(run_id, status)
    except KeelError:
        pass


def _store_uri(client: Any) -> str:
    uri = getattr(client.store, "uri", None)
    if not uri:
        raise InvalidArgument("pipelines on the process or Ray executors need a store opened from a URI")
    return str(uri)


def _artifacts_url(client: Any) -> str:
    return str(client.artifacts.url if hasattr(client.artifacts, "url") else client.settings.home / "artifacts")


def resume(
    run_id: str, *, executor: Any = None, client: Any = None, on_step: Callable[[StepRecord], None] | None = None
) -> PipelineResult:
    """Run a failed pipeline run again from where it failed: the steps that succeeded are reused as they are."""
    from keel.tracking.fluent import get_client

    client = client or get_client()
    previous = client.get_run(run_id)
    if previous.tags.get("keel.kind") != "pipeline":
        raise InvalidArgument.for_field("run", run_id, "the id of a pipeline run")
    target = load_pipeline(previous.tags["keel.pipeline"])
    reuse: dict[str, OutputRef] = {}
    for step_run in client.iter_runs(filter=f"parent_run_id = '{run_id}' and status = 'finished'"):
        key = step_run.tags.get("keel.cache_key")
        found = client.store.pipelines.find_step(key) if key else None
        if found is not None:
            reuse[key] = OutputRef.from_dict(found.outputs["output"])  # type: ignore[index]
    params = json.loads(previous.tags.get("keel.params", "{}"))
    return run_pipeline(
        target, params, executor=executor or previous.tags.get("keel.executor", "inline"),
        experiment=client.store.get_experiment(previous.experiment_id).name, reuse=reuse,
        tags={"keel.resumed_from": run_id}, on_step=on_step, client=client,
    )  # fmt: skip
