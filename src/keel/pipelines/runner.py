"""Running a pipeline: record it, reuse cached steps, schedule the rest on an executor.

The pipeline run is a tracking run (experiment = the pipeline's name) and every step run
is its child, so lineage from raw data to a model is a query over runs. A step is skipped
when an earlier successful run has the same cache key: the step's code hash, its literal
inputs and the cache keys of the steps it reads from. So a change to a step's code
invalidates that step and everything downstream of it, and nothing else.

A cache entry is written once, by the step run that produced it, and never replaced
(``PipelineStore`` enforces it); a cached step run copies that run's params, metrics and
artifacts (``keel.pipelines.records``). That producer check keeps the cache consistent; it
does not authenticate anyone: any client that can write to a keel server can create a step
run with the right tags and its own pickle. So a cached pickle from a server is unpickled only
with ``trust_pickle`` (or ``KEEL_TRUST_PICKLE=1``), unless this process stored it itself
(``keel.pipelines.values.check_output_trust``).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.core.entities import ArtifactRef, Run, RunKind, RunStatus, StepInfo
from keel.core.errors import Conflict, InvalidArgument, KeelError
from keel.core.errors import StepFailed as StepFailed  # defined in the one error tree
from keel.pipelines.dag import Dag, Node
from keel.pipelines.executors import Executor, StepTask, TaskResult, Upstream, make_executor
from keel.pipelines.hints import check_arguments, restore_paths
from keel.pipelines.records import PARAMS_ARTIFACT, copy_source_run, params_document, read_params, step_metrics
from keel.pipelines.records import run_params as pipeline_run_params
from keel.pipelines.steps import Pipeline, StepOutput, load_pipeline, walk
from keel.pipelines.values import OutputRef, cache_key, check_output_trust, input_key, load_output, remember_output, select
from keel.store.metadata.pipelines import CachedStep
from keel.tracking.client import Client


@dataclass
class StepRecord:
    """What became of one step call in a pipeline run: its run, status (``ran``, ``cached``, ``failed`` or
    ``skipped``), cache key, attempts, seconds, and the error when it failed."""

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
    """A pipeline run: its run id and status, a ``StepRecord`` per step, and the outputs (``output`` loads the
    pipeline function's return value; ``output_of("train")`` one step's)."""

    pipeline: str
    run_id: str
    status: RunStatus
    steps: list[StepRecord] = field(default_factory=list)
    output_template: Any = None
    outputs: dict[str, OutputRef] = field(default_factory=dict)
    client: Client | None = field(default=None, repr=False)

    @property
    def output(self) -> Any:
        """The pipeline function's return value, with step outputs loaded."""
        return walk(self.output_template, self._load)

    def _load(self, value: Any) -> Any:
        if isinstance(value, StepOutput):
            return select(self.output_of(value.node_id), value.index)
        return value

    def step(self, name: str) -> StepRecord:
        """The record of the step call ``name`` (``InvalidArgument`` naming the steps if there is none)."""
        for record in self.steps:
            if record.node == name:
                return record
        raise InvalidArgument.for_field("step", name, f"one of {', '.join(r.node for r in self.steps)}")

    def output_of(self, node: str) -> Any:
        """The output of the step call ``node``, loaded from the artifact store (a step that ran or was cached)."""
        if self.client is None:
            raise InvalidArgument(f"pipeline result {self.run_id} has no client to load outputs with")
        return load_output(self.outputs[node], self.client.artifacts, self.client.context)


def _bound(node: Node) -> dict[str, Any]:
    try:
        return dict(inspect.signature(node.step.fn).bind_partial(*node.args, **node.kwargs).arguments)
    except TypeError as exc:
        raise InvalidArgument(f"step {node.id!r}: {exc}") from None


def _plain_params(node: Node) -> dict[str, Any]:
    """A step call's literal arguments that read well as run params."""
    return {k: v for k, v in _bound(node).items() if isinstance(v, (str, int, float, bool)) and len(str(v)) < 500}


def _inputs_tag(node: Node, outputs: dict[str, OutputRef]) -> str:
    """Which upstream outputs a step read: ``{"step": "sha256 or dataset ref"}``, for lineage queries."""
    return json.dumps({d: outputs[d].sha256 or outputs[d].dataset for d in sorted(node.deps)})


def _step_tags(node: Node, outputs: dict[str, OutputRef], cached_from: str | None) -> dict[str, str]:
    """Tags of a step run for reading and filtering (``keel pipeline show``, ``keel runs list -f``); what keel
    itself reads (kind, step name, cache key, the run reused) is in the run's columns (``Run.kind``, ``Run.step``)."""
    tags = {"keel.kind": "step", "keel.step": node.step.name, "keel.inputs": _inputs_tag(node, outputs)}
    if cached_from is None:
        return {**tags, "keel.cached": "false", "keel.code_hash": node.step.code_hash}
    return {**tags, "keel.cached": "true", "keel.cached_from": cached_from}


def _arguments(value: Any, outputs: dict[str, OutputRef]) -> Any:
    """Step arguments for a task: placeholders become references to the upstream outputs."""
    return walk(value, lambda v: Upstream(outputs[v.node_id], v.index) if isinstance(v, StepOutput) else v)


