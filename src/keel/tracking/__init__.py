"""Layer 2: experiment tracking (runs, params, metrics, artifacts, code and environment capture)."""

from keel.tracking.client import Client
from keel.tracking.run import ActiveRun

__all__ = ["ActiveRun", "Client"]
