"""Annotator quality: gold accuracy, agreement with the others, time, the flag rule, drift over periods, and the
confusion between annotators, on a synthetic project whose spammer and drifting annotator are known."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from keel.core.labeling import Annotation, LabelSchema
from keel.label import quality as q
from keel.label.frames import annotations_frame

CLASSES = ("a", "b", "c", "d")
SCHEMA = LabelSchema("classes", CLASSES)
DAY = 86_400_000


def project(seed: int = 3) -> tuple[pd.DataFrame, dict[str, str]]:
    """300 items over 3 days, every item answered by all 5 annotators; every 5th item is gold. ``spam`` answers at
    random in 1 s; ``drift`` is as good as the others for 2 days and random on day 3."""
    rng = random.Random(seed)
    truth = {f"i{n}": rng.choice(CLASSES) for n in range(300)}
    gold = {k: v for n, (k, v) in enumerate(truth.items()) if n % 5 == 0}
    annotations = []
    for n, (item, true) in enumerate(truth.items()):
        day = n // 100
        for who in ("ann", "bob", "cat", "drift", "spam"):
            good = who != "spam" and not (who == "drift" and day == 2)
            value = true if good and rng.random() < 0.9 else rng.choice(CLASSES)
            created = day * DAY + n * 1000 + 10_000
            spent = 1_000 if who == "spam" else 8_000
            annotations.append(Annotation("p", item, who, value, created - spent, created))
    return annotations_frame(annotations), gold


def test_annotator_scores_flag_the_spammer_with_the_reason() -> None:
    frame, gold = project()
    scores = q.annotator_scores(frame, gold, SCHEMA).set_index("annotator")
    assert list(scores.columns) == [c for c in q.SCORE_COLUMNS if c != "annotator"]
    assert (scores["answered"] == 300).all() and (scores["gold_answered"] == 60).all()
    assert scores.loc["spam", "median_time_ms"] == 1_000.0 and scores.loc["ann", "median_time_ms"] == 8_000.0
    assert scores.loc["spam", "gold_accuracy"] < 0.4 and scores.loc["ann", "gold_accuracy"] > 0.8
    assert scores.loc["spam", "agreement"] < 0.1 < 0.5 < scores.loc["ann", "agreement"]
    assert scores.loc["spam", "flagged"] and "gold accuracy" in scores.loc["spam", "reason"]
    assert not scores.loc[["ann", "bob", "cat"], "flagged"].any()
    # the gold accuracy is exactly the share of right gold answers
    spam = frame[(frame["annotator"] == "spam") & frame["item"].isin(gold)]
    assert scores.loc["spam", "gold_accuracy"] == pytest.approx(sum(spam["value"] == spam["item"].map(gold)) / 60)


def test_drifting_flags_the_period_where_an_annotator_falls() -> None:
    frame, gold = project()
    drift = q.drifting(frame, gold, SCHEMA, DAY)
    mine = drift[drift["annotator"] == "drift"].set_index("start_ms")
    assert mine.index.tolist() == [0, DAY, 2 * DAY]
    assert not mine.loc[0, "flagged"] and not mine.loc[DAY, "flagged"]
    assert mine.loc[2 * DAY, "flagged"] and "fell from" in mine.loc[2 * DAY, "reason"]
    assert "trails the period's median" in mine.loc[2 * DAY, "reason"]
    steady = drift[drift["annotator"].isin(["ann", "bob", "cat"])]
    assert not steady["flagged"].any()
    assert (drift.groupby("annotator")["gold_answered"].sum() == 60).all()


def test_gold_scores_by_kind() -> None:
    ml = LabelSchema("multilabel", ("x", "y", "z"))
    assert q.gold_score(ml, ["x", "y"], ["y", "z"]) == pytest.approx(1 / 3)
    assert q.gold_score(ml, [], []) == 1.0
    sp = LabelSchema("spans", ("P",), text_field="t")
    assert q.gold_score(sp, [{"start": 0, "end": 2, "label": "P"}], [{"start": 1, "end": 3, "label": "P"}]) == 0.5
    num = LabelSchema("number", minimum=0.0, maximum=10.0)
    frame = pd.DataFrame({"item": ["i", "j"], "annotator": ["x", "x"], "value": [5.4, 7.0], "assigned_at": 0, "created_at": 1})
    scores = q.annotator_scores(frame, {"i": 5.0, "j": 5.0}, num, min_gold=1)
    assert scores.loc[0, "gold_accuracy"] == 0.5  # 5.4 is within 0.5 of 5, 7 is not
    assert scores.loc[0, "agreement"] is None  # nobody else answered


def test_confusion_counts_every_ordered_pair_on_an_item() -> None:
    frame = pd.DataFrame({"item": ["i", "i", "i", "j", "j"], "annotator": ["x", "y", "z", "x", "y"],
                          "value": ["a", "a", "b", "c", "c"]})  # fmt: skip
    m = q.confusion(frame, CLASSES)
    assert m.index.tolist() == list(CLASSES) and m.columns.tolist() == list(CLASSES)
    assert m.loc["a", "a"] == 2 and m.loc["a", "b"] == 2 and m.loc["b", "a"] == 2 and m.loc["c", "c"] == 2
    assert int(m.to_numpy().sum()) == 3 * 2 + 2
    ml = pd.DataFrame({"item": ["i", "i"], "annotator": ["x", "y"], "value": [["a", "b"], []]})
    mm = q.confusion(ml, None, LabelSchema("multilabel", ("a", "b")))
    assert mm.loc["a", q.NONE] == 1 and mm.loc["b", q.NONE] == 1 and mm.loc[q.NONE, "a"] == 1


def test_drifting_without_gold_compares_agreement_with_the_periods_peers() -> None:
    frame, _ = project()
    drift = q.drifting(frame, {}, SCHEMA, DAY)
    flagged = {(a, s) for a, s in drift.loc[drift["flagged"], ["annotator", "start_ms"]].itertuples(index=False)}
    assert ("drift", 2 * DAY) in flagged and ("drift", 0) not in flagged and ("drift", DAY) not in flagged
    assert not any(a in ("ann", "bob", "cat") for a, _ in flagged)
    assert drift["gold_accuracy"].map(lambda v: v is None).all()
