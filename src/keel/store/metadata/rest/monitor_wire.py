"""The monitor store on the wire: request bodies (pydantic) and JSON shapes of monitors, windows, alerts and action
records, shared by the REST client and the server (the table's entries are in ``endpoints.MonitorEndpoints``).

The client checks an entity (``keel.core.monitoring``) before it sends it; the server builds the entity from the
validated body and its store checks it again: a server never trusts its clients. Window values and alert values
are finite numbers, so they travel as plain JSON numbers (a NaN or an infinity is refused on both sides).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from keel.core.monitoring import (
    ActionRecord,
    Alert,
    AlertRule,
    Monitor,
    MonitorWindow,
    check_action_record,
    check_alert,
    check_monitor,
    check_window,
)

# a finite number (an integer too), not text or a boolean that reads as one, nor an integer beyond a float
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


# request bodies -----------------------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertRuleFields(_Body):
    name: str
    expression: str
    for_windows: StrictInt = 1
    severity: str = "warning"
    actions: list[str] = Field(default_factory=list)


class MonitorFields(_Body):
    name: str
    deployment: str
    window_ms: StrictInt = 3_600_000
    reference: str | None = None
    rules: list[AlertRuleFields] = Field(default_factory=list)
    created_at: StrictInt = 0  # the server's store sets both
    updated_at: StrictInt = 0


class MonitorIn(_Body):
    monitor: MonitorFields


class WindowFields(_Body):
    monitor: str
    start_ms: StrictInt
    end_ms: StrictInt
    values: dict[str, Number] = Field(default_factory=dict)
    rows: StrictInt = 0
    labelled_rows: StrictInt = 0
    profile_sha256: str | None = None
    computed_at: StrictInt = 0  # the server's store sets it


class MonitorWindowIn(_Body):
    window: WindowFields


class AlertFields(_Body):
    id: StrictInt = 0  # the server's store ignores id, windows, created_at and resolved_at
    monitor: str
    rule: str
    severity: str
    state: str = "firing"
    first_window_ms: StrictInt
    last_window_ms: StrictInt
    value: Number | None = None
    message: str = ""
    windows: StrictInt = 1
    created_at: StrictInt = 0
    resolved_at: StrictInt | None = None


class AlertIn(_Body):
    alert: AlertFields


class ActionRecordFields(_Body):
    alert_id: StrictInt
    action: str
    status: str
    detail: str = ""
    attempts: StrictInt = 1
    at: StrictInt = 0  # the server's store sets it


class ActionRecordIn(_Body):
    record: ActionRecordFields


class LeaseIn(_Body):
    job: str
    owner: str
    ttl_ms: StrictInt


class LeaseReleaseIn(_Body):
    job: str
    owner: str


# JSON shapes --------------------------------------------------------------------------------------------------------


def monitor_to_json(m: Monitor) -> dict[str, Any]:
    return {
        "name": m.name,
        "deployment": m.deployment,
        "window_ms": m.window_ms,
        "reference": m.reference,
        "rules": [r.to_dict() for r in m.rules],
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    }


def monitor_from_json(d: dict[str, Any]) -> Monitor:
    """A monitor from JSON (a body the schema validated, or a server's answer); its rules checked on the way."""
    rules = tuple(AlertRule.from_dict(r) for r in d.get("rules", ()))
    return Monitor(**{**d, "rules": rules})


def checked_monitor_to_json(m: Monitor) -> dict[str, Any]:
    return monitor_to_json(check_monitor(m))


def window_to_json(w: MonitorWindow) -> dict[str, Any]:
    return {
        "monitor": w.monitor,
        "start_ms": w.start_ms,
        "end_ms": w.end_ms,
        "values": dict(w.values),
        "rows": w.rows,
        "labelled_rows": w.labelled_rows,
        "profile_sha256": w.profile_sha256,
        "computed_at": w.computed_at,
    }


def window_from_json(d: dict[str, Any]) -> MonitorWindow:
    return MonitorWindow(**{**d, "values": {k: float(v) for k, v in d["values"].items()}})


def checked_window_to_json(w: MonitorWindow) -> dict[str, Any]:
    return window_to_json(check_window(w))


def alert_to_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "monitor": a.monitor,
        "rule": a.rule,
        "severity": a.severity,
        "state": a.state,
        "first_window_ms": a.first_window_ms,
        "last_window_ms": a.last_window_ms,
        "value": a.value,
        "message": a.message,
        "windows": a.windows,
        "created_at": a.created_at,
        "resolved_at": a.resolved_at,
    }


def alert_from_json(d: dict[str, Any]) -> Alert:
    return Alert(**{**d, "value": None if d["value"] is None else float(d["value"])})


def checked_alert_to_json(a: Alert) -> dict[str, Any]:
    return alert_to_json(check_alert(a))


def opened_to_json(opened: tuple[Alert, bool]) -> dict[str, Any]:
    return {"alert": alert_to_json(opened[0]), "created": opened[1]}


def opened_from_json(d: dict[str, Any]) -> tuple[Alert, bool]:
    return alert_from_json(d["alert"]), bool(d["created"])


def action_to_json(r: ActionRecord) -> dict[str, Any]:
    return {"alert_id": r.alert_id, "action": r.action, "status": r.status, "detail": r.detail, "attempts": r.attempts,
            "at": r.at}  # fmt: skip


def action_from_json(d: dict[str, Any]) -> ActionRecord:
    return ActionRecord(**d)


def checked_action_to_json(r: ActionRecord) -> dict[str, Any]:
    return action_to_json(check_action_record(r))
