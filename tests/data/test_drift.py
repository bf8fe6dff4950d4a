"""Drift: known drift injected into some columns is found, stable columns are not flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keel
import keel.data
from keel.core.errors import InvalidArgument

DRIFTED = {"n0", "n1", "n2", "c0", "c1"}


def synthetic(n: int, seed: int, drift: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"n{i}": rng.normal(10.0, 2.0, n) for i in range(8)}
    data.update({f"c{i}": rng.choice(list("abcde"), n) for i in range(4)})
    df = pd.DataFrame(data)
    if drift:
        df["n0"] += 0.6  # mean shift of 0.3 standard deviations
        df["n1"] = 10.0 + (df["n1"] - 10.0) * 1.6  # wider spread, same mean
        df["n2"] = rng.exponential(2.0, n) + 8.0  # another shape
        df["c0"] = rng.choice(list("abcde"), n, p=[0.4, 0.15, 0.15, 0.15, 0.15])
        df["c1"] = rng.choice(list("abcdf"), n)  # a new category replaces one
    return df


def test_injected_drift_is_found_and_stable_columns_are_not_flagged() -> None:
    reference, current = synthetic(50_000, 1, False), synthetic(50_000, 2, True)
    result = keel.data.drift(reference, current)
    assert set(result.drifted) == DRIFTED
    assert result.share_drifted == pytest.approx(5 / 12)
    assert not result.dataset_drift  # below the default share of 0.5
    n0 = result.column("n0")
    ks_p, chi2_p = n0.tests["ks"]["p_value"], result.column("c1").tests["chi2"]["p_value"]
    assert n0.test == "wasserstein" and ks_p is not None and ks_p < 1e-6
    assert result.column("c1").test == "jensenshannon" and chi2_p is not None and chi2_p < 1e-6
    assert result.column("n5").statistic < 0.05


def test_a_stored_reference_profile_gives_the_same_verdicts_without_reloading(monkeypatch: pytest.MonkeyPatch) -> None:
    reference, current = synthetic(20_000, 1, False), synthetic(20_000, 2, True)
    version = keel.data.log(reference, "reference")
    from_frames = keel.data.drift(reference, current)

    def no_reload(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reference data was reloaded")

    monkeypatch.setattr(keel.get_client().artifacts, "get_bytes", no_reload)
    from_profile = keel.data.drift("reference@1", current)
    assert from_profile.reference == version.ref
    assert from_profile.drifted == from_frames.drifted
    for a, b in zip(from_profile.columns, from_frames.columns, strict=True):
        assert a.statistic == pytest.approx(b.statistic)


def test_small_samples_use_p_value_tests_and_stable_data_passes() -> None:
    result = keel.data.drift(synthetic(500, 3, False), synthetic(400, 4, False))
    assert result.drifted == []
    assert {c.test for c in result.columns} == {"ks", "chi2"}
    shifted = keel.data.drift(synthetic(500, 3, False), synthetic(400, 4, True))
    assert set(shifted.drifted) == DRIFTED


def test_thresholds_methods_and_dataset_share_are_configurable() -> None:
    reference, current = synthetic(20_000, 1, False), synthetic(20_000, 2, True)
    result = keel.data.drift(reference, current, method={"n0": "psi"}, thresholds={"psi": 0.5}, drift_share=0.3)
    assert result.column("n0").test == "psi" and not result.column("n0").drifted
    assert len(result.drifted) == 4 and result.dataset_drift  # 4 of 12 columns >= 0.3
    assert result.to_dict()["columns"][0]["tests"]


def test_mismatched_data_is_a_clear_error() -> None:
    reference = synthetic(1000, 1, False)
    with pytest.raises(InvalidArgument, match="the current data lacks column 'n7'"):
        keel.data.drift(reference, reference.drop(columns=["n7"]))
    with pytest.raises(InvalidArgument, match=r"column 'n3' is numeric .* but categorical .* now"):
        keel.data.drift(reference, reference.assign(n3=reference["n3"].astype(str)))
    with pytest.raises(InvalidArgument, match="thresholds key must be one of"):
        keel.data.drift(reference, reference, thresholds={"magic": 1.0})
    with pytest.raises(InvalidArgument, match="method for 'c0' must be one of chi2"):
        keel.data.drift(reference, reference, method={"c0": "ks"})


def test_p_values_are_corrected_for_the_number_of_columns() -> None:
    from keel.data.drift_detection import ColumnDrift, _corrected

    cols = [ColumnDrift(f"c{i}", "numeric", "ks", 0.1, p, 0.05, p < 0.05) for i, p in enumerate([0.001, 0.02, 0.04, 0.2])]
    assert [c.drifted for c in _corrected(cols, "none")] == [True, True, True, False]
    assert [c.drifted for c in _corrected(cols, "bh")] == [True, True, False, False]
    assert [c.drifted for c in _corrected(cols, "bonferroni")] == [True, False, False, False]


def test_two_halves_of_one_dataset_do_not_drift() -> None:
    """Many small-sample p-value tests at once: without a correction some stable column fails by chance."""
    data = synthetic(800, 5, False)
    for i in range(8, 40):
        data[f"x{i}"] = np.random.default_rng(i).normal(size=800)
    for seed in (4, 5, 6):
        first = data.sample(frac=0.5, random_state=seed)
        uncorrected = keel.data.drift(first, data.drop(first.index), correction="none")
        result = keel.data.drift(first, data.drop(first.index))
        assert len(uncorrected.drifted) >= 2  # p < 0.05 by chance, as expected among 44 columns
        assert result.drifted == [] and result.to_dict()["correction"] == "bh"


def test_a_column_that_empties_is_reported_as_drift() -> None:
    reference = synthetic(2000, 1, False)
    current = reference.assign(n3=np.nan)
    result = keel.data.drift(reference, current)
    column = result.column("n3")
    assert column.test == "all_missing" and column.drifted and "n3" in result.drifted
