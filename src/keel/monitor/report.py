"""The offline HTML report of a monitor: its newest window, every monitored value over time, per-feature drift plots,
and the alerts with the actions they took. Inline SVG and one stylesheet (``keel.core.html``): no script, no CDN.

>>> alerts = store.alerts(monitor="churn-hourly")  # doctest: +SKIP
>>> actions = {a.id: store.actions(a.id) for a in alerts}  # doctest: +SKIP
>>> html = monitor_report(monitor, store.windows("churn-hourly"), alerts, actions)  # doctest: +SKIP

Value names, column names, alert messages and action details come from stores that any client writes to: every field
goes through ``esc``/``fmt``/``pct``. Charts keep at most ``MAX_POINTS`` points per line (the minimum and maximum of
each bucket of windows, so a spike survives), so a year of hourly windows stays a small file.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.core.errors import KeelError
from keel.core.html import PALETTE, count, esc, fmt, left_margin, page, pct
from keel.core.monitoring import ActionRecord, Alert, Monitor, MonitorWindow

__all__ = ["MAX_POINTS", "monitor_report"]

MAX_POINTS = 240  # per line of a chart
TOP_COLUMNS = 6  # drift scores charted, and quality series per check
MAX_FEATURE_PLOTS = 24
MAX_METRICS = 8
_WIDTH, _HEIGHT, _PAD_R, _PAD_T, _PAD_B = 520, 200, 12, 10, 34  # the left margin fits the y tick labels
_QUALITY_CHECKS = ("missing_share_change", "out_of_range_share", "unseen_category_share", "missing_share")


# values -------------------------------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _number(value: Any) -> str:
    """A count as a count (``1,500``), anything else as ``fmt`` writes it."""
    x = _finite(value)
    return count(int(x)) if x is not None and x.is_integer() and abs(x) < 2**53 else fmt(x)


def window_series(windows: Sequence[MonitorWindow], name: str) -> list[float | None]:
    """The monitored number ``name`` over ``windows``, None where a window has no finite value."""
    return [_finite(w.values.get(name)) for w in windows]


def drift_columns(windows: Sequence[MonitorWindow]) -> list[str]:
    """The columns some window has a drift score for, sorted."""
    names = {
        n[len("drift.") : -len(".score")] for w in windows for n in w.values if n.startswith("drift.") and n.endswith(".score")
    }
    return sorted(n for n in names if n)


def quality_names(windows: Sequence[MonitorWindow]) -> dict[str, list[str]]:
    """Per check, the columns with a non-zero value in some window."""
    out: dict[str, set[str]] = {}
    for w in windows:
        for name, value in w.values.items():
            if name.startswith("quality.") and name.count(".") >= 2 and _finite(value):
                column, check = name[len("quality.") :].rsplit(".", 1)
                out.setdefault(check, set()).add(column)
    order = {c: i for i, c in enumerate(_QUALITY_CHECKS)}
    return {check: sorted(out[check]) for check in sorted(out, key=lambda c: (order.get(c, len(order)), c))}


def performance_metrics(windows: Sequence[MonitorWindow]) -> list[str]:
    """The performance metrics (realised or estimated) some window has, sorted."""
    names = set()
    for w in windows:
        for name in w.values:
            for kind in ("performance.realised.", "performance.estimated."):
                if name.startswith(kind) and len(name) > len(kind):
                    names.add(name[len(kind) :])
    return sorted(names)


def ranked_by_score(window: MonitorWindow | None, columns: Sequence[str], windows: Sequence[MonitorWindow]) -> list[str]:
    """Columns by their newest score, then by their highest score over all windows."""

    def key(column: str) -> tuple[float, float]:
        newest = _finite(window.values.get(f"drift.{column}.score")) if window is not None else None
        peak = max((v for v in window_series(windows, f"drift.{column}.score") if v is not None), default=-math.inf)
        return (-(newest if newest is not None else -math.inf), -peak)

    return sorted(columns, key=key)


Profiles = tuple[dict[str, Any], dict[str, Any]]


def _drifted(newest: MonitorWindow | None, profiles: Profiles | None) -> tuple[list[str], str]:
    """The newest window's drifted columns, and how they were found.

    Its values keep each column's score and the number drifted, not which: with both profiles, the drift tests run
    again on them (as the window did: the same defaults, profiles only); otherwise the highest scores are taken."""
    if profiles is not None:
        from keel.data.drift_detection import drift

        ref, cur = profiles
        try:
            shared = [n for n in ref["columns"] if n in cur["columns"] and n != "output"]
            if shared:
                return drift(ref, cur, columns=shared).drifted, "the drift tests on the profiles"
        except (KeelError, KeyError, TypeError, ValueError):
            pass  # a profile of another shape: fall back on the window's scores
    if newest is None:
        return [], ""
    n = _finite(newest.values.get("drift.columns"))
    if not n:
        return [], ""
    ranked = ranked_by_score(newest, [c for c in drift_columns([newest])], [newest])
    return ranked[: int(n)], "the highest scores"


# time and text ------------------------------------------------------------------------------------------------------


def _at(ms: int | float | None, fmt_: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    if ms is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime(fmt_)
    except (OverflowError, OSError, ValueError):
        return str(ms)


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms:,} ms"


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th class=l>{k}</th><td class=l>{v}</td></tr>" for k, v in rows) + "</table>"


# charts -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    label: str
    ys: list[float | None]  # one per window, None where the window has no value
    dashed: bool = False


def _buckets(n: int, limit: int) -> list[range]:
    if n <= limit:
        return [range(i, i + 1) for i in range(n)]
    parts = max(limit // 2, 1)
    size = n / parts
    return [range(int(b * size), int((b + 1) * size)) for b in range(parts)]


def segments(xs: Sequence[float], ys: Sequence[float | None], limit: int = MAX_POINTS) -> list[list[tuple[float, float]]]:
    """The runs of points to draw: split where values are missing; above ``limit`` points, each bucket of windows
    keeps its minimum and maximum (so a spike survives), which leaves at most ``limit`` points."""
    out: list[list[tuple[float, float]]] = []
    run: list[tuple[float, float]] = []
    for bucket in _buckets(len(xs), limit):
        present = [(i, y) for i in bucket if (y := ys[i]) is not None]
        if not present:
            if run:
                out.append(run)
            run = []
            continue
        lo, hi = min(present, key=lambda p: p[1]), max(present, key=lambda p: p[1])
        run.extend((xs[i], y) for i, y in sorted({lo, hi}))
    if run:
        out.append(run)
    return out


def _time_ticks(x0: float, x1: float) -> tuple[str, list[float]]:
    span = x1 - x0
    pattern = "%m-%d %H:%M" if span < 2 * 86_400_000 else "%Y-%m-%d"
    return pattern, [x0, (x0 + x1) / 2, x1] if span > 0 else [x0]


def time_chart(xs: Sequence[int], lines: Sequence[_Line], *, zero: bool = True) -> str:
    """Lines over window start times (``xs``, ms): solid or dashed, gaps where a window has no value."""
    drawn = [(i, line, segments(xs, line.ys)) for i, line in enumerate(lines)]
    ys_all = [y for _, _, runs in drawn for run in runs for _, y in run]
    if not xs or not ys_all:
        return ""
    x0, x1 = float(min(xs)), float(max(xs))
    y0, y1 = min(ys_all), max(ys_all)
    if zero:
        y0, y1 = min(y0, 0.0), max(y1, 0.0)
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    y_ticks = [(value, fmt(value)) for value in (y0, (y0 + y1) / 2, y1)]
    pad_l = left_margin([t for _, t in y_ticks])
    inner_w, inner_h = _WIDTH - pad_l - _PAD_R, _HEIGHT - _PAD_T - _PAD_B

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * inner_w if x1 > x0 else pad_l + inner_w / 2

    def sy(y: float) -> float:
        return _PAD_T + inner_h - (y - y0) / (y1 - y0) * inner_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" role="img">']
    for value, label in y_ticks:
        parts.append(f'<line x1="{pad_l}" y1="{sy(value):.1f}" x2="{_WIDTH - _PAD_R}" y2="{sy(value):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{pad_l - 4}" y="{sy(value) + 4:.1f}" font-size="10" text-anchor="end">{label}</text>')
    pattern, ticks = _time_ticks(x0, x1)
    for j, tick in enumerate(ticks):
        anchor = "middle" if len(ticks) == 1 else ("start", "middle", "end")[j]
        parts.append(
            f'<text x="{sx(tick):.1f}" y="{_HEIGHT - _PAD_B + 14}" font-size="10" text-anchor="{anchor}">'
            f"{esc(_at(tick, pattern))}</text>"
        )
    for i, line, runs in drawn:
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5,3"' if line.dashed else ""
        last = next((y for y in reversed(line.ys) if y is not None), None)
        title = f"<title>{esc(line.label)}: newest {fmt(last)}</title>"
        for run in runs:
            if len(run) == 1:
                ((x, y),) = run
                parts.append(f'<circle data-series="{esc(line.label)}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                             f"<title>{esc(line.label)}: {fmt(y)} at {esc(_at(x))}</title></circle>")  # fmt: skip
                continue
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in run)
            parts.append(f'<polyline data-series="{esc(line.label)}" fill="none" stroke="{color}" stroke-width="1.6"{dash} '
                         f'points="{coords}">{title}</polyline>')  # fmt: skip
    parts.append(f'<line x1="{pad_l}" y1="{_PAD_T + inner_h}" x2="{_WIDTH - _PAD_R}" y2="{_PAD_T + inner_h}" stroke="#999"/>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(lines: Sequence[_Line]) -> str:
    """The series' colours, and dashed for dashed lines (``keel.core.html.legend`` has swatches only)."""
    items = []
    for i, line in enumerate(lines):
        dash = ' stroke-dasharray="5,3"' if line.dashed else ""
        mark = (f'<svg width="22" height="8" style="vertical-align:middle;margin-right:.25rem"><line x1="0" y1="4" x2="22" '
                f'y2="4" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="2"{dash}/></svg>')  # fmt: skip
        items.append(f"<span>{mark}{esc(line.label)}</span>")
    return "<div class=legend>" + "".join(items) + "</div>"


