"""The monitor's offline HTML report: windows evaluated on real traffic (``evaluate_table``) against a real reference
profile, alerts and actions as the store keeps them; the page is parsed and its charts' points counted."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pytest

from keel.core.html import is_keel_report
from keel.core.monitoring import (
    ActionRecord,
    Alert,
    AlertRule,
    Monitor,
    MonitorWindow,
    check_action_record,
    check_alert,
    check_monitor,
    check_window,
)
from keel.data.profiling import compute_profile
from keel.monitor import Profile
from keel.monitor.report import MAX_POINTS, monitor_report, segments
from keel.monitor.windows import evaluate_table

HOUR = 3_600_000
T0 = 1_790_000_000_000  # a fixed start: the report must not depend on the clock
EVIL = "c<script>alert('col')</script>"
MONITOR = check_monitor(
    Monitor("churn-hourly", "churn", HOUR, "churn-train@3", (AlertRule("drift", "drift.share > 0.3", 2, "critical", ("log",)),))
)


class Page(HTMLParser):
    """What a browser would see: tags with their attributes, the text of headings, captions and the whole page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.h2: list[str] = []
        self.captions: list[str] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.open.append(tag)
        if tag == "h2":
            self.h2.append("")
        if tag == "figcaption":
            self.captions.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if "h2" in self.open:
            self.h2[-1] += data
        if "figcaption" in self.open:
            self.captions[-1] += data

    def all_text(self) -> str:
        return "".join(self.text)

    def lines(self, series: str) -> list[list[tuple[float, float]]]:
        """The points of every polyline (and single-point circle) of one series, in page order."""
        out = []
        for tag, attrs in self.tags:
            if attrs.get("data-series") != series:
                continue
            if tag == "polyline":
                out.append([tuple(map(float, p.split(","))) for p in (attrs["points"] or "").split()])
            elif tag == "circle":
                out.append([(float(attrs["cx"] or 0), float(attrs["cy"] or 0))])
        return out  # type: ignore[return-value]


def _traffic(rng: np.random.Generator, n: int, start: int, shifted: bool) -> pa.Table:
    """One window of a prediction log as ``read_window`` gives it: x1 moves when ``shifted``, a category appears."""
    x1, x2 = rng.normal(2.5 if shifted else 0.0, 1, n), rng.normal(0, 1, n)
    cats = ["a", "b", "new"] if shifted else ["a", "b", "c"]
    proba = 1 / (1 + np.exp(-2 * x2))
    return pa.table({
        "time": pa.array(start + np.arange(n) * 1000, pa.int64()), "request_id": [f"{start}-{i}" for i in range(n)],
        "row": pa.array(np.zeros(n, dtype=np.int64)), "latency_ms": rng.uniform(1, 3 if shifted else 2, n),
        "proba1": proba, "output": (proba > 0.5).astype(np.int64), "x1": x1, "x2": x2, EVIL: rng.choice(cats, n),
    })  # fmt: skip


@pytest.fixture(scope="module")
def evaluated():
    """Four hourly windows, the last two drifted on x1 and the category; labels only for the first three."""
    rng = np.random.default_rng(7)
    reference = compute_profile(pa.table({"x1": rng.normal(0, 1, 3000), "x2": rng.normal(0, 1, 3000),
                                          EVIL: rng.choice(["a", "b", "c"], 3000)}))  # fmt: skip
    windows, last = [], None
    for i in range(4):
        table = _traffic(rng, 1500, T0 + i * HOUR, shifted=i >= 2)
        truth = (rng.uniform(size=1500) < np.asarray(table["proba1"])).astype(int)
        labels = [int(v) for v in truth] if i < 3 else None
        result = evaluate_table(table, reference=reference, labels=labels, deployment="churn")
        windows.append(check_window(MonitorWindow("churn-hourly", T0 + i * HOUR, T0 + (i + 1) * HOUR, result.values(),
                                                  1500, 1500 if labels else 0, None, T0 + (i + 1) * HOUR + 5)))  # fmt: skip
        last = result
    assert (
        last is not None and last.drift is not None and sorted(last.drift.drifted) == sorted(["x1", EVIL])
    )  # the data drifts as meant
    current = last.profile.to_drift_profile()
    alert = check_alert(Alert(1, "churn-hourly", "drift", "critical", "firing", T0 + 2 * HOUR, T0 + 3 * HOUR,
                              windows[-1].values["drift.share"], "drift.share > 0.3 <script>alert(1)</script>", 2))  # fmt: skip
    old = check_alert(Alert(2, "churn-hourly", "drift", "critical", "resolved", T0, T0, 0.4, "an older firing", 1))
    actions = {1: [check_action_record(ActionRecord(1, "webhook:https://hooks.example/x", "failed", "HTTP 500 <b>", 3)),
                   check_action_record(ActionRecord(1, "log", "ok", "logged", 1))]}  # fmt: skip
    return windows, [alert, old], actions, (reference, current)


