"""``keel gc``: purge what was soft-deleted long enough, then remove the blobs no record references.

Two phases, on a SQL metadata store and a local artifact folder (where the store's files are):

1. **Purge.** Runs deleted before the cutoff (themselves, or through their experiment) lose their rows (params,
   tags, metrics, artifact paths, dataset links, step-cache entries, the run), one transaction per run, children
   before parents; then experiments deleted before the cutoff whose runs are all gone. A deleted run something
   live still names is kept, with the reason: a model version trained by it, a live child run, a run that reuses
   its cached output. Each purge is an audit event.
2. **Blobs.** Every sha256 a record names is collected from every table that names blobs (run artifacts, the run's
   package list, dataset versions, model versions, ONNX exports included as they are versions, step-cache outputs,
   prediction-log files, monitor profiles; and any sha256 written in the JSON of step-cache entries and model
   signatures). A blob none names is removed, only at ``<root>/sha256/<ab>/<sha256>`` (what keel wrote: nothing
   else in the folder is touched) and only when it was last written (or renewed: ctime) before the grace period preceding this gc:
   a blob put while gc runs (a put of an existing blob renews its ctime, see ``FsspecArtifactStore``), or put by
   a writer that has not recorded its reference yet, survives.

Soft-deleted records are records: their blobs stay until they are purged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, or_, select

from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument
from keel.store.artifacts.base import ArtifactStore
from keel.store.artifacts.fsspec_store import FsspecArtifactStore
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.store import SqlStore

__all__ = ["BLOB_GRACE_MS", "GcReport", "collect_garbage"]

BLOB_GRACE_MS = 3600 * 1000
"""A blob written less than this before gc starts is never removed: its writer may not have recorded it yet."""
_HEX64 = re.compile(r"[0-9a-f]{64}")
_r = t.runs.c
_e = t.experiments.c


@dataclass(frozen=True, slots=True)
class PurgedRun:
    id: str
    name: str
    experiment_id: int


@dataclass(slots=True)
class GcReport:
    """What a gc removed (or, with ``dry_run``, would remove), and what it kept on purpose."""

    dry_run: bool
    runs: list[PurgedRun] = field(default_factory=list)
    experiments: list[tuple[int, str]] = field(default_factory=list)  # (id, name)
    kept: list[str] = field(default_factory=list)  # "run <id>: <why>", for deleted records still named
    blobs: list[tuple[str, int]] = field(default_factory=list)  # (sha256, size)

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.blobs)


def collect_garbage(
    store: MetadataStore,
    artifacts: ArtifactStore,
    *,
    older_than_ms: int = 0,
    dry_run: bool = False,
    blob_grace_ms: int = BLOB_GRACE_MS,
) -> GcReport:
    """Purge runs and experiments soft-deleted more than ``older_than_ms`` ago, then remove unreferenced blobs
    last written more than ``blob_grace_ms`` before now. ``dry_run``: report, change nothing."""
    for name, value in (("older_than_ms", older_than_ms), ("blob_grace_ms", blob_grace_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument.for_field(name, value, "a non-negative integer (ms)")
    if not isinstance(store, SqlStore):
        raise InvalidArgument(
            "keel gc works on a SQLite or PostgreSQL metadata store (run it where the server's store is, not over HTTP)"
        )
    if not isinstance(artifacts, FsspecArtifactStore) or not artifacts.local:
        raise InvalidArgument(f"keel gc removes blobs from a local artifact folder only; this store is {artifacts.url}")
    started = now_ms()
    report = GcReport(dry_run=dry_run)
    purged = _purge(store, started - older_than_ms, report)
    _sweep(store, artifacts, started - blob_grace_ms, purged, report)
    return report


# phase 1: purge -------------------------------------------------------------------------------------------------


def _purge(store: SqlStore, cutoff: int, report: GcReport) -> set[str]:
    """Purge (or plan) what was deleted at or before ``cutoff``; the ids of the runs purged (or that would be)."""
    with store.db.transaction(write=False) as conn:
        experiments = {row.id: row.name for row in conn.execute(select(_e.id, _e.name).where(_e.deleted_at <= cutoff))}
        candidates = {
            row.id: row
            for row in conn.execute(
                select(_r.id, _r.name, _r.experiment_id, _r.parent_run_id).where(
                    or_(_r.deleted_at <= cutoff, _r.experiment_id.in_(list(experiments)))
                )
            )
        }
        blockers, reusers = _blockers(conn, set(candidates))
    doomed = set(candidates)
    changed = True
    while changed:  # a kept run keeps its parent, and the run whose cached output it reuses
        changed = False
        for run_id in sorted(doomed):
            why = blockers.get(run_id)
            if why is None:
                why = next((f"its child run {c} is kept" for c in _children(candidates, run_id) if c not in doomed), None)
            if why is None:
                why = next(
                    (f"run {r} reuses its cached output" for r in sorted(reusers.get(run_id, ())) if r not in doomed), None
                )
            if why is not None:
                doomed.discard(run_id)
                report.kept.append(f"run {run_id}: {why}")
                changed = True
    depth = {run_id: _depth(candidates, run_id) for run_id in doomed}
    for run_id in sorted(doomed, key=lambda r: -depth[r]):  # children first: runs.parent_run_id is a foreign key
        row = candidates[run_id]
        if report.dry_run or _purge_run(store, run_id, cutoff):
            report.runs.append(PurgedRun(run_id, row.name, row.experiment_id))
    gone = {r.id for r in report.runs}
    for experiment_id, name in sorted(experiments.items()):
        left = [r for r in candidates.values() if r.experiment_id == experiment_id and r.id not in gone]
        if left:
            report.kept.append(f"experiment {name} ({experiment_id}): {len(left)} of its runs are kept")
        elif report.dry_run or _purge_experiment(store, experiment_id, cutoff):
            report.experiments.append((experiment_id, name))
    return gone


def _children(candidates: dict[str, Any], run_id: str) -> Iterator[str]:
    return (r.id for r in candidates.values() if r.parent_run_id == run_id)


def _depth(candidates: dict[str, Any], run_id: str) -> int:
    depth, seen = 0, {run_id}
    parent = candidates[run_id].parent_run_id
    while parent in candidates and parent not in seen:
        depth, parent = depth + 1, candidates[parent].parent_run_id
        seen.add(parent)
    return depth


def _blockers(conn: Connection, candidates: set[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Why a candidate run must stay (``{run_id: reason}``), and the runs reusing each candidate's cached output
    (they keep it unless they are purged too)."""
    why: dict[str, str] = {}
    reusers: dict[str, set[str]] = {}
    if not candidates:
        return why, reusers
    mv, m = t.model_versions.c, t.models.c
    query = select(mv.source_run, m.name, mv.version).join(t.models, m.id == mv.model_id).where(mv.source_run.is_not(None))
    for source_run, model, version in conn.execute(query):
        if source_run in candidates:
            why.setdefault(source_run, f"model {model} version {version} was trained by it")
    ps, ma = t.privacy_spends.c, t.model_assessments.c  # a ledger and the records gates read keep their runs
    for run_id in conn.execute(select(ps.run_id).where(ps.run_id.is_not(None))).scalars():
        if run_id in candidates:
            why.setdefault(run_id, "it spent privacy budget (kept with the spend)")
    for run_id in conn.execute(select(ma.run_id).where(ma.run_id.is_not(None))).scalars():
        if run_id in candidates:
            why.setdefault(run_id, "it made an assessment of a model version")
    for parent, child in conn.execute(select(_r.parent_run_id, _r.id).where(_r.parent_run_id.is_not(None))):
        if parent in candidates and child not in candidates:
            why.setdefault(parent, f"its child run {child} is not deleted")
    for source, reuser in conn.execute(select(_r.cached_from, _r.id).where(_r.cached_from.is_not(None))):
        if source in candidates:
            reusers.setdefault(source, set()).add(reuser)
    return why, reusers


