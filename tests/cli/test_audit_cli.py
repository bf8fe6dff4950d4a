"""``keel audit verify|anchor|export|log`` over a real SQLite store: exit codes, the first bad event named, anchors
found outside the database, JSON Lines that round-trip, user data printed as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from keel.cli.main import main
from keel.core.actor import acting_as
from keel.core.audit import AuditEvent, verify_chain
from keel.core.entities import RunStatus
from keel.store.metadata import open_store
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.store import SqlStore
from keel.testing.cli import keel_cmd


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlStore:
    uri = f"sqlite:///{tmp_path / 'keel.db'}"
    monkeypatch.setenv("KEEL_STORE", uri)
    opened = open_store(uri)
    assert isinstance(opened, SqlStore)
    with acting_as("alice"):
        exp = opened.get_or_create_experiment("e")
        for i in range(3):
            run = opened.create_run(exp.id, f"r{i}", tags={"note": "[bold]x[/] \x1b[2J"})
            opened.end_run(run.id, RunStatus.FINISHED)
    return opened  # 7 events


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_intact_then_edited(store: SqlStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "verify")
    head = store.audit.head()
    assert head is not None
    assert code == 0 and out.strip() == f"audit log intact: 7 events, head {head.hash[:12]}"
    with store.engine.begin() as conn:
        conn.execute(update(t.audit_events).where(t.audit_events.c.seq == 4).values(actor="mallory"))
    code, out, _ = _run(capsys, "verify")
    assert code == 1 and "event 4 (edited)" in out


def test_anchor_then_a_rewrite_is_found(store: SqlStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchors = tmp_path / "outside" / "anchors.jsonl"
    code, out, _ = _run(capsys, "anchor", "--to", str(anchors))
    assert code == 0 and "anchored event 7" in out
    store.create_run(store.get_or_create_experiment("e").id, "later")
    assert _run(capsys, "anchor", "--to", str(anchors))[0] == 0
    lines = [json.loads(line) for line in anchors.read_text().splitlines()]
    assert [a["seq"] for a in lines] == [7, 8] and all(len(a["hash"]) == 64 for a in lines)
    code, out, _ = _run(capsys, "verify", "--anchors", str(anchors))
    assert code == 0 and "8 events" in out and "2 anchors matched" in out
    # the whole table rewritten from event 8 on, consistently: only the anchor shows it
    with store.engine.begin() as conn:
        conn.execute(t.audit_events.delete().where(t.audit_events.c.seq == 8))
    store.create_run(store.get_or_create_experiment("e").id, "forged")  # a new, valid event 8
    assert _run(capsys, "verify")[0] == 0
    code, out, _ = _run(capsys, "verify", "--anchors", str(anchors))
    assert code == 1 and "event 8 (anchor)" in out
    anchors.write_text("not json\n")
    code, _, err = _run(capsys, "verify", "--anchors", str(anchors))
    assert code == 2 and "line 1 is not an anchor" in err


def test_export_round_trips(store: SqlStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "export")
    assert code == 0
    events = [AuditEvent.from_json(json.loads(line)) for line in out.splitlines()]
    assert events == store.audit.events() and verify_chain(events) is None
    target = tmp_path / "audit.jsonl"
    code, _, err = _run(capsys, "export", "-o", str(target))
    assert code == 0 and "exported 7 events" in err and target.read_text() == out


def test_log_shows_recent_events_as_text(
    store: SqlStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.cli.output import console

    monkeypatch.setattr(console, "_width", 250)  # a wide terminal: the cells are not cut
    code, out, _ = _run(capsys, "log", "--limit", "1")
    assert code == 0 and "runs.end" in out and "runs.create" not in out and "alice" in out
    run_id = store.audit.events(entity="run")[0].entity_id
    with acting_as("[blue]bob[/]"):
        store.set_tags(run_id, {"n": "[red]y[/]"})
    code, out, _ = _run(capsys, "log", "--entity", "run", "--id", run_id)
    assert code == 0 and out.count("runs.") == 3 and '{"n":"[red]y[/]"}' in out and "[blue]bob[/]" in out  # as text
    code, _, err = _run(capsys, "log", "--limit", "0")
    assert code == 2 and err.startswith("keel: error:") and len(err.strip().splitlines()) == 1
    assert _run(capsys, "log", "--entity", "monitor")[1].strip() == "no events"


def test_a_subprocess_user_sees_the_same(tmp_path: Path) -> None:
    """As a user runs it: an empty store has no head to anchor (exit 2) and verifies intact."""
    open_store(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}").close()  # the commands read a store, never create one
    done = keel_cmd(tmp_path, "audit", "verify")
    assert done.returncode == 0 and done.stdout.strip() == "audit log intact: 0 events", done.stderr
    done = keel_cmd(tmp_path, "audit", "anchor", "--to", str(tmp_path / "a.jsonl"))
    assert done.returncode == 2 and "empty" in done.stderr
