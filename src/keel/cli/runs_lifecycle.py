"""``keel runs delete`` and ``keel runs restore`` (registered on ``keel runs`` by ``keel.cli.main``)."""

from __future__ import annotations

import typer

from keel.cli.lookup import require_store, resolve_run
from keel.cli.output import clean
from keel.tracking.client import Client

RUNS_ARGUMENT = typer.Argument(..., help="Run ids (or unique prefixes, as keel prints them).")


def delete(run_ids: list[str] = RUNS_ARGUMENT) -> None:
    """Delete runs softly (and their child runs): hidden from `keel runs list`, restorable until `keel gc`."""
    require_store()
    client = Client()
    runs = [resolve_run(client, ref) for ref in run_ids]  # every name checked before anything changes
    for run in runs:
        client.delete_run(run.id)
        typer.echo(clean(f"deleted run {run.id[:12]} ({run.name}); keel runs restore {run.id[:12]} brings it back"))


def restore(run_ids: list[str] = RUNS_ARGUMENT) -> None:
    """Bring deleted runs back (with the child runs their deletion hid)."""
    require_store()
    client = Client()
    runs = [resolve_run(client, ref) for ref in run_ids]
    for run in runs:
        client.restore_run(run.id)
        typer.echo(clean(f"restored run {run.id[:12]} ({run.name})"))
