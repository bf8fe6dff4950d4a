"""CI-friendly verdicts (issue 13): ``keel data drift --fail-on-drift``, ``keel data validate --failures-only`` and
``keel gate --json`` (JSON alone on stdout) with ``--json-out PATH`` (the file, next to the table)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.testing.cli import keel_cmd

SUITE = """\
suite: orders
checks:
  - kind: not_null
    column: amount
  - kind: range
    column: amount
    min: 0
    max: 100000
  - kind: allowed_values
    column: city
    values: [NY, SF, LA]
  - kind: max_missing
    column: age
    max_share: 0.0
    severity: warn
  - kind: row_count
    min: 10
"""


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 2000
    return pd.DataFrame({
        "amount": rng.gamma(2.0, 50.0, n), "age": rng.normal(40.0, 10.0, n), "city": rng.choice(["NY", "SF", "LA"], n),
    })  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """orders@1, orders@2 (a second sample of the same distribution), orders@3 (amount and age shifted: 2 of 3
    columns); a file with only age shifted (1 of 3); a file that breaks the suite; a baseline and a candidate run."""
    import keel.data
    from keel.tracking.client import Client

    folder = tmp_path_factory.mktemp("ci")
    client = Client(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    try:
        first = _frame(1)
        refs = [
            keel.data.log(frame, "orders", run=False, ctx=client.context).ref
            for frame in (first, _frame(2), first.assign(amount=first["amount"] * 1.6, age=first["age"] + 8.0))
        ]
        assert refs == ["orders@1", "orders@2", "orders@3"]
        first.assign(age=first["age"] + 8.0).to_parquet(folder / "older.parquet", index=False)
        bad = first.copy()
        bad.loc[[3, 4], "city"] = "Paris"
        bad.loc[7, "amount"] = -5.0
        bad.loc[[9, 11], "age"] = np.nan
        bad.to_csv(folder / "bad.csv", index=False)
        (folder / "suite.yaml").write_text(SUITE)
        for name, auc in (("baseline", 0.90), ("candidate", 0.93)):
            run = client.create_run("churn", name, capture_code=False)
            client.log_metric(run.id, "auc", auc)
            client.end_run(run.id)
            (folder / f"{name}.id").write_text(run.id)
    finally:
        client.close()
    return folder


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_fail_on_drift_exits_1_on_dataset_drift_only(project: Path) -> None:
    default = keel_cmd(project, "data", "drift", "orders@1", "orders@3")
    assert default.returncode == 0, default.stderr  # without the flag: today's exit code, whatever the verdict
    assert "2 of 3 columns drifted" in default.stdout and "dataset drift" in default.stdout

    drifted = keel_cmd(project, "data", "drift", "orders@1", "orders@3", "--fail-on-drift")
    assert drifted.returncode == 1, (drifted.stdout, drifted.stderr)
    assert "2 of 3 columns drifted" in drifted.stdout and "no dataset drift" not in drifted.stdout
    assert "report with reference-vs-current histograms" in drifted.stdout  # the report is still written

    stable = keel_cmd(project, "data", "drift", "orders@1", "orders@2", "--fail-on-drift")
    assert stable.returncode == 0, (stable.stdout, stable.stderr)
    assert "0 of 3 columns drifted" in stable.stdout and "no dataset drift" in stable.stdout


def test_fail_on_drift_with_json_keeps_stdout_json(project: Path) -> None:
    drifted = keel_cmd(project, "data", "drift", "orders@1", "orders@3", "--json", "--fail-on-drift")
    assert drifted.returncode == 1, drifted.stderr
    body = json.loads(drifted.stdout)
    assert body["dataset_drift"] is True and sorted(body["drifted"]) == ["age", "amount"]
    plain = keel_cmd(project, "data", "drift", "orders@1", "orders@3", "--json")
    assert plain.returncode == 0 and json.loads(plain.stdout)["dataset_drift"] is True
    stable = keel_cmd(project, "data", "drift", "orders@1", "orders@2", "--json", "--fail-on-drift")
    assert stable.returncode == 0 and json.loads(stable.stdout)["drifted"] == []


def test_drift_share_sets_what_counts_as_dataset_drift(project: Path) -> None:
    one_column = keel_cmd(project, "data", "drift", "orders@1", "older.parquet", "--fail-on-drift")
    assert one_column.returncode == 0 and "1 of 3 columns drifted" in one_column.stdout, one_column.stdout
    strict = keel_cmd(project, "data", "drift", "orders@1", "older.parquet", "--fail-on-drift", "--drift-share", "0.3")
    assert strict.returncode == 1 and "1 of 3 columns drifted" in strict.stdout, strict.stdout
    for bad in ("0", "1.5"):
        refused = keel_cmd(project, "data", "drift", "orders@1", "orders@2", "--drift-share", bad)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--drift-share" in refused.stderr


def test_failures_only_lists_the_failing_checks_and_keeps_the_exit_code(project: Path) -> None:
    full = keel_cmd(project, "data", "validate", "bad.csv", "--suite", "suite.yaml")
    assert full.returncode == 1
    assert all(kind in full.stdout for kind in ("not_null", "row_count", "range", "allowed_values", "max_missing"))

    failing = keel_cmd(project, "data", "validate", "bad.csv", "--suite", "suite.yaml", "--failures-only")
    assert failing.returncode == 1, failing.stderr
    rows = [line for line in failing.stdout.splitlines() if re.search(r"\b(FAIL|warn|pass)\b", line)]
    assert [re.search(r"\b(FAIL|warn|pass)\b", r).group(1) for r in rows] == ["FAIL", "FAIL", "warn"]  # type: ignore[union-attr]
    assert "Paris" in failing.stdout and "max_missing" in failing.stdout
    assert "not_null" not in failing.stdout and "row_count" not in failing.stdout  # passing checks are left out

    clean = keel_cmd(project, "data", "validate", "orders@1", "--suite", "suite.yaml", "--failures-only")
    assert clean.returncode == 0, clean.stderr
    assert _flat(clean.stdout).strip() == "suite 'orders': all 5 checks passed"


def test_gate_json_prints_json_alone_and_json_out_writes_a_file(project: Path) -> None:
    candidate, baseline = ((project / f"{n}.id").read_text() for n in ("candidate", "baseline"))
    rules = ["-r", "auc >= 0.9", "-r", "auc >= baseline + 0.01"]
    printed = keel_cmd(project, "gate", candidate[:12], "--baseline", baseline[:12], *rules, "--json")
    assert printed.returncode == 0, printed.stderr
    body = json.loads(printed.stdout)  # stdout is the JSON and nothing else
    assert body["passed"] is True and body["candidate"] == candidate and body["baseline"] == baseline
    assert [c["threshold"] for c in body["checks"]] == pytest.approx([0.9, 0.91])

    failed = keel_cmd(project, "gate", baseline, "--baseline", candidate, *rules, "--json")
    assert failed.returncode == 1 and json.loads(failed.stdout)["passed"] is False

    out = project / "gate.json"
    filed = keel_cmd(project, "gate", candidate, "--baseline", baseline, *rules, "--json-out", str(out))
    assert filed.returncode == 0 and "gate passed" in filed.stdout and "auc >= 0.9" in filed.stdout  # the table too
    assert json.loads(out.read_text()) == body

    both = keel_cmd(project, "gate", baseline, "--baseline", candidate, *rules, "--json", "--json-out", "both.json")
    assert both.returncode == 1 and json.loads(both.stdout) == json.loads((project / "both.json").read_text())


def test_gate_refuses_the_old_json_path_and_a_json_out_in_a_missing_folder(project: Path) -> None:
    candidate = (project / "candidate.id").read_text()
    old = keel_cmd(project, "gate", candidate, "-r", "auc >= 0.9", "--json", "old.json")
    assert old.returncode == 2 and "old.json" in old.stderr and not (project / "old.json").exists()
    nowhere = keel_cmd(project, "gate", candidate, "-r", "auc >= 0.9", "--json-out", "missing/gate.json")
    assert nowhere.returncode == 2 and nowhere.stderr.count("\n") == 1 and "--json-out" in nowhere.stderr
