"""The pipeline store interface: the step cache (cache key -> the step run that produced outputs).

Pipeline and step runs themselves are runs (parent/child) in the tracking store.
Contract: ``save_step`` overwrites the entry of a key (the newest success wins);
``find_step`` returns ``None`` for an unknown key; raises only ``keel.core.errors``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CachedStep:
    cache_key: str
    run_id: str
    step: str
    outputs: dict[str, Any]
    created_at: int


class PipelineStore(abc.ABC):
    @abc.abstractmethod
    def save_step(self, cache_key: str, run_id: str, step: str, outputs: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def find_step(self, cache_key: str) -> CachedStep | None: ...