def test_report_parses_and_has_every_section(evaluated):
    windows, alerts, actions, profiles = evaluated
    text = monitor_report(MONITOR, windows, alerts, actions, drift_profiles=profiles, now_ms=T0 + 5 * HOUR)
    page = Page(text)
    assert page.h2 == ["Newest window", "Over time", "Drift per feature", "Alerts (2)"]
    words = page.all_text()
    for fact in ("churn-hourly", "churn-train@3", "1 h", "4 windows", "2026-09-21 14:13:20 UTC"):
        assert fact in words, fact
    assert "generated at" in words and "firing" in words and "resolved" in words
    assert "1,500 rows, 0 labelled" in words and "<td>1,500</td>" in text  # the newest window's counts, as counts
    captions = page.captions
    expected = ["drift share", "drift score, top columns", "performance: accuracy", "performance: roc_auc", "latency (ms)",
                "throughput (requests/s)", "quality: out_of_range_share", "quality: unseen_category_share"]  # fmt: skip
    for caption in expected:
        assert caption in captions, (caption, captions)
    assert "quality: missing_share" not in captions  # every value zero: nothing to draw


def test_drifted_columns_are_named_and_plotted_first(evaluated):
    windows, alerts, actions, profiles = evaluated
    page = Page(monitor_report(MONITOR, windows, alerts, actions, drift_profiles=profiles))
    summary = page.all_text().split("Drift: ", 1)[1].split("Data quality", 1)[0]
    assert "x1" in summary and EVIL in summary and "x2" not in summary
    assert "of 3 columns drifted" in summary and "by the drift tests on the profiles" in summary
    features = [c for c in page.captions if c.endswith(("(drifted)", "(stable)"))]
    assert sorted(features[:2]) == sorted(["x1 (drifted)", f"{EVIL} (drifted)"]) and features[2] == "x2 (stable)"
    rects = [a for t, a in page.tags if t == "rect"]
    assert len(rects) > 20  # reference and current bars per bin or category


def test_without_profiles_the_highest_scores_name_the_drifted(evaluated):
    windows, alerts, actions, _ = evaluated
    page = Page(monitor_report(MONITOR, windows, alerts, actions))
    summary = page.all_text().split("Drift: ", 1)[1].split("Data quality", 1)[0]
    assert "x1" in summary and EVIL in summary and "x2" not in summary and "the highest scores" in summary
    assert "No profiles given" in page.all_text()


def test_user_text_comes_out_as_text(evaluated):
    windows, alerts, actions, profiles = evaluated
    text = monitor_report(MONITOR, windows, alerts, actions, drift_profiles=profiles)
    page = Page(text)
    assert "script" not in {t for t, _ in page.tags}
    assert "drift.share > 0.3 <script>alert(1)</script>" in page.all_text()  # shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "HTTP 500 <b>" in page.all_text() and "HTTP 500 &lt;b&gt;" in text
    assert EVIL in page.all_text()


def test_alerts_table_lists_each_alert_with_its_actions(evaluated):
    windows, alerts, actions, _ = evaluated
    page = Page(monitor_report(MONITOR, windows, alerts, actions))
    words = page.all_text()
    table = words.split("Alerts (2)", 1)[1]
    assert table.index("drift.share > 0.3") < table.index("an older firing")  # firing first
    for cell in ("webhook:https://hooks.example/x", "failed", "HTTP 500", "logged", "critical"):
        assert cell in table, cell
    assert "Alerts firing (1)" in words


