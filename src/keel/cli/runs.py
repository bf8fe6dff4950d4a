"""``keel runs list|show|compare``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import typer
from rich.table import Table

from keel.cli.lookup import require_store, resolve_run, store_label
from keel.cli.output import console, esc, fmt_duration, fmt_num, fmt_time, runs_table, status_text
from keel.core.entities import to_plain
from keel.core.errors import InvalidArgument
from keel.tracking.client import Client
from keel.tracking.report import best_value

app = typer.Typer(help="Look at tracked runs.", no_args_is_help=True)


@app.command("list")
def list_runs(
    experiment: str = typer.Option(None, "--experiment", "-e", help="Only runs of this experiment."),
    filter: str = typer.Option("", "--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.model = 'rf'\""),
    order_by: list[str] = typer.Option([], "--order-by", "-o", help="e.g. 'metrics.acc DESC' (repeatable)"),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs to show."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs, newest first, with their params and latest metrics."""
    settings = require_store()
    client = Client()
    page = client.search_runs(experiment, filter, order_by, limit)
    if as_json:
        typer.echo(orjson.dumps(to_plain(page.runs), option=orjson.OPT_INDENT_2).decode())
        return
    if not page.runs:
        if filter.strip() or experiment:
            console.print("no runs match this filter")
        else:  # which store was read: an empty one found in the wrong folder is the usual surprise
            console.print(f"no runs in {esc(store_label(settings))} (try [bold]keel quickstart[/])")
        return
    # the keys most runs share, so the table stays readable
    metric_keys = [k for k, _ in Counter(k for r in page.runs for k in r.metrics).most_common(4)]
    param_keys = [k for k, _ in Counter(k for r in page.runs for k in r.params).most_common(2)]
    compact = console.width < 140
    console.print(runs_table(page.runs, sorted(metric_keys), sorted(param_keys), f"{len(page.runs)} runs", compact))
    if page.next_page_token:
        console.print(f"[dim]more runs exist: raise --limit (now {limit})[/]")


@app.command("show")
def show(run_id: str = typer.Argument(..., help="Run id (or a unique prefix).")) -> None:
    """Everything about one run: status, code, environment, params, metrics, artifacts."""
    require_store()
    client = Client()
    run = resolve_run(client, run_id)
    experiment = client.store.get_experiment(run.experiment_id)
    console.print(f"[bold]{esc(run.name)}[/]  {esc(run.id)}  {status_text(run.status)}")
    console.print(f"experiment  {esc(experiment.project)}/{esc(experiment.name)}")
    console.print(f"started     {fmt_time(run.start_time)}   duration {fmt_duration(run.duration_ms)}")
    if run.parent_run_id:
        console.print(f"parent      {esc(run.parent_run_id)}")
    code, env = run.code, run.environment
    dirty = " (dirty)" if code.git_dirty_hash else ""
    console.print(f"code        git {esc(code.git_commit or '-')}{dirty}  entry {esc(code.entry_point or '-')}")
    console.print(f"environment python {esc(env.python_version or '-')}  packages {esc((env.packages_hash or '-')[:12])}")
    for title, items in (("params", run.params), ("tags", run.tags)):
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
            table.add_row(esc(key), fmt_num(m.value), str(m.step), str(len(client.get_metric_history(run.id, key))))
        console.print(table)
    artifacts = client.list_artifacts(run.id)
    if artifacts:
        table = Table(title="artifacts", title_justify="left")
        for col in ("path", "size", "sha256"):
            table.add_column(col)
        for a in artifacts:
            table.add_row(esc(a.path), f"{a.size:,}", esc(a.sha256[:16]))
        console.print(table)


@app.command("compare")
def compare(run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or unique prefixes).")) -> None:
    """Runs side by side: params that differ are highlighted, the best value of each metric is bold."""
    if len(run_ids) < 2:
        raise InvalidArgument.for_field("run_ids", run_ids, "at least two run ids")
    require_store()
    client = Client()
    runs = [resolve_run(client, r) for r in run_ids]
    data = client.compare([r.id for r in runs])
    table = Table(header_style="bold")
    table.add_column("")
    for run in runs:
        table.add_column(f"{esc(run.name)}\n{esc(run.id[:12])}")
    for key, values in data["params"].items():
        differs = len({v for v in values}) > 1
        style = "magenta" if differs else "dim"
        table.add_row(f"[{style}]{esc(key)}[/]", *[f"[{style}]{esc(v) if v is not None else '-'}[/]" for v in values])
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
