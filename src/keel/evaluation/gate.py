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


def _subject(ref: str, ctx: Context) -> tuple[str, dict[str, float], str]:
    """A run id, or a model version (``models:/NAME/N``, ``models:/NAME@ALIAS``): its id, the metrics rules read,
    and how a message names it. A version's metrics are its registered ones and, as ``<kind>.<name>``, those of its
    latest assessment of each kind (``fairness.demographic_parity_difference``), as promotion gates read them."""
    if not ref.startswith("models:/"):
        run = ctx.store.get_run(ref)
        return run.id, _metrics(run), f"the run {run.id}"
    from keel.core.deployment_records import parse_model_uri
    from keel.core.errors import InvalidArgument
    from keel.core.model_records import assessed_metrics

    name, number, alias = parse_model_uri(ref)
    models = ctx.store.models
    if alias is not None:
        version = models.resolve_alias(name, alias)
    elif number is not None:
        version = models.get_version(name, number)
    else:
        raise InvalidArgument.for_field("model URI", ref, "models:/NAME/VERSION or models:/NAME@ALIAS")
    metrics = assessed_metrics(version.metrics, models.assessments(version.name, version.version))
    return version.uri, metrics, f"{version.name} version {version.version}"


def gate(candidate: str, rules: Sequence[str | Rule], baseline: str | None = None, ctx: Context | None = None) -> GateResult:
    """Check ``rules`` on the candidate (and against the baseline); nothing is written. Each is a run id or a model
    version URI (``models:/churn/3``, ``models:/churn@production``: its registered metrics and its assessments, e.g.
    ``fairness.demographic_parity_difference <= 0.1``), read from ``ctx``'s store (default: the current context)."""
    parsed = parse_rules(rules)
    hint = "pass a baseline run"
    require_baseline(parsed, baseline is not None, hint)  # before any run is read
    ctx = resolve_ctx(ctx)
    cand_id, cand_metrics, cand_name = _subject(candidate, ctx)
    base = _subject(baseline, ctx) if baseline else None
    result = GateResult(cand_id, base[0] if base else None)
    result.checks = check_rules(
        parsed, cand_metrics, base[1] if base is not None else None,
        candidate_name=f"the candidate {cand_name}",
        baseline_name=f"the baseline {base[2]}" if base is not None else "the baseline", no_baseline=hint,
    )  # fmt: skip
    return result
