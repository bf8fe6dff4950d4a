"""The offline HTML report of a deployment comparison: tables and inline SVG, no script, no CDN.

Model URIs, class labels and deployment names come from the log, which any client writes to: every field goes
through ``esc``/``fmt``/``pct`` of ``keel.core.html``.
"""

from __future__ import annotations

import math

from keel.core.html import PALETTE, bar_chart, count, esc, figure, fmt, page, pct, text_width
from keel.serve.comparison import Challenger, Comparison, MetricDifference, ModelSummary

_VERDICT_CLASS = {"better": "ok", "worse": "bad", "no significant difference": "", "too little data": "muted"}


def _name(m: ModelSummary | Challenger) -> str:
    return f"{m.route} {m.model}"


def _window(c: Comparison) -> str:
    if c.first_ms is None or c.last_ms is None:
        return "no predictions"
    import datetime as dt

    def at(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return f"{at(c.first_ms)} to {at(c.last_ms)}"


def _summary(c: Comparison) -> str:
    facts = [
        ("deployment", esc(c.deployment)), ("window", esc(_window(c))), ("task", esc(c.task)),
        ("reference", esc(c.reference or "-")), ("requests", count(c.requests)), ("rows", count(c.rows)),
        ("labeled rows", count(c.labeled)),
    ]  # fmt: skip
    rows = "".join(f"<tr><th class=l>{k}</th><td class=l>{v}</td></tr>" for k, v in facts)
    return f"<table>{rows}</table>"


def _models_table(c: Comparison) -> str:
    metrics = sorted({k for m in c.models for k in m.metrics})
    head = "".join(f"<th>{esc(h)}</th>" for h in ("rows", "requests", "share", "p50 ms", "p95 ms", "p99 ms", "labeled", *metrics))
    body = []
    for m in c.models:
        lat = m.latency_ms
        cells = [count(m.rows), count(m.requests), pct(m.share), fmt(lat.p50), fmt(lat.p95), fmt(lat.p99), count(m.labeled)]
        cells += [fmt(m.metrics.get(k)) for k in metrics]
        body.append(
            f"<tr><td class=l>{esc(m.route)}</td><td class=l>{esc(m.model)}</td>"
            + "".join(f"<td>{x}</td>" for x in cells)
            + "</tr>"
        )
    return f"<div class=wide><table><tr><th class=l>route</th><th class=l>model</th>{head}</tr>{''.join(body)}</table></div>"


def _agreement(ch: Challenger) -> str:
    a = ch.agreement
    if a is None:
        return "<span class=muted>unpaired (other requests)</span>"
    if a.rate is not None:
        return f"{pct(a.rate)} of {count(a.pairs)} rows"
    if a.mean_abs_diff is not None:
        return f"mean |diff| {fmt(a.mean_abs_diff)}, max {fmt(a.max_abs_diff)}, r={fmt(a.correlation)} ({count(a.pairs)} rows)"
    return "-"


def _drift(ch: Challenger) -> str:
    if not ch.drift:
        return f"<span class=muted>{esc(ch.drift_note or '-')}</span>"
    parts = []
    for d in ch.drift:
        value = f"p={fmt(d.p_value)}" if d.p_value is not None else f"{fmt(d.statistic)}"
        flag = "<span class=bad>drifted</span>" if d.drifted else "<span class=ok>same</span>"
        parts.append(f"{esc(d.column)}: {esc(d.test)} {value} {flag}")
    return "<br>".join(parts)


def _challengers_table(c: Comparison) -> str:
    if not c.challengers:
        return "<p class=muted>No shadow or canary in this window.</p>"
    rows = "".join(
        f"<tr><td class=l>{esc(ch.route)}</td><td class=l>{esc(ch.model)}</td><td>{count(ch.rows)}</td>"
        f"<td class=l>{_agreement(ch)}</td><td class=l>{_drift(ch)}</td><td class=l>{esc(ch.verdict)}</td></tr>"
        for ch in c.challengers
    )
    head = "<tr><th class=l>route</th><th class=l>model</th><th>rows</th><th class=l>agreement</th><th class=l>output drift</th>"
    return f"<div class=wide><table>{head}<th class=l>verdict</th></tr>{rows}</table></div>"


def _latency_chart(c: Comparison) -> str:
    models = [m for m in c.models if m.latency_ms.calls]
    if not models:
        return ""
    series = [[m.latency_ms.p50 or 0.0, m.latency_ms.p95 or 0.0, m.latency_ms.p99 or 0.0] for m in models]
    return figure("model-call latency (ms)", bar_chart(["p50", "p95", "p99"], series), [_name(m) for m in models])


def _distribution_charts(c: Comparison) -> str:
    out = []
    for name in ("output", "score"):
        models = [m for m in c.models if name in m.distributions]
        if not models:
            continue
        bins = list(models[0].distributions[name].bins)
        series = [list(m.distributions[name].shares) for m in models]
        caption = "share of outputs" if name == "output" else "share of positive-class probabilities"
        out.append(figure(caption, bar_chart(bins, series, width=640), [_name(m) for m in models]))
    return f"<div class=charts>{''.join(out)}</div>" if out else "<p class=muted>No outputs.</p>"


def _ci_chart(diffs: list[MetricDifference], width: int = 640) -> str:
    """Each metric's difference as a dot with its CI as a bar, around a zero line (one scale per metric)."""
    shown = [d for d in diffs if d.low is not None and d.high is not None and d.difference is not None]
    if not shown:
        return ""
    # the numbers are written on the right: each metric has its own scale; the names fit on the left
    row_h, pad_l, pad_r = 28, max(90, int(max(text_width(d.metric, 11) for d in shown)) + 10), 190
    width = max(width, pad_l + pad_r + 160)
    height = row_h * len(shown) + 16
    mid = pad_l + (width - pad_l - pad_r) / 2
    half = (width - pad_l - pad_r) / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<line x1="{mid:.1f}" y1="4" x2="{mid:.1f}" y2="{height - 4}" stroke="#999" stroke-dasharray="3,3"/>')
    for i, d in enumerate(shown):
        assert d.low is not None and d.high is not None and d.difference is not None
        scale = max(abs(d.low), abs(d.high), abs(d.difference), 1e-12) * 1.1

        def x(v: float, s: float = scale) -> float:
            return mid + v / s * half

        y = 14 + i * row_h
        color = PALETTE[3] if d.verdict == "worse" else PALETTE[2] if d.verdict == "better" else PALETTE[0]
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4}" font-size="11" text-anchor="end">{esc(d.metric)}</text>')
        parts.append(f'<line x1="{x(d.low):.1f}" y1="{y}" x2="{x(d.high):.1f}" y2="{y}" stroke="{color}" stroke-width="3"/>')
        parts.append(
            f'<circle cx="{x(d.difference):.1f}" cy="{y}" r="4" fill="{color}"><title>{esc(d.metric)}: '
            f"{fmt(d.difference)} [{fmt(d.low)}, {fmt(d.high)}]</title></circle>"
        )
        parts.append(
            f'<text x="{width - pad_r + 10}" y="{y + 4}" font-size="11">{fmt(d.difference)} [{fmt(d.low)}, {fmt(d.high)}]</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _metrics_section(c: Comparison) -> str:
    if not any(ch.metrics for ch in c.challengers):
        return (
            "<p class=muted>No labels yet: record them with keel.serve.log_labels (or the labels route) to compare metrics.</p>"
        )
    out = []
    for ch in c.challengers:
        if not ch.metrics:
            continue
        rows = "".join(
            f"<tr><td class=l>{esc(d.metric)}</td><td>{fmt(d.reference)}</td><td>{fmt(d.challenger)}</td>"
            f"<td>{fmt(d.difference)}</td><td>{_interval(d)}</td><td>{count(d.n)}</td><td>{count(d.n_reference)}</td>"
            f"<td class='l {_VERDICT_CLASS.get(d.verdict, '')}'>{esc(d.verdict)}</td></tr>"
            for d in ch.metrics
        )
        head = "<tr><th class=l>metric</th><th>reference</th><th>challenger</th><th>difference</th>"
        head += f"<th>{c.confidence:.0%} CI</th><th>n</th><th>n reference</th><th class=l>verdict</th></tr>"
        out.append(
            f"<h3>{esc(_name(ch))} vs {esc(c.reference or '-')} ({'paired' if ch.paired else 'unpaired'})</h3>"
            f"<p>{esc(ch.verdict)}</p><table>{head}{rows}</table>{_ci_chart(list(ch.metrics))}"
        )
    note = (
        f"<p class=muted>Bootstrap: {count(c.bootstrap)} resamples, seed {count(c.seed)}; "
        f"at least {count(c.min_rows)} labeled rows per side.</p>"
    )
    return "".join(out) + note


def _interval(d: MetricDifference) -> str:
    if d.low is None or d.high is None or not (math.isfinite(d.low) and math.isfinite(d.high)):
        return "-"
    return f"[{fmt(d.low)}, {fmt(d.high)}]"


def comparison_html(c: Comparison) -> str:
    """The whole report as one HTML page."""
    body = (
        _summary(c) + "<h2>Models</h2>" + _models_table(c) + "<h2>Shadows and canaries</h2>" + _challengers_table(c)
        + "<h2>Latency</h2>" + _latency_chart(c) + "<h2>Output distributions</h2>" + _distribution_charts(c)
        + "<h2>Metrics on labeled rows</h2>" + _metrics_section(c)
    )  # fmt: skip
    return page(f"deployment {c.deployment}: model comparison", body)
