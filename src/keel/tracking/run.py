"""``ActiveRun``: a run being recorded, usable as a context manager."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from keel.core.entities import ArtifactRef, Run, RunStatus
from keel.tracking.client import Client


class ActiveRun:
    """A live run. Inside ``with``, an exception marks it failed (Ctrl-C: killed) and propagates."""

    def __init__(self, client: Client, run: Run, on_end: Any = None) -> None:
        self.client = client
        self.info = run
        self.id = run.id
        self._on_end = on_end
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.info.name!r})"

    @property
    def ended(self) -> bool:
        """True once ``end`` was called (from any thread)."""
        return self._ended

    def log_param(self, key: str, value: Any) -> None:
        """Log one param of this run (immutable: the same value again is a no-op, another raises ``Conflict``).
        Values are stored as ``Client.log_param`` writes them."""
        self.client.log_param(self.id, key, value)

    def log_params(self, params: dict[str, Any]) -> None:
        """Log several params of this run in one call (all or none)."""
        self.client.log_params(self.id, params)

    def log_metric(self, key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
        """Log one value of the metric ``key`` (buffered, stored within ``flush_interval``).

        ``step``: an integer; without it, steps count up from 0 per key. ``timestamp``: milliseconds
        since the epoch (default: now). ``run.log_metric("loss", 0.42, step=3)``.
        """
        self.client.log_metric(self.id, key, value, step, timestamp)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, timestamp: int | None = None) -> None:
        """Log several metric values at one step and time (all are validated first: a bad one logs none)."""
        self.client.log_metrics(self.id, metrics, step, timestamp)

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag of this run (tags can change, unlike params; non-strings are stored as ``str(value)``)."""
        self.client.set_tag(self.id, key, value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags of this run in one call, overwriting the values they had."""
        self.client.set_tags(self.id, tags)

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> list[ArtifactRef]:
        """Store a file, or every file below a directory, under ``name`` (default: its base name); returns the refs."""
        return self.client.log_artifact(self.id, path, name)

    def log_text(self, text: str, name: str) -> ArtifactRef:
        """Store ``text`` (UTF-8) as this run's artifact ``name``, e.g. ``run.log_text(report, "notes.md")``."""
        return self.client.log_text(self.id, text, name)

    def log_dict(self, dictionary: Mapping[str, Any], name: str) -> ArtifactRef:
        """Store a dict as JSON (``name`` ending in ``.json``) or YAML (``.yaml``/``.yml``)."""
        return self.client.log_dict(self.id, dictionary, name)

    def log_table(self, table: Any, name: str) -> ArtifactRef:
        """Store a pandas DataFrame (or pyarrow Table) as Parquet (``name`` ending in ``.parquet``; ``keel[data]``)."""
        return self.client.log_table(self.id, table, name)

    def log_figure(self, figure: Any, name: str) -> ArtifactRef:
        """Store a matplotlib Figure as ``.png``/``.svg``, or a plotly Figure as ``.html`` that renders offline."""
        return self.client.log_figure(self.id, figure, name)

    def log_image(self, image: Any, name: str) -> ArtifactRef:
        """Store a numpy array (uint8, or floats in [0, 1]; gray, RGB or RGBA) or a PIL image as ``.png``."""
        return self.client.log_image(self.id, image, name)

    def set_description(self, text: str) -> None:
        """Set this run's description (its notes), replacing the one it had."""
        self.client.set_description(self.id, text)

    def flush(self) -> None:
        """Store every metric value buffered so far (this client's, for all its runs) now."""
        self.client.flush()

    def get(self) -> Run:
        """The run as stored now (params, tags, latest metrics)."""
        self.client.flush()
        return self.client.get_run(self.id)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run (once; later calls do nothing). ``get()`` reads it back."""
        if self._ended:
            return
        self._ended = True
        try:
            self.client.end_run(self.id, status)
        finally:
            if self._on_end is not None:
                self._on_end(self)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        if exc_type is not None:
            try:
                self.client.set_tag(self.id, "keel.error", f"{exc_type.__name__}: {exc}"[:8000])
            except Exception:  # noqa: BLE001 - never hide the user's exception
                pass
            try:
                self.end(status)
            except Exception:  # noqa: BLE001
                pass
            return
        self.end(status)
