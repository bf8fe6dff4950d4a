"""``keel deploy compare NAME``: the deployment's models side by side, from its prediction log.

Exit codes: 0 when there was something to compare; 1 when the window holds no predictions (a script that gates
a promotion on this command must not read "nothing logged yet" as a pass); 2 for an unknown deployment or a
bad option, as every keel error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import console, esc, fmt_time
from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.serve.comparison import Comparison


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_comparison(c: Comparison) -> None:
    console.print(
        f"[bold]{esc(c.deployment)}[/]: {c.requests:,} requests, {c.rows:,} rows, {c.labeled:,} labeled, "
        f"{fmt_time(c.first_ms)} to {fmt_time(c.last_ms)} ({esc(c.task)}; reference {esc(c.reference or '-')})"
    )
    # two narrow tables rather than one wide one: both fit an 80-column terminal or CI log
    traffic = Table(header_style="bold", title="traffic and latency of the model call")
    for col in ("route", "model", "rows", "share", "p50 ms", "p95 ms", "p99 ms"):
        traffic.add_column(col, justify="left" if col in ("route", "model") else "right")
    for m in c.models:
        lat = m.latency_ms
        traffic.add_row(esc(m.route), esc(m.model), f"{m.rows:,}", f"{m.share:.1%}", _num(lat.p50, 2), _num(lat.p95, 2),
                        _num(lat.p99, 2))  # fmt: skip
    console.print(traffic)
    metrics = sorted({k for m in c.models for k in m.metrics})
    if metrics:
        quality = Table(header_style="bold", title="on labeled rows")
        for col in ("route", "model", "labeled", *metrics):
            quality.add_column(col, justify="left" if col in ("route", "model") else "right")
        for m in c.models:
            quality.add_row(esc(m.route), esc(m.model), f"{m.labeled:,}", *[_num(m.metrics.get(k)) for k in metrics])
        console.print(quality)
    for ch in c.challengers:
        console.print(f"\n[bold]{esc(ch.route)} {esc(ch.model)}[/] vs {esc(c.reference or '-')}")
        a = ch.agreement
        if a is None:
            console.print("  agreement: unpaired (a canary answers other requests)")
        elif a.rate is not None:
            console.print(f"  agreement: {a.rate:.1%} of {a.pairs:,} rows")
        elif a.mean_abs_diff is not None:
            spread = f"mean |diff| {a.mean_abs_diff:.4g}, max {_num(a.max_abs_diff, 4)}, r={_num(a.correlation)}"
            console.print(f"  agreement: {spread} ({a.pairs:,} rows)")
        for d in ch.drift:
            value = f"p={d.p_value:.3g}" if d.p_value is not None else f"statistic {d.statistic:.3g}"
            console.print(f"  {esc(d.column)} drift: {esc(d.test)} {value} -> {'[red]drifted[/]' if d.drifted else 'same'}")
        if ch.drift_note:
            console.print(f"  {esc(ch.drift_note)}")
        for md in ch.metrics:
            ci = f"[{_num(md.low)}, {_num(md.high)}]" if md.low is not None else "-"
            console.print(
                f"  {esc(md.metric)}: {_num(md.challenger)} vs {_num(md.reference)}, difference {_num(md.difference)} "
                f"{c.confidence:.0%} CI {ci} (n={md.n:,}) {esc(md.verdict)}"
            )
        console.print(f"  [bold]{esc(ch.verdict)}[/]")


def compare(
    name: str = typer.Argument(..., help="Deployment name."),
    since: str = typer.Option("1h", "--since", help="Start of the window: 30m, 1h, 7d (ago), an ISO time or ms; '' for all."),
    until: str = typer.Option(None, "--until", help="End of the window (same forms); default now."),
    reference: str = typer.Option(None, "--reference", help="The primary model to compare with (default: the busiest)."),
    html: Path = typer.Option(None, "--html", help="Also write an offline HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare the deployment's primary, shadows and canaries: traffic, latency, agreement, drift and metrics."""
    from keel.serve.comparison import compare as run_compare
    from keel.serve.predictions import window_ms
    from keel.tracking.fluent import get_client

    now = now_ms()
    start, end = window_ms(since or None, "--since", now), window_ms(until or None, "--until", now)
    if start is not None and end is not None and start > end:
        raise InvalidArgument(f"--since ({since}) is after --until ({until}); expected an earlier start")
    require_store()
    result = run_compare(name, start, end, reference=reference, ctx=get_client().context)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif result.rows:
        print_comparison(result)

    # with --json, stdout is the JSON alone: the other lines go to stderr
    def say(text: str) -> None:
        if as_json:
            typer.echo(text, err=True)
        else:
            console.print(esc(text), highlight=False)

    if html is not None:
        from keel.core.html import is_keel_report
        from keel.serve.comparison_report import comparison_html

        if html.exists() and not is_keel_report(html):
            raise InvalidArgument.for_field("--html", str(html), "a new file or a report keel wrote (this file is not one)")

        html.write_text(comparison_html(result), encoding="utf-8")
        say(f"report: {html}")
    if not result.rows:
        window = {
            (True, True): f"between {fmt_time(start)} and {fmt_time(end)}", (True, False): f"since {fmt_time(start)}",
            (False, True): f"until {fmt_time(end)}", (False, False): "at all",
        }[(start is not None, end is not None)]  # fmt: skip
        say(f"No predictions logged for deployment {name} {window}: nothing to compare (serve it with keel serve {name}).")
        raise typer.Exit(1)
