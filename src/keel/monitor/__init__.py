"""Monitoring deployed models: mergeable window profiles, drift, data quality, health and performance (realised
once labels arrive, estimated before)."""

from __future__ import annotations

from keel.monitor.estimation import Estimator, expected_metrics, realised_metrics
from keel.monitor.profiles import Profile, merge_profiles

__all__ = ["Estimator", "Profile", "expected_metrics", "merge_profiles", "realised_metrics"]
