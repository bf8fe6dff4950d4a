"""The HTML report of a study or sweep: optimisation history, parameter importances, all trials."""

from __future__ import annotations

import math

from keel.core.html import bar_chart, esc, figure, fmt, page, param, xy_chart
from keel.core.ranking import best_value as best_of
from keel.core.ranking import is_better
from keel.tune.trials import TrialRecord


def study_html(
    trials: list[TrialRecord], metric: str, direction: str, importances: dict[str, float] | None = None, title: str = "study"
) -> str:
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    out = [
        f"<p>{len(trials)} trials: {len(complete)} complete, {sum(t.state == 'pruned' for t in trials)} pruned, "
        f"{sum(t.state == 'failed' for t in trials)} failed; {direction} {esc(metric)}</p><div class=charts>"
    ]
    best_so_far: list[float] = []
    best: float | None = None
    for t in complete:
        if is_better(t.value, best, direction):
            best = t.value
        best_so_far.append(best if best is not None else math.nan)  # no best yet (a NaN first trial): no point
    if complete:
        xs = [float(t.number) for t in complete]
        ys = [t.value for t in complete if t.value is not None]  # every one of them: complete has values
        chart = xy_chart([("trial", xs, ys, "points"), ("best so far", xs, best_so_far, "line")])
        out.append(figure(f"optimisation history: {metric} by trial", chart, ["trial", "best so far"]))
    if importances:
        names = sorted(importances, key=lambda k: -importances[k])
        out.append(figure("parameter importance (fANOVA)", bar_chart(names, [[importances[n] for n in names]])))
    out.append("</div><h2>Trials</h2><div class=wide><table><tr><th>#</th><th class=l>state</th>")
    params = sorted({k for t in trials for k in t.params})
    out += [f"<th class=l>{esc(p)}</th>" for p in params]
    out.append(f"<th>{esc(metric)}</th><th class=l>run</th></tr>")
    values = [t.value for t in complete if t.value is not None]
    best_value = best_of(values, direction)
    for t in sorted(trials, key=lambda t: t.number):
        cls = " class=best" if t.value is not None and t.value == best_value else ""
        cells = "".join(f"<td class=l>{param(t.params.get(p, '-'))}</td>" for p in params)
        run = f"<td class=l>{t.run_id[:12]}</td>"
        out.append(f"<tr><td>{t.number}</td><td class=l>{t.state}</td>{cells}<td{cls}>{fmt(t.value)}</td>{run}</tr>")
    out.append("</table></div>")
    return page(title, "".join(out))
