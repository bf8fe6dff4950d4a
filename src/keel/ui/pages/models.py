"""UI pages of the model registry: every model with its aliases; one model with its versions, the history of its
aliases on a timeline, the card and the lineage of a version; and the one action, moving an alias (promote through
the gates, or roll back to the version it held before), for those ``Caller.may_promote`` allows.

The action is checked twice, as the REST route is: ``authorize`` (policy line ``promote``), then the REST route's own
hook ``check_promotion`` (a protected model's bindings; a forced move of one needs an admin; the actor is the caller).
The store checks the gates and the holder in the transaction that moves the alias, and writes the audit event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from keel.core.errors import InvalidArgument
from keel.core.html import esc
from keel.core.models import AliasChange, ModelVersion
from keel.core.promotion import ANY_HOLDER
from keel.server.auth import caller_of
from keel.server.routes.models import check_promotion
from keel.ui.pages.datasets import lineage_view, readable_run, svg, ui_context
from keel.ui.templates import when

router = APIRouter(include_in_schema=False)

SIGNATURE_SHOWN = 8  # input columns listed before "and N more"


def holders(history: list[AliasChange]) -> dict[str, int]:
    """The version each alias points to now, from its history (oldest first); removed aliases are left out."""
    now: dict[str, int | None] = {}
    for change in history:
        now[change.alias] = change.to_version
    return {alias: version for alias, version in sorted(now.items()) if version is not None}


def rollback_target(history: list[AliasChange], alias: str) -> int | None:
    """The version ``alias`` held before its last move (what a rollback moves it back to), None when there is none."""
    moves = [c for c in history if c.alias == alias]
    if not moves or moves[-1].to_version is None:
        return None
    return moves[-1].from_version


@router.get("/ui/models")
def models(request: Request) -> HTMLResponse:
    """Every model: its latest version and flavor, and where each of its aliases points now."""
    store = request.app.state.store.models
    listed = [(m, holders(store.alias_history(m.name))) for m in sorted(store.list_models(), key=lambda m: m.name)]
    return page_of(request, "models.html", title="Models", models=listed)


@router.get("/ui/models/{name}")
def model(request: Request, name: str, version: int | None = None) -> HTMLResponse:
    """A model's versions (flavor, signature, metrics, source run, data), its alias history on a timeline, and the
    card and lineage of one version (``?version=``; default: the one ``production`` holds, else the latest)."""
    store = request.app.state.store
    versions = list(reversed(store.models.list_versions(name)))  # NotFound for an unknown model
    history = store.models.alias_history(name)
    now = holders(history)
    numbers = [v.version for v in versions]
    chosen = version if version in numbers else now.get("production", numbers[0])
    selected = next(v for v in versions if v.version == chosen)
    caller = caller_of(request)
    protected = bool(store.identity.bindings(model=name))
    may_force = not caller.authenticated or not protected or caller.may("admin")
    rows = [_version_row(request, v) for v in versions]
    aliases = [(alias, held, rollback_target(history, alias)) for alias, held in now.items()]
    return page_of(
        request, "models_detail.html", title=f"Model {name}", name=name, versions=rows, selected=selected,
        history=list(reversed(history)), timeline=svg(timeline_svg(history)), aliases=aliases, holders=now,
        can_promote=caller.may_promote(name, protected), may_force=may_force, protected=protected,
        card=_card(request, selected), lineage=lineage_view(request, _lineage(request, selected)),
        assessments=list(reversed(store.models.assessments(name, selected.version))),
    )  # fmt: skip


@router.get("/ui/models/{name}/{version}/assessments/{assessment_id}")
def assessment_report(request: Request, name: str, version: int, assessment_id: int) -> Response:
    """An assessment's report (the fairness report: per-group bars, disparities), sandboxed like every HTML
    artifact; 404 when the version has no such assessment or it kept no report."""
    from keel.ui.previews import ARTIFACT_CSP

    found = [a for a in request.app.state.store.models.assessments(name, version) if a.id == assessment_id]
    if not found or not found[0].artifact_sha256:
        return Response("not found", status_code=404, media_type="text/plain")
    data = request.app.state.artifacts.get_bytes(found[0].artifact_sha256)  # hash-checked by the artifact store
    return Response(data, media_type="text/html", headers={"content-security-policy": ARTIFACT_CSP,
                                                           "x-content-type-options": "nosniff"})  # fmt: skip


def page_of(request: Request, template: str, *, title: str, **context: Any) -> HTMLResponse:
    """A models page (the menu's Models entry lit)."""
    from keel.ui.respond import page

    return page(request, template, title=title, nav="models", **context)


def _version_row(request: Request, v: ModelVersion) -> dict[str, Any]:
    """One version as the versions table shows it."""
    from keel.core.datasets import parse_ref

    sig = v.signature or {}
    holdout = sig.get("holdout") if isinstance(sig.get("holdout"), str) else None
    data: list[tuple[str, str | None, bool]] = []
    for ref in [*v.datasets, *([holdout] if holdout else [])]:
        try:
            ds_name, number = parse_ref(ref)
        except InvalidArgument:
            data.append((ref, None, ref == holdout))
            continue
        link = f"/ui/datasets/{ds_name}/{number}" if number is not None else f"/ui/datasets/{ds_name}"
        data.append((ref, link, ref == holdout))
    run = v.source_run if v.source_run and readable_run(request, v.source_run) else None
    return {"v": v, "inputs": _side(sig.get("inputs")), "outputs": _side(sig.get("outputs")), "data": data, "run": run,
            "hidden_run": bool(v.source_run) and run is None, "metrics": sorted(v.metrics.items())}  # fmt: skip


def _side(spec: Any) -> dict[str, Any]:
    """One side of a signature (inputs or outputs) in words: its type and, for a frame, its columns."""
    if not isinstance(spec, dict):
        return {"summary": "-" if spec is None else str(spec), "columns": []}
    columns = [c for c in spec.get("columns", []) if isinstance(c, dict)]
    if columns:
        shown = [f"{c.get('name')} ({c.get('kind', c.get('type', '?'))})" for c in columns]
        return {"summary": f"{spec.get('type', 'frame')}: {len(columns)} columns", "columns": shown}
    parts = [str(spec.get(k)) for k in ("type", "dtype") if spec.get(k) is not None]
    if spec.get("shape") is not None:
        parts.append(str(spec["shape"]))
    return {"summary": " ".join(parts) or str(spec), "columns": []}


def _card(request: Request, v: ModelVersion) -> list[dict[str, Any]] | None:
    """The model card of ``v`` (``keel.registry.export.card_markdown``, the text ``keel models card`` writes) as
    sections of items; None when its source run belongs to a project the caller may not read (the card shows its
    params)."""
    from keel.registry.export import card_markdown

    if v.source_run and not readable_run(request, v.source_run):
        return None
    sections: list[dict[str, Any]] = [{"title": "", "items": []}]
    for line in card_markdown(v.name, v.version, ui_context(request)).splitlines():
        if line.startswith("# ") or not line.strip():
            continue
        if line.startswith("## "):
            sections.append({"title": line[3:], "items": []})
        elif line.startswith("- "):
            sections[-1]["items"].append(("item", line[2:]))
        else:
            placeholder = line.startswith("_") and line.endswith("_")
            sections[-1]["items"].append(("todo" if placeholder else "text", line.strip("_")))
    return [s for s in sections if s["title"] or s["items"]]


def _lineage(request: Request, v: ModelVersion) -> Any:
    """From data to deployment: the version's run, its training data to the raw sources, the aliases and deployments
    that route it (``keel.govern.lineage.model_lineage``)."""
    from keel.govern.lineage import model_lineage

    return model_lineage(v.uri, ui_context(request))


# the alias timeline ---------------------------------------------------------------------------------------------------

LANE, LEFT, RIGHT, TOP, WIDTH = 36, 120, 30, 26, 900
MARK_COLORS = {"gated": "#1a7f37", "forced": "#bf8700", "removed": "#8c959f", "set": "#0969da"}


def _mark_kind(change: AliasChange) -> str:
    if change.to_version is None:
        return "removed"
    return "forced" if change.forced else "gated" if change.gated else "set"


def timeline_svg(history: list[AliasChange], width: int = WIDTH) -> str:
    """The alias history as SVG: one lane per alias, a mark per move (its version; who, when, why and whether it
    was gated or forced on hover), the span each version held the alias as a bar. Every text escaped."""
    if not history:
        return ""
    lanes = list(dict.fromkeys(c.alias for c in history))
    start, end = min(c.at for c in history), max(c.at for c in history)
    if end == start:
        start, end = start - 60_000, end + 60_000
    inner = width - LEFT - RIGHT
    height = TOP + LANE * len(lanes) + 22

    def x(at: int) -> float:
        return LEFT + (at - start) / (end - start) * inner

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="timeline" '
             'font-family="system-ui,sans-serif">']  # fmt: skip
    for i, alias in enumerate(lanes):
        y = TOP + i * LANE + LANE / 2
        parts.append(f'<text x="{LEFT - 10}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{esc(alias)}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" stroke="#d0d7de"/>')
        moves = [c for c in history if c.alias == alias]
        for j, c in enumerate(moves):
            if c.to_version is None:
                continue
            until = x(moves[j + 1].at) if j + 1 < len(moves) else width - RIGHT
            parts.append(f'<rect x="{x(c.at):.1f}" y="{y - 4:.1f}" width="{max(until - x(c.at), 1):.1f}" height="8" '
                         f'fill="{MARK_COLORS[_mark_kind(c)]}" fill-opacity="0.18"/>')  # fmt: skip
        for c in moves:
            kind = _mark_kind(c)
            label = f"v{c.to_version}" if c.to_version is not None else "removed"
            was = f"v{c.from_version}" if c.from_version is not None else "nothing"
            gates = {"gated": f"gated ({len(c.checks or [])} checks passed)", "forced": "forced, no gates"}.get(kind, kind)
            tip = f"{alias}: {was} -> {label} by {c.actor} at {when(c.at)}, {gates}; why: {c.reason or '-'}"
            parts.append(
                f'<g class="move" data-kind="{kind}"><title>{esc(tip)}</title>'
                f'<circle cx="{x(c.at):.1f}" cy="{y:.1f}" r="6" fill="{MARK_COLORS[kind]}" stroke="#fff" stroke-width="1.5"/>'
                f'<text x="{x(c.at):.1f}" y="{y - 10:.1f}" font-size="11" text-anchor="middle">{esc(label)}</text></g>'
            )
    axis_y = TOP + LANE * len(lanes) + 14
    parts.append(f'<text x="{LEFT}" y="{axis_y}" font-size="10" fill="#656d76">{esc(when(start))}</text>')
    parts.append(
        f'<text x="{width - RIGHT}" y="{axis_y}" font-size="10" fill="#656d76" text-anchor="end">{esc(when(end))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# the action -----------------------------------------------------------------------------------------------------------


@router.post("/ui/actions/models/{name}/aliases/{alias}")
def move_alias(request: Request, name: str, alias: str, body: dict[str, Any]) -> dict[str, Any]:
    """Promote (``{"version": 3, "rules": [...], "require_valid_data": false, "force": false, "reason": "...",
    "expected_from": 2}``) or roll back (``{"rollback": true, "expected_from": 3}``: to the version the alias held
    before its last move; an ungated move, recorded as forced). Checked as the REST route checks it; the store
    refuses a failed gate (409 with the checks) or a stale page (409, another move came first)."""
    store = request.app.state.store
    reason = body.get("reason", "")
    expected = body.get("expected_from", ANY_HOLDER)
    if body.get("rollback") is True:
        target = rollback_target(store.models.alias_history(name), alias)
        if target is None:
            raise InvalidArgument(f"{name}@{alias} held no version before its last move: nothing to roll back to")
        note = reason if isinstance(reason, str) else ""
        kwargs: dict[str, Any] = {"name": name, "version": target, "force": True, "expected_from": expected,
                                  "reason": f"rollback to v{target}" + (f": {note}" if note else "")}  # fmt: skip
    else:
        rules = body.get("rules", [])
        if isinstance(rules, str):  # the form's text area: one rule a line
            rules = [line.strip() for line in rules.splitlines() if line.strip()]
        kwargs = {"name": name, "version": body.get("version"), "rules": rules, "expected_from": expected,
                  "require_valid_data": body.get("require_valid_data", False), "force": body.get("force", False),
                  "reason": reason}  # fmt: skip
    check_promotion(request, kwargs)  # the REST route's hook: protected models, forced moves, the actor
    model_name = kwargs.pop("name")
    version = kwargs.pop("version")
    change = store.models.move_alias(model_name, alias, version, **kwargs)
    return {"model": change.model, "alias": change.alias, "from_version": change.from_version,
            "to_version": change.to_version, "actor": change.actor, "gated": change.gated, "forced": change.forced,
            "checks": change.checks or []}  # fmt: skip
