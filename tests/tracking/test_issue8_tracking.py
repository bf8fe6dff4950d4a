"""Issue 8 (tracking): run stacks per thread and task, explicit parents, atomic log_metrics, JSON params,
and metric batches that a lost answer cannot double."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import keel
from keel.core.entities import RunStatus
from keel.core.errors import InvalidArgument, StoreUnavailable
from keel.core.validation import param_to_str
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore, MetricRow
from keel.store.metadata.rest.client import RestStore
from keel.store.metadata.sql.store import SqlStore
from keel.testing.services import keel_server
from keel.tracking.client import Client
from keel.tracking.fluent import attach
from keel.tracking.writer import MAX_BACKOFF_S, MetricWriter

# --- the run stack belongs to a thread (and to an asyncio task) ------------------------------------------


def test_a_run_started_in_another_thread_is_not_a_child_of_this_threads_run() -> None:
    seen: dict[str, Any] = {}

    def work() -> None:
        seen["active_before"] = keel.active_run()
        with keel.start_run(experiment="worker") as inner:
            seen["inner"] = inner.id
            with keel.start_run() as nested:  # nesting inside the thread still works
                seen["nested"] = nested.id
                active = keel.active_run()
                seen["active"] = active.id if active else None

    with keel.start_run(experiment="main") as outer:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert keel.active_run() is outer
    client = keel.get_client()
    assert seen["active_before"] is None and seen["active"] == seen["nested"]
    assert client.get_run(seen["inner"]).parent_run_id is None
    assert client.get_run(seen["nested"]).parent_run_id == seen["inner"]
    assert client.get_run(outer.id).status is RunStatus.FINISHED


def test_asyncio_tasks_keep_their_own_stacks() -> None:
    async def job(name: str) -> tuple[str, str, bool]:
        with keel.start_run(experiment="async", name=name) as run:
            await asyncio.sleep(0.02)  # the other task starts its run meanwhile
            with keel.start_run(name=f"{name}-child") as child:
                await asyncio.sleep(0.02)
                active = keel.active_run()
                return run.id, child.id, active is not None and active.id == child.id

    async def both() -> list[tuple[str, str, bool]]:
        return list(await asyncio.gather(job("a"), job("b")))

    client = keel.get_client()
    for run_id, child_id, child_was_active in asyncio.run(both()):
        assert child_was_active
        assert client.get_run(child_id).parent_run_id == run_id
    assert keel.active_run() is None


def test_attach_in_a_worker_thread_leaves_the_main_threads_run_active() -> None:
    attached, release = threading.Event(), threading.Event()
    seen: dict[str, str] = {}
    with keel.start_run(experiment="steps") as parent:
        client = keel.get_client()
        step = client.create_run(None, "step", parent_run_id=parent.id, capture_code=False)

        def work() -> None:  # what a pipeline executor's worker does for a step
            with attach(step.id) as run:
                keel.log_metric("m", 1.0)
                keel.log_param("p", 1)
                with keel.start_run(name="inside-step") as inner:
                    seen["inner"] = inner.id
                attached.set()
                release.wait(10)
                seen["still"] = run.id

        thread = threading.Thread(target=work)
        thread.start()
        assert attached.wait(10)
        assert keel.active_run() is parent  # not the step another thread attached
        release.set()
        thread.join()
        client.end_run(step.id)
    assert seen["still"] == step.id
    assert client.get_run(seen["inner"]).parent_run_id == step.id
    stored = client.get_run(step.id)
    assert stored.params == {"p": "1"} and stored.metrics["m"].value == 1.0


def test_interpreter_exit_ends_runs_left_open_by_any_thread(tmp_path: Path) -> None:
    script = tmp_path / "leave_open.py"
    script.write_text(
        "import threading, keel\n"
        "main = keel.start_run(experiment='exit')\n"
        "box = {}\n"
        "def work():\n"
        "    box['worker'] = keel.start_run(experiment='exit').id\n"
        "t = threading.Thread(target=work); t.start(); t.join()\n"
        "keel.log_metric('loss', 0.25)\n"
        "print(main.id, box['worker'], flush=True)\n"
    )
    env = {**os.environ, "KEEL_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120, check=True)
    main_id, worker_id = done.stdout.split()
    store = open_store(f"sqlite:///{tmp_path / 'home' / 'keel.db'}")
    main, worker = store.get_run(main_id), store.get_run(worker_id)
    assert main.status is RunStatus.FINISHED and main.metrics["loss"].value == 0.25
    assert worker.status is RunStatus.FINISHED and worker.parent_run_id is None
    store.close()


def test_an_explicit_parent_takes_the_child_to_the_parents_experiment() -> None:
    with keel.start_run(experiment="exp-a") as a:
        pass
    with keel.start_run(experiment="exp-b") as b:
        with keel.start_run(parent=a.id) as by_id:
            pass
        with keel.start_run(parent=a) as by_run:
            pass
        with keel.start_run(parent=a.id, experiment="exp-c") as elsewhere:
            pass
        with keel.start_run() as implied:
            pass
    client = keel.get_client()
    for child in (by_id, by_run):
        stored = client.get_run(child.id)
        assert stored.parent_run_id == a.id and stored.experiment_id == a.info.experiment_id
    stored = client.get_run(elsewhere.id)
    assert stored.parent_run_id == a.id and client.store.get_experiment(stored.experiment_id).name == "exp-c"
    stored = client.get_run(implied.id)
    assert stored.parent_run_id == b.id and stored.experiment_id == b.info.experiment_id


# --- log_metrics validates everything before buffering anything ---------------------------------------


def test_log_metrics_with_one_bad_value_stores_none_of_them() -> None:
    with keel.start_run(experiment="atomic") as run:
        with pytest.raises(InvalidArgument, match="m2"):
            keel.log_metrics({"m1": 1, "m2": "bad"})  # type: ignore[dict-item]  # a bad value on purpose
        with pytest.raises(InvalidArgument, match="m2"):
            run.log_metrics({"m1": 1, "m2": "bad"})  # type: ignore[dict-item]  # a bad value on purpose
        with pytest.raises(InvalidArgument, match="m2"):
            run.client.log_metrics(run.id, {"m1": 1, "m2": "bad"})  # type: ignore[dict-item]  # a bad value on purpose
        with pytest.raises(InvalidArgument, match="metric key"):
            keel.log_metrics({"m1": 1, "bad key!": 2})
        with pytest.raises(InvalidArgument, match="step"):
            keel.log_metrics({"m1": 1}, step=1.5)  # type: ignore[arg-type]
        keel.log_metrics({"m1": 5})  # the failed calls used no step
    client = keel.get_client()
    assert [(m.step, m.value) for m in client.get_metric_history(run.id, "m1")] == [(0, 5.0)]
    assert set(client.get_run(run.id).metrics) == {"m1"}


# --- params are stored as JSON when they are not strings or numbers --------------------------------------


def test_params_that_are_not_strings_or_numbers_are_stored_as_json() -> None:
    values: dict[str, Any] = {
        "none": None,
        "flag": True,
        "off": False,
        "conf": {"depth": 3, "loss": "log", "extra": None},
        "layers": [64, 32],
        "shape": (2, 3),
        "name": "adam",
        "lr": 0.1,
        "epochs": 10,
        "nan": float("nan"),
    }
    expected = {
        "none": "null",
        "flag": "true",
        "off": "false",
        "conf": '{"depth": 3, "loss": "log", "extra": null}',
        "layers": "[64, 32]",
        "shape": "[2, 3]",
        "name": "adam",
        "lr": "0.1",
        "epochs": "10",
        "nan": "nan",
    }
    with keel.start_run(experiment="params", params={"start": None}) as run:
        keel.log_param("p", None)
        keel.log_params(values)
        run.log_param("q", {"a": [1, None]})
    stored = keel.get_client().get_run(run.id).params
    assert stored == {"start": "null", "p": "null", "q": '{"a": [1, null]}', **expected}


def test_param_to_str_of_numpy_values_and_unusual_containers() -> None:
    np = pytest.importorskip("numpy")
    assert param_to_str("p", np.bool_(True)) == "true" and param_to_str("p", np.bool_(False)) == "false"
    assert param_to_str("p", np.float64(0.5)) == "0.5" and param_to_str("p", np.int64(7)) == "7"
    assert param_to_str("p", {"w": np.array([1, 2]), "s": {3, 1}}) == '{"w": [1, 2], "s": [1, 3]}'
    assert param_to_str("p", Path("/data/x.csv")) == "/data/x.csv"


def test_a_store_called_directly_stores_params_as_json(store: MetadataStore) -> None:
    """The conversion is the store's: a store given Python values (pipelines, REST callers) keeps the same text."""
    exp = store.get_or_create_experiment("params-direct")
    # Python values, not the str the ABC declares: the store converts what untyped callers send
    run = store.create_run(exp.id, params={"flag": True, "n": None, "d": {"a": 1}})  # type: ignore[dict-item]
    store.log_params(run.id, {"off": False, "layers": [64, 32], "lr": 0.1, "name": "adam"})  # type: ignore[dict-item]
    assert store.get_run(run.id).params == {
        "flag": "true",
        "n": "null",
        "d": '{"a": 1}',
        "off": "false",
        "layers": "[64, 32]",
        "lr": "0.1",
        "name": "adam",
    }


