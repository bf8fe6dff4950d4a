"""The label-store contract (projects, guidelines, items, task assignment, annotations, reviews, exclusions, consensus
records), as tests every backend must pass.

The annotator is always the acting principal, so the tests need several: a ``LabelTeam`` gives the project owner's
store and, for a name, a store acting as that annotator (in process: ``acting_as`` on the same store; over REST: a
store holding that principal's token). Names are unique per test: the PostgreSQL database is shared by the session.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from keel.core.actor import acting_as, current_actor
from keel.core.errors import AlreadyExists, Conflict, InvalidArgument, KeelError, NotFound, PermissionDenied
from keel.core.labeling import LabelItem, LabelProject, LabelSchema, Review
from keel.store.metadata.base import MetadataStore
from keel.testing.dataset_contract import log
from keel.testing.store_contract import unique

CLASSES = LabelSchema("classes", ("pos", "neg", "neutral"))
TAGS = LabelSchema("multilabel", ("a", "b", "c"))


@dataclass
class LabelTeam:
    """The owner's store (who creates projects, reviews, excludes) and ``annotator(name)``: a context in which a store
    acts as ``name``. ``owner`` is the owner's principal name."""

    store: MetadataStore
    owner: str
    annotator: Callable[[str], contextlib.AbstractContextManager[MetadataStore]]


def in_process_team(store: MetadataStore) -> LabelTeam:
    """A team on an in-process store: the owner is the local actor, annotators are ``acting_as`` their name."""

    @contextlib.contextmanager
    def annotator(name: str) -> Iterator[MetadataStore]:
        with acting_as(name):
            yield store

    return LabelTeam(store, current_actor(), annotator)


def _dataset(store: MetadataStore) -> str:
    name = unique("labeldata")
    version, _ = log(store, name, name)
    return f"{name}@{version.version}"


def tasks(n: int, prefix: str = "t") -> list[LabelItem]:
    return [LabelItem(f"{prefix}{i}", {"text": f"{prefix} text {i}", "id": i}) for i in range(n)]


def _project(team: LabelTeam, items: Sequence[LabelItem], **fields: Any) -> LabelProject:
    given: dict[str, Any] = {"schema": CLASSES, "overlap": 2, "gold_rate": 0.0, **fields}
    project = LabelProject(unique("lp"), _dataset(team.store), **given)
    return team.store.labels.create_project(project, "# Label the sentiment\nPick one.", items)


def _work(team: LabelTeam, project: str, name: str, answer: Callable[[str], Any] = lambda key: "pos") -> list[str]:
    """``name`` answers every task handed to them until none is left; the keys in the order handed out."""
    keys = []
    with team.annotator(name) as store:
        while (task := store.labels.next_task(project)) is not None:
            keys.append(task.item)
            store.labels.submit(project, task.item, answer(task.item))
    return keys


