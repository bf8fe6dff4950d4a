"""``keel deploy`` as a user runs it: every change is one record, bad input is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

from keel.testing.cli import keel_cmd


def test_create_shadow_canary_promote_rollback_history(tmp_path: Path) -> None:
    def ok(*args: str) -> str:
        done = keel_cmd(tmp_path, "deploy", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "created deployment churn" in ok("create", "churn", "models:/churn@production")
    ok("shadow", "churn", "models:/churn/4")
    ok("canary", "churn", "models:/churn/5", "--weight", "0.2")
    shown = ok("show", "churn")
    assert "primary  models:/churn@production  (80% of traffic)" in shown
    assert "shadow   models:/churn/4" in shown and "canary   models:/churn/5  (20% of traffic)" in shown
    assert "promoted" not in ok("promote", "churn", "models:/churn/4", "--reason", "better")
    shown = ok("show", "churn")
    assert "primary  models:/churn/4" in shown and "shadow " not in shown
    assert "primary models:/churn/4 -> models:/churn@production" in ok("rollback", "churn")
    assert "primary  models:/churn@production" in ok("show", "churn")
    history = ok("history", "churn")
    for what in ("create", "shadow", "canary", "primary", "rollback"):
        assert what in history
    assert "churn" in ok("list")

    bad = keel_cmd(tmp_path, "deploy", "canary", "churn", "models:/churn/6", "--weight", "0.9")  # 0.2 + 0.9 > 1
    assert bad.returncode == 2 and bad.stderr.startswith("keel: error:") and len(bad.stderr.strip().splitlines()) == 1
    bad = keel_cmd(tmp_path, "deploy", "create", "other", "churn/3")
    assert bad.returncode == 2 and "models:/NAME/VERSION" in bad.stderr
    bad = keel_cmd(tmp_path, "deploy", "promote", "churn", "models:/churn/9")
    assert bad.returncode == 2 and "neither a shadow nor a canary" in bad.stderr
    assert "other" not in ok("list") and "models:/churn/6" not in ok("show", "churn")


def test_user_data_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    done = keel_cmd(tmp_path, "deploy", "create", "churn", "models:/churn/1", "--reason", "\x1b[31mred")
    assert done.returncode == 0, done.stderr
    history = keel_cmd(tmp_path, "deploy", "history", "churn").stdout
    assert "\x1b[31m" not in history and "\\x1b" in history