# --- a lost answer does not double the values --------------------------------------------------------------


class LostAnswers(SqlStore):
    """A real SqlStore whose first answers get lost after the commit, as with a client timeout."""

    def __init__(self, uri: str, lose: int) -> None:
        super().__init__(uri)
        self.lose = lose

    def _lost(self) -> None:
        if self.lose > 0:
            self.lose -= 1
            raise StoreUnavailable("read timed out (the write was committed)")

    def log_metrics(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        super().log_metrics(rows, batch_id=batch_id)
        self._lost()

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[MetricRow] = (),
        batch_id: str | None = None,
    ) -> None:
        super().end_run(run_id, status, end_time, metrics, batch_id=batch_id)
        self._lost()


def test_backoff_after_thousands_of_failures_still_raises_store_unavailable(tmp_path: Path) -> None:
    """A six-hour outage is over a thousand failed flushes: 2.0**1024 must not turn into an OverflowError."""
    store = LostAnswers(f"sqlite:///{tmp_path / 'k.db'}", lose=1)
    writer = MetricWriter(store, flush_interval=3600.0)  # a float, as configured: float * 2**1100 overflows
    run = store.create_run(store.get_or_create_experiment("outage").id)
    writer._failures = 1100  # as after 1100 failed flushes in a row
    writer.add((run.id, "loss", 0.5, 0, 1))
    with pytest.raises(StoreUnavailable):
        writer.flush()
    assert 0 < writer._retry_at - time.monotonic() <= MAX_BACKOFF_S
    writer.flush()  # the outage ends: one resend, applied once
    assert [m.value for m in store.get_metric_history(run.id, "loss")] == [0.5]
    writer.close()


