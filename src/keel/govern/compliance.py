"""The compliance record of one model version: one JSON document (and one offline HTML page) with its card, its
lineage, the validation of its data, fairness results, its approvals and its audit trail.

>>> report = compliance_report("models:/churn@production")              # doctest: +SKIP
>>> write_compliance_report("models:/churn/3", "churn-v3-compliance.html") # doctest: +SKIP

Everything comes from the stores: the card from lineage (``keel.registry.export.card_data``), approvals from the
alias history (gates, their checks, forced moves, who and why), the audit trail from the hash-chained log
(``store.audit.events`` by entity: the version ``model_version NAME/VERSION``, its aliases ``alias NAME@ALIAS``, its
source run ``run ID`` and its training datasets ``dataset_version ID``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keel.context import Context, resolve
from keel.core.audit import AuditEvent
from keel.core.clock import now_ms
from keel.core.entities import to_plain
from keel.core.html import esc, fmt, page
from keel.core.models import AliasChange, ModelVersion
from keel.govern.graph import LineageGraph
from keel.govern.lineage import iso, model_lineage
from keel.govern.render import check_writable, graph_svg, nodes_table
from keel.registry import resolve as resolve_model
from keel.registry.export import card_data, card_markdown
from keel.store.metadata.audit import MAX_PAGE

__all__ = ["FAIRNESS_NONE", "compliance_html", "compliance_report", "write_compliance_report"]

FAIRNESS_NONE = (
    "No fairness results exist for this model version: keel records none yet (no fairness evaluation has been run "
    "or stored), so none can be reported."
)


def _events(ctx: Context, entity: str, entity_id: str) -> list[AuditEvent]:
    """Every audit event of one entity, oldest first (paged: the log may be long)."""
    out: list[AuditEvent] = []
    after = 0
    while True:
        page_ = ctx.store.audit.events(after_seq=after, limit=MAX_PAGE, entity=entity, entity_id=entity_id)
        out.extend(page_)
        if len(page_) < MAX_PAGE:
            return out
        after = page_[-1].seq


def _version_of(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text).get("version")
    except (ValueError, AttributeError):
        return None


def _approval(move: AliasChange) -> dict[str, Any]:
    return {
        "alias": move.alias, "from_version": move.from_version, "to_version": move.to_version, "actor": move.actor,
        "reason": move.reason, "at": move.at, "time": iso(move.at), "gated": move.gated, "forced": move.forced,
        "checks": move.checks or [],
    }  # fmt: skip


def _audit_trail(ctx: Context, v: ModelVersion, aliases: list[str], graph: LineageGraph) -> list[dict[str, Any]]:
    """The events of the version, of its aliases' moves that involve it, of its source run and training datasets."""
    events = list(_events(ctx, "model_version", f"{v.name}/{v.version}"))
    for alias in aliases:
        moved = _events(ctx, "alias", f"{v.name}@{alias}")
        events += [e for e in moved if v.version in (_version_of(e.before), _version_of(e.after))]
    if v.source_run:
        events += _events(ctx, "run", v.source_run)
    for node in graph.of_kind("dataset_version"):
        events += _events(ctx, "dataset_version", str(node.attrs["dataset_id"]))
    unique = {e.seq: e for e in events}
    return [{**unique[seq].to_json(), "time": iso(unique[seq].at)} for seq in sorted(unique)]


def _validation(ctx: Context, v: ModelVersion, graph: LineageGraph) -> list[dict[str, Any]]:
    """The validation records of every dataset version in the lineage (training data first, then their ancestors)."""
    training = set(v.dataset_version_ids)
    nodes = sorted(graph.of_kind("dataset_version"), key=lambda n: n.attrs["dataset_id"] not in training)
    out = []
    for node in nodes:
        records = ctx.store.datasets.list_validations(int(node.attrs["dataset_id"]))
        out.append({
            "dataset": node.id, "training": node.attrs["dataset_id"] in training,
            "records": [{"suite": r.suite, "passed": r.passed, "errors": r.errors, "warnings": r.warnings,
                         "at": r.created_at, "time": iso(r.created_at), "result": r.result} for r in records],
        })  # fmt: skip
    return out


def compliance_report(model_uri: str, ctx: Context | None = None) -> dict[str, Any]:
    """The compliance record of the version ``model_uri`` names (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``):
    ``model``, ``card`` (data and Markdown), ``lineage`` (version -> run -> datasets -> sources, and routing),
    ``deployments`` routing it now or before, ``validation`` of its datasets, ``fairness`` (said explicitly when there
    is none), ``approvals`` (the alias moves to or from it, with gates, checks, forced flag, actor and reason) and
    ``audit`` (its trail in the audit log). A JSON-ready dict."""
    ctx = resolve(ctx)
    v = resolve_model(model_uri, ctx)
    graph = model_lineage(v.uri, ctx)
    moves = [m for m in ctx.store.models.alias_history(v.name) if v.version in (m.from_version, m.to_version)]
    aliases = sorted({m.alias for m in moves})
    card = to_plain(card_data(v.name, v.version, ctx))
    routing = [n for n in graph.of_kind("deployment") if v.uri in n.attrs.get("routes", {})]
    deployments = [{"deployment": n.id, **n.attrs["routes"][v.uri]} for n in routing]
    return {
        "generated_at": now_ms(),
        "model": {
            "uri": v.uri, "name": v.name, "version": v.version, "flavor": v.flavor, "artifact_sha256": v.artifact_sha256,
            "size": v.size, "source_run": v.source_run, "metrics": dict(v.metrics), "datasets": list(v.datasets),
            "aliases": list(v.aliases), "requirements": list(v.requirements), "description": v.description,
            "created_at": v.created_at, "asked_as": model_uri,
        },
        "card": {"data": card, "markdown": card_markdown(v.name, v.version, ctx)},
        "lineage": graph.to_json(),
        "deployments": deployments,
        "validation": _validation(ctx, v, graph),
        "fairness": {"available": False, "results": [], "note": FAIRNESS_NONE},
        "approvals": [_approval(m) for m in moves],
        "audit": _audit_trail(ctx, v, aliases, graph),
    }  # fmt: skip


