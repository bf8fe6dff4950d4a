"""``keel deploy history`` and ``rollback`` after the alias a deployment follows moved in the registry."""

from __future__ import annotations

from pathlib import Path

from keel.store.metadata.sql.store import SqlStore
from keel.testing.cli import keel_cmd


def test_an_alias_move_reads_in_the_history_and_rollback_pins_the_old_version(tmp_path: Path) -> None:
    def ok(*args: str) -> str:
        done = keel_cmd(tmp_path, "deploy", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (tmp_path / ".keel").mkdir()
    store = SqlStore(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")
    try:
        for _ in range(4):
            store.models.create_version("churn", flavor="sklearn", artifact_sha256="c" * 64, size=1, signature={"inputs": []})
        store.models.move_alias("churn", "production", 3, force=True, actor="ana")
        ok("create", "churn", "models:/churn@production")
        store.models.move_alias("churn", "production", 4, force=True, actor="ana", reason="auc up")
    finally:
        store.close()
    history = ok("history", "churn")
    assert "alias" in history and "models:/churn@production (3 -> 4)" in history
    assert "alias production of churn moved 3 -> 4" in history
    assert "primary models:/churn@production -> models:/churn/3" in ok("rollback", "churn")
    assert "primary  models:/churn/3" in ok("show", "churn")
