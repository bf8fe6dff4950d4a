"""CI/CD gates: compare a candidate run with absolute thresholds and with a baseline run.

Rules read as they are checked::

    accuracy >= 0.9                  an absolute minimum
    accuracy >= baseline + 0.01      at least 0.01 better than the baseline
    roc_auc  >= baseline + 1%        at least 1% better (relative)
    log_loss <= baseline             no worse than the baseline
    latency_ms < 50                  an absolute maximum
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.context import Context
from keel.context import resolve as resolve_ctx
from keel.core.entities import Run
from keel.core.rules import Rule, RuleCheck, check_rules, parse_rule, parse_rules, require_baseline

__all__ = ["GateResult", "Rule", "RuleCheck", "check_rules", "gate", "parse_rule", "parse_rules", "require_baseline"]


@dataclass
class GateResult:
    """What ``gate`` found: the candidate and baseline run ids, and one ``RuleCheck`` per rule (the values
    compared, the threshold, whether it passed)."""

    candidate: str
    baseline: str | None
    checks: list[RuleCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every rule passed."""
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready data (``keel gate --json``): passed, candidate, baseline and the checks."""
        return {"passed": self.passed, "candidate": self.candidate, "baseline": self.baseline,
                "checks": [asdict(c) for c in self.checks]}  # fmt: skip


def _metrics(run: Run) -> dict[str, float]:
    return {key: latest.value for key, latest in run.metrics.items()}


def gate(candidate: str, rules: Sequence[str | Rule], baseline: str | None = None, ctx: Context | None = None) -> GateResult:
    """Check ``rules`` on the candidate run (and against the baseline run); nothing is written. The runs are read
    from ``ctx``'s store (default: the current context)."""
    parsed = parse_rules(rules)
    hint = "pass a baseline run"
    require_baseline(parsed, baseline is not None, hint)  # before any run is read
    ctx = resolve_ctx(ctx)
    cand_run = ctx.store.get_run(candidate)
    base_run = ctx.store.get_run(baseline) if baseline else None
    result = GateResult(cand_run.id, base_run.id if base_run else None)
    result.checks = check_rules(
        parsed, _metrics(cand_run), _metrics(base_run) if base_run is not None else None,
        candidate_name=f"the candidate run {cand_run.id}",
        baseline_name=f"the baseline run {base_run.id}" if base_run is not None else "the baseline", no_baseline=hint,
    )  # fmt: skip
    return result
