"""``keel import mlflow SOURCE``: move an MLflow tracking store into keel's (``keel.tracking.mlflow_import``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from keel.cli.lookup import store_label
from keel.cli.output import JSON_HELP, console, esc
from keel.core.config import load_settings
from keel.core.entities import to_plain

if TYPE_CHECKING:
    from keel.tracking.mlflow_import import ImportSummary

app = typer.Typer(help="Import runs from other trackers.", no_args_is_help=True)


@app.command("mlflow")
def mlflow(
    source: str = typer.Argument(..., help="An MLflow file store folder (mlruns/) or sqlite:///path/mlflow.db."),
    experiment: list[str] = typer.Option([], "--experiment", "-e", help="Only this MLflow experiment (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Read everything, write nothing: say what would be imported."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import experiments, runs, params, metrics (every point), tags and artifacts from an MLflow store.

    Runs imported before are skipped, so the command can be run again; runs deleted in MLflow are skipped."""
    from keel.tracking.client import Client
    from keel.tracking.mlflow_import import import_mlflow

    settings = load_settings()
    client = None if dry_run else Client()
    try:
        if as_json:
            summary = import_mlflow(source, client=client, experiments=experiment or None, dry_run=dry_run)
        else:
            with _progress() as bar:
                task = bar.add_task("importing runs", total=None)

                def advance(done: int, total: int, name: str) -> None:
                    bar.update(task, completed=done, total=total, description=esc(name)[:28])

                summary = import_mlflow(source, client=client, experiments=experiment or None, dry_run=dry_run, progress=advance)
    finally:
        if client is not None:
            client.close()
    summary.store = store_label(settings)
    if as_json:
        typer.echo(orjson.dumps(to_plain(summary), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(summary)
    if summary.failed:
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,  # a CI log gets the summary only
    )  # fmt: skip


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _print(s: ImportSummary) -> None:
    verb = "would import" if s.dry_run else "imported"
    where = ", ".join(esc(e) for e in s.experiments) or "-"
    size = _n(s.artifact_bytes, "byte")
    console.print(
        f"{verb} {_n(s.runs, 'run')} into {_n(len(s.experiments), 'experiment')} ({where}): "
        f"{_n(s.metric_points, 'metric point')}, {_n(s.params, 'param')}, {_n(s.tags, 'tag')}, "
        f"{_n(s.artifacts, 'artifact')} ({size})"
    )
    console.print(
        f"skipped {_n(s.skipped_existing, 'run')} imported before, {_n(s.skipped_deleted_runs, 'run')} deleted in MLflow "
        f"({_n(s.skipped_deleted_experiments, 'deleted experiment')})"
    )
    for old, new in s.renamed.items():
        console.print(f"renamed {esc(old)!r} to {esc(new)!r} (keel names: letters, digits, '_', '-', '.', spaces)")
    for run_id, why in s.failed.items():
        console.print(f"[red]not imported[/] MLflow run {esc(run_id)}: {esc(why)}")
    console.print(f"from {esc(s.source)}\n{'store' if not s.dry_run else 'checked against'} {esc(s.store)}")
