"""The tracking-store contract, as tests every backend must pass.

Subclass ``TrackingStoreContract`` in a test module and provide a ``store`` fixture
(a fresh or shared ``MetadataStore``). Tests use unique experiment names, so a shared
store (one PostgreSQL database, one server) serves every test.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from keel.core.clock import now_ms
from keel.core.entities import ArtifactRef, RunStatus
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata.base import MetadataStore

SHA_A = "a" * 64
SHA_B = "b" * 64


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class TrackingStoreContract:
    # experiments ---------------------------------------------------------------------
    def test_get_or_create_experiment_is_idempotent(self, store: MetadataStore) -> None:
        name = unique()
        first = store.get_or_create_experiment(name, "proj-a")
        again = store.get_or_create_experiment(name, "proj-a")
        other_project = store.get_or_create_experiment(name, "proj-b")
        assert first == again
        assert other_project.id != first.id
        assert store.get_experiment_by_name(name, "proj-a").id == first.id
        assert store.get_experiment(first.id).name == name
        assert first.id in {e.id for e in store.list_experiments("proj-a")}

    def test_missing_experiment_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound, match="does not exist"):
            store.get_experiment_by_name(unique())
        with pytest.raises(NotFound):
            store.create_run(987_654_321, "x")

    def test_bad_experiment_name_is_refused(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidArgument, match="experiment must be"):
            store.get_or_create_experiment("../etc")

    # runs ----------------------------------------------------------------------------
    def test_create_and_read_run(self, store: MetadataStore) -> None:
        exp = store.get_or_create_experiment(unique())
        run = store.create_run(exp.id, "first", tags={"team": "fraud"}, params={"lr": "0.1", "depth": "3"})
        got = store.get_run(run.id)
        assert got.status is RunStatus.RUNNING
        assert got.name == "first"
        assert got.params == {"lr": "0.1", "depth": "3"}
        assert got.tags == {"team": "fraud"}
        assert got.experiment_id == exp.id
        assert abs(got.start_time - now_ms()) < 60_000

    def test_end_run_sets_status_once(self, store: MetadataStore) -> None:
        exp = store.get_or_create_experiment(unique())
        run = store.create_run(exp.id)
        store.end_run(run.id, RunStatus.FAILED)
        ended = store.get_run(run.id)
        assert ended.status is RunStatus.FAILED
        assert ended.end_time is not None and ended.end_time >= run.start_time
        with pytest.raises(Conflict, match="already ended as failed"):
            store.end_run(run.id, RunStatus.FINISHED)
        assert store.get_run(run.id).status is RunStatus.FAILED

    def test_end_run_refuses_running_status(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        with pytest.raises(InvalidArgument, match="status"):
            store.end_run(run.id, RunStatus.RUNNING)

    def test_unknown_run_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound):
            store.get_run("0" * 32)
        with pytest.raises(NotFound):
            store.log_params("0" * 32, {"a": "1"})

    def test_nested_runs_link_to_their_parent(self, store: MetadataStore) -> None:
        exp = store.get_or_create_experiment(unique())
        parent = store.create_run(exp.id, "parent")
        child = store.create_run(exp.id, "child", parent_run_id=parent.id)
        assert store.get_run(child.id).parent_run_id == parent.id
        page = store.search_runs([exp.id], filter=f"parent_run_id = '{parent.id}'")
        assert [r.id for r in page.runs] == [child.id]
        with pytest.raises(NotFound, match="parent run"):
            store.create_run(exp.id, "orphan", parent_run_id="f" * 32)

    def test_silent_run_reads_as_killed_until_it_beats_again(self, store: MetadataStore) -> None:
        exp = store.get_or_create_experiment(unique())
        long_ago = now_ms() - int(store.heartbeat_timeout * 1000) - 60_000
        run = store.create_run(exp.id, start_time=long_ago)
        assert store.get_run(run.id).status is RunStatus.KILLED
        assert [r.id for r in store.search_runs([exp.id], filter="status = 'killed'").runs] == [run.id]
        assert store.search_runs([exp.id], filter="status = 'running'").runs == []
        store.heartbeat([run.id])
        assert store.get_run(run.id).status is RunStatus.RUNNING
        assert [r.id for r in store.search_runs([exp.id], filter="status = 'running'").runs] == [run.id]

    # params and tags -------------------------------------------------------------------
    def test_params_are_immutable_and_conflicts_write_nothing(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        store.log_params(run.id, {"lr": "0.1"})
        store.log_params(run.id, {"lr": "0.1"})  # same value: a no-op
        with pytest.raises(Conflict, match=r"param 'lr' .* already '0.1'.* '0.2'"):
            store.log_params(run.id, {"new": "1", "lr": "0.2"})
        assert store.get_run(run.id).params == {"lr": "0.1"}  # 'new' was not written either

    def test_bad_keys_are_refused_and_nothing_is_written(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        for bad in ("", "a;drop table", "x" * 300, "../up"):
            with pytest.raises(InvalidArgument, match="param key must be"):
                store.log_params(run.id, {"ok": "1", bad: "2"})
        with pytest.raises(InvalidArgument, match="tag key must be"):
            store.set_tags(run.id, {"fine": "1", "bad key!": "2"})
        got = store.get_run(run.id)
        assert got.params == {} and got.tags == {}

    def test_tags_overwrite(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id, tags={"stage": "dev"})
        store.set_tags(run.id, {"stage": "prod", "owner": "ana"})
        assert store.get_run(run.id).tags == {"stage": "prod", "owner": "ana"}

    # metrics -------------------------------------------------------------------------
    def test_metrics_keep_nan_and_infinities(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        store.log_metrics(
            [
                (run.id, "loss", 1.5, 0, 1000),
                (run.id, "loss", math.nan, 1, 1001),
                (run.id, "loss", math.inf, 2, 1002),
                (run.id, "loss", -math.inf, 3, 1003),
            ]
        )
        values = [m.value for m in store.get_metric_history(run.id, "loss")]
        assert values[0] == 1.5 and math.isnan(values[1]) and values[2] == math.inf and values[3] == -math.inf
        assert store.get_run(run.id).metrics["loss"].value == -math.inf

    def test_metric_history_is_ordered_and_latest_is_highest_step(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        store.log_metrics([(run.id, "acc", 0.3, 5, 10), (run.id, "acc", 0.1, 1, 20)])
        store.log_metrics([(run.id, "acc", 0.2, 3, 30), (run.id, "auc", 0.9, 0, 40)])
        history = store.get_metric_history(run.id, "acc")
        assert [(m.step, m.value) for m in history] == [(1, 0.1), (3, 0.2), (5, 0.3)]
        latest = store.get_run(run.id).metrics
        assert (latest["acc"].step, latest["acc"].value) == (5, 0.3)
        assert latest["auc"].value == 0.9

    def test_metrics_of_several_runs_in_one_batch(self, store: MetadataStore) -> None:
        exp = store.get_or_create_experiment(unique())
        a, b = store.create_run(exp.id), store.create_run(exp.id)
        store.log_metrics([(a.id, "m", float(i), i, i) for i in range(300)] + [(b.id, "m", -1.0, 0, 0)])
        assert len(store.get_metric_history(a.id, "m")) == 300
        assert [m.value for m in store.get_metric_history(b.id, "m")] == [-1.0]

    def test_bad_metric_batches_write_nothing(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        bad_batches: dict[str, list[Any]] = {
            "step": [(run.id, "m", 1.0, 0, 0), (run.id, "m", 1.0, math.inf, 0)],
            "metric key": [(run.id, "m", 1.0, 0, 0), (run.id, "", 1.0, 1, 0)],
            "value": [(run.id, "m", 1.0, 0, 0), (run.id, "m", "high", 1, 0)],
            "timestamp": [(run.id, "m", 1.0, 0, 0), (run.id, "m", 1.0, 1, -5)],
            "fits in 64 bits": [(run.id, "m", 1.0, 0, 0), (run.id, "m", 1.0, 2**63, 0)],
        }
        for field, batch in bad_batches.items():
            with pytest.raises(InvalidArgument, match=field):
                store.log_metrics(batch)
        with pytest.raises(NotFound):
            store.log_metrics([(run.id, "m", 1.0, 0, 0), ("e" * 32, "m", 1.0, 0, 0)])
        assert store.get_metric_history(run.id, "m") == []
        assert store.get_run(run.id).metrics == {}

    def test_a_resent_metric_batch_is_stored_once(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        batch = [(run.id, "loss", float(i), i, 1000 + i) for i in range(50)]
        batch_id = uuid.uuid4().hex
        assert not store.metric_batch_applied(batch_id)
        store.log_metrics(batch, batch_id=batch_id)
        store.log_metrics(batch, batch_id=batch_id)  # a resend: the first answer was lost
        assert store.metric_batch_applied(batch_id)
        assert [m.value for m in store.get_metric_history(run.id, "loss")] == [float(i) for i in range(50)]
        store.log_metrics(batch[:1], batch_id=uuid.uuid4().hex)  # another batch with the same values is stored
        assert len(store.get_metric_history(run.id, "loss")) == 51

    def test_a_resent_end_run_is_a_no_op(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        batch_id = uuid.uuid4().hex
        store.end_run(run.id, RunStatus.FINISHED, metrics=[(run.id, "acc", 0.9, 0, 1)], batch_id=batch_id)
        store.end_run(run.id, RunStatus.FINISHED, metrics=[(run.id, "acc", 0.9, 0, 1)], batch_id=batch_id)
        assert [m.value for m in store.get_metric_history(run.id, "acc")] == [0.9]
        assert store.get_run(run.id).status is RunStatus.FINISHED
        with pytest.raises(Conflict, match="already ended"):  # a new end, not a resend
            store.end_run(run.id, RunStatus.FAILED, batch_id=uuid.uuid4().hex)
        # values resent as a plain batch under the end's id (an end whose answer was lost) are not stored again
        store.log_metrics([(run.id, "acc", 0.9, 0, 1)], batch_id=batch_id)
        assert len(store.get_metric_history(run.id, "acc")) == 1

    def test_a_refused_batch_leaves_its_id_unused(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        batch_id = uuid.uuid4().hex
        bad: list[Any] = [(run.id, "m", 1.0, 0, 0), (run.id, "m", "high", 1, 0)]
        with pytest.raises(InvalidArgument, match="value"):
            store.log_metrics(bad, batch_id=batch_id)
        with pytest.raises(NotFound):
            store.log_metrics([(run.id, "m", 1.0, 0, 0), ("e" * 32, "m", 1.0, 0, 0)], batch_id=batch_id)
        assert not store.metric_batch_applied(batch_id)
        store.log_metrics([(run.id, "m", 1.0, 0, 0)], batch_id=batch_id)  # the corrected batch goes in
        assert [m.value for m in store.get_metric_history(run.id, "m")] == [1.0]

    @pytest.mark.parametrize("batch_id", ["", "has space", "x" * 101, "new\nline", "trailing\n"])
    def test_bad_batch_ids_are_refused(self, store: MetadataStore, batch_id: str) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        with pytest.raises(InvalidArgument, match="batch_id"):
            store.log_metrics([(run.id, "m", 1.0, 0, 0)], batch_id=batch_id)
        with pytest.raises(InvalidArgument, match="batch_id"):
            store.end_run(run.id, RunStatus.FINISHED, batch_id=batch_id)
        assert store.get_metric_history(run.id, "m") == []
        assert store.get_run(run.id).status is RunStatus.RUNNING

    # artifacts -----------------------------------------------------------------------
    def test_artifact_references(self, store: MetadataStore) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        store.log_artifacts(run.id, [ArtifactRef("model/model.pkl", SHA_A, 10), ArtifactRef("notes.txt", SHA_B, 3)])
        store.log_artifacts(run.id, [ArtifactRef("notes.txt", SHA_A, 10)])  # same path again: overwrites
        refs = store.list_artifacts(run.id)
        assert [(r.path, r.sha256) for r in refs] == [("model/model.pkl", SHA_A), ("notes.txt", SHA_A)]

    @pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../../b", "nul\x00byte", "C:/win", "a\\b", ""])
    def test_artifact_paths_are_validated(self, store: MetadataStore, path: str) -> None:
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        with pytest.raises(InvalidArgument, match="artifact path"):
            store.log_artifacts(run.id, [ArtifactRef("fine.txt", SHA_A, 1), ArtifactRef(path, SHA_B, 1)])
        assert store.list_artifacts(run.id) == []

    # search --------------------------------------------------------------------------
    def _populate(self, store: MetadataStore) -> tuple[int, list[str]]:
        exp = store.get_or_create_experiment(unique())
        ids = []
        for i in range(12):
            run = store.create_run(
                exp.id,
                f"run-{i:02d}",
                params={"lr": str(0.01 * (i + 1)), "model": "rf" if i % 2 else "lr"},
                tags={"group": "even" if i % 2 == 0 else "odd"},
                start_time=now_ms() - (12 - i) * 1000,
            )
            store.log_metrics([(run.id, "acc", i / 20, 0, 1), (run.id, "acc", i / 10, 1, 2)])
            if i < 4:
                store.end_run(run.id, RunStatus.FINISHED)
            ids.append(run.id)
        return exp.id, ids

    def test_search_filters(self, store: MetadataStore) -> None:
        exp_id, ids = self._populate(store)

        def names(filter: str) -> set[str]:
            return {r.name for r in store.search_runs([exp_id], filter=filter, max_results=100).runs}

        assert names("metrics.acc >= 0.9") == {"run-09", "run-10", "run-11"}  # the latest value counts
        assert names("params.lr > 0.105") == {"run-10", "run-11"}  # numeric comparison of params
        assert names("params.model = 'rf' and metrics.acc < 0.4") == {"run-01", "run-03"}
        assert names("tags.group = 'odd' and status = 'finished'") == {"run-01", "run-03"}
        assert names("name like 'run-1%'") == {"run-10", "run-11"}
        assert len(names("status != 'finished'")) == 8
        assert names(f"run_id = '{ids[5]}'") == {"run-05"}
        run5 = store.get_run(ids[5])
        assert names(f"start_time > {run5.start_time}") == {f"run-{i:02d}" for i in range(6, 12)}

    def test_search_orders_and_paginates(self, store: MetadataStore) -> None:
        exp_id, _ = self._populate(store)
        page = store.search_runs([exp_id], order_by=["metrics.acc DESC"], max_results=5)
        assert [r.name for r in page.runs] == ["run-11", "run-10", "run-09", "run-08", "run-07"]
        seen = [r.name for r in page.runs]
        while page.next_page_token:
            page = store.search_runs([exp_id], order_by=["metrics.acc DESC"], max_results=5, page_token=page.next_page_token)
            seen.extend(r.name for r in page.runs)
        assert seen == [f"run-{i:02d}" for i in range(11, -1, -1)]
        by_param = store.search_runs([exp_id], order_by=["params.model", "params.lr DESC"], max_results=3).runs
        assert [r.name for r in by_param] == ["run-10", "run-08", "run-06"]
        default = store.search_runs([exp_id], max_results=2).runs  # newest first
        assert [r.name for r in default] == ["run-11", "run-10"]
        assert default[0].metrics["acc"].value == pytest.approx(1.1)

    @pytest.mark.parametrize(
        "filter, needle",
        [
            ("metrics.acc > 'high'", "compares with a number"),
            ("colour = 'red'", "unknown field"),
            ("metrics.acc >", "needs a field, an operator and a value"),
            ("status = 'sleeping'", "not one of"),
            ("metrics.acc > 1 or metrics.acc < 0", "expected 'and'"),
        ],
    )
    def test_bad_search_is_refused(self, store: MetadataStore, filter: str, needle: str) -> None:
        with pytest.raises(InvalidArgument, match=needle):
            store.search_runs(None, filter=filter)

    def test_bad_search_arguments(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidArgument, match="max_results"):
            store.search_runs(None, max_results=0)
        with pytest.raises(InvalidArgument, match="order_by"):
            store.search_runs(None, order_by=["metrics.acc sideways"])
        with pytest.raises(InvalidArgument, match="page_token"):
            store.search_runs(None, page_token="garbage!")

    def test_concurrent_experiment_creation_gives_one_experiment(self, store: MetadataStore) -> None:
        import threading

        name = unique()
        got: list[int] = []

        def create() -> None:
            got.append(store.get_or_create_experiment(name).id)

        threads = [threading.Thread(target=create) for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(set(got)) == 1 and len(got) == 6
