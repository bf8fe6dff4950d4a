"""``keel data ...`` as a user runs it, in a fresh folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.testing.cli import keel_cmd


@pytest.fixture
def files(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": range(3000), "x": rng.normal(size=3000), "city": rng.choice(["NY", "SF", "LA"], 3000)})
    df.to_csv(tmp_path / "jan.csv", index=False)
    df.assign(x=df["x"] + 0.5).to_parquet(tmp_path / "feb.parquet", index=False)
    bad = df.copy()
    bad.loc[[3, 4], "city"] = "Paris"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    return tmp_path


def test_log_infer_validate_drift_report(files: Path) -> None:
    logged = keel_cmd(files, "data", "log", "jan.csv", "--name", "sales")
    assert logged.returncode == 0, logged.stderr
    assert "sales@1" in logged.stdout and "3,000 rows x 3 columns" in logged.stdout
    again = keel_cmd(files, "data", "log", "jan.csv", "--name", "sales")
    assert "sales@1" in again.stdout  # same content, same version
    inferred = keel_cmd(files, "data", "infer", "sales", "-o", "suite.yaml")
    assert inferred.returncode == 0 and (files / "suite.yaml").read_text().startswith("suite: sales")
    ok = keel_cmd(files, "data", "validate", "sales@1", "--suite", "suite.yaml", "--save")
    n_checks = (files / "suite.yaml").read_text().count("- kind:")
    assert ok.returncode == 0 and f"all {n_checks} checks passed" in ok.stdout
    failed = keel_cmd(files, "data", "validate", "bad.csv", "--suite", "suite.yaml", "--report", "v.html")
    assert failed.returncode == 1 and "Paris" in failed.stdout
    assert "allowed_values" in (files / "v.html").read_text()
    refused = keel_cmd(files, "data", "log", "bad.csv", "--name", "sales", "--suite", "suite.yaml")
    assert refused.returncode == 2 and refused.stderr.startswith("keel: error: refused, nothing stored")
    drift = keel_cmd(files, "data", "drift", "sales@1", "feb.parquet", "--json")
    assert drift.returncode == 0, drift.stderr
    assert json.loads(drift.stdout)["drifted"] == ["x"]
    drift_table = keel_cmd(files, "data", "drift", "sales@1", "feb.parquet", "--report", "d.html")
    assert "1 of 3 columns drifted" in drift_table.stdout and "<svg" in (files / "d.html").read_text()
    shown = keel_cmd(files, "data", "show", "sales")
    assert shown.returncode == 0 and "validation 'sales': passed" in shown.stdout and "city" in shown.stdout
    listed = keel_cmd(files, "data", "list")
    assert "sales" in listed.stdout and "@1" in listed.stdout
    report = keel_cmd(files, "data", "report", "sales", "-o", "p.html")
    assert report.returncode == 0 and (files / "p.html").read_text().count("<svg") == 3


@pytest.mark.parametrize(
    "args, needle",
    [
        (["data", "show", "nothing"], "dataset 'nothing' does not exist"),
        (["data", "log", "missing.csv", "--name", "x"], "path must be an existing .csv or .parquet file"),
        (["data", "validate", "jan.csv", "--suite", "nope.yaml"], "suite path must be an existing YAML file"),
        (["data", "drift", "jan.csv", "feb.parquet", "--json"], ""),
        (["data", "log", "jan.csv", "--name", "../up"], "dataset name must be"),
    ],
)
def test_data_commands_refuse_bad_arguments_in_one_line(files: Path, args: list[str], needle: str) -> None:
    if args[:2] == ["data", "show"]:  # with no store at all, a read says so instead (tests/cli/test_finding_things.py)
        assert keel_cmd(files, "data", "log", "jan.csv", "--name", "sales").returncode == 0
    done = keel_cmd(files, *args)
    if not needle:  # two files compare fine: the control case
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and needle in done.stderr
