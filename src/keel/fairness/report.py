"""The offline HTML report of a fairness assessment: the disparities of each set of sensitive features, the worst group,
and per set a table and a bar chart per metric with a bar per group. Inline SVG, one stylesheet (``keel.core.html``).

>>> html = fairness_html(assessment.to_dict())                       # doctest: +SKIP
>>> html = fairness_html({**stored.details, "metrics": stored.metrics})  # a recorded one, read back  # doctest: +SKIP

Group values are the data's (anyone's text) and a recorded assessment comes back from a store any client writes to:
every field goes through ``esc``/``fmt``/``pct``/``count``, and a value of the wrong type shows as text, never breaks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keel.core.html import bar_chart, count, esc, figure, fmt, page

__all__ = ["fairness_html"]

_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy", "auc")
_LABELS = {"selection_rate": "selection rate", "true_positive_rate": "TPR", "false_positive_rate": "FPR",
           "accuracy": "accuracy", "auc": "AUC"}  # fmt: skip
_DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                "equalized_odds_ratio")  # fmt: skip


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def group_label(group: Any) -> str:
    """A group as text: ``F`` for one feature, ``F, black`` for an intersection (escape it where it is shown)."""
    if isinstance(group, Mapping):
        return ", ".join(str(v) for v in group.values())
    return str(group)


def _named(group: Any) -> str:
    """A group with its features named: ``sex=F, race=b``."""
    if isinstance(group, Mapping):
        return ", ".join(f"{k}={v}" for k, v in group.items())
    return str(group)


def _set_key(s: Mapping[str, Any]) -> str:
    return " & ".join(str(f) for f in _list(s.get("features")))


def _summary(sets: Sequence[Mapping[str, Any]]) -> str:
    heads = ["set of features", "groups", "smallest group", "DP difference", "DP ratio", "EO difference", "EO ratio",
             "accuracy min", "accuracy difference"]  # fmt: skip
    out = ["<h2>Disparities</h2><div class=wide><table><tr>"]
    out.append("".join(f"<th class=l>{h}</th>" if i == 0 else f"<th>{h}</th>" for i, h in enumerate(heads)) + "</tr>")
    for s in sets:
        groups = [_dict(g) for g in _list(s.get("groups"))]
        sizes = [n for n in (_number(g.get("count")) for g in groups) if n is not None]
        accuracy = [a for a in (_number(g.get("accuracy")) for g in groups) if a is not None]
        cells = [f"<td class=l>{esc(_set_key(s))}</td>", f"<td>{count(len(groups))}</td>",
                 f"<td>{count(int(min(sizes))) if sizes else '-'}</td>"]  # fmt: skip
        cells += [f"<td>{fmt(s.get(d))}</td>" for d in _DISPARITIES]
        cells.append(f"<td>{fmt(min(accuracy)) if accuracy else '-'}</td>")
        cells.append(f"<td>{fmt(_dict(s.get('difference')).get('accuracy'))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append(
        "</table></div><p class=muted>DP: demographic parity (selection rates), EO: equalized odds (the worse of the TPR "
        "and FPR gaps); differences are largest minus smallest group, ratios smallest over largest (1 is parity)</p>"
    )
    return "".join(out)


def _worst(worst: Any) -> str:
    w = _dict(worst)
    if not w:
        return ""
    return (
        f"<p>worst group by accuracy: <b>{esc(_named(w.get('group')))}</b> ({count(w.get('count'))} rows): "
        f"accuracy {fmt(w.get('accuracy'))}, selection rate {fmt(w.get('selection_rate'))}, "
        f"TPR {fmt(w.get('true_positive_rate'))}, FPR {fmt(w.get('false_positive_rate'))}</p>"
    )


def _set_section(s: Mapping[str, Any]) -> str:
    groups = [_dict(g) for g in _list(s.get("groups"))]
    rates = [m for m in _RATES if any(m in g for g in groups)]
    overall = _dict(s.get("overall"))
    out = [f"<h2>By {esc(_set_key(s))}</h2><div class=wide><table><tr><th class=l>group</th><th>count</th>"]
    out.append("".join(f"<th>{_LABELS[m]}</th>" for m in rates) + "</tr>")
    for g in groups:
        out.append(f"<tr><td class=l>{esc(group_label(g.get('group')))}</td><td>{count(g.get('count'))}</td>"
                   + "".join(f"<td>{fmt(g.get(m))}</td>" for m in rates) + "</tr>")  # fmt: skip
    total = sum(n for n in (_number(g.get("count")) for g in groups) if n is not None)
    out.append(f"<tr><th class=l>overall</th><th>{count(int(total))}</th>"
               + "".join(f"<th>{fmt(overall.get(m))}</th>" for m in rates) + "</tr></table></div>")  # fmt: skip
    labels = [group_label(g.get("group")) for g in groups]
    charts = []
    for m in rates:
        values = [_number(g.get(m)) for g in groups]
        series = [float("nan") if v is None else v for v in values]
        caption = f"{_LABELS[m]} by {_set_key(s)} (overall {fmt(overall.get(m))})"
        charts.append(figure(caption, bar_chart(labels, [series])))
    out.append("<div class=charts>" + "".join(charts) + "</div>")
    return "".join(out)


def fairness_html(assessment: Mapping[str, Any], title: str | None = None) -> str:
    """A self-contained page of an assessment (``FairnessAssessment.to_dict()``, or a recorded one's details with its
    metrics): what was assessed, the disparities per set, the worst group, and per set a table and a chart per metric."""
    a = _dict(assessment)
    sets = [_dict(s) for s in _list(a.get("sets"))]
    sensitive = ", ".join(str(f) for f in _list(a.get("sensitive")))
    what = [f"model <b>{esc(a.get('model') or '(predictions)')}</b>"]
    if a.get("data"):
        what.append(f"data <b>{esc(a['data'])}</b>")
    what.append(f"{count(a.get('rows'))} rows")
    if a.get("target"):
        what.append(f"target <b>{esc(a['target'])}</b> (positive: {esc(a.get('pos_label'))})")
    body = [f"<p>{', '.join(what)}; sensitive features: <b>{esc(sensitive)}</b></p>"]
    body.append(_summary(sets))
    body.append(_worst(a.get("worst_group")))
    body.extend(_set_section(s) for s in sets)
    metrics = _dict(a.get("metrics"))
    if metrics:
        body.append("<h2>Recorded metrics</h2><p class=muted>gates read them as fairness.&lt;name&gt;</p><table>")
        body.append("".join(f"<tr><td class=l>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in metrics.items()))
        body.append("</table>")
    return page(title or f"fairness: {a.get('model') or sensitive}", "".join(body))
