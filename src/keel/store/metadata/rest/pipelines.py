"""``RestPipelineStore``: the step cache over HTTP (made from the endpoint table, in ``client``)."""

from __future__ import annotations

from keel.store.metadata.rest.client import RestPipelineStore

__all__ = ["RestPipelineStore"]