def _still_deleted(conn: Connection, run_id: str, cutoff: int) -> bool:
    """In the purge's transaction: still deleted before the cutoff (not restored meanwhile) and named by nothing."""
    row = conn.execute(
        select(_r.deleted_at, _e.deleted_at.label("experiment_deleted_at"))
        .join(t.experiments, _e.id == _r.experiment_id)
        .where(_r.id == run_id)
    ).first()
    if row is None:
        return False
    own = row.deleted_at is not None and row.deleted_at <= cutoff
    through_experiment = row.experiment_deleted_at is not None and row.experiment_deleted_at <= cutoff
    if not (own or through_experiment):
        return False  # restored meanwhile
    mv = t.model_versions.c
    live_reuser = select(_r.id).where(_r.cached_from == run_id, _r.deleted_at.is_(None)).limit(1)
    named = (
        conn.execute(select(mv.id).where(mv.source_run == run_id).limit(1)).first()
        or conn.execute(select(_r.id).where(_r.parent_run_id == run_id).limit(1)).first()  # children go first
        or conn.execute(live_reuser).first()
        or conn.execute(select(t.privacy_spends.c.id).where(t.privacy_spends.c.run_id == run_id).limit(1)).first()
        or conn.execute(select(t.model_assessments.c.id).where(t.model_assessments.c.run_id == run_id).limit(1)).first()
    )
    return named is None


