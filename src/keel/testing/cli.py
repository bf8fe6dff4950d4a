"""Run the ``keel`` command as a user would: a real subprocess, in a given folder, with a clean environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def keel_cmd(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "160", "HOME": str(cwd), "DO_NOT_TRACK": "true"}
    return subprocess.run(
        [sys.executable, "-m", "keel.cli.main", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout
    )
