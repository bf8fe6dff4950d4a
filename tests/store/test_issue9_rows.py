"""Issue 9: pipeline, step, study, sweep and trial runs as columns of ``runs``; model versions linked to dataset
versions by key; migration 0008 carries a store written by keel before it (schema 0007) over, on SQLite and
PostgreSQL: its failed pipeline resumes, its study resumes, its cached steps are found, its model keeps its data."""

from __future__ import annotations

import base64
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import keel
from keel.core.clock import now_ms
from keel.core.datasets import ColumnSchema
from keel.core.entities import RunKind, RunStatus, StepInfo, TrialInfo, TrialState
from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.sql import engine as sql_engine
from keel.testing.store_contract import unique

OLD_STORE = Path(__file__).parent / "data" / "store_0007.json"
KEY = "ab" * 32
_SERIAL = {"projects": "id", "experiments": "id", "runs": "pk", "metric_blocks": "id", "datasets": "id",
           "dataset_versions": "id", "validation_results": "id", "models": "id", "model_versions": "id",
           "alias_history": "id"}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# the new columns, on every backend (sqlite, postgres, rest)


def test_runs_carry_their_kind_step_and_trial(store: MetadataStore) -> None:
    exp = store.get_or_create_experiment(unique("rows"))
    plain = store.create_run(exp.id)
    assert plain.kind is RunKind.RUN and plain.step is None and plain.trial is None
    pipeline = store.create_run(exp.id, "flow", kind=RunKind.PIPELINE)
    ran = store.create_run(exp.id, "load", parent_run_id=pipeline.id, kind=RunKind.STEP, step=StepInfo("load", KEY))
    cached = store.create_run(
        exp.id,
        "load",
        parent_run_id=pipeline.id,
        kind="step",  # type: ignore[arg-type]
        step=StepInfo("load", KEY, cached_from=ran.id),
    )
    for run in (ran, store.get_run(ran.id)):
        assert run.kind is RunKind.STEP and run.step == StepInfo("load", KEY, None)
    assert store.get_run(cached.id).step == StepInfo("load", KEY, ran.id)
    assert store.get_run(pipeline.id).kind is RunKind.PIPELINE and not store.get_run(pipeline.id).tags

    study = store.create_run(exp.id, "a study", kind=RunKind.STUDY)
    trials = [
        store.create_run(exp.id, f"trial-{n}", parent_run_id=study.id, kind=RunKind.TRIAL,
                         trial=TrialInfo(n, {"x": n / 10, "kind": "rf", "layers": [1, 2]}))
        for n in range(4)
    ]  # fmt: skip
    assert trials[1].trial == TrialInfo(1, {"x": 0.1, "kind": "rf", "layers": [1, 2]})
    store.set_trial_result(trials[0].id, TrialState.COMPLETE, 0.1 + 0.2)  # exact, not a repr
    store.set_trial_result(trials[1].id, TrialState.COMPLETE, math.nan)
    store.set_trial_result(trials[2].id, TrialState.PRUNED)
    store.set_trial_result(trials[3].id, "complete", -math.inf)  # type: ignore[arg-type]
    got = {r.name: r.trial for r in store.list_child_runs(study.id)}
    assert got["trial-0"] is not None and got["trial-0"].value == 0.1 + 0.2 and got["trial-0"].state is TrialState.COMPLETE
    assert got["trial-1"] is not None and math.isnan(got["trial-1"].value or 0.0)
    assert got["trial-2"] == TrialInfo(2, {"x": 0.2, "kind": "rf", "layers": [1, 2]}, TrialState.PRUNED, None)
    assert got["trial-3"] is not None and got["trial-3"].value == -math.inf
    assert store.find_latest_run(exp.id, kind=RunKind.STUDY, name="a study") == store.get_run(study.id)
    assert store.find_latest_run(exp.id, kind=RunKind.STUDY, name="a study' or '1'='1") is None  # a name, never a filter
    assert store.find_latest_run(exp.id, kind=RunKind.PIPELINE, name="a study") is None


def test_child_runs_by_status_and_kind(store: MetadataStore) -> None:
    exp = store.get_or_create_experiment(unique("children"))
    parent = store.create_run(exp.id, "flow", kind=RunKind.PIPELINE)
    t = now_ms()  # start times out of creation order: children come oldest first
    b = store.create_run(exp.id, "b", parent_run_id=parent.id, kind=RunKind.STEP, step=StepInfo("b", KEY), start_time=t + 2)
    a = store.create_run(exp.id, "a", parent_run_id=parent.id, kind=RunKind.STEP, step=StepInfo("a", KEY), start_time=t + 1)
    other = store.create_run(exp.id, "note", parent_run_id=parent.id, start_time=t + 3)
    store.create_run(exp.id, "elsewhere", kind=RunKind.STEP, step=StepInfo("a", KEY))
    store.end_run(a.id, RunStatus.FINISHED)
    assert [r.id for r in store.list_child_runs(parent.id)] == [a.id, b.id, other.id]  # oldest first
    assert [r.id for r in store.list_child_runs(parent.id, status=RunStatus.FINISHED)] == [a.id]
    assert [r.id for r in store.list_child_runs(parent.id, status=RunStatus.RUNNING, kind=RunKind.STEP)] == [b.id]
    assert store.list_child_runs(a.id) == []
    with pytest.raises(NotFound):
        store.list_child_runs("0" * 32)


