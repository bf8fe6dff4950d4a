"""``keel gate``: pass or fail a candidate run (or model version) on metric rules, for any CI system.

Exit code 0 when every rule holds, 1 when one fails, 2 for bad input (an unknown run or
metric, a rule that does not parse). ``--json`` prints the result as JSON on stdout alone, as ``--json`` does
everywhere in keel; ``--json-out PATH`` writes it to a file next to the table (a CI artifact).

The verdict is recorded on the candidate run as two tags, ``keel.gate`` (passed or failed) and ``keel.gate.metrics``
(the metrics that decided it: those of the failed rules, else of every rule), so ``keel runs list`` shows those
metrics first. A caller who may not write to the run (a reader's token) still gets the verdict, with a note on
stderr; ``--no-record`` leaves the run as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer
from rich.table import Table

from keel.cli.lookup import require_store, resolve_run_id
from keel.cli.output import clean, console, esc, fmt_num
from keel.core.errors import InvalidArgument, PermissionDenied
from keel.tracking.columns import GATE_METRICS_TAG, GATE_TAG

if TYPE_CHECKING:
    from keel.evaluation.gate import GateResult
    from keel.tracking.client import Client


def record_gate(client: Client, result: GateResult) -> str | None:
    """Tag the candidate run with the verdict and the metrics that decided it; why it could not, else None."""
    decided = [c.metric for c in result.checks if not c.passed] or [c.metric for c in result.checks]
    tags = {GATE_TAG: "passed" if result.passed else "failed", GATE_METRICS_TAG: ",".join(dict.fromkeys(decided))}
    try:
        client.set_tags(result.candidate, tags)
    except PermissionDenied as exc:  # the verdict stands; only its record is missing
        return exc.message
    return None


def gate(
    candidate: str = typer.Argument(
        ..., help="The candidate run id (or a unique prefix), or a model version: models:/NAME/N, models:/NAME@ALIAS."
    ),
    rule: list[str] = typer.Option(..., "--rule", "-r", help="e.g. 'accuracy >= 0.9', 'auc >= baseline + 0.005' (repeatable)."),
    baseline: str = typer.Option(None, "--baseline", "-b", help="The run to compare with (id or unique prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout (instead of the table)."),
    json_out: Path = typer.Option(None, "--json-out", help="Also write the result as JSON to this file."),
    record: bool = typer.Option(True, "--record/--no-record", help="Tag the candidate run with the verdict (keel.gate)."),
) -> None:
    """Check a run's metrics against thresholds and a baseline; exit 0 pass, 1 fail."""
    from keel.evaluation.gate import gate as run_gate
    from keel.tracking.fluent import get_client

    if json_out is not None and not json_out.parent.is_dir():  # found before the gate runs, not as a traceback after
        raise InvalidArgument.for_field("--json-out", str(json_out), "a file in an existing folder")
    require_store()
    client = get_client()

    def subject(ref: str) -> str:  # a model version as it is; a run by its id or a unique prefix
        return ref if ref.startswith("models:/") else resolve_run_id(client, ref)

    baseline_id = subject(baseline) if baseline else None
    result = run_gate(subject(candidate), list(rule), baseline_id, ctx=client.context)
    on_run = not result.candidate.startswith("models:/")  # a version's verdict is the promotion's to record
    problem = record_gate(client, result) if record and on_run else None
    if problem is not None:
        typer.echo(clean(f"keel: the verdict was not recorded on the run: {problem}"), err=True)
    payload = orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2)
    if json_out is not None:
        json_out.write_bytes(payload)
    if as_json:
        typer.echo(payload.decode())
    else:
        against = f" against {esc(result.baseline[:12])}" if result.baseline else ""
        shown = f"run {result.candidate[:12]}" if on_run else result.candidate
        table = Table(title=f"gate on {esc(shown)}{against}", header_style="bold")
        for col in ("rule", "candidate", "baseline", "threshold", "result"):
            table.add_column(col)
        for c in result.checks:
            table.add_row(esc(c.rule), fmt_num(c.candidate), fmt_num(c.baseline), fmt_num(c.threshold),
                          "[green]pass[/]" if c.passed else "[red]FAIL[/]")  # fmt: skip
        console.print(table)
        console.print("[bold green]gate passed[/]" if result.passed else "[bold red]gate failed[/]")
    raise typer.Exit(0 if result.passed else 1)