def _chart(caption: str, xs: Sequence[int], lines: Sequence[_Line], *, zero: bool = True) -> str:
    lines = [line for line in lines if any(y is not None for y in line.ys)]
    svg = time_chart(xs, lines, zero=zero) if lines else ""
    if not svg:
        return ""
    return f"<figure><figcaption>{esc(caption)}</figcaption>{svg}{_legend(lines)}</figure>"


# sections -----------------------------------------------------------------------------------------------------------


def _header(monitor: Monitor, windows: Sequence[MonitorWindow], now_ms: int) -> str:
    span = f"{_at(windows[0].start_ms)} to {_at(windows[-1].end_ms)} ({count(len(windows))} windows)" if windows else "no windows"
    reference = esc(monitor.reference) if monitor.reference else "the primary model's training data"
    return _facts([
        ("monitor", esc(monitor.name)), ("deployment", esc(monitor.deployment)),
        ("window", esc(_duration(monitor.window_ms))), ("reference", reference), ("time span", esc(span)),
        ("rules", count(len(monitor.rules))), ("generated at", esc(_at(now_ms))),
    ])  # fmt: skip


def _newest(newest: MonitorWindow, drifted: tuple[list[str], str], metrics: Sequence[str], alerts: Sequence[Alert]) -> str:
    v = newest.values
    names, how = drifted
    tested = len(drift_columns([newest]))
    out = [f"<p>{esc(_at(newest.start_ms))} to {esc(_at(newest.end_ms))}: {count(newest.rows)} rows, "
           f"{count(newest.labelled_rows)} labelled; computed {esc(_at(newest.computed_at))}</p>"]  # fmt: skip
    share = _finite(v.get("drift.share"))
    if share is None:
        out.append("<p><b>Drift</b>: <span class=muted>not measured in this window</span></p>")
    else:
        cls = "bad" if names else "ok"
        listed = ", ".join(f"<b>{esc(n)}</b> ({fmt(_finite(v.get(f'drift.{n}.score')))})" for n in names) or "none"
        out.append(f"<p><b>Drift</b>: <span class={cls}>{pct(share)}</span> of {count(tested)} columns drifted: {listed}"
                   + (f" <span class=muted>(by {esc(how)})</span>" if names else "") + "</p>")  # fmt: skip
    out.append(_quality_table(newest))
    out.append(_performance_table(newest, metrics))
    health = [("rows", "health.rows"), ("requests", "health.requests"), ("throughput /s", "health.throughput_per_s"),
              ("latency p50 ms", "health.latency_p50_ms"), ("latency p99 ms", "health.latency_p99_ms")]  # fmt: skip
    out.append("<h3>Health</h3><table><tr>" + "".join(f"<th>{h}</th>" for h, _ in health) + "</tr><tr>"
               + "".join(f"<td>{_number(v.get(k))}</td>" for _, k in health) + "</tr></table>")  # fmt: skip
    firing = [a for a in alerts if a.state == "firing"]
    if firing:
        items = "".join(
            f"<li><span class={'bad' if a.severity == 'critical' else 'warn'}>{esc(a.severity)}</span> "
            f"<b>{esc(a.rule)}</b> = {fmt(a.value)} for {count(a.windows)} windows: {esc(a.message)}</li>"
            for a in firing
        )
        out.append(f"<h3>Alerts firing ({count(len(firing))})</h3><ul>{items}</ul>")
    else:
        out.append("<h3>Alerts firing</h3><p class=ok>none</p>")
    return "".join(out)


