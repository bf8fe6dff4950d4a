"""Layer 3: pipelines of steps with caching and lineage, run in process, in processes or on Ray.

>>> @keel.step
... def load(path): ...
>>> @keel.pipeline
... def train(path: str, C: float = 1.0):
...     return fit(load(path), C=C)
>>> result = train.run(path="data.csv", executor="process")      # doctest: +SKIP
"""

from keel.pipelines.dag import Dag, Node, PipelineCycle
from keel.pipelines.executors import EXECUTORS, InlineExecutor, ProcessExecutor, RayExecutor
from keel.pipelines.runner import PipelineResult, StepFailed, StepRecord, resume, run_pipeline
from keel.pipelines.steps import Pipeline, Step, StepOutput, pipeline, step

__all__ = [
    "EXECUTORS", "Dag", "InlineExecutor", "Node", "Pipeline", "PipelineCycle", "PipelineResult", "ProcessExecutor",
    "RayExecutor", "Step", "StepFailed", "StepOutput", "StepRecord", "pipeline", "resume", "run_pipeline", "step",
]  # fmt: skip
