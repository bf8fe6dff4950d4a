"""Running a monitor: every whole window not yet computed, recent windows again when their labels arrive, then
the rules on the series, the alerts they fire or resolve, and the actions of the alerts that fire.

>>> summary = run_monitor("churn-hourly")            # what a scheduler calls every window   # doctest: +SKIP

Windows are aligned on multiples of the window length since the epoch (hourly windows start on the hour), so
replicas and reruns agree on them. Each window's rows are read once into its profile (a blob in the artifact
store, mergeable into days and weeks); when labels arrive later, only the window's performance is computed again
(its predictions and probabilities read with the labels), and the stored result replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from keel.context import Context, resolve
from keel.core.clock import now_ms as clock_ms
from keel.core.errors import InvalidArgument, KeelError
from keel.core.monitoring import ActionRecord, Alert, AlertRule, Monitor, MonitorWindow
from keel.monitor.estimation import Estimator
from keel.monitor.profiles import Profile, merge_profiles
from keel.monitor.windows import WindowResult, evaluate_window

__all__ = ["RETRAINERS", "RunSummary", "load_profile", "profile_between", "retrainer", "run_monitor"]

log = logging.getLogger(__name__)
RELABEL_WINDOWS = 48  # recent windows whose performance is computed again when their labels arrive
RULE_HISTORY = 50  # windows a rule sees (for_windows is at most 1000, but rules look at the newest ones)
ACTOR = "keel monitor"

Retrainer = Callable[[Monitor, Alert, Context], str]
RETRAINERS: dict[str, Retrainer] = {}
"""Retraining pipelines by name, registered by the process that runs monitors (``retrainer``). A rule's action
``retrain:NAME`` only chooses among them: the store names a pipeline, it never says what code to import."""


def retrainer(name: str) -> Callable[[Retrainer], Retrainer]:
    """Register ``fn(monitor, alert, ctx) -> model URI`` as the pipeline ``retrain:NAME`` runs: it retrains on the
    newest data, gates the result, and returns the registered version, which then joins the deployment as a
    shadow (never as its primary)."""

    def register(fn: Retrainer) -> Retrainer:
        RETRAINERS[name] = fn
        return fn

    return register


@dataclass
class RunSummary:
    monitor: str
    computed: list[MonitorWindow] = field(default_factory=list)  # new windows
    relabelled: list[MonitorWindow] = field(default_factory=list)  # windows whose performance was computed again
    fired: list[Alert] = field(default_factory=list)  # alerts that started firing
    resolved: list[Alert] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    newest: WindowResult | None = None  # the last window computed now, with its drift details


def run_monitor(
    name: str,
    *,
    until_ms: int | None = None,
    ctx: Context | None = None,
    estimator: Estimator | None = None,
    max_windows: int = 24 * 7,
    on_window: Callable[[MonitorWindow], None] | None = None,
) -> RunSummary:
    """Compute the monitor's whole windows that end by ``until_ms`` (now) and are not stored yet (at most
    ``max_windows``, oldest first), recompute recent windows whose labels arrived since, then apply the rules."""
    ctx = resolve(ctx)
    monitor = ctx.store.monitors.get_monitor(name)
    until = clock_ms() if until_ms is None else until_ms
    summary = RunSummary(name)
    stored = ctx.store.monitors.windows(name)
    series = list(stored)
    baseline = next((load_profile(w, ctx) for w in stored if w.rows), None)  # the first window with traffic
    for start in _due_windows(monitor, stored, until, ctx, max_windows):
        window, result = _compute(monitor, start, ctx, estimator, baseline)
        if baseline is None and window.rows:
            baseline = result.profile
        summary.computed.append(window)
        summary.newest = result
        series.append(window)
        _apply_rules(monitor, series, ctx, summary)  # window by window: an alert that a later window resolves still fired
        if on_window is not None:
            on_window(window)
    summary.relabelled = _relabel(monitor, stored, ctx, estimator)
    if summary.relabelled:
        _apply_rules(monitor, ctx.store.monitors.windows(monitor.name), ctx, summary)
    return summary


def _due_windows(monitor: Monitor, stored: list[MonitorWindow], until: int, ctx: Context, limit: int) -> list[int]:
    size = monitor.window_ms
    if stored:
        first = stored[-1].end_ms
    else:
        files = ctx.store.predictions.log_files(monitor.deployment)
        if not files:
            return []
        first = min(f.start_ms for f in files) // size * size
    starts = list(range(first, until - size + 1, size))
    return starts[-limit:] if limit else starts


def _compute(
    monitor: Monitor, start: int, ctx: Context, estimator: Estimator | None, baseline: Profile | None
) -> tuple[MonitorWindow, WindowResult]:
    end = start + monitor.window_ms
    result = evaluate_window(monitor.deployment, since=start, until=end - 1, reference=monitor.reference,
                             estimator=estimator, baseline=baseline, ctx=ctx)  # fmt: skip
    blob = ctx.artifacts.put_bytes(orjson.dumps(result.profile.to_dict()))
    window = MonitorWindow(
        monitor=monitor.name, start_ms=start, end_ms=end, values=_finite(result.values()), rows=result.profile.rows,
        labelled_rows=int(result.performance.get("labelled_rows") or 0), profile_sha256=blob.sha256,
    )  # fmt: skip
    return ctx.store.monitors.put_window(window), result


def _finite(values: dict[str, float]) -> dict[str, float]:
    import math

    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and math.isfinite(v)}


def load_profile(window: MonitorWindow, ctx: Context | None = None) -> Profile | None:
    """The window's stored profile (merge several with ``keel.monitor.merge_profiles``)."""
    if window.profile_sha256 is None:
        return None
    return Profile.from_dict(orjson.loads(resolve(ctx).artifacts.get_bytes(window.profile_sha256)))


