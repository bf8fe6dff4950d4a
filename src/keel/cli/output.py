"""Rich rendering shared by the commands: times, numbers, run tables."""

from __future__ import annotations

import datetime as dt
import math

from rich.console import Console
from rich.table import Table

from keel.core.entities import Run, RunStatus

console = Console()
STEP_STATUS = {"ran": "[green]ran[/]", "cached": "[cyan]cached[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}
STATUS_STYLE = {
    RunStatus.RUNNING: "cyan",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.KILLED: "yellow",
}


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def fmt_num(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.4g}"


def status_text(status: RunStatus) -> str:
    return f"[{STATUS_STYLE[status]}]{status.value}[/]"


def runs_table(
    runs: list[Run], metric_keys: list[str], param_keys: list[str], title: str | None = None, compact: bool = False
) -> Table:
    """Runs as rows; ``compact`` leaves out status and start time (for narrow terminals)."""
    table = Table(title=title, header_style="bold")
    table.add_column("run id", style="dim", no_wrap=True)
    table.add_column("name", no_wrap=True)
    if not compact:
        table.add_column("status", no_wrap=True)
        table.add_column("started", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for key in param_keys:
        table.add_column(key, style="magenta")
    for key in metric_keys:
        table.add_column(key, justify="right", style="bold")
    for run in runs:
        head = [run.id[:12], run.name]
        if not compact:
            head += [status_text(run.status), fmt_time(run.start_time)]
        table.add_row(
            *head,
            fmt_duration(run.duration_ms),
            *[run.params.get(k, "-") for k in param_keys],
            *[fmt_num(run.metric(k)) for k in metric_keys],
        )
    return table
