"""The pipeline store interface: the step cache (cache key -> the step run that produced outputs).

Pipeline and step runs themselves are runs (parent/child) in the tracking store.

Contract (checked by ``keel.testing.dataset_contract.PipelineStoreContract`` on every backend):

- A cache entry is created only by the run that produced the output. ``save_step`` accepts
  it only when the run exists (else ``NotFound``), is a step run (``Run.kind`` step)
  that is still ``running``, its ``Run.step`` has the key as cache key and the step as
  name, and the output is that run's own: its ``keel.output`` tag is the output's sha256,
  and a pickled output is the run's ``output.pkl`` artifact (same sha256 and size).
  Anything else raises ``Conflict`` (``InvalidArgument`` for malformed input) and writes nothing.
  A cache hit runs ``pickle.loads`` on the output, so a key must never be made to point at
  bytes its step did not return.
- An entry is never replaced: saving the same entry again is a no-op, another entry for a
  stored key raises ``Conflict``. The first success of a step wins.
- ``find_step`` returns ``None`` for an unknown key; raises only ``keel.core.errors``.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import Any

from keel.core import validation as v
from keel.core.errors import InvalidArgument

OUTPUT_KINDS = ("pickle", "dataset")
_DATASET_REF = re.compile(rf"(?P<name>{v.NAME_PATTERN})@(?P<version>[1-9][0-9]{{0,17}})")


@dataclass(frozen=True, slots=True)
class CachedStep:
    cache_key: str
    run_id: str
    step: str
    outputs: dict[str, Any]
    created_at: int


@dataclass(frozen=True, slots=True)
class StepOutputRecord:
    """The one output a cache entry may hold, validated (see ``check_outputs``)."""

    kind: str
    sha256: str
    size: int
    dataset: str  # "name@version" for kind "dataset", else ""

    def dataset_ref(self) -> tuple[str, int]:
        match = _DATASET_REF.fullmatch(self.dataset)
        assert match is not None  # checked in check_outputs
        return match["name"], int(match["version"])


def check_outputs(outputs: Any) -> StepOutputRecord:
    """``outputs`` must be ``{"output": {"kind", "sha256", "size", "dataset"}}``, as the runner writes it."""
    expected = "{'output': {'kind': 'pickle' or 'dataset', 'sha256': ..., 'size': ..., 'dataset': ...}}"
    if not isinstance(outputs, dict) or set(outputs) != {"output"} or not isinstance(outputs["output"], dict):
        raise InvalidArgument.for_field("outputs", outputs, expected)
    out = outputs["output"]
    if not set(out) <= {"kind", "sha256", "size", "dataset"} or out.get("kind") not in OUTPUT_KINDS:
        raise InvalidArgument.for_field("outputs", outputs, expected)
    sha256 = v.check_sha256(out.get("sha256"))
    size = v.check_count(out.get("size", 0), "output size")
    dataset = out.get("dataset", "")
    if out["kind"] == "dataset":
        if not isinstance(dataset, str) or not _DATASET_REF.fullmatch(dataset):
            raise InvalidArgument.for_field("output dataset", dataset, "a dataset version reference 'name@version'")
    elif dataset != "":
        raise InvalidArgument.for_field("output dataset", dataset, "empty for a pickled output")
    return StepOutputRecord(out["kind"], sha256, size, dataset)


class PipelineStore(abc.ABC):
    @abc.abstractmethod
    def save_step(self, cache_key: str, run_id: str, step: str, outputs: dict[str, Any]) -> None:
        """Create the cache entry of ``cache_key`` for the step run ``run_id`` (see the module contract)."""

    @abc.abstractmethod
    def find_step(self, cache_key: str) -> CachedStep | None: ...
