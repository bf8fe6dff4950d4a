"""``SqlPrivacyStore``: privacy budgets of dataset versions and the spends of differentially private runs, on the
``SqlStore``'s database (the contract: ``keel.store.metadata.privacy``).

A spend is atomic: its write transaction first locks the version's budget row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite every write transaction begins ``IMMEDIATE``, which serializes them already), then sums what is
spent, refuses the ask past the budget and inserts it, so two runs at once cannot both squeeze in. ``set_budget``
takes the same lock, so a budget lowered while a run spends is checked against every spend.

Choices the interface leaves open:

- totals are sums (``keel.core.privacy.COMPOSITION``) in floating point: an ask that reaches the budget to within
  ``TOLERANCE`` (relative) is allowed, so ten spends of 0.1 fit a budget of 1.0 whatever the rounding;
- a spend with a ``request_id`` seen before on the version returns the first record if it asks the same (epsilon,
  delta, mechanism, run); another ask under the same id is ``Conflict``;
- ``get_budget`` and ``spends`` of a dataset version that does not exist are ``NotFound``; of one without a budget,
  None and ``[]``;
- a refused spend writes nothing, and so is not in the audit log (the caller gets ``BudgetExceeded``); budgets set or
  changed and spends recorded are, in their transaction, as events of the ``dataset_version`` (its id, as for the
  version's other events; the ``name@N`` in ``after``).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from keel.core.actor import current_actor
from keel.core.clock import now_ms
from keel.core.errors import BudgetExceeded, Conflict, InvalidArgument, NotFound
from keel.core.numbers import plain
from keel.core.privacy import COMPOSITION, PrivacyBudget, PrivacySpend, check_budget, check_spend
from keel.store.metadata.privacy import PrivacyStore, check_dataset_version, check_request_id
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database
from keel.store.metadata.sql.runs import require_run

__all__ = ["TOLERANCE", "SqlPrivacyStore"]

TOLERANCE = 1e-9
_b = t.privacy_budgets.c
_s = t.privacy_spends.c
_dv = t.dataset_versions.c
_ds = t.datasets.c
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _check_run_id(run_id: Any) -> str | None:
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id)):
        raise InvalidArgument.for_field("run_id", run_id, "a run id (32 hex digits)")
    return run_id


def _within(total: float, budget: float) -> bool:
    return total <= budget + TOLERANCE * max(budget, 1e-12)


class SqlPrivacyStore(PrivacyStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    # lookups ----------------------------------------------------------------------------------------------------------
    @staticmethod
    def _version_id(conn: Connection, dataset: str) -> tuple[int, str]:
        name, number = check_dataset_version(dataset)
        found = conn.execute(
            select(_dv.id).join(t.datasets, _ds.id == _dv.dataset_id).where(_ds.name == name, _dv.version == number)
        ).scalar()
        if found is None:
            raise NotFound(f"dataset version {name}@{number} does not exist")
        return int(found), f"{name}@{number}"

    @staticmethod
    def _budget_row(conn: Connection, version_id: int, *, lock: bool = False) -> Any:
        query = select(t.privacy_budgets).where(_b.dataset_version_id == version_id)
        return conn.execute(query.with_for_update() if lock else query).first()

    @staticmethod
    def _spent(conn: Connection, version_id: int) -> tuple[float, float]:
        rows = conn.execute(select(_s.epsilon, _s.delta).where(_s.dataset_version_id == version_id)).all()
        return math.fsum(r.epsilon for r in rows), math.fsum(r.delta for r in rows)

    @staticmethod
    def _budget(dataset: str, row: Any, spent: tuple[float, float]) -> PrivacyBudget:
        return PrivacyBudget(dataset, row.epsilon, row.delta, spent[0], spent[1], row.created_at, row.created_by)

    @staticmethod
    def _spend(dataset: str, row: Any) -> PrivacySpend:
        return PrivacySpend(
            dataset, row.epsilon, row.delta, row.mechanism, row.run_id, row.request_id, row.created_at, row.created_by, row.id
        )

    # budgets ----------------------------------------------------------------------------------------------------------
    def set_budget(self, dataset: str, epsilon: float, delta: float) -> PrivacyBudget:
        eps, d = check_budget(epsilon, delta)
        # a first budget set twice at once: the second insert meets the first's key, and its retry updates it
        return self.db.numbered_write(lambda conn: self._set_budget(conn, dataset, eps, d))

    def _set_budget(self, conn: Connection, dataset: str, eps: float, d: float) -> PrivacyBudget:
        version_id, ref = self._version_id(conn, dataset)
        row = self._budget_row(conn, version_id, lock=True)
        spent = self._spent(conn, version_id)
        if not (_within(spent[0], eps) and _within(spent[1], d)):  # the spends' tolerance: ten 0.1s fit 1.0 here too
            raise InvalidArgument.for_field(
                "budget", f"epsilon={plain(eps)}, delta={plain(d)}",
                f"at least what {ref} has spent already (epsilon={plain(spent[0])}, delta={plain(spent[1])})",
            )  # fmt: skip
        at, actor = now_ms(), current_actor()[:128]
        values = {"epsilon": eps, "delta": d, "created_at": at, "created_by": actor}
        if row is None:
            conn.execute(t.privacy_budgets.insert().values(dataset_version_id=version_id, **values))
        else:
            conn.execute(t.privacy_budgets.update().where(_b.dataset_version_id == version_id).values(**values))
        before = None if row is None else {"epsilon": row.epsilon, "delta": row.delta}
        append_event(conn, "privacy.set_budget", "dataset_version", version_id, before, {
            "dataset": ref, "epsilon": eps, "delta": d, "spent_epsilon": spent[0], "spent_delta": spent[1],
            "composition": COMPOSITION,
        })  # fmt: skip
        return PrivacyBudget(ref, eps, d, spent[0], spent[1], at, actor)

    def get_budget(self, dataset: str) -> PrivacyBudget | None:
        with self.db.transaction(write=False) as conn:
            version_id, ref = self._version_id(conn, dataset)
            row = self._budget_row(conn, version_id)
            return None if row is None else self._budget(ref, row, self._spent(conn, version_id))

    # spends -----------------------------------------------------------------------------------------------------------
    def spend(self, spend: PrivacySpend) -> PrivacySpend:
        if not isinstance(spend, PrivacySpend):
            raise InvalidArgument.for_field("spend", spend, "a PrivacySpend")
        spend = check_spend(spend)
        spend = replace(
            spend, epsilon=float(spend.epsilon), delta=float(spend.delta), run_id=_check_run_id(spend.run_id),
            request_id=check_request_id(spend.request_id),
        )  # fmt: skip
        with self.db.transaction() as conn:
            return self._record(conn, spend)

    def _record(self, conn: Connection, spend: PrivacySpend) -> PrivacySpend:
        version_id, ref = self._version_id(conn, spend.dataset)
        budget = self._budget_row(conn, version_id, lock=True)  # spends of this version queue here
        if budget is None:
            raise NotFound(f"dataset version {ref} has no privacy budget: set one first (keel privacy budget {ref} ...)")
        if spend.request_id is not None:
            first = conn.execute(
                select(t.privacy_spends).where(_s.dataset_version_id == version_id, _s.request_id == spend.request_id)
            ).first()
            if first is not None:
                earlier = self._spend(ref, first)
                asked = (spend.epsilon, spend.delta, spend.mechanism, spend.run_id)
                if (earlier.epsilon, earlier.delta, earlier.mechanism, earlier.run_id) != asked:
                    raise Conflict(
                        f"request id {spend.request_id!r} was used on {ref} for another spend (epsilon="
                        f"{plain(earlier.epsilon)}, delta={plain(earlier.delta)}, {earlier.mechanism}): a new spend needs "
                        "a new request id"
                    )
                return earlier
        if spend.run_id is not None:
            require_run(conn, spend.run_id)
        spent_eps, spent_delta = self._spent(conn, version_id)
        if not (_within(spent_eps + spend.epsilon, budget.epsilon) and _within(spent_delta + spend.delta, budget.delta)):
            raise BudgetExceeded(
                f"privacy budget of {ref} exceeded: the budget is epsilon={plain(budget.epsilon)}, "
                f"delta={plain(budget.delta)}; spent so far epsilon={plain(spent_eps)}, delta={plain(spent_delta)}; "
                f"asked epsilon={plain(spend.epsilon)}, delta={plain(spend.delta)} ({COMPOSITION})"
            )
        at, actor = now_ms(), current_actor()[:128]
        spend_id = conn.execute(
            t.privacy_spends.insert().values(
                dataset_version_id=version_id, run_id=spend.run_id, epsilon=spend.epsilon, delta=spend.delta,
                mechanism=spend.mechanism, request_id=spend.request_id, created_at=at, created_by=actor,
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        before = {"spent_epsilon": spent_eps, "spent_delta": spent_delta}
        append_event(conn, "privacy.spend", "dataset_version", version_id, before, {
            "dataset": ref, "spend": spend_id, "epsilon": spend.epsilon, "delta": spend.delta, "mechanism": spend.mechanism,
            "run_id": spend.run_id, "request_id": spend.request_id,
        })  # fmt: skip
        return replace(spend, dataset=ref, created_at=at, created_by=actor, id=int(spend_id))

    def spends(self, dataset: str) -> list[PrivacySpend]:
        with self.db.transaction(write=False) as conn:
            version_id, ref = self._version_id(conn, dataset)
            rows = conn.execute(select(t.privacy_spends).where(_s.dataset_version_id == version_id).order_by(_s.id)).all()
        return [self._spend(ref, r) for r in rows]