def test_bad_kinds_steps_and_trials_are_refused(store: MetadataStore) -> None:
    exp = store.get_or_create_experiment(unique("bad"))
    run = store.create_run(exp.id)
    for kwargs in (
        {"kind": "job"},
        {"kind": RunKind.PIPELINE, "step": StepInfo("a", KEY)},  # step information on a pipeline run
        {"kind": RunKind.STEP, "step": StepInfo("a", "not a key")},
        {"kind": RunKind.STEP, "step": StepInfo("", KEY)},
        {"kind": RunKind.STEP, "step": StepInfo("a", KEY, cached_from="x'; drop table runs; --")},
        {"kind": RunKind.STUDY, "trial": TrialInfo(0)},
        {"kind": RunKind.TRIAL, "trial": TrialInfo(-1)},
        {"kind": RunKind.TRIAL, "trial": TrialInfo(0, {}, TrialState.COMPLETE, 1.0)},  # told when it ends
    ):
        with pytest.raises(InvalidArgument):
            store.create_run(exp.id, **kwargs)
    with pytest.raises(NotFound):  # the run a cached step reuses must exist
        store.create_run(exp.id, kind=RunKind.STEP, step=StepInfo("a", KEY, cached_from="0" * 32))
    with pytest.raises(InvalidArgument, match="trial run"):
        store.set_trial_result(run.id, TrialState.COMPLETE, 1.0)
    trial = store.create_run(exp.id, kind=RunKind.TRIAL, trial=TrialInfo(0))
    for state, value in (("done", 1.0), (TrialState.PRUNED, 1.0), (TrialState.COMPLETE, "high")):
        with pytest.raises(InvalidArgument):
            store.set_trial_result(trial.id, state, value)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.set_trial_result("0" * 32, TrialState.FAILED)
    assert store.get_run(trial.id).trial == TrialInfo(0)  # nothing written
    with pytest.raises(InvalidArgument):
        store.list_child_runs(run.id, kind="job")  # type: ignore[arg-type]


def test_model_versions_link_their_training_data_by_key(store: MetadataStore) -> None:
    name = unique("orders")
    logged = [
        store.datasets.log_version(name, content_hash=f"{i}" * 64, artifact_sha256=f"{i}" * 64, size=1, row_count=1,
                                   schema=[ColumnSchema("a", "int64")], source="test")[0]
        for i in (1, 2)
    ]  # fmt: skip
    mv = store.models.create_version(
        unique("churn"), flavor="python", artifact_sha256="d" * 64, size=1, signature={},
        datasets=[f"{name}@1", name, f"{name}@9", "nowhere@1"],
    )  # fmt: skip
    assert mv.datasets == (f"{name}@1", name, f"{name}@9", "nowhere@1")  # the refs as given
    assert mv.dataset_version_ids == (logged[0].id, logged[1].id)  # by key: @1 and the latest (@2); no others
    assert store.models.get_version(mv.name, 1).dataset_version_ids == mv.dataset_version_ids


# ---------------------------------------------------------------------------------------------------------------
# migration 0008 on a store written by keel 6090ee4 (tests/store/data/make_store_0007.py)


def _load_old_store(uri: str, artifacts: Path) -> dict[str, Any]:
    """Build the 0007 store of ``store_0007.json`` in ``uri``: its rows as that keel wrote them, its blobs."""
    doc = json.loads(OLD_STORE.read_text())
    engine = sql_engine.make_engine(uri)
    sql_engine.upgrade(engine, "0007")
    with engine.begin() as conn:
        for name, table in doc["tables"].items():
            if not table["rows"]:
                continue
            target = sa.table(name, *(sa.column(c) for c in table["columns"]))
            rows = [
                {c: base64.b64decode(v["b64"]) if isinstance(v, dict) else v for c, v in zip(table["columns"], row, strict=True)}
                for row in table["rows"]
            ]
            conn.execute(target.insert(), rows)
            if engine.dialect.name == "postgresql" and name in _SERIAL:
                key = _SERIAL[name]  # rows came with their keys: move the sequence past them
                sql = f"SELECT setval(pg_get_serial_sequence('{name}', '{key}'), (SELECT max({key}) FROM {name}))"
                conn.execute(sa.text(sql))
    assert sql_engine.current_revision(engine) == "0007"
    engine.dispose()
    for sha, blob in doc["blobs"].items():
        path = artifacts / "sha256" / sha[:2] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(blob))
    return doc


