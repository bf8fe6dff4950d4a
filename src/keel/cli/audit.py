"""``keel audit verify|anchor|export|log``: the tamper-evident log of every change.

``verify`` walks the whole chain (a page at a time) and names the first bad event; with ``--anchors`` it also
checks the heads written earlier by ``anchor``, outside the database, so that a rewrite of the whole table (every
hash recomputed) or the deletion of the last events is found too. Exit codes: 0 intact, 1 damaged, 2 bad input.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import JSON_OPTION, console, esc, fmt_time, print_json
from keel.core.audit import Anchor, AuditEvent, ChainWalk, anchor_line, canonical_json, parse_anchors
from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata.audit import MAX_PAGE, AuditStore

app = typer.Typer(help="The audit log: who changed what and when, hash-chained.", no_args_is_help=True)


def _store() -> AuditStore:
    """The audit log of the store found here: every command of this module reads it, none may create a store."""
    from keel.tracking.fluent import get_client

    require_store()
    store: AuditStore = get_client().store.audit
    return store


def _is_url(target: str) -> bool:
    return "://" in target and not target.startswith("file://")


def _read_text(target: str) -> str:
    """The text at a path or an fsspec URL (``s3://...``); ``NotFound`` when there is none."""
    try:
        if _is_url(target):
            import fsspec

            with fsspec.open(target, "rt", encoding="utf-8") as fh:
                text: str = fh.read()
                return text
        return Path(target.removeprefix("file://")).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no anchors file at {target}") from None


def _append_line(target: str, line: str) -> None:
    """Append ``line`` to a file; an object store has no append, so there the object is read and written again."""
    if not _is_url(target):
        path = Path(target.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return
    import fsspec

    try:
        existing = _read_text(target)
    except NotFound:
        existing = ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    with fsspec.open(target, "wt", encoding="utf-8") as fh:
        fh.write(existing + line + "\n")


def _anchors(target: str | None) -> list[Anchor]:
    if target is None:
        return []
    try:
        return parse_anchors(_read_text(target), source=target)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


@app.command("verify")
def verify(
    anchors: str = typer.Option(None, "--anchors", help="A file (or fsspec URL) written by `keel audit anchor`."),
) -> None:
    """Check the whole chain; exit 1 naming the first bad event."""
    require_store()  # before the anchors are read: no store is the first thing wrong
    walk = ChainWalk(_anchors(anchors))
    for event in _store().all_events():
        if walk.feed(event) is not None:
            break
    problem = walk.finish()
    if problem is not None:
        console.print(f"[red]audit log damaged[/]: event {problem.seq} ({problem.kind}): {esc(problem.detail)}")
        raise typer.Exit(1)
    head = f", head {walk.head.hash[:12]}" if walk.head is not None else ""
    checked = f", {len(walk.anchors)} anchors matched" if walk.anchors else ""
    console.print(f"audit log intact: {walk.count} events{head}{checked}")


@app.command("anchor")
def anchor(to: str = typer.Option(..., "--to", help="A file (or fsspec URL) outside the database; a line is appended.")) -> None:
    """Write the chain's head (seq, hash, time) to a file outside the database."""
    head = _store().head()
    if head is None:
        raise NotFound("the audit log is empty: there is no head to anchor")
    _append_line(to, anchor_line(head))
    console.print(f"anchored event {head.seq} (head {head.hash[:12]}) to {esc(to)}")


def _lines(store: AuditStore) -> Iterator[str]:
    for event in store.all_events():
        yield canonical_json(event.to_json()) + "\n"


@app.command("export")
def export(output: str = typer.Option(None, "-o", "--output", help="Write here instead of stdout.")) -> None:
    """Every event as JSON Lines (one object per line, oldest first)."""
    store = _store()  # before the output file is opened: no store, no empty export
    if output is None:
        for line in _lines(store):
            sys.stdout.write(line)
        sys.stdout.flush()
        return
    count = 0
    with Path(output).open("w", encoding="utf-8") as fh:
        for line in _lines(store):
            fh.write(line)
            count += 1
    typer.echo(f"exported {count} events to {output}", err=True)


def _recent(store: AuditStore, entity: str | None, entity_id: str | None, limit: int) -> list[AuditEvent]:
    """The last ``limit`` events (of an entity), oldest first."""
    if entity is None:
        head = store.head()
        after = max(0, head.seq - limit) if head is not None else 0
        return store.events(after_seq=after, limit=limit)
    kept: deque[AuditEvent] = deque(maxlen=limit)
    after = 0
    while True:  # the matching events are not numbered densely: page through them, keeping the last ones
        page = store.events(after_seq=after, limit=MAX_PAGE, entity=entity, entity_id=entity_id)
        kept.extend(page)
        if len(page) < MAX_PAGE:
            return list(kept)
        after = page[-1].seq


def _summary(text: str | None) -> str:
    if text is None:
        return "-"
    return text if len(text) <= 80 else text[:77] + "..."


@app.command("log")
def log(
    entity: str = typer.Option(None, "--entity", help="Only this kind: run, dataset_version, model_version, alias, ..."),
    entity_id: str = typer.Option(None, "--id", help="Only this entity (with --entity), e.g. churn@production."),
    limit: int = typer.Option(20, "--limit", help=f"How many recent events (1 to {MAX_PAGE})."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recent events, oldest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument.for_field("--limit", limit, f"an integer from 1 to {MAX_PAGE}")
    if entity_id is not None and entity is None:
        raise InvalidArgument.for_field("--id", entity_id, "given together with --entity")
    events = _recent(_store(), entity, entity_id, limit)
    if as_json:
        print_json(events)
        return
    if not events:
        console.print("no events")
        return
    table = Table("seq", "time", "actor", "action", "entity", "before", "after")
    for e in events:
        cells: list[Any] = [str(e.seq), fmt_time(e.at), esc(e.actor), esc(e.action), esc(f"{e.entity} {e.entity_id}")]
        table.add_row(*cells, esc(_summary(e.before)), esc(_summary(e.after)))
    console.print(table)
