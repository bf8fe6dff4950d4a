"""The drift page leads with the dataset-level verdict, and is never green when a column drifted (issue 13)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from keel.data.drift_detection import drift
from keel.data.report import drift_html


def _frames(columns: int, shifted: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({f"c{i}": rng.normal(size=2000) for i in range(columns)})
    cur = pd.DataFrame({f"c{i}": rng.normal(size=2000) + (3.0 if i < shifted else 0.0) for i in range(columns)})
    return ref, cur


def _headline(page: str) -> tuple[str, str]:
    found = re.search(r"<p class='headline (\w+)'>([^<]*)</p>", page)
    assert found is not None, page[:600]
    return found.group(1), found.group(2)


def test_two_drifted_columns_below_the_dataset_threshold_are_a_warning_not_a_green_no_drift() -> None:
    result = drift(*_frames(10, 2))
    assert sorted(result.drifted) == ["c0", "c1"] and not result.dataset_drift and result.verdict == "columns"
    page = drift_html(result)
    assert _headline(page) == ("warn", "2 of 10 columns drifted (below the 50% dataset threshold)")
    assert "class=ok>no dataset drift" not in page and "no dataset drift" not in page
    assert page.index("headline") < page.index("<table")  # it leads the page


def test_dataset_drift_is_the_headline_in_the_bad_style() -> None:
    result = drift(*_frames(5, 3))
    assert result.dataset_drift and result.verdict == "drift"
    assert _headline(drift_html(result)) == ("bad", "dataset drift: 3 of 5 columns drifted (the dataset threshold is 50%)")


def test_green_only_when_no_column_drifted() -> None:
    result = drift(*_frames(5, 0))
    assert result.drifted == [] and result.verdict == "none"
    assert _headline(drift_html(result)) == ("ok", "no dataset drift: none of 5 columns drifted")


def test_the_headline_follows_the_dataset_threshold_the_cli_fails_on() -> None:
    ref, cur = _frames(10, 2)
    strict = drift(ref, cur, drift_share=0.2)  # --drift-share 0.2: two of ten is dataset drift, --fail-on-drift exits 1
    assert strict.dataset_drift and _headline(drift_html(strict))[0] == "bad"
