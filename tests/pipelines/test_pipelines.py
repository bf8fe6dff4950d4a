"""Pipelines: DAGs from data dependencies, recorded runs, caching, failures, retries, resume, executors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import keel
from keel.core.entities import RunStatus
from keel.core.errors import InvalidArgument
from keel.pipelines import Dag, PipelineCycle, StepFailed, resume

FLOW = """
import time
import keel

@keel.step
def load(n: int):
    print("loading", n)
    return list(range(n))

@keel.step(outputs=2)
def split(xs):
    return xs[::2], xs[1::2]

@keel.step
def total(xs, scale: float = 1.0):
    keel.log_metric("count", len(xs))
    return sum(xs) * scale

@keel.step
def report(a, b):
    return {"even": a, "odd": b}

@keel.pipeline
def flow(n: int = 10, scale: float = 2.0):
    evens, odds = split(load(n))
    return report(total(evens, scale=scale), total(odds))
"""


def test_dag_comes_from_data_dependencies(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("flow_a", FLOW)
    dag = mod.flow.build(n=4)
    assert dag.order() == ["load", "split", "total", "total_2", "report"]
    assert dag.nodes["total"].deps == {"split"} and dag.nodes["report"].deps == {"total", "total_2"}
    assert dag.downstream("split") == {"total", "total_2", "report"}
    assert mod.split([1, 2, 3]) == ([1, 3], [2])  # outside a pipeline a step is the plain function


def test_run_records_pipeline_and_step_runs(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("flow_b", FLOW)
    result = mod.flow.run(n=10)
    assert result.status is RunStatus.FINISHED and result.output == {"even": 40.0, "odd": 25}
    client = keel.get_client()
    run = client.get_run(result.run_id)
    assert run.tags["keel.kind"] == "pipeline" and run.params == {"n": "10", "scale": "2.0"}
    assert run.metrics["steps_ran"].value == 5
    steps = {s.name: s for s in client.iter_runs(filter=f"parent_run_id = '{run.id}'")}
    assert set(steps) == {"load", "split", "total", "total_2", "report"}
    total = steps["total"]
    assert total.params == {"scale": "2.0"} and total.metrics["count"].value == 5  # logged inside the step
    assert client.read_artifact(steps["load"].id, "logs/attempt-1.txt") == b"loading 10\n"
    assert total.tags["keel.cached"] == "false"
    split_output = steps["split"].tags["keel.output"]
    assert json.loads(total.tags["keel.inputs"]) == {"split": split_output}  # lineage: which output it read
    assert [a.path for a in client.list_artifacts(steps["split"].id)] == ["output.pkl"]  # it printed nothing


def test_second_run_is_cached_and_params_invalidate_only_what_they_reach(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("flow_c", FLOW)
    mod.flow.run(n=10)
    again = mod.flow.run(n=10)
    assert [s.status for s in again.steps] == ["cached"] * 5 and again.output == {"even": 40.0, "odd": 25}
    rescaled = mod.flow.run(n=10, scale=3.0)
    assert {s.node: s.status for s in rescaled.steps} == {
        "load": "cached", "split": "cached", "total": "ran", "total_2": "cached", "report": "ran",
    }  # fmt: skip
    assert [s.status for s in mod.flow.run(n=10, cache=False).steps] == ["ran"] * 5


def test_changing_a_steps_code_invalidates_it_and_everything_downstream(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("flow_d", FLOW)
    mod.flow.run(n=10)
    mod = make_module("flow_d", FLOW.replace("return xs[::2], xs[1::2]", "return list(xs[::2]), list(xs[1::2])"))
    result = mod.flow.run(n=10)
    assert {s.node: s.status for s in result.steps} == {
        "load": "cached", "split": "ran", "total": "ran", "total_2": "ran", "report": "ran",
    }  # fmt: skip


def test_per_step_cache_switch(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("flow_e", FLOW.replace("@keel.step\ndef load", "@keel.step(cache=False)\ndef load"))
    mod.flow.run(n=6)
    statuses = {s.node: s.status for s in mod.flow.run(n=6).steps}
    assert statuses["load"] == "ran" and statuses["split"] == "cached"


FAILING = """
import keel
from pathlib import Path

