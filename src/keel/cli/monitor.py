"""``keel monitor create|rule|run|status|alerts|report``: deployments watched per window, with alert rules.

>>> keel monitor create churn-hourly churn --window 1h --rule 'drift: drift.share > 0.3'    # doctest: +SKIP
>>> keel monitor rule churn-hourly errors 'health.latency_p99_ms > 50' --for 3 --severity critical --action rollback
>>> keel monitor run churn-hourly            # what `keel scheduler` does every window         # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store
from keel.cli.output import JSON_OPTION, console, esc, fmt_time, print_json
from keel.core.errors import InvalidArgument
from keel.core.monitoring import SEVERITIES, AlertRule, Monitor, MonitorWindow

app = typer.Typer(help="Monitors: drift, quality, health and performance of a deployment, window by window.",
                  no_args_is_help=True)  # fmt: skip

REFERENCE_HELP = "The training data (a dataset such as churn-train@3); default: the primary's first training dataset."


def _ctx() -> Any:
    from keel.context import current

    return current()


def _quick_rule(text: str) -> AlertRule:
    """``NAME: EXPRESSION`` (one window, severity warning, logged)."""
    name, sep, expression = text.partition(":")
    if not sep or not name.strip() or not expression.strip():
        raise InvalidArgument.for_field("--rule", text, "NAME: EXPRESSION, such as 'drift: drift.share > 0.3'")
    return _checked(AlertRule(name.strip(), expression.strip(), actions=("log",)))


def _checked(rule: AlertRule) -> AlertRule:
    from keel.core.alert_rules import check_expression
    from keel.core.monitoring import check_rule

    check_expression(rule.expression)
    return check_rule(rule)


def _rules_file(path: Path) -> list[AlertRule]:
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidArgument.for_field("--rules", str(path), f"a YAML or JSON list of rules ({exc})") from None
    if not isinstance(loaded, list):
        raise InvalidArgument.for_field(
            "--rules", str(path), "a list of rules (name, expression, for_windows, severity, actions)"
        )
    return [_checked(AlertRule.from_dict(item)) for item in loaded]


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Monitor name."),
    deployment: str = typer.Argument(..., help="The deployment it watches."),
    window: str = typer.Option("1h", help="Window length: 30s, 10m, 1h, 1d."),
    reference: str = typer.Option(None, help=REFERENCE_HELP),
    rule: list[str] = typer.Option([], "--rule", help="'NAME: EXPRESSION' (fires on one window; logged). Repeatable."),
    rules: Path = typer.Option(
        None, "--rules", help="A YAML file: a list of {name, expression, for_windows, severity, actions}."
    ),
) -> None:
    """A new monitor of DEPLOYMENT."""
    from keel.serve.predictions import duration_ms

    parsed = [_quick_rule(r) for r in rule] + (_rules_file(rules) if rules is not None else [])
    monitor = Monitor(name, deployment, duration_ms(window, "--window"), reference, tuple(parsed))
    made = _ctx().store.monitors.create_monitor(monitor)
    console.print(f"created monitor [bold]{esc(made.name)}[/] of {esc(made.deployment)}: windows of {window}, "
                  f"{len(made.rules)} rule(s)")  # fmt: skip


@app.command("rule")
def rule(
    monitor: str = typer.Argument(..., help="Monitor name."),
    name: str = typer.Argument(..., help="Rule name (a rule of that name is replaced)."),
    expression: str = typer.Argument(
        ..., help="Such as 'drift.share > 0.3' or 'performance.estimated.accuracy < baseline - 0.05'."
    ),
    for_windows: int = typer.Option(1, "--for", help="Consecutive windows it must hold for."),
    severity: str = typer.Option("warning", help=" or ".join(SEVERITIES)),
    action: list[str] = typer.Option(["log"], "--action", help="log, rollback, retrain:PIPELINE, webhook:URL. Repeatable."),
) -> None:
    """Add or replace one alert rule of MONITOR."""
    store = _ctx().store.monitors
    current = store.get_monitor(monitor)
    new = _checked(AlertRule(name, expression, for_windows, severity, tuple(action)))
    rules = (*(r for r in current.rules if r.name != name), new)
    store.update_monitor(Monitor(current.name, current.deployment, current.window_ms, current.reference, rules))
    console.print(f"{esc(monitor)}: rule {esc(name)} = {esc(expression)} for {for_windows} window(s), {severity}, "
                  f"then {esc(', '.join(action))}")  # fmt: skip


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Monitor name."),
    until: str = typer.Option(None, help="Compute windows ending by then (default: now)."),
) -> None:
    """Compute the monitor's windows up to now, recompute those whose labels arrived, apply the rules."""
    from keel.monitor.runner import run_monitor
    from keel.serve.predictions import window_ms

    summary = run_monitor(name, until_ms=window_ms(until, "--until"), ctx=_ctx())
    console.print(f"{esc(name)}: {len(summary.computed)} window(s) computed, {len(summary.relabelled)} recomputed "
                  "with late labels")  # fmt: skip
    for window in summary.computed[-10:]:
        console.print(f"  {_window_line(window)}")
    for alert in summary.fired:
        console.print(f"[red]alert {alert.id}[/] {esc(alert.rule)} ({alert.severity}): {esc(alert.message)}")
    for alert in summary.resolved:
        console.print(f"[green]resolved[/] alert {alert.id} {esc(alert.rule)}")
    for record in summary.actions:
        colour = "green" if record.status == "ok" else "red"
        console.print(f"  action {esc(_shown(record.action))}: [{colour}]{record.status}[/] {esc(record.detail)}")


