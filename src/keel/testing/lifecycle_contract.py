"""The soft-delete contract of runs and experiments, as tests every backend must pass.

Subclass ``LifecycleContract`` and provide a ``store`` fixture. Tests use unique experiment names and search
within their own experiments, so a shared store (one PostgreSQL database, one server) serves them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from keel.core.entities import ArtifactRef, RunKind, RunStatus, TrialInfo, TrialState, ViewType
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata.base import MetadataStore

SHA = "c" * 64


def _experiment(store: MetadataStore) -> int:
    return store.get_or_create_experiment(f"life-{uuid.uuid4().hex[:10]}").id


def _ids(store: MetadataStore, experiment_id: int, view: ViewType = ViewType.ACTIVE) -> set[str]:
    return {r.id for r in store.search_runs([experiment_id], view=view).runs}


class LifecycleContract:
    def test_deleted_run_is_hidden_from_search_and_restored(self, store: MetadataStore) -> None:
        exp = _experiment(store)
        kept = store.create_run(exp, "kept")
        gone = store.create_run(exp, "gone", params={"lr": "0.1"})
        store.delete_run(gone.id)
        assert _ids(store, exp) == {kept.id}
        assert _ids(store, exp, ViewType.DELETED) == {gone.id}
        assert _ids(store, exp, ViewType.ALL) == {kept.id, gone.id}
        assert store.search_runs([exp], filter="params.lr = 0.1").runs == []  # filters do not bring it back
        fetched = store.get_run(gone.id)  # by id it still reads, and says it is deleted
        assert fetched.deleted and fetched.deleted_at is not None and fetched.params == {"lr": "0.1"}
        assert not store.get_run(kept.id).deleted
        store.restore_run(gone.id)
        assert _ids(store, exp) == {kept.id, gone.id}
        assert store.get_run(gone.id).deleted_at is None
        actions = [e.action for e in store.audit.events(entity="run", entity_id=gone.id)]
        assert actions == ["runs.create", "runs.delete", "runs.restore"]

    def test_writes_to_a_deleted_run_are_refused_and_store_nothing(self, store: MetadataStore) -> None:
        exp = _experiment(store)
        run = store.create_run(exp, params={"a": "1"}, tags={"t": "x"})
        store.log_metrics([(run.id, "loss", 1.0, 0, 1)])
        store.delete_run(run.id)
        refused: list[Callable[[], object]] = [
            lambda: store.log_params(run.id, {"b": "2"}),
            lambda: store.set_tags(run.id, {"t": "y"}),
            lambda: store.log_metrics([(run.id, "loss", 0.5, 1, 2)]),
            lambda: store.log_artifacts(run.id, [ArtifactRef("model.pkl", SHA, 3, "application/octet-stream")]),
            lambda: store.end_run(run.id, RunStatus.FINISHED),
            lambda: store.create_run(exp, parent_run_id=run.id),
        ]
        for write in refused:
            with pytest.raises(Conflict, match="deleted"):
                write()
        after = store.get_run(run.id)
        assert after.params == {"a": "1"} and after.tags == {"t": "x"}
        assert after.status is RunStatus.RUNNING and after.metric("loss") == 1.0
        assert [m.value for m in store.get_metric_history(run.id, "loss")] == [1.0]
        assert store.list_artifacts(run.id) == []
        store.restore_run(run.id)  # writable again
        store.log_params(run.id, {"b": "2"})
        store.end_run(run.id, RunStatus.FINISHED)
        assert store.get_run(run.id).params == {"a": "1", "b": "2"}

    def test_a_mixed_metric_batch_with_a_deleted_run_stores_nothing(self, store: MetadataStore) -> None:
        exp = _experiment(store)
        live, gone = store.create_run(exp), store.create_run(exp)
        store.delete_run(gone.id)
        with pytest.raises(Conflict):
            store.log_metrics([(live.id, "m", 1.0, 0, 1), (gone.id, "m", 2.0, 0, 1)])
        assert store.get_metric_history(live.id, "m") == []

    def test_deleting_a_parent_deletes_its_live_descendants_and_restore_undoes_only_that(self, store: MetadataStore) -> None:
        exp = _experiment(store)
        study = store.create_run(exp, "study", kind=RunKind.STUDY)
        trials = [store.create_run(exp, parent_run_id=study.id, kind=RunKind.TRIAL, trial=TrialInfo(i)) for i in range(3)]
        store.delete_run(trials[0].id)  # deleted on its own, before the study
        store.delete_run(study.id)
        assert _ids(store, exp) == set()
        assert all(store.get_run(t.id).deleted for t in trials)
        with pytest.raises(Conflict, match="deleted"):
            store.set_trial_result(trials[1].id, TrialState.COMPLETE, 1.0)
        store.restore_run(study.id)
        assert _ids(store, exp) == {study.id, trials[1].id, trials[2].id}  # the trial deleted before stays deleted
        assert store.find_latest_run(exp, kind=RunKind.STUDY, name="study") == store.get_run(study.id)

    def test_find_latest_run_skips_deleted_runs(self, store: MetadataStore) -> None:
        exp = _experiment(store)
        older = store.create_run(exp, "s", kind=RunKind.STUDY, start_time=1_000)
        newer = store.create_run(exp, "s", kind=RunKind.STUDY, start_time=2_000)
        store.delete_run(newer.id)
        latest = store.find_latest_run(exp, kind=RunKind.STUDY, name="s")
        assert latest is not None and latest.id == older.id
        store.delete_run(older.id)
        assert store.find_latest_run(exp, kind=RunKind.STUDY, name="s") is None

    def test_deleted_experiment_hides_itself_and_its_runs(self, store: MetadataStore) -> None:
        name = f"life-{uuid.uuid4().hex[:10]}"
        exp = store.get_or_create_experiment(name, "life-proj")
        run = store.create_run(exp.id)
        store.delete_experiment(exp.id)
        assert exp.id not in {e.id for e in store.list_experiments("life-proj")}
        assert exp.id in {e.id for e in store.list_experiments("life-proj", ViewType.DELETED)}
        assert exp.id in {e.id for e in store.list_experiments("life-proj", ViewType.ALL)}
        assert store.get_experiment(exp.id).deleted
        assert store.get_experiment_by_name(name, "life-proj").deleted_at is not None
        assert _ids(store, exp.id) == set() and _ids(store, exp.id, ViewType.DELETED) == {run.id}
        assert run.id not in {r.id for r in store.search_runs(None, max_results=1000).runs}
        assert store.get_run(run.id).deleted  # deleted through its experiment
        with pytest.raises(Conflict, match="experiment"):
            store.set_tags(run.id, {"x": "1"})
        with pytest.raises(Conflict, match="deleted"):
            store.create_run(exp.id)
        with pytest.raises(Conflict, match="restore the experiment"):
            store.restore_run(run.id)
        store.restore_experiment(exp.id)
        assert not store.get_experiment(exp.id).deleted
        assert _ids(store, exp.id) == {run.id} and not store.get_run(run.id).deleted
        store.set_tags(run.id, {"x": "1"})
        actions = [e.action for e in store.audit.events(entity="experiment", entity_id=str(exp.id))]
        assert actions == ["experiments.create", "experiments.delete", "experiments.restore"]

    def test_delete_and_restore_refuse_what_makes_no_sense(self, store: MetadataStore) -> None:
        exp = _experiment(store)
        run = store.create_run(exp)
        with pytest.raises(Conflict, match="not deleted"):
            store.restore_run(run.id)
        store.delete_run(run.id)
        with pytest.raises(Conflict, match="already"):
            store.delete_run(run.id)
        with pytest.raises(NotFound):
            store.delete_run(uuid.uuid4().hex)
        with pytest.raises(NotFound):
            store.restore_run(uuid.uuid4().hex)
        with pytest.raises(Conflict, match="not deleted"):
            store.restore_experiment(exp)
        store.delete_experiment(exp)
        with pytest.raises(Conflict, match="already"):
            store.delete_experiment(exp)
        with pytest.raises(NotFound):
            store.delete_experiment(10**9)
        with pytest.raises(InvalidArgument, match="view"):
            store.search_runs([exp], view="gone")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="view"):
            store.list_experiments(view="gone")  # type: ignore[arg-type]
