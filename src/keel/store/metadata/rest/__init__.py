"""The REST store: the tracking store interface spoken over HTTP to a ``keel server``."""
