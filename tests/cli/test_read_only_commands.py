"""Commands that only read never create a store (issue 13): in a folder with no ``.keel`` here or above, each says so
in one line, exits 1, and leaves the folder as it was (no ``.keel``, no report, no export, no package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.testing.cli import keel_cmd

NO_STORE = "keel: no keel store here or in a parent folder (run keel quickstart, or set KEEL_STORE)\n"

READERS = [
    ["monitor", "status"],
    ["monitor", "alerts"],
    ["monitor", "alerts", "churn-hourly", "--state", "firing"],
    ["monitor", "report", "churn-hourly", "-o", "m.html"],
    ["lineage", "prediction", "req-1", "--deployment", "churn"],
    ["lineage", "dataset", "orders@1", "--json"],
    ["lineage", "served", "models:/churn@production", "--at", "2d"],
    ["compliance", "report", "models:/churn/1", "-o", "c.html"],
    ["audit", "verify"],
    ["audit", "verify", "--anchors", "anchors.txt"],
    ["audit", "export", "-o", "events.jsonl"],
    ["audit", "log"],
    ["audit", "anchor", "--to", "anchors.txt"],
    ["deploy", "list"],
    ["deploy", "show", "churn"],
    ["deploy", "history", "churn"],
    ["deploy", "compare", "churn", "--html", "cmp.html"],
    ["deploy", "package", "churn", "-o", "pkg"],
    ["data", "report", "orders", "-o", "p.html"],
    ["data", "drift", "orders@1", "orders@2"],
]


@pytest.mark.parametrize("args", READERS, ids=[" ".join(a[:2]) + f"-{i}" for i, a in enumerate(READERS)])
def test_a_reading_command_says_there_is_no_store_and_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    done = keel_cmd(folder, *args)
    assert done.returncode == 1, (args, done.stdout, done.stderr)
    assert done.stderr == NO_STORE, args
    assert done.stdout == ""
    assert list(folder.iterdir()) == [], args  # no .keel, nor any file the command would have written
    assert list(tmp_path.iterdir()) == [folder]


def test_bad_input_is_still_named_before_the_missing_store(tmp_path: Path) -> None:
    done = keel_cmd(tmp_path, "audit", "log", "--limit", "0")
    assert done.returncode == 2 and "--limit" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_with_a_store_the_same_commands_read_it(tmp_path: Path) -> None:
    from keel.tracking.client import Client

    Client(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts")).close()
    sub = tmp_path / "sub"
    sub.mkdir()
    for args, expected in ((["deploy", "list"], "No deployments yet"), (["monitor", "status"], "No monitors yet"),
                           (["audit", "log"], "no events"), (["monitor", "alerts"], "No alerts.")):  # fmt: skip
        done = keel_cmd(sub, *args)
        assert done.returncode == 0 and expected in done.stdout, (args, done.stdout, done.stderr)
    missing = keel_cmd(sub, "deploy", "show", "churn")
    assert missing.returncode == 2 and "churn" in missing.stderr, missing.stderr
    assert list(sub.iterdir()) == []