FLAG = Path(__file__).with_name("fail.flag")
COUNTER = Path(__file__).with_name("attempts.txt")

@keel.step
def first():
    return 21

@keel.step(retry=2)
def flaky(x):
    n = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(n + 1))
    if n < 2:
        raise ConnectionError(f"transient failure {n + 1}")
    return x * 2

@keel.step
def fragile(x):
    if FLAG.exists():
        raise ValueError("bad input batch")
    return x + 1

@keel.step
def last(x):
    return x * 10

@keel.pipeline
def failing():
    return last(fragile(flaky(first())))
"""


def test_failure_retry_traceback_and_resume(make_module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("failing_a", FAILING)
    (tmp_path / "fail.flag").write_text("x")
    with pytest.raises(StepFailed, match=r"step 'fragile'.*ValueError: bad input batch") as failure:
        mod.failing.run()
    result = failure.value.result
    client = keel.get_client()
    assert result.status is RunStatus.FAILED
    assert {s.node: s.status for s in result.steps} == {"first": "ran", "flaky": "ran", "fragile": "failed", "last": "skipped"}
    assert result.step("flaky").attempts == 3  # two transient failures, retried
    failed = client.get_run(result.step("fragile").run_id)
    assert failed.status is RunStatus.FAILED and failed.tags["keel.error"] == "ValueError: bad input batch"
    assert b"Traceback" in client.read_artifact(failed.id, "traceback.txt")
    assert "fragile" in client.get_run(result.run_id).tags["keel.error"]

    (tmp_path / "fail.flag").unlink()
    resumed = resume(result.run_id)
    assert resumed.status is RunStatus.FINISHED and resumed.output == 430
    assert {s.node: s.status for s in resumed.steps} == {"first": "cached", "flaky": "cached", "fragile": "ran", "last": "ran"}
    assert (tmp_path / "attempts.txt").read_text() == "3"  # the flaky step did not run again
    assert client.get_run(resumed.run_id).tags["keel.resumed_from"] == result.run_id


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_every_executor_gives_the_same_results(make_module, executor: str, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    if executor == "ray":
        request.getfixturevalue("ray_local")
    mod = make_module(f"flow_{executor}", FLOW)
    inline = mod.flow.run(n=12, cache=False)
    other = mod.flow.run(n=12, cache=False, executor=executor)
    assert other.status is RunStatus.FINISHED and other.output == inline.output == {"even": 60.0, "odd": 36}
    client = keel.get_client()
    total = client.get_run(other.step("total").run_id)
    assert total.metrics["count"].value == 6  # metrics logged in the worker reach the step's run
    assert client.get_run(other.run_id).tags["keel.executor"] == executor


PARALLEL = """
import time
import keel

@keel.step
def slow(i: int):
    start = time.time()
    time.sleep(1.0)
    return (start, time.time())

@keel.pipeline
def fan(n: int = 2):
    return [slow(i) for i in range(n)]
"""


def test_independent_steps_run_at_the_same_time_on_processes(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("fan_a", PARALLEL)
    (a_start, a_end), (b_start, b_end) = mod.fan.run(executor="process", cache=False).output
    assert a_start < b_end and b_start < a_end  # the two intervals overlap


def test_bad_pipelines_are_refused_before_anything_is_recorded(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module(
        "bad_a",
        FLOW
        + """
@keel.step
def gen(n):
    return (i for i in range(n))

@keel.pipeline
def unstorable():
    return gen(3)

@keel.pipeline
def unhashable():
    return total(__import__("threading").Lock())

@keel.pipeline
def empty():
    return 1
