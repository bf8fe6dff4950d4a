"""8 processes logging at full speed into one store: no lock error reaches them, every value arrives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel.core.entities import RunStatus
from keel.store.metadata import open_store
from keel.testing.store_contract import unique

HERE = Path(__file__).parent
PROCESSES = 8
VALUES = 20_000


@pytest.mark.slow
def test_eight_processes_log_concurrently(store_uri: str) -> None:
    experiment = unique("concurrent")
    env = {**os.environ, "KEEL_FLUSH_INTERVAL": "0.05"}  # many small transactions: the worst case for locking
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "logger_proc.py"), "full", store_uri, experiment, str(VALUES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"locked" not in err and b"Traceback" not in err, err.decode()[-2000:]
    run_ids = [out.decode().split()[0] for out, _ in outputs]
    store = open_store(store_uri)
    for run_id in run_ids:
        run = store.get_run(run_id)
        assert run.status is RunStatus.FINISHED
        history = store.get_metric_history(run_id, "loss")
        assert [m.step for m in history] == list(range(VALUES))
        assert [m.value for m in history] == [float(i) for i in range(VALUES)]
        assert run.metrics["loss"].value == VALUES - 1
        assert run.params == {f"p{i}": str(i) for i in range(0, VALUES, 5000)}
    store.close()
