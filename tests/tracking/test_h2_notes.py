"""Run descriptions (notes) and deleting/restoring runs and experiments from the SDK (issue 13): the fluent API,
``ActiveRun`` and ``Client``, on the store a fresh folder gets and on a real keel server."""

from __future__ import annotations

import pytest

import keel
from keel.core.entities import NOTE_TAG, RunStatus, ViewType
from keel.core.errors import Conflict, InvalidArgument, KeelError, NotFound
from keel.tracking.client import Client


def test_description_from_start_run_then_replaced_by_set_description() -> None:
    with keel.start_run(experiment="notes", description="first try: **raw** text\nsecond line", tags={"t": "1"}) as run:
        assert keel.get_client().get_run(run.id).description == "first try: **raw** text\nsecond line"
        keel.set_description("baseline with class weights")
    stored = keel.get_client().get_run(run.id)
    assert stored.description == "baseline with class weights"
    assert stored.tags == {"t": "1", NOTE_TAG: "baseline with class weights"}


def test_active_run_and_client_set_descriptions() -> None:
    client = keel.get_client()
    with keel.start_run(experiment="notes") as run:
        assert run.get().description is None
        run.set_description("from the run handle")
        assert run.get().description == "from the run handle"
    client.set_description(run.id, "after the run ended")  # notes may change once the run is over
    assert client.get_run(run.id).description == "after the run ended"


def test_a_description_that_is_not_text_is_refused_before_anything_is_written() -> None:
    with pytest.raises(InvalidArgument, match="description"):
        keel.start_run(experiment="notes", description=42)  # type: ignore[arg-type]
    assert keel.active_run() is None
    with keel.start_run(experiment="notes") as run:
        with pytest.raises(InvalidArgument, match="description"):
            keel.set_description(["not", "text"])  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="at most"):
            keel.set_description("x" * 10_000)
    assert keel.get_client().get_run(run.id).description is None
    with pytest.raises(KeelError, match="no active run"):
        keel.set_description("no run is active")


def test_fluent_delete_and_restore_run_hide_it_from_search_runs() -> None:
    with keel.start_run(experiment="life") as kept:
        keel.log_metric("auc", 0.9)
    with keel.start_run(experiment="life") as gone:
        keel.log_metric("auc", 0.8)
    keel.delete_run(gone.id)
    assert [r.id for r in keel.search_runs("life", output="list")] == [kept.id]
    assert list(keel.search_runs("life")["run_id"]) == [kept.id]  # the DataFrame too
    assert [r.id for r in keel.search_runs("life", output="list", view="deleted")] == [gone.id]
    assert {r.id for r in keel.search_runs("life", output="list", view=ViewType.ALL)} == {kept.id, gone.id}
    assert keel.get_client().get_run(gone.id).deleted
    keel.restore_run(gone.id)
    assert {r.id for r in keel.search_runs("life", output="list")} == {kept.id, gone.id}


def test_deleting_the_active_run_refuses_its_later_writes_with_a_clear_error() -> None:
    run = keel.start_run(experiment="life")
    keel.log_metric("loss", 1.0)
    keel.delete_run(run.id)  # what was buffered for it is stored first
    assert [m.value for m in keel.get_client().get_metric_history(run.id, "loss")] == [1.0]
    with pytest.raises(Conflict, match=f"run {run.id} is deleted.*keel runs restore {run.id[:12]}"):
        keel.log_param("lr", 0.1)
    with pytest.raises(Conflict, match="deleted"):
        keel.end_run()  # refused, and no longer the active run
    assert keel.active_run() is None
    keel.restore_run(run.id)
    assert keel.get_client().get_run(run.id).status is RunStatus.RUNNING  # the refused end changed nothing
    keel.get_client().end_run(run.id)
    assert keel.get_client().get_run(run.id).status is RunStatus.FINISHED


def test_delete_and_restore_experiment_by_name_or_id() -> None:
    with keel.start_run(experiment="old-exp") as run:
        pass
    keel.delete_experiment("old-exp")
    client = keel.get_client()
    assert "old-exp" not in {e.name for e in client.list_experiments()}
    assert "old-exp" in {e.name for e in client.list_experiments(view="deleted")}
    assert keel.search_runs(output="list") == []
    with pytest.raises(Conflict, match="deleted"):
        keel.start_run(experiment="old-exp")
    experiment_id = client.get_run(run.id).experiment_id
    keel.restore_experiment(experiment_id)
    assert [r.id for r in keel.search_runs("old-exp", output="list")] == [run.id]
    with pytest.raises(NotFound):
        keel.delete_experiment("no-such-experiment")
    with pytest.raises(InvalidArgument, match="view"):
        client.list_experiments(view="sideways")


def test_client_over_a_keel_server(server_url: str) -> None:
    client = Client(server_url)
    run = client.create_run("h2-notes-remote", name="remote")
    client.set_description(run.id, "over HTTP")
    client.end_run(run.id)
    client.delete_run(run.id)
    assert run.id not in {r.id for r in client.search_runs("h2-notes-remote").runs}
    fetched = client.get_run(run.id)
    assert fetched.deleted and fetched.description == "over HTTP"
    client.restore_run(run.id)
    assert [r.id for r in client.search_runs("h2-notes-remote").runs] == [run.id]
    client.close()
