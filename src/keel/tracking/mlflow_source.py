"""Reading an MLflow tracking store directly, without MLflow: its file store (``mlruns/``) or its SQLite database.

The formats are MLflow's own (``mlflow/store/tracking/file_store.py``, ``sqlalchemy_store.py`` and
``dbmodels/models.py``):

- file store: ``<root>/<experiment id>/meta.yaml`` (deleted experiments under ``<root>/.trash/``), a run in
  ``<experiment>/<run id>/`` with ``meta.yaml`` (status as an integer), ``params/<key>`` and ``tags/<key>`` (the
  file's text is the value; a key with ``/`` is a subfolder), ``metrics/<key>`` (one ``timestamp value [step]``
  line per point, 5 fields when a dataset is named) and ``artifacts/``;
- SQLite: tables ``experiments``, ``runs`` (status as text), ``params``, ``tags`` and ``metrics`` (the full
  history; a NaN is stored as 0 with ``is_nan``).

A run's ``artifact_uri`` is an absolute path from when it was written. The folder is looked for first at the same
place relative to the store (a store moved or copied elsewhere carries its artifacts: ``mlruns/<exp>/<run>/artifacts``
or ``mlartifacts/...`` next to ``mlflow.db``), then at that absolute path (artifacts kept apart from the store).
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from keel.core.errors import InvalidArgument, MissingExtra

SUPPORTED = "an MLflow file store folder (mlruns/) or SQLite database (sqlite:///path/mlflow.db)"
LOCAL_ARTIFACTS = "local artifact folders (file:// or a path) only; copy the artifacts next to the store first"
_FILE_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}  # mlflow.entities.RunStatus
_RESERVED = {"tags", "datasets", "traces", "models"}  # experiment subfolders that are not runs (FileStore)
_SQLITE_MAGIC = b"SQLite format 3\x00"

MetricPoint = tuple[str, float, int, int]
"""(key, value, step, timestamp_ms), as MLflow stored it."""


@dataclass(frozen=True, slots=True)
class MlflowExperiment:
    """An experiment as MLflow stored it (``deleted``: its lifecycle stage is ``deleted``)."""

    id: str
    name: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class MlflowRun:
    """A run's attributes as MLflow stored them; params, tags and metrics are read on demand (``MlflowSource``)."""

    id: str
    experiment_id: str
    name: str | None
    status: str  # MLflow's: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
    start_time: int | None
    end_time: int | None
    deleted: bool
    artifact_uri: str | None


class MlflowSource(abc.ABC):
    """One MLflow tracking store, read only. ``root`` is the folder the store lives in (for moved artifacts)."""

    root: Path
    label: str

    @abc.abstractmethod
    def experiments(self) -> list[MlflowExperiment]: ...

    @abc.abstractmethod
    def runs(self, experiment: MlflowExperiment) -> list[MlflowRun]: ...

    @abc.abstractmethod
    def params(self, run: MlflowRun) -> dict[str, str]: ...

    @abc.abstractmethod
    def tags(self, run: MlflowRun) -> dict[str, str]: ...

    @abc.abstractmethod
    def metrics(self, run: MlflowRun) -> list[MetricPoint]: ...

    def close(self) -> None:
        """Release the database connection, if any."""

    def artifact_folder(self, run: MlflowRun) -> Path | None:
        """The local folder of the run's artifacts, or None when there is none (MLflow makes it on first use).

        ``InvalidArgument`` for artifacts kept elsewhere (S3, a server): only local folders are read."""
        uri = run.artifact_uri
        if not uri:
            return None
        parts = urlsplit(uri)
        if parts.scheme == "mlflow-artifacts":  # proxied by `mlflow server`: its default destination is ./mlartifacts
            path = Path("mlartifacts") / unquote(parts.path).lstrip("/")
        elif parts.scheme == "file":
            path = Path(url2pathname(unquote(parts.path)))
        elif parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):  # a plain path (C:\ on Windows)
            path = Path(uri)
        else:
            raise InvalidArgument(f"run {run.id}'s artifacts are at {uri}: keel imports {LOCAL_ARTIFACTS}")
        # the store's own copy first: a store copied elsewhere reads the folders it carries, not the original's
        found = _relocated(path, self.root, run.id)
        if found is None and path.is_absolute() and path.is_dir():
            return path
        return found


