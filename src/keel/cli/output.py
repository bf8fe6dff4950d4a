"""Rich rendering shared by the commands: times, numbers, run tables, and user data as text.

Everything a user (or a server) supplied, such as names, params, tags, paths, columns and
error messages, goes through ``esc`` before it meets Rich: Rich reads ``[...]`` as markup
(a param value ``[/]`` would crash the command) and terminals obey escape sequences (a tag
holding ``ESC[2J`` would clear the screen). Only keel's own strings carry markup.

Output that goes to a file, a pipe or a CI log is not wrapped: a row stays one line, whole, for ``grep``
(``console`` is as wide as its widest line there). ``--json`` prints with ``print_json``: JSON alone on stdout.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table

from keel.core.clock import local_time
from keel.core.entities import Run, RunStatus, to_plain
from keel.core.errors import InvalidArgument
from keel.core.numbers import plain, short

# wide enough for any row; Rich tables take their natural width, so nothing is padded to it
PIPE_WIDTH = 100_000


class _Console(Console):
    """A Rich console that wraps at the terminal's width, and not at all when stdout is not a terminal.

    Rich falls back to 80 columns (or ``COLUMNS``, or the width of a terminal on stderr) when stdout is a pipe:
    a CI log would get tables cut into ``…`` and rows folded over several lines.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(PIPE_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = _Console(emoji=False)  # ":smile:" in a param value stays text
JSON_HELP = "Print JSON on stdout (nothing else)."
JSON_OPTION = typer.Option(False, "--json", help=JSON_HELP)  # the one --json of every command that prints a record
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
    """A stored time as local ``YYYY-MM-DD HH:MM:SS``."""
    return local_time(ms)


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def fmt_num(x: float | None) -> str:
    """A number for a table cell: four significant digits, as people write them (``keel.core.numbers.short``)."""
    return short(x)


def print_json(data: Any) -> None:
    """``data`` (entities, dataclasses, dicts, lists) as indented JSON on stdout: no markup, no colour, no wrapping.

    NaN and infinities become ``null`` (JSON has no spelling for them); keys that are not strings become strings.
    """
    payload = orjson.dumps(to_plain(data), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    typer.echo(payload.decode())


def status_text(status: RunStatus) -> str:
    return f"[{STATUS_STYLE[status]}]{status.value}[/]"


COLUMN_KINDS = ("metrics", "params", "tags")
_HEADERS = {"tags.keel.gate": "gate"}


def parse_column(spec: str) -> tuple[str, str]:
    """``metrics.auc`` -> ``("metrics", "auc")``: a column of ``keel runs list -c``; another prefix is an error."""
    kind, dot, key = spec.partition(".")
    if not dot or kind not in COLUMN_KINDS or not key:
        raise InvalidArgument.for_field("-c/--column", spec, "metrics.<key>, params.<key> or tags.<key>")
    return kind, key


def param_text(value: str) -> str:
    """A param as people write it: ``0.30000000000000004`` (a float's repr, as logged) reads ``0.3``.

    Only a float's exact repr is rewritten, so ``1e5``, ``007`` or ``1.50`` stay as the user typed them.
    """
    try:
        number = float(value)
    except ValueError:
        return value
    return plain(number) if repr(number) == value else value


def _cell(run: Run, kind: str, key: str) -> str:
    if kind == "metrics":
        return fmt_num(run.metric(key))
    value = (run.params if kind == "params" else run.tags).get(key)
    return "-" if value is None else esc(param_text(value) if kind == "params" else value)


def runs_table(runs: list[Run], columns: list[str], title: str | None = None, compact: bool = False) -> Table:
    """Runs as rows with ``columns`` (``metrics.<key>``, ``params.<key>``, ``tags.<key>``) after the run's own;
    ``compact`` leaves out status and start time (for narrow terminals)."""
    parsed = [parse_column(c) for c in columns]
    keys = [key for _, key in parsed]
    table = Table(title=title, header_style="bold")
    table.add_column("run id", style="dim", no_wrap=True)
    table.add_column("name", no_wrap=True)
    if not compact:
        table.add_column("status", no_wrap=True)
        table.add_column("started", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for spec, (kind, key) in zip(columns, parsed, strict=True):
        header = _HEADERS.get(spec) or (key if keys.count(key) == 1 else spec)  # a param and a metric may share a key
        style = {"metrics": "bold", "params": "magenta", "tags": ""}[kind]
        table.add_column(esc(header), justify="right" if kind == "metrics" else "left", style=style)
    for run in runs:
        head = [esc(run.id[:12]), esc(run.name)]
        if not compact:
            head += [status_text(run.status), fmt_time(run.start_time)]
        table.add_row(*head, fmt_duration(run.duration_ms), *[_cell(run, kind, key) for kind, key in parsed])
    return table
