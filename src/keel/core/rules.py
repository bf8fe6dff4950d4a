"""The rule engine of CI/CD gates and of model promotion: parse rules and check them on metrics.

Standard library only, so ``keel gate`` (``keel.evaluation``) and promotion (``keel.registry``)
speak one rule language without importing each other. Rules read as they are checked::

    accuracy >= 0.9                  an absolute minimum
    accuracy >= baseline + 0.01      at least 0.01 better than the baseline
    roc_auc  >= baseline + 1%        at least 1% better (relative)
    log_loss <= baseline             no worse than the baseline
    latency_ms < 50                  an absolute maximum
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keel.core.errors import InvalidArgument

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_RULE = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_\-./:]+)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?:(?P<number>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|baseline\s*(?:(?P<sign>[-+*])\s*(?P<amount>\d+(?:\.\d*)?)\s*(?P<pct>%)?)?)\s*$"
)


@dataclass(frozen=True)
class Rule:
    """A parsed gate rule (``parse_rule("auc >= baseline + 1%")``): the metric, the comparison (``op``) and
    what it compares with (``kind``: a number, the baseline, the baseline plus ``value``, or plus a fraction
    of it); ``text`` is the rule as written."""

    metric: str
    op: str
    kind: str  # "absolute", "baseline", "delta", "relative"
    value: float = 0.0
    text: str = ""

    def threshold(self, baseline: float | None) -> float:
        """The number the metric is compared with, given the baseline's value (None only for absolute rules).
        A relative rule moves by a fraction of ``abs(baseline)``, so "+1%" asks for better on negative scores too."""
        if self.kind == "absolute":
            return self.value
        assert baseline is not None
        if self.kind == "baseline":
            return baseline
        if self.kind == "delta":
            return baseline + self.value
        return baseline + abs(baseline) * self.value  # relative: "+1%" is better also for negative scores


def parse_rule(text: str) -> Rule:
    """Parse one rule: ``"<metric> <op> <number>"`` or ``"<metric> <op> baseline [+|-|* amount[%]]"``, with
    ``op`` one of ``>= <= > <``; e.g. ``parse_rule("log_loss <= baseline - 0.01")``. ``InvalidArgument`` otherwise."""
    m = _RULE.match(text or "")
    if not m:
        raise InvalidArgument.for_field(
            "gate rule",
            text,
            "'<metric> <op> <number>' or '<metric> <op> baseline [+|-|* amount[%]]', e.g. 'auc >= baseline + 0.01'",
        )
    metric, op = m.group("metric"), m.group("op")
    if m.group("number") is not None:
        return Rule(metric, op, "absolute", float(m.group("number")), text.strip())
    sign, amount, pct = m.group("sign"), m.group("amount"), m.group("pct")
    if sign is None:
        return Rule(metric, op, "baseline", 0.0, text.strip())
    value = float(amount)
    if sign == "*":
        if pct:
            raise InvalidArgument.for_field("gate rule", text, "'baseline * factor' without %, or 'baseline + n%'")
        return Rule(metric, op, "relative", value - 1.0, text.strip())
    signed = value if sign == "+" else -value
    if pct:
        return Rule(metric, op, "relative", signed / 100.0, text.strip())
    return Rule(metric, op, "delta", signed, text.strip())


@dataclass
class RuleCheck:
    rule: str
    metric: str
    candidate: float
    baseline: float | None
    threshold: float
    passed: bool


def parse_rules(rules: Sequence[str | Rule]) -> list[Rule]:
    if not rules:
        raise InvalidArgument.for_field("rules", [], "at least one rule")
    return [r if isinstance(r, Rule) else parse_rule(r) for r in rules]


def require_baseline(rules: list[Rule], has_baseline: bool, hint: str) -> None:
    """Refuse rules that compare with a baseline when there is none: such a rule can neither pass nor fail."""
    needing = next((r.text for r in rules if r.kind != "absolute"), None)
    if needing is not None and not has_baseline:
        raise InvalidArgument(f"rule {needing!r} compares with a baseline; {hint}")


def _value(metrics: Mapping[str, float], metric: str, subject: str) -> float:
    value = metrics.get(metric)
    if value is None:
        raise InvalidArgument(f"{subject} has no metric {metric!r}; it has: {', '.join(sorted(metrics)) or 'none'}")
    return float(value)


def check_rules(
    rules: list[Rule],
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    *,
    candidate_name: str,
    baseline_name: str = "the baseline",
    no_baseline: str = "pass a baseline",
) -> list[RuleCheck]:
    """The one rule engine, for ``keel gate`` and for promotions: each rule checked on ``candidate``'s metrics.

    A NaN on either side fails its rule; a rule on a metric that a side lacks, or a baseline rule
    without a baseline, is an ``InvalidArgument`` (never a silent pass).
    """
    require_baseline(rules, baseline is not None, no_baseline)
    checks = []
    for rule in rules:
        value = _value(candidate, rule.metric, candidate_name)
        base = _value(baseline, rule.metric, baseline_name) if baseline is not None and rule.kind != "absolute" else None
        threshold = rule.threshold(base)
        ok = not math.isnan(value) and not math.isnan(threshold) and _OPS[rule.op](value, threshold)
        checks.append(RuleCheck(rule.text, rule.metric, value, base, threshold, bool(ok)))
    return checks