def run_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    executor: str | Executor = "inline",
    cache: bool = True,
    experiment: str | None = None,
    reuse: Mapping[str, CachedStep] | None = None,
    tags: dict[str, str] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    client: Client | None = None,
    raise_on_failure: bool = False,
    trust_pickle: bool | None = None,
) -> PipelineResult:
    """Run ``pipeline`` with ``params`` and return a ``PipelineResult``.

    ``executor``: ``"inline"``, ``"process"`` or ``"ray"``; ``cache=False`` runs every step;
    ``reuse`` maps cache keys to cache entries to take as they are (``resume``). A failed step
    (after its retries) fails the run and skips what depends on it; its traceback is a tag
    and an artifact of its step run. With ``raise_on_failure`` (``Pipeline.run``, ``resume``)
    a failed run raises ``StepFailed``; without it (``keel pipeline run``) the result says so.
    Params and step arguments are checked against their type hints before anything is recorded.
    A cached output that is a pickle served by a keel server is unpickled only with ``trust_pickle=True``
    (default: the ``trust_pickle`` setting, ``KEEL_TRUST_PICKLE``) unless this process stored it.
    """
    from keel.tracking.fluent import get_client

    client = client or get_client()
    try:  # record the defaults too: a run says every value it ran with
        bound = inspect.signature(pipeline.fn).bind(**params)
    except TypeError as exc:
        raise InvalidArgument(f"pipeline {pipeline.name!r}: {exc}") from None
    check_arguments(pipeline.fn, dict(bound.arguments), f"pipeline {pipeline.name!r}")  # what the caller passed
    bound.apply_defaults()
    params = dict(bound.arguments)
    dag = pipeline.build(**params)  # bad params and cycles fail here, before anything is recorded
    order = dag.order()
    for node_id in order:
        check_arguments(dag.nodes[node_id].step.fn, _bound(dag.nodes[node_id]), f"step {node_id!r}")
    keys: dict[str, str] = {}
    for node_id in order:
        node = dag.nodes[node_id]
        args = [input_key(a, keys, f"step {node_id!r} argument {i}") for i, a in enumerate(node.args)]
        kwargs = {k: input_key(v, keys, f"step {node_id!r} argument {k!r}") for k, v in node.kwargs.items()}
        keys[node_id] = cache_key(node.step.name, node.step.code_hash, args, kwargs)
    runner = make_executor(executor, client)
    # keel.kind stays a tag too, for filters such as tags.`keel.kind` = 'pipeline'; the params are run params
    # and the params.json artifact (resume reads it), no longer a keel.params tag
    run_tags = {"keel.kind": "pipeline", "keel.pipeline": pipeline.ref, "keel.executor": runner.name, **(tags or {})}
    run = client.create_run(
        experiment or pipeline.name, f"{pipeline.name}", tags=run_tags, params=pipeline_run_params(params), kind=RunKind.PIPELINE
    )
    result = PipelineResult(pipeline.name, run.id, RunStatus.RUNNING, output_template=dag.output, client=client)
    records: dict[str, StepRecord] = {}
    try:
        client.log_text(run.id, params_document(params), PARAMS_ARTIFACT)
        _schedule(dag, order, keys, runner, client, run, cache, reuse or {}, result, records, on_step, trust_pickle)
    except BaseException as exc:  # an executor crash or Ctrl-C, not a step failure: close what is open
        _abandon(client, run.id, result.outputs.keys(), records, exc)
        raise
    finally:
        runner.shutdown()
    failed = [r for r in records.values() if r.status == "failed"]
    result.steps = [records[n] for n in order if n in records]
    result.status = RunStatus.FAILED if failed else RunStatus.FINISHED
    client.log_metrics(run.id, {
        **step_metrics((r.node, client.get_run(r.run_id)) for r in result.steps if r.status in ("ran", "cached")),
        "steps_ran": sum(r.status == "ran" for r in result.steps),
        "steps_cached": sum(r.status == "cached" for r in result.steps),
        "steps_failed": len(failed),
    })  # fmt: skip
    if failed:
        client.set_tag(run.id, "keel.error", f"step {failed[0].node!r} failed: {failed[0].error}"[:8000])
    client.end_run(run.id, result.status)
    if failed and raise_on_failure:
        raise StepFailed(result, failed[0])
    return result