def _purge_run(store: SqlStore, run_id: str, cutoff: int) -> bool:
    with store.db.transaction() as conn:
        if not _still_deleted(conn, run_id, cutoff):
            return False
        pk = conn.execute(select(_r.pk).where(_r.id == run_id)).scalar()
        conn.execute(delete(t.metric_blocks).where(t.metric_blocks.c.run_pk == pk))
        for table in (t.params, t.tags, t.latest_metrics, t.run_artifacts, t.run_datasets, t.step_cache):
            conn.execute(delete(table).where(table.c.run_id == run_id))
        conn.execute(delete(t.runs).where(_r.id == run_id))
        append_event(conn, "runs.purge", "run", run_id, None, {"purged": True})
    return True


def _purge_experiment(store: SqlStore, experiment_id: int, cutoff: int) -> bool:
    with store.db.transaction() as conn:
        deleted_at = conn.execute(select(_e.deleted_at).where(_e.id == experiment_id)).scalar()
        if deleted_at is None or deleted_at > cutoff:
            return False  # restored meanwhile
        if conn.execute(select(_r.id).where(_r.experiment_id == experiment_id).limit(1)).first() is not None:
            return False  # a run kept (or made) since the plan
        conn.execute(delete(t.experiments).where(_e.id == experiment_id))
        append_event(conn, "experiments.purge", "experiment", experiment_id, None, {"purged": True})
    return True


# phase 2: blobs -------------------------------------------------------------------------------------------------


def referenced_blobs(conn: Connection, ignoring_runs: set[str] = frozenset()) -> set[str]:  # type: ignore[assignment]
    """Every sha256 a record names (the records of ``ignoring_runs`` aside: a dry run's purge plan)."""
    refs: set[str] = set()

    def add(values: Any) -> None:
        refs.update(v for v in values if v)

    ra = t.run_artifacts.c
    add(sha for run_id, sha in conn.execute(select(ra.run_id, ra.sha256)) if run_id not in ignoring_runs)
    add(blob for run_id, blob in conn.execute(select(_r.id, _r.packages_blob)) if run_id not in ignoring_runs)
    add(conn.execute(select(t.dataset_versions.c.artifact_sha256)).scalars())
    add(conn.execute(select(t.model_versions.c.artifact_sha256)).scalars())
    add(conn.execute(select(t.model_assessments.c.artifact_sha256)).scalars())  # assessment reports (fairness, ...)
    add(conn.execute(select(t.prediction_files.c.sha256)).scalars())
    add(conn.execute(select(t.monitor_windows.c.profile_sha256)).scalars())
    sc = t.step_cache.c
    for run_id, outputs in conn.execute(select(sc.run_id, sc.outputs)):
        if run_id not in ignoring_runs:
            add(_HEX64.findall(outputs or ""))
    for signature in conn.execute(select(t.model_versions.c.signature)).scalars():
        add(_HEX64.findall(signature or ""))
    return refs


def _blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Files keel wrote: ``sha256/<ab>/<sha256>``; anything else (temporary files, other people's files) is not one."""
    base = root / "sha256"
    if not base.is_dir():
        return
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or folder.is_symlink() or not re.fullmatch(r"[0-9a-f]{2}", folder.name):
            continue
        for path in sorted(folder.iterdir()):
            if _HEX64.fullmatch(path.name) and path.name[:2] == folder.name and path.is_file() and not path.is_symlink():
                yield path.name, path


def _touched_ms(stat: os.stat_result) -> int:
    """When a blob was last written or renewed (a put of an existing blob changes its ctime only)."""
    return max(stat.st_mtime_ns, stat.st_ctime_ns) // 1_000_000


def _sweep(store: SqlStore, artifacts: FsspecArtifactStore, written_before: int, purged: set[str], report: GcReport) -> None:
    # listed before the references are read: a blob whose reference is committed after that read was written
    # (or re-put) after the listing's cutoff, so its time spares it
    old: list[tuple[str, Path, int]] = []
    for sha256, path in _blob_files(artifacts.root):
        stat = path.stat()
        if _touched_ms(stat) < written_before:
            old.append((sha256, path, stat.st_size))
    with store.db.transaction(write=False) as conn:
        refs = referenced_blobs(conn, purged if report.dry_run else set())
    for sha256, path, size in old:
        if sha256 in refs:
            continue
        if not report.dry_run:
            try:
                if _touched_ms(path.stat()) >= written_before:
                    continue  # put again since it was listed
                os.unlink(path)
            except FileNotFoundError:
                continue
            with store.db.transaction() as conn:  # its size and type, if a run once named it and none does now
                conn.execute(
                    delete(t.artifacts).where(
                        t.artifacts.c.sha256 == sha256,
                        ~select(t.run_artifacts.c.sha256).where(t.run_artifacts.c.sha256 == sha256).exists(),
                    )
                )
        report.blobs.append((sha256, size))
