"""Layer 2: labeling controls: label projects with guidelines, several annotators per item, gold and qualification
items, agreement, consensus, reviews and audits; the consensus labels become a dataset version.

Needs the ``label`` extra (``pip install 'keel[label]'``).

>>> import keel.label
>>> keel.label.create_project("reviews", "reviews@1", classes=["pos", "neg"], guideline="# ...")  # doctest: +SKIP
>>> task = keel.label.next_task("reviews")                                                        # doctest: +SKIP
>>> keel.label.submit("reviews", task.item, "pos")                                                # doctest: +SKIP
>>> keel.label.export("reviews")                                      # reviews.labels@1          # doctest: +SKIP
"""

from __future__ import annotations

from keel.core.labeling import Annotation, Guideline, LabelItem, LabelProject, LabelSchema, Review, Task
from keel.label.interchange import LabelStudioResult, export_labelstudio, import_labelstudio
from keel.label.labels import consensus_labels, export
from keel.label.labelstudio import from_labelstudio, to_labelstudio
from keel.label.projects import (
    add_guideline,
    annotations_of,
    create_project,
    exclude,
    exclusions,
    get_project,
    guidelines,
    include,
    items_of,
    list_projects,
    next_task,
    reviews_of,
    submit,
)
from keel.label.report import render_report
from keel.label.review import AuditSummary, audit, audit_sample, audit_summary, review, review_queue
from keel.label.status import LabelStatus, project_status

__all__ = [
    "Annotation",
    "AuditSummary",
    "Guideline",
    "LabelItem",
    "LabelProject",
    "LabelSchema",
    "LabelStatus",
    "LabelStudioResult",
    "Review",
    "Task",
    "add_guideline",
    "annotations_of",
    "audit",
    "audit_sample",
    "audit_summary",
    "consensus_labels",
    "create_project",
    "exclude",
    "exclusions",
    "export",
    "export_labelstudio",
    "from_labelstudio",
    "get_project",
    "guidelines",
    "import_labelstudio",
    "include",
    "items_of",
    "list_projects",
    "next_task",
    "project_status",
    "render_report",
    "review",
    "review_queue",
    "reviews_of",
    "submit",
    "to_labelstudio",
]  # fmt: skip
