"""The before/after HTML of a mitigation: one table and the selection rate per group as bars (offline, escaped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core.html import bar_chart, esc, figure, fmt

if TYPE_CHECKING:
    from keel.fairness.mitigate import Mitigation

LABELS = {
    "accuracy": "accuracy",
    "selection_rate": "selection rate",
    "demographic_parity_difference": "demographic parity difference",
    "equalized_odds_difference": "equalized odds difference",
}
# lower is fairer for the differences: a fall is good news there, and shown as such
LOWER_IS_BETTER = ("demographic_parity_difference", "equalized_odds_difference")


def _change(metric: str, change: float) -> str:
    if metric not in LOWER_IS_BETTER or change == 0:
        return fmt(change)
    return f"<span class={'ok' if change < 0 else 'bad'}>{fmt(change)}</span>"


def fragment(m: Mitigation) -> str:
    """The mitigation as an HTML fragment: what was done, the before/after table, the selection rates per group."""
    head = (
        f"<p>{esc(m.source.uri)} &rarr; {esc(m.version.uri)}: fairlearn {esc(m.method)} ({esc(m.constraint)}), "
        f"sensitive: {esc(', '.join(m.sensitive))}; run {esc(m.run_id)}</p>"
    )
    rows = []
    for r in m.table.to_dict("records"):
        group = esc(r["group"]) if r["group"] else "<span class=muted>overall</span>"
        rows.append(
            f"<tr><td class=l>{esc(LABELS.get(r['metric'], r['metric']))}</td><td class=l>{group}</td>"
            f"<td>{fmt(r['before'])}</td><td>{fmt(r['after'])}</td><td>{_change(r['metric'], r['change'])}</td></tr>"
        )
    table = (
        "<table><tr><th class=l>metric</th><th class=l>group</th><th>before</th><th>after</th><th>change</th></tr>"
        + "".join(rows) + "</table>"
    )  # fmt: skip
    rates = m.table[(m.table["metric"] == "selection_rate") & (m.table["group"] != "")]
    groups = [str(g) for g in rates["group"]]
    chart = figure(
        "selection rate per group", bar_chart(groups, [list(rates["before"]), list(rates["after"])]),
        ["before", "after"],
    )  # fmt: skip
    return f"<section class=mitigation>{head}<div class=wide>{table}</div><div class=charts>{chart}</div></section>"
