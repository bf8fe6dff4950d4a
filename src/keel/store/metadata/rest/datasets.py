"""``RestDatasetStore``: the dataset store over HTTP (made from the endpoint table, in ``client``)."""

from __future__ import annotations

from keel.store.metadata.rest.client import RestDatasetStore

__all__ = ["RestDatasetStore"]