def test_offline_no_external_resources(evaluated):
    windows, alerts, actions, profiles = evaluated
    page = Page(monitor_report(MONITOR, windows, alerts, actions, drift_profiles=profiles))
    assert not {t for t, _ in page.tags} & {"script", "link", "img", "iframe", "object", "embed"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if value and re.match(r"\s*(https?:)?//", value):
                assert (tag, name, value) == ("svg", "xmlns", "http://www.w3.org/2000/svg")
    assert "@import" not in page.all_text() and "url(" not in page.all_text()  # the stylesheet is text to the parser


def test_file_is_a_keel_report(evaluated, tmp_path):
    windows, alerts, actions, _ = evaluated
    path = tmp_path / "report.html"
    path.write_text(monitor_report(MONITOR, windows, alerts, actions), encoding="utf-8")
    assert is_keel_report(path)


def _window(i: int, values: dict[str, float]) -> MonitorWindow:
    return check_window(MonitorWindow("churn-hourly", T0 + i * HOUR, T0 + (i + 1) * HOUR, values, 100, 0))


def test_known_series_points_gaps_and_dashed_estimate():
    """drift.share missing in window 4: two runs of 4 and 5 points; realised accuracy only for the labelled first 7
    windows (solid), the estimate for all 10 (dashed)."""
    windows = []
    for i in range(10):
        values = {"performance.estimated.accuracy": 0.9 - i / 100}
        if i != 4:
            values["drift.share"] = i / 10
        if i < 7:
            values["performance.realised.accuracy"] = 0.88 - i / 100
        windows.append(_window(i, values))
    page = Page(monitor_report(MONITOR, list(reversed(windows)), [], {}))  # any order: sorted by start
    runs = page.lines("drift.share")
    assert [len(r) for r in runs] == [4, 5]
    xs = [x for run in runs for x, _ in run]
    ys = [y for run in runs for _, y in run]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # later windows right, higher shares up
    polylines = {a["data-series"]: a for t, a in page.tags if t == "polyline"}
    assert len(page.lines("realised")[0]) == 7 and len(page.lines("estimated")[0]) == 10
    assert "stroke-dasharray" in polylines["estimated"] and "stroke-dasharray" not in polylines["realised"]
    assert "No windows yet" not in page.all_text()


def test_no_windows_yet():
    page = Page(monitor_report(MONITOR, [], [], {}))
    assert "No windows yet" in page.all_text() and "no windows" in page.all_text()
    assert not [t for t, _ in page.tags if t in ("polyline", "circle")]
    assert page.h2 == ["Newest window", "Drift per feature", "Alerts (0)"] and "No alerts." in page.all_text()


def test_single_window_with_some_values_missing():
    """Only health: no drift measured, no performance; one window draws points, not lines."""
    window = _window(0, {"health.latency_p50_ms": 2.0, "health.latency_p99_ms": 9.0, "health.throughput_per_s": 4.0})
    page = Page(monitor_report(MONITOR, [window], [], {}))
    words = page.all_text()
    assert "not measured in this window" in words and "no performance values" in words
    assert page.lines("p50") and len(page.lines("p50")) == 1 and len(page.lines("p50")[0]) == 1
    assert not [t for t, _ in page.tags if t == "polyline"]
    assert "drift share" not in page.captions and "latency (ms)" in page.captions


def test_thousand_windows_of_twenty_columns_stay_small():
    rng = np.random.default_rng(1)
    columns = [f"f{j}" for j in range(20)]
    windows = []
    for i in range(1000):
        values = {"drift.share": float(rng.uniform(0, 0.2)), "drift.columns": 1.0,
                  "health.latency_p50_ms": float(rng.uniform(1, 2)), "health.latency_p99_ms": float(rng.uniform(5, 9)),
                  "health.throughput_per_s": 10.0, "health.rows": 100.0, "health.requests": 100.0,
                  "performance.estimated.accuracy": 0.9, "performance.estimated.roc_auc": 0.95}  # fmt: skip
        if i < 900:
            values["performance.realised.accuracy"] = 0.89
        for c in columns:
            values[f"drift.{c}.score"] = float(rng.uniform(0, 0.3))
            for check in ("missing_share", "missing_share_change", "out_of_range_share"):
                values[f"quality.{c}.{check}"] = float(rng.uniform(0, 0.01))
        windows.append(_window(i, values))
    windows[537].values["drift.share"] = 1.0  # one spike: downsampling keeps it
    ref = compute_profile(pa.table({c: rng.normal(0, 1, 2000) for c in columns}))
    cur = Profile.from_table(pa.table({c: rng.normal(0.5 if c == "f3" else 0, 1, 2000) for c in columns})).to_drift_profile()
    text = monitor_report(MONITOR, windows, [], {}, drift_profiles=(ref, cur))
    assert len(text.encode()) < 2_000_000
    page = Page(text)
    for tag, attrs in page.tags:
        if tag == "polyline":
            assert len((attrs["points"] or "").split()) <= MAX_POINTS
    runs = page.lines("drift.share")
    assert len(runs) == 1 and len(runs[0]) == MAX_POINTS
    top = min(y for _, y in runs[0])
    assert sum(1 for _, y in runs[0] if y == top) == 1  # the spike, alone at the top
    assert "f3 (drifted)" in page.captions


def test_segments_keep_extremes_and_split_at_gaps():
    xs = list(range(1000))
    ys: list[float | None] = [0.0] * 1000
    ys[10], ys[11] = 5.0, -5.0
    for i in range(600, 700):
        ys[i] = None
    runs = segments(xs, ys, limit=100)
    assert len(runs) == 2 and sum(len(r) for r in runs) <= 100
    assert (10, 5.0) in runs[0] and (11, -5.0) in runs[0]
    assert runs[0][-1][0] < 600 and runs[1][0][0] >= 700
    assert segments(xs[:5], [1.0, None, 2.0, 3.0, None]) == [[(0, 1.0)], [(2, 2.0), (3, 3.0)]]
