"""Layer 2: understandable evaluation metrics with their trade-offs, and CI gates on them."""

from keel.evaluation.gate import GateResult, Rule, gate, parse_rule
from keel.evaluation.metrics import (
    classification_metrics,
    evaluation_html,
    log_evaluation,
    regression_metrics,
    threshold_curve,
)

__all__ = [
    "GateResult", "Rule", "classification_metrics", "evaluation_html", "gate", "log_evaluation", "parse_rule",
    "regression_metrics", "threshold_curve",
]  # fmt: skip
