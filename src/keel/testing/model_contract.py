"""The model-store contract, as tests every backend must pass."""

from __future__ import annotations

import time
from typing import Any

import pytest

from keel.core.actor import local_actor
from keel.core.errors import Conflict, InvalidArgument, NotFound, PromotionRefused
from keel.core.models import ModelVersion
from keel.store.metadata.base import MetadataStore
from keel.testing.dataset_contract import log as log_dataset
from keel.testing.store_contract import unique

SHA = "c" * 64


class ModelStoreContract:
    def _register(self, store: MetadataStore, name: str, **kwargs: Any) -> ModelVersion:
        """``store.models.create_version`` with valid defaults; ``kwargs`` may be ill-typed on purpose."""
        defaults: dict[str, Any] = {"flavor": "sklearn", "artifact_sha256": SHA, "size": 100, "signature": {"inputs": []}}
        return store.models.create_version(name, **{**defaults, **kwargs})

    def test_versions_count_up_and_keep_what_they_were_given(self, store: MetadataStore) -> None:
        name = unique("model")
        run = store.create_run(store.get_or_create_experiment(unique()).id)
        v1 = self._register(
            store, name, source_run=run.id, metrics={"auc": 0.91}, datasets=["orders@2"], requirements=["scikit-learn==1.9.1"]
        )
        v2 = self._register(store, name, flavor="python")
        assert (v1.version, v2.version) == (1, 2)
        assert v1.source_run == run.id and v1.metrics == {"auc": 0.91} and v1.datasets == ("orders@2",)
        assert v1.requirements == ("scikit-learn==1.9.1",) and v1.uri == f"models:/{name}/1"
        assert store.models.get_version(name, 1) == v1
        assert [v.version for v in store.models.list_versions(name)] == [1, 2]
        assert {m.name: m.version for m in store.models.list_models()}[name] == 2

    def test_aliases_move_and_every_move_is_history(self, store: MetadataStore) -> None:
        name = unique("model")
        for _ in range(3):
            self._register(store, name)
        first = store.models.move_alias(name, "production", 1, force=True, actor="ana", reason="first release")
        assert (first.from_version, first.to_version) == (None, 1)
        before_move = store.models.alias_history(name)[-1].at
        time.sleep(0.01)
        store.models.move_alias(name, "staging", 3, force=True, actor="bo", reason="candidate")
        moved = store.models.move_alias(name, "production", 2, force=True, actor="bo", reason="better AUC")
        assert (moved.from_version, moved.to_version, moved.reason) == (1, 2, "better AUC")
        assert moved.actor in ("bo", local_actor())  # a server records its caller (here: its open local user)
        assert store.models.resolve_alias(name, "production").version == 2
        assert store.models.get_version(name, 2).aliases == ("production",)
        production = store.models.alias_history(name, "production")
        assert [(c.from_version, c.to_version) for c in production] == [(None, 1), (1, 2)]
        # what was production at a given time: the last move at or before it
        at = [c for c in production if c.at <= before_move][-1]
        assert at.to_version == 1
        store.models.move_alias(name, "staging", None, force=True, actor="bo", reason="retired")
        with pytest.raises(NotFound, match="no alias 'staging'"):
            store.models.resolve_alias(name, "staging")
        assert len(store.models.alias_history(name)) == 4

    def test_bad_alias_moves_are_refused_and_write_nothing(self, store: MetadataStore) -> None:
        name = unique("model")
        self._register(store, name)
        with pytest.raises(NotFound, match="has no version 7"):
            store.models.move_alias(name, "production", 7, force=True, actor="a")
        with pytest.raises(InvalidArgument, match="alias must be 1-64 lowercase"):
            store.models.move_alias(name, "Prod Uction!", 1, force=True, actor="a")
        with pytest.raises(NotFound, match="does not exist"):
            store.models.move_alias(unique("nothing"), "production", 1, force=True, actor="a")
        assert store.models.alias_history(name) == []
        with pytest.raises(InvalidArgument, match="model name must be"):
            self._register(store, "../model")
        with pytest.raises(NotFound):
            self._register(store, unique("model"), source_run="0" * 32)

    # gated moves (issue 9): the store checks the gates and the holder in the transaction that moves the alias
    def _three(self, store: MetadataStore, *aucs: float) -> str:
        name = unique("model")
        for auc in aucs:
            self._register(store, name, metrics={"auc": auc})
        return name

    def test_a_gated_move_is_checked_by_the_store_and_recorded_with_its_checks(self, store: MetadataStore) -> None:
        name = self._three(store, 0.9, 0.92, 0.91)
        first = store.models.move_alias(name, "production", 1, rules=["auc >= 0.85"], expected_from=None, actor="ana")
        assert (first.from_version, first.to_version, first.gated, first.forced) == (None, 1, True, False)
        assert first.checks == [
            {"rule": "auc >= 0.85", "metric": "auc", "candidate": 0.9, "baseline": None, "threshold": 0.85, "passed": True}
        ]
        with pytest.raises(PromotionRefused, match=r"'auc >= baseline \+ 5%': auc is 0.91, threshold 0.945") as refused:
            store.models.move_alias(name, "production", 3, rules=["auc >= 0.5", "auc >= baseline + 5%"], actor="bo")
        assert [c["passed"] for c in refused.value.checks or []] == [True, False]  # the checks cross REST as details
        assert refused.value.checks[1]["baseline"] == 0.9  # type: ignore[index]
        assert store.models.resolve_alias(name, "production").version == 1  # a refusal writes nothing
        assert len(store.models.alias_history(name)) == 1
        second = store.models.move_alias(name, "production", 2, rules=["auc >= baseline"], expected_from=1, actor="bo")
        assert (second.from_version, second.to_version, second.checks[0]["baseline"]) == (1, 2, 0.9)  # type: ignore[index]
        history = store.models.alias_history(name, "production")
        moves = [(c.from_version, c.to_version, c.gated, c.forced) for c in history]
        assert moves == [(None, 1, True, False), (1, 2, True, False)]
        assert history[0].checks == first.checks and history[1].checks == second.checks

    def test_a_baseline_rule_with_no_holder_is_refused(self, store: MetadataStore) -> None:
        name = self._three(store, 0.9)
        with pytest.raises(InvalidArgument, match=f"compares with a baseline; no version of '{name}' holds 'production'"):
            store.models.move_alias(name, "production", 1, rules=["auc >= baseline"], actor="ana")
        with pytest.raises(InvalidArgument, match="has no metric 'loss'"):
            store.models.move_alias(name, "production", 1, rules=["loss <= 1"], actor="ana")
        assert store.models.get_version(name, 1).aliases == () and store.models.alias_history(name) == []

    def test_a_move_without_gates_must_be_forced_and_is_recorded_as_forced(self, store: MetadataStore) -> None:
        name = self._three(store, 0.9, 0.8)
        with pytest.raises(InvalidArgument, match="passes no gate: give rules"):
            store.models.move_alias(name, "production", 1, actor="ana")
        with pytest.raises(InvalidArgument, match="not both"):
            store.models.move_alias(name, "production", 1, rules=["auc >= 0.5"], force=True, actor="ana")
        with pytest.raises(InvalidArgument, match="takes force=True"):
            store.models.move_alias(name, "production", None, rules=["auc >= 0.5"], actor="ana")
        for rules in ("auc >= 0.5", [5], ["auc >= 0.5"] * 101):
            with pytest.raises(InvalidArgument, match="rules must be a list of at most 100 rules"):
                store.models.move_alias(name, "production", 1, rules=rules, actor="ana")  # type: ignore[arg-type]
        assert store.models.alias_history(name) == []
        forced = store.models.move_alias(name, "production", 2, force=True, actor="ana", reason="hotfix")
        assert (forced.to_version, forced.gated, forced.forced, forced.checks, forced.reason) == (2, False, True, None, "hotfix")
        [recorded] = store.models.alias_history(name)
        assert (recorded.forced, recorded.gated, recorded.checks) == (True, False, None)

    def test_compare_and_swap_on_the_holder(self, store: MetadataStore) -> None:
        name = self._three(store, 0.9, 0.92, 0.93)
        store.models.move_alias(name, "production", 1, rules=["auc >= 0.5"], expected_from=None, actor="ana")
        with pytest.raises(Conflict, match=r"is held by version 1, not no version as expected: another move came first"):
            store.models.move_alias(name, "production", 2, rules=["auc >= 0.5"], expected_from=None, actor="bo")
        with pytest.raises(Conflict, match="is held by version 1, not version 2"):
            store.models.move_alias(name, "production", 3, force=True, expected_from=2, actor="bo")
        with pytest.raises(InvalidArgument, match="expected_from must be a version number"):
            store.models.move_alias(name, "production", 3, force=True, expected_from=0, actor="bo")
        assert [c.to_version for c in store.models.alias_history(name)] == [1]
        store.models.move_alias(name, "production", 3, rules=["auc >= baseline"], expected_from=1, actor="bo")
        assert store.models.resolve_alias(name, "production").version == 3

    def test_require_valid_data_follows_the_version_linked_at_registration(self, store: MetadataStore) -> None:
        data = unique("data")
        first, _ = log_dataset(store, data, "a")
        name = unique("model")
        self._register(store, name, metrics={"auc": 0.9}, datasets=[data])  # a bare name: linked to data@1, the latest now
        store.datasets.save_validation(first.id, "suite", True, 0, 0, {})
        second, _ = log_dataset(store, data, "b")
        store.datasets.save_validation(second.id, "suite", False, 1, 0, {})  # a later version the model never saw
        moved = store.models.move_alias(name, "staging", 1, require_valid_data=True, actor="ana")
        assert moved.gated and [c["passed"] for c in moved.checks or []] == [True]

    def test_require_valid_data_reads_the_validations_in_the_store(self, store: MetadataStore) -> None:
        data = unique("data")
        version, _ = log_dataset(store, data, "a")
        name = unique("model")
        self._register(store, name, metrics={"auc": 0.9}, datasets=[version.ref])
        self._register(store, name, metrics={"auc": 0.9})
        with pytest.raises(PromotionRefused, match=f"training data {version.ref} has no validation") as refused:
            store.models.move_alias(name, "staging", 1, require_valid_data=True, actor="ana")
        assert refused.value.checks == [{"data": version.ref, "validation": "none", "passed": False}]
        store.datasets.save_validation(version.id, "suite", False, 1, 0, {})
        with pytest.raises(PromotionRefused, match="has a failed validation"):
            store.models.move_alias(name, "staging", 1, require_valid_data=True, actor="ana")
        with pytest.raises(PromotionRefused, match="no training dataset is recorded"):
            store.models.move_alias(name, "staging", 2, require_valid_data=True, actor="ana")
        assert store.models.alias_history(name) == []
        store.datasets.save_validation(version.id, "suite", True, 0, 0, {})
        moved = store.models.move_alias(name, "staging", 1, require_valid_data=True, rules=["auc >= 0.5"], actor="ana")
        assert moved.gated and [c["passed"] for c in moved.checks or []] == [True, True]
