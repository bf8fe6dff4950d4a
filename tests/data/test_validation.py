"""Checks, suites (YAML), inference and validation of external data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keel
import keel.data
from keel.core.errors import InvalidArgument
from keel.data import (
    AllowedValues,
    Columns,
    Custom,
    MaxMissing,
    NotNull,
    Outliers,
    Range,
    Regex,
    RowCount,
    Suite,
    Type,
    Unique,
)


def result_of(df: pd.DataFrame, check: keel.data.Check) -> keel.data.CheckResult:
    return keel.data.validate(df, Suite([check])).results[0]


def test_each_check_kind_reports_counts_shares_and_examples(orders: pd.DataFrame) -> None:
    df = orders.copy()
    df.loc[[1, 2], "amount"] = [-5.0, 1e6]
    df.loc[4, "city"] = "Paris"
    df.loc[6, "email"] = "not-an-email"
    df.loc[8, "order_id"] = 9
    r = result_of(df, Range(column="amount", min=0, max=1000))
    assert (r.passed, r.failed_count, r.examples) == (False, 2, [-5.0, 1e6])
    assert r.failed_share == pytest.approx(2 / 2000)
    r = result_of(df, AllowedValues(column="city", values=("NY", "SF", "LA")))
    assert (r.passed, r.failed_count, r.examples) == (False, 1, ["Paris"])
    r = result_of(df, Regex(column="email", pattern=r"[^@]+@[^@]+\.[a-z]+"))
    assert (r.failed_count, r.examples) == (1, ["not-an-email"])
    r = result_of(df, Unique(column="order_id"))
    assert (r.failed_count, r.examples) == (2, [9, 9])
    r = result_of(df, NotNull(column="amount"))
    assert (r.failed_count, r.examples[:2]) == (20, ["row 0", "row 100"])
    assert result_of(df, MaxMissing(column="amount", max_share=0.02)).passed
    assert not result_of(df, MaxMissing(column="amount", max_share=0.005)).passed
    assert result_of(df, Type(column="amount", type="float")).passed
    r = result_of(df, Type(column="city", type="numeric"))
    assert not r.passed and "expected numeric, got" in r.message
    assert not result_of(df, RowCount(min=5000)).passed and result_of(df, RowCount(min=10, max=5000)).passed
    r = result_of(df, Outliers(column="amount", method="zscore", threshold=5, max_share=0.0))
    assert not r.passed and 1e6 in r.examples
    assert not result_of(df, Columns(names=("order_id", "zip"))).passed


def test_custom_vectorised_check_and_its_registration(orders: pd.DataFrame) -> None:
    inline = Custom(name="express-is-cheap", fn=lambda f: ~f["express"] | (f["amount"].fillna(0) < 60))
    r = result_of(orders, inline)
    expected = int((orders["express"] & (orders["amount"].fillna(0) >= 60)).sum())
    assert r.failed_count == expected > 0

    @keel.data.register_check("positive-amount")
    def positive(frame: pd.DataFrame) -> pd.Series:
        return frame["amount"].isna() | (frame["amount"] > 0)

    suite = Suite.from_yaml("suite: s\nchecks:\n- kind: custom\n  name: positive-amount\n  column: amount\n")
    assert keel.data.validate(orders, suite).passed
    with pytest.raises(InvalidArgument, match="custom check name must be a function registered"):
        keel.data.validate(orders, Suite([Custom(name="nobody-registered-me")]))


def test_inferred_suite_round_trips_as_yaml_and_catches_bad_batches(orders: pd.DataFrame) -> None:
    suite = keel.data.infer_suite(orders, "orders")
    kinds = {(c.kind, getattr(c, "column", None)) for c in suite.checks}
    assert {("columns", None), ("row_count", None), ("unique", "order_id"), ("not_null", "city")} <= kinds
    assert ("max_missing", "amount") in kinds and ("allowed_values", "city") in kinds and ("range", "amount") in kinds
    amount_range = next(c for c in suite.checks if isinstance(c, Range) and c.column == "amount")
    assert amount_range.min == 0.0 and amount_range.max >= orders["amount"].max()  # non-negative stays so
    again = Suite.from_yaml(suite.to_yaml())
    assert again.to_dict() == suite.to_dict()
    assert keel.data.validate(orders, again).passed
    bad = orders.copy()
    bad["amount"] = bad["amount"].astype(object)
    bad.loc[bad.index[:300], "amount"] = np.nan
    bad.loc[7, "city"] = "Berlin"
    result = keel.data.validate(bad, again)
    failed = {(r.kind, r.column) for r in result.errors}
    assert failed == {("max_missing", "amount"), ("allowed_values", "city")}
    assert "2 of" in result.summary() and result.to_dict()["errors"] == 2


def test_suite_for_another_schema_is_a_clear_error(orders: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgument, match="checks column 'zipcode', which the data does not have; expected one of: order_id"):
        keel.data.validate(orders, Suite([Range(column="zipcode", min=0)]))
    other = keel.data.infer_suite(pd.DataFrame({"user": ["a", "b"], "age": [30, 40]}), "users")
    with pytest.raises(InvalidArgument, match="suite 'users' checks column 'age', which the data does not have"):
        keel.data.validate(orders, other)
    with pytest.raises(InvalidArgument, match="range check on column 'city': expected a numeric column"):
        keel.data.validate(orders, Suite([Range(column="city", min=0)]))


@pytest.mark.parametrize(
    "yaml_text, needle",
    [
        ("checks: [{kind: teleport, column: x}]", "checks\\[0\\].kind must be one of"),
        ("checks: [{kind: range, column: x, minimum: 3}]", "checks\\[0\\] \\(range\\)"),
        ("checks: [{kind: range, column: x, severity: fatal}]", "severity must be 'error' or 'warn'"),
        ("checks: [{kind: regex, column: x, pattern: '(['}]", "a valid RE2 regular expression"),
        ("checks: [{kind: type, column: x, type: complex}]", "type must be one of"),
        ("checks: {a: 1}", "a mapping with a 'checks' list"),
        ("checks: [", "not valid YAML"),
    ],
)
def test_bad_suites_are_refused(yaml_text: str, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        Suite.from_yaml(yaml_text)


def test_validation_attaches_to_a_version(orders: pd.DataFrame) -> None:
    v = keel.data.log(orders, "orders")
    result = keel.data.validate(keel.data.get("orders"), keel.data.infer_suite(orders, "orders"))
    record = keel.data.save_validation(v, result)
    stored = keel.get_client().store.datasets.list_validations(v.id)
    assert stored[0].id == record.id and stored[0].passed and stored[0].result["suite"] == "orders"


def test_regex_patterns_are_checked_with_the_engine_that_runs_them() -> None:
    with pytest.raises(InvalidArgument, match="a valid RE2 regular expression"):
        Suite([Regex(column="email", pattern=r"(?!a)\w+")])  # a lookahead: Python has it, RE2 does not
