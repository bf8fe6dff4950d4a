"""``keel data log|list|show|infer|validate|drift|report``.

A SOURCE is a dataset reference (``orders``, ``orders@3``) or a path to a CSV/Parquet file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keel.cli.lookup import require_store, store_label
from keel.cli.output import JSON_OPTION, console, esc, fmt_num, fmt_time, print_json
from keel.core.errors import InvalidArgument

app = typer.Typer(help="Versioned datasets: log, inspect, validate, compare.", no_args_is_help=True)


def _is_path(source: str) -> bool:
    return Path(source).suffix.lower() in (".csv", ".tsv", ".parquet", ".pq") or Path(source).is_file()


def _load(source: str) -> Any:
    """A frame-like for a path, or the stored table of a dataset reference."""
    import keel.data

    if _is_path(source):
        return Path(source)
    require_store()
    return keel.data.get(source, as_="arrow", run=False)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip


def _reports_dir() -> Path:
    from keel.core.config import load_settings

    return load_settings().home / "reports"


@app.command("log")
def log(
    path: Path = typer.Argument(..., help="A .csv or .parquet file."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name."),
    suite: Path = typer.Option(None, "--suite", "-s", help="Validate against this YAML suite first."),
    on_fail: str = typer.Option("refuse", help="With --suite: 'refuse' the data, or 'quarantine' the failing rows."),
    source: str = typer.Option(None, help="Where the data came from (default: the path)."),
) -> None:
    """Store a file as a new version of a dataset (nothing new if the content is already there)."""
    import keel.data
    from keel.data.frames import read_path

    table = read_path(path)
    loaded_suite = keel.data.Suite.load(suite) if suite else None
    with _progress() as progress:
        task = progress.add_task(f"profiling {table.num_columns} columns", total=table.num_columns)
        version = keel.data.log(
            table, name, source=source or str(path), suite=loaded_suite, on_fail=on_fail, run=False,
            on_column=lambda _: progress.advance(task),
        )  # fmt: skip
    console.print(
        f"[bold]{esc(version.ref)}[/]  {version.row_count:,} rows x {len(version.schema)} columns, "
        f"{version.size:,} bytes as Parquet, content {version.content_hash[:12]}"
    )
    if loaded_suite is not None:
        console.print(f"validated against {esc(repr(loaded_suite.name))}: see [cyan]keel data show {esc(version.ref)}[/]")


@app.command("list")
def list_datasets(as_json: bool = JSON_OPTION) -> None:
    """Every dataset with its latest version."""
    import keel.data

    settings = require_store()
    latest = keel.data.datasets()
    if as_json:
        print_json(latest)
        return
    if not latest:
        hint = "try [bold]keel data log FILE --name NAME[/] or [bold]keel quickstart[/]"
        console.print(f"no datasets in {esc(store_label(settings))} ({hint})")
        return
    table = Table(header_style="bold")
    for col in ("dataset", "latest", "rows", "columns", "role", "logged", "parents"):
        table.add_column(col)
    for v in latest:
        table.add_row(esc(v.name), f"@{v.version}", f"{v.row_count:,}", str(len(v.schema)), esc(v.role), fmt_time(v.created_at),
                      esc(", ".join(v.parents) or "-"))  # fmt: skip
    console.print(table)


@app.command("show")
def show(ref: str = typer.Argument(..., help="Dataset reference, e.g. orders or orders@2."), as_json: bool = JSON_OPTION) -> None:
    """A version: schema and profile, lineage, the runs that used it, its validations."""
    import keel.data
    from keel.data.profiling import summary_rows

    require_store()
    info = keel.data.lineage(ref)
    v = info["version"]
    if as_json:
        from keel.context import current

        validations = current().store.datasets.list_validations(v.id)
        print_json({**info, "columns": summary_rows(keel.data.profile(v)), "validations": validations})
        return
    console.print(
        f"[bold]{esc(v.ref)}[/]  {v.row_count:,} rows, {v.size:,} bytes, content {esc(v.content_hash[:16])}, role {esc(v.role)}"
    )
    console.print(f"source {esc(v.source or '-')}   logged {fmt_time(v.created_at)}")
    if v.transform:
        console.print(
            f"made by transform {esc(v.transform.get('name'))} {esc(orjson.dumps(v.transform.get('params', {})).decode())}"
        )
    parents = ", ".join(p.ref for p in info["parents"]) or "-"
    children = ", ".join(c.ref for c in info["children"]) or "-"
    console.print(f"parents {esc(parents)}   children {esc(children)}")
    table = Table(title="columns", title_justify="left", header_style="bold")
    for col in ("column", "type", "missing", "distinct", "min", "mean", "max", "top"):
        table.add_column(col)
    for row in summary_rows(keel.data.profile(v)):
        table.add_row(esc(row["column"]), esc(row["type"]), str(row["missing"]), str(row["distinct"]), fmt_num(row.get("min")),
                      fmt_num(row.get("mean")), fmt_num(row.get("max")), esc(row.get("top", "")))  # fmt: skip
    console.print(table)
    if info["runs"]:
        console.print("runs: " + esc(", ".join(f"{r[:12]} ({d})" for r, d in info["runs"])))
    from keel.context import current

    for record in current().store.datasets.list_validations(v.id)[:5]:
        verdict = "[green]passed[/]" if record.passed else "[red]failed[/]"
        counts = f"{record.errors} errors, {record.warnings} warnings"
        console.print(f"validation {esc(repr(record.suite))}: {verdict}, {counts}, {fmt_time(record.created_at)}")


@app.command("infer")
def infer(
    source: str = typer.Argument(..., help="Dataset reference or file."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the proposed YAML suite."),
    name: str = typer.Option(None, help="Suite name (default: the source's)."),
    free_text: list[str] = typer.Option(
        [], "--free-text", help="A column of free text, also searched for person names (repeatable)."
    ),
) -> None:
    """Propose a validation suite from data; review it, then version it with your code."""
    import keel.data

    suite = keel.data.infer_suite(_load(source), name or Path(source).stem.split("@")[0], free_text=free_text)
    suite.save(output)
    console.print(f"{len(suite.checks)} checks proposed in [bold]{esc(output)}[/]: review them before you rely on them")


@app.command("validate")
def validate(
    source: str = typer.Argument(..., help="Dataset reference or file."),
    suite: Path = typer.Option(..., "--suite", "-s", help="YAML suite."),
    save: bool = typer.Option(False, help="Attach the result to the dataset version."),
    report: Path = typer.Option(None, help="Also write an HTML report here."),
    failures_only: bool = typer.Option(
        False, "--failures-only", help="List only the checks that failed (errors and warnings); the exit code is the same."
    ),
) -> None:
    """Validate data against a suite. Exit code 0 when no error-level check fails, 1 otherwise."""
    import keel.data
    from keel.data.report import validation_html

    loaded = keel.data.Suite.load(suite)
    result = keel.data.validate(_load(source), loaded)
    table = Table(title=esc(result.summary()), title_justify="left", header_style="bold")
    for col in ("check", "column", "severity", "result", "failing", "share", "examples"):
        table.add_column(col)
    shown = [r for r in result.results if not (failures_only and r.passed)]
    for r in sorted(shown, key=lambda r: (r.passed, r.severity != "error")):
        mark = "[green]pass[/]" if r.passed else ("[red]FAIL[/]" if r.severity == "error" else "[yellow]warn[/]")
        examples = ", ".join(str(x) for x in r.examples[:3])
        table.add_row(
            esc(r.kind), esc(r.column or ""), esc(r.severity), mark, f"{r.failed_count:,}", f"{r.failed_share:.2%}", esc(examples)
        )
    if shown:
        console.print(table)
    else:  # --failures-only and nothing failed: one line, not an empty table
        console.print(f"[green]{esc(result.summary())}[/]")
    if save:
        if _is_path(source):
            raise InvalidArgument.for_field("--save", source, "a dataset reference (a file has no version to attach to)")
        keel.data.save_validation(source, result)
    if report:
        report.write_text(validation_html(result))
        console.print(f"report: [bold]{esc(report)}[/]")
    raise typer.Exit(0 if result.passed else 1)


@app.command("drift")
def drift(
    reference: str = typer.Argument(..., help="Reference: dataset reference (its stored profile is used) or file."),
    current: str = typer.Argument(..., help="Current: dataset reference or file."),
    report: Path = typer.Option(None, help="HTML report path (default: .keel/reports/drift-*.html)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="Exit 1 on dataset drift (0 otherwise), for a CI step."),
    drift_share: float = typer.Option(
        0.5, "--drift-share", help="The dataset drifts when at least this share of its columns do (0 < share <= 1)."
    ),
) -> None:
    """Column-by-column drift of CURRENT against REFERENCE, with an HTML report of both distributions.

    Exit code 0 whatever the verdict, unless --fail-on-drift: then 1 on dataset drift (at least --drift-share of the
    columns drifted).
    """
    import keel.data
    from keel.data.report import drift_html

    ref = Path(reference) if _is_path(reference) else reference
    cur = Path(current) if _is_path(current) else current
    if not 0 < drift_share <= 1:
        raise InvalidArgument.for_field("--drift-share", drift_share, "a share in (0, 1]")
    if isinstance(ref, str) or isinstance(cur, str):  # a dataset reference is read from the store, never creates one
        require_store()
    with console.status("comparing distributions"):
        result = keel.data.drift(ref, cur, drift_share=drift_share)
    if as_json:
        typer.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY).decode())
        raise typer.Exit(1 if fail_on_drift and result.dataset_drift else 0)
    table = Table(title=f"{len(result.drifted)} of {len(result.columns)} columns drifted", title_justify="left")
    for col in ("column", "test", "statistic", "p-value", "threshold", "verdict"):
        table.add_column(col)
    for c in sorted(result.columns, key=lambda c: (not c.drifted, c.column)):
        verdict = "[red]drifted[/]" if c.drifted else "[green]stable[/]"
        table.add_row(esc(c.column), esc(c.test), fmt_num(c.statistic), fmt_num(c.p_value), fmt_num(c.threshold), verdict)
    console.print(table)
    style = {"drift": "red bold", "columns": "yellow", "none": "green"}[result.verdict]  # never green with a drifted column
    console.print(f"[{style}]{esc(result.headline)}[/]")
    path = report or _reports_dir() / f"drift-{Path(str(reference)).stem}-vs-{Path(str(current)).stem}.html".replace("@", "_v")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(drift_html(result))
    console.print(f"report with reference-vs-current histograms: [bold]{esc(path)}[/]")
    if fail_on_drift and result.dataset_drift:
        raise typer.Exit(1)


@app.command("report")
def report(
    ref: str = typer.Argument(..., help="Dataset reference."),
    output: Path = typer.Option(None, "--output", "-o", help="HTML path (default: .keel/reports/)."),
) -> None:
    """An offline HTML profile report of a dataset version."""
    import keel.data
    from keel.data.report import profile_html

    require_store()
    version = keel.data.resolve(ref)
    path = output or _reports_dir() / f"profile-{version.name}-v{version.version}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile_html(keel.data.profile(version), f"profile: {version.ref}"))
    console.print(f"report: [bold]{esc(path)}[/]")
