"""Lineage queries over a real history (datasets with a parent, tracked runs, registered versions, gated alias
moves, a deployment created, following its alias and changed, logged predictions): the exact chains both ways, and
what an alias or a deployment served before and after each change. One query runs against a real keel server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from keel.context import Context
from keel.core.deployments import DeploymentChange
from keel.core.errors import InvalidArgument, NotFound
from keel.core.models import AliasChange
from keel.govern import dataset_impact, lineage_html, model_lineage, prediction_lineage, served_at
from keel.govern.graph import LineageGraph
from keel.testing.governance import GovernedHistory, governed_history


@pytest.fixture
def history(tmp_path) -> Iterator[tuple[Context, GovernedHistory]]:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    yield ctx, governed_history(ctx)
    ctx.close()


def _targets(graph: LineageGraph, key: str, relation: str) -> list[str]:
    return [n.key for n in graph.targets(key, relation)]


def test_a_request_id_leads_to_version_run_datasets_and_the_raw_source(history) -> None:
    ctx, h = history
    graph = prediction_lineage("req-a", "live", ctx)
    assert graph.root == "request:req-a"
    [pred] = graph.targets("request:req-a", "logged as")
    assert pred.attrs["route"] == "primary" and pred.attrs["model"] == h.v1.uri and pred.attrs["served"] is True
    assert pred.attrs["time"] == h.requests["req-a"] and pred.attrs["replicas"] == ["replica-1"]
    assert pred.attrs["statuses"] == [200] and pred.attrs["row_values"][0]["output"] == 1
    assert _targets(graph, pred.key, "answered by") == ["model_version:models:/churn/1"]
    assert _targets(graph, "model_version:models:/churn/1", "trained in") == [f"run:{h.run1}"]
    run = graph.nodes[f"run:{h.run1}"]
    assert run.attrs["params"] == {"C": "1.0"} and run.attrs["metrics"] == {"auc": 0.81} and run.attrs["status"] == "finished"
    assert _targets(graph, "model_version:models:/churn/1", "trained on") == [f"dataset_version:{h.clean.ref}"]
    assert _targets(graph, f"run:{h.run1}", "read") == [f"dataset_version:{h.clean.ref}"]
    assert _targets(graph, f"dataset_version:{h.clean.ref}", "derived from") == ["dataset_version:raw@1"]
    assert _targets(graph, "dataset_version:raw@1", "loaded from") == ["source:s3://bucket/raw.csv"]
    # the deployment and the change in force then: its creation, routing production (v1 then)
    [change] = graph.targets("deployment:live", "in force")
    assert change.attrs["what"] == "create" and change.attrs["at"] == h.created and change.attrs["actor"] == "alice"
    assert _targets(graph, change.key, "routes (primary)") == ["model_version:models:/churn/1"]
    assert pred.attrs["routed_then"] is True
    assert graph.depths()["source:s3://bucket/raw.csv"] == 5  # request, prediction, version, dataset, raw, source


def test_after_the_alias_move_and_the_pin_the_chain_follows(history) -> None:
    ctx, h = history
    graph = prediction_lineage("req-b", "live", ctx)
    [pred] = graph.targets("request:req-b", "logged as")
    assert _targets(graph, pred.key, "answered by") == ["model_version:models:/churn/2"]
    [change] = graph.targets("deployment:live", "in force")
    assert change.attrs["what"] == "alias" and change.attrs["at"] == h.followed
    graph = prediction_lineage("req-c", "live", ctx)
    by_route = {n.attrs["route"]: n for n in graph.targets("request:req-c", "logged as")}
    assert set(by_route) == {"primary", "shadow"}
    assert _targets(graph, by_route["shadow"].key, "computed by") == ["model_version:models:/churn/2"]
    assert _targets(graph, by_route["primary"].key, "answered by") == ["model_version:models:/churn/1"]
    [change] = graph.targets("deployment:live", "in force")
    assert change.attrs["what"] == "primary" and change.attrs["reason"] == "pin v1, shadow production"
    assert _targets(graph, change.key, "routes (shadow)") == ["model_version:models:/churn/2"]


def test_unknown_request_deployment_and_bad_ids_are_named(history) -> None:
    ctx, _ = history
    with pytest.raises(NotFound, match=r"'req-zzz'.*'live'"):
        prediction_lineage("req-zzz", "live", ctx)
    with pytest.raises(NotFound, match="'nowhere'"):
        prediction_lineage("req-a", "nowhere", ctx)
    with pytest.raises(InvalidArgument, match="request_id"):
        prediction_lineage("no spaces allowed", "live", ctx)
    with pytest.raises(NotFound, match="req-a"):  # the window holds no file with it
        prediction_lineage("req-a", "live", ctx, until=1000)


def test_a_dataset_version_reaches_every_model_alias_and_deployment_built_on_it(history) -> None:
    ctx, h = history
    graph = dataset_impact("raw", 1, ctx)
    assert _targets(graph, "dataset_version:raw@1", "derived into") == [f"dataset_version:{h.clean.ref}"]
    clean = f"dataset_version:{h.clean.ref}"
    assert _targets(graph, clean, "read by") == [f"run:{h.run1}", f"run:{h.run2}"]
    assert _targets(graph, clean, "trained") == ["model_version:models:/churn/1", "model_version:models:/churn/2"]
    assert _targets(graph, f"run:{h.run2}", "produced") == ["model_version:models:/churn/2"]
    assert _targets(graph, "model_version:models:/churn/1", "was held by") == ["alias:churn@production"]
    assert _targets(graph, "model_version:models:/churn/2", "held by") == ["alias:churn@production"]
    # v1: primary through the alias, then pinned (still now); v2: primary through the alias, now the shadow
    routes = graph.nodes["deployment:live"].attrs["routes"]
    assert routes[h.v1.uri]["now"] is True and routes[h.v1.uri]["roles"] == ["primary"]
    assert routes[h.v1.uri]["since"] == h.created
    assert routes[h.v2.uri]["roles"] == ["primary", "shadow"] and routes[h.v2.uri]["since"] == h.promoted_v2
    assert _targets(graph, "model_version:models:/churn/2", "routed by") == ["deployment:live"]
    # nothing upstream is in the impact
    assert "source:s3://bucket/raw.csv" in graph.nodes and not graph.of_kind("request")
    with pytest.raises(NotFound, match="raw"):
        dataset_impact("raw", 9, ctx)
    with pytest.raises(InvalidArgument, match="version"):
        dataset_impact("raw", 0, ctx)


def test_a_dataset_nothing_was_built_on_has_no_impact(history) -> None:
    ctx, h = history
    graph = dataset_impact("clean", h.clean.version, ctx)
    assert "dataset_version:raw@1" not in graph.nodes  # parents are upstream
    assert {n.id for n in graph.of_kind("model_version")} == {h.v1.uri, h.v2.uri}


def test_served_at_through_alias_and_deployment_history(history) -> None:
    ctx, h = history
    alias = "models:/churn@production"
    assert served_at(alias, h.before, ctx).version_uri is None
    assert served_at(alias, h.promoted_v1, ctx).version_uri == h.v1.uri  # a move applies from its own time
    assert served_at(alias, h.promoted_v2 - 1, ctx).version_uri == h.v1.uri
    assert served_at(alias, h.promoted_v2, ctx).version_uri == h.v2.uri
    moved = served_at(alias, h.pinned, ctx)
    assert isinstance(moved.change, AliasChange) and moved.change.actor == "bob" and moved.change.gated is True
    assert served_at("live", h.before, ctx).primary is None
    at_a = served_at("live", h.requests["req-a"], ctx)
    assert at_a.primary == alias and at_a.resolved == {alias: h.v1.uri} and at_a.version_uri == h.v1.uri
    at_b = served_at("live", datetime.fromtimestamp(h.requests["req-b"] / 1000, UTC), ctx)
    assert at_b.version_uri == h.v2.uri and isinstance(at_b.change, DeploymentChange) and at_b.change.what == "alias"
    iso = datetime.fromtimestamp(h.requests["req-c"] / 1000, UTC).isoformat()
    at_c = served_at("live", iso, ctx)
    assert at_c.primary == h.v1.uri and at_c.shadows == (alias,)
    assert at_c.resolved == {h.v1.uri: h.v1.uri, alias: h.v2.uri}
    assert at_c.to_json()["change"]["reason"] == "pin v1, shadow production"
    with pytest.raises(NotFound, match="'ghost'"):
        served_at("ghost", h.pinned, ctx)
    with pytest.raises(InvalidArgument, match="target"):
        served_at("models:/churn/1", h.pinned, ctx)
    with pytest.raises(InvalidArgument, match="at must be"):
        served_at("live", "yesterday-ish", ctx)
    with pytest.raises(NotFound, match="nomodel"):
        served_at("models:/nomodel@production", h.pinned, ctx)


def test_model_lineage_and_its_html_escape_user_data(history) -> None:
    ctx, h = history
    graph = model_lineage(h.v1.uri, ctx)
    assert graph.root == "model_version:models:/churn/1"
    assert _targets(graph, graph.root, "routed by") == ["deployment:live"]
    graph.add("source", "<script>alert(1)</script>", "<script>alert(1)</script>")
    page = lineage_html(graph, "t")
    assert "<script>" not in page and "&lt;script&gt;" in page and "<svg" in page and "http" not in page.split("<svg")[0]
    assert page.count('class="node"') == len(graph.nodes)


def test_a_query_over_a_keel_server(server_url: str, tmp_path) -> None:
    ctx = Context(server_url, str(tmp_path / "unused"))
    suffix = uuid.uuid4().hex[:8]  # the server's store is shared by the session
    h = governed_history(ctx, suffix=suffix)
    graph = prediction_lineage("req-c", f"live{suffix}", ctx)
    version = f"model_version:models:/churn{suffix}/1"
    assert [n.key for n in graph.targets("request:req-c", "logged as")] == [
        f"prediction:req-c/primary/models:/churn{suffix}/1",
        f"prediction:req-c/shadow/models:/churn{suffix}/2",
    ]
    assert _targets(graph, version, "trained on") == [f"dataset_version:{h.clean.ref}"]
    assert _targets(graph, f"dataset_version:{h.clean.ref}", "derived from") == [f"dataset_version:raw{suffix}@1"]
    assert served_at(f"live{suffix}", h.requests["req-b"], ctx).version_uri == f"models:/churn{suffix}/2"
    ctx.close()
