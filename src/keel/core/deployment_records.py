"""What a deployment may record, checked the same way by every backend (a server never trusts its clients).

Stores call these before they write: model URIs (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``, names and
aliases as the registry spells them), canary weights in (0, 1] summing to at most 1 (the primary takes the rest),
no model routed twice, a sticky key shaped like a request field name, the actor and reason of a change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keel.core import validation as v
from keel.core.actor import current_actor
from keel.core.deployments import Deployment
from keel.core.errors import InvalidArgument
from keel.core.promotion import MAX_ACTOR_LENGTH

_MODEL_URI = re.compile(rf"models:/(?P<name>{v.NAME_PATTERN})(?:/(?P<version>[1-9][0-9]{{0,17}})|@(?P<alias>{v.ALIAS_PATTERN}))?")
_URI_EXPECTED = "a model URI: models:/NAME/VERSION or models:/NAME@ALIAS"


@dataclass(frozen=True, slots=True)
class Routes:
    """A deployment's routes, checked."""

    primary: str
    shadows: tuple[str, ...] = ()
    canaries: tuple[tuple[str, float], ...] = ()
    sticky_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "shadows": list(self.shadows),
            "canaries": [[uri, weight] for uri, weight in self.canaries],
            "sticky_key": self.sticky_key,
        }

    @classmethod
    def of(cls, d: Deployment) -> Routes:
        return cls(d.primary, d.shadows, d.canaries, d.sticky_key)

    def uris(self) -> tuple[str, ...]:
        """Every model URI routed: the primary, the shadows, the canaries."""
        return (self.primary, *self.shadows, *(uri for uri, _ in self.canaries))


def check_model_uri(uri: Any, field: str = "model URI") -> str:
    """A route's URI: a version or an alias (a bare ``models:/NAME`` names no one version)."""
    if parse_model_uri(uri, field)[1:] == (None, None):
        raise InvalidArgument.for_field(field, uri, _URI_EXPECTED)
    return str(uri)


def parse_model_uri(uri: Any, field: str = "model URI") -> tuple[str, int | None, str | None]:
    """``models:/NAME/VERSION`` -> (name, version, None); ``models:/NAME@ALIAS`` -> (name, None, alias);
    ``models:/NAME`` -> (name, None, None); ``InvalidArgument`` naming ``field`` otherwise."""
    m = _MODEL_URI.fullmatch(uri) if isinstance(uri, str) else None
    if m is None:
        raise InvalidArgument.for_field(field, uri, _URI_EXPECTED)
    version = m.group("version")
    return m.group("name"), None if version is None else int(version), m.group("alias")


def alias_uri(model: str, alias: str) -> str:
    return f"models:/{model}@{alias}"


def version_uri(model: str, version: int | None) -> str | None:
    """The URI of one version (None for none: an alias that named no version)."""
    return None if version is None else f"models:/{model}/{version}"


def alias_move_reason(model: str, alias: str, before: int | None, after: int | None) -> str:
    """The reason recorded on the ``alias`` change of a deployment that follows the alias."""
    if before is None:
        return f"alias {alias} of {model} set to {after}"
    if after is None:
        return f"alias {alias} of {model} removed (was {before})"
    return f"alias {alias} of {model} moved {before} -> {after}"


def check_deployment_name(name: Any) -> str:
    return v.check_name(name, "deployment name")


def _check_shadows(shadows: Any) -> tuple[str, ...]:
    if isinstance(shadows, (str, bytes)) or not isinstance(shadows, Sequence):
        raise InvalidArgument.for_field("shadows", shadows, f"a list of model URIs ({_URI_EXPECTED})")
    return tuple(check_model_uri(s, "shadow") for s in shadows)


def check_canaries(canaries: Any) -> tuple[tuple[str, float], ...]:
    expected = "a list of (model URI, weight) pairs, weights in (0, 1]"
    if isinstance(canaries, (str, bytes)) or not isinstance(canaries, Sequence):
        raise InvalidArgument.for_field("canaries", canaries, expected)
    out = []
    for pair in canaries:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidArgument.for_field("canary", pair, expected)
        uri, weight = check_model_uri(pair[0], "canary"), pair[1]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (0 < weight <= 1):
            raise InvalidArgument.for_field(f"weight of canary {uri!r}", weight, "a number in (0, 1]")
        out.append((uri, float(weight)))
    total = math.fsum(w for _, w in out)
    if total > 1 + 1e-9:
        raise InvalidArgument.for_field("canary weights", total, "a sum of at most 1 (the primary takes the rest)")
    return tuple(out)


def check_routes(primary: Any, shadows: Any = (), canaries: Any = (), sticky_key: Any = None) -> Routes:
    """Every route of a deployment, checked (``InvalidArgument`` names the first bad one)."""
    checked = Routes(
        check_model_uri(primary, "primary"),
        _check_shadows(shadows),
        check_canaries(canaries),
        None if sticky_key is None else v.check_key(sticky_key, "sticky_key"),
    )
    seen: set[str] = set()
    for uri in checked.uris():
        if uri in seen:
            raise InvalidArgument.for_field("routes", uri, "each model routed once (primary, shadow or canary)")
        seen.add(uri)
    return checked


def check_change_note(actor: Any, reason: Any) -> tuple[str, str]:
    """Who made a change and why."""
    if not isinstance(actor, str) or len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidArgument.for_field("actor", actor, f"a string of at most {MAX_ACTOR_LENGTH} characters")
    if not isinstance(reason, str):
        raise InvalidArgument.for_field("reason", reason, "a string")
    return actor or current_actor(), reason  # no name given: who acts (the server's caller, or the local user)


def check_expected_updated_at(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument.for_field("expected_updated_at", value, "an integer (the deployment's updated_at) or None")
    return value


def change_kind(before: Routes, after: Routes) -> str:
    """What a change of routes is, for the history: the primary first, then shadows, then canaries (and sticky key)."""
    if before.primary != after.primary:
        return "primary"
    if before.shadows != after.shadows:
        return "shadow"
    return "canary"


def merge_routes(current: Routes, primary: Any, shadows: Any, canaries: Any, sticky_key: Any) -> Routes:
    """The routes after a change: a given value replaces the current one (None: unchanged; ``sticky_key=""``: none),
    then checked as a whole."""
    sticky = current.sticky_key if sticky_key is None else (sticky_key or None)
    return check_routes(
        current.primary if primary is None else primary,
        current.shadows if shadows is None else shadows,
        current.canaries if canaries is None else canaries,
        sticky,
    )


__all__ = [
    "Routes",
    "alias_move_reason",
    "alias_uri",
    "change_kind",
    "check_canaries",
    "check_change_note",
    "check_deployment_name",
    "check_expected_updated_at",
    "check_model_uri",
    "check_routes",
    "merge_routes",
    "version_uri",
]
