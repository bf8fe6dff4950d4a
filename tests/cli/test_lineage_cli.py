"""``keel lineage prediction|dataset|served`` and ``keel compliance report`` over a real SQLite history: the chains
printed, JSON that matches the API, HTML written, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.cli.main import main
from keel.context import Context
from keel.testing.governance import GovernedHistory, governed_history


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GovernedHistory:
    uri, artifacts = f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts")
    monkeypatch.setenv("KEEL_STORE", uri)
    monkeypatch.setenv("KEEL_ARTIFACTS", artifacts)
    ctx = Context(uri, artifacts)
    built = governed_history(ctx)
    ctx.close()
    return built


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_lineage_of_a_prediction_as_tree_json_and_html(history, capsys, tmp_path) -> None:
    code, out, _ = _run(capsys, "lineage", "prediction", "req-a", "--deployment", "live", "--html", str(tmp_path / "l.html"))
    assert code == 0, out
    for text in ("request req-a", "answered by model_version churn v1", "trained on dataset_version clean@1",
                 "derived from dataset_version raw@1", "loaded from source s3://bucket/raw.csv", "in force"):  # fmt: skip
        assert text in out, text
    assert "<svg" in (tmp_path / "l.html").read_text()
    code, out, _ = _run(capsys, "lineage", "prediction", "req-c", "-d", "live", "--json")
    graph = json.loads(out)
    assert code == 0 and graph["root"] == "request:req-c"
    assert {e["relation"] for e in graph["edges"] if e["source"] == "prediction:req-c/shadow/models:/churn/2"} == {"computed by"}


def test_lineage_of_a_dataset(history, capsys) -> None:
    code, out, _ = _run(capsys, "lineage", "dataset", "raw@1", "--json")
    graph = json.loads(out)
    assert code == 0 and graph["root"] == "dataset_version:raw@1"
    relations = {(e["source"], e["relation"], e["target"]) for e in graph["edges"]}
    assert ("model_version:models:/churn/2", "routed by", "deployment:live") in relations
    assert ("dataset_version:raw@1", "derived into", f"dataset_version:{history.clean.ref}") in relations
    code, out, _ = _run(capsys, "lineage", "dataset", "raw")  # the latest version
    assert code == 0 and "held by alias churn@production" in out


def test_served_before_and_after_changes(history, capsys) -> None:
    code, out, _ = _run(capsys, "lineage", "served", "live", "--at", str(history.requests["req-a"]), "--json")
    assert code == 0 and json.loads(out)["version"] == "models:/churn/1"
    code, out, _ = _run(capsys, "lineage", "served", "live", "--at", str(history.requests["req-c"]))
    assert code == 0 and "models:/churn@production" in out and "models:/churn/2" in out and "pin v1" in out
    code, out, _ = _run(capsys, "lineage", "served", "models:/churn@production", "--at", str(history.before))
    assert code == 0 and "nothing served (the alias named no version)" in " ".join(out.split())  # Rich wraps lines


def test_compliance_report_writes_html_and_json(history, capsys, tmp_path) -> None:
    target = tmp_path / "report.html"
    code, out, err = _run(capsys, "compliance", "report", "models:/churn/1", "-o", str(target), "--json")
    report = json.loads(out)
    assert code == 0 and report["model"]["uri"] == "models:/churn/1" and len(report["approvals"]) == 2
    assert "<h2>Approvals</h2>" in target.read_text() and "compliance report:" in err
    code, out, _ = _run(capsys, "compliance", "report", "models:/churn@production")
    assert code == 0 and "models:/churn/2" in out and "fairness: none recorded" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["lineage", "prediction", "req-zzz", "-d", "live"], "no prediction with request id 'req-zzz'"),
        (["lineage", "prediction", "req-a", "-d", "ghost"], "deployment 'ghost' does not exist"),
        (["lineage", "dataset", "raw@9"], "raw"),
        (["lineage", "served", "live", "--at", "soon"], "at must be"),
        (["compliance", "report", "churn"], "model URI"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(history, capsys, args, expected) -> None:
    code, out, err = _run(capsys, *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err, err
