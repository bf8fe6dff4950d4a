"""The audit store interface: read the hash-chained log of changes and check it.

Contract (SQLite, PostgreSQL and REST, checked in ``tests/store/test_audit_log.py``): events are appended only by
the SQL store's own mutations, in the transaction of the change they record (``sql/audit.append_event``): a change
that fails leaves no event and a change that is written always has one. The chain never forks: appends are
serialized. Reads return immutable ``AuditEvent`` snapshots in ``seq`` order and raise only ``keel.core.errors``
types. Over REST the log is read-only.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator

from keel.core.audit import Anchor, AuditEvent, ChainProblem, ChainWalk
from keel.core.errors import InvalidArgument

__all__ = ["MAX_PAGE", "AuditStore", "check_page"]

MAX_PAGE = 1000
"""The most events one ``events`` call returns."""


def check_page(after_seq: int, limit: int, entity: str | None, entity_id: str | None) -> None:
    """The arguments of ``events``, checked (``InvalidArgument``)."""
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
        raise InvalidArgument.for_field("after_seq", after_seq, "an integer >= 0")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument.for_field("limit", limit, f"an integer from 1 to {MAX_PAGE}")
    for field, value in (("entity", entity), ("entity_id", entity_id)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 256):
            raise InvalidArgument.for_field(field, value, "a non-empty string of at most 256 characters")
    if entity_id is not None and entity is None:
        raise InvalidArgument.for_field("entity_id", entity_id, "given together with entity")


class AuditStore(abc.ABC):
    @abc.abstractmethod
    def events(
        self, *, after_seq: int = 0, limit: int = MAX_PAGE, entity: str | None = None, entity_id: str | None = None
    ) -> list[AuditEvent]:
        """At most ``limit`` events with ``seq > after_seq``, oldest first, optionally of one entity kind (and id)."""

    @abc.abstractmethod
    def head(self) -> AuditEvent | None:
        """The last event, None when the log is empty."""

    def all_events(self, *, page: int = MAX_PAGE) -> Iterator[AuditEvent]:
        """Every event in ``seq`` order, read a page at a time (never the whole table in memory)."""
        after = 0
        while True:
            batch = self.events(after_seq=after, limit=page)
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].seq

    def verify(self, anchors: Iterable[Anchor] = ()) -> ChainProblem | None:
        """The first bad event of the whole log (edited, deleted, reordered, or not matching an anchor); None when
        intact. Streams the log in pages."""
        walk = ChainWalk(anchors)
        for event in self.all_events():
            if walk.feed(event) is not None:
                break
        return walk.finish()