def _shown(action: str) -> str:
    """An action as the terminal may show it: a webhook's URL often holds a token, so only its scheme and host."""
    if not action.startswith("webhook:"):
        return action
    from keel.monitor.webhook import target_of

    try:
        return f"webhook:{target_of(action.removeprefix('webhook:'))}/..."
    except InvalidArgument:
        return "webhook:(hidden)"


def _window_line(w: MonitorWindow) -> str:
    v = w.values
    parts = [f"{fmt_time(w.start_ms)}  {w.rows:,} rows"]
    if "drift.share" in v:
        parts.append(f"drift {v['drift.share']:.0%} of columns")
    for kind in ("realised", "estimated"):
        if f"performance.{kind}.accuracy" in v:
            parts.append(f"accuracy {v[f'performance.{kind}.accuracy']:.3f} ({kind})")
    return ", ".join(parts)


@app.command("status")
def status(deployment: str = typer.Option(None, help="Only this deployment's monitors."), as_json: bool = JSON_OPTION) -> None:
    """Every monitor: its newest window and the alerts firing."""
    require_store()
    store = _ctx().store.monitors
    monitors = store.list_monitors(deployment)
    if as_json:
        print_json([{"monitor": m, "newest_window": (store.windows(m.name) or [None])[-1],
                     "firing": store.alerts(monitor=m.name, state="firing")} for m in monitors])  # fmt: skip
        return
    if not monitors:
        console.print("No monitors yet: keel monitor create NAME DEPLOYMENT")
        return
    table = Table(header_style="bold")
    for col in ("monitor", "deployment", "newest window", "rows", "drift", "accuracy", "p99 ms", "alerts firing"):
        table.add_column(col, justify="left" if col in ("monitor", "deployment", "newest window") else "right")
    for m in monitors:
        windows = store.windows(m.name)
        firing = store.alerts(monitor=m.name, state="firing")
        w = windows[-1] if windows else None
        v = w.values if w else {}
        accuracy = v.get("performance.realised.accuracy", v.get("performance.estimated.accuracy"))
        kind = "" if "performance.realised.accuracy" in v else " est." if accuracy is not None else ""
        table.add_row(
            esc(m.name), esc(m.deployment), fmt_time(w.start_ms) if w else "none yet", f"{w.rows:,}" if w else "-",
            f"{v['drift.share']:.0%}" if "drift.share" in v else "-", f"{accuracy:.3f}{kind}" if accuracy is not None else "-",
            f"{v['health.latency_p99_ms']:.2f}" if "health.latency_p99_ms" in v else "-",
            ", ".join(f"{esc(a.rule)} ({a.severity})" for a in firing) or "-",
        )  # fmt: skip
    console.print(table)


@app.command("alerts")
def alerts(
    name: str = typer.Argument(None, help="Monitor name (default: every monitor)."),
    state: str = typer.Option(None, help="firing or resolved."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Alerts, newest first, with the actions they took."""
    require_store()
    store = _ctx().store.monitors
    found = store.alerts(monitor=name, state=state)
    if as_json:
        print_json([{"alert": a, "actions": store.actions(a.id)} for a in found])
        return
    if not found:
        console.print("No alerts.")
        return
    for a in found:
        colour = "red" if a.state == "firing" else "green"
        console.print(f"[{colour}]{a.state}[/] alert {a.id} {esc(a.monitor)}/{esc(a.rule)} ({a.severity}), "
                      f"{a.windows} window(s) from {fmt_time(a.first_window_ms)}: {esc(a.message)}")  # fmt: skip
        for record in store.actions(a.id):
            shown = esc(_shown(record.action))
            console.print(f"    {shown}: {record.status} after {record.attempts} attempt(s): {esc(record.detail)}")


@app.command("report")
def report(
    name: str = typer.Argument(..., help="A monitor, or a deployment with one monitor."),
    output: Path = typer.Option(Path("monitor-report.html"), "-o", "--output", help="Where to write the HTML report."),
) -> None:
    """An offline HTML report: the time series, per-feature drift, alerts and actions."""
    from keel.core.html import is_keel_report
    from keel.monitor.report import monitor_report

    require_store()
    if output.exists() and not is_keel_report(output):  # never write over what keel did not write
        raise InvalidArgument.for_field("--output", str(output), "a new file or a report keel wrote (this file is not one)")
    ctx = _ctx()
    store = ctx.store.monitors
    monitor = _monitor_named(store, name)
    windows = store.windows(monitor.name)
    found = store.alerts(monitor=monitor.name)
    actions = {a.id: store.actions(a.id) for a in found}
    output.write_text(monitor_report(monitor, windows, found, actions, drift_profiles=_drift_profiles(monitor, windows, ctx)),
                      encoding="utf-8")  # fmt: skip
    console.print(f"wrote {esc(output)} ({len(windows)} windows, {len(found)} alerts)")


def _monitor_named(store: Any, name: str) -> Monitor:
    from keel.core.errors import NotFound

    try:
        return store.get_monitor(name)  # type: ignore[no-any-return]
    except NotFound:
        of_deployment = store.list_monitors(name)
        if len(of_deployment) == 1:
            return of_deployment[0]  # type: ignore[no-any-return]
        if of_deployment:
            names = ", ".join(m.name for m in of_deployment)
            raise InvalidArgument.for_field("monitor", name, f"one of the monitors of this deployment: {names}") from None
        raise


def _drift_profiles(monitor: Monitor, windows: list[MonitorWindow], ctx: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The reference's profile and the newest window's, for the per-feature plots."""
    from keel.monitor.runner import load_profile
    from keel.monitor.windows import reference_profile

    if not windows:
        return None
    reference = reference_profile(monitor.deployment, monitor.reference, ctx)
    newest = load_profile(windows[-1], ctx)
    if reference is None or newest is None:
        return None
    return reference, newest.to_drift_profile()
