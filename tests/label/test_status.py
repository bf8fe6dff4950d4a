"""A label project's status: exact numbers on a hand-built project, the same on a real store, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import keel.data
import keel.label
from keel.context import Context
from keel.core.actor import acting_as
from keel.core.errors import InvalidArgument
from keel.core.labeling import Annotation, LabelItem, LabelProject, LabelSchema
from keel.label.agreement import summary
from keel.label.frames import annotations_frame
from keel.label.status import compute_status, project_status
from keel.testing.cli import keel_env

AB = LabelSchema("classes", ("a", "b"))


def _ann(item: str, who: str, value: str, at: int) -> Annotation:
    return Annotation("p", item, who, value, assigned_at=at - 2_000, created_at=at)


def test_compute_status_counts_a_known_project() -> None:
    project = LabelProject("p", "ds@1", AB, overlap=2, guideline_version=3)
    items = [LabelItem(f"t{i}", {"text": str(i)}) for i in range(4)] + [LabelItem("g0", {"text": "g"}, "gold", "a")]
    annotations = [
        _ann("t0", "alice", "a", 1_000), _ann("t0", "bob", "a", 2_000),
        _ann("t1", "alice", "a", 3_000), _ann("t1", "bob", "b", 4_000),
        _ann("t2", "alice", "b", 5_000),
        _ann("g0", "alice", "a", 6_000), _ann("g0", "bob", "b", 7_000),
    ]  # fmt: skip
    labels = pd.DataFrame({"item": ["t0", "t1", "t2", "g0"], "label": ["a", "a", "b", "a"],
                           "confidence": [0.95, 0.5, 0.4, 1.0], "annotations": [2, 2, 1, 2],
                           "finished": [True, True, False, True],
                           "source": ["consensus", "consensus", "consensus", "gold"]})  # fmt: skip
    s = compute_status(project, items, annotations, labels=labels, reviews=1)

    assert (s.items, s.done, s.in_progress, s.untouched) == (4, 2, 1, 1)
    assert (s.gold_items, s.qualification_items, s.annotations, s.gold_answers) == (1, 0, 7, 2)
    assert s.guideline_version == 3 and s.overlap == 2 and s.classes == ("a", "b")
    scores = {r["annotator"]: r for r in s.annotators}
    assert (scores["alice"]["answered"], scores["alice"]["gold_accuracy"]) == (4, 1.0)
    assert (scores["bob"]["answered"], scores["bob"]["gold_accuracy"], scores["bob"]["excluded"]) == (3, 0.0, False)
    assert scores["alice"]["median_time_ms"] == 2_000
    assert s.agreement == summary(annotations_frame(annotations), AB)
    # t0: a/a; t1 and g0: a/b, each pair counted both ways
    assert s.confusion["labels"][:2] == ["a", "b"] and [row[:2] for row in s.confusion["counts"][:2]] == [[2, 2], [2, 0]]
    # the queue: finished, by consensus, below 0.7 (t2 is not finished; g0 is gold)
    assert [r["item"] for r in s.review_queue] == ["t1"] and s.review_queue_size == 1
    assert s.labels["finished"] == 3 and s.labels["by_source"] == {"consensus": 2, "gold": 1}
    assert s.labels["mean_confidence"] == pytest.approx(0.725)
    assert s.reviews == 1 and s.exclusions == []
    json.dumps(s.to_dict())  # plain JSON data

    # bob excluded: his answers no longer count for progress or agreement (his items went back to the pool), but his
    # scores stay on the record, and the agreement with him is kept for comparison
    without = compute_status(project, items, annotations, labels=labels, exclusions=[{"annotator": "bob", "reason": "spam"}])
    assert (without.done, without.in_progress, without.untouched) == (0, 3, 1)
    assert without.agreement["excluded"] == ["bob"] and without.agreement["annotators"] == 1
    assert without.agreement["alpha_with_excluded"] == s.agreement["alpha"]
    assert {r["annotator"]: r["excluded"] for r in without.annotators} == {"alice": False, "bob": True}
    assert without.exclusions == [{"annotator": "bob", "reason": "spam"}]


def test_a_project_nobody_answered_yet() -> None:
    project = LabelProject("p", "ds@1", AB, overlap=3)
    s = compute_status(project, [LabelItem("0", {}), LabelItem("1", {})], [])
    assert (s.items, s.done, s.in_progress, s.untouched, s.annotations) == (2, 0, 0, 2, 0)
    assert s.agreement == {} and s.annotators == [] and s.review_queue == []


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    (tmp_path / ".keel").mkdir()
    context = Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))
    yield context
    context.close()


TRUTH = {"0": "a", "1": "b", "2": "a", "3": "a", "4": "b", "5": "b"}


def _labelled_project(ctx: Context) -> str:
    frame = pd.DataFrame({"text": [f"row <i>{k}</i>" for k in TRUTH]})
    version = keel.data.log(frame, "rows", run=False, ctx=ctx)
    keel.label.create_project("ab", version.ref, classes=["a", "b"], guideline="# A or B", overlap=2, gold={"0": "a"},
                              gold_rate=0.2, ctx=ctx)  # fmt: skip
    for who, limit, wrong in (("alice", 99, ""), ("bob", 4, "3")):
        with acting_as(who):
            for _ in range(limit):
                task = keel.label.next_task("ab", ctx=ctx)
                if task is None:
                    break
                answer = TRUTH[task.item] if task.item != wrong else {"a": "b", "b": "a"}[TRUTH[task.item]]
                keel.label.submit("ab", task.item, answer, ctx=ctx)
    return "ab"


def test_project_status_reads_the_store(ctx: Context) -> None:
    name = _labelled_project(ctx)
    store = ctx.store.labels
    answers = Counter(a.item for a in store.annotations(name))
    tasks = [i.key for i in store.get_items(name, role="task")]

    s = project_status(name, ctx)
    assert s.items == 5 and s.gold_items == 1 and s.annotations == sum(answers.values())
    assert s.done == sum(1 for k in tasks if answers[k] >= 2) and s.done >= 2
    assert s.in_progress == sum(1 for k in tasks if answers[k] == 1) and s.untouched == 0
    assert {r["annotator"]: r["answered"] for r in s.annotators} == dict(Counter(a.annotator for a in store.annotations(name)))
    expected = keel.label.review_queue(name, ctx=ctx)
    assert [r["item"] for r in s.review_queue] == list(expected["item"]) == ["3"]  # bob and alice split on 3

    with acting_as("expert"):
        keel.label.audit(name, tasks[0], TRUTH[tasks[0]], ctx=ctx)
    s = project_status(name, ctx)
    assert s.audits["audited"] == 1 and s.audits["confirmed"] + s.audits["corrected"] == 1


def test_project_status_checks_its_arguments(ctx: Context) -> None:
    with pytest.raises(InvalidArgument, match="threshold"):
        project_status("ab", ctx, threshold=1.5)
    with pytest.raises(InvalidArgument, match="period_ms"):
        project_status("ab", ctx, period_ms=10)


def _status_cmd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = "import typer; from keel.cli.label_status import status; typer.run(status)"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          env=keel_env(cwd), timeout=120)  # fmt: skip


def test_the_status_command_prints_tables_json_and_the_report(ctx: Context, tmp_path: Path) -> None:
    name = _labelled_project(ctx)
    shown = _status_cmd(tmp_path, name, "--html", "ab.html")
    assert shown.returncode == 0, shown.stderr
    assert "items 5: done" in shown.stdout and "Krippendorff's alpha" in shown.stdout
    assert "alice" in shown.stdout and "bob" in shown.stdout and "review queue:" in shown.stdout
    page = (tmp_path / "ab.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "Label project ab" in page and "<svg" in page

    as_json = _status_cmd(tmp_path, name, "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["project"] == "ab" and data["items"] == 5 and data["annotations"] == len(ctx.store.labels.annotations(name))

    (tmp_path / "mine.html").write_text("my notes")
    refused = _status_cmd(tmp_path, name, "--html", "mine.html")
    assert refused.returncode != 0 and (tmp_path / "mine.html").read_text() == "my notes"
