"""The prediction-store contract (the prediction log's index of files and the labels), as tests every backend must pass."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from keel.core.errors import InvalidArgument, NotFound
from keel.core.predictions import MAX_LABELS_PER_CALL, PredictionLogFile
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique


def _deployment(store: MetadataStore) -> str:
    name = unique("deploy")
    store.deployments.create(name, "models:/churn/1")
    return name


def _file(deployment: str, start: int, end: int, *, rows: int = 10, tag: str = "") -> PredictionLogFile:
    sha = hashlib.sha256(f"{deployment}:{start}:{end}:{tag}".encode()).hexdigest()
    return PredictionLogFile(deployment, sha, rows, start, end, "replica-1", size=1234)


class PredictionStoreContract:
    def test_a_file_is_indexed_once(self, store: MetadataStore) -> None:
        name = _deployment(store)
        stored = store.predictions.add_log_file(_file(name, 1_000, 2_000, rows=7))
        assert (stored.deployment, stored.rows, stored.start_ms, stored.end_ms, stored.replica, stored.size) == (
            name, 7, 1_000, 2_000, "replica-1", 1234
        )  # fmt: skip
        assert stored.created_at > 0
        again = store.predictions.add_log_file(_file(name, 1_000, 2_000, rows=7))  # a replica resends what it wrote
        assert again == stored
        assert store.predictions.log_files(name) == [stored]

    def test_the_same_blob_in_two_deployments_is_two_entries(self, store: MetadataStore) -> None:
        first, second = _deployment(store), _deployment(store)
        sha = _file(first, 1, 2).sha256
        store.predictions.add_log_file(PredictionLogFile(first, sha, 1, 1, 2, "r"))
        store.predictions.add_log_file(PredictionLogFile(second, sha, 1, 1, 2, "r"))
        assert [f.deployment for f in store.predictions.log_files(first)] == [first]
        assert [f.deployment for f in store.predictions.log_files(second)] == [second]

    def test_a_window_finds_the_files_that_overlap_it_oldest_first(self, store: MetadataStore) -> None:
        name = _deployment(store)
        for start, end in ((3_000, 3_999), (1_000, 1_999), (2_000, 2_999), (4_000, 4_000)):
            store.predictions.add_log_file(_file(name, start, end))

        def spans(**window: Any) -> list[tuple[int, int]]:
            return [(f.start_ms, f.end_ms) for f in store.predictions.log_files(name, **window)]

        assert spans() == [(1_000, 1_999), (2_000, 2_999), (3_000, 3_999), (4_000, 4_000)]
        assert spans(since_ms=2_500, until_ms=3_000) == [(2_000, 2_999), (3_000, 3_999)]  # both ends included
        assert spans(since_ms=1_999, until_ms=1_999) == [(1_000, 1_999)]
        assert spans(since_ms=4_000) == [(4_000, 4_000)]
        assert spans(until_ms=1_000) == [(1_000, 1_999)]
        assert spans(since_ms=4_001) == [] and spans(until_ms=999) == []
        assert spans(since_ms=5_000, until_ms=0) == []  # an empty window

    def test_labels_are_recorded_and_a_label_sent_again_replaces_the_earlier(self, store: MetadataStore) -> None:
        name = _deployment(store)
        assert store.predictions.log_labels(name, [("req-1", 0, 1), ("req-1", 1, "yes"), ("req-2", 0, {"y": [1.5, None]})]) == 3
        got = store.predictions.labels(name)
        assert [(x.deployment, x.request_id, x.row, x.label) for x in got] == [
            (name, "req-1", 0, 1), (name, "req-1", 1, "yes"), (name, "req-2", 0, {"y": [1.5, None]})
        ]  # fmt: skip
        first_at = got[0].at
        assert first_at > 0
        time.sleep(0.002)  # so that the replacement is recorded at a later millisecond
        assert store.predictions.log_labels(name, [("req-1", 0, 0), ("req-1", 0, 2)]) == 2  # the last one given wins
        [replaced] = store.predictions.labels(name, request_ids=["req-1"], since_ms=first_at + 1)
        assert (replaced.request_id, replaced.row, replaced.label) == ("req-1", 0, 2)
        assert replaced.at > first_at
        assert [(x.request_id, x.row, x.label) for x in store.predictions.labels(name)] == [
            ("req-1", 0, 2), ("req-1", 1, "yes"), ("req-2", 0, {"y": [1.5, None]})
        ]  # fmt: skip
        assert store.predictions.labels(name, request_ids=["req-2", "nope"]) == [got[2]]
        assert store.predictions.labels(name, request_ids=[]) == []
        assert store.predictions.log_labels(name, []) == 0

    def test_labels_of_many_request_ids_in_one_call(self, store: MetadataStore) -> None:
        name = _deployment(store)
        ids = [f"r{i:06d}" for i in range(5_000)]
        assert store.predictions.log_labels(name, [(r, 0, i % 2) for i, r in enumerate(ids)]) == len(ids)
        asked = ids[::2] + [f"missing{i}" for i in range(95_000)]  # 100,000 ids: more than one IN list can hold
        got = store.predictions.labels(name, request_ids=asked)
        assert [x.request_id for x in got] == ids[::2] and {x.label for x in got} == {0}

    @pytest.mark.parametrize(
        "change",
        [
            {"sha256": "A" * 64},
            {"sha256": "abc"},
            {"rows": -1},
            {"rows": True},
            {"start_ms": 2_000, "end_ms": 1_000},
            {"start_ms": -5},
            {"replica": ""},
            {"replica": "a\nb"},
            {"deployment": "/bad name"},
        ],
    )
    def test_a_bad_file_is_refused_and_nothing_is_written(self, store: MetadataStore, change: dict[str, Any]) -> None:
        name = _deployment(store)
        good = _file(name, 1_000, 2_000)
        with pytest.raises(InvalidArgument):
            store.predictions.add_log_file(PredictionLogFile(**{**_fields(good), **change}))
        assert store.predictions.log_files(name) == []

    @pytest.mark.parametrize(
        "bad",
        [
            ("", 0, 1),
            ("has space", 0, 1),
            ("x" * 129, 0, 1),
            ("ok", -1, 1),
            ("ok", "0", 1),
            ("ok", 0, float("nan")),
            ("ok", 0, object()),
            ("ok", 0),
        ],
    )
    def test_bad_labels_are_refused_and_nothing_is_written(self, store: MetadataStore, bad: Any) -> None:
        name = _deployment(store)
        with pytest.raises(InvalidArgument):
            store.predictions.log_labels(name, [("good", 0, 1), bad])  # the good label before it is not kept either
        assert store.predictions.labels(name) == []

    def test_too_many_labels_or_bad_arguments_are_refused(self, store: MetadataStore) -> None:
        name = _deployment(store)
        with pytest.raises(InvalidArgument):
            store.predictions.log_labels(name, [(f"r{i}", 0, 1) for i in range(MAX_LABELS_PER_CALL + 1)])
        with pytest.raises(InvalidArgument):
            store.predictions.log_labels(name, "req-1")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            store.predictions.labels(name, request_ids="req-1")
        with pytest.raises(InvalidArgument):
            store.predictions.labels(name, request_ids=["bad id"])
        with pytest.raises(InvalidArgument):
            store.predictions.log_files(name, since_ms=-1)
        assert store.predictions.labels(name) == []

    def test_an_unknown_deployment_is_not_found(self, store: MetadataStore) -> None:
        missing = unique("deploy")
        with pytest.raises(NotFound):
            store.predictions.add_log_file(_file(missing, 1, 2))
        with pytest.raises(NotFound):
            store.predictions.log_files(missing)
        with pytest.raises(NotFound):
            store.predictions.log_labels(missing, [("req-1", 0, 1)])
        with pytest.raises(NotFound):
            store.predictions.labels(missing)


def _fields(f: PredictionLogFile) -> dict[str, Any]:
    return {k: getattr(f, k) for k in PredictionLogFile.__dataclass_fields__}
