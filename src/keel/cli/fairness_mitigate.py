"""``keel fairness mitigate MODEL_URI``: a fairer new version of a registered model, with the before/after numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import console, esc
from keel.core.errors import InvalidArgument
from keel.core.numbers import short


def _data(source: str) -> Any:
    """A CSV/Parquet file as a frame, else the text as a dataset reference (read from the store by ``mitigate``)."""
    path = Path(source)
    if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq") or path.is_file():
        from keel.data.frames import from_arrow, read_path

        return from_arrow(read_path(path))
    return source


def mitigate(
    model_uri: str = typer.Argument(..., help="The version to mitigate: models:/name/3, models:/name@alias."),
    data: str = typer.Option(..., "--data", help="Evaluation data: a dataset reference (name@3) or a .csv/.parquet file."),
    sensitive: list[str] = typer.Option(..., "--sensitive", help="A sensitive column of the data (repeat for several)."),
    target: str = typer.Option(..., "--target", help="The column of true labels."),
    method: str = typer.Option("threshold_optimizer", "--method", help="threshold_optimizer or exponentiated_gradient."),
    constraint: str = typer.Option("demographic_parity", "--constraint", help="demographic_parity or equalized_odds."),
    name: str = typer.Option(None, "--name", help="Register under this model name (default: the source's)."),
    train_data: str = typer.Option(
        None, "--train-data", help="Fit on this (reference or file) instead of the default (see keel.fairness.mitigate)."
    ),
    html: Path = typer.Option(None, "--html", help="Also write the before/after report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Make MODEL_URI fairer with fairlearn and register the result as a new version, with its before/after numbers."""
    from keel.fairness.mitigate import mitigate as run_mitigate
    from keel.tracking.fluent import get_client

    if html is not None:
        from keel.core.html import is_keel_report

        if html.exists() and not is_keel_report(html):
            raise InvalidArgument.for_field("--html", str(html), "a new file or a report keel wrote (this file is not one)")
    require_store()
    result = run_mitigate(
        model_uri, _data(data), sensitive=list(sensitive), target=target, method=method, constraint=constraint,
        name=name, train_data=_data(train_data) if train_data else None, ctx=get_client().context,
    )  # fmt: skip
    if html is not None:
        html.write_text(result.report(), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        if html is not None:
            typer.echo(f"report: {html}", err=True)
        return
    console.print(f"{esc(result.version.uri)}: {esc(result.method)} ({esc(result.constraint)}) of {esc(result.source.uri)}",
                  highlight=False)  # fmt: skip
    table = Table(header_style="bold")
    for col in ("metric", "group", "before", "after", "change"):
        table.add_column(col, justify="left" if col in ("metric", "group") else "right")
    for r in result.table.to_dict("records"):
        table.add_row(esc(r["metric"]), esc(r["group"] or "overall"), short(r["before"]), short(r["after"]), short(r["change"]))
    console.print(table)
    if html is not None:
        console.print(f"report: {esc(html)}", highlight=False)
