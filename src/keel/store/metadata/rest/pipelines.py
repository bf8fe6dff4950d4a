"""``RestPipelineStore``: the step cache over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.store.metadata.pipelines import CachedStep, PipelineStore
from keel.store.metadata.rest import wire

if TYPE_CHECKING:
    from keel.store.metadata.rest.client import RestStore


class RestPipelineStore(PipelineStore):
    def __init__(self, store: RestStore) -> None:
        self._call = store._call

    def save_step(self, cache_key: str, run_id: str, step: str, outputs: dict[str, Any]) -> None:
        self._call("PUT", f"/step-cache/{cache_key}", {"run_id": run_id, "step": step, "outputs": outputs})

    def find_step(self, cache_key: str) -> CachedStep | None:
        data = self._call("GET", f"/step-cache/{cache_key}")
        return None if data is None or data.get("entry") is None else wire.cached_step_from_json(data["entry"])
