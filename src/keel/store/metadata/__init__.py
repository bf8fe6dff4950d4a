"""Metadata stores, chosen by URI scheme and imported lazily.

>>> store = open_store("sqlite:///.keel/keel.db")     # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.store.metadata.base import MetadataStore

# scheme -> "module:Class"; backends import their drivers only when chosen.
BACKENDS: dict[str, str] = {
    "sqlite": "keel.store.metadata.sql.store:SqlStore",
    "postgresql": "keel.store.metadata.sql.store:SqlStore",
    "http": "keel.store.metadata.rest.client:RestStore",
    "https": "keel.store.metadata.rest.client:RestStore",
}


def open_store(uri: str, **options: object) -> MetadataStore:
    """Open the metadata store named by ``uri`` (``sqlite:///``, ``postgresql+psycopg://``, ``http://``)."""
    import importlib

    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    target = BACKENDS.get(scheme)
    if target is None:
        raise InvalidArgument.for_field(
            "store URI", uri, "a URI starting with sqlite://, postgresql+psycopg://, http:// or https://"
        )
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    store: MetadataStore = cls(uri, **options)
    return store
