"""A team on Label Studio brings its export to keel (a project made from the tasks, every annotation stored once, as
made), gets agreement, consensus and audits, and takes keel's labels back in Label Studio's format."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import keel.data
import keel.label
from keel.context import Context
from keel.core.actor import acting_as
from keel.core.errors import InvalidArgument
from keel.core.labeling import LabelSchema
from keel.testing.cli import keel_cmd

FIXTURES = Path(__file__).parents[1] / "fixtures" / "labelstudio"
SENTIMENT = LabelSchema("classes", ("Positive", "Negative", "Neutral"))


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    yield context
    context.close()


def test_an_export_becomes_a_project_whose_annotations_are_stored_once_as_they_were_made(ctx: Context) -> None:
    tasks = json.loads((FIXTURES / "sentiment_export.json").read_text())
    first = keel.label.import_labelstudio("reviews-ls", tasks, schema=SENTIMENT, ctx=ctx)
    assert first.written == first.annotations > 0 and first.cancelled == 1
    assert all(a.startswith("labelstudio:") for a in first.annotators)  # never a keel principal's name
    assert "labelstudio:alice@example.com" in first.annotators
    again = keel.label.import_labelstudio("reviews-ls", tasks, ctx=ctx)
    assert again.written == 0 and again.annotations == first.annotations  # a re-import writes nothing twice

    project = keel.label.get_project("reviews-ls", ctx=ctx)
    assert project.items == len(tasks) and project.gold_items == 1  # the ground-truth annotation makes a gold item
    stored = keel.label.annotations_of("reviews-ls", ctx=ctx)
    assert len(stored) == first.annotations
    alice = [a for a in stored if a.annotator == "labelstudio:alice@example.com" and a.item == "11"]
    assert alice and alice[0].value == "Positive" and alice[0].time_spent_ms == 4250  # Label Studio's lead_time
    assert alice[0].guideline_version == 0  # made under no keel guideline
    data = keel.data.get("reviews-ls.labelstudio", ctx=ctx, run=False)
    assert sorted(data["item"]) == sorted(str(t["id"]) for t in tasks)

    labels = keel.label.consensus_labels("reviews-ls", ctx=ctx).set_index("item")
    assert labels.loc["11", "label"] == "Positive"
    with acting_as("auditor"):
        keel.label.audit("reviews-ls", "11", "Positive", ctx=ctx)
    back = keel.label.export_labelstudio("reviews-ls", ctx=ctx)
    task11 = next(t for t in back if str(t["data"].get("item", t.get("id"))) == "11" or t.get("id") == 11)
    assert len(task11["annotations"]) == len([a for a in stored if a.item == "11"])
    prediction = task11["predictions"][0]
    assert prediction["result"][0]["value"]["choices"] == ["Positive"] and prediction["score"] == 1.0  # audited


def test_an_import_into_a_project_checks_its_items_and_values(ctx: Context) -> None:
    tasks = json.loads((FIXTURES / "sentiment_export.json").read_text())
    keel.label.import_labelstudio("reviews-ls", tasks, schema=SENTIMENT, ctx=ctx)
    stranger = [{**tasks[0], "id": 999}]
    with pytest.raises(InvalidArgument, match="task must be an item of label project 'reviews-ls'"):
        keel.label.import_labelstudio("reviews-ls", stranger, ctx=ctx)
    with pytest.raises(InvalidArgument, match="source must be a list of Label Studio tasks"):
        keel.label.import_labelstudio("other", {"tasks": tasks}, schema=SENTIMENT, ctx=ctx)  # type: ignore[arg-type]


def test_the_cli_imports_an_export_and_writes_one_back(tmp_path: Path) -> None:
    (tmp_path / ".keel").mkdir()
    shutil.copy(FIXTURES / "sentiment_export.json", tmp_path / "export.json")
    made = keel_cmd(tmp_path, "label", "import", "reviews", "export.json", "--classes", "Positive,Negative,Neutral", "--json")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["written"] == summary["annotations"] > 0 and summary["cancelled"] == 1
    again = keel_cmd(tmp_path, "label", "import", "reviews", "export.json", "--json")
    assert json.loads(again.stdout)["written"] == 0
    out = keel_cmd(tmp_path, "label", "export", "reviews", "--labelstudio", "back.json")
    assert out.returncode == 0, out.stderr
    tasks = json.loads((tmp_path / "back.json").read_text())
    assert len(tasks) == 5 and all("predictions" in t for t in tasks if t["annotations"])
    refused = keel_cmd(tmp_path, "label", "export", "reviews", "--labelstudio", "back.json")
    assert refused.returncode == 2 and "--labelstudio must be a new file" in refused.stderr
