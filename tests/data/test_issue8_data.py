"""Issue 8, data: drift on discrete columns, inferred suites on smaller batches, JSON-only transforms,
profiles validated by the store and escaped in reports."""

from __future__ import annotations

import copy
import hashlib
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import keel.data
from keel.core.datasets import ColumnSchema
from keel.core.errors import InvalidArgument
from keel.data import RowCount
from keel.data.drift_detection import DEFAULT_THRESHOLDS, drift
from keel.data.profiling import compute_profile
from keel.data.report import drift_html, profile_html
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.cli import keel_cmd

# -- PSI and friends on discrete data ------------------------------------------------------

Draw = Callable[[np.random.Generator, int], np.ndarray]
COLUMNS: dict[str, Draw] = {
    "int_1_10": lambda rng, n: rng.integers(1, 10, n),
    "int_0_2": lambda rng, n: rng.integers(0, 2, n),
    "flag": lambda rng, n: (rng.random(n) < 0.2).astype(np.int64),
    "ties": lambda rng, n: np.round(rng.normal(size=n), 1),
    "half_zero": lambda rng, n: np.where(rng.random(n) < 0.5, 0.0, rng.exponential(size=n)),
    "city": lambda rng, n: rng.choice(np.array(["NY", "SF", "LA"]), n, p=[0.5, 0.3, 0.2]),
}


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({name: draw(rng, n) for name, draw in COLUMNS.items()})


def _profile(df: pd.DataFrame) -> dict[str, Any]:
    return compute_profile(pa.Table.from_pandas(df, preserve_index=False))