@pytest.fixture(params=["sqlite", "postgres"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, Path]:
    uri = f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else str(request.getfixturevalue("fresh_postgres_url"))
    artifacts = tmp_path / "artifacts"
    doc = _load_old_store(uri, artifacts)
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows_issue9.py").write_text(doc["pipeline_module"])  # the same source: the same step code hashes
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.delitem(sys.modules, "flows_issue9", raising=False)
    return uri, str(artifacts), project


def test_an_old_store_is_carried_over(old_store: tuple[str, str, Path]) -> None:
    import importlib

    import keel.tune as tune
    from keel.pipelines import resume
    from keel.registry.export import card_data
    from keel.tracking.client import Client

    uri, artifacts, _ = old_store
    client = Client(uri, artifacts)  # opening upgrades
    keel.set_client(client)
    store = client.store
    assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD  # type: ignore[attr-defined]

    # the columns, filled from the tags of that keel
    flow_exp = store.get_experiment_by_name("flow")
    failed = store.find_latest_run(flow_exp.id, kind=RunKind.PIPELINE, name="flow")
    assert failed is not None and failed.status is RunStatus.FAILED
    steps = {r.name: r for r in store.list_child_runs(failed.id)}
    assert {n: r.kind for n, r in steps.items()} == {"load": RunKind.STEP, "total": RunKind.STEP, "score": RunKind.STEP}
    assert all(r.step is not None and r.step.name == n and len(r.step.cache_key) == 64 for n, r in steps.items())
    study_exp = store.get_experiment_by_name("tuning")
    study = store.find_latest_run(study_exp.id, kind=RunKind.STUDY, name="issue9-study")
    assert study is not None
    trials = store.list_child_runs(study.id, kind=RunKind.TRIAL)
    assert sorted(t.trial.number for t in trials if t.trial) == [0, 1, 2]
    for t in trials:
        assert t.trial is not None and t.trial.state is TrialState.COMPLETE and set(t.trial.params) == {"x"}
        assert t.trial.value == pytest.approx((t.trial.params["x"] - 0.3) ** 2, abs=0)  # exact, from the repr
    orders = store.datasets.get_version("orders", 1)
    churn = store.models.get_version("churn", 1)
    assert churn.datasets == ("orders@1", "gone@7") and churn.dataset_version_ids == (orders.id,)

    # the failed pipeline resumes: what finished is reused, the failed step runs
    resumed = resume(failed.id, client=client)
    assert {s.node: s.status for s in resumed.steps} == {"load": "cached", "total": "cached", "score": "ran"}
    assert resumed.output == sum(range(5)) / 10
    reused = {r.name: r for r in store.list_child_runs(resumed.run_id)}
    assert reused["load"].step is not None and reused["load"].step.cached_from == steps["load"].id

    # the earlier finished run's steps are still found in the cache
    flows = importlib.import_module("flows_issue9")
    again = flows.flow.run(n=4)
    assert {s.status for s in again.steps} == {"cached"} and again.output == sum(range(4)) / 10

    # the study resumes from its trials
    result = tune.optimize(lambda trial: (trial.params["x"] - 0.3) ** 2, {"x": tune.uniform(0.0, 1.0)}, n_trials=2,
                           metric="loss", direction="minimize", name="issue9-study", experiment="tuning", seed=2,
                           pruner="none")  # fmt: skip
    assert result.run_id == study.id and result.resumed_trials == 3 and len(result.trials) == 5
    assert sorted(t.trial.number for t in store.list_child_runs(study.id) if t.trial) == [0, 1, 2, 3, 4]

    # the model's card reads its training data through the link
    card = card_data("churn", 1, client.context)
    assert [d["ref"] for d in card["data"]] == ["orders@1"]
    client.close()


def _insert_like(conn: Any, name: str, first: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Rows as the 0007 keel wrote them: the first stored row of ``name`` with some values changed."""
    conn.execute(sa.table(name, *(sa.column(c) for c in first)).insert(), [first | row for row in rows])


def test_a_bare_dataset_ref_links_the_version_latest_at_registration(old_store: tuple[str, str, Path]) -> None:
    uri = old_store[0]
    engine = sql_engine.make_engine(uri)
    with engine.begin() as conn:  # orders@1 exists; log @2 and @3, and register churn versions between them
        first_dv = dict(conn.execute(sa.text("SELECT * FROM dataset_versions WHERE id = 1")).mappings().one())
        first_mv = dict(conn.execute(sa.text("SELECT * FROM model_versions WHERE id = 1")).mappings().one())
        t1 = first_dv["created_at"]
        _insert_like(conn, "dataset_versions", first_dv, [
            {"id": 2, "version": 2, "content_hash": "2" * 64, "created_at": t1 + 1000},
            {"id": 3, "version": 3, "content_hash": "3" * 64, "created_at": t1 + 3000},
        ])  # fmt: skip
        _insert_like(conn, "model_versions", first_mv, [
            {"id": 2, "version": 2, "datasets": '["orders"]', "created_at": t1 + 2000},  # after @2, before @3
            {"id": 3, "version": 3, "datasets": '["orders@latest", "gone"]', "created_at": t1 + 1000},  # as @2 (same ms)
            {"id": 4, "version": 4, "datasets": '["orders"]', "created_at": t1 - 1},  # before any version of orders
            {"id": 5, "version": 5, "datasets": '["orders", "orders@1"]', "created_at": t1 + 5000},
        ])  # fmt: skip
    sql_engine.upgrade(engine)
    with engine.connect() as conn:
        links = conn.execute(sa.text("SELECT model_version_id, dataset_version_id FROM model_version_datasets")).all()
    engine.dispose()
    assert sorted(links) == [(1, 1), (2, 2), (3, 2), (5, 1), (5, 3)]


def test_the_downgrade_gives_the_columns_back_as_tags(old_store: tuple[str, str, Path]) -> None:
    from keel.tracking.client import Client

    uri, artifacts, _ = old_store
    client = Client(uri, artifacts)  # opening upgrades to 0008
    store = client.store
    flow_exp = store.get_experiment_by_name("flow")
    failed = store.find_latest_run(flow_exp.id, kind=RunKind.PIPELINE, name="flow")
    assert failed is not None
    load = next(r for r in store.list_child_runs(failed.id) if r.name == "load")
    step = store.create_run(flow_exp.id, "load", parent_run_id=failed.id, kind=RunKind.STEP,
                            step=StepInfo("load", KEY, cached_from=load.id))  # fmt: skip
    study = store.find_latest_run(store.get_experiment_by_name("tuning").id, kind=RunKind.STUDY, name="issue9-study")
    assert study is not None
    trials = [
        store.create_run(study.experiment_id, f"trial-{n}", parent_run_id=study.id, kind=RunKind.TRIAL,
                         trial=TrialInfo(n, {"x": n / 10}))
        for n in (3, 4, 5)
    ]  # fmt: skip
    store.set_trial_result(trials[0].id, TrialState.COMPLETE, 0.1 + 0.2)
    store.set_trial_result(trials[1].id, TrialState.COMPLETE, math.nan)
    store.set_trial_result(trials[2].id, TrialState.PRUNED)
    client.close()

    engine = sql_engine.make_engine(uri)
    tables = ["runs", "tags", "params", "metric_blocks", "datasets", "dataset_versions", "models", "model_versions",
              "alias_history", "experiments"]  # fmt: skip

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {name: conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one() for name in tables}

    def tags(run_id: str) -> dict[str, str]:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT key, value FROM tags WHERE run_id = :r"), {"r": run_id}).all()
        return dict(rows)  # type: ignore[arg-type]

    before = counts()
    old_tags = {r: tags(r) for r in (load.id, failed.id, study.id)}
    sql_engine.downgrade(engine, "0007")
    assert sql_engine.current_revision(engine) == "0007"
    assert counts() == before | {"tags": before["tags"] + 4 + 3 * 5 - 1}  # the new runs' tags; the pruned one has no value
    assert {r: tags(r) for r in old_tags} == old_tags  # the tags the old keel wrote, as they were
    assert tags(step.id) == {"keel.kind": "step", "keel.step": "load", "keel.cache_key": KEY, "keel.cached_from": load.id}
    params = {"keel.kind": "trial", "keel.trial_state": "complete"}
    exact = repr(0.1 + 0.2)  # "0.30000000000000004", as the earlier keel wrote it
    assert tags(trials[0].id) == params | {"keel.trial": "3", "keel.trial_params": '{"x": 0.3}', "keel.trial_value": exact}
    assert tags(trials[1].id) == params | {"keel.trial": "4", "keel.trial_params": '{"x": 0.4}', "keel.trial_value": "nan"}
    assert tags(trials[2].id) == {"keel.kind": "trial", "keel.trial": "5", "keel.trial_params": '{"x": 0.5}',
                                  "keel.trial_state": "pruned"}  # fmt: skip
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert "kind" not in columns and "trial_value" not in columns
        assert not sa.inspect(conn).has_table("model_version_datasets")
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on for whoever uses the connection
    engine.dispose()