""",
    )
    client = keel.get_client()
    with pytest.raises(InvalidArgument, match="executor must be one of inline, process, ray"):
        mod.flow.run(executor="gpu-farm")
    with pytest.raises(InvalidArgument, match=r"pipeline 'flow': .*unexpected keyword argument 'colour'"):
        mod.flow.run(colour="red")
    with pytest.raises(InvalidArgument, match=r"step 'total' argument 0 \(lock\) cannot be hashed"):
        mod.unhashable.run()
    with pytest.raises(InvalidArgument, match="calls no step"):
        mod.empty.run()
    assert list(client.iter_runs()) == []  # nothing half-recorded
    with pytest.raises(StepFailed) as failure:
        mod.unstorable.run()
    result = failure.value.result
    assert result.status is RunStatus.FAILED
    assert "returned a generator that cannot be stored" in result.step("gen").error


def test_a_cycle_is_named() -> None:
    step = keel.step(lambda x: x, name="s")
    dag = Dag()
    from keel.pipelines.dag import Node

    for name in ("a", "b", "c"):
        dag.add(Node(name, step))
    dag.add_edge("a", "b")
    dag.add_edge("b", "c")
    dag.add_edge("c", "a")
    with pytest.raises(PipelineCycle, match="the pipeline has a cycle: a -> b -> c -> a"):
        dag.order()


def test_steps_can_read_and_write_dataset_versions(make_module) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from keel import data

    data.log(pd.DataFrame({"x": [1, 2, 3]}), "raw", run=False)
    mod = make_module(
        "data_flow",
        """
import keel, keel.data

@keel.step
def clean(name: str):
    df = keel.data.get(name)
    return keel.data.log(df * 2, "clean", parents=[name])

@keel.pipeline
def prep(name: str = "raw"):
    return clean(name)
""",
    )
    result = mod.prep.run()
    version = result.output
    assert version.ref == "clean@1" and version.parents == ("raw@1",)
    runs = keel.get_client().store.datasets.runs_of_version(version.id)
    assert runs == [(result.step("clean").run_id, "output")]  # lineage: the step run wrote it


def test_threads_do_not_leak_a_trace() -> None:
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(keel.step(lambda: 5, name="t")()))
    thread.start()
    thread.join()
    assert seen == [5]


def test_cache_keys_tell_apart_what_json_would_blur() -> None:
    import pandas as pd

    from keel.pipelines.values import value_hash

    def h(v: object) -> str:
        return value_hash(v, "x")

    assert h([1, 2]) != h((1, 2)) and h({1: "a"}) != h({"1": "a"}) and h(1) != h(1.0) and h(True) != h(1)
    assert h({"b": 1, "a": 2}) == h({"a": 2, "b": 1})  # key order does not matter
    assert h({3, 1, 2}) == h({1, 2, 3})  # sets are stable across processes (no pickled hash order)
    frame = pd.DataFrame({"x": [1, 2]})
    assert h(frame) != h(frame.set_index(pd.Index([10, 20])))  # the index is part of the data


def test_a_crashed_executor_leaves_nothing_running(make_module) -> None:  # type: ignore[no-untyped-def]
    from keel.pipelines.executors import InlineExecutor

    class Crashing(InlineExecutor):
        def submit(self, task):  # type: ignore[no-untyped-def]
            if task.node_id == "split":
                raise RuntimeError("worker pool died")
            return super().submit(task)

    mod = make_module("flow_crash", FLOW)
    with pytest.raises(RuntimeError, match="worker pool died"):
        mod.flow.run(n=6, executor=Crashing(keel.get_client()))
    runs = list(keel.get_client().iter_runs())
    assert runs and all(r.status is not RunStatus.RUNNING for r in runs)
    pipeline_run = next(r for r in runs if r.tags.get("keel.kind") == "pipeline")
    assert pipeline_run.status is RunStatus.FAILED and "worker pool died" in pipeline_run.tags["keel.error"]