def _quality_table(newest: MonitorWindow) -> str:
    failing = []
    for name, value in newest.values.items():
        x = _finite(value)
        if name.startswith("quality.") and name.count(".") >= 2 and x:
            column, check = name[len("quality.") :].rsplit(".", 1)
            if x > 0 or check != "missing_share_change":  # fewer missing values than the reference is no failure
                failing.append((column, check, x))
    if not failing:
        return "<h3>Data quality</h3><p class=ok>every check is zero</p>"
    failing.sort(key=lambda r: (-abs(r[2]), r[0], r[1]))
    rows = "".join(f"<tr><td class=l>{esc(c)}</td><td class=l>{esc(k)}</td><td>{pct(x, 2)}</td></tr>" for c, k, x in failing)
    return (f"<h3>Data quality ({count(len(failing))} non-zero)</h3><table><tr><th class=l>column</th><th class=l>check"
            f"</th><th>value</th></tr>{rows}</table>")  # fmt: skip


def _performance_table(newest: MonitorWindow, metrics: Sequence[str]) -> str:
    if not metrics:
        return "<h3>Performance</h3><p class=muted>no performance values (no labels and no probabilities)</p>"
    v = newest.values
    rows = "".join(
        f"<tr><td class=l>{esc(m)}</td><td>{fmt(_finite(v.get(f'performance.realised.{m}')))}</td>"
        f"<td>{fmt(_finite(v.get(f'performance.estimated.{m}')))}</td></tr>"
        for m in metrics
    )
    return ("<h3>Performance</h3><table><tr><th class=l>metric</th><th>realised</th><th>estimated</th></tr>"
            f"{rows}</table><p class=muted>realised on the labelled rows; estimated (CBPE) until labels arrive</p>")  # fmt: skip


