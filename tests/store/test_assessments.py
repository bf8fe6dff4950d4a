"""Model version assessments and the promotion gates that read them, on SQLite, PostgreSQL and REST."""

from __future__ import annotations

from keel.testing.assessment_contract import AssessmentContract


class TestAssessments(AssessmentContract):
    pass
