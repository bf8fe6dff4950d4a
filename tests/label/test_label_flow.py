"""The SDK's whole labeling flow on a real store: a project from a dataset version, a crowd with a spammer,
qualification, exclusion, consensus, the review queue, audits, and the labels as a dataset version with lineage."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import keel.data
import keel.label
from keel.context import Context
from keel.core.actor import acting_as
from keel.core.errors import InvalidArgument, NotFound, PermissionDenied
from keel.core.labeling import LabelSchema

CLASSES = ("cat", "dog", "bird")


# The SQL stores directly: each simulated annotator acts as themselves with acting_as. Over REST the server takes
# the annotator from the token, never from the client (tests/server/test_label_api.py, tests/ui/test_label_page.py).
@pytest.fixture(params=["sqlite", "postgres"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    if request.param == "sqlite":
        context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    else:
        context = Context(str(request.getfixturevalue("pg_store_url")), str(tmp_path / "artifacts"))
    yield context
    context.close()


def _data(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = random.Random(seed)
    truth = [rng.choice(CLASSES) for _ in range(n)]
    frame = pd.DataFrame({
        "photo": [f"img-{i}.jpg" for i in range(n)],
        "caption": [f"a {t} <b>{i}</b>" for i, t in enumerate(truth)],
        "known": [t if i % 6 == 0 else None for i, t in enumerate(truth)],
    })  # fmt: skip
    return frame, {str(i): t for i, t in enumerate(truth)}


def _project(ctx: Context, **kw: object) -> tuple[str, dict[str, str]]:
    frame, truth = _data()
    name = f"animals-{uuid.uuid4().hex[:8]}"
    version = keel.data.log(frame, f"{name}-photos", run=False, ctx=ctx)
    options: dict[str, object] = {"classes": CLASSES, "guideline": "# Animals\nPick the animal.", "overlap": 3,
                                  "gold": "known", "gold_rate": 0.15,
                                  "qualification": {"1": truth["1"], "2": truth["2"]}}  # fmt: skip
    options.update(kw)
    keel.label.create_project(name, version.ref, ctx=ctx, **options)  # type: ignore[arg-type]
    return name, truth


def _work(ctx: Context, project: str, truth: dict[str, str], crowd: dict[str, float], seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    done = dict.fromkeys(crowd, 0)
    active = dict(crowd)
    while active:
        for who, skill in list(active.items()):
            with acting_as(who):
                try:
                    task = keel.label.next_task(project, ctx=ctx)
                except PermissionDenied:
                    del active[who]
                    continue
                if task is None:
                    del active[who]
                    continue
                right = truth[task.item]
                answer = right if rng.random() < skill else rng.choice([c for c in CLASSES if c != right])
                keel.label.submit(project, task.item, answer, request_id=f"{who}-{task.item}", ctx=ctx)
                done[who] += 1
    return done


def test_a_project_takes_its_items_gold_and_qualification_from_a_dataset_version_and_hides_the_answer_column(
    ctx: Context,
) -> None:
    name, truth = _project(ctx)
    project = keel.label.get_project(name, ctx=ctx)
    assert (project.items, project.gold_items, project.qualification_items) == (60, 10, 2)
    assert project.fields == ("photo", "caption")  # the answer column is never shown
    assert project.dataset.endswith("@1") and project.guideline_version == 1
    gold = {i.key: i.answer for i in keel.label.items_of(name, role="gold", ctx=ctx)}
    assert gold == {str(i): truth[str(i)] for i in range(0, 60, 6)}
    with acting_as("newcomer"):
        task = keel.label.next_task(name, ctx=ctx)
    assert task is not None and task.qualification and task.item in {"1", "2"}
    assert set(task.data) == {"photo", "caption"} and "known" not in task.data


def test_bad_project_input_names_the_field_and_writes_nothing(ctx: Context) -> None:
    frame, _ = _data()
    name = f"bad-{uuid.uuid4().hex[:8]}"
    version = keel.data.log(frame, f"{name}-photos", run=False, ctx=ctx)
    with pytest.raises(InvalidArgument, match=r"column must be a column of .*photo, caption, known"):
        keel.label.create_project(name, version.ref, classes=CLASSES, guideline="g", gold="answer", ctx=ctx)
    with pytest.raises(InvalidArgument, match="gold must be the key of a row"):
        keel.label.create_project(name, version.ref, classes=CLASSES, guideline="g", gold={"999": "cat"}, ctx=ctx)
    with pytest.raises(InvalidArgument, match=r"item\.answer must be one of 'cat', 'dog', 'bird'"):
        keel.label.create_project(name, version.ref, classes=CLASSES, guideline="g", gold={"3": "cow"}, ctx=ctx)
    with pytest.raises(InvalidArgument, match="qualification must be rows that are not also gold items"):
        keel.label.create_project(name, version.ref, classes=CLASSES, guideline="g", gold="known",
                                  qualification={"0": "cat"}, ctx=ctx)  # fmt: skip
    with pytest.raises(NotFound):
        keel.label.create_project(name, f"{name}-photos@7", classes=CLASSES, guideline="g", ctx=ctx)
    with pytest.raises(NotFound):
        keel.label.get_project(name, ctx=ctx)


def test_a_crowd_with_a_spammer_gives_labels_better_than_majority_and_they_become_a_dataset_version(ctx: Context) -> None:
    # no gold hand-outs: they come at random turns, and this test compares two consensus methods on one fixed crowd
    name, truth = _project(ctx, qualification=None, gold_rate=0.0)
    crowd = {"ana": 0.95, "ben": 0.9, "chen": 0.85, "dev": 0.8, "spam": 0.34}
    done = _work(ctx, name, truth, crowd)
    gold = {i.key for i in keel.label.items_of(name, role="gold", ctx=ctx)}
    counts = pd.Series([a.item for a in keel.label.annotations_of(name, ctx=ctx)]).value_counts()
    tasks = counts[~counts.index.isin(gold)]
    assert set(tasks) == {3} and len(tasks) == 50  # every task to exactly 3 annotators
    assert not counts.index.isin(gold).any()  # no gold was handed out (gold_rate 0); its known answers still count
    assert sum(done.values()) == len(keel.label.annotations_of(name, ctx=ctx))

    keel.label.exclude(name, "spam", "gold accuracy 30%", ctx=ctx)
    with acting_as("spam"), pytest.raises(PermissionDenied, match="gold accuracy 30%"):
        keel.label.next_task(name, ctx=ctx)
    again = _work(ctx, name, truth, {k: v for k, v in crowd.items() if k != "spam"}, seed=2)
    assert sum(again.values()) >= done["spam"] - 10  # the spammer's tasks went back to the pool (gold aside)
    labels = keel.label.consensus_labels(name, ctx=ctx)
    assert len(labels) == 60 and labels["finished"].all()
    gold_rows = labels[labels["source"] == "gold"]
    assert len(gold_rows) == 10 and (gold_rows["confidence"] == 1.0).all()
    correct = sum(truth[k] == v for k, v in zip(labels["item"], labels["label"], strict=True))
    majority = keel.label.consensus_labels(name, method="majority", exclude=[], ctx=ctx)
    correct_majority = sum(truth[k] == v for k, v in zip(majority["item"], majority["label"], strict=True))
    assert correct >= correct_majority and correct >= 55

    version = keel.label.export(name, ctx=ctx)
    assert version.name == f"{name}.labels" and version.row_count == 60
    assert version.parents == (f"{name}-photos@1",) or list(version.parents) == [f"{name}-photos@1"]
    assert version.transform is not None and version.transform["project"] == name
    assert version.transform["excluded"] == ["spam"]
    assert version.transform["annotations"] == len(keel.label.annotations_of(name, ctx=ctx))
    assert version.transform["guideline_versions"] == [1]
    back = keel.data.get(version.ref, ctx=ctx, run=False)
    assert list(back.columns) == ["item", "photo", "caption", "label", "label_confidence", "label_source", "label_annotations"]
    assert back.loc[back["item"] == "6", "label"].iloc[0] == truth["6"]  # a gold row keeps its known answer
    assert keel.label.export(name, ctx=ctx).id == version.id  # the same labels: the same version
    assert [vid for vid, _ in ctx.store.labels.consensus_versions(name)] == [version.id]


def test_the_review_queue_holds_the_doubtful_items_and_an_expert_label_overrides_the_crowd(ctx: Context) -> None:
    name, truth = _project(ctx, qualification=None, gold=None, gold_rate=0.0)
    _work(ctx, name, truth, {"ana": 0.7, "ben": 0.6, "chen": 0.5}, seed=3)
    queue = keel.label.review_queue(name, threshold=0.95, ctx=ctx)
    assert len(queue) > 0 and (queue["confidence"] < 0.95).all()
    assert list(queue["confidence"]) == sorted(queue["confidence"])  # least sure first
    item = str(queue["item"].iloc[0])
    crowd_label = queue["label"].iloc[0]
    expert = next(c for c in CLASSES if c != crowd_label)
    with acting_as("expert"):
        made = keel.label.review(name, item, expert, note="checked the photo", ctx=ctx)
    assert (made.outcome, made.reviewer, made.kind) == ("corrected", "expert", "review")
    labels = keel.label.consensus_labels(name, ctx=ctx).set_index("item")
    assert labels.loc[item, "label"] == expert and labels.loc[item, "source"] == "review"
    assert item not in set(keel.label.review_queue(name, threshold=0.95, ctx=ctx)["item"])
    with pytest.raises(InvalidArgument, match="value must be one of"):
        keel.label.review(name, item, "cow", ctx=ctx)
    with pytest.raises(NotFound):
        keel.label.review(name, "999", "cat", ctx=ctx)


def test_audits_sample_finished_items_reproducibly_and_report_how_the_labels_held_up(ctx: Context) -> None:
    name, truth = _project(ctx, qualification=None)
    _work(ctx, name, truth, {"ana": 0.95, "ben": 0.9, "chen": 0.9})
    first = keel.label.audit_sample(name, 8, seed=42, ctx=ctx)
    again = keel.label.audit_sample(name, 8, seed=42, ctx=ctx)
    assert list(first["item"]) == list(again["item"]) and len(first) == 8
    gold = {i.key for i in keel.label.items_of(name, role="gold", ctx=ctx)}
    assert not set(first["item"]) & gold  # known answers need no audit
    with acting_as("auditor"):
        for item in first["item"]:
            keel.label.audit(name, item, truth[item], ctx=ctx)
    reviews = ctx.store.labels.reviews(name, kind="audit")
    summary = keel.label.audit_summary(reviews)
    labels = keel.label.consensus_labels(name, method="dawid_skene", ctx=ctx)
    assert summary.audited == 8 and summary.confirmed + summary.corrected == 8
    assert summary.low is not None and summary.high is not None and summary.low <= summary.accuracy <= summary.high  # type: ignore[operator]
    assert set(labels.loc[labels["item"].isin(first["item"]), "source"]) == {"audit"}
    assert not set(keel.label.audit_sample(name, 8, seed=42, ctx=ctx)["item"]) & set(first["item"])  # not audited twice


def test_a_number_project_takes_the_median_and_refuses_a_class_method(ctx: Context) -> None:
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"]})
    name = f"score-{uuid.uuid4().hex[:8]}"
    version = keel.data.log(frame, f"{name}-texts", run=False, ctx=ctx)
    keel.label.create_project(name, version.ref, schema=LabelSchema(kind="number", minimum=0, maximum=10),
                              guideline="Score 0-10", overlap=3, gold_rate=0.0, ctx=ctx)  # fmt: skip
    given = {"ana": [1, 2, 3, 4], "ben": [2, 2, 5, 4], "chen": [9, 2, 4, 7]}
    for who, values in given.items():
        with acting_as(who):
            while (task := keel.label.next_task(name, ctx=ctx)) is not None:
                keel.label.submit(name, task.item, values[int(task.item)], ctx=ctx)
    labels = keel.label.consensus_labels(name, ctx=ctx).set_index("item")
    assert labels["label"].to_dict() == {"0": 2.0, "1": 2.0, "2": 4.0, "3": 4.0}
    with pytest.raises(InvalidArgument, match="method must be median for number labels"):
        keel.label.consensus_labels(name, method="dawid_skene", ctx=ctx)


@keel.step
def count_labels(ref: str) -> dict[str, int]:
    frame = keel.data.get(ref)  # read inside a step: recorded as the step run's input
    return {str(k): int(v) for k, v in frame["label"].value_counts().items()}


@keel.pipeline
def label_counts(ref: str) -> dict[str, int]:
    return count_labels(ref)


def test_exported_labels_feed_a_pipeline_and_their_lineage_names_the_project(tmp_path: Path) -> None:
    from keel.govern.lineage import dataset_impact
    from keel.tracking.client import Client

    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    keel.set_client(Client(ctx))
    try:
        name, truth = _project(ctx, qualification=None)
        _work(ctx, name, truth, {"ana": 1.0, "ben": 1.0, "chen": 1.0})
        version = keel.label.export(name, ctx=ctx)
        result = label_counts.run(ref=version.ref, experiment="labels")
        assert result.output == {c: sum(1 for t in truth.values() if t == c) for c in CLASSES if c in truth.values()}
        step = result.step("count_labels").run_id
        assert (step, "input") in ctx.store.datasets.runs_of_version(version.id)
        graph = dataset_impact(f"{name}-photos", 1, ctx=ctx)
        labels_node = f"dataset_version:{version.ref}"
        assert labels_node in graph.nodes and f"label_project:{name}" in graph.nodes
        attrs = graph.nodes[f"label_project:{name}"].attrs
        assert attrs["guideline_versions"] == [1] and attrs["annotations"] == len(keel.label.annotations_of(name, ctx=ctx))
        assert any(e.source == labels_node and e.relation == "labelled by" for e in graph.edges)
    finally:
        keel.set_client(None)
        ctx.close()
