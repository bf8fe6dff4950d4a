"""Profiles: the statistics agree with numpy/pandas computed the slow way."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keel.data import profiling as profile_module
from keel.data.frames import to_arrow
from keel.data.profiling import compute_profile


def test_numeric_profile_matches_numpy(orders: pd.DataFrame) -> None:
    p = compute_profile(to_arrow(orders))["columns"]["amount"]
    values = orders["amount"].dropna().to_numpy()
    assert p["kind"] == "numeric" and p["type"] == "double"
    assert (p["count"], p["missing"], p["missing_share"]) == (1980, 20, 0.01)
    assert p["distinct"] == len(np.unique(values)) and p["distinct_method"] == "exact"
    assert p["min"] == values.min() and p["max"] == values.max()
    assert p["mean"] == pytest.approx(values.mean()) and p["std"] == pytest.approx(values.std(ddof=1))
    for key, q in (("p5", 0.05), ("p50", 0.5), ("p99", 0.99)):
        assert p["quantiles"][key] == pytest.approx(np.quantile(values, q))
    assert sum(p["histogram"]["counts"]) == 1980 and len(p["histogram"]["edges"]) == 21
    assert len(p["grid"]) == 1001 and p["grid"][0] == values.min() and p["grid"][-1] == values.max()


def test_categorical_and_boolean_profiles(orders: pd.DataFrame) -> None:
    cols = compute_profile(to_arrow(orders))["columns"]
    city = cols["city"]
    counts = orders["city"].value_counts()
    assert city["kind"] == "categorical" and city["distinct"] == 3
    assert city["top"][0] == [counts.index[0], int(counts.iloc[0])]
    assert sum(city["frequencies"].values()) == 2000
    assert set(cols["express"]["frequencies"]) == {"true", "false"}
    email = cols["email"]
    assert email["distinct"] == 2000 and email["pii"] == ["email"]  # its kept values are masked: no address stored
    assert 1 <= len(email["top"]) <= 20 and all("@" in k and "*" in k for k, _ in email["top"])
    assert not set(orders["email"]) & set(email["frequencies"])


def test_datetime_profile() -> None:
    table = pa.table({"when": pa.array([dt.datetime(2026, 1, d) for d in (1, 2, 2, 5)]), "x": [1, 2, 3, 4]})
    p = compute_profile(table)["columns"]["when"]
    assert p["kind"] == "datetime" and p["distinct"] == 3 and p["min"].startswith("2026-01-01")


def test_large_columns_are_sampled_and_sketched_and_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_module, "SAMPLE_ABOVE", 20_000)
    monkeypatch.setattr(profile_module, "SAMPLE_SIZE", 10_000)
    rng = np.random.default_rng(3)
    values = rng.integers(0, 30_000, 60_000).astype(float)
    p = compute_profile(pa.table({"v": values}))["columns"]["v"]
    true_distinct = len(np.unique(values))
    assert p["distinct_method"].startswith("kmv-sketch") and "sample" in p["quantiles_from"]
    assert abs(p["distinct"] - true_distinct) / true_distinct < 0.05
    assert p["quantiles"]["p50"] == pytest.approx(np.median(values), rel=0.05)
    assert p["min"] >= values.min() and p["count"] == 60_000


def test_all_missing_column() -> None:
    p = compute_profile(pa.table({"x": pa.array([None, None], type=pa.float64())}))["columns"]["x"]
    assert p["count"] == 0 and p["missing"] == 2 and p["distinct"] == 0