def _time_series(windows: Sequence[MonitorWindow], metrics: Sequence[str]) -> str:
    xs = [w.start_ms for w in windows]
    charts = [_chart("drift share", xs, [_Line("drift.share", window_series(windows, "drift.share"))])]
    top = ranked_by_score(windows[-1], drift_columns(windows), windows)[:TOP_COLUMNS]
    charts.append(_chart("drift score, top columns", xs, [_Line(c, window_series(windows, f"drift.{c}.score")) for c in top]))
    for m in metrics[:MAX_METRICS]:
        lines = [_Line("realised", window_series(windows, f"performance.realised.{m}")),
                 _Line("estimated", window_series(windows, f"performance.estimated.{m}"), dashed=True)]  # fmt: skip
        charts.append(_chart(f"performance: {m}", xs, lines, zero=False))
    charts.append(_chart("latency (ms)", xs, [_Line("p50", window_series(windows, "health.latency_p50_ms")),
                                              _Line("p99", window_series(windows, "health.latency_p99_ms"))]))  # fmt: skip
    charts.append(_chart("throughput (requests/s)", xs, [_Line("throughput", window_series(windows, "health.throughput_per_s"))]))
    charts.append(_chart("traffic per window", xs, [_Line("rows", window_series(windows, "health.rows")),
                                                    _Line("requests", window_series(windows, "health.requests"))]))  # fmt: skip
    for check, columns in quality_names(windows).items():
        series = {c: window_series(windows, f"quality.{c}.{check}") for c in columns}
        peak = {c: max((abs(y) for y in ys if y is not None), default=0.0) for c, ys in series.items()}
        shown = sorted((c for c in columns if peak[c] > 0), key=lambda c: (-peak[c], c))[:TOP_COLUMNS]
        charts.append(_chart(f"quality: {check}", xs, [_Line(c, series[c]) for c in shown]))
    drawn = "".join(c for c in charts if c)
    note = f"<p class=muted>charts keep at most {MAX_POINTS} points per line: above that, each bucket of windows its minimum and maximum</p>"  # noqa: E501
    return f"<div class=charts>{drawn}</div>" + (note if len(windows) > MAX_POINTS else "")


