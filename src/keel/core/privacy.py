"""Privacy budgets: how much differential privacy loss a dataset version may still take, and what each run spent.

A budget ``(epsilon, delta)`` is set per dataset version. Every differentially private run that reads the version
records a spend before it trains; the store refuses a spend that would take the total past the budget
(``BudgetExceeded``), in the same transaction that would record it, so two runs at once cannot both squeeze in.

Composition rule (stated, and the one the store applies): basic sequential composition. Runs on the same data add
up: the total loss is ``(sum of epsilons, sum of deltas)``. It holds for any mechanisms; tighter accountants (advanced
composition, RDP) would allow more runs on the same budget, and can replace it later without changing the records.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from keel.core.errors import InvalidArgument

__all__ = ["COMPOSITION", "PrivacyBudget", "PrivacySpend", "check_budget", "check_spend"]

COMPOSITION = "basic sequential composition: epsilons add up, deltas add up"
MAX_EPSILON = 1_000.0
_MECHANISM = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


@dataclass(frozen=True, slots=True)
class PrivacyBudget:
    """The privacy loss a dataset version may take in all, what is spent so far, and who set it when."""

    dataset: str  # name@N
    epsilon: float
    delta: float
    spent_epsilon: float = 0.0
    spent_delta: float = 0.0
    created_at: int = 0
    created_by: str = ""

    @property
    def left(self) -> tuple[float, float]:
        """``(epsilon, delta)`` still to spend."""
        return max(0.0, self.epsilon - self.spent_epsilon), max(0.0, self.delta - self.spent_delta)


@dataclass(frozen=True, slots=True)
class PrivacySpend:
    """What one run spent of a dataset version's budget, with the mechanism (``dp-logistic-regression``, ...)."""

    dataset: str
    epsilon: float
    delta: float
    mechanism: str
    run_id: str | None = None
    request_id: str | None = None
    created_at: int = 0
    created_by: str = ""
    id: int = 0


def _loss(value: Any, field: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument.for_field(field, value, "a finite number")
    if value < 0 or (positive and value == 0) or value > MAX_EPSILON:
        expected = f"greater than 0 and at most {MAX_EPSILON:g}" if positive else f"from 0 to {MAX_EPSILON:g}"
        raise InvalidArgument.for_field(field, value, expected)
    return float(value)


def check_budget(epsilon: Any, delta: Any) -> tuple[float, float]:
    """A budget's ``(epsilon, delta)``: epsilon > 0, delta in [0, 1)."""
    eps = _loss(epsilon, "epsilon", positive=True)
    d = _loss(delta, "delta", positive=False)
    if d >= 1.0:
        raise InvalidArgument.for_field("delta", delta, "below 1 (usually far below 1 / rows)")
    return eps, d


def check_spend(spend: PrivacySpend) -> PrivacySpend:
    """``spend`` with its numbers and mechanism checked."""
    check_budget(spend.epsilon, spend.delta)
    if not isinstance(spend.mechanism, str) or not _MECHANISM.fullmatch(spend.mechanism):
        raise InvalidArgument.for_field("mechanism", spend.mechanism, "a name of 1-200 printable characters")
    return spend
