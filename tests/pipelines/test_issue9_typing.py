"""Found by typing keel.pipelines strictly (issue 9): an output indexed three levels deep pointed at nothing."""

from __future__ import annotations

from keel.pipelines.steps import StepOutput
from keel.pipelines.values import select

FLOW = """
import keel

@keel.step
def nested():
    return [{"a": {"b": 42}}]

@keel.step
def use(x):
    return x + 1

@keel.pipeline
def flow():
    return use(nested()[0]["a"]["b"])
"""


def test_an_index_of_any_depth_is_one_flat_path() -> None:
    out = StepOutput("n")
    assert out[0].index == 0 and out[0]["a"].index == (0, "a") and out[0]["a"]["b"].index == (0, "a", "b")
    assert select([{"a": {"b": 42}}], out[0]["a"]["b"].index) == 42


def test_a_pipeline_reads_an_output_three_levels_deep(make_module) -> None:  # type: ignore[no-untyped-def]
    mod = make_module("flow_issue9_typing", FLOW)
    assert mod.flow.run().output == 43
