"""Which loaded model answers a request: a deployment's routes as one immutable table, swapped whole.

A table is built (every model loaded and warmed) before it replaces the one in service, in one assignment: a
request takes the table once and finishes on it, so no request sees half of a change. Canaries take their weight
of the traffic; with a sticky key, the same key value always lands on the same route (a stable hash, so every
replica agrees without talking to each other).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from keel.serve.batching import Batcher
from keel.serve.models import ServedModel
from keel.serve.tensors import flatten

ROUTE_KEY_HEADER = "x-keel-route-key"


@dataclass(frozen=True, eq=False)
class Route:
    """One model of a deployment: ``kind`` is primary, canary or shadow; ``uri`` is the route as the deployment
    names it (``models:/churn@production``), ``served.uri`` the version that computes (its ONNX form maybe)."""

    kind: str
    uri: str
    served: ServedModel
    batcher: Batcher
    weight: float = 0.0

    @property
    def model(self) -> str:
        return self.served.uri


@dataclass(frozen=True, eq=False)
class RouteTable:
    """Everything a request needs, fixed for its lifetime. ``resolved`` maps each route URI to the version URI it
    named when the table was built (an alias moving changes it: that is how a follower sees the move)."""

    deployment: str | None
    updated_at: int
    primary: Route
    canaries: tuple[Route, ...] = ()
    shadows: tuple[Route, ...] = ()
    sticky_key: str | None = None
    resolved: dict[str, str] = field(default_factory=dict)

    def routes(self) -> tuple[Route, ...]:
        return (self.primary, *self.canaries, *self.shadows)

    def choose(self, key: Any = None) -> Route:
        """The route that answers: by the hash of ``key`` when given (sticky), at random otherwise."""
        if not self.canaries:
            return self.primary
        point = _bucket(self.deployment or "", key) if key is not None else random.random()
        edge = 0.0
        for canary in self.canaries:
            edge += canary.weight
            if point < edge:
                return canary
        return self.primary

    def sticky_value(self, body: Any, header: str | None) -> Any:
        """The request's value of the sticky key: the ``x-keel-route-key`` header, else a top-level body field, else
        the V2 ``parameters`` field, else that column of the first row (``records``, ``columns`` or a V2 input named
        so). None: no stickiness for this request."""
        if header is not None:
            return header
        key = self.sticky_key
        if key is None or not isinstance(body, dict):
            return None
        if key in body:
            return _canonical(body[key])
        params = body.get("parameters")
        if isinstance(params, dict) and key in params:
            return _canonical(params[key])
        records, columns, inputs = body.get("records"), body.get("columns"), body.get("inputs")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return _canonical(records[0].get(key))
        if isinstance(columns, dict) and isinstance(columns.get(key), list) and columns[key]:
            return _canonical(columns[key][0])
        if isinstance(inputs, list):
            for tensor in inputs:
                if isinstance(tensor, dict) and tensor.get("name") == key and isinstance(tensor.get("data"), list):
                    flat = flatten(tensor["data"])
                    return _canonical(flat[0]) if flat else None
        return None


def _canonical(value: Any) -> Any:
    """One spelling per key: 7, 7.0 and "7" in JSON are the same customer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _bucket(salt: str, key: Any) -> float:
    """A stable point in [0, 1) for ``key`` (the same on every replica and across restarts, unlike ``hash``)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