def _features(profiles: Profiles | None, first: Sequence[str], newest: MonitorWindow | None) -> str:
    if profiles is None:
        return "<p class=muted>No profiles given: per-feature plots need the reference's and the newest window's.</p>"
    from keel.data.report import distribution_chart

    ref, cur = profiles
    ref_cols = ref.get("columns") if isinstance(ref, Mapping) else None
    cur_cols = cur.get("columns") if isinstance(cur, Mapping) else None
    if not isinstance(ref_cols, Mapping) or not isinstance(cur_cols, Mapping):
        return "<p class=muted>The profiles have no columns.</p>"
    names = [n for n in ref_cols if n != "output"]
    rest = ranked_by_score(newest, [n for n in names if n not in first], [newest] if newest else [])
    ordered = [n for n in first if n in ref_cols] + rest
    charts = []
    for name in ordered[:MAX_FEATURE_PLOTS]:
        r, c = ref_cols[name], cur_cols.get(name)
        if not isinstance(r, Mapping) or "kind" not in r or (c is not None and not isinstance(c, Mapping)):
            continue
        caption = f"{name} ({'drifted' if name in first else 'stable'})"
        try:
            charts.append(distribution_chart(caption, dict(r), dict(c) if c is not None else None))
        except (KeyError, TypeError, ValueError, IndexError):
            continue  # a column whose profile lacks a histogram or grid has nothing to draw
    more = len(ordered) - MAX_FEATURE_PLOTS
    note = f"<p class=muted>{count(more)} more columns not drawn</p>" if more > 0 else ""
    drawn = "".join(ch for ch in charts if ch)
    body = f"<div class=charts>{drawn}</div>" if drawn else "<p class=muted>No column to draw.</p>"
    return "<p class=muted>shares of rows per bin (numeric: the reference's bins) or per category</p>" + body + note


