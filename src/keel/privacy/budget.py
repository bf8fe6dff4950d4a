"""Privacy budgets of dataset versions: set one, read what is spent and left, list the spends.

A budget belongs to one dataset version (``"adult@3"``; a bare name means its latest version, resolved now, so the
budget stays with the rows it was set for). The store applies ``keel.core.privacy.COMPOSITION``.

>>> keel.privacy.set_budget("adult@3", epsilon=3.0)        # doctest: +SKIP
>>> keel.privacy.budget("adult@3").left                     # doctest: +SKIP
(3.0, 0.0)
"""

from __future__ import annotations

from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.datasets import DatasetVersion
from keel.core.privacy import COMPOSITION, PrivacyBudget, PrivacySpend, check_budget
from keel.data import resolve

__all__ = ["budget", "set_budget", "spends", "status"]


def set_budget(dataset: str | DatasetVersion, epsilon: float, delta: float = 0.0, ctx: Context | None = None) -> PrivacyBudget:
    """Set (or change) the privacy budget of a dataset version. ``InvalidArgument`` below what is spent already."""
    ctx = _ctx(ctx)
    eps, d = check_budget(epsilon, delta)
    return ctx.store.privacy.set_budget(resolve(dataset, ctx).ref, eps, d)


def budget(dataset: str | DatasetVersion, ctx: Context | None = None) -> PrivacyBudget | None:
    """The version's budget with what is spent so far (``.left``: what remains), or None when none is set."""
    ctx = _ctx(ctx)
    return ctx.store.privacy.get_budget(resolve(dataset, ctx).ref)


def spends(dataset: str | DatasetVersion, ctx: Context | None = None) -> list[PrivacySpend]:
    """Every spend on the version, oldest first: epsilon, delta, mechanism, run, who and when."""
    ctx = _ctx(ctx)
    return ctx.store.privacy.spends(resolve(dataset, ctx).ref)


def status(dataset: str | DatasetVersion, ctx: Context | None = None) -> dict[str, Any]:
    """The budget, spent, left and every spend of a version as plain data (``keel privacy status --json``)."""
    ctx = _ctx(ctx)
    ref = resolve(dataset, ctx).ref
    current = ctx.store.privacy.get_budget(ref)
    listed = ctx.store.privacy.spends(ref)
    left = current.left if current is not None else None
    return {
        "dataset": ref,
        "composition": COMPOSITION,
        "budget": None if current is None else {"epsilon": current.epsilon, "delta": current.delta},
        "spent": (
            {"epsilon": current.spent_epsilon, "delta": current.spent_delta}
            if current is not None  # the store's own total: the number it refuses by
            else {"epsilon": sum(s.epsilon for s in listed), "delta": sum(s.delta for s in listed)}
        ),
        "left": None if left is None else {"epsilon": left[0], "delta": left[1]},
        "set_by": None if current is None else current.created_by,
        "spends": [
            {
                "id": s.id,
                "epsilon": s.epsilon,
                "delta": s.delta,
                "mechanism": s.mechanism,
                "run_id": s.run_id,
                "created_at": s.created_at,
                "created_by": s.created_by,
            }
            for s in listed
        ],
    }
