"""``keel fairness assess MODEL_URI``: per-group metrics and disparities of a registered classifier, recorded with the
version (gates read them as ``fairness.<name>``) and on a run in the ``fairness`` experiment.

    keel fairness assess models:/credit/3 --data applicants-test@2 --sensitive sex --sensitive race --target approved
    keel gate models:/credit/3 --rule 'fairness.demographic_parity_difference <= 0.1'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import console, esc, print_json
from keel.core.errors import InvalidArgument
from keel.core.numbers import short

app = typer.Typer(help="Fairness of registered models: assess (per-group metrics, disparities), mitigate.",
                  no_args_is_help=True)  # fmt: skip

_HEADS = ("set", "groups", "DP difference", "DP ratio", "EO difference", "EO ratio", "accuracy min")


@app.callback()
def _group() -> None:
    """Fairness of registered models: assess (per-group metrics, disparities), mitigate."""


def read_data(source: str) -> Any:
    """A CSV/Parquet file as a frame, else the text as a dataset reference (``name@3``, read from the store)."""
    path = Path(source)
    if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq") or path.is_file():
        from keel.data.frames import from_arrow, read_path

        return from_arrow(read_path(path))
    return source


def _cell(value: Any) -> str:
    return "-" if value is None else short(value)


@app.command("assess")
def assess(
    model_uri: str = typer.Argument(..., help="The version to assess: models:/name/3, models:/name@alias."),
    data: str = typer.Option(..., "--data", help="Evaluation data: a dataset reference (name@3) or a .csv/.parquet file."),
    sensitive: list[str] = typer.Option(..., "--sensitive", help="A sensitive column of the data (repeat for several)."),
    target: str = typer.Option(..., "--target", help="The column of true labels (binary)."),
    pos_label: str = typer.Option(None, "--pos-label", help="The positive label, when the labels are not 0/1."),
    html: Path = typer.Option(None, "--html", help="Also write the HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the assessment as JSON on stdout."),
    record: bool = typer.Option(True, "--record/--no-record", help="Record it with the version and on a run."),
) -> None:
    """Assess MODEL_URI's fairness on the data: per-group metrics, demographic parity, equalized odds, the worst group."""
    from keel.fairness.assess import assess as run_assess
    from keel.tracking.fluent import get_client

    if html is not None:
        from keel.core.html import is_keel_report

        if html.exists() and not is_keel_report(html):  # never write over what keel did not write
            raise InvalidArgument.for_field("--html", str(html), "a new file or a report keel wrote (this file is not one)")
        if not html.parent.is_dir():
            raise InvalidArgument.for_field("--html", str(html), "a file in an existing folder")
    require_store()
    frame = read_data(data)
    result = run_assess(model_uri, frame, sensitive=list(sensitive), target=target, pos_label=pos_label, record=record,
                        ctx=get_client().context)  # fmt: skip
    if html is not None:
        html.write_text(result.html(f"fairness of {result.model}"), encoding="utf-8")
    if as_json:
        print_json(result.to_dict())
        return
    _print(result)
    if html is not None:
        console.print(f"report: {esc(html)}", highlight=False)


def _print(result: Any) -> None:
    where = f" on {result.data}" if result.data else ""
    console.print(f"{esc(result.model)}{esc(where)}: {result.rows:,} rows, sensitive: {esc(', '.join(result.sensitive))}",
                  highlight=False)  # fmt: skip
    table = Table(header_style="bold")
    for i, head in enumerate(_HEADS):
        table.add_column(head, justify="left" if i == 0 else "right")
    for s in result.sets:
        accuracy = s.frame["accuracy"].min() if len(s.frame) else None
        d = s.disparities()
        table.add_row(esc(s.key), f"{len(s.frame):,}", _cell(d["demographic_parity_difference"]),
                      _cell(d["demographic_parity_ratio"]), _cell(d["equalized_odds_difference"]),
                      _cell(d["equalized_odds_ratio"]), _cell(accuracy))  # fmt: skip
    console.print(table)
    worst = result.worst_group
    if worst is not None:
        group = ", ".join(f"{k}={v}" for k, v in worst["group"].items())
        console.print(f"worst group by accuracy: {esc(group)} ({worst['count']:,} rows, accuracy {_cell(worst['accuracy'])})",
                      highlight=False)  # fmt: skip
    if result.recorded is not None:
        console.print(f"recorded with {esc(result.model)} (gates read fairness.<name>); run {esc(result.run_id)}",
                      highlight=False)  # fmt: skip
