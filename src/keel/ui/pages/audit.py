"""UI pages: the audit log for admins, newest first, filtered and keyset-paged, and the check of its hash chain.

The audit store reads forward only (``events(after_seq=...)``, oldest first, optionally of one entity kind), so a
page newest first is read backwards in slices of ``seq``: the slice just below the cursor (``before``), then the
one below it, until the page is full. Filters the store does not know (actor, action prefix, time) are applied to
each slice; at most ``MAX_SCANNED`` events are read for one page, and the page then ends with a link that goes on
from where the reading stopped, so a filter that matches nothing old costs bounded time per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.core.audit import AuditEvent, ChainWalk
from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument, PermissionDenied
from keel.server.auth import caller_of
from keel.store.metadata.audit import MAX_PAGE, AuditStore
from keel.ui.respond import page

router = APIRouter(include_in_schema=False)

PAGE = 50
MAX_SCANNED = 20 * MAX_PAGE  # events read for one page at most


@dataclass(frozen=True)
class Filters:
    """What the URL asks for: all optional; ``since``/``until`` in ms, ``action`` a prefix (``runs.``)."""

    actor: str | None = None
    action: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: int | None = None
    until: int | None = None

    def keeps(self, e: AuditEvent) -> bool:
        return (
            (self.actor is None or e.actor == self.actor)
            and (self.action is None or e.action.startswith(self.action))
            and (self.since is None or e.at >= self.since)
            and (self.until is None or e.at <= self.until)
        )


@dataclass(frozen=True)
class Page:
    """Events newest first; ``next_before``: the cursor of the next (older) page, None at the log's start;
    ``scanned_to``: the lowest seq read when the page stopped on ``MAX_SCANNED`` rather than on a full page."""

    events: list[AuditEvent]
    next_before: int | None
    scanned_to: int | None = None


def require_admin(request: Request) -> None:
    """The audit and admin pages are for admins (``authorize`` checked the route's line; this says why, on the page)."""
    if not caller_of(request).may("admin"):
        raise PermissionDenied("the audit log and the users are shown to admins only (the 'admin' permission)")


def newest_first(store: AuditStore, filters: Filters, before: int | None, limit: int = PAGE) -> Page:
    """At most ``limit`` events with ``seq < before`` (None: from the newest) that ``filters`` keep, newest first."""
    head = store.head()
    if head is None:
        return Page([], None)
    top = head.seq + 1 if before is None else min(before, head.seq + 1)
    found: list[AuditEvent] = []
    scanned = 0
    while top > 1 and len(found) < limit:
        low = max(0, top - 1 - MAX_PAGE)  # the slice (low, top): seq is dense, one number per event
        batch = store.events(after_seq=low, limit=MAX_PAGE, entity=filters.entity, entity_id=filters.entity_id)
        scanned += top - 1 - low
        for e in reversed([e for e in batch if e.seq < top]):
            if filters.keeps(e):
                found.append(e)
                if len(found) == limit:
                    return Page(found, e.seq if e.seq > 1 else None)
        top = low + 1
        if filters.since is not None and batch and batch[0].at < filters.since:
            break  # events are appended in time order: everything older is older than ``since`` too
        if scanned >= MAX_SCANNED and top > 1:
            return Page(found, top, scanned_to=top)
    return Page(found, None)


def _time(value: str, field: str) -> int | None:
    if not value:
        return None
    from keel.serve.predictions import window_ms

    return window_ms(value, field, now_ms())


@router.get("/ui/audit")
def audit(request: Request, actor: str = "", action: str = "", entity: str = "", entity_id: str = "", since: str = "",
          until: str = "", before: int | None = None) -> HTMLResponse:  # fmt: skip
    """The log newest first, ``PAGE`` events a page; each filter is a query parameter, the cursor ``before``."""
    require_admin(request)
    if entity_id and not entity:
        raise InvalidArgument.for_field("entity_id", entity_id, "given together with entity")
    if before is not None and before < 1:
        raise InvalidArgument.for_field("before", before, "a sequence number >= 1")
    filters = Filters(actor or None, action or None, entity or None, entity_id or None, _time(since, "since"),
                      _time(until, "until"))  # fmt: skip
    result = newest_first(request.app.state.store.audit, filters, before)
    return page(request, "audit.html", title="Audit log", nav="audit", result=result)


@router.get("/ui/audit/verify")
def verify(request: Request) -> HTMLResponse:
    """The whole chain checked (``keel audit verify`` without anchors): intact with its length and head, or the
    first bad event."""
    require_admin(request)
    walk = ChainWalk(())
    for event in request.app.state.store.audit.all_events():
        if walk.feed(event) is not None:
            break
    problem = walk.finish()
    return page(request, "audit_verify.html", title="Audit log: chain check", nav="audit", problem=problem, count=walk.count,
                head=walk.head)  # fmt: skip
