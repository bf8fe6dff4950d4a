"""Deployment entities: which registered models serve a name (primary, shadows, weighted canaries) and every change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ChangeKind = Literal["create", "primary", "shadow", "canary", "rollback", "alias"]
CHANGE_KINDS: tuple[str, ...] = ("create", "primary", "shadow", "canary", "rollback", "alias")
"""``alias``: an alias the deployment routes moved in the registry (the routes stay; ``resolved`` in ``from_routes`` and
``to_routes`` maps the alias route to the version it named before and after, ``models:/NAME/VERSION`` or None)."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """``primary`` answers; ``shadows`` see the same input off the response path; each canary takes its weight of
    the traffic (0-1) and the primary the rest, sticky by the request field ``sticky_key`` when one is set.
    Routes are model URIs: ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (an alias follows the registry)."""

    name: str
    primary: str
    shadows: tuple[str, ...] = ()
    canaries: tuple[tuple[str, float], ...] = ()
    sticky_key: str | None = None
    created_at: int = 0
    updated_at: int = 0  # strictly increasing per deployment: the token of compare-and-swap (``expected_updated_at``)

    @property
    def primary_weight(self) -> float:
        """The share of traffic the primary answers (what the canaries leave)."""
        return max(0.0, 1.0 - sum(w for _, w in self.canaries))


@dataclass(frozen=True, slots=True)
class DeploymentChange:
    """One change of a deployment's routes: ``from_routes``/``to_routes`` are the routes before and after as JSON
    (``{"primary", "shadows", "canaries", "sticky_key"}``, plus ``resolved`` for an ``alias`` change; ``from_routes``
    is None for the creation)."""

    deployment: str
    what: str  # one of CHANGE_KINDS
    from_routes: dict[str, Any] | None
    to_routes: dict[str, Any]
    actor: str
    reason: str
    at: int
