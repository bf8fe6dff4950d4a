"""``SqlLabelStore``: label projects, guidelines, items, task assignment, annotations, reviews, exclusions and consensus
records on the ``SqlStore``'s database (the contract: ``keel.store.metadata.labels``).

Assignment is atomic per project: ``next_task`` and ``submit`` run in a write transaction that, on PostgreSQL,
first locks the project's row (``SELECT ... FOR UPDATE``), so two annotators asking at once choose one after the
other; on SQLite every write transaction begins ``IMMEDIATE`` (``engine.py``), which serializes them already. A
task handed out is a row of ``label_assignments`` (its lease: ``expires_at``, and the guideline version shown); the
answer replaces it with a row of ``label_annotations`` and counts one more in the item's ``answers``, so "answers
plus live leases" is one column plus the live rows of the project's assignments.

Choices the interface leaves open:

- gold share: after ``n`` gold and task answers (qualification answers aside) an annotator is due
  ``gold_rate * (n + 1)`` gold answers; a whole one missing is handed out now, a fraction with that chance (a
  system random draw), so the share stays within one item of the rate and no annotator can tell which turn is gold.
  Gold and qualification items go to every annotator once (``overlap`` counts task items); when no task is left, no
  more gold is handed out either.
- answers of excluded annotators do not count toward ``overlap`` (their task items go back to the pool; the
  answers stay, and count again if the annotator is included again).
- a submit after the lease expired is accepted while the item is not full without it (answers plus others' live
  leases below ``overlap``), else ``Conflict``; an excluded annotator's submit is ``PermissionDenied`` like their
  ``next_task``; an item answered already, or never handed to the actor, is ``Conflict``.
- ``record_consensus`` again for the same dataset version keeps the first ``details`` and writes nothing.

Audited (one event in the change's transaction): project creation, guideline versions, every submitted answer,
imports (one event each), reviews, exclusions and their lifting, consensus records. Not audited, by choice: handing
out a task (``next_task``), which writes a lease and no label; it is read on every page an annotator loads, and the
answer that follows it is audited with the time it was handed out.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, exists, func, select

from keel.core.actor import current_actor
from keel.core.clock import now_ms
from keel.core.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, PermissionDenied
from keel.core.labeling import (
    ITEM_ROLES,
    MAX_ITEMS,
    MAX_NOTE,
    REVIEW_KINDS,
    Annotation,
    Exclusion,
    Guideline,
    LabelItem,
    LabelProject,
    LabelSchema,
    Review,
    Task,
    check_guideline,
    check_item,
    check_project,
    check_review,
    check_value,
    label_text,
)
from keel.core.predictions import check_time_bound
from keel.core.validation import check_name
from keel.store.metadata.labels import LabelStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, chunks

__all__ = ["SqlLabelStore"]

_p = t.label_projects.c
_g = t.label_guidelines.c
_i = t.label_items.c
_as = t.label_assignments.c
_an = t.label_annotations.c
_r = t.label_reviews.c
_x = t.label_exclusions.c
_c = t.label_consensus.c
_dv = t.dataset_versions.c
_ds = t.datasets.c
_PRINCIPAL = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_MAX_ID = 2**31 - 1


# checks of what only this interface takes ------------------------------------------------------------------------------


def _check_annotator(name: Any, field: str = "annotator") -> str:
    if not isinstance(name, str) or not _PRINCIPAL.fullmatch(name):
        raise InvalidArgument.for_field(field, name, "a principal's name (1-128 printable characters)")
    return name


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 200:
        raise InvalidArgument.for_field("item", key, "an item's key (1-200 characters)")
    return key


def _check_request_id(request_id: Any) -> str | None:
    if request_id is not None and (not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id)):
        raise InvalidArgument.for_field("request_id", request_id, "1 to 100 letters, digits, '.', '_', ':' or '-'")
    return request_id


def _check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_NOTE:
        raise InvalidArgument.for_field("reason", reason, f"text of 1 to {MAX_NOTE} characters")
    return reason


def _check_role(role: Any) -> str | None:
    if role is not None and role not in ITEM_ROLES:
        raise InvalidArgument.for_field("role", role, f"one of {', '.join(ITEM_ROLES)}")
    return role  # type: ignore[no-any-return]


def _json(value: Any, field: str) -> str:
    """``value`` as JSON text; ``InvalidArgument`` for what JSON cannot hold (NaN, objects)."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field(field, value, "JSON data (text, numbers, lists, objects; no NaN)") from None


