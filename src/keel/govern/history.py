"""What served when: an alias's version and a deployment's routes at a moment, from the alias history and the
deployment history the stores keep (every move and every change, with its time).

>>> served_at("models:/churn@production", "2026-03-03T12:00:00")   # doctest: +SKIP
>>> served_at("churn", 1772539200000)   # a deployment: its routes, aliases resolved   # doctest: +SKIP

A change applies from its own time on (``at <= T``): a moment equal to a move's time sees the move.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.context import Context, resolve
from keel.core.deployment_records import parse_model_uri
from keel.core.deployments import DeploymentChange
from keel.core.entities import to_plain
from keel.core.errors import InvalidArgument
from keel.core.models import AliasChange
from keel.core.validation import check_name
from keel.serve.predictions import window_ms

__all__ = ["Routed", "ServedAt", "alias_version_at", "at_ms", "parse_model_uri", "routed_versions", "served_at"]

_FOREVER = 2**63 - 1


def at_ms(value: Any, field: str = "at") -> int:
    """A moment as ms since the epoch: ms, a datetime (naive means UTC), ISO 8601 text, or a duration ago ("2d")."""
    if value is None:
        raise InvalidArgument.for_field(field, value, "a moment: a datetime, ms since the epoch, ISO 8601 text or '2d'")
    moment = window_ms(value, field)
    assert moment is not None  # only None gives None
    return moment


def alias_version_at(moves: Sequence[AliasChange], at: int) -> int | None:
    """The version an alias named at ``at``, from its moves (oldest first); None when it named none."""
    held = None
    for move in moves:
        if move.at > at:
            break
        held = move.to_version
    return held


def change_at(changes: Sequence[DeploymentChange], at: int) -> DeploymentChange | None:
    """The deployment change in force at ``at`` (the last one at or before it), None before the creation."""
    found = None
    for change in changes:
        if change.at > at:
            break
        found = change
    return found


def route_uris(routes: dict[str, Any]) -> list[tuple[str, str]]:
    """``(role, uri)`` of every route in a change's routes JSON: primary, shadows, canaries."""
    out = [("primary", str(routes["primary"]))] if routes.get("primary") else []
    out += [("shadow", str(uri)) for uri in routes.get("shadows") or ()]
    out += [("canary", str(pair[0])) for pair in routes.get("canaries") or ()]
    return out


