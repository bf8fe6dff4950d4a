"""Layer 4: governance records over every other layer: lineage both ways (what served a prediction, what was built
on a dataset), what an alias or a deployment served at a moment, and the compliance report of a model version.

>>> keel.govern.prediction_lineage("req-42", "churn")          # doctest: +SKIP
>>> keel.govern.served_at("models:/churn@production", "2026-03-03T12:00")   # doctest: +SKIP
>>> keel.govern.compliance_report("models:/churn/3")           # doctest: +SKIP
"""

from __future__ import annotations

from keel.govern.compliance import compliance_html, compliance_report, write_compliance_report
from keel.govern.graph import Edge, LineageGraph, Node
from keel.govern.history import Routed, ServedAt, served_at
from keel.govern.lineage import dataset_impact, model_lineage, prediction_lineage
from keel.govern.render import graph_svg, lineage_html, write_lineage_html

__all__ = [
    "Edge",
    "LineageGraph",
    "Node",
    "Routed",
    "ServedAt",
    "compliance_html",
    "compliance_report",
    "dataset_impact",
    "graph_svg",
    "lineage_html",
    "model_lineage",
    "prediction_lineage",
    "served_at",
    "write_compliance_report",
    "write_lineage_html",
]
