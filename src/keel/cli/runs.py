"""``keel runs list|show|compare|report|artifacts|get``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from keel.cli import artifacts as artifact_commands
from keel.cli.artifacts import open_artifact as open_artifact  # keel open, registered in main
from keel.cli.lookup import require_store, resolve_run, store_label
from keel.cli.output import (
    JSON_OPTION,
    clean,
    console,
    esc,
    fmt_duration,
    fmt_num,
    fmt_time,
    param_text,
    parse_column,
    print_json,
    runs_table,
    status_text,
)
from keel.core.entities import Run
from keel.core.errors import InvalidArgument
from keel.core.numbers import plain
from keel.store.metadata import search
from keel.tracking import failures as run_failures
from keel.tracking.client import Client
from keel.tracking.columns import default_columns
from keel.tracking.report import best_value

app = typer.Typer(help="Look at tracked runs.", no_args_is_help=True)
app.command("artifacts")(artifact_commands.list_artifacts)
app.command("get")(artifact_commands.get)


def _check_options(order_by: list[str], limit: int) -> None:
    """The options named as the user typed them: the store's checks name its own fields (``max_results``, filter)."""
    if not 1 <= limit <= search.MAX_RESULTS_LIMIT:
        raise InvalidArgument.for_field("--limit", limit, f"an integer from 1 to {search.MAX_RESULTS_LIMIT}")
    fields = f"metrics.<key>, params.<key>, tags.<key> or one of {', '.join(search.ATTRIBUTES)}"
    for item in order_by:
        try:
            search.parse_order_by([item])
        except InvalidArgument:
            raise InvalidArgument.for_field(
                "--order-by", item, f"'<field> [ASC|DESC]', e.g. 'metrics.acc DESC', where <field> is {fields}"
            ) from None


