"""Offline HTML reports for a profile, a validation result and a drift result.

The drift report overlays, per column, the reference's distribution on the current one:
numeric columns on the reference's histogram bins, categorical columns on their top
categories. Everything is inline SVG.

Every field goes through ``esc``/``fmt``: profiles and results are read back from stores that
any client writes to, so a column name, a category or a "number" may be hostile text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keel.core.html import count, esc, figure, fmt, page, pct
from keel.data.drift_detection import DriftResult, _cdf_at
from keel.data.validation import ValidationResult

TOP_CATEGORIES = 12
_VERDICT_STYLE = {"drift": "bad", "columns": "warn", "none": "ok"}  # green only when no column drifted


def _numeric_shares(ref: dict[str, Any], cur: dict[str, Any] | None) -> tuple[list[str], list[list[float]]]:
    edges = np.asarray(ref["histogram"]["edges"])
    counts = np.asarray(ref["histogram"]["counts"], dtype=float)
    series = [list(counts / max(counts.sum(), 1.0))]
    if cur is not None and "grid" in cur:
        cdf = _cdf_at(np.asarray(cur["grid"]), edges)
        shares = np.diff(cdf)
        shares[0] += cdf[0]
        shares[-1] += 1.0 - cdf[-1]
        series.append(list(shares))
    labels = [fmt(float(e)) for e in edges[:-1]]
    return labels, series


def _categorical_shares(ref: dict[str, Any], cur: dict[str, Any] | None) -> tuple[list[str], list[list[float]]]:
    ref_freq = ref.get("frequencies", {})
    cur_freq = (cur or {}).get("frequencies", {})
    keys = sorted(set(ref_freq) | set(cur_freq), key=lambda k: -(ref_freq.get(k, 0) + cur_freq.get(k, 0)))[:TOP_CATEGORIES]
    series = [[ref_freq.get(k, 0) / max(sum(ref_freq.values()), 1) for k in keys]]
    if cur is not None:
        series.append([cur_freq.get(k, 0) / max(sum(cur_freq.values()), 1) for k in keys])
    return keys, series


def distribution_chart(name: str, ref: dict[str, Any], cur: dict[str, Any] | None = None) -> str:
    if ref["kind"] == "numeric" and "histogram" in ref:
        labels, series = _numeric_shares(ref, cur)
    elif ref["kind"] == "categorical":
        labels, series = _categorical_shares(ref, cur)
    else:
        return ""
    from keel.core.html import bar_chart

    return figure(name, bar_chart(labels, series), ["reference", "current"] if cur is not None else [])


def profile_html(profile: dict[str, Any], title: str) -> str:
    rows = ["<h2>Columns</h2><div class=wide><table><tr>"]
    heads = ("column", "type", "missing", "distinct", "min", "mean", "max", "std", "top values")
    rows.append("".join(f"<th class=l>{h}</th>" if i in (0, 1, 8) else f"<th>{h}</th>" for i, h in enumerate(heads)))
    rows.append("</tr>")
    for name, col in profile["columns"].items():
        top = ", ".join(f"{esc(k)} ({fmt(c)})" for k, c in col.get("top", [])[:4])
        distinct = fmt(col.get("distinct", "-")) + ("" if col.get("distinct_method", "exact") == "exact" else " ~")
        cells = [
            f"<td class=l>{esc(name)}</td><td class=l>{esc(col.get('type', ''))}</td>",
            f"<td>{fmt(col.get('missing'))} ({pct(col.get('missing_share'))})</td><td>{distinct}</td>",
            "".join(f"<td>{fmt(col.get(k))}</td>" for k in ("min", "mean", "max", "std")),
            f"<td class=l>{top}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append(f"</table></div><p class=muted>{count(profile.get('row_count'))} rows; ~ marks a sketched distinct count</p>")
    charts = [distribution_chart(name, col) for name, col in profile["columns"].items()]
    rows.append("<h2>Distributions</h2><div class=charts>" + "".join(c for c in charts if c) + "</div>")
    return page(title, "".join(rows))


def validation_html(result: ValidationResult, title: str | None = None) -> str:
    verdict = "<span class=ok>passed</span>" if result.passed else "<span class=bad>failed</span>"
    out = [
        f"<p>suite <b>{esc(result.suite)}</b> on {count(result.row_count)} rows: {verdict} — "
        f"{len(result.errors)} errors, {len(result.warnings)} warnings, {len(result.results)} checks</p>",
        "<div class=wide><table><tr><th class=l>check</th><th class=l>column</th><th class=l>severity</th>"
        "<th class=l>result</th><th>failing rows</th><th>share</th><th class=l>examples</th><th class=l>message</th></tr>",
    ]
    for r in sorted(result.results, key=lambda r: (r.passed, r.severity != "error")):
        cls = "ok" if r.passed else ("bad" if r.severity == "error" else "warn")
        examples = ", ".join(esc(x) for x in r.examples)
        out.append(
            f"<tr><td class=l>{esc(r.kind)}</td><td class=l>{esc(r.column or '')}</td><td class=l>{esc(r.severity)}</td>"
            f"<td class='l {cls}'>{'pass' if r.passed else 'FAIL'}</td><td>{count(r.failed_count)}</td>"
            f"<td>{pct(r.failed_share, 2)}</td><td class=l>{examples}</td><td class=l>{esc(r.message)}</td></tr>"
        )
    out.append("</table></div>")
    return page(title or f"validation: {result.suite}", "".join(out))


def drift_html(result: DriftResult, title: str | None = None) -> str:
    style = _VERDICT_STYLE[result.verdict]
    out = [
        f"<p class='headline {style}'>{esc(result.headline)}</p>",
        f"<p>{esc(result.current)} ({count(result.current_rows)} rows) against {esc(result.reference)} "
        f"({count(result.reference_rows)} rows): {pct(result.share_drifted, 0)} of the columns drifted; "
        f"the dataset drifts at {pct(result.drift_share, 0)}</p>",
        "<div class=wide><table><tr><th class=l>column</th><th class=l>kind</th><th class=l>test</th><th>statistic</th>"
        "<th>p-value</th><th>threshold</th><th class=l>verdict</th><th>KS / chi2 p</th><th>PSI</th></tr>",
    ]
    for c in sorted(result.columns, key=lambda c: (not c.drifted, c.column)):
        p_test = c.tests.get("ks") or c.tests.get("chi2") or {}
        out.append(
            f"<tr><td class=l>{esc(c.column)}</td><td class=l>{esc(c.kind)}</td><td class=l>{esc(c.test)}</td>"
            f"<td>{fmt(c.statistic)}</td><td>{fmt(c.p_value)}</td><td>{fmt(c.threshold)}</td>"
            f"<td class='l {'bad' if c.drifted else 'ok'}'>{'drifted' if c.drifted else 'stable'}</td>"
            f"<td>{fmt(p_test.get('p_value'))}</td><td>{fmt(c.tests.get('psi', {}).get('statistic'))}</td></tr>"
        )
    out.append("</table></div><p class=muted>the verdict comes from the test named; the others are shown for context</p>")
    charts = [
        distribution_chart(f"{c.column} ({'drifted' if c.drifted else 'stable'})",
                           result.reference_profile["columns"][c.column], result.current_profile["columns"][c.column])
        for c in sorted(result.columns, key=lambda c: (not c.drifted, c.column))
    ]  # fmt: skip
    out.append("<h2>Reference against current</h2><div class=charts>" + "".join(ch for ch in charts if ch) + "</div>")
    return page(title or f"drift: {result.current} against {result.reference}", "".join(out))
