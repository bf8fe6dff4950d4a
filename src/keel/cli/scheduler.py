"""``keel scheduler``: runs every monitor as its windows end (once across replicas: a lease in the store)."""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable
from typing import Any

import typer

from keel.cli.output import console, esc
from keel.core.errors import InvalidArgument

RECENT_WINDOWS = 48  # stored windows a starting scheduler looks through for the newest one with rows
IMPORT_HELP = "A module to import first: its @keel.monitor.scheduled jobs and @keel.monitor.retrainer pipelines."


def scheduler(
    interval: float = typer.Option(5.0, help="Seconds between passes over the monitors."),
    imports: list[str] = typer.Option([], "--import", help=IMPORT_HELP),
    once: bool = typer.Option(False, "--once", help="One pass over the monitors, then exit (jobs need a running scheduler)."),
    metrics_port: int = typer.Option(0, help="Serve Prometheus metrics of the monitors on 127.0.0.1:PORT (0: off)."),
) -> None:
    """Run the monitors window by window (drift, quality, performance, alerts and their actions) and the scheduled
    jobs (interval, cron, new dataset versions, alerts)."""
    from keel.context import current
    from keel.monitor.scheduler import Scheduler

    if interval <= 0:
        raise InvalidArgument.for_field("--interval", interval, "a positive number of seconds")
    for module in imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InvalidArgument.for_field("--import", module, f"an importable module ({exc})") from None
    ctx = current()
    on_run = _publisher(ctx, metrics_port) if metrics_port else None
    runner = Scheduler(ctx, interval=interval, on_run=on_run)
    if once:
        for summary in runner.run_pending():
            console.print(f"{esc(summary.monitor)}: {len(summary.computed)} window(s), {len(summary.fired)} alert(s) fired")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from keel.monitor.jobs import JOBS

    console.print(f"keel scheduler: {len(ctx.store.monitors.list_monitors())} monitor(s), {len(JOBS)} job(s), a pass "
                  f"every {interval:g} s (Ctrl-C to stop)")  # fmt: skip
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        stop.set()


def _publisher(ctx: Any, port: int) -> Callable[[Any, Any], None]:
    """Serve the monitors' gauges on 127.0.0.1:``port`` (``render()``: a scrape never sees half a publish) and
    return what publishes a run's newest window with rows (the newest stored one is published at once)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from keel.core.clock import now_ms
    from keel.monitor.prometheus import MonitorMetrics

    metrics = MonitorMetrics()

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = metrics.render()
            self.send_response(200 if self.path.rstrip("/") in ("", "/metrics") else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Metrics)
    threading.Thread(target=server.serve_forever, name="keel-scheduler-metrics", daemon=True).start()

    def show(monitor: Any, windows: list[Any]) -> None:
        # a window without rows (a quiet hour) has no values: showing it would blank the monitor's gauges, so the
        # newest window with rows stays, and keel_monitor_last_window_end_seconds tells its age
        with_rows = [w for w in windows if w.rows]
        if not with_rows:
            return
        newest = with_rows[-1]
        firing: dict[str, int] = {}
        for alert in ctx.store.monitors.alerts(monitor=monitor.name, state="firing"):
            firing[alert.severity] = firing.get(alert.severity, 0) + 1
        metrics.publish(monitor.name, monitor.deployment, newest.values, firing, window_end=newest.end_ms / 1000)

    # a restarted scheduler computes nothing until a window ends (up to a window's length): show the stored ones
    now = now_ms()
    for monitor in ctx.store.monitors.list_monitors():
        show(monitor, ctx.store.monitors.windows(monitor.name, since_ms=now - RECENT_WINDOWS * monitor.window_ms))

    return lambda monitor, summary: show(monitor, summary.computed)
