"""The monitor store interface: monitors, their window results as a time series, alerts, actions, leases.

Contract (checked by ``keel.testing.monitor_contract`` on SQLite, PostgreSQL and REST): one transaction per call;
bad input writes nothing (``keel.core.monitoring``'s checks, the same on every backend); raises only
``keel.core.errors`` types. Writes that a scheduler may retry are idempotent: a window is keyed by
``(monitor, start_ms)`` (again, it replaces the earlier result), a firing alert by ``(monitor, rule)`` (again,
it updates the open alert), an action record by ``(alert_id, action)`` (again, it updates the record and counts
the attempt).
"""

from __future__ import annotations

import abc

from keel.core.monitoring import ActionRecord, Alert, Monitor, MonitorWindow

__all__ = ["MonitorStore"]


class MonitorStore(abc.ABC):
    # monitors -------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_monitor(self, monitor: Monitor) -> Monitor:
        """Store a new monitor (``created_at``/``updated_at`` set by the store). ``AlreadyExists`` if the name is
        taken, ``NotFound`` if the deployment does not exist."""

    @abc.abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """``NotFound`` if there is none."""

    @abc.abstractmethod
    def list_monitors(self, deployment: str | None = None) -> list[Monitor]:
        """By name; only ``deployment``'s when given."""

    @abc.abstractmethod
    def update_monitor(self, monitor: Monitor) -> Monitor:
        """Replace the monitor of that name (its rules, window, reference; not its deployment: ``InvalidArgument``)."""

    # windows ----------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_window(self, window: MonitorWindow) -> MonitorWindow:
        """Store a window's result (``computed_at`` set by the store), replacing an earlier result of the same
        ``(monitor, start_ms)``. ``NotFound`` if the monitor does not exist."""

    @abc.abstractmethod
    def windows(self, monitor: str, *, since_ms: int | None = None, until_ms: int | None = None) -> list[MonitorWindow]:
        """The windows with ``since_ms <= start_ms <= until_ms`` (either end open), oldest first."""

    # alerts and actions -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def open_alert(self, alert: Alert) -> tuple[Alert, bool]:
        """Fire ``alert`` (its ``id``, ``windows``, ``created_at`` and ``resolved_at`` ignored): a new alert, or,
        when the rule already has one firing, that alert with ``last_window_ms``/``value``/``message`` updated and
        ``windows`` counting distinct breaching windows. Returns ``(alert, created)``."""

    @abc.abstractmethod
    def resolve_alert(self, monitor: str, rule: str) -> Alert | None:
        """Resolve the rule's firing alert (``resolved_at`` set); None when none fires."""

    @abc.abstractmethod
    def alerts(self, *, monitor: str | None = None, state: str | None = None, since_ms: int | None = None) -> list[Alert]:
        """Newest first; ``since_ms`` on ``created_at``."""

    @abc.abstractmethod
    def record_action(self, record: ActionRecord) -> ActionRecord:
        """Record what an action did for an alert (``at`` set by the store); the same ``(alert_id, action)`` again
        replaces status and detail and adds one to ``attempts``. ``NotFound`` if the alert does not exist."""

    @abc.abstractmethod
    def actions(self, alert_id: int) -> list[ActionRecord]:
        """The alert's action records, by action."""

    # leases -------------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, job: str, owner: str, ttl_ms: int) -> bool:
        """Take (or renew, for the same owner) the lease on ``job`` until now + ``ttl_ms``; False while another
        owner holds an unexpired lease. Atomic: of several replicas asking at once, one gets it."""

    @abc.abstractmethod
    def release_lease(self, job: str, owner: str) -> None:
        """Give the lease back if ``owner`` holds it (nothing otherwise)."""
