"""Consensus: keel's majority vote, Dawid-Skene and GLAD against crowd-kit's own output on a fixed task (written by
tests/fixtures/crowdkit/write_fixtures.py in crowd-kit's venv), then ties, exclusions and each label kind."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keel.core.errors import InvalidArgument
from keel.core.labeling import LabelSchema
from keel.label import consensus as cs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crowdkit"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.fixture(scope="module")
def task() -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    t = load("task")
    return pd.DataFrame(t["annotations"], columns=["item", "annotator", "value"]), t["classes"], t["truth"]


def frame_of(rows: Sequence[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item", "annotator", "value"])


def accuracy(labels: pd.DataFrame, truth: dict[str, str]) -> float:
    got = labels.set_index("item")["label"]
    return sum(got[i] == t for i, t in truth.items()) / len(truth)


@pytest.mark.parametrize("method", ["dawid_skene", "glad"])
def test_matches_crowdkit(task: tuple[pd.DataFrame, list[str], dict[str, str]], method: str) -> None:
    frame, classes, truth = task
    theirs = load(method)
    ours = cs.consensus(frame, LabelSchema("classes", tuple(classes)), method).set_index("item")
    assert len(ours) == len(theirs["labels"]) == 300
    same = sum(ours.loc[i, "label"] == label for i, label in theirs["labels"].items()) / len(ours)
    assert same >= 0.99
    gaps = [abs(ours.loc[i, "confidence"] - c) for i, c in theirs["confidence"].items()]
    assert max(gaps) < 1e-3
    assert (ours["method"] == method).all() and (ours["annotations"] == 5).all()
    # the aggregation earns its keep on this task: better than the majority vote
    assert accuracy(ours.reset_index(), truth) > accuracy(cs.majority_vote(frame, classes), truth) + 0.03


def test_dawid_skene_confusion_matches_crowdkit_and_finds_the_spammer(
    task: tuple[pd.DataFrame, list[str], dict[str, str]],
) -> None:
    frame, classes, _ = task
    result = cs.dawid_skene(frame, classes)
    theirs = load("dawid_skene")["errors"]
    for annotator, cells in theirs.items():
        for key, p in cells.items():
            answer, true = key.split("|")
            assert result.confusion[annotator].loc[true, answer] == pytest.approx(p, abs=1e-3)
    diagonal = {a: float(pd.Series([m.loc[c, c] for c in classes]).mean()) for a, m in result.confusion.items()}
    assert min(diagonal, key=diagonal.__getitem__) == "spam"
    assert diagonal["a0"] > 0.85 and diagonal["spam"] < 0.4
    assert result.confusion["biased"].loc["c1", "c0"] > 0.3  # answers c0 half the time whatever the truth
    assert sum(result.priors.values()) == pytest.approx(1.0)


def test_majority_matches_crowdkit_except_where_it_breaks_ties_by_class_order(
    task: tuple[pd.DataFrame, list[str], dict[str, str]],
) -> None:
    frame, classes, _ = task
    theirs = load("majority")
    ours = cs.majority_vote(frame, classes).set_index("item")
    for item, posterior in theirs["posteriors"].items():
        top = max(posterior.values())
        tied = [c for c in classes if posterior.get(c, 0.0) == top]
        assert ours.loc[item, "confidence"] == pytest.approx(top)
        assert ours.loc[item, "label"] == tied[0]  # the class listed first among the tied ones
        if len(tied) == 1:
            assert theirs["labels"][item] == tied[0]


def test_majority_ties_do_not_depend_on_row_order() -> None:
    rows = [("i", "x", "b"), ("i", "y", "a"), ("j", "x", "a"), ("j", "y", "b"), ("j", "z", "b")]
    one = cs.majority_vote(frame_of(rows), ["b", "a"])
    two = cs.majority_vote(frame_of(rows[::-1]), ["b", "a"]).set_index("item").loc[one["item"]].reset_index()
    assert one["label"].tolist() == two["label"].tolist() == ["b", "b"]
    assert one["confidence"].tolist() == pytest.approx([0.5, 2 / 3])


def test_exclude_leaves_the_annotators_out() -> None:
    schema = LabelSchema("classes", ("a", "b"))
    rows = [("i", "good1", "a"), ("i", "good2", "a"), ("i", "bad1", "b"), ("i", "bad2", "b"), ("i", "bad3", "b")]
    assert cs.consensus(frame_of(rows), schema, "majority")["label"].tolist() == ["b"]
    out = cs.consensus(frame_of(rows), schema, "majority", exclude=["bad1", "bad2", "bad3"])
    assert out["label"].tolist() == ["a"] and out["annotations"].tolist() == [2] and out["confidence"].tolist() == [1.0]
    assert list(cs.consensus(frame_of(rows), schema, exclude=[r[1] for r in rows]).columns) == cs.COLUMNS


def test_multilabel_is_decided_class_by_class() -> None:
    schema = LabelSchema("multilabel", ("red", "green", "blue"))
    rows = [("i", "x", ["red", "blue"]), ("i", "y", ["red"]), ("i", "z", ["red", "blue"]),
            ("j", "x", []), ("j", "y", []), ("j", "z", ["green"])]  # fmt: skip
    out = cs.consensus(frame_of(rows), schema, "majority").set_index("item")
    assert out.loc["i", "label"] == ["red", "blue"] and out.loc["j", "label"] == []
    assert out.loc["i", "confidence"] == pytest.approx(2 / 3)  # the least sure class: blue, 2 of 3
    assert out.loc["i", "annotations"] == 3
    ds = cs.consensus(frame_of(rows), schema).set_index("item")
    assert ds.loc["i", "label"] == ["red", "blue"] and 0.0 <= ds.loc["i", "confidence"] <= 1.0


def test_spans_are_decided_per_character_and_merged_back() -> None:
    schema = LabelSchema("spans", ("PER", "ORG"), text_field="text")
    rows = [("t", "x", [{"start": 0, "end": 4, "label": "PER"}, {"start": 10, "end": 13, "label": "ORG"}]),
            ("t", "y", [{"start": 0, "end": 3, "label": "PER"}, {"start": 10, "end": 13, "label": "ORG"}]),
            ("t", "z", [{"start": 0, "end": 4, "label": "PER"}]),
            ("u", "x", []), ("u", "y", [])]  # fmt: skip
    out = cs.consensus(frame_of(rows), schema, "majority").set_index("item")
    assert out.loc["t", "label"] == [{"start": 0, "end": 4, "label": "PER"}, {"start": 10, "end": 13, "label": "ORG"}]
    # characters 0-2: 3 of 3; 3 and 10-12: 2 of 3 -> the mean over the 7 marked characters
    assert out.loc["t", "confidence"] == pytest.approx((3 * 1 + 4 * (2 / 3)) / 7)
    assert out.loc["u", "label"] == [] and out.loc["u", "confidence"] == 1.0 and out.loc["u", "annotations"] == 2


def test_numbers_take_the_median_with_the_share_near_it_as_confidence() -> None:
    schema = LabelSchema("number", minimum=0.0, maximum=100.0)
    rows = [("i", "x", 10.0), ("i", "y", 12.0), ("i", "z", 40.0), ("j", "x", 50.0)]
    out = cs.consensus(frame_of(rows), schema).set_index("item")  # the default method does not apply: median
    assert out.loc["i", "label"] == 12.0 and out.loc["i", "confidence"] == pytest.approx(2 / 3)  # within 5 of 12
    assert out.loc["j", "label"] == 50.0 and out.loc["j", "confidence"] == 1.0
    assert (out["method"] == "median").all()
    with pytest.raises(InvalidArgument):
        cs.consensus(frame_of([("i", "x", "a")]), LabelSchema("classes", ("a", "b")), "median")
    with pytest.raises(InvalidArgument):
        cs.consensus(frame_of(rows), schema, "mean")


def test_glad_reports_abilities_and_difficulties(task: tuple[pd.DataFrame, list[str], dict[str, str]]) -> None:
    frame, classes, _ = task
    result = cs.glad(frame, classes)
    theirs = load("glad")["alphas"]
    for annotator, alpha in theirs.items():
        assert result.ability[annotator] == pytest.approx(alpha, abs=1e-3)
    assert result.ability["a0"] > result.ability["a5"] > result.ability["spam"]
    assert all(d > 0 for d in result.difficulty.values())
