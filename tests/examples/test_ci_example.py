"""The CI example works: its `run:` steps run in order, as a CI machine would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from keel.testing.cli import KEEL_SOURCE

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "train-and-gate.yml"


def _tools(folder: Path) -> Path:
    """``python`` and ``keel`` as the steps call them, both this interpreter and this tree (whatever is first on PATH)."""
    folder.mkdir()
    for name, command in (("python", f'"{sys.executable}"'), ("keel", f'"{sys.executable}" -m keel.cli.main')):
        tool = folder / name
        tool.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        tool.chmod(0o755)
    return folder


def test_workflow_steps_version_train_tune_and_gate(tmp_path: Path) -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["train"]["steps"]
    commands = [s["run"] for s in steps if "run" in s and not s["run"].startswith("pip install")]
    assert len(commands) == 3
    env = {
        **os.environ,
        "PATH": f"{_tools(tmp_path / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": KEEL_SOURCE,
        "KEEL_HOME": str(tmp_path / ".keel"),
        "DO_NOT_TRACK": "true",
    }
    for command in commands:
        command = command.replace("--trials 6", "--trials 4").replace("--out runs.env", f"--out {tmp_path / 'runs.env'}")
        command = command.replace(". ./runs.env", f". {tmp_path / 'runs.env'}").replace(
            "--json-out gate.json", f"--json-out {tmp_path / 'gate.json'}"
        )
        done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if "keel gate" in command:
            assert done.returncode in (0, 1), done.stderr  # 0 pass, 1 fail: both are verdicts
            result = json.loads((tmp_path / "gate.json").read_text())
            assert result["passed"] == (done.returncode == 0) and len(result["checks"]) == 2
            assert "gate passed" in done.stdout or "gate failed" in done.stdout
        else:
            assert done.returncode == 0, done.stderr
    ids = dict(line.split("=") for line in (tmp_path / "runs.env").read_text().split())
    assert set(ids) == {"BASELINE", "CANDIDATE", "STUDY"}
    assert (tmp_path / ".keel" / "keel.db").is_file() and not (ROOT / ".keel").exists()