@app.command("list")
def list_runs(
    experiment: str = typer.Option(None, "--experiment", "-e", help="Only runs of this experiment."),
    filter: str = typer.Option("", "--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\""),
    order_by: list[str] = typer.Option([], "--order-by", "-o", help="e.g. 'metrics.acc DESC' (repeatable)"),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs to show."),
    column: list[str] = typer.Option(
        [],
        "--column",
        "-c",
        help="A column: metrics.<key>, params.<key> or tags.<key> (repeatable; replaces the default columns).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List runs, newest first, with their params and latest metrics (the gate's metric first)."""
    _check_options(order_by, limit)
    for spec in column:
        parse_column(spec)  # before the store is read
    settings = require_store()
    client = Client()
    page = client.search_runs(experiment, filter, order_by, limit)
    if as_json:
        print_json(page.runs)
        return
    if not page.runs:
        if filter.strip() or experiment:
            console.print("no runs match this filter")
        else:  # which store was read: an empty one found in the wrong folder is the usual surprise
            console.print(f"no runs in {esc(store_label(settings))} (try [bold]keel quickstart[/])")
        return
    columns = list(dict.fromkeys(column)) or default_columns(page.runs)
    compact = console.width < 140 and not column
    console.print(runs_table(page.runs, columns, f"{len(page.runs)} runs", compact))
    if page.next_page_token:
        console.print(f"[dim]more runs exist: raise --limit (now {limit})[/]")


def _failures(client: Client, run: Run, names: set[str]) -> list[dict[str, Any]]:
    """The run's own failure, else those of its failed steps or trials (``keel.tracking.failures``, which the UI
    shows too)."""
    return run_failures.failures(client.store, client.artifacts, run, names)


def _print_failures(run: Run, failures: list[dict[str, Any]]) -> None:
    for failure in failures:
        own = failure["run_id"] == run.id
        where = "" if own else f" in {esc(failure['name'])} (run {esc(failure['run_id'][:12])})"
        console.print(f"[bold red]traceback[/]{where}" if failure["traceback"] else f"[bold red]failed[/]{where}")
        text = failure["traceback"] or failure["error"] or "no error was recorded"
        console.print(Text(clean(text.rstrip("\n"))), soft_wrap=True)  # Text: a traceback is never markup


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Everything about one run: status, code, environment, params, metrics, artifacts, and a failure's traceback."""
    require_store()
    client = Client()
    run = resolve_run(client, run_id)
    experiment = client.store.get_experiment(run.experiment_id)
    artifacts = client.list_artifacts(run.id)
    failures = _failures(client, run, {a.path for a in artifacts})
    if as_json:
        print_json({"run": run, "experiment": experiment, "artifacts": artifacts, "failures": failures})
        return
    console.print(f"[bold]{esc(run.name)}[/]  {esc(run.id)}  {status_text(run.status)}")
    console.print(f"experiment  {esc(experiment.project)}/{esc(experiment.name)}")
    console.print(f"started     {fmt_time(run.start_time)}   duration {fmt_duration(run.duration_ms)}")
    if run.deleted_at is not None:
        console.print(f"[red]deleted[/]     {fmt_time(run.deleted_at)}  (keel runs restore {esc(run.id[:12])} brings it back)")
    if run.description:
        console.print(f"description {esc(run.description)}")
    if run.parent_run_id:
        console.print(f"parent      {esc(run.parent_run_id)}")
    code, env = run.code, run.environment
    dirty = " (dirty)" if code.git_dirty_hash else ""
    console.print(f"code        git {esc(code.git_commit or '-')}{dirty}  entry {esc(code.entry_point or '-')}")
    console.print(f"environment python {esc(env.python_version or '-')}  packages {esc((env.packages_hash or '-')[:12])}")
    for title, items in (("params", {k: param_text(v) for k, v in run.params.items()}), ("tags", run.tags)):
        if items:
            table = Table(title=title, show_header=False, title_justify="left")
            for k, v in sorted(items.items()):
                table.add_row(esc(k), esc(v))
            console.print(table)
    if run.metrics:
        table = Table(title="metrics (latest)", title_justify="left")
        for col in ("key", "value", "step", "values logged"):
            table.add_column(col)
        for key, m in sorted(run.metrics.items()):
            table.add_row(esc(key), plain(m.value), str(m.step), str(len(client.get_metric_history(run.id, key))))
        console.print(table)
    if artifacts:
        table = Table(title="artifacts", title_justify="left")
        for col in ("path", "size", "kind", "sha256"):
            table.add_column(col)
        for a in artifacts:
            table.add_row(esc(a.path), f"{a.size:,}", esc(artifact_commands.kind(a)), esc(a.sha256[:16]))
        console.print(table)
        short_id = esc(run.id[:12])
        console.print(f"[dim]keel runs get {short_id} NAME prints one (-o PATH writes it); keel open {short_id} NAME shows it[/]")
    _print_failures(run, failures)


@app.command("compare")
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or unique prefixes)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Runs side by side: params that differ are highlighted, the best value of each metric is bold."""
    if len(run_ids) < 2:
        raise InvalidArgument.for_field("run_ids", run_ids, "at least two run ids")
    require_store()
    client = Client()
    runs = [resolve_run(client, r) for r in run_ids]
    data: dict[str, Any] = client.compare([r.id for r in runs])
    if as_json:
        print_json({"runs": [r.id for r in runs], "params": data["params"], "metrics": data["metrics"]})
        return
    table = Table(header_style="bold")
    table.add_column("")
    for run in runs:
        table.add_column(f"{esc(run.name)}\n{esc(run.id[:12])}")
    for key, values in data["params"].items():
        differs = len({v for v in values}) > 1
        style = "magenta" if differs else "dim"
        cells = [f"[{style}]{esc(param_text(v)) if v is not None else '-'}[/]" for v in values]
        table.add_row(f"[{style}]{esc(key)}[/]", *cells)
    for key, values in data["metrics"].items():
        best = best_value(key, values)
        several = sum(v is not None for v in values) > 1
        table.add_row(
            f"[bold]{esc(key)}[/]",
            *[f"[bold green]{fmt_num(v)}[/]" if several and v == best else fmt_num(v) for v in values],
        )
    table.add_row("status", *[status_text(r.status) for r in runs])
    table.add_row("duration", *[fmt_duration(r.duration_ms) for r in runs])
    console.print(table)
    console.print("[dim]bold green: the best value of each metric (lowest for losses, errors, spreads, times)[/]")


@app.command("report")
def report(
    run_ids: list[str] = typer.Argument(..., help="Run ids (or unique prefixes)."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the HTML (default: .keel/reports/)."),
) -> None:
    """Write an offline HTML report: params, latest metrics and a chart per metric curve."""
    from keel.tracking.report import runs_report

    require_store()
    client = Client()
    runs = [resolve_run(client, r) for r in run_ids]
    path = output or client.settings.home / "reports" / f"runs-{runs[0].id[:12]}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(runs_report(client, [r.id for r in runs], title=f"{len(runs)} keel runs"))
    console.print(f"report written to [bold]{esc(path)}[/] (open it in a browser; it works offline)")