def _relocated(path: Path, root: Path, run_id: str) -> Path | None:
    """``path`` found relative to the store: the longest tail of it, holding the run's id, under ``root`` or its
    parent (a moved ``mlruns/`` keeps ``<experiment>/<run>/artifacts``; an SQLite store its ``mlartifacts/``)."""
    parts = [p for p in path.parts if p not in (path.anchor, "")]
    if run_id not in parts:  # a relative location of some other shape: the store's folder is what it is relative to
        return root / path if not path.is_absolute() and (root / path).is_dir() else None
    last = len(parts) - parts[::-1].index(run_id)  # the tail must keep the run's id, or it names another folder
    for start in range(last):
        tail = Path(*parts[start:])
        for base in (root, root.parent):
            candidate = base / tail
            if candidate.is_dir():
                return candidate
    return None


def open_source(source: str | os.PathLike[str]) -> MlflowSource:
    """The MLflow store ``source`` names: a file store folder (or a folder holding ``mlruns/``), an SQLite
    database file, or an ``sqlite:///`` / ``file://`` URI. Anything else is ``InvalidArgument`` in one line."""
    text = os.fspath(source)
    scheme = urlsplit(text).scheme.lower() if "://" in text or text.startswith("sqlite:") else ""
    if scheme in ("http", "https", "databricks"):
        raise InvalidArgument(f"cannot import from a tracking server ({text}): keel reads {SUPPORTED} directly")
    if scheme == "sqlite":
        path = Path(text.partition("sqlite:///")[2].partition("?")[0] or ":memory:")
        if str(path) == ":memory:":
            raise InvalidArgument.for_field("source", text, "an SQLite database file, sqlite:///path/mlflow.db")
        return SqliteSource(path)
    if scheme == "file":
        text = url2pathname(unquote(urlsplit(text).path))
    elif scheme:
        raise InvalidArgument(f"cannot import from {scheme}:// stores: keel reads {SUPPORTED}")
    path = Path(text).expanduser()
    if path.is_file():
        return SqliteSource(path)
    if not path.is_dir():
        raise InvalidArgument.for_field("source", text, f"{SUPPORTED}, that exists")
    if _is_file_store(path):
        return FileStoreSource(path)
    if _is_file_store(path / "mlruns"):
        return FileStoreSource(path / "mlruns")
    if (path / "mlflow.db").is_file():
        return SqliteSource(path / "mlflow.db")
    raise InvalidArgument.for_field("source", text, f"{SUPPORTED}; this folder holds neither")


def _is_file_store(path: Path) -> bool:
    if not path.is_dir():
        return False
    return (
        any((child / "meta.yaml").is_file() for child in path.iterdir() if child.is_dir() and child.name != ".trash")
        or (path / ".trash").is_dir()
    )