class AliasHistories:
    """Alias moves per model, read once per model (a query touches the same few aliases many times)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._moves: dict[str, list[AliasChange]] = {}

    def moves(self, model: str, alias: str) -> list[AliasChange]:
        if model not in self._moves:
            self._moves[model] = self.ctx.store.models.alias_history(model)
        return [m for m in self._moves[model] if m.alias == alias]

    def version_uri_at(self, uri: str, at: int) -> str | None:
        """The version URI ``uri`` named at ``at``: itself for a version URI, through the alias history for an alias."""
        name, version, alias = parse_model_uri(uri)
        if alias is None:
            return uri if version is not None else None
        held = alias_version_at(self.moves(name, alias), at)
        return None if held is None else f"models:/{name}/{held}"


@dataclass(frozen=True, slots=True)
class ServedAt:
    """What ``target`` served at ``at``: its routes then (``primary`` None: nothing, as the alias named no version or the
    deployment did not exist yet), each resolved to the version it named (``resolved``: route URI -> version URI or
    None), and the change in force (an ``AliasChange`` or a ``DeploymentChange``)."""

    target: str
    at: int
    kind: str  # "alias" or "deployment"
    primary: str | None
    shadows: tuple[str, ...] = ()
    canaries: tuple[tuple[str, float], ...] = ()
    resolved: dict[str, str | None] = field(default_factory=dict)
    change: AliasChange | DeploymentChange | None = None

    @property
    def version_uri(self) -> str | None:
        """The version that answered (the primary's)."""
        return None if self.primary is None else self.resolved.get(self.primary)

    def to_json(self) -> dict[str, Any]:
        """The answer as JSON-ready data: the routes then, each resolved, the version that answered, the change."""
        return {
            "target": self.target, "at": self.at, "kind": self.kind, "primary": self.primary,
            "shadows": list(self.shadows), "canaries": [[u, w] for u, w in self.canaries], "resolved": self.resolved,
            "version": self.version_uri, "change": to_plain(self.change),
        }  # fmt: skip


def served_at(target: str, at: Any, ctx: Context | None = None) -> ServedAt:
    """What ``target`` served at ``at``: ``models:/NAME@ALIAS`` (the alias history) or a deployment name (its change
    history, aliases resolved at that moment through their history). ``NotFound`` for an unknown model or
    deployment; ``InvalidArgument`` for a version URI (a version always serves itself) or a bad moment."""
    ctx = resolve(ctx)
    moment = at_ms(at)
    if isinstance(target, str) and target.startswith("models:/"):
        name, _, alias = parse_model_uri(target, "target")
        if alias is None:
            raise InvalidArgument.for_field("target", target, "models:/NAME@ALIAS or a deployment name")
        ctx.store.models.list_versions(name)  # NotFound for an unknown model
        moves = [m for m in ctx.store.models.alias_history(name, alias)]
        held = alias_version_at(moves, moment)
        in_force = [m for m in moves if m.at <= moment]
        version = None if held is None else f"models:/{name}/{held}"
        return ServedAt(target, moment, "alias", target if version else None, resolved={target: version},
                        change=in_force[-1] if in_force else None)  # fmt: skip
    name = check_name(target, "target")
    changes = ctx.store.deployments.history(name)  # NotFound for an unknown deployment
    change = change_at(changes, moment)
    if change is None:
        return ServedAt(name, moment, "deployment", None)
    routes, aliases = change.to_routes, AliasHistories(ctx)
    resolved = {uri: aliases.version_uri_at(uri, moment) for _, uri in route_uris(routes)}
    canaries = tuple((str(pair[0]), float(pair[1])) for pair in routes.get("canaries") or ())
    return ServedAt(name, moment, "deployment", str(routes["primary"]), tuple(routes.get("shadows") or ()), canaries,
                    resolved, change)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Routed:
    """A version routed by a deployment: as which roles, from when (``since``), and whether it still is (``now``)."""

    deployment: str
    version_uri: str
    roles: tuple[str, ...]
    since: int
    now: bool
    via: tuple[str, ...] = ()  # the route URIs that named it (an alias URI when it followed an alias)

    def to_json(self) -> dict[str, Any]:
        """The routed version as JSON-ready data, one key per field."""
        return to_plain(self)  # type: ignore[no-any-return]


def _alias_spans(moves: Sequence[AliasChange]) -> list[tuple[int, int, int | None]]:
    """``(start, end, version)`` of each stretch an alias named one version."""
    return [(m.at, moves[i + 1].at if i + 1 < len(moves) else _FOREVER, m.to_version) for i, m in enumerate(moves)]


def routed_versions(changes: Sequence[DeploymentChange], aliases: AliasHistories,
                    wanted: Callable[[str], bool] = lambda uri: True) -> dict[str, Routed]:  # fmt: skip
    """Every version a deployment routed over its history (``wanted`` filters version URIs), by version URI: a
    version route for as long as the change that set it was in force, an alias route for each stretch of that time
    the alias named the version."""
    found: dict[str, dict[str, Any]] = {}
    for i, change in enumerate(changes):
        start = change.at
        end = changes[i + 1].at if i + 1 < len(changes) else _FOREVER
        for role, uri in route_uris(change.to_routes):
            name, version, alias = parse_model_uri(uri)
            if alias is None:
                spans = [(start, end, version)]
            else:
                spans = [(max(s, start), min(e, end), v) for s, e, v in _alias_spans(aliases.moves(name, alias))
                         if s < end and e > start]  # fmt: skip
            for span_start, span_end, held in spans:
                if held is None or not wanted(f"models:/{name}/{held}"):
                    continue
                entry = found.setdefault(f"models:/{name}/{held}", {"roles": [], "since": span_start, "now": False, "via": []})
                entry["since"] = min(entry["since"], span_start)
                entry["now"] = entry["now"] or span_end == _FOREVER
                for key, value in (("roles", role), ("via", uri)):
                    if value not in entry[key]:
                        entry[key].append(value)
    deployment = changes[0].deployment if changes else ""
    return {uri: Routed(deployment, uri, tuple(e["roles"]), e["since"], e["now"], tuple(e["via"])) for uri, e in found.items()}
