"""Reusable transforms: builtins, key checks on merges, and lineage of applied steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keel.data
from keel.core.errors import InvalidArgument
from keel.data import transforms as t


def test_builtin_cleaning_steps(orders: pd.DataFrame) -> None:
    doubled = pd.concat([orders, orders.head(10)], ignore_index=True)
    assert len(t.deduplicate(doubled)) == 2000
    assert len(t.deduplicate(doubled, subset=["city"])) == 3
    filled = t.impute(orders, strategy="median", columns=["amount"])
    assert filled["amount"].isna().sum() == 0 and filled.loc[0, "amount"] == orders["amount"].median()
    assert t.impute(orders, strategy="constant", value=0.0)["amount"].min() == 0.0
    clipped = t.clip(orders, ["amount"], quantiles=[0.05, 0.95])
    assert clipped["amount"].max() == pytest.approx(orders["amount"].quantile(0.95))
    extreme = orders.copy()
    extreme.loc[1, "amount"] = 1e6
    assert 1 not in t.remove_outliers(extreme, ["amount"], threshold=3)["order_id"].tolist()
    assert str(t.cast(orders, {"city": "category"})["city"].dtype) == "category"
    assert "town" in t.rename(orders, {"city": "town"}).columns


def test_bad_arguments_name_the_problem(orders: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgument, match="impute: column 'zip' is not in the data"):
        t.impute(orders, columns=["zip"])
    with pytest.raises(InvalidArgument, match=r"impute: column 'city' is .*; strategy 'mean' needs numbers"):
        t.impute(orders, strategy="mean", columns=["city"])
    with pytest.raises(InvalidArgument, match="clip quantiles must be"):
        t.clip(orders, ["amount"], quantiles=[0.9, 0.1])
    with pytest.raises(InvalidArgument, match="transform must be one of"):
        keel.data.get_transform("sharpen")


def test_merge_checks_keys_before_joining() -> None:
    orders = pd.DataFrame({"order_id": [1, 2, 3], "customer": ["a", "b", "z"]})
    customers = pd.DataFrame({"customer": ["a", "b", "b"], "tier": [1, 2, 3]})
    with pytest.raises(InvalidArgument, match=r"right side has duplicate keys \['customer'\] \(e.g. \[\{'customer': 'b'\}\]\)"):
        t.merge(orders, customers, on="customer")
    unique_customers = customers.drop_duplicates("customer")
    with pytest.raises(
        InvalidArgument, match=r"1 left rows have keys \['customer'\] missing on the right \(e.g. \[\{'customer': 'z'\}\]\)"
    ):
        t.merge(orders, unique_customers, on="customer", how="left", require_all_keys=True)
    merged = t.merge(orders, unique_customers, on="customer", how="left")
    assert merged["tier"].tolist()[:2] == [1, 2] and np.isnan(merged["tier"].tolist()[2])
    with pytest.raises(
        InvalidArgument, match="merge \\(right\\): column 'customer' is not in the data; expected one of: client, tier"
    ):
        t.merge(orders, customers.rename(columns={"customer": "client"}), on="customer")


def test_apply_records_parents_code_hash_and_params(orders: pd.DataFrame) -> None:
    raw = keel.data.log(orders, "orders")
    lookup = keel.data.log(pd.DataFrame({"city": ["NY", "SF", "LA"], "state": ["NY", "CA", "CA"]}), "cities")
    clean = keel.data.apply("impute", raw, name="orders-clean", strategy="median", columns=["amount"])
    assert clean.parents == (raw.ref,)
    assert clean.transform is not None
    assert clean.transform["name"] == "impute" and clean.transform["params"] == {"strategy": "median", "columns": ["amount"]}
    assert clean.transform["code_hash"] == t.impute.code_hash
    assert keel.data.get(clean)["amount"].isna().sum() == 0
    joined = keel.data.apply("merge", clean, lookup, name="orders-geo", on="city", validate="many_to_one")
    assert set(joined.parents) == {clean.ref, lookup.ref}
    assert keel.data.get(joined)["state"].notna().all()
    with pytest.raises(InvalidArgument, match="JSON-serialisable"):
        keel.data.apply("impute", raw, name="x", value=object())


def test_changing_a_steps_code_changes_its_recorded_version(orders: pd.DataFrame) -> None:
    @keel.data.transform("double")
    def double_v1(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(amount=df["amount"] * 2)

    first = keel.data.apply("double", keel.data.log(orders, "orders"), name="doubled")

    @keel.data.transform("double")
    def double_v2(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(amount=df["amount"] * 2.0)  # same result, new code

    second = keel.data.apply("double", "orders", name="doubled-again")
    assert first.transform is not None and second.transform is not None
    assert first.transform["code_hash"] != second.transform["code_hash"]
    assert first.content_hash == second.content_hash
