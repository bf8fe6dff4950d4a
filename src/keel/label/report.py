"""The offline HTML report of a label project (``keel label status PROJECT --html report.html``).

One file, no script, no CDN: progress, agreement (with what the numbers mean), agreement per class and over time,
annotator scores with their flags, annotator drift, confusion between annotators (a heatmap), the review queue and
audit outcomes. Class names, annotator names, item keys and labels come from clients: every one goes through
``esc`` (numbers through ``fmt``/``pct``/``count``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from keel.core.html import PALETTE, count, esc, fmt, left_margin, page, pct
from keel.core.labeling import label_text
from keel.label.status import LabelStatus

__all__ = ["MAX_ROWS", "reading", "render_report"]

MAX_ROWS = 100  # rows of the review queue shown (the count is always whole)
_W, _H = 560, 220


def reading(metric: str, value: float | None) -> str:
    """What an agreement number means, in one line: Landis and Koch's bands for kappa, Krippendorff's thresholds for
    alpha (0.8 to rely on the labels, 0.667 for tentative conclusions)."""
    if value is None or not math.isfinite(value):
        return "not defined: too few items with two or more answers, or a single class used"
    if metric == "alpha":
        if value >= 0.8:
            return "reliable: labels fit to train and evaluate on"
        if value >= 0.667:
            return "tentative: fit for tentative conclusions only; tighten the guideline"
        return "unreliable: annotators disagree too much; revise the guideline or the classes"
    for floor, name in ((0.8, "almost perfect"), (0.6, "substantial"), (0.4, "moderate"), (0.2, "fair")):
        if value > floor:
            return f"{name} agreement beyond chance"
    if value >= 0.0:
        return "slight agreement beyond chance"
    return "below chance: annotators disagree more than random answers would"


def render_report(status: LabelStatus) -> str:
    """``status`` as one HTML page."""
    s = status
    parts = [
        f"<p class=muted>dataset {esc(s.dataset)} · label kind {esc(s.kind)}"
        + (f" ({count(len(s.classes))} classes)" if s.classes else "")
        + f" · overlap {count(s.overlap)} · guideline v{count(s.guideline_version)} · as of {esc(_time(s.computed_at))}</p>",
        _progress(s),
        _agreement(s),
        _per_class(s),
        _over_time(s),
        _annotators(s),
        _drift(s),
        _confusion(s),
        _queue(s),
        _audits(s),
    ]
    return page(f"Label project {s.project}", "".join(parts))


# sections -----------------------------------------------------------------------------------------------------------


def _progress(s: LabelStatus) -> str:
    total = max(s.items, 1)
    bar = _stacked_bar([(s.done, "done", "#2ca02c"), (s.in_progress, "in progress", "#ff7f0e"),
                        (s.untouched, "untouched", "#d9d9d9")], total)  # fmt: skip
    rows = [
        ("items to label", count(s.items)), ("done (" + count(s.overlap) + " answers)", _share(s.done, s.items)),
        ("in progress", _share(s.in_progress, s.items)), ("untouched", _share(s.untouched, s.items)),
        ("gold items", count(s.gold_items)), ("qualification items", count(s.qualification_items)),
        ("annotations", count(s.annotations)), ("answers to gold items", count(s.gold_answers)),
    ]  # fmt: skip
    labels = s.labels or {}
    if labels.get("finished") is not None:
        rows.append(("items with a final label", count(labels.get("finished"))))
        by_source = labels.get("by_source") or {}
        if by_source:
            rows.append(("labels by source", ", ".join(f"{esc(k)} {count(v)}" for k, v in by_source.items())))
        rows.append(("mean consensus confidence", fmt(labels.get("mean_confidence"))))
    return "<h2>Progress</h2>" + bar + _kv(rows)


def _agreement(s: LabelStatus) -> str:
    a = s.agreement or {}
    if not a:
        return "<h2>Agreement</h2><p class=muted>No annotations yet.</p>"
    level = a.get("level", "nominal")
    rows = [f"<tr><td class=l>Krippendorff's alpha ({esc(level)})</td><td>{fmt(a.get('alpha'))}</td>"
            f"<td class=l>{esc(reading('alpha', a.get('alpha')))}</td></tr>"]  # fmt: skip
    if s.kind != "number":
        rows.append(f"<tr><td class=l>Fleiss' kappa</td><td>{fmt(a.get('fleiss_kappa'))}</td>"
                    f"<td class=l>{esc(reading('kappa', a.get('fleiss_kappa')))}</td></tr>")  # fmt: skip
    out = ("<h2>Agreement</h2><table><tr><th class=l>measure</th><th>value</th><th class=l>reading</th></tr>"
           + "".join(rows) + "</table>")  # fmt: skip
    out += (f"<p class=muted>{count(a.get('annotations', 0))} annotations of {count(a.get('items', 0))} items by "
            f"{count(a.get('annotators', 0))} annotators.</p>")  # fmt: skip
    if a.get("excluded"):
        out += (f"<p class=muted>Without the excluded annotators ({esc(', '.join(a['excluded']))}); with them, "
                f"alpha is {fmt(a.get('alpha_with_excluded'))}.</p>")  # fmt: skip
    pairs = list(a.get("pairs") or [])
    if pairs:
        pairs.sort(key=lambda p: (p.get("kappa") is None, p.get("kappa") if p.get("kappa") is not None else 0.0))
        body = "".join(
            f"<tr><td class=l>{esc(p.get('annotator_a'))}</td><td class=l>{esc(p.get('annotator_b'))}</td>"
            f"<td>{count(p.get('items'))}</td><td{_bad(p.get('kappa'), 0.4)}>{fmt(p.get('kappa'))}</td>"
            f"<td class=l>{esc(reading('kappa', p.get('kappa')))}</td></tr>"
            for p in pairs[:MAX_ROWS]
        )
        out += ("<h3>Cohen's kappa per pair of annotators (lowest first)</h3><table><tr><th class=l>annotator</th>"
                "<th class=l>annotator</th><th>items both answered</th><th>kappa</th><th class=l>reading</th></tr>"
                f"{body}</table>")  # fmt: skip
    return out


def _per_class(s: LabelStatus) -> str:
    rows = list((s.agreement or {}).get("per_class") or [])
    if not rows:
        return ""
    body = "".join(
        f"<tr><td class=l>{esc(r.get('class'))}</td><td{_bad(r.get('alpha'), 0.667)}>{fmt(r.get('alpha'))}</td>"
        f"<td>{count(r.get('support'))}</td></tr>"
        for r in rows
    )
    return ("<h2>Agreement per class</h2><p class=muted>Alpha of each class against the rest: a low one names the "
            "class the guideline leaves unclear.</p><table><tr><th class=l>class</th><th>alpha</th><th>support</th></tr>"
            f"{body}</table>")  # fmt: skip


def _over_time(s: LabelStatus) -> str:
    rows = [r for r in (s.agreement or {}).get("over_time") or [] if r.get("start_ms") is not None]
    if not rows:
        return ""
    xs = [float(r["start_ms"]) for r in rows]
    ys = [_finite(r.get("alpha")) for r in rows]
    chart = _line_chart(xs, ys)
    body = "".join(f"<tr><td class=l>{esc(_time(r['start_ms']))}</td><td>{count(r.get('annotations'))}</td>"
                   f"<td>{fmt(r.get('alpha'))}</td></tr>" for r in rows[-MAX_ROWS:])  # fmt: skip
    return (
        f"<h2>Agreement over time</h2><p class=muted>Alpha per {esc(_period(s.period_ms))}, by when items were "
        f"answered.</p>{chart}<table><tr><th class=l>from</th><th>annotations</th><th>alpha</th></tr>{body}</table>"
    )


def _annotators(s: LabelStatus) -> str:
    if not s.annotators:
        return "<h2>Annotators</h2><p class=muted>No annotator has answered yet.</p>"
    body = []
    for r in sorted(s.annotators, key=lambda r: (not r.get("flagged"), str(r.get("annotator")))):
        flag = "<span class=bad>flagged</span>" if r.get("flagged") else "<span class=ok>ok</span>"
        if r.get("excluded"):
            flag += " <span class=warn>excluded</span>"
        body.append(
            f"<tr><td class=l>{esc(r.get('annotator'))}</td><td>{count(r.get('answered'))}</td>"
            f"<td>{count(r.get('gold_answered'))}</td><td>{pct(r.get('gold_accuracy'))}</td><td>{fmt(r.get('agreement'))}</td>"
            f"<td>{_seconds(r.get('median_time_ms'))}</td><td class=l>{flag}</td>"
            f"<td class=l>{esc(r.get('reason') or '')}</td></tr>"
        )
    reasons = {str(e.get("annotator")): str(e.get("reason")) for e in s.exclusions}
    excluded = "".join(f"<li>{esc(a)}: {esc(r)}</li>" for a, r in sorted(reasons.items()))
    return ("<h2>Annotators</h2><table><tr><th class=l>annotator</th><th>answered</th><th>gold answered</th>"
            "<th>gold accuracy</th><th>agreement with others</th><th>median time</th><th class=l>flag</th>"
            "<th class=l>reason</th></tr>" + "".join(body) + "</table>"
            + (f"<h3>Excluded from the project</h3><ul>{excluded}</ul>" if excluded else ""))  # fmt: skip


def _drift(s: LabelStatus) -> str:
    rows = [r for r in s.drifting if r.get("start_ms") is not None]
    if not rows:
        return ""
    names = sorted({str(r["annotator"]) for r in rows})
    flagged = sorted({str(r["annotator"]) for r in rows if r.get("flagged")})
    series = []
    for name in names[: len(PALETTE)]:
        mine = sorted((r for r in rows if str(r["annotator"]) == name), key=lambda r: r["start_ms"])
        series.append((name, [float(r["start_ms"]) for r in mine], [_finite(r.get("gold_accuracy")) for r in mine]))
    chart = _multi_line_chart(series)
    note = (f"<p class=bad>Drifting: {', '.join(esc(n) for n in flagged)}</p>" if flagged
            else "<p class=ok>No annotator's gold accuracy or agreement is falling.</p>")  # fmt: skip
    legend = "<div class=legend>" + "".join(
        f"<span><span class=sw style='background:{PALETTE[i % len(PALETTE)]}'></span>{esc(n)}</span>"
        for i, (n, _, _) in enumerate(series)
    ) + "</div>"  # fmt: skip
    why = "".join(
        f"<tr><td class=l>{esc(r.get('annotator'))}</td><td class=l>{esc(_time(r.get('start_ms')))}</td>"
        f"<td>{pct(r.get('gold_accuracy'))}</td><td>{fmt(r.get('agreement'))}</td>"
        f"<td class=l>{esc(r.get('reason') or '')}</td></tr>"
        for r in rows
        if r.get("flagged")
    )
    table = ("<table><tr><th class=l>annotator</th><th class=l>period from</th><th>gold accuracy</th><th>agreement</th>"
             f"<th class=l>reason</th></tr>{why}</table>") if why else ""  # fmt: skip
    return (f"<h2>Annotator drift</h2><p class=muted>Gold accuracy per {esc(_period(s.period_ms))}.</p>"
            f"{note}{chart}{legend}{table}")  # fmt: skip


def _confusion(s: LabelStatus) -> str:
    c = s.confusion or {}
    rows_labels = [str(x) for x in c.get("labels") or []]
    cols_labels = [str(x) for x in c.get("columns") or rows_labels]
    counts = c.get("counts") or []
    if not rows_labels or not counts:
        return ""
    top = max((v for row in counts for v in row), default=0) or 1
    cell = 34
    pad_l = left_margin([x[:18] for x in rows_labels])
    pad_t = 90
    width, height = pad_l + cell * len(cols_labels) + 10, pad_t + cell * len(rows_labels) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for j, label in enumerate(cols_labels):
        x = pad_l + j * cell + cell / 2
        parts.append(f'<text transform="translate({x:.1f},{pad_t - 6}) rotate(-45)" font-size="10">{esc(label[:18])}</text>')
    for i, label in enumerate(rows_labels):
        y = pad_t + i * cell
        parts.append(
            f'<text x="{pad_l - 4}" y="{y + cell / 2 + 4:.1f}" font-size="10" text-anchor="end">{esc(label[:18])}</text>'
        )
        for j, value in enumerate(counts[i] if i < len(counts) else []):
            share = value / top if isinstance(value, int | float) else 0.0
            colour = "#2ca02c" if i == j else "#d62728"
            other = cols_labels[j] if j < len(cols_labels) else ""
            parts.append(
                f'<rect x="{pad_l + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{colour}" '
                f'fill-opacity="{0.08 + 0.85 * share:.2f}"><title>{esc(label)} / {esc(other)}: {count(value)}</title></rect>'
                f'<text x="{pad_l + j * cell + cell / 2 - 1:.1f}" y="{y + cell / 2 + 3:.1f}" font-size="9" '
                f'text-anchor="middle">{count(value)}</text>'
            )
    parts.append("</svg>")
    return ("<h2>Confusion between annotators</h2><p class=muted>For every two annotators of one item: the label one "
            "gave (row) against the other's (column). Off the diagonal: where the guideline leaves room.</p>"
            + "".join(parts))  # fmt: skip


def _queue(s: LabelStatus) -> str:
    head = (f"<h2>Review queue</h2><p>{count(s.review_queue_size)} finished item(s) with consensus confidence below "
            f"{fmt(s.review_threshold)} wait for an expert · {count(s.reviews)} reviewed so far.</p>")  # fmt: skip
    if not s.review_queue:
        return head
    body = "".join(
        f"<tr><td class=l>{esc(r.get('item'))}</td><td class=l>{esc(label_text(r.get('label')))}</td>"
        f"<td>{fmt(r.get('confidence'))}</td><td>{count(r.get('annotations'))}</td></tr>"
        for r in s.review_queue[:MAX_ROWS]
    )
    more = s.review_queue_size - min(len(s.review_queue), MAX_ROWS)
    tail = f"<p class=muted>and {count(more)} more (keel label review).</p>" if more > 0 else ""
    return (head + "<table><tr><th class=l>item</th><th class=l>consensus label</th><th>confidence</th><th>answers</th></tr>"
            f"{body}</table>{tail}")  # fmt: skip


def _audits(s: LabelStatus) -> str:
    a = s.audits or {}
    audited = a.get("audited") or 0
    if not audited:
        return "<h2>Audits</h2><p class=muted>No audit yet (keel label audit PROJECT draws a random sample).</p>"
    interval = ""
    if a.get("low") is not None and a.get("high") is not None:
        interval = f" (95% interval {pct(a.get('low'))} to {pct(a.get('high'))})"
    rows = [("items audited", count(audited)), ("confirmed", _share(a.get("confirmed") or 0, audited)),
            ("corrected", _share(a.get("corrected") or 0, audited)),
            ("estimated label accuracy", pct(a.get("accuracy")) + interval)]  # fmt: skip
    return "<h2>Audits</h2>" + _kv(rows)


# building blocks ----------------------------------------------------------------------------------------------------


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    """Two-column table; the values are already escaped (built with ``count``/``fmt``/``esc``)."""
    return "<table>" + "".join(f"<tr><td class=l>{esc(k)}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _share(n: Any, total: Any) -> str:
    if not isinstance(total, int) or total <= 0 or not isinstance(n, int):
        return count(n)
    return f"{count(n)} ({pct(n / total)})"


def _bad(value: Any, floor: float) -> str:
    return " class=bad" if isinstance(value, int | float) and value < floor else ""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _seconds(ms: Any) -> str:
    x = _finite(ms)
    return "-" if x is None else f"{fmt(x / 1000)} s"


def _time(ms: Any) -> str:
    x = _finite(ms)
    if x is None:
        return "-"
    return dt.datetime.fromtimestamp(x / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _period(ms: int) -> str:
    if ms % 86_400_000 == 0:
        days = ms // 86_400_000
        return "day" if days == 1 else f"{days} days"
    if ms % 3_600_000 == 0:
        hours = ms // 3_600_000
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{fmt(ms / 60_000)} minutes"


def _stacked_bar(parts: Sequence[tuple[int, str, str]], total: int, width: int = 560, height: int = 26) -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 18}" role="img">']
    x = 0.0
    for n, name, colour in parts:
        w = width * n / total if total else 0.0
        if w > 0:
            out.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour}">'
                       f"<title>{esc(name)}: {count(n)}</title></rect>")  # fmt: skip
        x += w
    legend_x = 0
    for n, name, colour in parts:
        out.append(f'<rect x="{legend_x}" y="{height + 6}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{legend_x + 14}" y="{height + 15}" font-size="10">{esc(name)} {count(n)}</text>')  # fmt: skip
        legend_x += 150
    out.append("</svg>")
    return "".join(out)


def _line_chart(xs: Sequence[float], ys: Sequence[float | None]) -> str:
    return _multi_line_chart([("alpha", list(xs), list(ys))])


def _multi_line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float | None]]]) -> str:
    """Lines over time (x: ms since the epoch, labelled as dates), y from the data's range widened to include 0 and 1
    when the values are shares or coefficients; None leaves a gap."""
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy if y is not None]
    if not xs or not ys:
        return ""
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = min(min(ys), 0.0), max(max(ys), 1.0)
    ticks = [(v, fmt(v)) for v in (y0, (y0 + y1) / 2, y1)]
    pad_l, pad_r, pad_t, pad_b = left_margin([t for _, t in ticks]), 16, 10, 30

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (_W - pad_l - pad_r)

    def sy(y: float) -> float:
        return pad_t + (1 - (y - y0) / (y1 - y0)) * (_H - pad_t - pad_b)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">']
    for v, t in ticks:
        out.append(f'<line x1="{pad_l}" y1="{sy(v):.1f}" x2="{_W - pad_r}" y2="{sy(v):.1f}" stroke="#eee"/>'
                   f'<text x="{pad_l - 4}" y="{sy(v) + 4:.1f}" font-size="10" text-anchor="end">{t}</text>')  # fmt: skip
    for x, anchor in ((x0, "start"), (max(xs), "end")):
        out.append(f'<text x="{sx(x):.1f}" y="{_H - 10}" font-size="10" text-anchor="{anchor}">{esc(_time(x)[:10])}</text>')
    for i, (name, sxs, sys_) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for x, y in zip(sxs, sys_, strict=False):
            if y is None:
                runs.append([])  # a period with no value: a gap in the line
                continue
            runs[-1].append(f"{sx(x):.1f},{sy(y):.1f}")
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}">'
                       f"<title>{esc(name)} {esc(_time(x))}: {fmt(y)}</title></circle>")  # fmt: skip
        out.extend(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{" ".join(run)}">'
                   f"<title>{esc(name)}</title></polyline>" for run in runs if len(run) > 1)  # fmt: skip
    out.append("</svg>")
    return "".join(out)
