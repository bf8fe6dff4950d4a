"""Numbers in the HTML reports (issue 13): y-axis tick labels fit left of the axis instead of being clipped
(``.08099``), parameters show four significant digits instead of 17, with the full value on hover."""

from __future__ import annotations

import re

import keel
from keel.core import html as kh


def _end_anchored_labels(svg: str) -> list[tuple[float, str]]:
    return [(float(x), text) for x, text in re.findall(r'<text x="([\d.]+)"[^>]*text-anchor="end">([^<]*)</text>', svg)]


def _dejavu_width(text: str, size: float = 10) -> float:
    """The width of ``text`` in DejaVu Sans, the sans-serif face of most Linux browsers (advance widths in em)."""
    em = {".": 0.318, "-": 0.361, "e": 0.615, "+": 0.838}
    return sum(em.get(ch, 0.636) for ch in text) * size


def _assert_labels_fit(svg: str, size: float = 10) -> None:
    labels = _end_anchored_labels(svg)
    assert labels
    for x, text in labels:
        assert x - _dejavu_width(text, size) >= 2, (x, text)  # the label's left end is inside the drawing


def test_y_tick_labels_of_small_values_are_not_clipped() -> None:
    svg = kh.xy_chart([("val_loss", [0.0, 1.0, 2.0], [0.0809934, 0.0812, 0.0815112], "line")])
    assert [t for _, t in _end_anchored_labels(svg)] == ["0.08099", "0.08125", "0.08151"]
    _assert_labels_fit(svg)
    assert _dejavu_width("0.08099") > 40  # why the old 44 px margin (labels at x=40) showed ".08099"


def test_long_tick_labels_widen_the_margin_and_the_plot_starts_after_them() -> None:
    svg = kh.xy_chart([("big", [0.0, 1.0], [-123456.5, -0.000123456], "line")])
    _assert_labels_fit(svg)
    first_point_x = float(re.search(r'points="([\d.]+),', svg).group(1))  # type: ignore[union-attr]
    assert first_point_x >= max(x for x, _ in _end_anchored_labels(svg))  # the line starts right of its labels
    _assert_labels_fit(kh.bar_chart(["a", "b"], [[0.0123456, 0.0811111]]))


def test_report_numbers_have_four_significant_digits_and_no_float_noise() -> None:
    assert kh.fmt(0.30000000000000004) == "0.3"
    assert kh.fmt(12345.0) == "12345"  # not 1.234e+04
    assert kh.fmt(0.012345678901234567) == "0.01235"
    assert kh.param("0.30000000000000004") == "0.3"
    assert kh.param("0.012345678901234567") == "<span title='0.0123456789012346'>0.01235</span>"
    assert kh.param("32") == "32" and kh.param("adam") == "adam" and kh.param("<b>") == "&lt;b&gt;"


def test_the_runs_report_prints_parameters_shortly() -> None:
    from keel.tracking.report import runs_report

    with keel.start_run(experiment="report", params={"lr": 0.1 + 0.2, "alpha": 0.012345678901234567, "opt": "adam"}) as run:
        for step in range(3):
            run.log_metric("loss", 0.0809934 + step / 1e4, step=step)
    page = runs_report(keel.get_client(), [run.id])
    assert "0.30000000000000004" not in page and "<td class=l>0.3</td>" in page
    assert "<td class=l><span title='0.0123456789012346'>0.01235</span></td>" in page
    assert "<td class=l>adam</td>" in page
    _assert_labels_fit(page)


def test_the_study_report_prints_parameters_shortly() -> None:
    from keel.tune.report import study_html
    from keel.tune.trials import TrialRecord

    trials = [TrialRecord(0, "r0", {"lr": 0.012345678901234567, "depth": 3}, "complete", 0.0809934)]
    page = study_html(trials, "val_loss", "minimize")
    assert "0.012345678901234567" not in page and "0.01235</span></td>" in page and "<td class=l>3</td>" in page
