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


def _metric(run: Any, metric: str, role: str) -> float:
    value = run.metric(metric)
    if value is None:
        have = ", ".join(sorted(run.metrics)) or "none"
        raise InvalidArgument(f"the {role} run {run.id} has no metric {metric!r}; it has: {have}")
    return float(value)


def gate(candidate: str, rules: list[str | Rule], baseline: str | None = None, client: Any = None) -> GateResult:
    """Check ``rules`` on the candidate run (and against the baseline run); nothing is written."""
    from keel.tracking.fluent import get_client

    if not rules:
        raise InvalidArgument.for_field("rules", [], "at least one rule")
    parsed = [r if isinstance(r, Rule) else parse_rule(r) for r in rules]
    if baseline is None and any(r.kind != "absolute" for r in parsed):
        needing = next(r.text for r in parsed if r.kind != "absolute")
        raise InvalidArgument(f"rule {needing!r} compares with a baseline; pass a baseline run")
    client = client or get_client()
    cand_run = client.get_run(candidate)
    base_run = client.get_run(baseline) if baseline else None
    result = GateResult(cand_run.id, base_run.id if base_run else None)
    for rule in parsed:
        value = _metric(cand_run, rule.metric, "candidate")
        base = _metric(base_run, rule.metric, "baseline") if base_run is not None and rule.kind != "absolute" else None
        threshold = rule.threshold(base)
        ok = not math.isnan(value) and _OPS[rule.op](value, threshold)
        result.checks.append(RuleCheck(rule.text, rule.metric, value, base, threshold, bool(ok)))
    return result
