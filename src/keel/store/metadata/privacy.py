"""The privacy store interface: a privacy budget per dataset version, and the spends of differentially private runs.

Contract (checked by ``keel.testing.privacy_contract`` on SQLite, PostgreSQL and REST): one transaction per call;
``spend`` is atomic (the budget row locked) so concurrent runs never take the total past the budget; a spend with a
``request_id`` seen before returns the first (a retried request spends once); raises only ``keel.core.errors`` types.
The composition rule is ``keel.core.privacy.COMPOSITION``.
"""

from __future__ import annotations

import abc
import re
from typing import Any

from keel.core.datasets import parse_ref
from keel.core.errors import InvalidArgument
from keel.core.privacy import PrivacyBudget, PrivacySpend

__all__ = ["PrivacyStore", "check_dataset_version", "check_request_id"]


class PrivacyStore(abc.ABC):
    @abc.abstractmethod
    def set_budget(self, dataset: str, epsilon: float, delta: float) -> PrivacyBudget:
        """Set (or change) the budget of dataset version ``dataset`` (``name@N``). ``NotFound`` for an unknown
        version; ``InvalidArgument`` for a budget below what is spent already. Audited."""

    @abc.abstractmethod
    def get_budget(self, dataset: str) -> PrivacyBudget | None:
        """The version's budget with what is spent, or None when none is set."""

    @abc.abstractmethod
    def spend(self, spend: PrivacySpend) -> PrivacySpend:
        """Record ``spend`` (``created_at``/``created_by`` set by the store: the current actor) if the version's budget
        allows it; ``BudgetExceeded`` naming the budget, the spent total and the ask otherwise, and ``NotFound`` when
        the version has no budget (a DP run on data nobody budgeted is refused: set one first). Audited."""

    @abc.abstractmethod
    def spends(self, dataset: str) -> list[PrivacySpend]:
        """Every spend on the version, oldest first."""


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def check_dataset_version(dataset: Any) -> tuple[str, int]:
    """``(name, number)`` of a dataset version written ``name@N`` (a budget is per version: no ``latest``)."""
    name, number = parse_ref(dataset)
    if number is None or not 1 <= number <= 2**31 - 1:
        raise InvalidArgument.for_field("dataset", dataset, "a dataset version as name@N, e.g. 'adult@3'")
    return name, number


def check_request_id(request_id: Any) -> str | None:
    """A spend's request id (a retry sends the same): 1 to 100 letters, digits, '.', '_', ':' or '-', or None."""
    if request_id is not None and (not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id)):
        raise InvalidArgument.for_field("request_id", request_id, "1 to 100 letters, digits, '.', '_', ':' or '-'")
    return request_id
