"""Issue 9: the typed context below the capabilities, one walker, one rule for "which value is best"."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pandas as pd
import pytest

import keel
from keel import context
from keel.context import Context
from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata import open_store
from keel.tracking.client import Client
from keel.tracking.fluent import attach

CAPABILITIES = ("keel.data", "keel.registry", "keel.evaluation")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})


def test_two_contexts_side_by_side_each_write_to_their_own_store(tmp_path: Path) -> None:
    a = Context(f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "a-blobs"))
    b = Context(f"sqlite:///{tmp_path / 'b.db'}", str(tmp_path / "b-blobs"))
    keel.set_client(Client(a))  # a is the current context; b is only used when passed
    client_b = Client(b)
    run = client_b.create_run("ctx", "on-b", capture_code=False)
    with attach(run.id, client_b):  # the current run (this thread's) lives in b
        assert a.run_id == b.run_id == run.id
        version = keel.data.log(_frame(), "orders", ctx=b)
    assert b.store.datasets.get_version("orders", None).content_hash == version.content_hash
    links = b.store.datasets.versions_of_run(run.id)
    assert [(link.version.id, link.direction) for link in links] == [(version.id, "output")]
    with pytest.raises(NotFound):
        a.store.datasets.get_version("orders", None)  # nothing leaked into the current context's store
    assert keel.data.get("orders", ctx=b, run=False).equals(_frame())
    assert (tmp_path / "b-blobs").is_dir() and not (tmp_path / "a-blobs").exists()


def test_registry_and_gate_read_the_context_they_are_given(tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    b = Context(f"sqlite:///{tmp_path / 'b.db'}", str(tmp_path / "b-blobs"))
    client_b = Client(b)
    run = client_b.create_run("ctx", capture_code=False)
    with attach(run.id, client_b):
        client_b.log_metric(run.id, "auc", 0.93)  # buffered: the registry snapshot must flush it through the context
        version = keel.registry.register(model, "m", ctx=b)
    assert version.source_run == run.id and version.metrics == {"auc": 0.93}
    assert keel.registry.resolve("models:/m", ctx=b).version == 1
    client_b.end_run(run.id)
    assert keel.evaluation.gate(run.id, ["auc >= 0.9"], ctx=b).passed
    with pytest.raises(NotFound):
        keel.evaluation.gate(run.id, ["auc >= 0.9"])  # the current context is another store


def test_the_current_run_is_per_thread_and_readable_from_any_context() -> None:
    ctx = context.current()
    assert ctx.run_id is None
    seen: list[str | None] = []
    with keel.start_run(experiment="ctx") as run:
        assert ctx.run_id == run.id and context.current_run_id() == run.id
        worker = threading.Thread(target=lambda: seen.append(ctx.run_id))
        worker.start()
        worker.join()
    assert seen == [None]  # another thread has its own stack
    assert ctx.run_id is None


def test_set_client_sets_the_current_context_and_client_context_is_exposed(tmp_path: Path) -> None:
    client = Client(f"sqlite:///{tmp_path / 'c.db'}")
    assert isinstance(client.context, Context) and client.store is client.context.store
    keel.set_client(client)
    assert context.current() is client.context and keel.get_client() is client
    other = Context(f"sqlite:///{tmp_path / 'd.db'}")
    context.set_current(other)
    assert keel.get_client().context is other  # the fluent client follows the current context
    keel.set_client(None)
    assert context.current() is not other and keel.get_client().context is context.current()


def test_context_says_where_its_stores_are_for_worker_processes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'w.db'}"
    ctx = Context(uri, str(tmp_path / "blobs"))
    assert ctx.store_uri == uri and Path(ctx.artifacts_url) == tmp_path / "blobs"
    assert ctx.shared_source is None
    opened = Context(open_store(uri), str(tmp_path / "blobs"))
    assert opened.store_uri == uri  # a store opened from a URI still knows it


def test_capabilities_do_not_import_tracking_nor_each_other() -> None:
    import grimp

    graph = grimp.build_graph("keel")
    for package in CAPABILITIES:
        for module in graph.find_descendants(package) | {package}:
            imported = graph.find_modules_directly_imported_by(module)
            siblings = {m for m in imported if m.startswith(("keel.tracking", *CAPABILITIES)) and not m.startswith(package)}
            assert not siblings, f"{module} imports {sorted(siblings)}"


def test_one_walker_rebuilds_step_arguments_and_finds_outputs() -> None:
    from keel.pipelines.steps import StepOutput, find_outputs, walk

    a, b = StepOutput("a"), StepOutput("b", 0)
    args = ([a, {"k": (b, 3)}], {"n": 1})
    assert find_outputs(args) == [a, b]
    rebuilt = walk(args, lambda v: f"<{v.node_id}>" if isinstance(v, StepOutput) else v)
    assert rebuilt == (["<a>", {"k": ("<b>", 3)}], {"n": 1})


def test_which_value_is_best_is_one_rule_for_trials_reports_and_runs() -> None:
    from keel.core import ranking
    from keel.tracking.report import best_value
    from keel.tune.report import study_html
    from keel.tune.trials import TrialRecord, best_trial

    trials = [
        TrialRecord(0, "r0", {}, "complete", math.nan),
        TrialRecord(1, "r1", {}, "complete", 2.0),
        TrialRecord(2, "r2", {}, "complete", math.inf),  # an overflow is not a winner
        TrialRecord(3, "r3", {}, "complete", 3.0),
    ]
    best = best_trial(trials, "maximize")
    assert best is not None and best.number == 3
    assert "<td class=best>3</td>" in study_html(trials, "score", "maximize").replace(".0<", "<")
    values = [t.value for t in trials]
    assert best_value("accuracy", values) == ranking.best_value(values, "maximize") == 3.0
    assert best_value("val_loss", values) == ranking.best_value(values, "minimize") == 2.0


def test_a_context_on_an_open_store_cannot_name_it_to_workers(tmp_path: Path) -> None:
    ctx = Context(open_store(f"sqlite:///{tmp_path / 'u.db'}"))
    ctx.store.uri = None  # type: ignore[attr-defined]  # a store object with no URI to reopen it from
    with pytest.raises(InvalidArgument):
        _ = ctx.store_uri
