"""Run the ``keel`` command as a user would: a real subprocess, in a given folder, with a clean environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The folder that holds the ``keel`` package this module belongs to (``src/`` in a checkout): the subprocess
# imports it first, so the command under test is this tree, whatever keel the interpreter has installed.
KEEL_SOURCE = str(Path(__file__).resolve().parents[2])


def keel_env(home: Path) -> dict[str, str]:
    """The environment of a ``keel`` subprocess: this tree on ``PYTHONPATH``, nothing else from the caller's."""
    return {"PATH": "/usr/bin:/bin", "COLUMNS": "160", "HOME": str(home), "DO_NOT_TRACK": "true", "PYTHONPATH": KEEL_SOURCE}


def keel_cmd(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``keel *args`` in ``cwd`` (also its HOME), run by this interpreter from this tree."""
    command = [sys.executable, "-m", "keel.cli.main", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=keel_env(cwd), timeout=timeout)