# file store ------------------------------------------------------------------------------------------------------
def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml comes with keel[data]
        raise MissingExtra("pyyaml", "data") from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"cannot read MLflow metadata {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"cannot read MLflow metadata {path}: not a mapping")
    return data


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(key, file) for every file below ``folder``: the key is its '/'-separated path (MLflow keys may hold '/')."""
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath, name)
            yield file.relative_to(folder).as_posix(), file


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


class FileStoreSource(MlflowSource):
    """An MLflow file store: the ``mlruns/`` folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        self._run_dirs: dict[str, Path] = {}

    def experiments(self) -> list[MlflowExperiment]:
        found = []
        for parent, deleted in ((self.root, False), (self.root / ".trash", True)):
            if not parent.is_dir():
                continue
            for folder in sorted(parent.iterdir()):
                if folder.name.startswith(".") or not (folder / "meta.yaml").is_file():
                    continue
                meta = _read_yaml(folder / "meta.yaml")
                exp_id = str(meta.get("experiment_id", folder.name))
                self._run_dirs[f"exp:{exp_id}"] = folder
                gone = deleted or meta.get("lifecycle_stage") == "deleted"
                found.append(MlflowExperiment(exp_id, str(meta.get("name", exp_id)), gone))
        return found

    def runs(self, experiment: MlflowExperiment) -> list[MlflowRun]:
        folder = self._run_dirs[f"exp:{experiment.id}"]
        runs = []
        for run_dir in sorted(folder.iterdir()):
            if run_dir.name in _RESERVED or not (run_dir / "meta.yaml").is_file():
                continue
            meta = _read_yaml(run_dir / "meta.yaml")
            run_id = str(meta.get("run_id") or meta.get("run_uuid") or run_dir.name)
            self._run_dirs[run_id] = run_dir
            status = meta.get("status", 1)
            runs.append(
                MlflowRun(
                    id=run_id,
                    experiment_id=experiment.id,
                    name=meta.get("run_name") or None,
                    status=_FILE_STATUS.get(status, str(status)) if isinstance(status, int) else str(status),
                    start_time=_int_or_none(meta.get("start_time")),
                    end_time=_int_or_none(meta.get("end_time")),
                    deleted=experiment.deleted or meta.get("lifecycle_stage") == "deleted",
                    artifact_uri=meta.get("artifact_uri") or None,
                )
            )
        return runs

    def _texts(self, run: MlflowRun, kind: str) -> dict[str, str]:
        values = {}
        for key, file in _files(self._run_dirs[run.id] / kind):
            try:
                values[key] = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidArgument(f"cannot read MLflow {kind[:-1]} {file}: {exc}") from None
        return values

    def params(self, run: MlflowRun) -> dict[str, str]:
        return self._texts(run, "params")

    def tags(self, run: MlflowRun) -> dict[str, str]:
        return self._texts(run, "tags")

    def metrics(self, run: MlflowRun) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for key, file in _files(self._run_dirs[run.id] / "metrics"):
            with open(file, encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    fields = line.split()
                    if not fields:
                        continue
                    if len(fields) not in (2, 3, 5):
                        raise InvalidArgument(f"MLflow metric file {file} line {number} is malformed: {line.strip()!r}")
                    try:
                        ts, value = int(fields[0]), float(fields[1])
                        step = int(fields[2]) if len(fields) >= 3 else 0
                    except ValueError:
                        raise InvalidArgument(f"MLflow metric file {file} line {number} is malformed: {line.strip()!r}") from None
                    points.append((key, value, step, ts))
        return points


# SQLite ----------------------------------------------------------------------------------------------------------
class SqliteSource(MlflowSource):
    """An MLflow tracking database in SQLite, opened read only."""

    def __init__(self, path: Path) -> None:
        path = path.expanduser()
        if not path.is_file():
            raise InvalidArgument.for_field("source", str(path), "an existing MLflow SQLite database")
        with open(path, "rb") as fh:
            if fh.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                raise InvalidArgument(f"{path} is not an SQLite database: keel reads {SUPPORTED}")
        self.root = path.absolute().parent
        self.label = f"sqlite:///{path}"
        self._conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        tables = {r[0] for r in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"experiments", "runs", "params", "tags", "metrics"} - tables
        if missing:
            self._conn.close()
            raise InvalidArgument(f"{path} is not an MLflow tracking database (no table {', '.join(sorted(missing))})")
        self._run_columns = {r[1] for r in self._query("PRAGMA table_info(runs)")}

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise InvalidArgument(f"cannot read the MLflow database {self.label}: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def experiments(self) -> list[MlflowExperiment]:
        rows = self._query("SELECT experiment_id, name, lifecycle_stage FROM experiments ORDER BY experiment_id")
        return [MlflowExperiment(str(i), str(name), stage == "deleted") for i, name, stage in rows]

    def runs(self, experiment: MlflowExperiment) -> list[MlflowRun]:
        name = "name" if "name" in self._run_columns else "NULL"  # runs.name came with MLflow 1.x's run names
        rows = self._query(
            f"SELECT run_uuid, {name}, status, start_time, end_time, lifecycle_stage, artifact_uri FROM runs"
            " WHERE experiment_id = ? ORDER BY start_time, run_uuid",
            (int(experiment.id),),
        )
        return [
            MlflowRun(
                id=str(rid),
                experiment_id=experiment.id,
                name=run_name or None,
                status=str(status or "RUNNING"),
                start_time=_int_or_none(start),
                end_time=_int_or_none(end),
                deleted=experiment.deleted or stage == "deleted",
                artifact_uri=uri or None,
            )
            for rid, run_name, status, start, end, stage, uri in rows
        ]

    def params(self, run: MlflowRun) -> dict[str, str]:
        return {k: v for k, v in self._query("SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key", (run.id,))}

    def tags(self, run: MlflowRun) -> dict[str, str]:
        rows = self._query("SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY key", (run.id,))
        return {k: "" if v is None else v for k, v in rows}

    def metrics(self, run: MlflowRun) -> list[MetricPoint]:
        rows = self._query(
            "SELECT key, value, step, timestamp, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, step, timestamp",
            (run.id,),
        )
        return [(k, math.nan if is_nan else float(value), int(step), int(ts)) for k, value, step, ts, is_nan in rows]