class LabelStoreContract:
    # projects and guidelines ------------------------------------------------------------------------------------------
    def test_a_project_is_created_with_guideline_1_its_items_in_order_and_answers_normalised(self, team: LabelTeam) -> None:
        items = [
            *tasks(3),
            LabelItem("g0", {"text": "gold"}, "gold", ["c", "a"]),
            LabelItem("q0", {"text": "q"}, "qualification", ["b"]),
        ]
        created = _project(team, items, schema=TAGS, overlap=3, gold_rate=0.2, fields=("text",), lease_ms=60_000)
        assert (created.items, created.gold_items, created.qualification_items, created.guideline_version) == (5, 1, 1, 1)
        assert (created.overlap, created.gold_rate, created.fields, created.lease_ms, created.schema) == (
            3,
            0.2,
            ("text",),
            60_000,
            TAGS,
        )
        assert created.created_by == team.owner and created.id > 0 and created.created_at > 0
        labels = team.store.labels
        assert labels.get_project(created.name) == created
        assert created.name in [p.name for p in labels.list_projects()]
        [guideline] = labels.guidelines(created.name)
        assert (guideline.version, guideline.text, guideline.created_by) == (1, "# Label the sentiment\nPick one.", team.owner)
        stored = labels.get_items(created.name)
        assert [i.key for i in stored] == ["t0", "t1", "t2", "g0", "q0"]
        assert stored[3] == LabelItem("g0", {"text": "gold"}, "gold", ["a", "c"], 0)  # the answer in the schema's class order
        assert [i.key for i in labels.get_items(created.name, role="gold")] == ["g0"]
        events = team.store.audit.events(entity="label_project", entity_id=created.name)
        assert [e.action for e in events] == ["labels.create_project"] and events[0].actor == team.owner

    def test_bad_input_writes_nothing_and_names_the_field(self, team: LabelTeam) -> None:
        labels, dataset = team.store.labels, _dataset(team.store)

        def refused(error: type[KeelError], text: str, items: Sequence[LabelItem], **fields: Any) -> None:
            project = LabelProject(unique("lp"), fields.pop("dataset", dataset), CLASSES, **fields)
            with pytest.raises(error, match=text):
                labels.create_project(project, "guide", items)
            with pytest.raises(NotFound):
                labels.get_project(project.name)

        refused(InvalidArgument, "distinct item keys", [*tasks(2), LabelItem("t1", {})])
        refused(InvalidArgument, "item.answer must be one of 'pos'", [*tasks(2), LabelItem("g", {}, "gold", "maybe")])
        refused(InvalidArgument, "item.answer must be null for a task", [LabelItem("t", {}, "task", "pos")])
        refused(InvalidArgument, "overlap must be", tasks(1), overlap=0)
        refused(InvalidArgument, r"item\.data.* must be .*(JSON|finite)", [LabelItem("t", {"x": float("nan")})])
        refused(NotFound, "does not exist", tasks(1), dataset=unique("nodata") + "@1")
        taken = _project(team, tasks(1))
        with pytest.raises(AlreadyExists):
            labels.create_project(LabelProject(taken.name, dataset, CLASSES), "guide", tasks(2))
        assert labels.get_project(taken.name).items == 1
        with pytest.raises(InvalidArgument, match="guideline"):
            labels.add_guideline(taken.name, "   ")
        assert [g.version for g in labels.guidelines(taken.name)] == [1]

    # assignment -------------------------------------------------------------------------------------------------------
    def test_each_item_goes_to_overlap_annotators_and_never_twice_to_one(self, team: LabelTeam) -> None:
        project = _project(team, tasks(3), overlap=2).name
        first, second, third = (_work(team, project, unique(n)) for n in ("ann", "bob", "cy"))
        assert sorted(first) == sorted(second) == ["t0", "t1", "t2"]  # each once, all of them
        assert third == []  # every item has its two answers
        counts = {i.key: i.annotations for i in team.store.labels.get_items(project)}
        assert counts == {"t0": 2, "t1": 2, "t2": 2}
        pairs = [(a.item, a.annotator) for a in team.store.labels.annotations(project)]
        assert len(pairs) == len(set(pairs)) == 6

    def test_a_task_asked_for_again_is_the_same_task_and_live_leases_count_against_overlap(self, team: LabelTeam) -> None:
        project = _project(team, tasks(2), overlap=1).name
        with team.annotator(unique("ann")) as store:
            task = store.labels.next_task(project)
            again = store.labels.next_task(project)
            assert task is not None and again == task  # same item, same hand-out time
        with team.annotator(unique("bob")) as store:
            other = store.labels.next_task(project)
            assert other is not None and other.item != task.item  # held by the first: not given out beyond overlap 1
            store.labels.submit(project, other.item, "neg")
            assert store.labels.next_task(project) is None

    def test_an_expired_lease_returns_the_item_to_the_pool(self, team: LabelTeam) -> None:
        project = _project(team, tasks(1), overlap=1, lease_ms=1_000).name
        slow, quick = unique("slow"), unique("quick")
        with team.annotator(slow) as store:
            assert store.labels.next_task(project) is not None
        with team.annotator(quick) as store:
            assert store.labels.next_task(project) is None  # leased
            time.sleep(1.2)
            task = store.labels.next_task(project)
            assert task is not None and task.item == "t0"
        with team.annotator(slow) as store, pytest.raises(Conflict, match="expired"):
            store.labels.submit(project, "t0", "pos")  # too late: someone else holds it now
        with team.annotator(quick) as store:
            annotation, created = store.labels.submit(project, "t0", "neg")
        assert created and annotation.annotator == quick
        assert [a.annotator for a in team.store.labels.annotations(project)] == [quick]

    def test_gold_items_are_mixed_in_at_about_the_rate_and_look_like_tasks(self, team: LabelTeam) -> None:
        gold = [LabelItem(f"g{i}", {"text": f"g text {i}", "id": 100 + i}, "gold", "pos") for i in range(10)]
        project = _project(team, [*tasks(40), *gold], overlap=1, gold_rate=0.25).name
        handed = []
        with team.annotator(unique("ann")) as store:
            for _ in range(20):
                task = store.labels.next_task(project)
                assert task is not None and not task.qualification and set(task.data) == {"text", "id"}
                handed.append(task.item)
                store.labels.submit(project, task.item, "pos")
        share = sum(k.startswith("g") for k in handed) / len(handed)
        assert 0.2 <= share <= 0.3, handed
        keys = _work(team, project, unique("bob"))  # the tasks left (overlap 1), gold mixed in, then nothing
        bob_gold = {k for k in keys if k.startswith("g")}
        assert 0.2 <= len(bob_gold) / len(keys) <= 0.3 and len(keys) == len(set(keys))
        assert bob_gold & set(handed)  # gold items go to every annotator: overlap is for tasks

    def test_qualification_comes_first_and_gates_on_the_score(self, team: LabelTeam) -> None:
        answers = {"q0": "pos", "q1": "neg", "q2": "neutral"}
        qualification = [LabelItem(k, {"text": k}, "qualification", v) for k, v in answers.items()]
        project = _project(team, [*tasks(2), *qualification], qualification_pass=0.6).name
        good, bad = unique("good"), unique("bad")
        with team.annotator(good) as store:
            seen = []
            for _ in range(3):
                task = store.labels.next_task(project)
                assert task is not None and task.qualification
                seen.append((task.item, task.remaining_qualification))
                store.labels.submit(project, task.item, answers[task.item] if task.item != "q2" else "pos")  # 2 of 3
            assert seen == [("q0", 3), ("q1", 2), ("q2", 1)]
            task = store.labels.next_task(project)
            assert task is not None and task.item.startswith("t") and not task.qualification
        with team.annotator(bad) as store:
            for _ in range(3):
                task = store.labels.next_task(project)
                assert task is not None
                store.labels.submit(project, task.item, "neutral")  # right on q2 only: 1 of 3
            with pytest.raises(PermissionDenied, match=r"1 of 3 .*\(33%\), 60% needed"):
                store.labels.next_task(project)

    def test_an_excluded_annotator_is_refused_with_the_reason_until_included(self, team: LabelTeam) -> None:
        project = _project(team, tasks(3)).name
        spammer = unique("spam")
        with team.annotator(spammer) as store:
            held = store.labels.next_task(project)
            assert held is not None
        labels = team.store.labels
        labels.exclude_annotator(project, spammer, "gold accuracy 20%")
        exclusion = labels.exclude_annotator(project, spammer, "gold accuracy 12%")  # again: the reason replaced
        assert (exclusion.annotator, exclusion.reason, exclusion.created_by) == (spammer, "gold accuracy 12%", team.owner)
        assert [(e.annotator, e.reason) for e in labels.exclusions(project)] == [(spammer, "gold accuracy 12%")]
        with team.annotator(spammer) as store:
            with pytest.raises(PermissionDenied, match="gold accuracy 12%"):
                store.labels.next_task(project)
            with pytest.raises(PermissionDenied, match="excluded"):
                store.labels.submit(project, held.item, "pos")
        assert labels.annotations(project) == []
        labels.include_annotator(project, spammer)
        labels.include_annotator(project, spammer)  # nothing to lift: nothing happens
        assert labels.exclusions(project) == []
        with team.annotator(spammer) as store:
            assert store.labels.next_task(project) is not None
        actions = [e.action for e in team.store.audit.events(entity="label_project", entity_id=project)]
        assert actions == ["labels.create_project", "labels.exclude", "labels.exclude", "labels.include"]

    def test_an_excluded_annotators_answers_stay_but_their_items_go_back_to_the_pool(self, team: LabelTeam) -> None:
        project = _project(team, tasks(2), overlap=1).name
        spammer, careful = unique("spam"), unique("careful")
        assert sorted(_work(team, project, spammer)) == ["t0", "t1"]
        assert _work(team, project, careful) == []  # every item has its one answer
        team.store.labels.exclude_annotator(project, spammer, "answers at random")
        assert sorted(_work(team, project, careful)) == ["t0", "t1"]
        stored = team.store.labels.annotations(project)
        assert sorted((a.item, a.annotator) for a in stored) == sorted(
            [("t0", spammer), ("t1", spammer), ("t0", careful), ("t1", careful)]
        )
        assert [i.annotations for i in team.store.labels.get_items(project)] == [2, 2]

    # submitting -------------------------------------------------------------------------------------------------------
    def test_a_submit_retried_with_its_request_id_answers_once(self, team: LabelTeam) -> None:
        project = _project(team, tasks(2)).name
        with team.annotator(unique("ann")) as store:
            task = store.labels.next_task(project)
            assert task is not None
            first, created = store.labels.submit(project, task.item, "pos", "req-1")
            again, created_again = store.labels.submit(project, task.item, "pos", "req-1")
            assert created and not created_again and again == first and first.request_id == "req-1"
            with pytest.raises(Conflict, match="already"):
                store.labels.submit(project, task.item, "neg", "req-2")
        assert [a.value for a in team.store.labels.annotations(project)] == ["pos"]
        assert team.store.labels.get_items(project)[int(task.item[1:])].annotations == 1

    def test_an_item_not_handed_out_or_unknown_is_refused_and_nothing_written(self, team: LabelTeam) -> None:
        project = _project(team, tasks(2)).name
        with team.annotator(unique("ann")) as store:
            with pytest.raises(Conflict, match="not handed to"):
                store.labels.submit(project, "t1", "pos")
            with pytest.raises(NotFound, match="'nope'"):
                store.labels.submit(project, "nope", "pos")
            with pytest.raises(NotFound):
                store.labels.submit(unique("lp"), "t1", "pos")
        assert team.store.labels.annotations(project) == []

    def test_a_value_is_checked_against_the_schema_and_normalised(self, team: LabelTeam) -> None:
        project = _project(team, tasks(1), schema=TAGS).name
        with team.annotator(unique("ann")) as store:
            task = store.labels.next_task(project)
            assert task is not None
            with pytest.raises(InvalidArgument, match=r"value must be one of 'a', 'b', 'c'; got 'z'"):
                store.labels.submit(project, task.item, ["a", "z"])
            with pytest.raises(InvalidArgument, match="value must be a list"):
                store.labels.submit(project, task.item, "a")
            assert team.store.labels.annotations(project) == []
            annotation, _ = store.labels.submit(project, task.item, ["c", "a"])
        assert annotation.value == ["a", "c"] and team.store.labels.annotations(project)[0].value == ["a", "c"]

    def test_an_annotation_records_its_times_and_the_guideline_version_handed_out(self, team: LabelTeam) -> None:
        project = _project(team, tasks(3), overlap=1).name
        ann = unique("ann")
        with team.annotator(ann) as store:
            before = store.labels.next_task(project)
            assert before is not None and before.guideline_version == 1
        guideline = team.store.labels.add_guideline(project, "# v2\nNeutral means no opinion.")  # as the owner
        assert (guideline.version, guideline.created_by) == (2, team.owner)
        time.sleep(0.02)
        with team.annotator(ann) as store:
            first, _ = store.labels.submit(project, before.item, "pos")
            after = store.labels.next_task(project)
            assert after is not None and after.guideline_version == 2
            second, _ = store.labels.submit(project, after.item, "neg")
        assert (first.guideline_version, second.guideline_version) == (1, 2)
        assert first.assigned_at == before.assigned_at and first.time_spent_ms >= 15
        assert [g.version for g in team.store.labels.guidelines(project)] == [1, 2]
        labels = team.store.labels
        assert [a.id for a in labels.annotations(project, annotator=ann)] == [first.id, second.id]
        assert labels.annotations(project, annotator=unique("nobody")) == []
        assert [a.id for a in labels.annotations(project, since_ms=second.created_at)] == [second.id]
        events = team.store.audit.events(entity="label_item", entity_id=f"{project}/{before.item}")
        assert [(e.action, e.actor) for e in events] == [("labels.submit", ann)]

    def test_imported_annotations_keep_their_times_and_are_not_imported_twice(self, team: LabelTeam) -> None:
        from keel.core.labeling import Annotation

        project = _project(team, tasks(2)).name
        given = [
            Annotation(project, "t0", "ls:alice", "pos", 1_000, 5_000, 0),
            Annotation(project, "t1", "ls:alice", "neg", 2_000, 9_000, 0),
        ]
        labels = team.store.labels
        assert labels.import_annotations(project, given) == 2
        assert labels.import_annotations(project, given) == 0
        stored = labels.annotations(project)
        assert [(a.item, a.annotator, a.value, a.assigned_at, a.created_at, a.time_spent_ms) for a in stored] == [
            ("t0", "ls:alice", "pos", 1_000, 5_000, 4_000), ("t1", "ls:alice", "neg", 2_000, 9_000, 7_000)
        ]  # fmt: skip
        with pytest.raises(InvalidArgument, match="value must be one of"):
            labels.import_annotations(project, [Annotation(project, "t0", "ls:bob", "maybe")])
        with pytest.raises(NotFound):
            labels.import_annotations(project, [Annotation(project, "t9", "ls:bob", "pos")])
        assert len(labels.annotations(project)) == 2

    # reviews and consensus --------------------------------------------------------------------------------------------
    def test_reviews_are_recorded_by_the_reviewer_and_listed_by_kind(self, team: LabelTeam) -> None:
        project = _project(team, tasks(2)).name
        labels = team.store.labels
        review = labels.add_review(Review(project, "t0", "review", "neg", "corrected", note="sarcasm"))
        audit = labels.add_review(Review(project, "t1", "audit", "pos", "confirmed"))
        assert (review.reviewer, review.value, review.outcome, review.note) == (team.owner, "neg", "corrected", "sarcasm")
        assert review.id > 0 and review.created_at > 0
        assert labels.reviews(project) == [review, audit]
        assert labels.reviews(project, kind="audit") == [audit]
        with pytest.raises(InvalidArgument, match="value must be one of"):
            labels.add_review(Review(project, "t0", "review", "maybe", "corrected"))
        with pytest.raises(InvalidArgument, match="kind"):
            labels.add_review(Review(project, "t0", "second-look", "pos", "corrected"))
        with pytest.raises(NotFound):
            labels.add_review(Review(project, "t7", "review", "pos", "corrected"))
        assert len(labels.reviews(project)) == 2

    def test_a_consensus_version_is_recorded_once(self, team: LabelTeam) -> None:
        project = _project(team, tasks(1)).name
        version, _ = log(team.store, unique("consensus"), unique("c"))
        details = {"method": "dawid_skene", "guideline_versions": [1], "annotations": 0, "last_annotation": None}
        labels = team.store.labels
        labels.record_consensus(project, version.id, details)
        labels.record_consensus(project, version.id, details)
        assert labels.consensus_versions(project) == [(version.id, details)]
        with pytest.raises(NotFound):
            labels.record_consensus(project, 2**31 - 2, details)
        assert len(labels.consensus_versions(project)) == 1

    # concurrency ------------------------------------------------------------------------------------------------------
    def test_annotators_asking_at_once_never_overfill_an_item_nor_get_one_twice(self, team: LabelTeam) -> None:
        project = _project(team, tasks(12), overlap=2).name
        names = [unique(f"w{n}") for n in range(6)]
        handed: dict[str, list[str]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(len(names))

        def work(name: str) -> None:
            try:
                with team.annotator(name) as store:
                    start.wait()
                    keys = handed.setdefault(name, [])
                    while (task := store.labels.next_task(project)) is not None:
                        keys.append(task.item)
                        store.labels.submit(project, task.item, "pos")
            except BaseException as exc:  # noqa: BLE001  # reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        for keys in handed.values():
            assert len(keys) == len(set(keys))  # nobody got an item twice
        per_item = Counter(k for keys in handed.values() for k in keys)
        assert per_item == {f"t{i}": 2 for i in range(12)}  # every item exactly its overlap, none over
        stored = Counter(a.item for a in team.store.labels.annotations(project))
        assert stored == per_item
