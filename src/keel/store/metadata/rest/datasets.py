"""``RestDatasetStore``: the dataset store interface over HTTP, sharing the ``RestStore``'s connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.core.dataset_records import plain_json
from keel.core.datasets import ColumnSchema, DatasetVersion, RunDatasetLink, ValidationRecord
from keel.core.errors import InvalidArgument
from keel.store.metadata.datasets import DatasetStore
from keel.store.metadata.rest import wire

if TYPE_CHECKING:
    from keel.store.metadata.rest.client import RestStore


def _vid(version_id: int) -> int:
    if isinstance(version_id, bool) or not isinstance(version_id, int):
        raise InvalidArgument.for_field("version_id", version_id, "an integer")
    return version_id


class RestDatasetStore(DatasetStore):
    def __init__(self, store: RestStore) -> None:
        self._call = store._call

    def log_version(
        self,
        name: str,
        *,
        content_hash: str,
        artifact_sha256: str,
        size: int,
        row_count: int,
        schema: Sequence[ColumnSchema],
        source: str = "",
        role: str = "data",
        parent_ids: Sequence[int] = (),
        transform: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        if transform is not None and not isinstance(transform, Mapping):
            raise InvalidArgument.for_field("transform", transform, "a mapping (name, code hash, params)")
        body = {
            "name": name,
            "content_hash": content_hash,
            "artifact_sha256": artifact_sha256,
            "size": size,
            "row_count": row_count,
            "schema": [[c.name, c.type, c.nullable] for c in schema],
            "source": source,
            "role": role,
            "parent_ids": list(parent_ids),
            # checked here too: the JSON encoder would raise a bare TypeError on anything else
            "transform": plain_json(transform, "transform") if transform else None,
            "profile": dict(profile) if profile is not None else None,
        }
        data = self._call("POST", "/datasets/versions", body)
        return wire.version_from_json(data["version"]), bool(data["created"])

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        number = "latest" if version is None else str(version)
        return wire.version_from_json(self._call("GET", "/datasets/by-name/versions", params={"name": name, "version": number}))

    def get_version_by_id(self, version_id: int) -> DatasetVersion:
        return wire.version_from_json(self._call("GET", f"/datasets/versions/{_vid(version_id)}"))

    def list_versions(self, name: str) -> list[DatasetVersion]:
        return [wire.version_from_json(d) for d in self._call("GET", "/datasets/by-name/all", params={"name": name})]

    def list_datasets(self) -> list[DatasetVersion]:
        return [wire.version_from_json(d) for d in self._call("GET", "/datasets")]

    def get_profile(self, version_id: int) -> dict[str, Any] | None:
        return self._call("GET", f"/datasets/versions/{_vid(version_id)}/profile")["profile"]  # type: ignore[no-any-return]

    def children(self, version_id: int) -> list[DatasetVersion]:
        return [wire.version_from_json(d) for d in self._call("GET", f"/datasets/versions/{_vid(version_id)}/children")]

    def link_run(self, run_id: str, version_id: int, direction: str) -> None:
        self._call("POST", f"/datasets/versions/{_vid(version_id)}/runs", {"run_id": run_id, "direction": direction})

    def runs_of_version(self, version_id: int) -> list[tuple[str, str]]:
        return [(r, d) for r, d in self._call("GET", f"/datasets/versions/{_vid(version_id)}/runs")]

    def versions_of_run(self, run_id: str) -> list[RunDatasetLink]:
        data = self._call("GET", f"/runs/{run_id}/datasets")
        return [wire.run_dataset_link_from_json(run_id, d) for d in data]

    def save_validation(
        self, version_id: int, suite: str, passed: bool, errors: int, warnings: int, result: Mapping[str, Any]
    ) -> ValidationRecord:
        body = {"suite": suite, "passed": passed, "errors": errors, "warnings": warnings, "result": dict(result)}
        return wire.validation_from_json(self._call("POST", f"/datasets/versions/{_vid(version_id)}/validations", body))

    def list_validations(self, version_id: int) -> list[ValidationRecord]:
        data = self._call("GET", f"/datasets/versions/{_vid(version_id)}/validations")
        return [wire.validation_from_json(d) for d in data]
