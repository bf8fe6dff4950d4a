"""Privacy budgets and spends on the wire: request bodies (pydantic) and JSON shapes of ``PrivacyBudget`` and
``PrivacySpend``, shared by the REST client and the server (the entries are in ``endpoints.PrivacyEndpoints``).

The client checks what it can without a store (``keel.core.privacy``) before it sends; the server's store checks
again, holds the budget's lock and decides. Who spent and when are the server store's (the caller, its clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from keel.core.errors import InvalidArgument
from keel.core.privacy import PrivacyBudget, PrivacySpend, check_budget, check_spend

__all__ = [
    "BudgetIn", "SpendIn", "budget_from_json", "budget_to_json", "check_new_budget", "checked_spend_to_json",
    "spend_from_json", "spend_to_json",
]  # fmt: skip

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetIn(_Body):
    epsilon: Number
    delta: Number = 0.0


class SpendFields(_Body):
    dataset: str
    epsilon: Number
    delta: Number = 0.0
    mechanism: str
    run_id: str | None = None
    request_id: str | None = None
    # set by the server's store (ignored in a request)
    created_at: StrictInt = 0
    created_by: str = ""
    id: StrictInt = 0


class SpendIn(_Body):
    spend: SpendFields


def check_new_budget(args: dict[str, Any]) -> None:
    args["epsilon"], args["delta"] = check_budget(args["epsilon"], args["delta"])


def budget_to_json(b: PrivacyBudget) -> dict[str, Any]:
    return {"dataset": b.dataset, "epsilon": b.epsilon, "delta": b.delta, "spent_epsilon": b.spent_epsilon,
            "spent_delta": b.spent_delta, "created_at": b.created_at, "created_by": b.created_by}  # fmt: skip


def budget_from_json(d: Mapping[str, Any]) -> PrivacyBudget:
    return PrivacyBudget(**d)


def spend_to_json(s: PrivacySpend) -> dict[str, Any]:
    return {"id": s.id, "dataset": s.dataset, "epsilon": s.epsilon, "delta": s.delta, "mechanism": s.mechanism,
            "run_id": s.run_id, "request_id": s.request_id, "created_at": s.created_at, "created_by": s.created_by}  # fmt: skip


def spend_from_json(d: Mapping[str, Any]) -> PrivacySpend:
    return PrivacySpend(**d)


def checked_spend_to_json(s: PrivacySpend) -> dict[str, Any]:
    if not isinstance(s, PrivacySpend):
        raise InvalidArgument.for_field("spend", s, "a PrivacySpend")
    return spend_to_json(check_spend(s))