def _item_rows(schema: LabelSchema, items: Any) -> list[dict[str, Any]]:
    """Every item checked and as the row to insert (``position``: its place in ``items``)."""
    if isinstance(items, str | Mapping) or not isinstance(items, Sequence):
        raise InvalidArgument.for_field("items", items, "a list of LabelItem")
    if len(items) > MAX_ITEMS:
        raise InvalidArgument.for_field("items", len(items), f"at most {MAX_ITEMS} items")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, given in enumerate(items):
        if not isinstance(given, LabelItem):
            raise InvalidArgument.for_field("items", given, "a list of LabelItem")
        item = check_item(schema, given)
        if item.key in seen:
            raise InvalidArgument.for_field("item.key", item.key, "distinct item keys (this one is given twice)")
        seen.add(item.key)
        answer = None if item.answer is None else _json(item.answer, "item.answer")
        rows.append({"key": item.key, "position": position, "data": _json(dict(item.data), "item.data"), "role": item.role,
                     "answer": answer, "answers": 0})  # fmt: skip
    return rows


# rows to entities ------------------------------------------------------------------------------------------------------


def _schema(row: Any) -> LabelSchema:
    return LabelSchema.from_dict(json.loads(row.schema))


def _shown(data: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return dict(data) if not fields else {f: data[f] for f in fields if f in data}


def _annotation(project: str, r: Any) -> Annotation:
    return Annotation(project, r.key, r.annotator, json.loads(r.value), r.assigned_at, r.created_at, r.guideline_version,
                      r.request_id, r.id)  # fmt: skip


def _review(project: str, r: Any) -> Review:
    return Review(project, r.key, r.kind, json.loads(r.value), r.outcome, r.note, r.reviewer, r.created_at, r.id)


_ANNOTATIONS = select(
    _an.id, _an.annotator, _an.value, _an.assigned_at, _an.created_at, _an.guideline_version, _an.request_id, _i.key
).join(t.label_items, _i.id == _an.item_id)
_REVIEWS = select(t.label_reviews, _i.key).join(t.label_items, _i.id == _r.item_id)

_chance = random.SystemRandom()


class SqlLabelStore(LabelStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    # lookups ----------------------------------------------------------------------------------------------------------
    @staticmethod
    def _project_row(conn: Connection, name: str, *, lock: bool = False) -> Any:
        """The project's row; with ``lock``, held until commit on PostgreSQL (SQLite's write transaction is exclusive)."""
        query = select(t.label_projects).where(_p.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"label project {name!r} does not exist")
        return row

    @staticmethod
    def _item_row(conn: Connection, project: Any, key: str) -> Any:
        row = conn.execute(select(t.label_items).where(_i.project_id == project.id, _i.key == key)).first()
        if row is None:
            raise NotFound(f"item {key!r} of label project {project.name!r} does not exist")
        return row

    @staticmethod
    def _dataset_version_id(conn: Connection, dataset: str) -> int:
        name, _, number = dataset.rpartition("@")
        if not name or not number.isdigit() or not 1 <= int(number) <= _MAX_ID:
            raise InvalidArgument.for_field("dataset", dataset, "a dataset version as name@N")
        found = conn.execute(
            select(_dv.id).join(t.datasets, _ds.id == _dv.dataset_id).where(_ds.name == name, _dv.version == int(number))
        ).scalar()
        if found is None:
            raise NotFound(f"dataset version {dataset!r} does not exist")
        return int(found)

    @staticmethod
    def _counts(conn: Connection, project_ids: Sequence[int]) -> dict[int, Counter[str]]:
        counts: dict[int, Counter[str]] = {pid: Counter() for pid in project_ids}
        for ids in chunks(list(project_ids)):
            query = select(_i.project_id, _i.role, func.count()).where(_i.project_id.in_(ids)).group_by(_i.project_id, _i.role)
            for pid, role, n in conn.execute(query):
                counts[pid][role] = int(n)
        return counts

    @staticmethod
    def _project(row: Any, counts: Counter[str]) -> LabelProject:
        return LabelProject(
            row.name, row.dataset, _schema(row), overlap=row.overlap, gold_rate=row.gold_rate,
            qualification_pass=row.qualification_pass, fields=tuple(json.loads(row.fields)), lease_ms=row.lease_ms,
            id=row.id, created_at=row.created_at, created_by=row.created_by, guideline_version=row.guideline_version,
            items=sum(counts.values()), gold_items=counts["gold"], qualification_items=counts["qualification"],
        )  # fmt: skip

    def _read_project(self, conn: Connection, name: str) -> LabelProject:
        row = self._project_row(conn, name)
        return self._project(row, self._counts(conn, [row.id])[row.id])

    @staticmethod
    def _refuse_excluded(conn: Connection, project: Any, annotator: str) -> None:
        reason = conn.execute(select(_x.reason).where(_x.project_id == project.id, _x.annotator == annotator)).scalar()
        if reason is not None:
            raise PermissionDenied(f"{annotator!r} is excluded from label project {project.name!r}: {reason}")

    # projects and guidelines ------------------------------------------------------------------------------------------
    def create_project(self, project: LabelProject, guideline: str, items: Sequence[LabelItem]) -> LabelProject:
        if not isinstance(project, LabelProject):
            raise InvalidArgument.for_field("project", project, "a LabelProject")
        project = check_project(project)
        text = check_guideline(guideline)
        rows = _item_rows(project.schema, items)
        fields = _json(list(project.fields), "fields")
        with self.db.transaction() as conn:
            if conn.execute(select(_p.id).where(_p.name == project.name)).first() is not None:
                raise AlreadyExists(f"label project {project.name!r} already exists")
            version_id = self._dataset_version_id(conn, project.dataset)
            at, actor = now_ms(), current_actor()[:128]
            project_id = conn.execute(
                t.label_projects.insert().values(
                    name=project.name, dataset_version_id=version_id, dataset=project.dataset,
                    schema=_json(project.schema.to_dict(), "schema"), overlap=project.overlap,
                    gold_rate=float(project.gold_rate), qualification_pass=float(project.qualification_pass), fields=fields,
                    lease_ms=project.lease_ms, guideline_version=1, created_at=at, created_by=actor,
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            conn.execute(
                t.label_guidelines.insert().values(project_id=project_id, version=1, text=text, created_at=at, created_by=actor)
            )
            if rows:
                conn.execute(t.label_items.insert(), [{**r, "project_id": project_id} for r in rows])
            roles = Counter(r["role"] for r in rows)
            append_event(conn, "labels.create_project", "label_project", project.name, None, {
                "dataset": project.dataset, "schema": project.schema.to_dict(), "overlap": project.overlap,
                "gold_rate": project.gold_rate, "qualification_pass": project.qualification_pass,
                "lease_ms": project.lease_ms, "items": dict(sorted(roles.items())), "guideline": _digest(text),
            })  # fmt: skip
            return self._read_project(conn, project.name)

    def get_project(self, name: str) -> LabelProject:
        check_name(name, "project")
        with self.db.transaction(write=False) as conn:
            return self._read_project(conn, name)

    def list_projects(self) -> list[LabelProject]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(select(t.label_projects)).all()
            counts = self._counts(conn, [r.id for r in rows])
        return sorted((self._project(r, counts[r.id]) for r in rows), key=lambda p: p.name)

    def add_guideline(self, project: str, text: str) -> Guideline:
        check_name(project, "project")
        text = check_guideline(text)
        with self.db.transaction() as conn:
            row = self._project_row(conn, project, lock=True)
            version, at, actor = row.guideline_version + 1, now_ms(), current_actor()[:128]
            conn.execute(
                t.label_guidelines.insert().values(project_id=row.id, version=version, text=text, created_at=at, created_by=actor)
            )
            conn.execute(t.label_projects.update().where(_p.id == row.id).values(guideline_version=version))
            before = {"version": row.guideline_version}
            append_event(conn, "labels.add_guideline", "label_project", project, before, {"version": version, **_digest(text)})
        return Guideline(project, version, text, at, actor)

    def guidelines(self, project: str) -> list[Guideline]:
        check_name(project, "project")
        with self.db.transaction(write=False) as conn:
            row = self._project_row(conn, project)
            rows = conn.execute(select(t.label_guidelines).where(_g.project_id == row.id).order_by(_g.version)).all()
        return [Guideline(project, r.version, r.text, r.created_at, r.created_by) for r in rows]

    def get_items(self, project: str, *, role: str | None = None) -> list[LabelItem]:
        check_name(project, "project")
        role = _check_role(role)
        with self.db.transaction(write=False) as conn:
            row = self._project_row(conn, project)
            query = select(t.label_items).where(_i.project_id == row.id)
            if role is not None:
                query = query.where(_i.role == role)
            rows = conn.execute(query.order_by(_i.position)).all()
        return [LabelItem(r.key, json.loads(r.data), r.role, None if r.answer is None else json.loads(r.answer), r.answers)
                for r in rows]  # fmt: skip

    # annotating -------------------------------------------------------------------------------------------------------
    def next_task(self, project: str) -> Task | None:
        check_name(project, "project")
        me = _check_annotator(current_actor(), "actor")
        with self.db.transaction() as conn:
            row = self._project_row(conn, project, lock=True)
            return self._next_task(conn, row, me)

    def _next_task(self, conn: Connection, project: Any, me: str) -> Task | None:
        self._refuse_excluded(conn, project, me)  # rule 1
        now = now_ms()
        fields = json.loads(project.fields)
        held = conn.execute(
            select(t.label_assignments, _i.key, _i.data, _i.role).join(t.label_items, _i.id == _as.item_id)
            .where(_as.project_id == project.id, _as.annotator == me, _as.expires_at > now)
            .order_by(_as.assigned_at.desc()).limit(1)
        ).first()  # fmt: skip
        qualification = self._qualification(conn, project, me)
        remaining = [q for q in qualification if q.value is None]
        if held is not None:  # rule 2: the same task again, as it was handed out
            return Task(project.name, held.key, _shown(json.loads(held.data), fields), held.guideline_version,
                        held.assigned_at, held.role == "qualification",
                        len(remaining) if held.role == "qualification" else 0)  # fmt: skip
        if remaining:  # rule 3
            return self._hand_out(conn, project, me, remaining[0], now, qualification=len(remaining))
        if qualification:
            correct = sum(json.loads(q.value) == json.loads(q.answer) for q in qualification)
            score = correct / len(qualification)
            if score < project.qualification_pass:
                raise PermissionDenied(
                    f"{me!r} did not qualify for label project {project.name!r}: {correct} of {len(qualification)} "
                    f"qualification answers correct ({score:.0%}), {project.qualification_pass:.0%} needed"
                )
        task = self._task_due(conn, project, me, now)  # rule 5 (asked first: no task left, no more gold either)
        if task is None:
            return None
        gold = self._gold_due(conn, project, me)  # rule 4
        return self._hand_out(conn, project, me, gold if gold is not None else task, now)

    @staticmethod
    def _task_due(conn: Connection, project: Any, me: str, now: int) -> Any:
        """The task item with the most answers and live leases below ``overlap`` that ``me`` has not answered (ties:
        the earliest), filling items nearest to done first so that finished items accumulate. Answers of excluded
        annotators do not count: their items go back to the pool.

        In two steps so that neither reads every item: the items in progress (some answers but not all, a live lease,
        or an excluded annotator's answer: about as many as annotators at work), then the first untouched one."""
        live = select(_as.item_id, func.count()).where(_as.project_id == project.id, _as.expires_at > now)
        leased: dict[int, int] = {int(i): int(n) for i, n in conn.execute(live.group_by(_as.item_id))}
        excluded = t.label_annotations.join(
            t.label_exclusions, (_x.project_id == _an.project_id) & (_x.annotator == _an.annotator)
        )
        discounted = Counter(
            int(i) for (i,) in conn.execute(select(_an.item_id).select_from(excluded).where(_an.project_id == project.id))
        )

        def taken(r: Any) -> int:
            return int(r.answers) - discounted[r.id] + leased.get(r.id, 0)

        answered = exists().where(_an.item_id == _i.id, _an.annotator == me)
        tasks = select(_i.id, _i.key, _i.data, _i.answers, _i.position).where(_i.project_id == project.id, _i.role == "task")
        started = {r.id: r for r in conn.execute(tasks.where(_i.answers > 0, _i.answers < project.overlap, ~answered))}
        for ids in chunks(sorted(set(leased) | set(discounted))):
            started.update((r.id, r) for r in conn.execute(tasks.where(_i.id.in_(ids), ~answered)))
        open_ = [r for r in started.values() if taken(r) < project.overlap]
        best = min(open_, key=lambda r: (-taken(r), r.position)) if open_ else None
        if best is not None and taken(best) > 0:
            return best
        untouched = ~exists().where(_as.item_id == _i.id, _as.expires_at > now)
        fresh = conn.execute(tasks.where(_i.answers == 0, untouched).order_by(_i.position).limit(1)).first()
        return min((r for r in (best, fresh) if r is not None), key=lambda r: r.position, default=None)

    @staticmethod
    def _qualification(conn: Connection, project: Any, me: str) -> list[Any]:
        """The project's qualification items in order, each with this annotator's answer (``value``) or None."""
        mine = select(_an.item_id, _an.value).where(_an.project_id == project.id, _an.annotator == me).subquery()
        return list(
            conn.execute(
                select(_i.id, _i.key, _i.data, _i.answer, mine.c.value)
                .select_from(t.label_items.outerjoin(mine, mine.c.item_id == _i.id))
                .where(_i.project_id == project.id, _i.role == "qualification")
                .order_by(_i.position)
            )
        )

    @staticmethod
    def _gold_due(conn: Connection, project: Any, me: str) -> Any:
        """The next gold item this annotator has not answered, when their gold share is below the project's rate."""
        if project.gold_rate <= 0:
            return None
        done = Counter(
            {role: int(n) for role, n in conn.execute(
                select(_i.role, func.count()).select_from(t.label_annotations.join(t.label_items, _i.id == _an.item_id))
                .where(_an.project_id == project.id, _an.annotator == me, _i.role != "qualification").group_by(_i.role)
            )}
        )  # fmt: skip
        expected = project.gold_rate * (done["gold"] + done["task"] + 1)  # gold answers due once this task is answered
        if done["gold"] >= expected:
            return None
        if done["gold"] + 1 > expected and _chance.random() >= expected - done["gold"]:
            return None  # a fraction of a gold answer is due: gold with that chance, so it never comes at a foreseeable turn
        answered_by_me = exists().where(_an.item_id == _i.id, _an.annotator == me)
        left = conn.execute(
            select(_i.id, _i.key, _i.data).where(_i.project_id == project.id, _i.role == "gold", ~answered_by_me)
        ).all()
        # each annotator meets the gold items in an order of their own, so nobody can tell another which ones are gold
        return min(left, key=lambda row: hashlib.sha256(f"{me}\x00{row.key}".encode()).digest(), default=None)

    @staticmethod
    def _hand_out(conn: Connection, project: Any, me: str, item: Any, now: int, *, qualification: int = 0) -> Task:
        """Lease ``item`` to ``me`` (replacing an expired lease of theirs on it) and the task to show."""
        conn.execute(t.label_assignments.delete().where(_as.item_id == item.id, _as.annotator == me))
        conn.execute(
            t.label_assignments.insert().values(
                item_id=item.id, annotator=me, project_id=project.id, assigned_at=now, expires_at=now + project.lease_ms,
                guideline_version=project.guideline_version,
            )
        )  # fmt: skip
        data = _shown(json.loads(item.data), json.loads(project.fields))
        return Task(project.name, item.key, data, project.guideline_version, now, qualification > 0, qualification)

    def submit(self, project: str, item: str, value: Any, request_id: str | None = None) -> tuple[Annotation, bool]:
        check_name(project, "project")
        key, request_id = _check_key(item), _check_request_id(request_id)
        me = _check_annotator(current_actor(), "actor")
        # one submit at a time per project (the project row's lock; SQLite's write lock), so a request sent twice at
        # once finds the first one's answer by its request id
        with self.db.transaction() as conn:
            return self._submit(conn, project, key, value, request_id, me)

    def _submit(
        self, conn: Connection, name: str, key: str, value: Any, request_id: str | None, me: str
    ) -> tuple[Annotation, bool]:
        project = self._project_row(conn, name, lock=True)
        item = self._item_row(conn, project, key)
        value = check_value(_schema(project), value, json.loads(item.data))
        if request_id is not None:
            first = conn.execute(
                _ANNOTATIONS.where(_an.project_id == project.id, _an.annotator == me, _an.request_id == request_id)
            ).first()
            if first is not None:
                earlier = _annotation(name, first)
                if earlier.item != key or earlier.value != value:  # a retry resends the same answer, nothing else
                    raise Conflict(
                        f"request id {request_id!r} was used by {me!r} for item {earlier.item!r} "
                        f"({label_text(earlier.value)}): a new answer needs a new request id"
                    )
                return earlier, False
        self._refuse_excluded(conn, project, me)
        if conn.execute(select(_an.id).where(_an.item_id == item.id, _an.annotator == me)).first() is not None:
            raise Conflict(f"{me!r} answered item {key!r} of label project {name!r} already")
        lease = conn.execute(select(t.label_assignments).where(_as.item_id == item.id, _as.annotator == me)).first()
        if lease is None:
            raise Conflict(f"item {key!r} of label project {name!r} was not handed to {me!r}: answer the task next_task gives")
        now = now_ms()
        if lease.expires_at <= now and item.role == "task":  # back in the pool: refused if others have filled it since
            others = conn.execute(
                select(func.count()).where(_as.item_id == item.id, _as.annotator != me, _as.expires_at > now)
            ).scalar()
            excluded = conn.execute(
                select(func.count()).select_from(t.label_annotations.join(
                    t.label_exclusions, (_x.project_id == _an.project_id) & (_x.annotator == _an.annotator)
                )).where(_an.item_id == item.id)
            ).scalar()  # fmt: skip
            if item.answers - int(excluded or 0) + int(others or 0) >= project.overlap:
                raise Conflict(f"the lease on item {key!r} of label project {name!r} expired and other annotators took it")
        annotation_id = conn.execute(
            t.label_annotations.insert().values(
                project_id=project.id, item_id=item.id, annotator=me, value=_json(value, "value"),
                assigned_at=lease.assigned_at, created_at=max(now, lease.assigned_at), guideline_version=lease.guideline_version,
                request_id=request_id,
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        conn.execute(t.label_assignments.delete().where(_as.item_id == item.id, _as.annotator == me))
        conn.execute(t.label_items.update().where(_i.id == item.id).values(answers=_i.answers + 1))
        stored = conn.execute(_ANNOTATIONS.where(_an.id == annotation_id)).one()
        append_event(conn, "labels.submit", "label_item", f"{name}/{key}", None, {
            "annotation": annotation_id, "value": label_text(value)[:200], "guideline_version": lease.guideline_version,
            "assigned_at": lease.assigned_at,
        })  # fmt: skip
        return _annotation(name, stored), True

    def annotations(self, project: str, *, annotator: str | None = None, since_ms: int | None = None) -> list[Annotation]:
        check_name(project, "project")
        if annotator is not None:
            _check_annotator(annotator)
        since = check_time_bound(since_ms, "since_ms")
        with self.db.transaction(write=False) as conn:
            row = self._project_row(conn, project)
            query = _ANNOTATIONS.where(_an.project_id == row.id)
            if annotator is not None:
                query = query.where(_an.annotator == annotator)
            if since is not None:
                query = query.where(_an.created_at >= since)
            rows = conn.execute(query.order_by(_an.created_at, _an.id)).all()
        return [_annotation(project, r) for r in rows]

    def import_annotations(self, project: str, annotations: Sequence[Annotation]) -> int:
        check_name(project, "project")
        if isinstance(annotations, str | Mapping) or not isinstance(annotations, Sequence):
            raise InvalidArgument.for_field("annotations", annotations, "a list of Annotation")
        for a in annotations:
            if not isinstance(a, Annotation):
                raise InvalidArgument.for_field("annotations", a, "a list of Annotation")
            _check_annotator(a.annotator)
            _check_key(a.item)
            for field in ("assigned_at", "created_at", "guideline_version"):
                check_time_bound(getattr(a, field), field)
        with self.db.transaction() as conn:
            row = self._project_row(conn, project, lock=True)
            schema = _schema(row)
            keys = sorted({a.item for a in annotations})
            items: dict[str, Any] = {}
            for part in chunks(keys):
                items.update(
                    {r.key: r for r in conn.execute(select(t.label_items).where(_i.project_id == row.id, _i.key.in_(part)))}
                )
            missing = [k for k in keys if k not in items]
            if missing:
                raise NotFound(f"item {missing[0]!r} of label project {project!r} does not exist")
            present: set[tuple[int, str]] = set()
            for ids in chunks(sorted(r.id for r in items.values())):
                present.update(
                    (r.item_id, r.annotator) for r in conn.execute(select(_an.item_id, _an.annotator).where(_an.item_id.in_(ids)))
                )
            new: list[dict[str, Any]] = []
            for a in annotations:
                item = items[a.item]
                value = check_value(schema, a.value, json.loads(item.data))
                if (item.id, a.annotator) in present:
                    continue
                present.add((item.id, a.annotator))
                new.append({"project_id": row.id, "item_id": item.id, "annotator": a.annotator, "value": _json(value, "value"),
                            "assigned_at": a.assigned_at, "created_at": a.created_at, "guideline_version": a.guideline_version,
                            "request_id": None})  # fmt: skip
            if not new:
                return 0
            conn.execute(t.label_annotations.insert(), new)
            for item_id, n in Counter(r["item_id"] for r in new).items():
                conn.execute(t.label_items.update().where(_i.id == item_id).values(answers=_i.answers + n))
            summary = {"annotations": len(new), "annotators": sorted({r["annotator"] for r in new})[:50],
                       "items": len({r["item_id"] for r in new})}  # fmt: skip
            append_event(conn, "labels.import_annotations", "label_project", project, None, summary)
        return len(new)

    # reviews, audits, exclusions --------------------------------------------------------------------------------------
    def add_review(self, review: Review) -> Review:
        if not isinstance(review, Review):
            raise InvalidArgument.for_field("review", review, "a Review")
        check_name(review.project, "project")
        key = _check_key(review.item)
        reviewer = current_actor()[:128]
        with self.db.transaction() as conn:
            project = self._project_row(conn, review.project)
            item = self._item_row(conn, project, key)
            checked = check_review(_schema(project), review, json.loads(item.data))
            at = now_ms()
            review_id = conn.execute(
                t.label_reviews.insert().values(
                    project_id=project.id, item_id=item.id, kind=checked.kind, value=_json(checked.value, "value"),
                    outcome=checked.outcome, note=checked.note, reviewer=reviewer, created_at=at,
                )
            ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            append_event(conn, "labels.review", "label_item", f"{review.project}/{key}", None, {
                "review": review_id, "kind": checked.kind, "outcome": checked.outcome, "value": label_text(checked.value)[:200],
            })  # fmt: skip
        return Review(
            review.project, key, checked.kind, checked.value, checked.outcome, checked.note, reviewer, at, int(review_id)
        )

    def reviews(self, project: str, *, kind: str | None = None) -> list[Review]:
        check_name(project, "project")
        if kind is not None and kind not in REVIEW_KINDS:
            raise InvalidArgument.for_field("kind", kind, f"one of {', '.join(REVIEW_KINDS)}")
        with self.db.transaction(write=False) as conn:
            row = self._project_row(conn, project)
            query = _REVIEWS.where(_r.project_id == row.id)
            if kind is not None:
                query = query.where(_r.kind == kind)
            rows = conn.execute(query.order_by(_r.created_at, _r.id)).all()
        return [_review(project, r) for r in rows]

    def exclude_annotator(self, project: str, annotator: str, reason: str) -> Exclusion:
        check_name(project, "project")
        annotator, reason = _check_annotator(annotator), _check_reason(reason)
        with self.db.transaction() as conn:
            row = self._project_row(conn, project, lock=True)
            before = conn.execute(select(_x.reason).where(_x.project_id == row.id, _x.annotator == annotator)).scalar()
            conn.execute(t.label_exclusions.delete().where(_x.project_id == row.id, _x.annotator == annotator))
            # the tasks they hold go back to the pool now, not when their leases run out
            conn.execute(t.label_assignments.delete().where(_as.project_id == row.id, _as.annotator == annotator))
            at, actor = now_ms(), current_actor()[:128]
            conn.execute(
                t.label_exclusions.insert().values(
                    project_id=row.id, annotator=annotator, reason=reason, created_at=at, created_by=actor
                )
            )
            append_event(conn, "labels.exclude", "label_project", project,
                         None if before is None else {"annotator": annotator, "reason": before},
                         {"annotator": annotator, "reason": reason})  # fmt: skip
        return Exclusion(project, annotator, reason, at, actor)

    def include_annotator(self, project: str, annotator: str) -> None:
        check_name(project, "project")
        annotator = _check_annotator(annotator)
        with self.db.transaction() as conn:
            row = self._project_row(conn, project, lock=True)
            reason = conn.execute(select(_x.reason).where(_x.project_id == row.id, _x.annotator == annotator)).scalar()
            if reason is None:
                return
            conn.execute(t.label_exclusions.delete().where(_x.project_id == row.id, _x.annotator == annotator))
            append_event(conn, "labels.include", "label_project", project, {"annotator": annotator, "reason": reason},
                         {"annotator": annotator})  # fmt: skip

    def exclusions(self, project: str) -> list[Exclusion]:
        check_name(project, "project")
        with self.db.transaction(write=False) as conn:
            row = self._project_row(conn, project)
            rows = conn.execute(select(t.label_exclusions).where(_x.project_id == row.id)).all()
        return sorted((Exclusion(project, r.annotator, r.reason, r.created_at, r.created_by) for r in rows),
                      key=lambda e: e.annotator)  # fmt: skip

    # consensus as data ------------------------------------------------------------------------------------------------
    def record_consensus(self, project: str, dataset_version_id: int, details: dict[str, Any]) -> None:
        check_name(project, "project")
        if isinstance(dataset_version_id, bool) or not isinstance(dataset_version_id, int) or not 1 <= dataset_version_id:
            raise InvalidArgument.for_field("dataset_version_id", dataset_version_id, "a positive integer")
        if not isinstance(details, Mapping):
            raise InvalidArgument.for_field("details", details, "an object (method, guideline versions, annotations)")
        text = _json(dict(details), "details")
        with self.db.transaction() as conn:
            row = self._project_row(conn, project)
            if dataset_version_id > _MAX_ID or conn.execute(select(_dv.id).where(_dv.id == dataset_version_id)).first() is None:
                raise NotFound(f"dataset version {dataset_version_id} does not exist")
            recorded = select(_c.project_id).where(_c.project_id == row.id, _c.dataset_version_id == dataset_version_id)
            if conn.execute(recorded).first() is not None:
                return  # recorded already: a retry writes nothing
            conn.execute(
                t.label_consensus.insert().values(project_id=row.id, dataset_version_id=dataset_version_id, details=text,
                                                  created_at=now_ms())
            )  # fmt: skip
            append_event(conn, "labels.record_consensus", "label_project", project, None,
                         {"dataset_version_id": dataset_version_id, "details": json.loads(text)})  # fmt: skip

    def consensus_versions(self, project: str) -> list[tuple[int, dict[str, Any]]]:
        check_name(project, "project")
        with self.db.transaction(write=False) as conn:
            row = self._project_row(conn, project)
            rows = conn.execute(
                select(t.label_consensus).where(_c.project_id == row.id).order_by(_c.created_at, _c.dataset_version_id)
            ).all()
        return [(int(r.dataset_version_id), json.loads(r.details)) for r in rows]


def _digest(text: str) -> dict[str, Any]:
    """What the audit log records of a guideline: its size and digest (the text itself is in the store)."""
    return {"chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}
