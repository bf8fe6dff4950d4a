"""CI/CD gates: compare a candidate run with absolute thresholds and with a baseline run.

Rules read as they are checked::

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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.core.errors import InvalidArgument

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_RULE = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_\-./:]+)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?:(?P<number>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|baseline\s*(?:(?P<sign>[-+*])\s*(?P<amount>\d+(?:\.\d*)?)\s*(?P<pct>%)?)?)\s*$"
)


@dataclass(frozen=True)
class Rule:
    metric: str
    op: str
    kind: str  # "absolute", "baseline", "delta", "relative"
    value: float = 0.0
    text: str = ""

    def threshold(self, baseline: float | None) -> float:
        if self.kind == "absolute":
            return self.value
        assert baseline is not None
        if self.kind == "baseline":
            return baseline
        if self.kind == "delta":
            return baseline + self.value
        return baseline + abs(baseline) * self.value  # relative: "+1%" is better also for negative scores


def parse_rule(text: str) -> Rule:
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


@dataclass
class GateResult:
    candidate: str
    baseline: str | None
    checks: list[RuleCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "candidate": self.candidate, "baseline": self.baseline,
                "checks": [asdict(c) for c in self.checks]}  # fmt: skip


def parse_rules(rules: list[str | Rule]) -> list[Rule]:
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


def _metrics(run: Any) -> dict[str, float]:
    return {key: latest.value for key, latest in run.metrics.items()}


def gate(candidate: str, rules: list[str | Rule], baseline: str | None = None, client: Any = None) -> GateResult:
    """Check ``rules`` on the candidate run (and against the baseline run); nothing is written."""
    from keel.tracking.fluent import get_client

    parsed = parse_rules(rules)
    hint = "pass a baseline run"
    require_baseline(parsed, baseline is not None, hint)  # before any run is read
    client = client or get_client()
    cand_run = client.get_run(candidate)
    base_run = client.get_run(baseline) if baseline else None
    result = GateResult(cand_run.id, base_run.id if base_run else None)
    result.checks = check_rules(
        parsed, _metrics(cand_run), _metrics(base_run) if base_run is not None else None,
        candidate_name=f"the candidate run {cand_run.id}",
        baseline_name=f"the baseline run {base_run.id}" if base_run is not None else "the baseline", no_baseline=hint,
    )  # fmt: skip
    return result
