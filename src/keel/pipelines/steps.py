"""``@keel.step`` and ``@keel.pipeline``: plain functions become steps; a pipeline wires them.

Inside a pipeline function, calling a step does not run it: it records a node and
returns a ``StepOutput`` placeholder. Passing placeholders to other steps creates the
edges. Outside a pipeline, a step is the plain function.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from keel.core.errors import InvalidArgument
from keel.pipelines.dag import Dag, Node

if TYPE_CHECKING:
    from keel.pipelines.runner import PipelineResult

_trace = threading.local()

# Where a StepOutput points inside its step's value: ``out[0]`` is 0, ``out[0]["a"]`` is (0, "a"), flat.
OutputIndex = int | str | tuple[int | str, ...]


def code_hash(fn: Callable[..., Any]) -> str:
    """sha256 of a function's source (its code version); bytecode when the source is not available."""
    target = inspect.unwrap(fn)
    try:
        source = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        source = code.co_code + repr(code.co_consts).encode() if code else repr(target).encode()
    return hashlib.sha256(source).hexdigest()


class StepOutput:
    """A step's future output, inside a pipeline definition. Index it (``out[0]``) for tuple outputs."""

    def __init__(self, node_id: str, index: OutputIndex | None = None, n_outputs: int | None = None) -> None:
        self.node_id = node_id
        self.index = index
        self.n_outputs = n_outputs

    def __getitem__(self, index: int | str) -> StepOutput:
        if self.index is None:
            return StepOutput(self.node_id, index)
        # flat, as ``values.select`` applies one part per level: ((0, "a"), "b") would index with a tuple
        parent = self.index if isinstance(self.index, tuple) else (self.index,)
        return StepOutput(self.node_id, (*parent, index))

    def __iter__(self) -> Any:
        if self.n_outputs is None:
            raise InvalidArgument(
                f"cannot unpack the output of step {self.node_id!r}: declare @keel.step(outputs=N) or index it (out[0])"
            )
        return iter(self[i] for i in range(self.n_outputs))

    def __bool__(self) -> bool:
        raise InvalidArgument(
            f"the output of step {self.node_id!r} is not known while the pipeline is defined; "
            "branch inside a step instead of on its output"
        )

    def __repr__(self) -> str:
        return f"StepOutput({self.node_id!r}{'' if self.index is None else f', {self.index!r}'})"