# HTML --------------------------------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class=muted>{esc(empty)}</p>"
    head = "".join(f"<th class=l>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class=l>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<div class=wide><table><tr>{head}</tr>{body}</table></div>"


def _card_html(markdown: str) -> str:
    out = []
    for line in markdown.splitlines():
        if line.startswith("# ") or not line:
            continue
        if line.startswith("## "):
            out.append(f"<h3>{esc(line[3:])}</h3>")
        elif line.startswith("- "):
            out.append(f"<li>{esc(line[2:])}</li>")
        else:
            out.append(f"<p>{esc(line.strip('_'))}</p>")
    return "".join(out)


def _checks(checks: list[dict[str, Any]]) -> str:
    return "<br>".join(esc(json.dumps(c, default=str, ensure_ascii=False, sort_keys=True)) for c in checks) or "-"


def compliance_html(report: dict[str, Any]) -> str:
    """The report as one offline HTML page (every stored value escaped)."""
    from keel.govern.graph import Edge, Node

    m = report["model"]
    graph = LineageGraph()
    for n in report["lineage"]["nodes"]:
        graph.nodes[n["key"]] = Node(n["kind"], n["id"], n["label"], n["attrs"])
    graph.edges = [Edge(e["source"], e["target"], e["relation"]) for e in report["lineage"]["edges"]]
    facts = [
        [esc(k), esc(json.dumps(m[k], default=str, ensure_ascii=False) if isinstance(m[k], (dict, list)) else m[k])]
        for k in ("uri", "flavor", "artifact_sha256", "source_run", "datasets", "aliases", "metrics", "created_at")
    ]
    deployments = [
        [
            esc(d["deployment"]),
            esc(", ".join(d["roles"])),
            esc(iso(d["since"])),
            "yes" if d["now"] else "no",
            esc(", ".join(d["via"])),
        ]
        for d in report["deployments"]
    ]
    validation = [
        [
            esc(x["dataset"]),
            "yes" if x["training"] else "no",
            esc(r["suite"]),
            "<span class=ok>passed</span>" if r["passed"] else "<span class=bad>failed</span>",
            fmt(r["errors"]),
            fmt(r["warnings"]),
            esc(r["time"]),
        ]
        for x in report["validation"]
        for r in x["records"]
    ]
    unvalidated = [x["dataset"] for x in report["validation"] if not x["records"]]
    approvals = [
        [
            esc(a["time"]),
            esc(a["alias"]),
            esc(a["from_version"] or "-"),
            esc(a["to_version"] or "-"),
            esc(a["actor"]),
            esc(a["reason"] or "-"),
            "yes" if a["gated"] else "no",
            "<span class=warn>forced</span>" if a["forced"] else "no",
            _checks(a["checks"]),
        ]
        for a in report["approvals"]
    ]
    audit = [
        [
            fmt(e["seq"]),
            esc(e["time"]),
            esc(e["actor"]),
            esc(e["action"]),
            esc(f"{e['entity']} {e['entity_id']}"),
            esc(e["before"] or "-"),
            esc(e["after"] or "-"),
            f"<code>{esc(e['hash'][:12])}</code>",
        ]
        for e in report["audit"]
    ]
    fairness = report["fairness"]
    body = "".join([
        f"<p class=muted>Generated {esc(iso(report['generated_at']))} for {esc(m['asked_as'])}.</p>",
        "<h2>Model</h2>", _table(["field", "value"], facts, ""),
        "<h2>Model card</h2>", _card_html(report["card"]["markdown"]),
        "<h2>Lineage</h2><div class=wide>", graph_svg(graph), "</div>", nodes_table(graph),
        "<h2>Deployments</h2>", _table(["deployment", "roles", "since", "now", "via"], deployments,
                                       "No deployment routes this version, nor did one."),
        "<h2>Validation</h2>", _table(["dataset", "training", "suite", "result", "errors", "warnings", "time"], validation,
                                      "No validation results recorded."),
        f"<p class=warn>Not validated: {esc(', '.join(unvalidated))}</p>" if unvalidated else "",
        "<h2>Fairness</h2>", f"<p>{esc(fairness['note'])}</p>" if not fairness["results"] else
        _table(["result"], [[esc(json.dumps(r, default=str))] for r in fairness["results"]], ""),
        "<h2>Approvals</h2>", _table(["time", "alias", "from", "to", "actor", "reason", "gated", "forced", "checks"],
                                     approvals, "This version was never promoted: no alias moved to or from it."),
        "<h2>Audit trail</h2>", _table(["seq", "time", "actor", "action", "entity", "before", "after", "hash"], audit,
                                       "No audit events recorded for this version."),
    ])  # fmt: skip
    return page(f"Compliance report: {m['name']} v{m['version']}", body)


def write_compliance_report(model_uri: str, path: str | Path, ctx: Context | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the report of ``model_uri`` as offline HTML to ``path`` (never over a file keel did not write)."""
    target = check_writable(path, "--output")
    report = compliance_report(model_uri, ctx)
    target.write_text(compliance_html(report), encoding="utf-8")
    return target, report
