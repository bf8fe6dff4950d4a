"""Which columns a table of runs shows by default: the CLI's ``keel runs list`` and the web UI's runs page agree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from keel.core.entities import Run

__all__ = ["GATE_METRICS_TAG", "GATE_TAG", "default_columns"]

GATE_TAG = "keel.gate"  # passed or failed, set by ``keel gate`` on its candidate run
GATE_METRICS_TAG = "keel.gate.metrics"  # the metrics its rules read, comma-separated
DEFAULT_METRICS = 4
DEFAULT_PARAMS = 2


def default_columns(runs: Sequence[Run]) -> list[str]:
    """The metrics that decided a gate on these runs (``keel gate`` tags its candidate), then the keys most runs
    share, so the table stays readable; a ``gate`` column when a run was gated.

    >>> default_columns([])
    []
    """
    gated = [m for r in runs for m in r.tags.get(GATE_METRICS_TAG, "").split(",") if m]
    gate_metrics = [k for k, _ in Counter(gated).most_common()]
    common = [k for k, _ in Counter(k for r in runs for k in r.metrics).most_common(DEFAULT_METRICS) if k not in gate_metrics]
    metrics = gate_metrics + sorted(common[: max(0, DEFAULT_METRICS - len(gate_metrics))])
    params = sorted(k for k, _ in Counter(k for r in runs for k in r.params).most_common(DEFAULT_PARAMS))
    columns = [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
    if any(GATE_TAG in r.tags for r in runs):
        columns.append(f"tags.{GATE_TAG}")
    return columns
