"""Audit anchors kept in an object store (a real S3: moto's server on 127.0.0.1): ``keel audit anchor --to
s3://...`` appends by rewriting the object, and ``keel audit verify --anchors s3://...`` finds a rewrite of the
whole table that the chain alone cannot show."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete

from keel.cli.main import main
from keel.core.actor import acting_as
from keel.core.entities import RunStatus
from keel.store.metadata import open_store
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.store import SqlStore


def test_anchors_in_s3_catch_a_rewritten_table(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in (("AWS_ENDPOINT_URL", s3_url), ("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    uri = f"sqlite:///{tmp_path / 'keel.db'}"
    monkeypatch.setenv("KEEL_STORE", uri)
    store = open_store(uri)
    assert isinstance(store, SqlStore)
    anchors = f"s3://keel-test/anchors-{tmp_path.name}.jsonl"

    def runs(n: int) -> None:
        with acting_as("alice"):
            exp = store.get_or_create_experiment("e")
            for i in range(n):
                store.end_run(store.create_run(exp.id, f"r{i}").id, RunStatus.FINISHED)

    runs(2)
    assert main(["audit", "anchor", "--to", anchors]) == 0
    runs(1)
    assert main(["audit", "anchor", "--to", anchors]) == 0  # a second line: the object was read and written again
    capsys.readouterr()
    assert main(["audit", "verify", "--anchors", anchors]) == 0
    assert "audit log intact: 7 events" in capsys.readouterr().out
    # a rewrite of the whole table: the last events removed, the chain left consistent in itself
    with store.engine.begin() as conn:
        conn.execute(delete(t.audit_events).where(t.audit_events.c.seq > 4))
    assert main(["audit", "verify"]) == 0  # without anchors the shorter chain looks whole
    capsys.readouterr()
    assert main(["audit", "verify", "--anchors", anchors]) == 1
    out = capsys.readouterr().out
    assert "event 5 (anchor)" in out and "events were deleted" in out  # the first anchored event gone
    store.close()
