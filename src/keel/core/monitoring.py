"""Monitoring entities: monitors of deployments, their per-window results, the alerts their rules raise and the
actions taken, and the leases that make one scheduler replica run a job.

- ``Monitor``: a deployment watched per window (``window_ms``) against a reference (the training dataset's
  reference such as ``churn-train@3``, or None: the primary model's first training dataset), with alert rules.
- ``MonitorWindow``: what one window gave: every monitored number under a flat name (``drift.share``,
  ``quality.<column>.missing_share``, ``health.latency_p99_ms``, ``performance.realised.accuracy``,
  ``performance.estimated.accuracy``, ...), its row counts and the content address of its mergeable profile (a
  blob in the artifact store). A window is keyed by ``(monitor, start_ms)``: computed again (late labels), it
  replaces the earlier result.
- ``AlertRule``: ``expression`` over those names (``keel.core.alert_rules`` parses it), for ``for_windows``
  consecutive windows, a ``severity``, and the ``actions`` to take when it fires.
- ``Alert``: one firing of a rule, de-duplicated: while it fires, later breaching windows update the same alert
  (``last_window_ms``, ``value``, ``windows``); once a window is fine again it is resolved.
- ``ActionRecord``: what an action did for an alert (``ok`` or ``failed``, with its detail), once per
  ``(alert_id, action)``: retried, an action updates its record instead of adding one.
- leases: ``(job, owner, until_ms)``, taken by one scheduler replica at a time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.predictions import check_count as _int
from keel.core.validation import check_name

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
ALERT_STATES: tuple[str, ...] = ("firing", "resolved")
ACTION_STATUSES: tuple[str, ...] = ("ok", "failed")
MAX_VALUES = 5_000  # monitored numbers per window: a few per feature
MAX_RULES = 100
MAX_TEXT = 2_000
MIN_WINDOW_MS = 1_000
_VALUE_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,300}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ACTION = re.compile(r"(log|rollback|retrain:[^\x00-\x1f\x7f\s]{1,200}|webhook:https?://[^\x00-\x1f\x7f\s]{1,1000})")


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    expression: str
    for_windows: int = 1
    severity: str = "warning"
    actions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expression": self.expression, "for_windows": self.for_windows,
                "severity": self.severity, "actions": list(self.actions)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertRule:
        if not isinstance(d, Mapping):
            raise InvalidArgument.for_field("rule", d, "an object with name, expression, for_windows, severity, actions")
        actions = d.get("actions", ())
        if isinstance(actions, str) or not isinstance(actions, Sequence):
            raise InvalidArgument.for_field("actions", actions, "a list of actions")
        return check_rule(cls(d.get("name"), d.get("expression"), d.get("for_windows", 1), d.get("severity", "warning"),  # type: ignore[arg-type]
                              tuple(actions)))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Monitor:
    name: str
    deployment: str
    window_ms: int = 3_600_000
    reference: str | None = None
    rules: tuple[AlertRule, ...] = ()
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class MonitorWindow:
    monitor: str
    start_ms: int
    end_ms: int
    values: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    labelled_rows: int = 0
    profile_sha256: str | None = None
    computed_at: int = 0


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    monitor: str
    rule: str
    severity: str
    state: str
    first_window_ms: int
    last_window_ms: int
    value: float | None
    message: str
    windows: int = 1
    created_at: int = 0
    resolved_at: int | None = None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    alert_id: int
    action: str
    status: str
    detail: str = ""
    attempts: int = 1
    at: int = 0


# checks: the same for every backend ---------------------------------------------------------------------------------


def _text(value: Any, field_: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (not empty and not value.strip()):
        raise InvalidArgument.for_field(field_, value, f"{'' if empty else 'non-empty '}text of at most {MAX_TEXT} characters")
    return value


def _finite(value: Any) -> bool:
    """A finite number (not a bool); an int too large for a float is not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_action(action: Any) -> str:
    if not isinstance(action, str) or _ACTION.fullmatch(action) is None:
        raise InvalidArgument.for_field("action", action, "log, rollback, retrain:PIPELINE or webhook:http(s)://URL")
    return action


def check_rule(rule: Any) -> AlertRule:
    if not isinstance(rule, AlertRule):
        raise InvalidArgument.for_field("rule", rule, "an AlertRule")
    from keel.core.alert_rules import check_expression  # here: alert_rules imports this module's entities

    check_name(rule.name, "rule name")
    check_expression(_text(rule.expression, "expression", empty=False))
    if _int(rule.for_windows, "for_windows", low=1) > 1000:
        raise InvalidArgument.for_field("for_windows", rule.for_windows, "1 to 1000 consecutive windows")
    if rule.severity not in SEVERITIES:
        raise InvalidArgument.for_field("severity", rule.severity, " or ".join(SEVERITIES))
    if not isinstance(rule.actions, tuple):
        raise InvalidArgument.for_field("actions", rule.actions, "a tuple of actions")
    for action in rule.actions:
        check_action(action)
    return rule


