"""The label project report: every user value escaped, the numbers of a known project shown right, no script."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from keel.label.report import reading, render_report
from keel.label.status import LabelStatus

EVIL = "<script>alert('x')</script>"
EVIL_CLASS = 'pos"><img src=x onerror=alert(1)>'
EVIL_ANNOTATOR = "eve</td><script>steal()</script>"


def _status(**overrides: Any) -> LabelStatus:
    base: dict[str, Any] = dict(
        project="reviews", dataset="reviews@1", kind="classes", classes=(EVIL_CLASS, "neg"), overlap=3,
        guideline_version=2, computed_at=1_764_460_800_000,
        items=10, done=4, in_progress=3, untouched=3, gold_items=2, qualification_items=1, annotations=17, gold_answers=5,
        agreement={
            "kind": "classes", "level": "nominal", "items": 7, "annotations": 17, "annotators": 3,
            "alpha": 0.5123, "fleiss_kappa": 0.8567,
            "pairs": [{"annotator_a": "alice", "annotator_b": EVIL_ANNOTATOR, "items": 6, "kappa": 0.3333},
                      {"annotator_a": "alice", "annotator_b": "bob", "items": 5, "kappa": 0.9}],
            "per_class": [{"class": EVIL_CLASS, "alpha": 0.61, "support": 9}, {"class": "neg", "alpha": 0.75, "support": 8}],
            "over_time": [{"start_ms": 1_764_374_400_000, "annotations": 9, "alpha": 0.7},
                          {"start_ms": 1_764_460_800_000, "annotations": 8, "alpha": 0.4}],
        },
        annotators=[
            {"annotator": "alice", "answered": 7, "gold_answered": 2, "gold_accuracy": 1.0, "agreement": 0.8,
             "median_time_ms": 4_500, "flagged": False, "reason": "", "excluded": False},
            {"annotator": EVIL_ANNOTATOR, "answered": 6, "gold_answered": 2, "gold_accuracy": 0.25, "agreement": 0.1,
             "median_time_ms": 800, "flagged": True, "reason": f"gold accuracy 25% below 70% {EVIL}", "excluded": True},
        ],
        drifting=[{"annotator": EVIL_ANNOTATOR, "start_ms": 1_764_374_400_000, "gold_accuracy": 0.9, "agreement": 0.7,
                   "flagged": True},
                  {"annotator": EVIL_ANNOTATOR, "start_ms": 1_764_460_800_000, "gold_accuracy": 0.2, "agreement": 0.1,
                   "flagged": True}],
        confusion={"labels": [EVIL_CLASS, "neg"], "counts": [[11, 3], [3, 7]]},
        labels={"labelled": 6, "finished": 6, "by_source": {"consensus": 4, "gold": 2}, "mean_confidence": 0.8125},
        review_threshold=0.7,
        review_queue=[{"item": f"row-{EVIL}", "label": EVIL_CLASS, "confidence": 0.5512, "annotations": 3}],
        review_queue_size=1, reviews=2,
        audits={"audited": 8, "confirmed": 6, "corrected": 2, "accuracy": 0.75, "low": 0.4093, "high": 0.9286},
        exclusions=[{"annotator": EVIL_ANNOTATOR, "reason": f"spam {EVIL}"}],
    )  # fmt: skip
    base.update(overrides)
    return LabelStatus(**base)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def _text(html: str) -> str:
    """The page's visible text (tags dropped, entities decoded), one space between pieces."""
    import html as h

    return re.sub(r"\s+", " ", h.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_hostile_names_are_text_not_markup() -> None:
    html = render_report(_status())
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not any(name.startswith("on") for name, _ in parser.attrs)
    assert "<script>" not in html and "<img" not in html
    text = _text(html)
    assert EVIL_ANNOTATOR in text and EVIL_CLASS in text and f"row-{EVIL}" in text and f"spam {EVIL}" in text


def test_the_numbers_of_a_known_project_are_shown() -> None:
    text = _text(render_report(_status()))
    assert "done (3 answers) 4 (40.0%)" in text
    assert "in progress 3 (30.0%)" in text and "untouched 3 (30.0%)" in text
    assert "gold items 2" in text and "qualification items 1" in text and "annotations 17" in text
    assert "Krippendorff's alpha (nominal) 0.5123 unreliable" in text
    assert "Fleiss' kappa 0.8567 almost perfect agreement beyond chance" in text
    assert "17 annotations of 7 items by 3 annotators" in text
    assert "mean consensus confidence 0.8125" in text
    # the lowest pair first
    assert text.index("0.3333") < text.index("0.9 almost perfect")
    assert "1 finished item(s) with consensus confidence below 0.7" in text and "2 reviewed so far" in text
    assert "0.5512" in text
    assert "items audited 8" in text and "confirmed 6 (75.0%)" in text and "corrected 2 (25.0%)" in text
    assert "estimated label accuracy 75.0% (95% interval 40.9% to 92.9%)" in text
    assert "4.5 s" in text and "25.0%" in text  # alice's median time; eve's gold accuracy
    assert "Drifting: " + EVIL_ANNOTATOR in text


def test_charts_are_inline_svg_and_nothing_loads_from_elsewhere() -> None:
    html = render_report(_status())
    assert html.count("<svg") == 4  # progress, agreement over time, drift, confusion
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html and "<link" not in html
    # the heatmap: one cell per pair of labels, the counts as text
    cells = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="32" height="32"[^>]*><title>([^<]*)</title>', html)
    assert len(cells) == 4
    assert cells[1].endswith(": 3") and cells[0].endswith(": 11")
    # the over-time line joins two points
    assert re.search(r'<polyline fill="none" stroke="#1f77b4" stroke-width="1.8" points="[\d.,]+ [\d.,]+">', html)


def test_an_empty_project_renders() -> None:
    empty: dict[str, Any] = {"agreement": {}, "annotators": [], "drifting": [], "confusion": {}, "labels": {}, "audits": {},
                             "review_queue": [], "exclusions": []}  # fmt: skip
    status = _status(items=5, done=0, in_progress=0, untouched=5, annotations=0, review_queue_size=0, reviews=0, **empty)
    text = _text(render_report(status))
    assert "No annotations yet." in text and "No annotator has answered yet." in text and "No audit yet" in text
    assert "untouched 5 (100.0%)" in text


def test_undefined_numbers_show_as_a_dash_with_a_reason() -> None:
    agreement: dict[str, Any] = {"level": "nominal", "alpha": None, "fleiss_kappa": float("nan"), "items": 1, "annotations": 1,
                 "annotators": 1, "pairs": [], "per_class": [], "over_time": []}  # fmt: skip
    text = _text(render_report(_status(agreement=agreement)))
    assert "Krippendorff's alpha (nominal) - not defined" in text


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [("alpha", 0.85, "reliable"), ("alpha", 0.7, "tentative"), ("alpha", 0.5, "unreliable"),
     ("kappa", 0.81, "almost perfect"), ("kappa", 0.61, "substantial"), ("kappa", 0.5, "moderate"),
     ("kappa", 0.3, "fair"), ("kappa", 0.0, "slight"), ("kappa", -0.2, "below chance"), ("kappa", None, "not defined")],
)  # fmt: skip
def test_reading_names_the_band(metric: str, value: float | None, expected: str) -> None:
    assert reading(metric, value).startswith(expected)
