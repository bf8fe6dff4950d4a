"""Fixtures for keel.autolog's tests: every test leaves the libraries unpatched; ``logged`` reads what was logged."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

import keel
from keel.core.entities import Run


@pytest.fixture(autouse=True)
def _unpatched() -> Iterator[None]:
    yield
    keel.autolog(disable=True)


class Logged:
    """What the store (the test's own, in tmp_path) holds."""

    def runs(self) -> list[Run]:
        """Every run, oldest first, metrics flushed."""
        client = keel.get_client()
        client.flush()
        return sorted(client.search_runs(max_results=1000).runs, key=lambda r: r.start_time)

    def only_run(self) -> Run:
        found = self.runs()
        assert len(found) == 1, [r.tags for r in found]
        return found[0]

    def artifact(self, run: Run, name: str) -> bytes:
        return keel.get_client().read_artifact(run.id, name)

    def artifacts(self, run: Run) -> list[str]:
        return sorted(a.path for a in keel.get_client().list_artifacts(run.id))

    def model(self, run: Run) -> Any:
        return pickle.loads(self.artifact(run, "model.pkl"))

    def signature(self, run: Run) -> dict[str, Any]:
        return dict(json.loads(self.artifact(run, "model.signature.json")))

    def history(self, run: Run, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in keel.get_client().get_metric_history(run.id, key)]

    def inputs(self, run: Run) -> list[Any]:
        """The dataset versions linked to ``run`` as its inputs."""
        links = keel.get_client().store.datasets.versions_of_run(run.id)
        return [link.version for link in links if link.direction == "input"]


@pytest.fixture
def logged() -> Logged:
    return Logged()