def _schedule(
    dag: Dag,
    order: list[str],
    keys: dict[str, str],
    runner: Executor,
    client: Client,
    run: Run,
    cache: bool,
    reuse: Mapping[str, CachedStep],
    result: PipelineResult,
    records: dict[str, StepRecord],
    on_step: Callable[[StepRecord], None] | None,
    trust_pickle: bool | None,
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
            found = reuse.get(key)
            if found is None and cache and node.step.cache:
                found = client.store.pipelines.find_step(key)
            if found is not None:
                hit = OutputRef.from_dict(found.outputs["output"])
                check_output_trust(hit, client.context, node_id, found.run_id, trust_pickle)  # before it is used or recorded
                step_run = client.create_run(
                        None, node_id, parent_run_id=run.id, inherit_from=run, kind=RunKind.STEP,
                        step=StepInfo(node.step.name, key, found.run_id), tags=_step_tags(node, result.outputs, found.run_id),
                    )  # fmt: skip
                copy_source_run(client, step_run.id, client.get_run(found.run_id))
                client.end_run(step_run.id, RunStatus.FINISHED)
                result.outputs[node_id] = hit
                finish(StepRecord(node_id, node.step.name, step_run.id, "cached", key, 0, time.perf_counter() - started))
                continue
            step_run = client.create_run(
                    None, node_id, parent_run_id=run.id, inherit_from=run, params=_plain_params(node), kind=RunKind.STEP,
                    step=StepInfo(node.step.name, key), tags=_step_tags(node, result.outputs, None),
                )  # fmt: skip
            task = StepTask(
                    node_id, node.step.name, node.step.fn, _arguments(node.args, result.outputs),
                    _arguments(node.kwargs, result.outputs), step_run.id, client.context.store_uri, client.context.artifacts_url,
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
                output = outcome.output
                remember_output(output)  # stored by a step this process ran: its own, whichever executor ran it
                client.set_tags(task.run_id, {"keel.attempts": attempt, "keel.output": output.sha256 or output.dataset})
                if output.kind == "pickle":  # the output is an artifact of the step's run
                    ref = ArtifactRef("output.pkl", output.sha256, output.size, "application/x-python-pickle")
                    client.store.log_artifacts(task.run_id, [ref])
                _save_in_cache(client, keys[node_id], task.run_id, node.step.name, output)
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


def _save_in_cache(client: Client, key: str, run_id: str, step: str, output: OutputRef) -> None:
    """Record the step run's output under its cache key, unless another run did first (a concurrent run of
    the same step, or a step that does not read the cache): entries are never replaced."""
    try:
        client.store.pipelines.save_step(key, run_id, step, {"output": output.to_dict()})
    except Conflict:
        pass


def _abandon(client: Client, run_id: str, done: Any, records: dict[str, StepRecord], exc: BaseException) -> None:
    """End the pipeline run and its unfinished step runs, so none of them stays ``running``."""
    status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
    for step_run in client.store.list_child_runs(run_id, status=RunStatus.RUNNING):
        try:
            client.end_run(step_run.id, status)
        except KeelError:
            pass
    try:
        client.set_tag(run_id, "keel.error", f"{type(exc).__name__}: {exc}"[:8000])
        client.end_run(run_id, status)
    except KeelError:
        pass


def pipeline_of(run: Run) -> str:
    """The ``module:function`` a pipeline run names (its ``keel.pipeline`` tag)."""
    if run.kind is not RunKind.PIPELINE or not run.tags.get("keel.pipeline"):
        raise InvalidArgument.for_field("run", run.id, "the id of a pipeline run")
    return run.tags["keel.pipeline"]


def resume(
    run_id: str, *, executor: str | Executor | None = None, client: Client | None = None,
    on_step: Callable[[StepRecord], None] | None = None, project: str | Path | None = None,
    raise_on_failure: bool = True, trust_pickle: bool | None = None, pipeline: Pipeline | None = None,
) -> PipelineResult:  # fmt: skip
    """Run a failed pipeline run again from where it failed: the steps that succeeded are reused as they are.

    The pipeline is imported from the module the run names, and only if that module is the code of
    ``project`` (default: the current folder; see ``keel.pipelines.imports`` for the rule), since
    anyone who can write runs can write that name. ``pipeline``: that pipeline, already loaded with
    ``load_pipeline(ref, project)`` (``keel pipeline resume`` does, to say where it comes from); it must be
    the one the run names. Params come from the run's ``params.json`` artifact. ``trust_pickle`` as for
    ``run_pipeline``: the outputs of the steps reused are pickles from the store. Raises ``StepFailed``
    when a step fails again (``raise_on_failure=False`` returns the result).
    """
    from keel.tracking.fluent import get_client

    client = client or get_client()
    previous = client.get_run(run_id)
    ref = pipeline_of(previous)
    if pipeline is None:
        pipeline = load_pipeline(ref, project=Path(project) if project is not None else Path.cwd())
    elif pipeline.ref != ref:
        raise InvalidArgument.for_field("pipeline", pipeline.ref, f"the pipeline run {run_id} names ({ref})")
    params = restore_paths(pipeline.fn, read_params(client, previous))
    reuse: dict[str, CachedStep] = {}
    for step_run in client.store.list_child_runs(run_id, status=RunStatus.FINISHED, kind=RunKind.STEP):
        key = step_run.step.cache_key if step_run.step is not None else None
        found = client.store.pipelines.find_step(key) if key else None
        if key and found is not None:
            reuse[key] = found
    return run_pipeline(
        pipeline, params, executor=executor or previous.tags.get("keel.executor", "inline"),
        experiment=client.store.get_experiment(previous.experiment_id).name, reuse=reuse,
        tags={"keel.resumed_from": run_id}, on_step=on_step, client=client, raise_on_failure=raise_on_failure,
        trust_pickle=trust_pickle,
    )  # fmt: skip
