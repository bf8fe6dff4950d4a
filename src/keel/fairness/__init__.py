"""Layer 3: fairness of registered models: per-group metrics and disparities (fairlearn's ``MetricFrame``) recorded
with the model version, so promotion gates read them, and mitigation producing a new version.

Needs the ``fairness`` extra (fairlearn, scikit-learn): ``pip install 'keel[fairness]'``.

>>> a = keel.fairness.assess("models:/credit/3", "applicants@2", sensitive=["sex", "race"], y_true="approved")  # doctest: +SKIP
>>> a.metrics["demographic_parity_difference"], a.frame("sex")                                                # doctest: +SKIP
"""

from __future__ import annotations

from keel.fairness.assess import FairnessAssessment, assess, flat_metrics, measure
from keel.fairness.metrics import GroupSet
from keel.fairness.mitigate import Mitigation, mitigate
from keel.fairness.report import fairness_html

__all__ = ["FairnessAssessment", "GroupSet", "Mitigation", "assess", "fairness_html", "flat_metrics", "measure", "mitigate"]
