"""The metric writer through a real outage: a keel server stopped mid-run and restarted on the same port and database.

Values added while the store is unavailable stay in the writer (``flush`` and ``flush_into`` keep them) and, once the
server is back, every one of them is stored exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keel.core.entities import RunStatus
from keel.core.errors import StoreUnavailable
from keel.store.metadata.base import MetricRow
from keel.store.metadata.rest.client import RestStore
from keel.testing.services import free_port, keel_server
from keel.tracking.writer import MetricWriter


def _rows(run_id: str, start: int, stop: int, key: str = "loss") -> list[MetricRow]:
    return [(run_id, key, float(i), i, 1_000 + i) for i in range(start, stop)]


class _Outage:
    """One server database and port, so the server can be stopped and started again at the same address."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = f"sqlite:///{tmp_path / 'server.db'}"
        self.artifacts = str(tmp_path / "artifacts")
        self.port = free_port()

    def server(self):  # type: ignore[no-untyped-def]
        return keel_server(self.store, self.artifacts, port=self.port)


def _history(url: str, run_id: str, key: str = "loss") -> list[tuple[int, float]]:
    reader = RestStore(url)
    try:
        return [(m.step, m.value) for m in reader.get_metric_history(run_id, key)]
    finally:
        reader.close()


def test_flush_and_flush_into_keep_values_while_the_server_is_down_and_store_them_once_after(tmp_path: Path) -> None:
    outage = _Outage(tmp_path)
    with outage.server() as url:
        store = RestStore(url, timeout=5)
        writer = MetricWriter(store, flush_interval=3600)  # only the explicit flushes below send
        experiment = store.get_or_create_experiment("outage")
        run, other = store.create_run(experiment.id), store.create_run(experiment.id)
        writer.extend(_rows(run.id, 0, 100))
        writer.flush()
    # the server is gone: nothing is lost, whatever is asked of the writer
    writer.extend(_rows(run.id, 100, 200))
    with pytest.raises(StoreUnavailable):
        writer.flush()
    writer.extend(_rows(run.id, 200, 300) + _rows(other.id, 0, 50))
    with pytest.raises(StoreUnavailable):
        writer.flush()  # the batch that failed goes first and fails again; the new values wait behind it
    writer.extend(_rows(run.id, 300, 310))
    with pytest.raises(StoreUnavailable):  # ending the run hands its values to end_run, which fails: they go back
        writer.flush_into(
            lambda rows, batch_id: store.end_run(run.id, RunStatus.FINISHED, metrics=rows, batch_id=batch_id), run.id
        )
    with outage.server() as url:  # restarted: same port, same database
        writer.flush()
        assert store.get_run(run.id).status is RunStatus.RUNNING  # the failed end was not applied
        writer.flush_into(
            lambda rows, batch_id: store.end_run(run.id, RunStatus.FINISHED, metrics=rows, batch_id=batch_id), run.id
        )
        assert _history(url, run.id) == [(i, float(i)) for i in range(310)]  # each value once, none lost
        assert _history(url, other.id) == [(i, float(i)) for i in range(50)]  # the other run's values were kept too
        assert store.get_run(run.id).status is RunStatus.FINISHED
        writer.close()
        store.close()


def test_the_background_thread_resends_kept_values_once_the_server_is_back(tmp_path: Path) -> None:
    outage = _Outage(tmp_path)
    with outage.server() as url:
        store = RestStore(url, timeout=5)
        run = store.create_run(store.get_or_create_experiment("background").id)
    writer = MetricWriter(store, flush_interval=0.05)
    writer.extend(_rows(run.id, 0, 500))
    time.sleep(2.0)  # the thread tries, fails (StoreUnavailable) and backs off, more than once
    writer.extend(_rows(run.id, 500, 600))
    with outage.server() as url:
        deadline = time.monotonic() + 60
        while (history := _history(url, run.id)) != [(i, float(i)) for i in range(600)]:
            assert len(history) <= 600 and time.monotonic() < deadline, f"{len(history)} values after the restart"
            time.sleep(0.1)
        writer.close()  # a last flush sends nothing more
        assert _history(url, run.id) == [(i, float(i)) for i in range(600)]
        store.close()
