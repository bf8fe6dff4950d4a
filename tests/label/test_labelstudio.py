"""Label Studio's JSON export in and out: real export shapes (tests/fixtures/labelstudio, modelled on Label Studio's
own export serializer and label-studio-converter's test exports), round trips, and clear errors."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from keel.core.errors import InvalidArgument
from keel.core.labeling import Annotation, LabelItem, LabelSchema
from keel.label.labelstudio import ImportedAnnotation, from_labelstudio, to_labelstudio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "labelstudio"
SENTIMENT = LabelSchema("classes", ("Positive", "Negative", "Neutral"))
NER = LabelSchema("spans", ("PER", "LOC", "ORG"), text_field="text")


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _ms(iso: str) -> int:
    return round(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_classification_export_becomes_items_gold_and_annotations() -> None:
    imported = from_labelstudio(_load("sentiment_export.json"), SENTIMENT)

    assert [i.key for i in imported.items] == ["11", "12", "13", "14", "15"]
    assert [i.role for i in imported.items] == ["task", "task", "gold", "task", "task"]
    assert imported.items[2].answer == "Neutral"
    assert imported.items[0].data == {"text": "Great battery life", "review_id": "r-101"}
    got = [(a.item, a.annotator, a.value) for a in imported.annotations]
    assert got == [
        ("11", "alice@example.com", "Positive"), ("11", "bob@example.com", "Positive"), ("11", "carol@example.com", "Negative"),
        ("12", "alice@example.com", "Negative"), ("12", "bob@example.com", "Negative"),
        ("13", "alice@example.com", "Neutral"), ("13", "bob@example.com", "Positive"), ("13", "carol@example.com", "Neutral"),
    ]  # fmt: skip
    # the cancelled one, the one with only a comment, and the ground truth (the lead's) are not annotators' answers
    assert (imported.cancelled, imported.skipped, imported.ground_truth) == (1, 1, 1)
    assert imported.annotators == ("alice@example.com", "bob@example.com", "carol@example.com")
    assert imported.from_name == "sentiment"
    first = imported.annotations[0]
    assert first.created_at == _ms("2026-11-02T09:10:00Z") and first.lead_time_ms == 4250 and first.source_id == "101"


def test_imported_annotations_become_keel_annotations_with_the_time_spent() -> None:
    imported = from_labelstudio(_load("sentiment_export.json"), SENTIMENT)
    annotations = imported.to_annotations("reviews")
    assert all(isinstance(a, Annotation) and a.project == "reviews" for a in annotations)
    assert [a.time_spent_ms for a in annotations[:3]] == [4250, 6500, 12000]
    assert annotations[2].created_at == _ms("2026-11-02T09:12:00Z")


def test_spans_are_read_in_python_offsets_past_an_emoji() -> None:
    imported = from_labelstudio(_load("ner_export.json"), NER)
    text = imported.items[0].data["text"]
    alice, bob, empty, amazon = imported.annotations
    assert [text[s["start"] : s["end"]] for s in alice.value] == ["Alice", "Bob", "Paris"]
    assert alice.value[1] == {"start": 12, "end": 15, "label": "PER"}  # 13-16 in Label Studio's UTF-16 units
    assert [s["label"] for s in bob.value] == ["PER", "LOC"]
    assert empty.value == []  # an empty result of a span task is an answer: no entities
    assert amazon.value == [{"start": 4, "end": 10, "label": "ORG"}]


def test_a_span_whose_text_disagrees_with_its_offsets_is_refused() -> None:
    tasks = _load("ner_export.json")
    tasks[0]["annotations"][0]["result"][1]["value"]["start"] = 12  # an export counting in code points, say
    with pytest.raises(InvalidArgument, match=r"tasks\[0\] \(id 21\)\.annotations\[0\]\.result\[1\]"):
        from_labelstudio(tasks, NER)


def test_classification_round_trip_keeps_items_annotations_and_gold() -> None:
    first = from_labelstudio(_load("sentiment_export.json"), SENTIMENT)
    exported = to_labelstudio(first.items, first.annotations, SENTIMENT, from_name="sentiment")
    again = from_labelstudio(json.loads(json.dumps(exported)), SENTIMENT)

    assert again.items == first.items
    assert [(a.item, a.annotator, a.value, a.created_at, a.lead_time_ms, a.source_id) for a in again.annotations] == [
        (a.item, a.annotator, a.value, a.created_at, a.lead_time_ms, a.source_id) for a in first.annotations
    ]
    assert again.ground_truth == 1
    task = exported[0]
    assert task["id"] == 11
    assert task["annotations"][0]["completed_by"]["email"] == "alice@example.com"
    assert task["annotations"][0]["result"][0]["type"] == "choices"
    assert task["annotations"][0]["result"][0]["value"] == {"choices": ["Positive"]}
    assert task["annotations"][0]["lead_time"] == 4.25


def test_span_round_trip_writes_utf16_offsets_and_the_text() -> None:
    first = from_labelstudio(_load("ner_export.json"), NER)
    exported = to_labelstudio(first.items, first.annotations, NER)
    regions = exported[0]["annotations"][0]["result"]
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["text"]) for r in regions] == [
        (0, 5, "Alice"), (13, 16, "Bob"), (20, 25, "Paris"),
    ]  # fmt: skip
    assert all(r["type"] == "labels" and r["from_name"] == "label" and r["to_name"] == "text" for r in regions)
    again = from_labelstudio(exported, NER)
    assert [a.value for a in again.annotations] == [a.value for a in first.annotations]


def test_multilabel_and_number_round_trip() -> None:
    tags = LabelSchema("multilabel", ("red", "green", "blue"))
    items = [LabelItem("0", {"text": "x"}), LabelItem("1", {"text": "y"}, "gold", ["blue", "red"])]
    anns = [Annotation("p", "0", "ann-1", ["red", "blue"], assigned_at=1_000, created_at=3_500),
            Annotation("p", "0", "ann-2", [], assigned_at=2_000, created_at=2_000)]  # fmt: skip
    exported = to_labelstudio(items, anns, tags)
    assert exported[0]["annotations"][0]["result"][0]["value"] == {"choices": ["red", "blue"]}
    back = from_labelstudio(exported, tags)
    assert [(a.annotator, a.value, a.lead_time_ms, a.created_at) for a in back.annotations] == [
        ("ann-1", ["red", "blue"], 2_500, 3_500), ("ann-2", [], 0, 2_000),
    ]  # fmt: skip
    assert back.items[1].role == "gold" and back.items[1].answer == ["red", "blue"]

    score = LabelSchema("number", minimum=0, maximum=10)
    items = [LabelItem("7", {"text": "z"})]
    exported = to_labelstudio(items, [Annotation("p", "7", "u", 7.5, created_at=10)], score)
    assert exported[0]["annotations"][0]["result"][0] == {
        "from_name": "label", "to_name": "text", "origin": "manual", "id": "keel000000", "type": "number",
        "value": {"number": 7.5},
    }  # fmt: skip
    assert from_labelstudio(exported, score).annotations[0].value == 7.5


def test_a_rating_counts_as_a_number() -> None:
    region = {"from_name": "stars", "to_name": "t", "type": "rating", "value": {"rating": 4}}
    tasks = [{"id": 1, "data": {"t": "a"}, "annotations": [{"completed_by": 5, "result": [region]}]}]
    imported = from_labelstudio(tasks, LabelSchema("number", minimum=1, maximum=5))
    assert [(a.annotator, a.value) for a in imported.annotations] == [("5", 4.0)]  # a bare user id, as text


def test_consensus_becomes_predictions_with_the_confidence_as_score() -> None:
    pd = pytest.importorskip("pandas")
    first = from_labelstudio(_load("sentiment_export.json"), SENTIMENT)
    consensus = pd.DataFrame({"item": ["11", "13"], "label": ["Positive", "Neutral"], "confidence": [0.82, 0.67]})
    exported = to_labelstudio(first.items, first.annotations, SENTIMENT, consensus=consensus, from_name="sentiment")
    by_id = {t["id"]: t for t in exported}
    prediction = by_id[11]["predictions"][0]
    assert prediction["score"] == 0.82 and prediction["model_version"] == "keel-consensus"
    assert prediction["result"][0]["value"] == {"choices": ["Positive"]}
    assert by_id[13]["predictions"][0]["score"] == 0.67
    assert by_id[12]["predictions"] == []
    # predictions are not annotations: reading the file back leaves them out
    assert len(from_labelstudio(exported, SENTIMENT).annotations) == len(first.annotations)


def test_text_keys_travel_in_a_key_field() -> None:
    items = [LabelItem("order-a", {"text": "x"}), LabelItem("order-b", {"text": "y"})]
    anns = [ImportedAnnotation("order-b", "u@x", "Positive", created_at=5_000, lead_time_ms=1_000)]
    exported = to_labelstudio(items, anns, SENTIMENT, key_field="keel_key")
    assert [t["id"] for t in exported] == [1, 2]  # Label Studio ids are integers
    for t in exported:
        t["id"] += 500  # Label Studio gives imported tasks ids of its own
    back = from_labelstudio(exported, SENTIMENT, key_field="keel_key")
    assert [i.key for i in back.items] == ["order-a", "order-b"]
    assert [(a.item, a.value) for a in back.annotations] == [("order-b", "Positive")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t[1].__setitem__("data", "text"), r"tasks\[1\] \(id 12\)\.data must be an object"),
        (lambda t: t[0]["annotations"][1].__setitem__("completed_by", None), r"annotations\[1\]\.completed_by"),
        (lambda t: t[0]["annotations"][0]["result"][0]["value"].__setitem__("choices", ["Angry"]), r"result must be one of"),
        (lambda t: t[0]["annotations"][0]["result"][0]["value"].__setitem__("choices", ["Positive", "Neutral"]),
         r"exactly one class"),
        (lambda t: t[0]["annotations"][0].__setitem__("created_at", "yesterday"), r"annotations\[0\]\.created_at"),
        (lambda t: t[0]["annotations"][0].__setitem__("lead_time", -3), r"annotations\[0\]\.lead_time"),
        (lambda t: t[3].__setitem__("id", 11), r"key must be unique"),
        (lambda t: t[2]["annotations"][3]["result"][0]["value"].__setitem__("choices", ["Positive"]) or
         t[2]["annotations"].append(copy.deepcopy(t[2]["annotations"][2]) | {"ground_truth": True}),
         r"ground-truth annotations must be one answer"),
    ],
)  # fmt: skip
def test_malformed_exports_name_the_task_and_field(change: Any, message: str) -> None:
    tasks = _load("sentiment_export.json")
    change(tasks)
    with pytest.raises(InvalidArgument, match=message):
        from_labelstudio(tasks, SENTIMENT)


def test_several_control_tags_of_the_type_need_from_name() -> None:
    tasks = _load("sentiment_export.json")
    extra = {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["Neutral"]}}
    tasks[0]["annotations"][0]["result"].append(extra)
    with pytest.raises(InvalidArgument, match=r"from_name must be one of \['sentiment', 'topic'\]"):
        from_labelstudio(tasks, SENTIMENT)
    picked = from_labelstudio(tasks, SENTIMENT, from_name="topic")
    assert [(a.item, a.value) for a in picked.annotations] == [("11", "Neutral")]
    assert picked.skipped == 9  # the 9 other answered annotations have no "topic" answer (one is cancelled)


def test_not_a_list_of_tasks_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="tasks must be a list"):
        from_labelstudio({"id": 1}, SENTIMENT)


def test_a_label_studio_export_gets_agreement_consensus_and_status_from_keel() -> None:
    from keel.core.labeling import LabelProject
    from keel.label.agreement import summary
    from keel.label.consensus import consensus
    from keel.label.frames import annotations_frame
    from keel.label.status import compute_status

    imported = from_labelstudio(_load("sentiment_export.json"), SENTIMENT)
    annotations = imported.to_annotations("reviews")
    frame = annotations_frame(annotations)
    labels = consensus(frame, SENTIMENT, method="majority")
    by_item = {r.item: (r.label, r.confidence) for r in labels.itertuples()}
    assert by_item["12"] == ("Negative", 1.0) and by_item["11"] == ("Positive", pytest.approx(2 / 3))

    project = LabelProject("reviews", "reviews@1", SENTIMENT, overlap=3)
    status = compute_status(project, imported.items, annotations)
    assert (status.items, status.done, status.in_progress, status.untouched) == (4, 1, 1, 2)  # 11 | 12 | 14, 15
    assert status.gold_items == 1 and status.gold_answers == 3
    assert status.agreement == summary(frame, SENTIMENT)
    scores = {r["annotator"]: r["gold_accuracy"] for r in status.annotators}
    assert scores == {"alice@example.com": 1.0, "bob@example.com": 0.0, "carol@example.com": 1.0}

    back = to_labelstudio(imported.items, imported.annotations, SENTIMENT, consensus=labels, from_name="sentiment")
    assert {t["id"]: t["predictions"][0]["result"][0]["value"]["choices"][0] for t in back if t["predictions"]} == {
        11: "Positive",
        12: "Negative",
        13: "Neutral",
    }
