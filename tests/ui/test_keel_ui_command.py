"""``keel ui``: the UI of this folder's store on 127.0.0.1, open without signing in while the store has no users; in
a folder without a store it says so and creates none."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

import keel
from keel.testing.cli import keel_cmd
from keel.testing.services import free_port


def test_keel_ui_serves_this_folders_store(tmp_path: Path) -> None:
    client = keel.Client(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    run = client.create_run("ui-command", "visible-run")
    client.end_run(run.id)
    client.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "keel.cli.main", "ui", "--no-browser", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        _wait_listening(f"http://127.0.0.1:{port}/api/v1/health", proc)
        home = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True, timeout=30)
        assert home.status_code == 200 and "ui-command" in home.text
        runs = httpx.get(f"http://127.0.0.1:{port}/ui/runs", params={"experiment": "ui-command"}, timeout=30)
        assert runs.status_code == 200 and "visible-run" in runs.text
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/ui/" in output


def _wait_listening(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"keel ui exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_keel_ui_without_a_store_creates_none(tmp_path: Path) -> None:
    done = keel_cmd(tmp_path, "ui", "--no-browser", "--port", str(free_port()))
    assert done.returncode == 1 and "no keel store" in done.stderr, done.stderr
    assert not (tmp_path / ".keel").exists()