def profile_between(
    monitor: str, since_ms: int | None = None, until_ms: int | None = None, *, ctx: Context | None = None
) -> Profile:
    """One profile of the monitor's stored windows starting in ``[since_ms, until_ms]``: hours into a day or a week,
    merged from their sketches, never from the rows."""
    ctx = resolve(ctx)
    windows = ctx.store.monitors.windows(monitor, since_ms=since_ms, until_ms=until_ms)
    return merge_profiles(p for p in (load_profile(w, ctx) for w in windows) if p is not None)


def _relabel(monitor: Monitor, stored: list[MonitorWindow], ctx: Context, estimator: Estimator | None) -> list[MonitorWindow]:
    """Recent windows computed before some of their labels arrived: their performance again (the profile stays)."""
    recent = stored[-RELABEL_WINDOWS:]
    if not recent:
        return []
    since = min(w.computed_at for w in recent)
    arrived = ctx.store.predictions.labels(monitor.deployment, since_ms=since)
    if not arrived:
        return []
    newest_label = max(label.at for label in arrived)
    out = []
    for window in recent:
        if window.computed_at > newest_label:
            continue
        result = evaluate_window(monitor.deployment, since=window.start_ms, until=window.end_ms - 1, reference=None,
                                 estimator=estimator, ctx=ctx, profile=False)  # fmt: skip
        labelled = int(result.performance.get("labelled_rows") or 0)
        if labelled == window.labelled_rows:
            continue
        values = {k: v for k, v in window.values.items() if not k.startswith("performance.")}
        values.update({k: v for k, v in _finite(result.values()).items() if k.startswith("performance.")})
        updated = MonitorWindow(window.monitor, window.start_ms, window.end_ms, values, window.rows, labelled,
                                window.profile_sha256)  # fmt: skip
        out.append(ctx.store.monitors.put_window(updated))
    return out


def _apply_rules(monitor: Monitor, series: list[MonitorWindow], ctx: Context, summary: RunSummary) -> None:
    """The rules at the newest window of ``series`` (oldest first): alerts fired (and their actions) or resolved."""
    from keel.core.alert_rules import evaluate

    if not series:
        return
    baseline, recent = series[0], series[-RULE_HISTORY:]
    for rule in monitor.rules:
        verdict = evaluate(rule, recent, baseline)
        if verdict.fires:
            alert = Alert(0, monitor.name, rule.name, rule.severity, "firing", recent[-1].start_ms, recent[-1].start_ms,
                          verdict.value, verdict.message)  # fmt: skip
            alert, created = ctx.store.monitors.open_alert(alert)
            if created:
                summary.fired.append(alert)
                summary.actions.extend(_act(monitor, rule, alert, ctx))
        elif verdict.resolves:
            resolved = ctx.store.monitors.resolve_alert(monitor.name, rule.name)
            if resolved is not None:
                summary.resolved.append(resolved)


def _act(monitor: Monitor, rule: AlertRule, alert: Alert, ctx: Context) -> list[ActionRecord]:
    """Each of the rule's actions for a new alert, recorded whatever happens (one failing never stops the rest)."""
    records = []
    for action in rule.actions:
        try:
            status, detail = _run_action(action, monitor, alert, ctx)
        except (KeelError, OSError) as exc:
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a retraining pipeline's own error: recorded, the loop goes on
            log.exception("keel: action %s of alert %d failed", action, alert.id)
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        records.append(ctx.store.monitors.record_action(ActionRecord(alert.id, action, status, detail[:2000])))
    return records


def _run_action(action: str, monitor: Monitor, alert: Alert, ctx: Context) -> tuple[str, str]:
    reason = f"alert {alert.id} ({monitor.name}/{alert.rule}): {alert.message}"[:500]
    if action == "log":
        log.warning("keel: %s", reason)
        return "ok", "logged"
    if action == "rollback":
        change = ctx.store.deployments.rollback(monitor.deployment, actor=ACTOR, reason=reason)
        before = (change.from_routes or {}).get("primary")
        return "ok", f"rolled back {monitor.deployment}: primary {before} -> {change.to_routes.get('primary')}"
    if action.startswith("webhook:"):
        from keel.monitor.webhook import idempotency_key, post_webhook

        payload = {"alert": _alert_json(alert), "monitor": monitor.name, "deployment": monitor.deployment}
        result = post_webhook(action.removeprefix("webhook:"), payload, idempotency_key=idempotency_key(alert.id, action))
        return result.status, result.detail
    if action.startswith("retrain:"):
        name = action.removeprefix("retrain:")
        fn = RETRAINERS.get(name)
        if fn is None:
            known = ", ".join(sorted(RETRAINERS)) or "none"
            raise InvalidArgument.for_field("retrain pipeline", name, f"one this process registered ({known})")
        uri = fn(monitor, alert, ctx)
        shadows = list(ctx.store.deployments.get(monitor.deployment).shadows)
        if uri not in shadows:
            ctx.store.deployments.set_routes(monitor.deployment, shadows=[*shadows, uri], actor=ACTOR, reason=reason)
        return "ok", f"retrained {uri}: a shadow of {monitor.deployment}"
    raise InvalidArgument.for_field("action", action, "log, rollback, retrain:PIPELINE or webhook:URL")


def _alert_json(alert: Alert) -> dict[str, Any]:
    fields = ("id", "rule", "severity", "state", "value", "message", "first_window_ms", "last_window_ms")
    return {name: getattr(alert, name) for name in fields}
