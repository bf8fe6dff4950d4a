"""``keel gc``: purge runs and experiments deleted long enough, then remove blobs no record references."""

from __future__ import annotations

import typer

from keel.cli.lookup import require_store
from keel.cli.output import clean
from keel.core.errors import InvalidArgument
from keel.store.gc import collect_garbage
from keel.tracking.client import Client

DAY_MS = 24 * 3600 * 1000


def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; change nothing."),
    older_than: float = typer.Option(
        0.0, "--older-than", help="Purge only runs and experiments deleted more than DAYS ago (default: every deleted one)."
    ),
    grace_minutes: float = typer.Option(
        60.0, "--grace-minutes", help="Keep blobs written in the last MINUTES (a writer may not have recorded them yet)."
    ),
) -> None:
    """Purge deleted runs and experiments for good, then remove the artifact blobs no record references.

    Blobs of live records, and of deleted ones still restorable, are never removed; nor is any file in the
    artifact folder that keel did not write.
    """
    if older_than < 0:
        raise InvalidArgument.for_field("--older-than", older_than, "a number of days, 0 or more")
    if grace_minutes < 0:
        raise InvalidArgument.for_field("--grace-minutes", grace_minutes, "a number of minutes, 0 or more")
    require_store()
    ctx = Client().context
    report = collect_garbage(
        ctx.store, ctx.artifacts, older_than_ms=int(older_than * DAY_MS), dry_run=dry_run,
        blob_grace_ms=int(grace_minutes * 60_000),
    )  # fmt: skip
    verb = "would purge" if dry_run else "purged"
    for run in report.runs:
        typer.echo(clean(f"{verb} run {run.id[:12]} ({run.name})"))
    for experiment_id, name in report.experiments:
        typer.echo(clean(f"{verb} experiment {name} ({experiment_id})"))
    for reason in report.kept:
        typer.echo(clean(f"kept {reason}"))
    for sha256, size in report.blobs:
        typer.echo(f"{'would remove' if dry_run else 'removed'} blob {sha256[:16]} ({size:,} bytes)")
    freed = "would free" if dry_run else "freed"
    typer.echo(
        f"{len(report.runs)} runs and {len(report.experiments)} experiments {verb}; "
        f"{len(report.blobs)} blobs, {report.bytes_freed:,} bytes {freed}"
    )
