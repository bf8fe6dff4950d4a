"""``keel serve`` refuses what it cannot serve with one line and exit code 2, before anything listens."""

from __future__ import annotations

import socket
from pathlib import Path

from keel.testing.cli import keel_cmd


def test_an_unknown_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that is free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = keel_cmd(tmp_path, "serve", "models:/nope/1", "--port", str(port))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope" in lines[0] and "Traceback" not in result.stderr


def test_a_port_in_use_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = keel_cmd(tmp_path, "serve", "models:/nope/1", "--port", str(port))
    assert result.returncode == 2
    assert "in use" in result.stderr and "Uvicorn running" not in result.stderr + result.stdout
