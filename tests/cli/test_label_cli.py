"""``keel label ...`` as a user runs it (real subprocesses over a .keel store): create a project from a dataset
version, annotate as two users, review, export; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from keel.testing.cli import keel_cmd, keel_env


def _as(cwd: Path, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**keel_env(cwd), "KEEL_USER": user}
    return subprocess.run([sys.executable, "-m", "keel.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def _store_with_data(tmp_path: Path) -> None:
    import keel.data
    from keel.context import Context

    (tmp_path / ".keel").mkdir()
    frame = pd.DataFrame({"text": ["good", "bad", "fine", "awful"], "known": ["pos", None, None, None]})
    ctx = Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    keel.data.log(frame, "reviews", run=False, ctx=ctx)
    ctx.close()
    (tmp_path / "guide.md").write_text("# Sentiment\n\nPress **1** for pos.\n")


def test_a_project_from_the_command_line_end_to_end(tmp_path: Path) -> None:
    _store_with_data(tmp_path)
    made = keel_cmd(tmp_path, "label", "create", "sentiment", "reviews@1", "--classes", "pos,neg", "--guideline",
                    "guide.md", "--gold", "known", "--gold-rate", "0.2", "-k", "2", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    assert (project["items"], project["gold_items"], project["overlap"], project["fields"]) == (4, 1, 2, ["text"])

    answers = {"0": "pos", "1": "neg", "2": "pos", "3": "neg"}
    for user in ("ana", "ben"):
        while True:
            shown = _as(tmp_path, user, "label", "next", "sentiment", "--json")
            assert shown.returncode == 0, shown.stderr
            task = json.loads(shown.stdout)
            if task is None:
                break
            assert "known" not in task["data"] and task["guideline_version"] == 1
            sent = _as(tmp_path, user, "label", "submit", "sentiment", task["item"], answers[task["item"]], "--json")
            assert sent.returncode == 0, sent.stderr
            assert json.loads(sent.stdout)["annotator"] == user
    listed = keel_cmd(tmp_path, "label", "consensus", "sentiment", "--json")
    labels = {row["item"]: row["label"] for row in json.loads(listed.stdout)}
    assert labels == answers
    exported = keel_cmd(tmp_path, "label", "export", "sentiment", "--json")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["dataset"] == "sentiment.labels"
    assert json.loads(exported.stdout)["rows"] == 4
    again = _as(tmp_path, "ana", "label", "submit", "sentiment", "1", "pos")
    assert again.returncode != 0 and "already" in again.stderr  # one answer per annotator and item


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _store_with_data(tmp_path)
    cases = [
        (["label", "create", "p", "reviews@1", "--classes", "pos", "--guideline", "guide.md"], "schema.classes"),
        (["label", "create", "p", "reviews@1", "--classes", "pos,neg", "--guideline", "nope.md"], "--guideline"),
        (["label", "create", "p", "reviews@1", "--classes", "pos,neg", "--guideline", "guide.md", "-k", "0"], "overlap"),
        (["label", "create", "p", "reviews@1", "--classes", "a,b", "--guideline", "guide.md", "--kind", "x"], "schema.kind"),
    ]
    for args, field in cases:
        result = keel_cmd(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and field in lines[0], (args, result.stderr)
    listed = keel_cmd(tmp_path, "label", "list", "--json")
    assert json.loads(listed.stdout) == []  # nothing half-made
    assert not os.path.exists(tmp_path / "p")


def test_a_class_named_like_a_number_is_submitted_as_typed(tmp_path: Path) -> None:
    _store_with_data(tmp_path)
    made = keel_cmd(tmp_path, "label", "create", "stars", "reviews@1", "--classes", "1,2,3", "--guideline", "guide.md")
    assert made.returncode == 0, made.stderr
    task = json.loads(_as(tmp_path, "ana", "label", "next", "stars", "--json").stdout)
    sent = _as(tmp_path, "ana", "label", "submit", "stars", task["item"], "3", "--json")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["value"] == "3"
