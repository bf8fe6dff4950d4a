"""``keel label status PROJECT``: progress, agreement, annotator scores with flags and the review queue, as tables;
``--json`` for the whole status, ``--html PATH`` for the offline report.

>>> keel label status reviews                         # doctest: +SKIP
>>> keel label status reviews --html reviews.html     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import JSON_OPTION, console, esc, print_json
from keel.core.errors import InvalidArgument
from keel.core.labeling import label_text
from keel.core.numbers import short

__all__ = ["status"]

QUEUE_ROWS = 10  # review-queue rows printed (the count is whole)


def status(
    project: str = typer.Argument(..., help="The label project."),
    json_: bool = JSON_OPTION,
    html: Path = typer.Option(None, "--html", help="Also write the offline HTML report to this file."),
    threshold: float = typer.Option(0.7, help="Consensus confidence below which a finished item goes to review."),
) -> None:
    """Progress, agreement, annotators (with flags) and the review queue of a label project."""
    from keel.context import current
    from keel.core.html import is_keel_report
    from keel.label.status import project_status

    require_store()
    if html is not None and html.exists() and not is_keel_report(html):  # never write over what keel did not write
        raise InvalidArgument.for_field("--html", str(html), "a new file or a report keel wrote (this file is not one)")
    s = project_status(project, current(), threshold=threshold)
    if html is not None:
        from keel.label.report import render_report

        html.write_text(render_report(s), encoding="utf-8")
    if json_:
        print_json(s.to_dict())
        return
    _print(s)
    if html is not None:
        console.print(f"wrote {esc(html)}")


def _print(s: Any) -> None:
    from keel.label.report import reading

    def share(n: int) -> str:
        return f"{n:,} ({n / s.items:.0%})" if s.items else f"{n:,}"

    console.print(
        f"[bold]{esc(s.project)}[/] ({esc(s.kind)}, overlap {s.overlap}, guideline v{s.guideline_version}, "
        f"dataset {esc(s.dataset)})"
    )
    console.print(
        f"items {s.items:,}: done {share(s.done)}, in progress {share(s.in_progress)}, untouched {share(s.untouched)}; "
        f"gold {s.gold_items:,}, qualification {s.qualification_items:,}; annotations {s.annotations:,}"
    )
    a = s.agreement or {}
    if a:
        table = Table(title="agreement", header_style="bold")
        for col, justify in (("measure", "left"), ("value", "right"), ("reading", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        table.add_row(f"Krippendorff's alpha ({esc(a.get('level', 'nominal'))})", short(a.get("alpha")),
                      reading("alpha", a.get("alpha")))  # fmt: skip
        if s.kind != "number":
            table.add_row("Fleiss' kappa", short(a.get("fleiss_kappa")), reading("kappa", a.get("fleiss_kappa")))
        console.print(table)
        if a.get("excluded"):
            console.print(f"without the excluded annotators ({esc(', '.join(a['excluded']))}); with them, alpha is "
                          f"{short(a.get('alpha_with_excluded'))}")  # fmt: skip
    else:
        console.print("No annotations yet.")
    if s.annotators:
        table = Table(title="annotators", header_style="bold")
        for col in ("annotator", "answered", "gold acc.", "agreement", "median s", "flag", "reason"):
            table.add_column(col, justify="left" if col in ("annotator", "flag", "reason") else "right")
        drifting = {r["annotator"] for r in s.drifting if r.get("flagged")}
        for r in sorted(s.annotators, key=lambda r: (not r.get("flagged"), str(r["annotator"]))):
            flags = ["[red]flagged[/]"] if r.get("flagged") else []
            flags += ["[red]drifting[/]"] if r["annotator"] in drifting else []
            flags += ["[yellow]excluded[/]"] if r.get("excluded") else []
            median = r.get("median_time_ms")
            table.add_row(
                esc(r["annotator"]), f"{r.get('answered') or 0:,}", _pct(r.get("gold_accuracy")), short(r.get("agreement")),
                short(median / 1000) if isinstance(median, int | float) else "-", " ".join(flags) or "[green]ok[/]",
                esc(r.get("reason") or ""),
            )  # fmt: skip
        console.print(table)
    console.print(f"review queue: {s.review_queue_size:,} item(s) below confidence {short(s.review_threshold)}; "
                  f"{s.reviews:,} reviewed")  # fmt: skip
    for r in s.review_queue[:QUEUE_ROWS]:
        console.print(f"  {esc(r['item'])}: {esc(label_text(r.get('label')))} ({short(r.get('confidence'))})")
    audits = s.audits or {}
    if audits.get("audited"):
        console.print(f"audits: {audits['audited']:,} item(s), {audits.get('confirmed', 0):,} confirmed, "
                      f"{audits.get('corrected', 0):,} corrected (accuracy {_pct(audits.get('accuracy'))})")  # fmt: skip


def _pct(x: Any) -> str:
    return f"{x:.1%}" if isinstance(x, int | float) and not isinstance(x, bool) else "-"
