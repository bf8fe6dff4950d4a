"""The model-store contract, as tests every backend must pass."""

from __future__ import annotations

import time

import pytest

from keel.core.errors import InvalidArgument, NotFound
from keel.store.metadata.base import TrackingStore
from keel.testing.store_contract import unique

SHA = "c" * 64


class ModelStoreContract:
    def _register(self, store: TrackingStore, name: str, **kwargs: object):  # type: ignore[no-untyped-def]
        defaults: dict = {"flavor": "sklearn", "artifact_sha256": SHA, "size": 100, "signature": {"inputs": []}}
        return store.models.create_version(name, **{**defaults, **kwargs})

    def test_versions_count_up_and_keep_what_they_were_given(self, store: TrackingStore) -> None:
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

    def test_aliases_move_and_every_move_is_history(self, store: TrackingStore) -> None:
        name = unique("model")
        for _ in range(3):
            self._register(store, name)
        first = store.models.set_alias(name, "production", 1, actor="ana", reason="first release")
        assert (first.from_version, first.to_version) == (None, 1)
        before_move = store.models.alias_history(name)[-1].at
        time.sleep(0.01)
        store.models.set_alias(name, "staging", 3, actor="bo", reason="candidate")
        moved = store.models.set_alias(name, "production", 2, actor="bo", reason="better AUC")
        assert (moved.from_version, moved.to_version, moved.actor, moved.reason) == (1, 2, "bo", "better AUC")
        assert store.models.resolve_alias(name, "production").version == 2
        assert store.models.get_version(name, 2).aliases == ("production",)
        production = store.models.alias_history(name, "production")
        assert [(c.from_version, c.to_version) for c in production] == [(None, 1), (1, 2)]
        # what was production at a given time: the last move at or before it
        at = [c for c in production if c.at <= before_move][-1]
        assert at.to_version == 1
        store.models.set_alias(name, "staging", None, actor="bo", reason="retired")
        with pytest.raises(NotFound, match="no alias 'staging'"):
            store.models.resolve_alias(name, "staging")
        assert len(store.models.alias_history(name)) == 4

    def test_bad_alias_moves_are_refused_and_write_nothing(self, store: TrackingStore) -> None:
        name = unique("model")
        self._register(store, name)
        with pytest.raises(NotFound, match="has no version 7"):
            store.models.set_alias(name, "production", 7, actor="a", reason="")
        with pytest.raises(InvalidArgument, match="alias must be 1-64 lowercase"):
            store.models.set_alias(name, "Prod Uction!", 1, actor="a", reason="")
        with pytest.raises(NotFound, match="does not exist"):
            store.models.set_alias(unique("nothing"), "production", 1, actor="a", reason="")
        assert store.models.alias_history(name) == []
        with pytest.raises(InvalidArgument, match="model name must be"):
            self._register(store, "../model")
        with pytest.raises(NotFound):
            self._register(store, unique("model"), source_run="0" * 32)
