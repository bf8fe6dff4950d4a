"""Why a run failed: its own traceback, or those of its failed steps or trials, for ``keel runs show`` and the UI.

Pipelines and studies log a failed step's or trial's traceback as the artifact ``traceback.txt`` of that child run
and the error's message as its tag ``keel.error``; a run of the user's that raised logs its own.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from keel.core.entities import Run, RunKind, RunStatus
from keel.store.artifacts.base import ArtifactStore
from keel.store.metadata.base import MetadataStore

__all__ = ["MAX_FAILURES", "TRACEBACK", "failures"]

TRACEBACK = "traceback.txt"  # what pipelines and trials log for a failed step or trial
MAX_FAILURES = 3
_PARENTS = (RunKind.PIPELINE, RunKind.STUDY, RunKind.SWEEP)


def _traceback(store: MetadataStore, artifacts: ArtifactStore, run_id: str) -> str | None:
    for ref in store.list_artifacts(run_id):
        if ref.path == TRACEBACK:
            return artifacts.get_bytes(ref.sha256).decode("utf-8", errors="replace")
    return None


def failures(store: MetadataStore, artifacts: ArtifactStore, run: Run, names: Collection[str]) -> list[dict[str, Any]]:
    """The run's own failure (when it has a ``traceback.txt`` among its artifact ``names``), else those of its first
    ``MAX_FAILURES`` failed steps or trials (a failed pipeline, study or sweep): each as ``run_id``, ``name``,
    ``error`` (the ``keel.error`` tag) and ``traceback`` (None when none was logged)."""
    if TRACEBACK in names:
        own = _traceback(store, artifacts, run.id)
        return [{"run_id": run.id, "name": run.name, "error": run.tags.get("keel.error"), "traceback": own}]
    if run.kind not in _PARENTS or run.status is not RunStatus.FAILED:
        return []
    return [
        {"run_id": child.id, "name": child.name, "error": child.tags.get("keel.error"),
         "traceback": _traceback(store, artifacts, child.id)}
        for child in store.list_child_runs(run.id, status=RunStatus.FAILED)[:MAX_FAILURES]
    ]  # fmt: skip
