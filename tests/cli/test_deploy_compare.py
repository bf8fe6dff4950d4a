"""``keel deploy compare`` on a real prediction log: written by the serving writer (``PredictionLog`` over
``ParquetSink``) into a SQLite store and its artifact folder, labels recorded later, compared by the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.context import Context
from keel.core.clock import now_ms
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predictions import log_labels
from keel.serve.predlog import PredictionLog
from keel.testing.cli import keel_cmd

PRIMARY, SHADOW, CANARY = "models:/churn/1", "models:/churn/2", "models:/churn/3"


def _ctx(tmp_path: Path) -> Context:
    # the store and artifact folder `keel` finds when run in tmp_path (its default ./.keel)
    return Context(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}", str(tmp_path / ".keel" / "artifacts"))


def _row(rid: str, route: str, model: str, output: int, p: float, t: int, latency: float) -> dict[str, object]:
    return {
        "request_id": rid, "row": 0, "time": t, "deployment": "churn", "route": route, "model": model,
        "served": route != "shadow", "inputs": {"tenure": 3}, "output": output, "proba": [1 - p, p],
        "latency_ms": latency, "replica": "",
    }  # fmt: skip


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """400 requests: the primary answers 320 (right on 288 = 90%), the canary 80 (right on 40 = 50%); a shadow
    runs on the primary's requests and agrees with it on 240 of 320 (right on 272 = 85%). Every label arrives."""
    ctx = _ctx(tmp_path)
    ctx.store.deployments.create("churn", PRIMARY, shadows=[SHADOW], canaries=[(CANARY, 0.2)])
    start = now_ms() - 600_000  # ten minutes ago: inside the default window (the last hour)
    rows, ids, labels = [], [], []
    for i in range(400):
        rid, y, t = f"req-{i:03d}", i % 2, start + i
        if i < 320:
            primary = y if i < 288 else 1 - y
            rows.append(_row(rid, "primary", PRIMARY, primary, 0.8 if primary else 0.2, t, 2.0))
            shadow = primary if i < 240 else 1 - primary
            rows.append(_row(rid, "shadow", SHADOW, shadow, 0.7 if shadow else 0.3, t, 5.0))
        else:
            canary = y if i < 360 else 1 - y
            rows.append(_row(rid, "canary", CANARY, canary, 0.6 if canary else 0.4, t, 3.0))
        ids.append(rid)
        labels.append(y)
    log = PredictionLog(ParquetSink("churn", ctx), max_batch=150)  # several files in the index
    assert log.offer(rows)
    log.close()
    assert log_labels(ids, labels, deployment="churn", ctx=ctx) == 400
    return tmp_path


def test_compare_prints_json_with_exact_agreement_shares_and_verdicts(logged: Path) -> None:
    done = keel_cmd(logged, "deploy", "compare", "churn", "--json")
    assert done.returncode == 0, done.stderr
    c = json.loads(done.stdout)
    assert c["deployment"] == "churn" and c["reference"] == PRIMARY and c["task"] == "classification"
    assert c["requests"] == 400 and c["rows"] == 720 and c["labeled"] == 400
    models = {m["model"]: m for m in c["models"]}
    assert models[PRIMARY]["share"] == pytest.approx(0.8) and models[CANARY]["share"] == pytest.approx(0.2)
    assert models[SHADOW]["share"] == pytest.approx(0.8) and models[SHADOW]["latency_ms"]["p50"] == pytest.approx(5.0)
    assert models[PRIMARY]["metrics"]["accuracy"] == pytest.approx(0.9)
    assert models[CANARY]["metrics"]["accuracy"] == pytest.approx(0.5)
    shadow = next(ch for ch in c["challengers"] if ch["model"] == SHADOW)
    assert shadow["paired"] and shadow["agreement"]["pairs"] == 320 and shadow["agreement"]["rate"] == pytest.approx(0.75)
    # the shadow is right where it agrees with a right primary (i < 240, all right) and where it contradicts a wrong
    # one (288 <= i < 320): 240 + 32 = 272 of 320 = 85% against the primary's 90%
    acc = shadow["metrics"][0]
    assert acc["metric"] == "accuracy" and acc["challenger"] == pytest.approx(0.85) and acc["difference"] == pytest.approx(-0.05)
    assert acc["low"] < -0.05 < acc["high"]
    canary = next(ch for ch in c["challengers"] if ch["model"] == CANARY)
    assert not canary["paired"] and canary["agreement"] is None
    assert canary["metrics"][0]["verdict"] == "worse" and canary["verdict"].startswith(f"challenger worse than {PRIMARY}")
    assert {d["column"] for d in canary["drift"]} == {"output", "score"}


def test_compare_prints_tables_and_writes_the_html_report(logged: Path) -> None:
    report = logged / "report.html"
    done = keel_cmd(logged, "deploy", "compare", "churn", "--since", "2h", "--html", str(report))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for model in (PRIMARY, SHADOW, CANARY):
        assert model in out
    assert "agreement: 75.0% of 320 rows" in out and "challenger worse than" in out
    assert f"report: {report}" in out.replace("\n", "")
    html = report.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html and "models:/churn/3" in html and "<svg" in html


def test_an_unknown_deployment_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from keel.store.metadata import open_store

    open_store(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}").close()  # compare reads a store, never creates one
    done = keel_cmd(tmp_path, "deploy", "compare", "nope")
    assert done.returncode == 2 and done.stderr.startswith("keel: error:") and len(done.stderr.strip().splitlines()) == 1
    assert "nope" in done.stderr
    bad = keel_cmd(tmp_path, "deploy", "compare", "nope", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_an_empty_window_says_so_and_exits_1(logged: Path) -> None:
    done = keel_cmd(logged, "deploy", "compare", "churn", "--since", "3h", "--until", "2h")
    assert done.returncode == 1, done.stderr
    assert "No predictions logged for deployment churn between " in done.stdout
    as_json = keel_cmd(logged, "deploy", "compare", "churn", "--since", "", "--until", "2h", "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["rows"] == 0 and "churn until " in as_json.stderr


def test_the_html_report_never_replaces_a_file_keel_did_not_write(logged: Path) -> None:
    mine = logged / "notes.html"
    mine.write_text("<html>my notes</html>")
    done = keel_cmd(logged, "deploy", "compare", "churn", "--since", "2h", "--html", str(mine))
    assert done.returncode == 2 and "--html" in done.stderr and mine.read_text() == "<html>my notes</html>"
    report = logged / "report.html"
    assert keel_cmd(logged, "deploy", "compare", "churn", "--since", "2h", "--html", str(report)).returncode == 0
    assert keel_cmd(logged, "deploy", "compare", "churn", "--since", "2h", "--html", str(report)).returncode == 0  # its own
    missing = keel_cmd(logged, "deploy", "compare", "churn", "--since", "2h", "--html", str(logged / "no" / "r.html"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
