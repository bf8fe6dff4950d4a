"""The dataset-store contract, as tests every backend must pass (see ``store_contract``)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from keel.core.datasets import ColumnSchema, DatasetVersion
from keel.core.entities import Run
from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique

SCHEMA = (ColumnSchema("x", "double", True), ColumnSchema("city", "string", False))
# stores check a profile's shape (see keel.core.dataset_records): the smallest one they accept for SCHEMA
PROFILE = {
    "row_count": 3,
    "columns": {
        "x": {"kind": "numeric", "type": "double", "count": 2, "missing": 1, "missing_share": 1 / 3, "mean": 1.5},
        "city": {"kind": "categorical", "type": "string", "count": 3, "missing": 0, "missing_share": 0.0,
                 "top": [["NY", 3]], "frequencies": {"NY": 3}},
    },
}  # fmt: skip


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def log(store: MetadataStore, name: str, content: str, **kwargs: Any) -> tuple[DatasetVersion, bool]:
    """``store.datasets.log_version`` with valid defaults; ``kwargs`` may be ill-typed on purpose (refusal tests)."""
    defaults: dict[str, Any] = {
        "content_hash": sha(content),
        "artifact_sha256": sha("blob" + content),
        "size": 10,
        "row_count": 3,
        "schema": SCHEMA,
    }
    return store.datasets.log_version(name, **{**defaults, **kwargs})


class DatasetStoreContract:
    def test_versions_count_up_and_identical_content_is_not_a_new_version(self, store: MetadataStore) -> None:
        name = unique("data")
        v1, created1 = log(store, name, "a", source="s3://raw/a.csv", profile=PROFILE)
        v2, created2 = log(store, name, "b")
        again, created3 = log(store, name, "a")
        assert (v1.version, v2.version, created1, created2, created3) == (1, 2, True, True, False)
        assert again == v1
        assert v1.schema == SCHEMA and v1.source == "s3://raw/a.csv" and v1.row_count == 3
        assert store.datasets.get_version(name).id == v2.id  # latest
        assert store.datasets.get_version(name, 1) == v1
        assert store.datasets.get_version_by_id(v2.id) == v2
        assert [v.version for v in store.datasets.list_versions(name)] == [1, 2]
        assert store.datasets.get_profile(v1.id) == PROFILE
        assert store.datasets.get_profile(v2.id) is None
        latest = {d.name: d.version for d in store.datasets.list_datasets()}
        assert latest[name] == 2

    def test_lineage_parents_and_children(self, store: MetadataStore) -> None:
        raw, _ = log(store, unique("raw"), "raw")
        other, _ = log(store, unique("lookup"), "lookup")
        transform = {"name": "merge", "code_hash": sha("code"), "params": {"on": "id"}}
        clean, _ = log(store, unique("clean"), "clean", parent_ids=[raw.id, other.id], transform=transform)
        assert set(clean.parents) == {raw.ref, other.ref}
        assert clean.transform == transform
        assert [c.id for c in store.datasets.children(raw.id)] == [clean.id]
        with pytest.raises(NotFound, match="parent dataset version"):
            log(store, unique("orphan"), "orphan", parent_ids=[987654321])

    def test_runs_record_what_they_read_and_wrote(self, store: MetadataStore) -> None:
        exp = store.get_or_create_experiment(unique())
        run = store.create_run(exp.id)
        inp, _ = log(store, unique("in"), "in")
        out, _ = log(store, unique("out"), "out", parent_ids=[inp.id])
        store.datasets.link_run(run.id, inp.id, "input")
        store.datasets.link_run(run.id, inp.id, "input")  # idempotent
        store.datasets.link_run(run.id, out.id, "output")
        assert store.datasets.runs_of_version(inp.id) == [(run.id, "input")]
        links = store.datasets.versions_of_run(run.id)
        assert [(link.direction, link.version.id) for link in links] == [("input", inp.id), ("output", out.id)]
        with pytest.raises(InvalidArgument, match="direction"):
            store.datasets.link_run(run.id, inp.id, "sideways")
        with pytest.raises(NotFound):
            store.datasets.link_run("0" * 32, inp.id, "input")
        with pytest.raises(NotFound):
            store.datasets.link_run(run.id, 987654321, "input")

    def test_validation_records(self, store: MetadataStore) -> None:
        version, _ = log(store, unique("checked"), "checked")
        first = store.datasets.save_validation(version.id, "suite-a", True, 0, 1, {"checks": [{"kind": "range"}]})
        second = store.datasets.save_validation(version.id, "suite-b", False, 2, 0, {"checks": []})
        records = store.datasets.list_validations(version.id)
        assert [r.id for r in records] == [second.id, first.id]  # newest first
        assert records[1].passed is True and records[1].result == {"checks": [{"kind": "range"}]}
        assert records[0].passed is False and records[0].errors == 2

    @pytest.mark.parametrize(
        "kwargs, needle",
        [
            ({"content_hash": "nothex"}, "sha256"),
            ({"row_count": -1}, "row_count"),
            ({"role": "scratch"}, "role"),
            ({"schema": []}, "schema"),
        ],
    )
    def test_bad_versions_are_refused(self, store: MetadataStore, kwargs: dict[str, object], needle: str) -> None:
        name = unique("bad")
        with pytest.raises(InvalidArgument, match=needle):
            log(store, name, "x", **kwargs)
        with pytest.raises(NotFound):
            store.datasets.list_versions(name)

    def test_unknown_dataset_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound, match="does not exist"):
            store.datasets.get_version(unique("missing"))
        with pytest.raises(InvalidArgument, match="dataset name"):
            log(store, "../etc", "x")


def step_run(store: MetadataStore, key: str, output_sha: str, *, step: str = "fit", kind: str = "step") -> Run:
    """A running step run as the pipeline runner leaves it before it saves its cache entry."""
    from keel.core.entities import ArtifactRef, RunKind, StepInfo

    exp = store.get_or_create_experiment(unique())
    info = StepInfo(step, key) if kind == "step" else None
    run = store.create_run(exp.id, tags={"keel.output": output_sha}, kind=RunKind(kind), step=info)
    store.log_artifacts(run.id, [ArtifactRef("output.pkl", output_sha, 10, "application/x-python-pickle")])
    return run


def pickled(sha256: str, size: int = 10) -> dict[str, Any]:
    return {"output": {"kind": "pickle", "sha256": sha256, "size": size, "dataset": ""}}


class PipelineStoreContract:
    def test_a_step_run_creates_its_entry_once_and_it_is_never_replaced(self, store: MetadataStore) -> None:
        from keel.core.errors import Conflict

        key = sha(unique("key"))
        a, b = sha(unique("a")), sha(unique("b"))  # blobs unique to this test: the artifact table is shared
        first, second = step_run(store, key, a), step_run(store, key, b)
        assert store.pipelines.find_step(key) is None
        store.pipelines.save_step(key, first.id, "fit", pickled(a))
        store.pipelines.save_step(key, first.id, "fit", pickled(a))  # the same entry again: a no-op
        with pytest.raises(Conflict, match="never replaced"):
            store.pipelines.save_step(key, second.id, "fit", pickled(b))
        found = store.pipelines.find_step(key)
        assert found is not None and found.run_id == first.id and found.outputs["output"]["sha256"] == a
        with pytest.raises(InvalidArgument, match="sha256"):
            store.pipelines.save_step("not-a-key", first.id, "fit", pickled(a))
        with pytest.raises(NotFound):
            store.pipelines.save_step(sha("other"), "0" * 32, "fit", pickled(a))

    def test_only_the_run_that_produced_an_output_can_cache_it(self, store: MetadataStore) -> None:
        from keel.core.entities import RunStatus
        from keel.core.errors import Conflict

        key = sha(unique("key"))
        a, e = sha(unique("a")), sha(unique("e"))
        plain = store.create_run(store.get_or_create_experiment(unique()).id)
        for run_id, step, outputs, needle in (
            (plain.id, "fit", pickled(a), "not a step run"),
            (step_run(store, key, a, kind="trial").id, "fit", pickled(a), "not a step run"),
            (step_run(store, sha("another key"), a).id, "fit", pickled(a), "its cache key"),
            (step_run(store, key, a, step="load").id, "fit", pickled(a), "its step"),
            (step_run(store, key, a).id, "fit", pickled(e), "keel.output"),  # another pickle than its own
            (step_run(store, key, a).id, "fit", pickled(a, size=99), "output.pkl"),
        ):
            with pytest.raises(Conflict, match=needle):
                store.pipelines.save_step(key, run_id, step, outputs)
        ended = step_run(store, key, a)
        store.end_run(ended.id, RunStatus.FINISHED)
        with pytest.raises(Conflict, match="finished"):
            store.pipelines.save_step(key, ended.id, "fit", pickled(a))
        running = step_run(store, key, a)
        for outputs in ({}, {"output": {"kind": "code", "sha256": a}}, {**pickled(a), "extra": 1}):
            with pytest.raises(InvalidArgument, match="outputs"):
                store.pipelines.save_step(key, running.id, "fit", outputs)
        assert store.pipelines.find_step(key) is None  # nothing was written by any refusal
