"""The compliance report of a model version over a real history: its sections hold the card, the lineage, the
validation of its data, an explicit "no fairness results", its approvals with the gates' checks, and its audit
trail; the HTML page is offline and escapes what users wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import keel.registry as registry
from keel.context import Context
from keel.core.actor import acting_as
from keel.core.errors import InvalidArgument, NotFound
from keel.govern import compliance_report, write_compliance_report
from keel.govern.compliance import FAIRNESS_NONE
from keel.testing.governance import GovernedHistory, governed_history


@pytest.fixture
def history(tmp_path) -> Iterator[tuple[Context, GovernedHistory]]:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    yield ctx, governed_history(ctx)
    ctx.close()


def test_the_report_of_v1_has_every_section(history) -> None:
    ctx, h = history
    report = compliance_report("models:/churn/1", ctx)
    assert report["model"]["uri"] == h.v1.uri and report["model"]["source_run"] == h.run1
    assert report["model"]["datasets"] == [h.clean.ref]
    assert report["card"]["data"]["params"] == {"C": "1.0"}
    assert report["card"]["markdown"].startswith("# Model card: churn v1")
    keys = {n["key"] for n in report["lineage"]["nodes"]}
    assert {f"run:{h.run1}", f"dataset_version:{h.clean.ref}", "dataset_version:raw@1", "source:s3://bucket/raw.csv",
            "deployment:live", "alias:churn@production"} <= keys  # fmt: skip
    assert not any(n["kind"] == "request" for n in report["lineage"]["nodes"])  # independent of predictions
    [deployment] = report["deployments"]
    assert deployment["deployment"] == "live" and deployment["now"] is True and deployment["since"] == h.created
    assert [(x["dataset"], x["training"]) for x in report["validation"]] == [(h.clean.ref, True), ("raw@1", False)]
    [record] = report["validation"][0]["records"]
    assert record["suite"] == "clean-suite" and record["passed"] is True and report["validation"][1]["records"] == []
    assert report["fairness"] == {"available": False, "results": [], "note": FAIRNESS_NONE}
    first, second = report["approvals"]
    assert (first["from_version"], first["to_version"], first["actor"], first["reason"]) == (None, 1, "alice", "first release")
    assert first["gated"] is True and first["forced"] is False
    assert [c.get("rule") or c.get("data") for c in first["checks"]] == ["auc >= 0.8", h.clean.ref]
    assert first["checks"][0]["candidate"] == 0.81 and first["checks"][0]["passed"] is True
    assert (second["from_version"], second["to_version"], second["actor"]) == (1, 2, "bob")
    assert second["checks"][0]["rule"] == "auc >= baseline + 0.01" and second["checks"][0]["baseline"] == 0.81
    trail = [(e["action"], e["entity"], e["entity_id"], e["actor"]) for e in report["audit"]]
    assert ("models.create_version", "model_version", "churn/1", "trainer") in trail
    assert ("runs.create", "run", h.run1, "trainer") in trail and ("runs.end", "run", h.run1, "trainer") in trail
    moves = [t for t in trail if t[0] == "models.move_alias"]
    assert moves == [("models.move_alias", "alias", "churn@production", "alice"),
                     ("models.move_alias", "alias", "churn@production", "bob")]  # fmt: skip
    assert ("datasets.save_validation", "dataset_version", str(h.clean.id), "etl") in trail
    assert not any(e[2] == "churn/2" for e in trail)  # not the other version's events
    assert [e["seq"] for e in report["audit"]] == sorted(e["seq"] for e in report["audit"])
    json.dumps(report)  # JSON-ready


def test_a_forced_move_is_an_approval_and_only_moves_of_this_version_count(history) -> None:
    ctx, _ = history
    with acting_as("dave"):
        registry.promote("churn", 2, "staging", force=True, actor="dave", reason="try it", ctx=ctx)
    v2 = compliance_report("models:/churn@production", ctx)  # an alias resolves to its version now
    assert v2["model"]["uri"] == "models:/churn/2" and v2["model"]["asked_as"] == "models:/churn@production"
    forced = [a for a in v2["approvals"] if a["alias"] == "staging"]
    assert len(forced) == 1 and forced[0]["forced"] is True and forced[0]["gated"] is False and forced[0]["checks"] == []
    assert ("alias", "churn@staging", "dave") in {(e["entity"], e["entity_id"], e["actor"]) for e in v2["audit"]}
    v1 = compliance_report("models:/churn/1", ctx)
    assert all(a["alias"] == "production" for a in v1["approvals"])


def test_the_html_report_is_offline_and_escapes_user_text(history, tmp_path) -> None:
    ctx, _ = history
    with acting_as("mallory"):
        registry.promote("churn", 1, "canary", force=True, actor="<b>mallory</b>", reason="<script>x()</script>", ctx=ctx)
    path, report = write_compliance_report("models:/churn/1", tmp_path / "report.html", ctx)
    page = path.read_text()
    for section in ("Model card", "Lineage", "Deployments", "Validation", "Fairness", "Approvals", "Audit trail"):
        assert f"<h2>{section}</h2>" in page
    assert FAIRNESS_NONE in page and "<svg" in page and "<script" not in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "&lt;b&gt;mallory&lt;/b&gt;" in page
    assert "src=" not in page and "href=" not in page  # nothing loaded from anywhere
    assert "auc &gt;= 0.8" in page  # the gate's check, as text
    assert len(report["approvals"]) == 3
    write_compliance_report("models:/churn/1", path, ctx)  # a report keel wrote may be replaced
    other = tmp_path / "notes.html"
    other.write_text("mine")
    with pytest.raises(InvalidArgument, match="--output"):
        write_compliance_report("models:/churn/1", other, ctx)
    assert other.read_text() == "mine"


def test_unknown_and_bad_model_uris_are_named(history) -> None:
    ctx, _ = history
    with pytest.raises(NotFound, match="no version 7"):
        compliance_report("models:/churn/7", ctx)
    with pytest.raises(InvalidArgument, match="model URI"):
        compliance_report("churn", ctx)
