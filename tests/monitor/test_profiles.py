"""Window profiles merge: hours into a day without the rows, close to the profile of the day's rows, and drift
tests run on them as on dataset profiles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from keel.core.errors import InvalidArgument
from keel.data import frames
from keel.data.drift_detection import drift
from keel.data.profiling import compute_profile
from keel.monitor import Profile, merge_profiles


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 240_000
    categories = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({"x": rng.normal(10, 3, n), "y": rng.exponential(2.0, n), "c": categories})
    frame.loc[::50, "x"] = np.nan  # 2% missing
    return frame


def test_hourly_profiles_merge_into_the_days_profile(day: pd.DataFrame) -> None:
    hours = [Profile.from_table(day.iloc[i * 10_000 : (i + 1) * 10_000]) for i in range(24)]
    merged = merge_profiles(hours).to_drift_profile()
    exact = compute_profile(frames.to_arrow(day))
    assert merged["row_count"] == len(day)
    for name in ("x", "y"):
        m, e = merged["columns"][name], exact["columns"][name]
        assert m["count"] == e["count"] and m["missing"] == e["missing"]  # counts and moments are exact
        assert m["min"] == e["min"] and m["max"] == e["max"]
        assert m["mean"] == pytest.approx(e["mean"], rel=1e-9) and m["std"] == pytest.approx(e["std"], rel=1e-9)
        values = np.sort(day[name].dropna().to_numpy())
        ranks = np.searchsorted(values, np.asarray(m["grid"][1:-1])) / values.size
        assert np.max(np.abs(ranks - np.linspace(0, 1, 1001)[1:-1])) < 0.005  # KLL k=1000: rank error ~0.3%
    assert merged["columns"]["c"]["frequencies"] == day["c"].value_counts().to_dict()  # 3 values: exact
    assert merged["columns"]["x"]["missing_share"] == pytest.approx(0.02)


def test_drift_on_merged_profiles_finds_the_shifted_column_only(day: pd.DataFrame) -> None:
    reference = compute_profile(frames.to_arrow(day))
    shifted = day.copy()
    shifted["y"] = shifted["y"] * 1.5
    current = merge_profiles(Profile.from_table(shifted.iloc[i::4]) for i in range(4))
    result = drift(reference, current.to_drift_profile())
    assert result.drifted == ["y"]
    same = drift(reference, Profile.from_table(day).to_drift_profile())
    assert same.drifted == []


def test_a_profile_round_trips_through_json_and_merging_leaves_both_sides_alone(day: pd.DataFrame) -> None:
    first, second = Profile.from_table(day.head(1000)), Profile.from_table(day.tail(1000))
    restored = Profile.from_dict(json.loads(json.dumps(first.to_dict())))
    assert restored.to_drift_profile() == first.to_drift_profile()
    both = first.merge(second)
    assert both.rows == 2000 and first.rows == 1000 and second.rows == 1000
    assert first.to_drift_profile() == restored.to_drift_profile()


def test_a_column_of_another_kind_does_not_merge() -> None:
    numbers = Profile.from_table(pd.DataFrame({"v": [1.0, 2.0]}))
    words = Profile.from_table(pd.DataFrame({"v": ["a", "b"]}))
    with pytest.raises(InvalidArgument, match="'v' is numeric in one profile and categorical"):
        numbers.merge(words)
    with pytest.raises(InvalidArgument, match="format"):
        Profile.from_dict({"format": 99, "rows": 0, "columns": {}})
