"""Versioned datasets: content-addressed Parquet, identical content stored once, verified loads, run lineage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import keel
import keel.data
from keel.core.errors import IntegrityError, InvalidArgument, NotFound


def test_log_and_get_round_trip_in_every_format(orders: pd.DataFrame) -> None:
    v = keel.data.log(orders, "orders", source="crm-export")
    assert (v.name, v.version, v.row_count, v.source) == ("orders", 1, 2000, "crm-export")
    assert v.columns == ["order_id", "amount", "city", "express", "email"]
    assert dict((c.name, c.type) for c in v.schema)["amount"] == "double"
    back = keel.data.get("orders")
    pd.testing.assert_frame_equal(back, orders)
    assert isinstance(keel.data.get("orders@1", as_="polars"), pl.DataFrame)
    assert keel.data.get(v, as_="arrow").num_rows == 2000


def test_identical_content_returns_the_existing_version_and_stores_nothing(orders: pd.DataFrame, tmp_path: Path) -> None:
    first = keel.data.log(orders, "orders")
    blobs = set((tmp_path / ".keel" / "artifacts").rglob("*"))
    again = keel.data.log(pl.from_pandas(orders), "orders")  # same data, another library
    also = keel.data.log(pa.Table.from_pandas(orders, preserve_index=False), "orders")
    assert again == first and also == first
    assert set((tmp_path / ".keel" / "artifacts").rglob("*")) == blobs
    changed = orders.assign(amount=orders["amount"] * 2)
    second = keel.data.log(changed, "orders")
    assert second.version == 2 and second.content_hash != first.content_hash
    assert [v.version for v in keel.data.versions("orders")] == [1, 2]


def test_csv_and_parquet_paths(orders: pd.DataFrame, tmp_path: Path) -> None:
    orders.to_parquet(tmp_path / "orders.parquet", index=False)
    orders.to_csv(tmp_path / "orders.csv", index=False)
    from_parquet = keel.data.log(tmp_path / "orders.parquet", "from-parquet")
    from_csv = keel.data.log(str(tmp_path / "orders.csv"), "from-csv")
    assert from_parquet.source.endswith("orders.parquet") and from_csv.row_count == 2000
    assert keel.data.get("from-csv")["city"].tolist() == orders["city"].tolist()


def test_tampered_dataset_is_refused(orders: pd.DataFrame, tmp_path: Path) -> None:
    v = keel.data.log(orders, "orders")
    blob = next((tmp_path / ".keel" / "artifacts").rglob(v.artifact_sha256))
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError, match="tampered"):
        keel.data.get("orders")


def test_runs_record_inputs_and_outputs(orders: pd.DataFrame) -> None:
    raw = keel.data.log(orders, "raw-orders")
    with keel.start_run(experiment="etl") as run:
        df = keel.data.get("raw-orders")
        clean = keel.data.log(df.dropna(), "clean-orders", parents=["raw-orders@1"])
    lineage = keel.data.lineage("clean-orders")
    assert [p.ref for p in lineage["parents"]] == [raw.ref]
    assert lineage["runs"] == [(run.id, "output")]
    assert keel.data.lineage(raw)["children"][0].id == clean.id
    links = keel.get_client().store.datasets.versions_of_run(run.id)
    assert [(link.direction, link.version.ref) for link in links] == [("input", "raw-orders@1"), ("output", "clean-orders@1")]


def test_stored_profile_comes_with_every_version(orders: pd.DataFrame) -> None:
    keel.data.log(orders, "orders")
    profile = keel.data.profile("orders@1")
    assert profile["row_count"] == 2000
    assert profile["columns"]["amount"]["missing"] == 20
    assert profile["columns"]["city"]["distinct"] == 3


@pytest.mark.parametrize(
    "data, needle",
    [
        (pd.DataFrame(), "is empty"),
        (pd.DataFrame({"a": []}), "is empty"),
        (pd.DataFrame({"mixed": [1, "two", 3.0]}), "column 'mixed' mixes types"),
        ([1, 2, 3], "pandas or polars DataFrame"),
        ("missing.csv", "an existing .csv or .parquet file"),
    ],
)
def test_bad_data_is_a_clear_error(data: object, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        keel.data.log(data, "bad")
    with pytest.raises(NotFound):
        keel.data.versions("bad")


def test_bad_references() -> None:
    with pytest.raises(InvalidArgument, match="'name' or 'name@version'"):
        keel.data.get("orders@@2")
    with pytest.raises(NotFound, match="dataset orders@7 does not exist"):
        keel.data.get("orders@7")


def test_refused_at_ingestion_stores_nothing(orders: pd.DataFrame) -> None:
    suite = keel.data.infer_suite(orders, "orders")
    bad = orders.copy()
    bad.loc[3, "city"] = "Paris"
    with pytest.raises(keel.data.ValidationFailed, match=r"allowed_values\(city\)") as caught:
        keel.data.log(bad, "orders", suite=suite)
    assert caught.value.result.errors[0].examples == ["Paris"]
    with pytest.raises(NotFound):
        keel.data.versions("orders")


def test_quarantine_splits_off_failing_rows(orders: pd.DataFrame) -> None:
    suite = keel.data.infer_suite(orders, "orders")
    bad = orders.copy()
    bad.loc[[3, 9], "city"] = "Paris"
    bad.loc[5, "amount"] = -50.0
    kept = keel.data.log(bad, "orders", suite=suite, on_fail="quarantine")
    assert kept.row_count == 1997
    quarantine = keel.data.versions("orders.quarantine")[0]
    assert quarantine.role == "quarantine" and quarantine.row_count == 3 and quarantine.parents == (kept.ref,)
    assert sorted(keel.data.get(quarantine)["order_id"]) == [3, 5, 9]
    record = keel.get_client().store.datasets.list_validations(kept.id)[0]
    assert record.passed is False and record.errors == 2


def test_datasets_work_through_a_remote_server(orders: pd.DataFrame, server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_STORE", server_url)
    keel.set_client(None)
    name = f"remote-orders-{id(orders)}"
    v = keel.data.log(orders, name)
    assert keel.data.log(orders, name) == v
    pd.testing.assert_frame_equal(keel.data.get(name), orders)
    assert keel.data.profile(v)["columns"]["amount"]["missing"] == 20
