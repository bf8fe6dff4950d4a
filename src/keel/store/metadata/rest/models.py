"""``RestModelStore``: the model registry over HTTP (made from the endpoint table, in ``client``)."""

from __future__ import annotations

from keel.store.metadata.rest import wire
from keel.store.metadata.rest.client import RestModelStore

__all__ = ["RestModelStore", "version_from_json", "version_to_json"]

# kept for callers of the old names: the shapes live in ``wire``
version_to_json = wire.model_version_to_json
version_from_json = wire.model_version_from_json