def _alerts(alerts: Sequence[Alert], actions: Mapping[int, Sequence[ActionRecord]]) -> str:
    if not alerts:
        return "<p class=ok>No alerts.</p>"
    ordered = sorted(alerts, key=lambda a: (a.state != "firing", -a.last_window_ms, a.id))
    head = ("<tr><th class=l>rule</th><th class=l>severity</th><th class=l>state</th><th class=l>first window</th>"
            "<th class=l>last window</th><th>windows</th><th>value</th><th class=l>message</th>"
            "<th class=l>actions</th></tr>")  # fmt: skip
    rows = []
    for a in ordered:
        state = f"<span class={'bad' if a.state == 'firing' else 'ok'}>{esc(a.state)}</span>"
        severity = {"critical": "bad", "warning": "warn"}.get(a.severity, "muted")
        rows.append(
            f"<tr><td class=l>{esc(a.rule)}</td><td class='l {severity}'>{esc(a.severity)}</td><td class=l>{state}</td>"
            f"<td class=l>{esc(_at(a.first_window_ms))}</td><td class=l>{esc(_at(a.last_window_ms))}</td>"
            f"<td>{count(a.windows)}</td><td>{fmt(a.value)}</td><td class=l>{esc(a.message)}</td>"
            f"<td class=l>{_actions(actions.get(a.id, ()))}</td></tr>"
        )
    return f"<div class=wide><table>{head}{''.join(rows)}</table></div>"


def _actions(records: Sequence[ActionRecord]) -> str:
    if not records:
        return "<span class=muted>none</span>"
    rows = "".join(
        f"<tr><td class=l>{esc(r.action)}</td><td class='l {'ok' if r.status == 'ok' else 'bad'}'>{esc(r.status)}</td>"
        f"<td>{count(r.attempts)}</td><td class=l>{esc(r.detail)}</td></tr>"
        for r in records
    )
    return f"<table><tr><th class=l>action</th><th class=l>status</th><th>attempts</th><th class=l>detail</th></tr>{rows}</table>"


def monitor_report(
    monitor: Monitor,
    windows: list[MonitorWindow],
    alerts: list[Alert],
    actions: dict[int, list[ActionRecord]],
    *,
    drift_profiles: tuple[dict[str, Any], dict[str, Any]] | None = None,
    now_ms: int | None = None,
) -> str:
    """The whole report as one HTML page. ``drift_profiles``: (the reference's, the newest window's) drift profiles
    (``keel.data.profiling`` form) for the per-feature plots; ``now_ms`` the time written as "generated at"."""
    by_start = {w.start_ms: w for w in sorted(windows, key=lambda w: (w.start_ms, w.computed_at))}
    ordered = [by_start[k] for k in sorted(by_start)]
    newest = ordered[-1] if ordered else None
    drifted = _drifted(newest, drift_profiles)
    metrics = performance_metrics(ordered)
    body = [_header(monitor, ordered, int(time.time() * 1000) if now_ms is None else now_ms)]
    if newest is None:
        body.append("<h2>Newest window</h2><p class=muted>No windows yet: the monitor has not evaluated a window.</p>")
    else:
        body.append("<h2>Newest window</h2>" + _newest(newest, drifted, metrics, alerts))
        body.append("<h2>Over time</h2>" + _time_series(ordered, metrics))
    body.append("<h2>Drift per feature</h2>" + _features(drift_profiles, drifted[0], newest))
    body.append(f"<h2>Alerts ({count(len(alerts))})</h2>" + _alerts(alerts, actions))
    return page(f"monitor {monitor.name}: deployment {monitor.deployment}", "".join(body))
