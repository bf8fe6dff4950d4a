"""The privacy-store contract (budgets of dataset versions, spends of differentially private runs), as tests every
backend must pass. ``spend_at_once`` is also run by tests on separate stores of one database (as separate processes)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from keel.core.errors import BudgetExceeded, Conflict, InvalidArgument, KeelError, NotFound
from keel.core.privacy import PrivacySpend
from keel.store.metadata.base import MetadataStore
from keel.testing.dataset_contract import log
from keel.testing.store_contract import unique

MECHANISM = "dp-logistic-regression"


def dataset(store: MetadataStore) -> str:
    name = unique("dpdata")
    version, _ = log(store, name, name)
    return f"{name}@{version.version}"


def privacy_events(store: MetadataStore, ref: str) -> list[Any]:
    """The privacy events of a dataset version (its audit entity: the version's id, as for its other events)."""
    name, number = ref.split("@")
    version_id = store.datasets.get_version(name, int(number)).id
    events = store.audit.events(entity="dataset_version", entity_id=str(version_id))
    return [e for e in events if e.action.startswith("privacy.")]


def spend_at_once(
    stores: Callable[[int], MetadataStore], ref: str, threads: int = 12, epsilon: float = 0.15, delta: float = 1e-6
) -> tuple[list[PrivacySpend], list[KeelError]]:
    """``threads`` spends of ``epsilon`` sent at the same moment, thread ``i`` through ``stores(i)``."""
    spent: list[PrivacySpend] = []
    refused: list[KeelError] = []
    lock, start = threading.Lock(), threading.Barrier(threads)

    def run(i: int) -> None:
        store = stores(i)
        start.wait()
        try:
            done = store.privacy.spend(PrivacySpend(ref, epsilon, delta, MECHANISM, request_id=f"thread-{i}"))
            with lock:
                spent.append(done)
        except KeelError as exc:
            with lock:
                refused.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    return spent, refused


class PrivacyStoreContract:
    # budgets ------------------------------------------------------------------------------------------------------------
    def test_a_budget_is_set_read_and_changed_and_every_change_is_audited(self, store: MetadataStore) -> None:
        ref = dataset(store)
        assert store.privacy.get_budget(ref) is None
        assert store.privacy.spends(ref) == []
        budget = store.privacy.set_budget(ref, 2.0, 1e-5)
        assert (budget.dataset, budget.epsilon, budget.delta, budget.spent_epsilon, budget.spent_delta) == (ref, 2.0, 1e-5, 0, 0)
        assert budget.created_at > 0 and budget.created_by
        assert store.privacy.get_budget(ref) == budget
        raised = store.privacy.set_budget(ref, 3, 0)
        assert (raised.epsilon, raised.delta, raised.left) == (3.0, 0.0, (3.0, 0.0))
        assert store.privacy.get_budget(ref) == raised
        events = privacy_events(store, ref)
        assert [e.action for e in events] == ["privacy.set_budget", "privacy.set_budget"]
        assert events[0].before is None and json.loads(events[1].before or "{}") == {"epsilon": 2.0, "delta": 1e-5}
        assert json.loads(events[1].after or "{}")["epsilon"] == 3.0 and json.loads(events[1].after or "{}")["dataset"] == ref

    def test_a_budget_names_a_dataset_version_that_exists(self, store: MetadataStore) -> None:
        ref = dataset(store)
        name = ref.split("@")[0]
        with pytest.raises(NotFound, match=f"{name}@9"):
            store.privacy.set_budget(f"{name}@9", 1.0, 0.0)
        with pytest.raises(NotFound):
            store.privacy.get_budget(f"{unique('nodata')}@1")
        bad_refs: list[Any] = [name, f"{name}@latest", f"{name}@0", "", "@1", 3]
        for bad in bad_refs:
            with pytest.raises(InvalidArgument, match="dataset"):
                store.privacy.set_budget(bad, 1.0, 0.0)

    @pytest.mark.parametrize(
        ("epsilon", "delta"),
        [(0, 0), (-1, 0), (math.nan, 0), (math.inf, 0), (True, 0), ("1", 0), (1, 1), (1, -0.1), (1, math.nan)],
    )
    def test_bad_budgets_are_refused(self, store: MetadataStore, epsilon: Any, delta: Any) -> None:
        ref = dataset(store)
        with pytest.raises(InvalidArgument):
            store.privacy.set_budget(ref, epsilon, delta)
        assert store.privacy.get_budget(ref) is None

    def test_a_budget_below_what_is_spent_is_refused(self, store: MetadataStore) -> None:
        ref = dataset(store)
        store.privacy.set_budget(ref, 1.0, 1e-5)
        store.privacy.spend(PrivacySpend(ref, 0.6, 4e-6, MECHANISM))
        with pytest.raises(InvalidArgument, match=r"epsilon=0\.6"):
            store.privacy.set_budget(ref, 0.5, 1e-5)
        with pytest.raises(InvalidArgument, match="spent"):
            store.privacy.set_budget(ref, 1.0, 1e-6)
        assert (store.privacy.get_budget(ref) or pytest.fail("no budget")).epsilon == 1.0
        lowered = store.privacy.set_budget(ref, 0.6, 4e-6)  # exactly what is spent: nothing left, allowed
        assert lowered.left == (0.0, 0.0)
        with pytest.raises(BudgetExceeded):
            store.privacy.spend(PrivacySpend(ref, 0.01, 0.0, MECHANISM))

    # spends -------------------------------------------------------------------------------------------------------------
    def test_spends_add_up_to_the_budget_and_no_further(self, store: MetadataStore) -> None:
        ref = dataset(store)
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        store.privacy.set_budget(ref, 1.0, 1e-5)
        first = store.privacy.spend(PrivacySpend(ref, 0.1, 1e-6, MECHANISM, run_id=run.id))
        assert (first.dataset, first.epsilon, first.delta, first.mechanism, first.run_id) == (ref, 0.1, 1e-6, MECHANISM, run.id)
        assert first.id > 0 and first.created_at > 0 and first.created_by
        for _ in range(9):  # ten spends of 0.1 fill a budget of 1.0, whatever the float rounding of their sum
            store.privacy.spend(PrivacySpend(ref, 0.1, 0.0, "gaussian-nb"))
        budget = store.privacy.get_budget(ref)
        assert budget is not None and math.isclose(budget.spent_epsilon, 1.0) and budget.spent_delta == 1e-6
        with pytest.raises(BudgetExceeded) as refused:
            store.privacy.spend(PrivacySpend(ref, 0.1, 0.0, MECHANISM))
        message = str(refused.value)
        assert ref in message and "epsilon=1," in message and "asked epsilon=0.1," in message and "spent" in message
        assert isinstance(refused.value, Conflict)
        spends = store.privacy.spends(ref)
        assert len(spends) == 10 and spends[0] == first and [s.id for s in spends] == sorted(s.id for s in spends)
        events = privacy_events(store, ref)
        assert [e.action for e in events].count("privacy.spend") == 10  # the refused spend wrote nothing
        assert json.loads(events[1].after or "{}")["spend"] == first.id
        assert store.privacy.set_budget(ref, 1.0, 1e-6).left == (0.0, 0.0)  # what is spent, to the same rounding

    def test_delta_is_a_budget_too(self, store: MetadataStore) -> None:
        ref = dataset(store)
        store.privacy.set_budget(ref, 10.0, 1e-5)
        store.privacy.spend(PrivacySpend(ref, 0.5, 8e-6, MECHANISM))
        with pytest.raises(BudgetExceeded, match=r"delta=1e-05.*spent.*delta=8e-06.*asked.*delta=3e-06"):
            store.privacy.spend(PrivacySpend(ref, 0.5, 3e-6, MECHANISM))
        pure = store.privacy.spend(PrivacySpend(ref, 0.5, 0.0, MECHANISM))  # pure epsilon-DP spends no delta
        assert pure.delta == 0.0

    def test_a_spend_needs_a_budget_and_a_run_that_exists(self, store: MetadataStore) -> None:
        ref = dataset(store)
        with pytest.raises(NotFound, match="no privacy budget"):
            store.privacy.spend(PrivacySpend(ref, 0.1, 0.0, MECHANISM))
        store.privacy.set_budget(ref, 1.0, 0.0)
        with pytest.raises(NotFound, match="run"):
            store.privacy.spend(PrivacySpend(ref, 0.1, 0.0, MECHANISM, run_id="0" * 32))
        assert store.privacy.spends(ref) == []

    @pytest.mark.parametrize(
        "fields",
        [
            {"epsilon": 0.0}, {"epsilon": -0.1}, {"epsilon": math.nan}, {"delta": 1.0}, {"delta": -1e-9}, {"mechanism": ""},
            {"mechanism": "a\nb"}, {"request_id": "has space"}, {"run_id": "xyz"}, {"dataset": "nodata"},
        ],
    )  # fmt: skip
    def test_bad_spends_are_refused_and_write_nothing(self, store: MetadataStore, fields: dict[str, Any]) -> None:
        ref = dataset(store)
        store.privacy.set_budget(ref, 1.0, 1e-5)
        given: dict[str, Any] = {"dataset": ref, "epsilon": 0.1, "delta": 0.0, "mechanism": MECHANISM, **fields}
        with pytest.raises(InvalidArgument):
            store.privacy.spend(PrivacySpend(**given))
        assert store.privacy.spends(ref) == []

    def test_a_retried_spend_is_recorded_once(self, store: MetadataStore) -> None:
        ref = dataset(store)
        store.privacy.set_budget(ref, 0.5, 0.0)
        first = store.privacy.spend(PrivacySpend(ref, 0.5, 0.0, MECHANISM, request_id="train-42"))
        again = store.privacy.spend(PrivacySpend(ref, 0.5, 0.0, MECHANISM, request_id="train-42"))  # all spent: a retry
        assert again == first and len(store.privacy.spends(ref)) == 1
        with pytest.raises(Conflict, match="train-42") as other:
            store.privacy.spend(PrivacySpend(ref, 0.4, 0.0, MECHANISM, request_id="train-42"))
        assert not isinstance(other.value, BudgetExceeded)
        assert [s.request_id for s in store.privacy.spends(ref)] == ["train-42"]
        other_version = dataset(store)  # a request id is per dataset version
        store.privacy.set_budget(other_version, 1.0, 0.0)
        assert store.privacy.spend(PrivacySpend(other_version, 0.4, 0.0, MECHANISM, request_id="train-42")).id != first.id

    def test_spends_at_once_never_take_the_total_past_the_budget(self, store: MetadataStore) -> None:
        ref = dataset(store)
        store.privacy.set_budget(ref, 1.0, 1e-5)
        spent, refused = spend_at_once(lambda _: store, ref)
        assert len(spent) == 6 and len(refused) == 6  # 6 x 0.15 = 0.9; a seventh would be 1.05
        assert all(isinstance(e, BudgetExceeded) for e in refused), refused
        budget = store.privacy.get_budget(ref)
        assert budget is not None and budget.spent_epsilon <= budget.epsilon and math.isclose(budget.spent_epsilon, 0.9)
        assert sorted(s.id for s in store.privacy.spends(ref)) == sorted(s.id for s in spent)
