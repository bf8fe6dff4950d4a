"""The deployment-store contract, as tests every backend must pass."""

from __future__ import annotations

from typing import Any

import pytest

from keel.core.actor import local_actor
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique


def _actor_is(recorded: str, given: str) -> bool:
    return recorded in (given, local_actor())  # a server records its caller (here: its open local user), not the body's


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


def _model(store: MetadataStore, versions: int, name: str | None = None) -> str:
    name = name or unique("model")
    for _ in range(versions):
        store.models.create_version(name, flavor="sklearn", artifact_sha256="c" * 64, size=1, signature={"inputs": []})
    return name


class AliasFollowingContract:
    """Deployments that route an alias follow it: an alias move records an ``alias`` change in the move's transaction."""

    def test_an_alias_move_is_recorded_on_every_deployment_that_routes_it(self, store: MetadataStore) -> None:
        model = _model(store, 4)
        uri = f"models:/{model}@production"
        store.models.move_alias(model, "production", 3, force=True, actor="ana")
        as_primary, as_shadow, as_canary = unique("deploy"), unique("deploy"), unique("deploy")
        pinned, other_alias = unique("deploy"), unique("deploy")
        store.deployments.create(as_primary, uri, shadows=[f"models:/{model}/4"])
        store.deployments.create(as_shadow, f"models:/{model}/1", shadows=[uri])
        store.deployments.create(as_canary, f"models:/{model}/1", canaries=[(uri, 0.2)])
        store.deployments.create(pinned, f"models:/{model}/3")
        store.deployments.create(other_alias, f"models:/{model}@staging")
        before = {d: store.deployments.get(d) for d in (as_primary, as_shadow, as_canary, pinned, other_alias)}

        store.models.move_alias(model, "production", 4, force=True, actor="dee", reason="better")

        for name in (as_primary, as_shadow, as_canary):
            now = store.deployments.get(name)
            change = store.deployments.history(name)[-1]
            assert (change.what, change.reason) == ("alias", f"alias production of {model} moved 3 -> 4")
            assert _actor_is(change.actor, "dee")
            assert change.from_routes is not None and change.from_routes["resolved"] == {uri: f"models:/{model}/3"}
            assert change.to_routes["resolved"] == {uri: f"models:/{model}/4"}
            assert {k: v for k, v in change.to_routes.items() if k != "resolved"} == {
                k: v for k, v in change.from_routes.items() if k != "resolved"
            }  # the routes themselves stay
            assert (now.primary, now.shadows, now.canaries) == (before[name].primary, before[name].shadows, before[name].canaries)
            assert now.updated_at == change.at > before[name].updated_at  # what serving replicas poll
        for name in (pinned, other_alias):
            assert store.deployments.get(name) == before[name]
            assert [c.what for c in store.deployments.history(name)] == ["create"]

    def test_set_removed_and_unmoved_aliases(self, store: MetadataStore) -> None:
        model = _model(store, 2)
        uri = f"models:/{model}@production"
        name = unique("deploy")
        store.deployments.create(name, uri)  # the alias names no version yet
        store.models.move_alias(model, "production", 1, force=True, actor="ana")
        store.models.move_alias(model, "production", 1, force=True, actor="ana")  # names the same version: nothing to follow
        store.models.move_alias(model, "production", None, force=True, actor="ana")
        changes = store.deployments.history(name)
        assert [(c.what, c.reason) for c in changes] == [
            ("create", ""),
            ("alias", f"alias production of {model} set to 1"),
            ("alias", f"alias production of {model} removed (was 1)"),
        ]  # fmt: skip
        assert changes[1].from_routes is not None and changes[1].from_routes["resolved"] == {uri: None}
        assert changes[2].to_routes["resolved"] == {uri: None}

    def test_a_refused_move_records_nothing(self, store: MetadataStore) -> None:
        model = _model(store, 2)
        store.models.move_alias(model, "production", 1, force=True, actor="ana")
        name = unique("deploy")
        made = store.deployments.create(name, f"models:/{model}@production")
        with pytest.raises(Conflict):  # another move came first: the compare-and-swap of the alias refuses it
            store.models.move_alias(model, "production", 2, expected_from=2, force=True, actor="ana")
        assert store.deployments.get(name) == made and len(store.deployments.history(name)) == 1

    def test_a_similar_name_is_not_followed(self, store: MetadataStore) -> None:
        suffix = unique("m").replace("-", "")
        underscored, lookalike = _model(store, 1, f"a_{suffix}"), _model(store, 1, f"aX{suffix}")
        name = unique("deploy")
        made = store.deployments.create(name, f"models:/{lookalike}@production")
        store.models.move_alias(underscored, "production", 1, force=True, actor="ana")  # '_' must not match 'X'
        assert store.deployments.get(name) == made

    def test_rollback_after_an_alias_move_pins_the_version_it_named(self, store: MetadataStore) -> None:
        model = _model(store, 4)
        uri = f"models:/{model}@production"
        store.models.move_alias(model, "production", 3, force=True, actor="ana")
        name = unique("deploy")
        store.deployments.create(name, uri, shadows=[f"models:/{model}/3"], canaries=[(f"models:/{model}/2", 0.1)])
        store.models.move_alias(model, "production", 4, force=True, actor="ana")
        back = store.deployments.rollback(name, actor="cy", reason="4 regressed")
        assert (back.what, back.from_routes and back.from_routes["primary"], back.to_routes["primary"]) == (
            "rollback", uri, f"models:/{model}/3"
        )  # fmt: skip
        now = store.deployments.get(name)
        assert (now.primary, now.shadows, now.canaries) == (f"models:/{model}/3", (), ((f"models:/{model}/2", 0.1),))
        # pinned: the alias moves on without it
        store.models.move_alias(model, "production", 2, force=True, actor="ana")
        assert store.deployments.get(name) == now
        # routed again, it follows again
        store.deployments.set_routes(name, primary=uri, canaries=[])
        store.models.move_alias(model, "production", 1, force=True, actor="ana")
        assert store.deployments.history(name)[-1].to_routes["resolved"] == {uri: f"models:/{model}/1"}

    def test_rollback_after_an_alias_move_of_a_shadow_keeps_the_old_behaviour(self, store: MetadataStore) -> None:
        model = _model(store, 3)
        store.models.move_alias(model, "production", 1, force=True, actor="ana")
        name = unique("deploy")
        store.deployments.create(name, f"models:/{model}/1", shadows=[f"models:/{model}@production"])
        store.deployments.set_routes(name, primary=f"models:/{model}/2")
        store.models.move_alias(model, "production", 3, force=True, actor="ana")  # the shadow's alias: not the primary
        back = store.deployments.rollback(name)
        assert back.to_routes["primary"] == f"models:/{model}/1"

    def test_rollback_to_an_alias_that_named_nothing_is_not_found(self, store: MetadataStore) -> None:
        model = _model(store, 1)
        name = unique("deploy")
        made = store.deployments.create(name, f"models:/{model}@production")
        store.models.move_alias(model, "production", 1, force=True, actor="ana")
        with pytest.raises(NotFound):
            store.deployments.rollback(name)
        assert store.deployments.get(name).primary == made.primary
