"""``keel experiments list|delete|restore``."""

from __future__ import annotations

import typer
from rich.table import Table

from keel.cli.lookup import require_store, store_label
from keel.cli.output import JSON_OPTION, clean, console, esc, fmt_time, print_json
from keel.core.entities import Experiment, ViewType
from keel.core.errors import NotFound
from keel.tracking.client import Client

app = typer.Typer(help="List, delete and restore experiments.", no_args_is_help=True)
PROJECT_OPTION = typer.Option("default", "--project", "-p", help="The project the experiments are in.")
NAMES_ARGUMENT = typer.Argument(..., help="Experiment names (or ids).")


def _find(client: Client, ref: str, project: str) -> Experiment:
    """An experiment by name (deleted or not), or by id when ``ref`` is digits and no experiment has that name."""
    try:
        return client.store.get_experiment_by_name(ref, project)
    except NotFound:
        if not ref.isdigit():
            raise
    return client.store.get_experiment(int(ref))


@app.command("list")
def list_experiments(
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project's experiments."),
    deleted: bool = typer.Option(False, "--deleted", help="Only deleted experiments (restorable until keel gc)."),
    show_all: bool = typer.Option(False, "--all", help="Live and deleted experiments."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The experiments, oldest first: live ones unless --deleted or --all."""
    settings = require_store()
    view = ViewType.ALL if show_all else ViewType.DELETED if deleted else ViewType.ACTIVE
    experiments = Client().list_experiments(project, view)
    if as_json:
        print_json(experiments)
        return
    if not experiments:
        what = {ViewType.ACTIVE: "experiments", ViewType.DELETED: "deleted experiments", ViewType.ALL: "experiments"}[view]
        typer.echo(clean(f"no {what} in {store_label(settings)}"))
        return
    table = Table()
    for column in ("id", "project", "name", "created", "deleted"):
        table.add_column(column)
    for e in experiments:
        deleted_at = fmt_time(e.deleted_at) if e.deleted_at is not None else ""
        table.add_row(str(e.id), esc(e.project), esc(e.name), fmt_time(e.created_at), deleted_at)
    console.print(table)


@app.command("delete")
def delete(names: list[str] = NAMES_ARGUMENT, project: str = PROJECT_OPTION) -> None:
    """Delete experiments softly: they and their runs are hidden and read-only until restored or `keel gc`."""
    require_store()
    client = Client()
    found = [_find(client, name, project) for name in names]  # every name checked before anything changes
    for experiment in found:
        client.delete_experiment(experiment.id)
        typer.echo(clean(f"deleted experiment {experiment.name} ({experiment.id}); keel experiments restore {experiment.name}"))


@app.command("restore")
def restore(names: list[str] = NAMES_ARGUMENT, project: str = PROJECT_OPTION) -> None:
    """Bring deleted experiments (and their runs) back."""
    require_store()
    client = Client()
    found = [_find(client, name, project) for name in names]  # every name checked before anything changes
    for experiment in found:
        client.restore_experiment(experiment.id)
        typer.echo(clean(f"restored experiment {experiment.name} ({experiment.id})"))
