"""``RestModelStore``: the model registry over HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from keel.core.models import AliasChange, ModelVersion
from keel.core.promotion import ANY_HOLDER, ExpectedFrom, check_move
from keel.store.metadata.models import ModelStore, check_version_metrics
from keel.store.metadata.rest import wire

if TYPE_CHECKING:
    from keel.store.metadata.rest.client import RestStore


# kept for callers of the old names: the shapes live in ``wire``
version_to_json = wire.model_version_to_json
version_from_json = wire.model_version_from_json


class RestModelStore(ModelStore):
    def __init__(self, store: RestStore) -> None:
        self._call = store._call

    def create_version(
        self,
        name: str,
        *,
        flavor: str,
        artifact_sha256: str,
        size: int,
        signature: Mapping[str, Any],
        source_run: str | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[str] = (),
        requirements: Sequence[str] = (),
        description: str = "",
    ) -> ModelVersion:
        # checked here too, so a bad value is refused before a request is made (the server checks again)
        body = {
            "name": name, "flavor": flavor, "artifact_sha256": artifact_sha256, "size": size, "signature": dict(signature),
            "source_run": source_run, "metrics": check_version_metrics(metrics), "datasets": list(datasets),
            "requirements": list(requirements), "description": description,
        }  # fmt: skip
        return wire.model_version_from_json(self._call("POST", "/models/versions", body))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return wire.model_version_from_json(self._call("GET", f"/models/{quote(name)}/versions/{int(version)}"))

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [wire.model_version_from_json(d) for d in self._call("GET", f"/models/{quote(name)}/versions")]

    def list_models(self) -> list[ModelVersion]:
        return [wire.model_version_from_json(d) for d in self._call("GET", "/models")]

    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        return wire.model_version_from_json(self._call("GET", f"/models/{quote(name)}/aliases/{quote(alias)}"))

    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        rules: Sequence[str] = (),
        require_valid_data: bool = False,
        expected_from: ExpectedFrom = ANY_HOLDER,
        force: bool = False,
        actor: str,
        reason: str = "",
    ) -> AliasChange:
        # the server checks the gates (and the holder) in its own transaction; here only what needs no store
        move = check_move(
            alias, version, rules=rules, require_valid_data=require_valid_data, expected_from=expected_from,
            force=force, actor=actor, reason=reason,
        )  # fmt: skip
        body = {
            "version": move.version, "rules": [r.text for r in move.rules], "require_valid_data": move.require_valid_data,
            "expected_from": move.expected_from, "force": move.force, "actor": actor, "reason": move.reason,
        }  # fmt: skip
        return wire.alias_change_from_json(self._call("PUT", f"/models/{quote(name)}/aliases/{quote(alias)}", body))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        params = {"alias": alias} if alias is not None else None
        return [wire.alias_change_from_json(d) for d in self._call("GET", f"/models/{quote(name)}/history", params=params)]
