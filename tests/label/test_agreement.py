"""Agreement measures against published worked examples (Fleiss 1971, Krippendorff 2011, Wikipedia's Fleiss and Cohen
examples) and against the ``krippendorff`` package, then per kind (multilabel, number, spans), per class and over time."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from keel.core.errors import InvalidArgument
from keel.core.labeling import Annotation, LabelSchema
from keel.label import agreement as ag
from keel.label.frames import annotations_frame, units

FIVE = LabelSchema("classes", tuple("12345"))

# Fleiss (1971), the 30 patients x 6 psychiatrists of its Table 1 as raw ratings (statsmodels' test data); kappa 0.430
# (R irr::kappam.fleiss gives 0.4302445)
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3],
    [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2],
    [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5], [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip
# Wikipedia's Fleiss' kappa example: 10 items x 14 raters, counts per category; kappa 0.210
WIKI_COUNTS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
               [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
NAN = float("nan")
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers x 12 units, missing values;
# alpha 0.743 nominal, 0.849 interval
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


def frame_of(rows: Sequence[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item", "annotator", "value"])


def from_matrix(data: list[list[float]], as_text: bool) -> pd.DataFrame:
    """Coders x units (NaN missing) as annotation rows."""
    rows = [(f"u{j}", f"c{i}", str(int(v)) if as_text else float(v))
            for i, r in enumerate(data) for j, v in enumerate(r) if not math.isnan(v)]  # fmt: skip
    return frame_of(rows)


def test_fleiss_kappa_matches_fleiss_1971() -> None:
    f = frame_of([(f"p{i}", f"r{j}", str(v)) for i, r in enumerate(FLEISS_1971) for j, v in enumerate(r)])
    assert ag.fleiss_kappa(f, FIVE) == pytest.approx(0.4302445, abs=1e-7)


def test_fleiss_kappa_matches_the_wikipedia_example() -> None:
    rows, n = [], 0
    for i, counts in enumerate(WIKI_COUNTS):
        for category, count in enumerate(counts):
            for _ in range(count):
                rows.append((f"i{i}", f"r{n}", str(category + 1)))
                n += 1
    assert ag.fleiss_kappa(frame_of(rows), FIVE) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_with_varying_raters_uses_each_items_own_count() -> None:
    # item a: 3 of 3 agree (P=1); item b: 2 raters disagree (P=0); item c has 1 answer and is left out
    f = frame_of([("a", "x", "p"), ("a", "y", "p"), ("a", "z", "p"), ("b", "x", "p"), ("b", "y", "q"), ("c", "x", "q")])
    p_bar = (1.0 + 0.0) / 2
    p_e = (4 / 5) ** 2 + (1 / 5) ** 2
    assert ag.fleiss_kappa(f, LabelSchema("classes", ("p", "q"))) == pytest.approx((p_bar - p_e) / (1 - p_e))
    assert ag.fleiss_kappa(frame_of([("a", "x", "p")]), LabelSchema("classes", ("p", "q"))) is None


def test_krippendorff_alpha_matches_krippendorff_2011() -> None:
    nominal = ag.krippendorff_alpha(from_matrix(KRIPPENDORFF_2011, True), "nominal", FIVE)
    interval = ag.krippendorff_alpha(from_matrix(KRIPPENDORFF_2011, False), "interval", LabelSchema("number"))
    assert nominal is not None and round(nominal, 3) == 0.743
    assert interval is not None and round(interval, 3) == 0.849


def test_krippendorff_alpha_matches_the_package_on_random_data() -> None:
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, 60)
    data = np.where(rng.random((7, 60)) < 0.6, truth, rng.integers(1, 6, (7, 60))).astype(float)
    data[rng.random((7, 60)) < 0.3] = np.nan
    for level, as_text, schema in (("nominal", True, FIVE), ("interval", False, LabelSchema("number"))):
        ours = ag.krippendorff_alpha(from_matrix(data.tolist(), as_text), level, schema)
        assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement=level), abs=1e-12)


def test_cohen_pairs_matches_sklearn_and_the_textbook_example() -> None:
    # Wikipedia: 50 items, both yes 20, a yes b no 5, a no b yes 10, both no 15: kappa 0.4
    rows = []
    for n, (a, b) in enumerate([("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15):
        rows += [(f"i{n}", "a", a), (f"i{n}", "b", b)]
    rows += [("solo", "c", "y"), ("i0", "c", "y")]  # c shares one item with a and with b
    pairs = ag.cohen_pairs(frame_of(rows), LabelSchema("classes", ("y", "n"))).set_index(["annotator_a", "annotator_b"])
    assert pairs.loc[("a", "b"), "items"] == 50
    assert pairs.loc[("a", "b"), "kappa"] == pytest.approx(0.4)
    assert pairs.loc[("a", "c"), "items"] == 1 and pairs.loc[("a", "c"), "kappa"] is None
    assert len(pairs) == 3


def test_alpha_is_none_without_variation_or_pairs() -> None:
    schema = LabelSchema("classes", ("p", "q"))
    assert ag.krippendorff_alpha(frame_of([("a", "x", "p"), ("a", "y", "p")]), "nominal", schema) is None
    assert ag.krippendorff_alpha(frame_of([("a", "x", "p"), ("b", "y", "q")]), "nominal", schema) is None
    with pytest.raises(InvalidArgument):
        ag.krippendorff_alpha(frame_of([("a", "x", "p")]), "ordinal", schema)


def test_multilabel_is_one_binary_decision_per_class() -> None:
    schema = LabelSchema("multilabel", ("red", "blue"))
    f = frame_of([("a", "x", ["red"]), ("a", "y", ["red", "blue"]), ("b", "x", []), ("b", "y", []),
                  ("c", "x", ["blue"]), ("c", "y", ["blue"])])  # fmt: skip
    u = units(f, schema)
    assert len(u) == 12 and set(u["code"]) == {0, 1}
    per = ag.per_class(f, schema=schema).set_index("class")
    # red: a (1,1) b (0,0) c (0,0) -> perfect; blue: a (0,1) b (0,0) c (1,1)
    assert per.loc["red", "alpha"] == pytest.approx(1.0)
    assert per.loc["red", "support"] == 2 and per.loc["blue", "support"] == 3
    blue = ag.alpha_of_units(pd.DataFrame({"unit": list("aabbcc"), "code": [0, 1, 0, 0, 1, 1]}))
    assert per.loc["blue", "alpha"] == pytest.approx(blue)
    pooled = ag.krippendorff_alpha(f, "nominal", schema)
    assert pooled is not None and blue is not None and blue < pooled < 1.0


def test_spans_are_coded_per_character_over_the_characters_anyone_marked() -> None:
    schema = LabelSchema("spans", ("PER", "ORG"), text_field="text")
    f = frame_of([("t", "x", [{"start": 0, "end": 4, "label": "PER"}]),
                  ("t", "y", [{"start": 0, "end": 2, "label": "PER"}, {"start": 6, "end": 8, "label": "ORG"}])])  # fmt: skip
    u = units(f, schema).sort_values(["annotator", "char"])
    assert sorted(set(u["char"])) == [0, 1, 2, 3, 6, 7]  # 4 and 5 nobody marked
    assert u[u["annotator"] == "x"]["code"].tolist() == ["PER", "PER", "PER", "PER", "O", "O"]
    assert u[u["annotator"] == "y"]["code"].tolist() == ["PER", "PER", "O", "O", "ORG", "ORG"]
    assert ag.cohen_pairs(f, schema).loc[0, "items"] == 1


def test_over_time_puts_each_item_in_the_window_of_its_last_answer() -> None:
    hour = 3_600_000
    annotations = [Annotation("p", "a", "x", "p", 0, 10), Annotation("p", "a", "y", "p", 0, hour + 5),  # a ends in hour 1
                   Annotation("p", "b", "x", "p", 0, 20), Annotation("p", "b", "y", "q", 0, 30),  # b ends in hour 0
                   Annotation("p", "c", "x", "q", 0, 40), Annotation("p", "c", "y", "q", 0, 50)]  # fmt: skip
    f = annotations_frame(annotations)
    t = ag.over_time(f, hour, LabelSchema("classes", ("p", "q")))
    assert t["start_ms"].tolist() == [0, hour]
    assert t["annotations"].tolist() == [4, 2]
    assert t.loc[0, "alpha"] == pytest.approx(ag.krippendorff_alpha(f[f["item"] != "a"], "nominal"))
    assert t.loc[1, "alpha"] is None  # one item agreeing on one value: undefined
    with pytest.raises(InvalidArgument):
        ag.over_time(f, 0)


def test_summary_covers_each_kind() -> None:
    f = from_matrix(KRIPPENDORFF_2011, True)
    s = ag.summary(f, FIVE)
    assert round(s["alpha"], 3) == 0.743 and s["level"] == "nominal"
    assert s["annotators"] == 4 and s["items"] == 12 and s["annotations"] == len(f)
    assert len(s["pairs"]) == 6 and {r["class"] for r in s["per_class"]} == set("12345")
    assert isinstance(s["fleiss_kappa"], float) and s["over_time"] == []  # no times in this frame
    timed = ag.summary(f.assign(created_at=5), FIVE, period_ms=1000)["over_time"]
    assert timed == [{"start_ms": 0, "annotations": len(f), "alpha": s["alpha"]}]
    n = ag.summary(from_matrix(KRIPPENDORFF_2011, False), LabelSchema("number"))
    assert round(n["alpha"], 3) == 0.849 and n["level"] == "interval" and n["pairs"] == [] and n["fleiss_kappa"] is None
    with pytest.raises(InvalidArgument):
        ag.cohen_pairs(from_matrix(KRIPPENDORFF_2011, False), LabelSchema("number"))
