"""The audit log's hash chain: events, their canonical encoding and hash, and the check of a whole chain.

Every event's hash covers its content and the previous event's hash (``GENESIS`` for the first), so an event
edited in place no longer matches its hash, a deleted one leaves a gap in ``seq`` (or a broken link), and a
reordered one breaks the link to its predecessor. A rewrite of the whole table (every hash recomputed) is
consistent in itself: it is found by comparing the chain with anchors, heads written outside the database.
Deleting events at the end is likewise only visible against an anchor that names a later event.

>>> e1 = make_event(1, GENESIS, 5, "alice", "runs.create", "run", "r1", None, '{"name":"a"}')
>>> verify_chain([e1]) is None
True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GENESIS",
    "Anchor",
    "AuditEvent",
    "ChainProblem",
    "ChainWalk",
    "anchor_line",
    "canonical_json",
    "event_hash",
    "make_event",
    "parse_anchors",
    "verify_chain",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One recorded change: who (``actor``), what (``action`` on ``entity``/``entity_id``), when (``at``, ms), and
    small JSON summaries of the entity before and after (canonical JSON text, None when there is none)."""

    seq: int
    at: int
    actor: str
    action: str
    entity: str
    entity_id: str
    before: str | None
    after: str | None
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (the export's line and the REST wire shape); ``before``/``after`` as text."""
        return {
            "seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action, "entity": self.entity,
            "entity_id": self.entity_id, "before": self.before, "after": self.after, "prev_hash": self.prev_hash,
            "hash": self.hash,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditEvent:
        return cls(
            int(data["seq"]), int(data["at"]), str(data["actor"]), str(data["action"]), str(data["entity"]),
            str(data["entity_id"]), data.get("before"), data.get("after"), str(data["prev_hash"]), str(data["hash"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first bad event: its ``seq``, what is wrong (``kind``: edited, deleted, reordered, anchor) and a sentence."""

    seq: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head written outside the database: the chain must still hold event ``seq`` with this ``hash``."""

    seq: int
    hash: str
    at: int


def _stable(value: Any) -> Any:
    """``value`` with non-finite floats as strings (JSON has none) and tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8 (not ``\\u`` escapes), floats as Python's shortest repr
    (the same on every platform), NaN and infinities as strings. Raises ``TypeError`` for what JSON cannot hold."""
    return json.dumps(_stable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(
    prev_hash: str, seq: int, at: int, actor: str, action: str, entity: str, entity_id: str,
    before_text: str | None, after_text: str | None,
) -> str:  # fmt: skip
    """SHA-256 (hex) of the canonical JSON list of the fields: unambiguous, since every field is quoted or a number."""
    fields = [prev_hash, seq, at, actor, action, entity, entity_id, before_text, after_text]
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def make_event(
    seq: int, prev_hash: str, at: int, actor: str, action: str, entity: str, entity_id: str,
    before: str | None, after: str | None,
) -> AuditEvent:  # fmt: skip
    """An event with its hash computed."""
    digest = event_hash(prev_hash, seq, at, actor, action, entity, entity_id, before, after)
    return AuditEvent(seq, at, actor, action, entity, entity_id, before, after, prev_hash, digest)


class ChainWalk:
    """Checks events fed in ``seq`` order, one at a time (a store streams its table through it in pages).

    ``feed`` returns the first problem (and keeps returning it); ``finish`` checks the anchors beyond the last event.
    ``count`` and ``head`` are the events seen and the last one.
    """

    def __init__(self, anchors: Iterable[Anchor] = ()) -> None:
        self.anchors = {a.seq: a for a in sorted(anchors, key=lambda a: a.seq)}
        self.count = 0
        self.head: AuditEvent | None = None
        self.problem: ChainProblem | None = None

    def feed(self, event: AuditEvent) -> ChainProblem | None:
        if self.problem is None:
            self.problem = self._check(event)
            self.count += 1
            self.head = event
        return self.problem

    def _check(self, e: AuditEvent) -> ChainProblem | None:
        prev = self.head
        expected_seq = prev.seq + 1 if prev is not None else 1
        expected_prev = prev.hash if prev is not None else GENESIS
        if e.seq > expected_seq:
            where = f"from {prev.seq} to {e.seq}" if prev is not None else f"starts at {e.seq}"
            return ChainProblem(expected_seq, "deleted", f"missing: the log jumps {where} (events were deleted)")
        if e.seq < expected_seq:
            return ChainProblem(e.seq, "reordered", f"comes after event {expected_seq - 1} (events out of order)")
        content_ok = event_hash(
            e.prev_hash, e.seq, e.at, e.actor, e.action, e.entity, e.entity_id, e.before, e.after
        ) == e.hash  # fmt: skip
        if e.prev_hash != expected_prev:
            if content_ok:  # intact in itself, but not the successor of the event before it
                return ChainProblem(
                    e.seq, "reordered",
                    f"does not follow event {e.seq - 1} (its prev_hash is not that event's hash): events were "
                    "reordered, or one before it was removed or rewritten",
                )  # fmt: skip
            return ChainProblem(
                e.seq, "reordered", f"out of place: neither its hash nor its link to event {e.seq - 1} match "
                "(events were reordered or rewritten)",
            )  # fmt: skip
        if not content_ok:
            return ChainProblem(e.seq, "edited", "its content does not match its hash (the event was edited)")
        anchor = self.anchors.get(e.seq)
        if anchor is not None and anchor.hash != e.hash:
            return ChainProblem(
                e.seq, "anchor",
                f"is not the event anchored at {anchor.at} (hash {anchor.hash[:12]}, found {e.hash[:12]}): the log up "
                "to this event was rewritten",
            )  # fmt: skip
        return None

    def finish(self) -> ChainProblem | None:
        """The problem found, else the first anchor naming an event past the last one (events deleted at the end)."""
        if self.problem is not None:
            return self.problem
        last = self.head.seq if self.head is not None else 0
        for seq, anchor in self.anchors.items():
            if seq > last:
                self.problem = ChainProblem(
                    seq, "anchor", f"anchored at {anchor.at} but missing: the log ends at event {last} (events were deleted)"
                )
                break
        return self.problem


def verify_chain(events: Iterable[AuditEvent], anchors: Iterable[Anchor] = ()) -> ChainProblem | None:
    """The first bad event of ``events`` (in ``seq`` order), checked against ``anchors``; None when intact."""
    walk = ChainWalk(anchors)
    for event in events:
        if walk.feed(event) is not None:
            break
    return walk.finish()


def anchor_line(head: AuditEvent) -> str:
    """The JSON line that anchors ``head`` (no newline)."""
    return canonical_json({"at": head.at, "hash": head.hash, "seq": head.seq})


def parse_anchors(text: str, source: str = "anchors") -> list[Anchor]:
    """The anchors of a JSON Lines text (blank lines skipped). Raises ``ValueError`` naming the bad line."""
    anchors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            anchor = Anchor(int(data["seq"]), str(data["hash"]), int(data["at"]))
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"{source} line {number} is not an anchor ({{seq, hash, at}})") from None
        if anchor.seq < 1 or len(anchor.hash) != 64:
            raise ValueError(f"{source} line {number} is not an anchor ({{seq, hash, at}})")
        anchors.append(anchor)
    return anchors
