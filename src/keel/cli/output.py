"""Rich rendering shared by the commands: times, numbers, run tables, and user data as text.

Everything a user (or a server) supplied, such as names, params, tags, paths, columns and
error messages, goes through ``esc`` before it meets Rich: Rich reads ``[...]`` as markup
(a param value ``[/]`` would crash the command) and terminals obey escape sequences (a tag
holding ``ESC[2J`` would clear the screen). Only keel's own strings carry markup.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from keel.core.entities import Run, RunStatus

console = Console(emoji=False)  # ":smile:" in a param value stays text
# C0 and C1 controls but tab and newline, DEL, and bidi marks, embeddings, overrides and isolates
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: object) -> str:
    """``value`` as text a terminal shows as it is: control characters become visible escapes (``\\x1b``)."""
    return _UNPRINTABLE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(value))


def esc(value: object) -> str:
    """User data for a Rich markup string or table cell: cleaned, and its ``[`` never read as markup."""
    return escape(clean(value))


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
        table.add_column(esc(key), style="magenta")
    for key in metric_keys:
        table.add_column(esc(key), justify="right", style="bold")
    for run in runs:
        head = [esc(run.id[:12]), esc(run.name)]
        if not compact:
            head += [status_text(run.status), fmt_time(run.start_time)]
        table.add_row(
            *head,
            fmt_duration(run.duration_ms),
            *[esc(run.params.get(k, "-")) for k in param_keys],
            *[fmt_num(run.metric(k)) for k in metric_keys],
        )
    return table
