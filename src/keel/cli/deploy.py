"""``keel deploy create|list|show|shadow|canary|promote|rollback|history``: deployments as records.

Each command is one store call (one transaction, one history row); the store checks the routes
(``keel.core.deployment_records``) and the CLI turns what it refuses into one line and exit code 2.
"""

from __future__ import annotations

import getpass
from typing import Any

import typer
from rich.table import Table

from keel.cli.deploy_compare import compare
from keel.cli.deploy_package import package
from keel.cli.lookup import require_store
from keel.cli.output import JSON_OPTION, console, esc, fmt_time, print_json
from keel.core.deployments import Deployment, DeploymentChange
from keel.core.errors import InvalidArgument

app = typer.Typer(help="Deployments: which registered models serve a name, and every change.", no_args_is_help=True)
app.command("compare")(compare)
app.command("package")(package)

REASON = typer.Option("", help="Why (kept in the history).")


def _store() -> Any:
    from keel.tracking.fluent import get_client

    return get_client().store.deployments


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without passwd entry)
        return ""


def _routes(d: Deployment) -> list[str]:
    lines = [f"primary  {esc(d.primary)}  ({d.primary_weight:.0%} of traffic)"]
    lines += [f"shadow   {esc(uri)}" for uri in d.shadows]
    lines += [f"canary   {esc(uri)}  ({weight:.0%} of traffic)" for uri, weight in d.canaries]
    if d.sticky_key:
        lines.append(f"sticky by request field {esc(d.sticky_key)}")
    return lines


def _primary_moved(c: DeploymentChange) -> str:
    """The primary, with what it ran before and after when the change moved it (text, not yet escaped)."""
    before = (c.from_routes or {}).get("primary")
    after = c.to_routes["primary"]
    if c.what == "alias" and after in c.to_routes.get("resolved", {}):  # the alias the primary follows moved
        was, now = (c.from_routes or {}).get("resolved", {}).get(after), c.to_routes["resolved"][after]
        return f"{after} ({_version_of(was)} -> {_version_of(now)})"
    return f"{before} -> {after}" if before and before != after else after


def _version_of(uri: str | None) -> str:
    return uri.rsplit("/", 1)[-1] if uri else "none"  # models:/churn/3 -> 3


def _print_change(c: DeploymentChange) -> None:
    console.print(f"{esc(c.deployment)}: {c.what}, primary {esc(_primary_moved(c))} (by {esc(c.actor)})")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str = typer.Argument(..., help="The primary: models:/NAME/VERSION or models:/NAME@ALIAS."),
    sticky_key: str = typer.Option(None, "--sticky-key", help="Route a request to a canary by this request field."),
    reason: str = REASON,
) -> None:
    """A new deployment served by MODEL_URI."""
    d = _store().create(name, model_uri, sticky_key=sticky_key, actor=_actor(), reason=reason)
    console.print(f"created deployment [bold]{esc(d.name)}[/]")
    for line in _routes(d):
        console.print(f"  {line}")


@app.command("list")
def list_deployments(as_json: bool = JSON_OPTION) -> None:
    """Every deployment with its routes."""
    require_store()
    found = _store().list_deployments()
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No deployments yet. Try [bold]keel deploy create NAME models:/MODEL@production[/].")
        return
    table = Table(header_style="bold")
    for col in ("deployment", "primary", "shadows", "canaries", "updated"):
        table.add_column(col)
    for d in found:
        canaries = ", ".join(f"{uri} {weight:.0%}" for uri, weight in d.canaries)
        table.add_row(esc(d.name), esc(d.primary), esc(", ".join(d.shadows) or "-"), esc(canaries or "-"), fmt_time(d.updated_at))
    console.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="Deployment name."), as_json: bool = JSON_OPTION) -> None:
    """A deployment's routes."""
    require_store()
    d = _store().get(name)
    if as_json:
        print_json(d)
        return
    console.print(f"[bold]{esc(d.name)}[/]  created {fmt_time(d.created_at)}, updated {fmt_time(d.updated_at)}")
    for line in _routes(d):
        console.print(f"  {line}")


@app.command("shadow")
def shadow(
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str = typer.Argument(..., help="The model to run in shadow (or to stop, with --remove)."),
    remove: bool = typer.Option(False, "--remove", help="Stop shadowing MODEL_URI."),
    reason: str = REASON,
) -> None:
    """Run MODEL_URI next to the primary on the same requests, off the response path."""
    store = _store()
    d = store.get(name)
    if remove:
        if model_uri not in d.shadows:
            raise InvalidArgument(f"{model_uri!r} is not a shadow of deployment {name!r}")
        shadows = [s for s in d.shadows if s != model_uri]
    else:
        shadows = [*d.shadows, model_uri]
    _print_change(store.set_routes(name, shadows=shadows, expected_updated_at=d.updated_at, actor=_actor(), reason=reason))


@app.command("canary")
def canary(
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str = typer.Argument(..., help="The canary model."),
    weight: float = typer.Option(..., "--weight", "-w", help="Its share of traffic, 0-1 (0 removes the canary)."),
    reason: str = REASON,
) -> None:
    """Send WEIGHT of the traffic to MODEL_URI (the primary answers the rest)."""
    store = _store()
    d = store.get(name)
    canaries = [(uri, w) for uri, w in d.canaries if uri != model_uri]
    if weight != 0:
        canaries.append((model_uri, weight))
    elif len(canaries) == len(d.canaries):
        raise InvalidArgument(f"{model_uri!r} is not a canary of deployment {name!r}")
    _print_change(store.set_routes(name, canaries=canaries, expected_updated_at=d.updated_at, actor=_actor(), reason=reason))


@app.command("promote")
def promote(
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str = typer.Argument(..., help="A shadow or canary of the deployment."),
    reason: str = REASON,
) -> None:
    """Make a shadow or canary the primary (it leaves its shadow or canary route)."""
    store = _store()
    d = store.get(name)
    if model_uri not in d.shadows and model_uri not in {uri for uri, _ in d.canaries}:
        raise InvalidArgument(f"{model_uri!r} is neither a shadow nor a canary of deployment {name!r}")
    change = store.set_routes(
        name, primary=model_uri, shadows=[s for s in d.shadows if s != model_uri],
        canaries=[c for c in d.canaries if c[0] != model_uri], expected_updated_at=d.updated_at, actor=_actor(), reason=reason,
    )  # fmt: skip
    _print_change(change)


@app.command("rollback")
def rollback(name: str = typer.Argument(..., help="Deployment name."), reason: str = REASON) -> None:
    """Back to the previous primary, in one step."""
    _print_change(_store().rollback(name, actor=_actor(), reason=reason))


@app.command("history")
def history(name: str = typer.Argument(..., help="Deployment name."), as_json: bool = JSON_OPTION) -> None:
    """Every change of the deployment, oldest first: when, what, who, why, the primary before and after."""
    require_store()
    if as_json:
        print_json(_store().history(name))
        return
    table = Table(header_style="bold")
    for col in ("when", "change", "primary", "shadows", "canaries", "by", "reason"):
        table.add_column(col)
    for c in _store().history(name):
        to = c.to_routes
        primary = _primary_moved(c)
        canaries = ", ".join(f"{uri} {weight:.0%}" for uri, weight in to.get("canaries", []))
        table.add_row(
            fmt_time(c.at), c.what, esc(primary), esc(", ".join(to.get("shadows", [])) or "-"), esc(canaries or "-"),
            esc(c.actor), esc(c.reason),
        )  # fmt: skip
    console.print(table)
