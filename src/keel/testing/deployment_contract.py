"""The deployment-store contract, as tests every backend must pass."""

from __future__ import annotations

from typing import Any

import pytest

from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique


def _actor_is(recorded: str, given: str) -> bool:
    return recorded in (given, f"anonymous as {given} (client-declared)")  # a server marks a name it cannot verify


class DeploymentStoreContract:
    def test_create_get_list(self, store: MetadataStore) -> None:
        name = unique("deploy")
        made = store.deployments.create(
            name, "models:/churn@production", shadows=["models:/churn/4"], canaries=[("models:/churn/5", 0.1)],
            sticky_key="customer_id", actor="ana", reason="first",
        )  # fmt: skip
        assert (made.name, made.primary, made.shadows, made.canaries) == (
            name, "models:/churn@production", ("models:/churn/4",), (("models:/churn/5", 0.1),)
        )  # fmt: skip
        assert made.sticky_key == "customer_id" and made.created_at == made.updated_at > 0
        assert made.primary_weight == pytest.approx(0.9)
        assert store.deployments.get(name) == made
        assert made in store.deployments.list_deployments()
        [created] = store.deployments.history(name)
        assert (created.what, created.from_routes, created.reason) == ("create", None, "first")
        assert _actor_is(created.actor, "ana")
        assert created.to_routes["primary"] == "models:/churn@production"
        with pytest.raises(Conflict):
            store.deployments.create(name, "models:/churn/1")
        with pytest.raises(NotFound):
            store.deployments.get(unique("deploy"))

    def test_route_changes_are_recorded_with_from_and_to(self, store: MetadataStore) -> None:
        name = unique("deploy")
        store.deployments.create(name, "models:/churn/1")
        shadow = store.deployments.set_routes(name, shadows=["models:/churn/2"], actor="bo", reason="try v2")
        assert (shadow.what, shadow.from_routes, shadow.to_routes["shadows"]) == (
            "shadow", {"primary": "models:/churn/1", "shadows": [], "canaries": [], "sticky_key": None}, ["models:/churn/2"]
        )  # fmt: skip
        assert _actor_is(shadow.actor, "bo") and shadow.reason == "try v2"
        canary = store.deployments.set_routes(name, canaries=[("models:/churn/3", 0.25)], sticky_key="user")
        assert canary.what == "canary" and canary.to_routes["canaries"] == [["models:/churn/3", 0.25]]
        promoted = store.deployments.set_routes(name, primary="models:/churn/2", shadows=[])
        assert (promoted.what, promoted.from_routes and promoted.from_routes["primary"]) == ("primary", "models:/churn/1")
        now = store.deployments.get(name)
        assert (now.primary, now.shadows, now.sticky_key) == ("models:/churn/2", (), "user")
        assert now.canaries == (("models:/churn/3", 0.25),)
        assert [c.what for c in store.deployments.history(name)] == ["create", "shadow", "canary", "primary"]

    def test_compare_and_swap(self, store: MetadataStore) -> None:
        name = unique("deploy")
        made = store.deployments.create(name, "models:/churn/1")
        store.deployments.set_routes(name, shadows=["models:/churn/2"], expected_updated_at=made.updated_at)
        with pytest.raises(Conflict):  # the deployment changed since ``made`` was read
            store.deployments.set_routes(name, primary="models:/churn/3", expected_updated_at=made.updated_at)
        assert store.deployments.get(name).primary == "models:/churn/1"
        assert len(store.deployments.history(name)) == 2

    def test_rollback_returns_to_the_previous_primary(self, store: MetadataStore) -> None:
        name = unique("deploy")
        store.deployments.create(name, "models:/churn/1", shadows=["models:/churn/2"])
        with pytest.raises(NotFound):  # no earlier primary
            store.deployments.rollback(name)
        store.deployments.set_routes(name, primary="models:/churn/2", shadows=["models:/churn/3"])
        back = store.deployments.rollback(name, actor="cy", reason="v2 regressed")
        assert (back.what, back.from_routes and back.from_routes["primary"], back.to_routes["primary"]) == (
            "rollback", "models:/churn/2", "models:/churn/1"
        )  # fmt: skip
        now = store.deployments.get(name)
        assert (now.primary, now.shadows) == ("models:/churn/1", ("models:/churn/3",))
        assert [c.what for c in store.deployments.history(name)] == ["create", "primary", "rollback"]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"primary": "churn/1"},
            {"primary": "models:/churn/0"},
            {"primary": "models:/churn@Prod"},
            {"shadows": ["models:/churn/1"]},  # the primary twice
            {"canaries": [("models:/churn/2", 0.7), ("models:/churn/3", 0.5)]},  # weights sum over 1
            {"canaries": [("models:/churn/2", 0)]},
            {"canaries": [("models:/churn/2", "0.5")]},
            {"shadows": "models:/churn/2"},
        ],
    )
    def test_bad_routes_are_refused_and_nothing_is_written(self, store: MetadataStore, kwargs: dict[str, Any]) -> None:
        name = unique("deploy")
        create: dict[str, Any] = {"primary": "models:/churn/1", **kwargs}
        with pytest.raises(InvalidArgument):
            store.deployments.create(name, **create)
        with pytest.raises(NotFound):
            store.deployments.get(name)
        made = store.deployments.create(name, "models:/churn/1")
        with pytest.raises(InvalidArgument):
            store.deployments.set_routes(name, **kwargs)
        assert store.deployments.get(name) == made and len(store.deployments.history(name)) == 1

    def test_bad_names_and_empty_changes_are_refused(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidArgument):
            store.deployments.create("/bad name", "models:/churn/1")
        name = unique("deploy")
        store.deployments.create(name, "models:/churn/1")
        with pytest.raises(InvalidArgument):
            store.deployments.set_routes(name, primary="models:/churn/1")
        assert len(store.deployments.history(name)) == 1
