"""A SQLite writer blocked on another process's write lock says once, after ~2 s, what it waits for, keeps waiting
to the total budget, and then fails with keel's error naming the store (issue 13: "waits 43 s in silence").

Two real processes: a holder keeping ``BEGIN IMMEDIATE`` open on a tmp store, and a keel writer whose stderr is
read line by line as it arrives, as a user's terminal would show it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from keel.store.metadata.sql.store import SqlStore

pytestmark = pytest.mark.slow

_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE experiments SET name = name")
    print("held", flush=True)
    sys.stdin.readline()  # until the test says so (or closes the pipe)
    conn.execute("COMMIT")
    """
)

_WRITER = textwrap.dedent(
    """
    import sys, time
    from keel.store.metadata.sql import engine
    engine.SQLITE_BUSY_TIMEOUT_S = float(sys.argv[2])
    from keel.core.errors import KeelError
    from keel.store.metadata.sql.store import SqlStore
    store = SqlStore("sqlite:///" + sys.argv[1])
    print("writing", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        run = store.create_run(store.get_or_create_experiment("locked").id, "after-the-lock")
    except KeelError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
    else:
        print(f"OK {run.name}", flush=True)
    print(f"WAITED {time.monotonic() - started:.2f}", flush=True)
    """
)


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "keel.db"
    store = SqlStore(f"sqlite:///{path}")
    store.get_or_create_experiment("locked")
    store.close()
    return path


def _hold(path: Path) -> subprocess.Popen[str]:
    """Another process holding the store's write lock until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _write(path: Path, budget: float, holder: subprocess.Popen[str] | None = None) -> tuple[list[tuple[float, str]], str]:
    """Run the keel writer; its stderr lines with the second each arrived, and its stdout. With ``holder``: the lock
    is let go 1 s after the writer says it waits."""
    started = time.monotonic()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(budget)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert writer.stderr is not None and writer.stdout is not None
    lines: list[tuple[float, str]] = []
    for line in writer.stderr:
        lines.append((time.monotonic() - started, line.rstrip("\n")))
        if holder is not None and "waiting for the write lock" in line:
            time.sleep(1.0)
            assert holder.stdin is not None
            holder.stdin.write("release\n")
            holder.stdin.flush()
    out = writer.stdout.read()
    assert writer.wait(timeout=60) == 0
    return lines, out


def _since_writing(lines: list[tuple[float, str]], needle: str) -> float:
    start = next(at for at, line in lines if line == "writing")
    return next(at for at, line in lines if needle in line) - start


def test_a_blocked_writer_says_once_after_two_seconds_what_it_waits_for_then_writes(tmp_path: Path) -> None:
    path = _store(tmp_path)
    holder = _hold(path)
    try:
        lines, out = _write(path, 30.0, holder)
    finally:
        holder.communicate(timeout=30)
    assert "OK after-the-lock" in out  # it kept waiting after the notice, and wrote once the lock was let go
    assert float(out.split("WAITED ")[1]) > 2.5
    notices = [line for _, line in lines if "waiting for the write lock" in line]
    assert len(notices) == 1, lines  # once, not once per retry
    assert str(path) in notices[0] and "will wait up to 30 s" in notices[0]
    assert f"pid {holder.pid}" in notices[0]  # who has the store open, when the OS says so
    assert 1.8 < _since_writing(lines, "waiting for the write lock") < 3.5  # after ~2 s of waiting, not at once
    assert [line for _, line in lines if line.strip()] == ["writing", notices[0]]  # nothing else (no traceback)


def test_a_writer_that_never_gets_the_lock_fails_with_keels_error_naming_the_store_and_the_limit(tmp_path: Path) -> None:
    path = _store(tmp_path)
    holder = _hold(path)
    try:
        lines, out = _write(path, 3.0)
    finally:
        holder.communicate(timeout=30)
    error = out.splitlines()[0]
    assert error.startswith("ERROR StoreUnavailable: ")
    assert str(path) in error and "3 s" in error and "gave up" in error
    assert "database is locked" not in error
    assert 2.8 < float(out.split("WAITED ")[1]) < 5.0  # the budget, not 8 retries of it
    assert sum("waiting for the write lock" in line for _, line in lines) == 1


def test_an_uncontended_write_says_nothing(tmp_path: Path) -> None:
    path = _store(tmp_path)
    lines, out = _write(path, 30.0)
    assert "OK after-the-lock" in out
    assert float(out.split("WAITED ")[1]) < 1.0
    assert [line for _, line in lines if line.strip()] == ["writing"]