def walk(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` rebuilt through lists, tuples and dict values (keys kept), with ``leaf`` applied to everything
    else: the one walker over step arguments and output templates (placeholders -> upstream references ->
    loaded values). Cache keys have their own walk (``keel.pipelines.values.input_key``): it records the
    container types and dict keys in the key, which a rebuild need not."""
    if isinstance(value, list):
        return [walk(v, leaf) for v in value]
    if isinstance(value, tuple):
        return tuple(walk(v, leaf) for v in value)
    if isinstance(value, dict):
        return {k: walk(v, leaf) for k, v in value.items()}
    return leaf(value)


def find_outputs(value: Any) -> list[StepOutput]:
    """StepOutputs in an argument: top level, or inside lists, tuples and dict values."""
    found: list[StepOutput] = []
    walk(value, lambda v: found.append(v) if isinstance(v, StepOutput) else None)
    return found


class Step:
    """A pipeline step. ``retry``: extra attempts after a failure; ``cache``: reuse earlier results."""

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, retry: int = 0, cache: bool = True, outputs: int | None = None
    ) -> None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise InvalidArgument.for_field("retry", retry, "a non-negative integer")
        if outputs is not None and (not isinstance(outputs, int) or outputs < 1):
            raise InvalidArgument.for_field("outputs", outputs, "a positive integer")
        self.fn = fn
        self.name = name or fn.__name__
        self.retry = retry
        self.cache = cache
        self.outputs = outputs
        self.code_hash = code_hash(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dag: Dag | None = getattr(_trace, "dag", None)
        if dag is None:
            return self.fn(*args, **kwargs)
        n = sum(1 for node in dag.nodes.values() if node.step.name == self.name)
        node_id = self.name if n == 0 else f"{self.name}_{n + 1}"
        deps = {o.node_id for a in (*args, *kwargs.values()) for o in find_outputs(a)}
        dag.add(Node(node_id, self, args, kwargs, deps))
        return StepOutput(node_id, None, self.outputs)

    def __repr__(self) -> str:
        return f"Step({self.name!r})"


@overload
def step(
    fn: Callable[..., Any], *, name: str | None = ..., retry: int = ..., cache: bool = ..., outputs: int | None = ...
) -> Step: ...
@overload
def step(
    fn: None = None, *, name: str | None = ..., retry: int = ..., cache: bool = ..., outputs: int | None = ...
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry: int = 0,
    cache: bool = True,
    outputs: int | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@keel.step`` or ``@keel.step(retry=2, cache=False, outputs=2)``."""
    if fn is not None:
        return Step(fn, name, retry, cache, outputs)
    return lambda f: Step(f, name, retry, cache, outputs)


class Pipeline:
    """A function that wires steps. ``run(...)`` executes it; ``build(...)`` only returns the DAG."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.ref = f"{fn.__module__}:{fn.__qualname__}"
        functools.update_wrapper(self, fn)

    def build(self, **params: Any) -> Dag:
        """Trace the pipeline function with ``params`` into a ``Dag`` (no step runs); ``InvalidArgument`` when it
        calls no step or takes other params, ``PipelineCycle`` when steps depend on each other in a cycle."""
        if getattr(_trace, "dag", None) is not None:
            raise InvalidArgument(f"pipeline {self.name!r} cannot be built inside another pipeline definition")
        dag = Dag()
        _trace.dag = dag
        try:
            dag.output = self.fn(**params)
        except TypeError as exc:
            raise InvalidArgument(f"pipeline {self.name!r}: {exc}") from None
        finally:
            _trace.dag = None
        if not dag.nodes:
            raise InvalidArgument(f"pipeline {self.name!r} calls no step; decorate its functions with @keel.step")
        dag.order()
        return dag

    def run(
        self, *, executor: str = "inline", cache: bool = True, experiment: str | None = None,
        trust_pickle: bool | None = None, **params: Any,
    ) -> PipelineResult:  # fmt: skip
        """Run the pipeline; returns a ``PipelineResult`` (see ``keel.pipelines.runner.run_pipeline``).

        Raises ``StepFailed`` when a step fails (after its retries): it names the step, its error and
        the pipeline run, and keeps the result as ``exc.result`` (what ran, what was skipped).
        ``trust_pickle``: unpickle cached outputs served by a keel server (see ``run_pipeline``).
        """
        from keel.pipelines.runner import run_pipeline

        return run_pipeline(
            self, params, executor=executor, cache=cache, experiment=experiment, raise_on_failure=True,
            trust_pickle=trust_pickle,
        )  # fmt: skip

    @property
    def source(self) -> str:
        """The file the pipeline's function was imported from (or its module's name when it has no file)."""
        import sys

        module = sys.modules.get(self.fn.__module__)
        path = getattr(module, "__file__", None)
        return str(Path(path).resolve()) if path else self.fn.__module__

    def __call__(self, **params: Any) -> PipelineResult:
        return self.run(**params)


def load_pipeline(ref: str, project: Path | None = None) -> Pipeline:
    """The ``@keel.pipeline`` at ``module:function`` (how runs record it, and how the CLI names it).

    With ``project``, only a module of that folder is imported (``keel.pipelines.imports`` says the
    rule): a reference read from a store must not make this process run code from elsewhere.
    """
    import importlib

    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise InvalidArgument.for_field("pipeline", ref, "'module:function', e.g. 'flows.train:train'")
    if project is not None:
        from keel.pipelines.imports import check_project_module

        check_project_module(module_name, project)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgument(f"cannot import pipeline {ref!r}: {exc}") from None
    if not isinstance(target, Pipeline):
        raise InvalidArgument.for_field("pipeline", ref, "a function decorated with @keel.pipeline")
    return target


@overload
def pipeline(fn: Callable[..., Any], *, name: str | None = ...) -> Pipeline: ...
@overload
def pipeline(fn: None = None, *, name: str | None = ...) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    fn: Callable[..., Any] | None = None, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function a pipeline: ``@keel.pipeline`` or ``@keel.pipeline(name="train")``."""
    if fn is not None:
        return Pipeline(fn, name)
    return lambda f: Pipeline(f, name)