def _assert_no_drift_by_any_test(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    ref, cur = _profile(reference), _profile(current)
    result = drift(ref, cur)
    assert result.drifted == [] and not result.dataset_drift
    for column in result.columns:
        for test, values in column.tests.items():
            stat, p = values["statistic"], values["p_value"]
            if p is not None:  # calibrated p-values: 5% false alarms by design, so only reject the absurd
                assert p > 0.001, (column.column, test, p)
            else:
                assert stat is not None and stat < DEFAULT_THRESHOLDS[test] / 2, (column.column, test, stat)
        judged = drift(ref, cur, columns=[column.column], method={column.column: "psi"})
        assert judged.drifted == [], (column.column, column.tests["psi"])


@pytest.mark.parametrize("seed", range(4))
def test_a_sample_against_its_own_population_reads_as_no_drift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    population = _frame(rng, 20_000)
    _assert_no_drift_by_any_test(population, population.sample(5000, random_state=seed))


@pytest.mark.parametrize("seed", range(4))
def test_two_samples_of_one_distribution_read_as_no_drift(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    _assert_no_drift_by_any_test(_frame(rng, 5000), _frame(rng, 5000))


@pytest.mark.parametrize("seed", range(3))
def test_psi_of_small_discrete_samples_stays_low(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    population = _frame(rng, 5000)
    result = drift(_profile(population), _profile(population.sample(300, random_state=seed)))
    assert result.drifted == []
    assert max(c.tests["psi"]["statistic"] or 0.0 for c in result.columns) < 0.1


def test_a_real_shift_of_a_discrete_column_is_drift() -> None:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({
        "level": rng.integers(1, 10, 5000), "flag": (rng.random(5000) < 0.2).astype(np.int64),
        "ties": np.round(rng.normal(size=5000), 1),
    })  # fmt: skip
    shifted = pd.DataFrame({
        "level": rng.integers(2, 11, 5000), "flag": (rng.random(5000) < 0.6).astype(np.int64),
        "ties": np.round(rng.normal(0.5, size=5000), 1),
    })  # fmt: skip
    ref, cur = _profile(reference), _profile(shifted)
    for column in ("level", "flag", "ties"):
        for test in ("ks", "wasserstein", "psi"):
            judged = drift(ref, cur, columns=[column], method={column: test})
            assert judged.drifted == [column], (column, test, judged.columns[0].tests)
    psi = drift(ref, cur, method={c: "psi" for c in ("level", "flag", "ties")})
    assert psi.column("level").statistic > 1.0  # a whole value (1) gone and a new one (10)
    flag_expected = (0.6 - 0.2) * np.log(0.6 / 0.2) + (0.4 - 0.8) * np.log(0.4 / 0.8)
    assert psi.column("flag").statistic == pytest.approx(flag_expected, rel=0.15)


def test_a_logged_binary_target_against_a_sample_of_itself_is_stable() -> None:
    """As in the quickstart: the stored profile of a 0/1 target is the reference."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"target": (rng.random(4000) < 0.3).astype(np.int64), "x": rng.normal(size=4000)})
    version = keel.data.log(df, "labelled")
    result = drift(version.ref, df.sample(1000, random_state=1), method={"target": "psi"})
    assert result.column("target").statistic < 0.01 and result.drifted == []


# -- inferred suites on smaller batches; what quarantine cannot split ------------------------


def test_an_inferred_suite_accepts_a_smaller_batch(orders: pd.DataFrame) -> None:
    suite = keel.data.infer_suite(orders, "orders")
    row_count = next(c for c in suite.checks if isinstance(c, RowCount))
    assert row_count.severity == "warn"
    batch = orders.head(200)
    result = keel.data.validate(batch, suite)
    assert result.passed and [w.kind for w in result.warnings] == ["row_count"]
    version = keel.data.log(batch, "orders-batch", suite=suite)
    assert version.row_count == 200


def test_a_refusal_names_the_checks_quarantine_cannot_split(orders: pd.DataFrame) -> None:
    suite = keel.data.Suite([keel.data.RowCount(min=5000), keel.data.Range(column="amount", min=0, max=50)], name="strict")
    with pytest.raises(keel.data.ValidationFailed) as refused:
        keel.data.log(orders, "orders", suite=suite, on_fail="quarantine")
    message = str(refused.value)
    assert "quarantine cannot split off rows for row_count" in message
    assert "range(amount)" not in message.split("quarantine cannot")[1]  # a row check quarantine can split
    with pytest.raises(keel.data.ValidationFailed, match="quarantine cannot split off rows for row_count"):
        keel.data.log(orders, "orders", suite=suite)  # said on refuse too: no point retrying with quarantine
    # row-level failures alone are quarantined as before
    row_only = keel.data.Suite([keel.data.Range(column="amount", min=0, max=50)], name="rows")
    kept = keel.data.log(orders, "orders", suite=row_only, on_fail="quarantine")
    assert 0 < kept.row_count < len(orders)
    with pytest.raises(keel.data.ValidationFailed, match="every row failed"):
        keel.data.log(
            orders, "none-left", suite=keel.data.Suite([keel.data.Range(column="order_id", max=-1)]), on_fail="quarantine"
        )


# -- transforms are JSON -------------------------------------------------------------------


def test_non_json_transform_params_are_invalid_arguments_naming_the_field(orders: pd.DataFrame) -> None:
    raw = keel.data.log(orders, "orders")
    loop: dict[str, Any] = {}
    loop["self"] = loop
    cases = [(object(), "object"), ({1, 2}, "set"), (float("nan"), "finite"), (loop, "cycles")]
    for value, expected in cases:
        with pytest.raises(InvalidArgument, match=rf"transform 'impute' params\['value'\].* must be .*{expected}"):
            keel.data.apply("impute", raw, name="filled", strategy="constant", value=value)
    with pytest.raises(InvalidArgument, match=r"transform\['params'\]\['when'\] must be JSON-serialisable .*Timestamp"):
        keel.data.log(orders.head(5), "tiny", transform={"name": "x", "params": {"when": pd.Timestamp(0)}})
    with pytest.raises(InvalidArgument, match="transform key must be a string"):
        keel.data.log(orders.head(5), "tiny", transform={("a", 1): 1})  # type: ignore[dict-item]  # on purpose
    assert [v.name for v in keel.data.datasets()] == ["orders"]  # nothing was stored


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _log(store: MetadataStore, name: str, **kwargs: Any) -> Any:
    defaults: dict[str, Any] = {
        "content_hash": _sha(name + repr(kwargs.get("profile"))),
        "artifact_sha256": _sha("blob" + name),
        "size": 10,
        "row_count": 3,
        "schema": (ColumnSchema("x", "double"), ColumnSchema("city", "string")),
    }
    return store.datasets.log_version(name, **{**defaults, **kwargs})


def test_the_store_refuses_a_non_json_transform(store: MetadataStore) -> None:
    for transform, field in (({"params": {"v": object()}}, r"transform\['params'\]\['v'\]"),
                             ({"params": {"v": float("inf")}}, r"transform\['params'\]\['v'\]"),
                             ({"k": {1: 2}}, r"transform\['k'\] key"),
                             (["not", "a", "mapping"], "transform")):  # fmt: skip
        with pytest.raises(InvalidArgument, match=field):
            _log(store, f"t{abs(hash(field)) % 1000}", transform=transform)
    version, _ = _log(store, "t-ok", transform={"name": "clip", "params": {"columns": ("x",), "lower": 0}})
    assert version.transform == {"name": "clip", "params": {"columns": ["x"], "lower": 0}}


# -- profiles validated at the store, escaped in reports ----------------------------------

SCRIPT = "<script>alert(1)</script>"


def _valid_profile() -> dict[str, Any]:
    df = pd.DataFrame({"x": [1.0, 2.5, None], "city": ["NY", "NY", SCRIPT]})
    return compute_profile(pa.Table.from_pandas(df, preserve_index=False))


def _forged(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    profile = copy.deepcopy(_valid_profile())
    mutate(profile)
    return profile


FORGERIES: dict[str, Callable[[dict[str, Any]], None]] = {
    "kind": lambda p: p["columns"]["city"].update(kind=SCRIPT),
    "type_length": lambda p: p["columns"]["city"].update(type=SCRIPT * 50),
    "count_as_text": lambda p: p["columns"]["x"].update(count=SCRIPT),
    "mean_as_text": lambda p: p["columns"]["x"].update(mean=SCRIPT),
    "share_as_text": lambda p: p["columns"]["x"].update(missing_share=SCRIPT),
    "row_count_as_text": lambda p: p.update(row_count=SCRIPT),
    "top_count_as_text": lambda p: p["columns"]["city"].update(top=[[SCRIPT, SCRIPT]]),
    "frequency_as_text": lambda p: p["columns"]["city"]["frequencies"].update({SCRIPT: SCRIPT}),
    "grid_too_short": lambda p: p["columns"]["x"].update(grid=[1.0, 2.0]),
    "grid_with_text": lambda p: p["columns"]["x"]["grid"].__setitem__(5, SCRIPT),
    "histogram_as_text": lambda p: p["columns"]["x"].update(histogram=SCRIPT),
    "unknown_key": lambda p: p["columns"]["x"].update(note=SCRIPT),
    "unknown_top_key": lambda p: p.update(html=SCRIPT),
    "column_not_in_schema": lambda p: p["columns"].update({SCRIPT: p["columns"]["x"]}),
    "counts_do_not_add_up": lambda p: p["columns"]["x"].update(count=1000),
    "huge_category": lambda p: p["columns"]["city"]["frequencies"].update({"y" * 5000: 1}),
}


def _body(name: str, profile: Any, columns: tuple[str, str] = ("x", "city")) -> dict[str, Any]:
    return {
        "name": name, "content_hash": _sha(name), "artifact_sha256": _sha("blob" + name), "size": 10, "row_count": 3,
        "schema": [[columns[0], "double", True], [columns[1], "string", True]], "profile": profile,
    }  # fmt: skip


def test_the_server_refuses_forged_profiles_with_400(server_url: str) -> None:
    for label, mutate in FORGERIES.items():
        response = httpx.post(f"{server_url}/api/v1/datasets/versions", json=_body(f"forged-{label}", _forged(mutate)))
        assert response.status_code == 400, (label, response.status_code, response.text)
        assert "profile" in response.json()["error"]["message"], label
    ok = httpx.post(f"{server_url}/api/v1/datasets/versions", json=_body("honest", _valid_profile()))
    assert ok.status_code == 200, ok.text


def test_every_backend_refuses_a_forged_profile(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match=r"profile.columns\['x'\].mean must be a number"):
        _log(store, "forged-mean", profile=_forged(FORGERIES["mean_as_text"]))
    honest = _valid_profile()
    version, _ = _log(store, "honest", profile=honest)
    assert store.datasets.get_profile(version.id) == honest


def _unescaped_script(page: str) -> bool:
    return "<script" in page.lower()


def test_text_fields_of_a_profile_are_escaped_in_reports(server_url: str, tmp_path: Path) -> None:
    """Column names, category values and a date column's bounds are text: stored as sent, shown escaped."""
    df = pd.DataFrame({SCRIPT: [1.0, 2.5, None], "city": ["NY", "NY", SCRIPT], "day": pd.to_datetime(["2024-01-01"] * 3)})
    profile = compute_profile(pa.Table.from_pandas(df, preserve_index=False))
    profile["columns"]["day"]["min"] = SCRIPT  # a string field: it passes the store, so the report must escape it
    body = _body("hostile", profile, (SCRIPT, "city"))
    body["schema"].append(["day", "timestamp[ns]", True])
    response = httpx.post(f"{server_url}/api/v1/datasets/versions", json=body)
    assert response.status_code == 200, response.text
    ref = f"hostile@{response.json()['version']['version']}"

    (tmp_path / "keel.toml").write_text(f'[keel]\nstore = "{server_url}"\n')
    report = keel_cmd(tmp_path, "data", "report", ref, "-o", "profile.html")
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "profile.html").read_text()
    assert not _unescaped_script(page) and html.escape(SCRIPT) in page

    store = open_store(server_url)
    try:
        version = store.datasets.get_version("hostile")
        stored = store.datasets.get_profile(version.id)
    finally:
        store.close()
    assert stored is not None and SCRIPT in stored["columns"]
    result = drift(stored, stored)
    assert not _unescaped_script(drift_html(result)) and not _unescaped_script(profile_html(stored, SCRIPT))


def test_report_cells_escape_values_that_are_not_numbers() -> None:
    """Profiles stored before validation existed are read back as they are."""
    profile = _valid_profile()
    profile["row_count"] = SCRIPT
    profile["columns"]["x"].update(mean=SCRIPT, missing=SCRIPT, missing_share=SCRIPT, distinct=SCRIPT)
    profile["columns"]["city"]["top"] = [[SCRIPT, SCRIPT]]
    page = profile_html(profile, "old")
    assert not _unescaped_script(page) and page.count(html.escape(SCRIPT)) >= 6
