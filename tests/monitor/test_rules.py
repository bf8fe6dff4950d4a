"""Alert rules of monitors: the expression language (parsed once, refused with the field, the text, what was expected
and where) and its verdict over a series of windows (consecutive breaches, baselines, wildcards, missing values)."""

from __future__ import annotations

import pytest

from keel.core.alert_rules import check_expression, evaluate, parse_rule
from keel.core.errors import InvalidArgument
from keel.core.monitoring import AlertRule, MonitorWindow

HOUR = 3_600_000


def _window(i: int, **values: float) -> MonitorWindow:
    return MonitorWindow("churn-monitor", i * HOUR, (i + 1) * HOUR, dict(values))


def _series(name: str, *values: float | None) -> list[MonitorWindow]:
    """One window per hour, ``None`` where the window lacks the value."""
    return [
        MonitorWindow("churn-monitor", i * HOUR, (i + 1) * HOUR, {} if v is None else {name: v}) for i, v in enumerate(values)
    ]


# parsing ------------------------------------------------------------------------------------------------------------


ACC = "performance.realised.accuracy"


@pytest.mark.parametrize(
    ("expression", "parts", "op", "kind", "number"),
    [
        ("drift.share > 0.3", ("drift.share",), ">", "absolute", 0.3),
        ("  health.latency_p99_ms>=250  ", ("health.latency_p99_ms",), ">=", "absolute", 250.0),
        (f"{ACC} <= -1.5e-1", (ACC,), "<=", "absolute", -0.15),
        ("quality.age.missing_share == 0", ("quality.age.missing_share",), "==", "absolute", 0.0),
        ("quality.age.out_of_range_share != .5", ("quality.age.out_of_range_share",), "!=", "absolute", 0.5),
        ('"drift.mean radius.score" > 0.2', ("drift.mean radius.score",), ">", "absolute", 0.2),
        ('"quality.say \\"hi\\".missing_share" < 1', ('quality.say "hi".missing_share',), "<", "absolute", 1.0),
        ('"drift.a\\\\b.score" < 1', ("drift.a\\b.score",), "<", "absolute", 1.0),
        ('"drift.x\\*y.score" > 1', ("drift.x*y.score",), ">", "absolute", 1.0),
        ("drift.*.score > 0.2", ("drift.", ".score"), ">", "absolute", 0.2),
        ('"quality.*.missing_share" > 0.1', ("quality.", ".missing_share"), ">", "absolute", 0.1),
        (f"{ACC} < baseline - 0.05", (ACC,), "<", "delta", -0.05),
        ("health.latency_p99_ms > baseline*1.5", ("health.latency_p99_ms",), ">", "relative", 0.5),
        (f"{ACC} < baseline - 2%", (ACC,), "<", "relative", -0.02),
        ("drift.share > baseline + 10%", ("drift.share",), ">", "relative", 0.1),
        ("drift.share >= baseline", ("drift.share",), ">=", "baseline", 0.0),
    ],
)
def test_valid_expressions_parse(expression: str, parts: tuple[str, ...], op: str, kind: str, number: float) -> None:
    parsed = parse_rule(expression)
    assert (parsed.name, parsed.parts, parsed.op, parsed.kind) == ("*".join(parts), parts, op, kind)
    assert parsed.number == pytest.approx(number)
    assert check_expression(expression) == expression


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("drift.mean radius.score > 0.2",
         "at character 12 ('radius.score') expected an operator: > >= < <= == != (a name with spaces goes in double quotes)"),
        ("drift.share = 0.3", "at character 13 ('= 0.3') expected an operator: > >= < <= == !=; got"),
        ("drift.share > high", "at character 15 ('high') expected a number or baseline"),
        ("drift.share >", "at the end expected a number or baseline"),
        ("drift.share > 0.3 and more", "at character 19 ('and more') expected the end of the rule"),
        ("drfit.share > 0.3",
         "at character 1 ('drfit.share ') expected a value name starting with drift., prediction_drift., quality., "
         "health., performance."),
        ("drift. > 0.3", "at character 1 ('drift. > 0.3') expected a value name starting with"),
        ("*.score > 0.3", "at character 1 ('*.score > 0.') expected a value name starting with"),
        ("> 0.3", "at character 1 ('> 0.3') expected a value name such as drift.share (in double quotes when it has spaces)"),
        ('"drift.mean radius.score > 0.2', 'at the end expected the closing " of the name opened at character 1'),
        ('"drift.a\\b" > 1', "at character 10 ('b\" > 1') expected \\\" or \\\\ or \\* after a backslash"),
        ("drift.** > 1", "at character 1 ('drift.** > 1') expected a name with one * at a time"),
        ("drift.share > 1e999", "at character 15 ('1e999') expected a finite number"),
        ("drift.share > baseline / 2", "at character 24 ('/ 2') expected +, - or * after baseline, or the end of the rule"),
        ("drift.share > baseline - x", "at character 26 ('x') expected a number after baseline -"),
        ("drift.share > baseline * 2%", "at character 27 ('%') expected the end of the rule: 'baseline * factor' takes no %"),
        ("drift.share > 0.3 > 0.2", "at character 19 ('> 0.2') expected the end of the rule"),
    ],
)  # fmt: skip
def test_bad_expressions_name_field_text_expectation_and_position(expression: str, expected: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_rule(expression)
    message = str(caught.value)
    assert message.startswith("expression must be 'NAME OP NUMBER' or 'NAME OP baseline [+|-|* N[%]]'")
    assert expected in message
    assert message.endswith(f"got {expression!r}")
    with pytest.raises(InvalidArgument, match=r"^expression must be"):
        check_expression(expression)


@pytest.mark.parametrize("expression", ["", "   ", None, 3, ["drift.share > 1"]])
def test_non_text_or_empty_expressions_are_refused(expression: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^expression must be 'NAME OP NUMBER'"):
        check_expression(expression)
    with pytest.raises(InvalidArgument, match=r"^expression must be"):
        parse_rule(expression)  # type: ignore[arg-type]


def test_a_too_long_name_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="expected a value name of at most 300 printable characters"):
        parse_rule(f"drift.{'x' * 300}.score > 1")


# evaluation ---------------------------------------------------------------------------------------------------------


def test_fires_only_after_for_windows_consecutive_breaches() -> None:
    rule = AlertRule("drifting", "drift.share > 0.3", for_windows=3)
    windows = _series("drift.share", 0.1, 0.4, 0.45, 0.5)
    pending = evaluate(rule, windows[:3])
    assert (pending.state, pending.windows, pending.fires, pending.resolves) == ("pending", 2, False, False)
    assert pending.message == "drift.share = 0.45 > 0.3 for 2 of 3 windows"
    firing = evaluate(rule, windows)
    assert (firing.state, firing.windows, firing.value, firing.window_ms) == ("firing", 3, 0.5, 3 * HOUR)
    assert firing.fires and not firing.resolves
    assert firing.message == "drift.share = 0.5 > 0.3 for 3 windows"
    assert [(b.name, b.value, b.threshold) for b in firing.breaches] == [("drift.share", 0.5, 0.3)]


def test_a_fine_window_in_between_restarts_the_count() -> None:
    rule = AlertRule("drifting", "drift.share > 0.3", for_windows=3)
    verdict = evaluate(rule, _series("drift.share", 0.4, 0.5, 0.2, 0.6, 0.7))
    assert (verdict.state, verdict.windows) == ("pending", 2)
    assert evaluate(rule, _series("drift.share", 0.4, 0.5, 0.2, 0.6, 0.7, 0.8)).state == "firing"


def test_a_missing_value_or_a_missing_window_in_between_restarts_the_count() -> None:
    rule = AlertRule("drifting", "drift.share > 0.3", for_windows=2)
    assert evaluate(rule, _series("drift.share", 0.4, None, 0.6)).state == "pending"
    hole = [_window(0, **{"drift.share": 0.4}), _window(2, **{"drift.share": 0.6})]  # no window stored for hour 1
    assert (evaluate(rule, hole).state, evaluate(rule, hole).windows) == ("pending", 1)
    touching = [_window(0, **{"drift.share": 0.4}), _window(1, **{"drift.share": 0.6})]
    assert evaluate(rule, touching).state == "firing"


def test_windows_are_taken_in_time_order_whatever_the_list_order() -> None:
    rule = AlertRule("drifting", "drift.share > 0.3", for_windows=2)
    windows = _series("drift.share", 0.4, 0.5, 0.1)
    assert evaluate(rule, windows).state == "ok"
    assert evaluate(rule, list(reversed(windows))).state == "ok"


def test_the_count_keeps_growing_while_firing() -> None:
    verdict = evaluate(
        AlertRule("hot", "health.latency_p99_ms >= 250", for_windows=2), _series("health.latency_p99_ms", 300, 250, 400, 260)
    )
    assert (verdict.state, verdict.windows, verdict.value) == ("firing", 4, 260)
    assert verdict.message == "health.latency_p99_ms = 260 >= 250 for 4 windows"


def test_fire_then_resolve() -> None:
    rule = AlertRule("drifting", "drift.share > 0.3", for_windows=1)
    windows = _series("drift.share", 0.5, 0.25)
    assert evaluate(rule, windows[:1]).state == "firing"
    verdict = evaluate(rule, windows)
    assert (verdict.state, verdict.resolves, verdict.fires, verdict.value, verdict.breaches) == ("ok", True, False, 0.25, ())
    assert verdict.message == "drift.share = 0.25, not > 0.3"


def test_a_missing_value_at_the_newest_window_is_unknown_neither_firing_nor_resolving() -> None:
    rule = AlertRule("accuracy", "performance.realised.accuracy < 0.8", for_windows=1)
    verdict = evaluate(rule, _series("performance.realised.accuracy", 0.7, None))
    assert (verdict.state, verdict.fires, verdict.resolves, verdict.value) == ("unknown", False, False, None)
    assert verdict.message == f"no value performance.realised.accuracy in the window starting at {HOUR}"
    assert evaluate(rule, []).state == "unknown"


def test_baseline_relative_thresholds() -> None:
    baseline = _window(0, **{"performance.realised.accuracy": 0.9, "health.latency_p99_ms": 120.0})
    drop = AlertRule("accuracy drop", "performance.realised.accuracy < baseline - 0.05", for_windows=1)
    assert evaluate(drop, [_window(1, **{"performance.realised.accuracy": 0.86})], baseline).state == "ok"
    verdict = evaluate(drop, [_window(1, **{"performance.realised.accuracy": 0.84})], baseline)
    assert verdict.state == "firing"
    assert verdict.breaches[0].threshold == pytest.approx(0.85)
    assert verdict.message == "performance.realised.accuracy = 0.84 < baseline - 0.05 = 0.85 for 1 window"
    slower = AlertRule("slower", "health.latency_p99_ms > baseline * 1.5", for_windows=1)
    assert evaluate(slower, [_window(1, **{"health.latency_p99_ms": 170.0})], baseline).state == "ok"
    assert evaluate(slower, [_window(1, **{"health.latency_p99_ms": 190.0})], baseline).message == (
        "health.latency_p99_ms = 190 > baseline * 1.5 = 180 for 1 window"
    )
    relative = AlertRule("relative", "performance.realised.accuracy < baseline - 10%", for_windows=1)
    assert evaluate(relative, [_window(1, **{"performance.realised.accuracy": 0.82})], baseline).state == "ok"  # 0.9 - 9%
    below = evaluate(relative, [_window(1, **{"performance.realised.accuracy": 0.8})], baseline)
    assert below.state == "firing"
    assert below.breaches[0].threshold == pytest.approx(0.81)


def test_a_baseline_rule_without_a_baseline_value_is_unknown() -> None:
    rule = AlertRule("accuracy drop", "performance.realised.accuracy < baseline - 0.05", for_windows=1)
    window = _window(1, **{"performance.realised.accuracy": 0.5})
    no_window = evaluate(rule, [window], None)
    assert (no_window.state, no_window.message) == ("unknown", "no baseline window for performance.realised.accuracy")
    no_value = evaluate(rule, [window], _window(0, **{"drift.share": 0.1}))
    assert (no_value.state, no_value.message) == ("unknown", "no value performance.realised.accuracy in the baseline window")


def test_wildcards_breach_when_any_column_does_and_say_which() -> None:
    rule = AlertRule("column drift", "drift.*.score > 0.2", for_windows=2)
    values = {"drift.share": 0.9, "drift.mean radius.score": 0.31, "drift.a.b.score": 0.25, "drift.age.score": 0.1}
    verdict = evaluate(rule, [_window(0, **{"drift.age.score": 0.3}), _window(1, **values)])
    assert verdict.state == "firing"
    assert [b.name for b in verdict.breaches] == ["drift.mean radius.score", "drift.a.b.score"]
    assert verdict.value == 0.31
    assert verdict.message == '"drift.mean radius.score" = 0.31 > 0.2 for 2 windows (and 1 more: drift.a.b.score = 0.25)'
    fine = evaluate(rule, [_window(2, **{"drift.share": 0.9, "drift.age.score": 0.15, "drift.b.score": 0.05})])
    assert (fine.state, fine.value) == ("ok", 0.15)
    assert fine.message == "no drift.*.score > 0.2 among 2 values; nearest: drift.age.score = 0.15 (threshold 0.2)"
    assert evaluate(rule, [_window(3, **{"drift.share": 0.9})]).state == "unknown"


def test_wildcard_in_quotes_and_per_column_baselines() -> None:
    rule = AlertRule("missing", '"quality.*.missing_share" > baseline + 0.1', for_windows=1)
    baseline = _window(0, **{"quality.age.missing_share": 0.0, "quality.mean radius.missing_share": 0.3})
    now = _window(
        1, **{"quality.age.missing_share": 0.15, "quality.mean radius.missing_share": 0.35, "quality.new.missing_share": 0.9}
    )
    verdict = evaluate(rule, [now], baseline)
    # the column the baseline lacks has nothing to compare with; "mean radius" is within 0.1 of its baseline
    assert [(b.name, b.value) for b in verdict.breaches] == [("quality.age.missing_share", 0.15)]
    assert verdict.breaches[0].threshold == pytest.approx(0.1)


def test_a_wildcard_matches_one_or_more_characters_only_where_written() -> None:
    parsed = parse_rule("performance.*.accuracy < 0.8")
    values = {"performance.realised.accuracy": 0.7, "performance.estimated.accuracy": 0.9, "performance..accuracy": 0.1,
              "performance.realised.f1": 0.1, "xperformance.realised.accuracy": 0.1}  # fmt: skip
    assert parsed.matches(values) == {"performance.realised.accuracy": 0.7, "performance.estimated.accuracy": 0.9}
    literal = parse_rule('"drift.x\\*y.score" > 1')
    assert literal.matches({"drift.x*y.score": 2.0, "drift.xzy.score": 3.0}) == {"drift.x*y.score": 2.0}


def test_equality_operators_compare_exactly() -> None:
    rule = AlertRule("errors", "health.errors != 0", for_windows=1)
    assert evaluate(rule, [_window(0, **{"health.errors": 0.0})]).state == "ok"
    assert evaluate(rule, [_window(0, **{"health.errors": 1e-9})]).state == "firing"
    same = AlertRule("stuck", "drift.share == 0.25", for_windows=1)
    assert evaluate(same, [_window(0, **{"drift.share": 0.25})]).state == "firing"


def test_a_bad_stored_expression_raises_at_evaluation() -> None:
    with pytest.raises(InvalidArgument, match=r"^expression must be"):
        evaluate(AlertRule("bad", "drift.share >> 1"), [_window(0, **{"drift.share": 1.0})])
