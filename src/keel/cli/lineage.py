"""``keel lineage prediction|dataset|served`` and ``keel compliance report``: governance records from the stores.

``prediction`` answers "what served this request" (deployment, the change in force, model version, run, datasets
down to their raw sources); ``dataset`` what was built on a dataset version; ``served`` what an alias or a
deployment served at a moment; ``compliance report`` one HTML/JSON document for a model version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.tree import Tree

from keel.cli.lookup import require_store
from keel.cli.output import console, esc, fmt_time

app = typer.Typer(help="Lineage: what served a prediction, what was built on a dataset, what served when.",
                  no_args_is_help=True)  # fmt: skip
compliance = typer.Typer(help="Compliance records of model versions.", no_args_is_help=True)

HTML = typer.Option(None, "--html", help="Also write the graph as an offline HTML page here.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a tree.")


def _ctx() -> Any:
    """The context of the store found here; every command of this module only reads, so none creates a store."""
    from keel.tracking.fluent import get_client

    require_store()
    return get_client().context


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _detail(attrs: dict[str, Any]) -> str:
    """A node's few telling attributes, one line."""
    keys = ("time", "route", "status", "statuses", "replicas", "what", "actor", "reason", "rows", "params", "metrics",
            "git_commit", "flavor", "source", "role")  # fmt: skip
    parts = []
    for key in keys:
        value = attrs.get(key)
        if value in (None, "", [], {}):
            continue
        if key in ("time", "at"):
            value = fmt_time(int(value))
        parts.append(f"{key}={json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")
    return "  ".join(parts)


def _tree(graph: Any) -> Tree:
    """The graph as a Rich tree from its root (a node reached again is shown once more, without its children)."""
    root = graph.nodes[graph.root]
    tree = Tree(f"[bold]{esc(root.kind)}[/] {esc(root.label)}  [dim]{esc(_detail(root.attrs))}[/]")
    seen = {root.key}

    def grow(branch: Tree, key: str) -> None:
        for edge in [e for e in graph.edges if e.source == key]:
            node = graph.nodes[edge.target]
            again = node.key in seen
            label = f"[dim]{esc(edge.relation)}[/] [bold]{esc(node.kind)}[/] {esc(node.label)}"
            child = branch.add(label + (" [dim](above)[/]" if again else f"  [dim]{esc(_detail(node.attrs))}[/]"))
            if not again:
                seen.add(node.key)
                grow(child, node.key)

    grow(tree, root.key)
    return tree


def _show(graph: Any, html: Path | None, as_json: bool, title: str) -> None:
    from keel.govern.render import write_lineage_html

    if html is not None:
        write_lineage_html(graph, html, title)
    if as_json:
        _echo_json(graph.to_json())
    else:
        console.print(_tree(graph))
    if html is not None:
        typer.echo(f"lineage graph: {html}", err=as_json)


@app.command("prediction")
def prediction(
    request_id: str = typer.Argument(..., help="The request id (the response's request_id)."),
    deployment: str = typer.Option(..., "--deployment", "-d", help="The deployment that logged it."),
    since: str = typer.Option(None, "--since", help="Read only log files from this moment (ISO time, ms or '2d')."),
    until: str = typer.Option(None, "--until", help="... up to this moment."),
    html: Path = HTML,
    as_json: bool = JSON,
) -> None:
    """What served a prediction: deployment, routes in force, model version, run, datasets, raw sources."""
    from keel.govern.lineage import prediction_lineage

    graph = prediction_lineage(request_id, deployment, _ctx(), since=since, until=until)
    _show(graph, html, as_json, f"Lineage of request {request_id} ({deployment})")


@app.command("dataset")
def dataset(
    ref: str = typer.Argument(..., help="A dataset version: NAME@VERSION (NAME alone: the latest)."),
    html: Path = HTML,
    as_json: bool = JSON,
) -> None:
    """What was built on a dataset version: derived versions, runs, model versions, aliases, deployments."""
    from keel.core.datasets import parse_ref
    from keel.govern.lineage import dataset_impact

    ctx = _ctx()
    name, version = parse_ref(ref)
    if version is None:
        version = ctx.store.datasets.get_version(name).version
    graph = dataset_impact(name, version, ctx)
    _show(graph, html, as_json, f"Impact of dataset {name}@{version}")


@app.command("served")
def served(
    target: str = typer.Argument(..., help="models:/NAME@ALIAS, or a deployment name."),
    at: str = typer.Option(..., "--at", help="The moment: ISO 8601 time, ms since the epoch, or a duration ago ('2d')."),
    as_json: bool = JSON,
) -> None:
    """What an alias or a deployment served at a moment (alias history, deployment history)."""
    from keel.govern.history import served_at

    found = served_at(target, int(at) if at.isdigit() else at, _ctx())
    if as_json:
        _echo_json(found.to_json())
        return
    when = fmt_time(found.at)
    if found.primary is None:
        what = "the alias named no version" if found.kind == "alias" else "the deployment did not exist yet"
        console.print(f"{esc(target)} at {when}: nothing served ({what})")
        return
    table = Table("role", "route", "version then", title=f"{esc(target)} at {when}", header_style="bold")
    roles = [("primary", found.primary), *(("shadow", s) for s in found.shadows),
             *((f"canary {w:.0%}", u) for u, w in found.canaries)]  # fmt: skip
    for role, uri in roles:
        table.add_row(role, esc(uri), esc(found.resolved.get(uri) or "none"))
    console.print(table)
    change = found.change
    if change is not None:
        kind = getattr(change, "what", "alias move")
        console.print(f"in force since {fmt_time(change.at)}: {esc(kind)} by {esc(change.actor or '-')} "
                      f"({esc(change.reason or 'no reason given')})")  # fmt: skip


@compliance.command("report")
def report(
    model_uri: str = typer.Argument(..., help="models:/NAME/VERSION or models:/NAME@ALIAS."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """One document for a model version: card, lineage, validation, fairness, approvals, audit trail."""
    from keel.govern.compliance import compliance_html, compliance_report
    from keel.govern.render import check_writable

    require_store()  # before the output check: a missing store is the first thing to say
    if output is not None:
        check_writable(output, "--output")
    found = compliance_report(model_uri, _ctx())
    if output is not None:
        output.write_text(compliance_html(found), encoding="utf-8")
    if as_json:
        _echo_json(found)
    else:
        m = found["model"]
        console.print(f"[bold]{esc(m['uri'])}[/] ({esc(m['flavor'])}), aliases: {esc(', '.join(m['aliases']) or 'none')}")
        validated = sum(1 for x in found["validation"] if x["records"])
        fairness = "none recorded" if not found["fairness"]["results"] else "yes"
        console.print(f"approvals: {len(found['approvals'])}, deployments: {len(found['deployments'])}, "
                      f"validated datasets: {validated}/{len(found['validation'])}, "
                      f"audit events: {len(found['audit'])}, fairness: {fairness}")  # fmt: skip
    if output is not None:
        typer.echo(f"compliance report: {output}", err=as_json)