def test_a_flush_whose_answer_was_lost_is_resent_under_its_id_and_stored_once(tmp_path: Path) -> None:
    store = LostAnswers(f"sqlite:///{tmp_path / 'k.db'}", lose=2)
    client = Client(store, str(tmp_path / "art"))
    run = client.create_run("lost", capture_code=False)
    for i in range(1000):
        client.log_metric(run.id, "loss", float(i), step=i)
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            client.flush()
    client.log_metric(run.id, "loss", 1000.0, step=1000)  # new values wait behind the resent batch
    client.flush()
    assert [m.value for m in store.get_metric_history(run.id, "loss")] == [float(i) for i in range(1001)]
    client.close()


def test_an_end_run_whose_answer_was_lost_does_not_store_its_values_twice(tmp_path: Path) -> None:
    store = LostAnswers(f"sqlite:///{tmp_path / 'k.db'}", lose=0)
    client = Client(store, str(tmp_path / "art"))
    run = client.create_run("lost-end", capture_code=False)
    client.log_metric(run.id, "acc", 0.9, step=0)
    store.lose = 1
    with pytest.raises(StoreUnavailable):
        client.end_run(run.id)  # committed, but the caller never heard
    client.flush()  # the values go again, under the end's batch id
    assert [m.value for m in store.get_metric_history(run.id, "acc")] == [0.9]
    assert store.get_run(run.id).status is RunStatus.FINISHED
    client.close()


def test_a_client_that_times_out_while_the_server_commits_stores_each_value_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a short client timeout a big batch was sent again and again (6.8 M values for 300,000)."""
    n = 300_000
    with keel_server(f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "artifacts")) as url:
        import httpx

        # the request goes out whole, but the answer to 300,000 values cannot come within 50 ms: the
        # first attempt times out while the server goes on to commit, as with a slow link or a busy server
        impatient = RestStore(url, timeout=httpx.Timeout(10.0, read=0.05))
        client = Client(impatient, str(tmp_path / "art"))
        client.writer.flush_interval = 3600  # only the explicit flushes below send
        run = client.create_run("impatient", capture_code=False)
        for i in range(n):
            client.log_metric(run.id, "loss", float(i), step=i)
        caplog.set_level(logging.WARNING, logger="keel.store")
        deadline = time.monotonic() + 120
        while True:
            try:
                client.flush()
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the resent batch never got an answer"
        assert "resending batch" in caplog.text  # the first answer was indeed lost
        client.end_run(run.id)
        reader = RestStore(url)
        history = reader.get_metric_history(run.id, "loss")
        assert len(history) == n and history[-1].value == n - 1
        assert reader.get_run(run.id).status is RunStatus.FINISHED
        reader.close()
        client.close()
