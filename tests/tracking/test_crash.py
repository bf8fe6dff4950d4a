"""SIGKILL during logging: what was flushed survives, at most one flush interval is lost, the run reads as killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.core.entities import RunStatus
from keel.store.metadata import open_store
from keel.testing.services import keel_server
from keel.testing.store_contract import unique

HERE = Path(__file__).parent
FLUSH_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 1.5
SLACK_MS = 400  # scheduling on a busy 2-core machine: time for the last flush's transaction to commit


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def crash_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``store_uri``, but the REST case gets its own server with a short heartbeat timeout."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keel.db'}"
    elif request.param == "postgres":
        yield request.getfixturevalue("fresh_postgres_url")
    else:
        env = {"KEEL_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT)}
        with keel_server(f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "artifacts"), env) as url:
            yield url


@pytest.mark.slow
def test_sigkill_loses_at_most_the_last_flush_interval(crash_store_uri: str) -> None:
    store_uri = crash_store_uri
    env = {**os.environ, "KEEL_FLUSH_INTERVAL": str(FLUSH_INTERVAL), "KEEL_HEARTBEAT_INTERVAL": "0.2"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "logger_proc.py"), "steady", store_uri, unique("crash"), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().decode().strip()
    reader = open_store(store_uri, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    time.sleep(HEARTBEAT_TIMEOUT + 1.0)  # longer than the timeout: only heartbeats keep it running
    assert reader.get_run(run_id).status is RunStatus.RUNNING
    killed_at_ms = time.time_ns() // 1_000_000
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    history = reader.get_metric_history(run_id, "loss")
    assert len(history) > 1000  # ~2.5 s of one value per millisecond
    assert [m.step for m in history] == list(range(len(history)))  # nothing missing in the middle
    lost_ms = killed_at_ms - history[-1].timestamp
    assert lost_ms <= FLUSH_INTERVAL * 1000 + SLACK_MS, f"lost the last {lost_ms} ms of values"

    time.sleep(HEARTBEAT_TIMEOUT + 0.5)
    assert reader.get_run(run_id).status is RunStatus.KILLED
    assert [r.id for r in reader.search_runs(None, filter=f"run_id = '{run_id}' and status = 'killed'").runs] == [run_id]
    reader.close()