def check_monitor(monitor: Any) -> Monitor:
    if not isinstance(monitor, Monitor):
        raise InvalidArgument.for_field("monitor", monitor, "a Monitor")
    check_name(monitor.name, "monitor")
    check_name(monitor.deployment, "deployment")
    if _int(monitor.window_ms, "window_ms") < MIN_WINDOW_MS:
        raise InvalidArgument.for_field("window_ms", monitor.window_ms, f"at least {MIN_WINDOW_MS} ms")
    if monitor.reference is not None:
        _text(monitor.reference, "reference", empty=False)
    if not isinstance(monitor.rules, tuple) or len(monitor.rules) > MAX_RULES:
        raise InvalidArgument.for_field("rules", monitor.rules, f"a tuple of at most {MAX_RULES} rules")
    names = [check_rule(rule).name for rule in monitor.rules]
    if len(set(names)) != len(names):
        raise InvalidArgument.for_field("rules", names, "rules with distinct names")
    return monitor


def check_window(window: Any) -> MonitorWindow:
    if not isinstance(window, MonitorWindow):
        raise InvalidArgument.for_field("window", window, "a MonitorWindow")
    check_name(window.monitor, "monitor")
    start, end = _int(window.start_ms, "start_ms"), _int(window.end_ms, "end_ms")
    if start >= end:
        raise InvalidArgument.for_field("end_ms", end, f"after start_ms ({start})")
    _int(window.rows, "rows")
    _int(window.labelled_rows, "labelled_rows")
    if window.profile_sha256 is not None and (
        not isinstance(window.profile_sha256, str) or _SHA256.fullmatch(window.profile_sha256) is None
    ):
        raise InvalidArgument.for_field("profile_sha256", window.profile_sha256, "64 lowercase hex characters, or None")
    if not isinstance(window.values, Mapping) or len(window.values) > MAX_VALUES:
        raise InvalidArgument.for_field("values", type(window.values).__name__, f"a mapping of at most {MAX_VALUES} numbers")
    for name, value in window.values.items():
        if not isinstance(name, str) or _VALUE_NAME.fullmatch(name) is None:
            raise InvalidArgument.for_field("value name", name, "1 to 300 printable characters")
        if not _finite(value):
            raise InvalidArgument.for_field(f"values[{name!r}]", value, "a finite number")
    return window


def check_alert(alert: Any) -> Alert:
    """An alert as ``open_alert`` takes it (``id``, ``created_at``, ``resolved_at``, ``windows`` are the store's)."""
    if not isinstance(alert, Alert):
        raise InvalidArgument.for_field("alert", alert, "an Alert")
    check_name(alert.monitor, "monitor")
    check_name(alert.rule, "rule")
    if alert.severity not in SEVERITIES:
        raise InvalidArgument.for_field("severity", alert.severity, " or ".join(SEVERITIES))
    first, last = _int(alert.first_window_ms, "first_window_ms"), _int(alert.last_window_ms, "last_window_ms")
    if first > last:
        raise InvalidArgument.for_field("last_window_ms", last, f"at least first_window_ms ({first})")
    if alert.value is not None and not _finite(alert.value):
        raise InvalidArgument.for_field("value", alert.value, "a finite number or None")
    _text(alert.message, "message")
    return alert


def check_action_record(record: Any) -> ActionRecord:
    if not isinstance(record, ActionRecord):
        raise InvalidArgument.for_field("record", record, "an ActionRecord")
    _int(record.alert_id, "alert_id", low=1)
    check_action(record.action)
    if record.status not in ACTION_STATUSES:
        raise InvalidArgument.for_field("status", record.status, " or ".join(ACTION_STATUSES))
    _text(record.detail, "detail")
    _int(record.attempts, "attempts", low=1)
    return record


def check_lease(job: Any, owner: Any, ttl_ms: Any) -> tuple[str, str, int]:
    for name, value in (("job", job), ("owner", owner)):
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise InvalidArgument.for_field(name, value, "non-empty text of at most 200 characters")
    if not 1 <= _int(ttl_ms, "ttl_ms") <= 86_400_000:
        raise InvalidArgument.for_field("ttl_ms", ttl_ms, "1 ms to one day")
    return job, owner, ttl_ms
