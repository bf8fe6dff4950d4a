"""The label store interface: label projects, guideline versions, items, task assignment, annotations, reviews and
audits, annotator exclusions, and the dataset versions a project's consensus became.

Contract (checked by ``keel.testing.label_contract`` on SQLite, PostgreSQL and REST): one transaction per call;
bad input writes nothing (``keel.core.labeling``'s checks, the same on every backend); raises only
``keel.core.errors`` types. The annotator is always ``keel.core.actor.current_actor()`` (on the server: the token's
principal), never an argument, so nobody answers in someone else's name.

Assignment (``next_task``), atomic per project so that concurrent annotators never over-fill an item:

1. an excluded annotator gets nothing (``PermissionDenied`` naming the reason);
2. a task handed out to this annotator and not answered (lease not expired) is handed out again (a retried
   request gets the same task);
3. while the project has qualification items the annotator has not answered, the next of them; once all are
   answered, an accuracy below ``qualification_pass`` is ``PermissionDenied`` (with the score);
4. a gold item the annotator has not answered, when the annotator's gold share so far is below ``gold_rate``;
5. otherwise the task item with the most answers and live leases still below ``overlap``, never one this
   annotator answered or holds; None when there is none. Answers of excluded annotators do not count: their
   items go back to the pool.

Every submitted annotation records when its task was handed out and when the answer arrived (the store's clock),
and the guideline version in force when it was handed out. ``submit`` with a ``request_id`` seen before returns
the first annotation (a retried request does not answer twice); an item answered already by this annotator, or
not handed to them, is refused.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from keel.core.labeling import Annotation, Exclusion, Guideline, LabelItem, LabelProject, Review, Task

__all__ = ["LabelStore"]


class LabelStore(abc.ABC):
    # projects and guidelines ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_project(self, project: LabelProject, guideline: str, items: Sequence[LabelItem]) -> LabelProject:
        """Store a new project with guideline version 1 and its items, in one transaction (``id``, ``created_at``,
        ``created_by`` and the counts set by the store). ``AlreadyExists`` if the name is taken, ``NotFound`` if
        the dataset version does not exist, ``InvalidArgument`` for a bad field, item or answer, or duplicate
        item keys."""

    @abc.abstractmethod
    def get_project(self, name: str) -> LabelProject:
        """``NotFound`` if there is none."""

    @abc.abstractmethod
    def list_projects(self) -> list[LabelProject]:
        """By name."""

    @abc.abstractmethod
    def add_guideline(self, project: str, text: str) -> Guideline:
        """A new guideline version (the previous number + 1); tasks handed out from now on record it."""

    @abc.abstractmethod
    def guidelines(self, project: str) -> list[Guideline]:
        """Every version, oldest first."""

    @abc.abstractmethod
    def get_items(self, project: str, *, role: str | None = None) -> list[LabelItem]:
        """The project's items in the order they were given (with answers and answer counts); only ``role``'s."""

    # annotating ------------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def next_task(self, project: str) -> Task | None:
        """Hand the current actor their next task (see the module's rules); None when nothing is left for them."""

    @abc.abstractmethod
    def submit(self, project: str, item: str, value: Any, request_id: str | None = None) -> tuple[Annotation, bool]:
        """The current actor's answer to ``item`` (checked against the schema). Returns ``(annotation, created)``:
        a ``request_id`` seen before returns the first annotation and False."""

    @abc.abstractmethod
    def annotations(self, project: str, *, annotator: str | None = None, since_ms: int | None = None) -> list[Annotation]:
        """Oldest first; only ``annotator``'s, only those submitted at or after ``since_ms``."""

    @abc.abstractmethod
    def import_annotations(self, project: str, annotations: Sequence[Annotation]) -> int:
        """Store annotations made elsewhere (a Label Studio export) as they are: their ``annotator``, ``value``,
        ``assigned_at``/``created_at`` and ``guideline_version`` (0: made under no keel guideline) are kept, nothing
        is handed out. One transaction; an ``(item, annotator)`` pair already present is skipped, so a re-import
        writes nothing twice. Returns how many were written. ``NotFound`` for an unknown item, ``InvalidArgument``
        for a value the schema refuses. A write (not annotate) permission on the server; audited as one event."""

    # reviews, audits, exclusions -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_review(self, review: Review) -> Review:
        """An expert's review or audit of an item (``reviewer`` is the current actor; ``id`` and ``created_at`` set by
        the store). ``NotFound`` for an unknown project or item."""

    @abc.abstractmethod
    def reviews(self, project: str, *, kind: str | None = None) -> list[Review]:
        """Oldest first; only ``kind``'s."""

    @abc.abstractmethod
    def exclude_annotator(self, project: str, annotator: str, reason: str) -> Exclusion:
        """Give ``annotator`` no more tasks of the project (their answers stay; consensus may leave them out).
        Again: the reason is replaced."""

    @abc.abstractmethod
    def include_annotator(self, project: str, annotator: str) -> None:
        """Lift an exclusion (nothing when there is none)."""

    @abc.abstractmethod
    def exclusions(self, project: str) -> list[Exclusion]:
        """By annotator."""

    # consensus as data -----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def record_consensus(self, project: str, dataset_version_id: int, details: dict[str, Any]) -> None:
        """Link a dataset version holding the project's consensus labels to the project (``details``: the method,
        guideline versions, annotation count and last annotation id it was computed from). Idempotent per
        ``(project, dataset_version_id)``."""

    @abc.abstractmethod
    def consensus_versions(self, project: str) -> list[tuple[int, dict[str, Any]]]:
        """``(dataset_version_id, details)`` of every consensus recorded, oldest first."""
