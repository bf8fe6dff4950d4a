"""Monitoring deployed models: mergeable window profiles, drift, data quality, health and performance (realised
once labels arrive, estimated before), monitors run window by window with alert rules and actions, and the
scheduler's jobs (interval, cron, a new dataset version, an alert).

>>> @keel.monitor.retrainer("churn")          # what a rule's action retrain:churn runs   # doctest: +SKIP
>>> @keel.monitor.scheduled("nightly", cron="0 3 * * *", on=("dataset:churn-raw",))       # doctest: +SKIP
"""

from __future__ import annotations

from keel.monitor.estimation import Estimator, expected_metrics, realised_metrics
from keel.monitor.jobs import Trigger, scheduled
from keel.monitor.profiles import Profile, merge_profiles
from keel.monitor.runner import profile_between, retrainer, run_monitor
from keel.monitor.windows import evaluate_window, read_window

__all__ = [
    "Estimator", "Profile", "Trigger", "evaluate_window", "expected_metrics", "merge_profiles", "profile_between",
    "read_window", "realised_metrics", "retrainer", "run_monitor", "scheduled",
]  # fmt: skip
