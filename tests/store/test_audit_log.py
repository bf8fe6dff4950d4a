"""The audit log: every mutation appends an event (actor, before/after) in its own transaction, the chain never forks
under concurrent writers, and ``verify`` names the first edited, deleted or reordered event, or a rewrite of the whole
table against an anchor. SQLite and PostgreSQL directly; the REST store reads the server's log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from keel.core.actor import acting_as
from keel.core.audit import GENESIS, Anchor, AuditEvent, make_event, verify_chain
from keel.core.entities import RunStatus
from keel.core.errors import Conflict, InvalidArgument, NotFound
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.store import SqlStore
from keel.testing.store_contract import unique

SIG: dict[str, list[str]] = {"inputs": []}


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[SqlStore]:
    """A store of its own (the tests below tamper with the table or read its head)."""
    uri = f"sqlite:///{tmp_path}/keel.db" if request.param == "sqlite" else str(request.getfixturevalue("fresh_postgres_url"))
    store = open_store(uri)
    assert isinstance(store, SqlStore)
    yield store
    store.close()


def _of(store: MetadataStore, entity: str, entity_id: str) -> list[AuditEvent]:
    return store.audit.events(entity=entity, entity_id=entity_id)


def _after(e: AuditEvent) -> dict[str, object]:
    assert e.after is not None
    loaded: dict[str, object] = json.loads(e.after)
    return loaded


# what is recorded -----------------------------------------------------------------------------------------------------


def test_run_lifecycle_is_recorded_with_actor_and_before_after(sql_store: SqlStore) -> None:
    with acting_as("alice"):
        exp = sql_store.get_or_create_experiment(unique())
        run = sql_store.create_run(exp.id, "r", tags={"stage": "dev"}, params={"lr": "0.1"})
        sql_store.set_tags(run.id, {"stage": "prod"})
        sql_store.log_params(run.id, {"depth": "3"})
        sql_store.log_params(run.id, {"depth": "3"})  # the same value again: no change, no event
        sql_store.log_metrics([(run.id, "loss", 0.5, 0, 1)])  # metric values: not audited, by choice
    with acting_as("bob"):
        sql_store.end_run(run.id, RunStatus.FINISHED, metrics=[(run.id, "loss", 0.4, 1, 2)])
    events = _of(sql_store, "run", run.id)
    assert [(e.action, e.actor) for e in events] == [
        ("runs.create", "alice"), ("runs.set_tags", "alice"), ("runs.log_params", "alice"), ("runs.end", "bob"),
    ]  # fmt: skip
    create, tags, params, end = events
    assert create.before is None and _after(create)["tags"] == {"stage": "dev"} and _after(create)["params"] == ["lr"]
    assert _after(create)["experiment_id"] == exp.id
    assert (json.loads(tags.before or ""), _after(tags)) == ({"stage": "dev"}, {"stage": "prod"})
    assert _after(params) == {"params": ["depth"]}
    assert json.loads(end.before or "") == {"status": "running"}
    assert (_after(end)["status"], _after(end)["metrics"]) == ("finished", 1)
    assert [e.action for e in _of(sql_store, "experiment", str(exp.id))] == ["experiments.create"]
    assert sql_store.audit.verify() is None


def test_models_aliases_and_deployments_are_recorded(sql_store: SqlStore) -> None:
    name, dep = unique("m"), unique("d")
    with acting_as("carol"):
        sql_store.models.create_version(
            name, flavor="sklearn", artifact_sha256="a" * 64, size=1, signature=SIG, metrics={"auc": 0.9}
        )
        sql_store.models.create_version(name, flavor="sklearn", artifact_sha256="b" * 64, size=1, signature=SIG)
        sql_store.models.move_alias(name, "production", 1, rules=["auc >= 0.8"], actor="carol", reason="first")
        sql_store.deployments.create(dep, f"models:/{name}@production", actor="carol", reason="go")
        sql_store.deployments.set_routes(dep, shadows=[f"models:/{name}/2"], actor="carol")
    with acting_as("dave"):
        sql_store.models.move_alias(name, "production", 2, actor="dave", reason="hotfix", force=True)
        sql_store.deployments.rollback(dep, actor="dave", reason="bad")
    versions = [e for e in sql_store.audit.events(entity="model_version") if e.entity_id.startswith(f"{name}/")]
    assert [(e.entity_id, _after(e)["artifact_sha256"]) for e in versions] == [(f"{name}/1", "a" * 64), (f"{name}/2", "b" * 64)]
    moves = _of(sql_store, "alias", f"{name}@production")
    assert [(e.actor, json.loads(e.before or ""), _after(e)["version"], _after(e)["forced"]) for e in moves] == [
        ("carol", {"version": None}, 1, False), ("dave", {"version": 1}, 2, True),
    ]  # fmt: skip
    assert _after(moves[1])["reason"] == "hotfix" and _after(moves[1])["checks"] is None
    assert _after(moves[0])["gated"] is True and "auc" in json.dumps(_after(moves[0])["checks"])  # the gates' verdict
    changes = _of(sql_store, "deployment", dep)
    assert [(e.action, e.actor) for e in changes] == [
        ("deployments.create", "carol"), ("deployments.shadow", "carol"), ("deployments.alias", "dave"),
        ("deployments.rollback", "dave"),
    ]  # fmt: skip
    follow = changes[2]
    assert _after(follow)["resolved"] == {f"models:/{name}@production": f"models:/{name}/2"}
    # the deployment's alias-follow event is written in the move's transaction, just before the move's own event
    assert follow.seq + 1 == moves[1].seq
    assert _after(changes[3])["primary"] == f"models:/{name}/1" and _after(changes[3])["reason"] == "bad"
    assert sql_store.audit.verify() is None


def test_datasets_monitors_and_step_cache_are_recorded(sql_store: SqlStore) -> None:
    from keel.core.datasets import ColumnSchema
    from keel.core.monitoring import AlertRule, Monitor

    ds, dep, mon = unique("ds"), unique("d"), unique("mon")
    with acting_as("erin"):
        version, _ = sql_store.datasets.log_version(
            ds, content_hash="1" * 64, artifact_sha256="2" * 64, size=3, row_count=4, schema=[ColumnSchema("x", "int64")]
        )
        sql_store.datasets.save_validation(version.id, "basic", True, 0, 1, {"checks": []})
        sql_store.deployments.create(dep, "models:/churn/1")
        hook = "webhook:https://hooks.example.com/services/T0/B0/SECRET"
        rule = AlertRule("drift", "drift.share > 0.3", actions=("log", hook))
        sql_store.monitors.create_monitor(Monitor(mon, dep, rules=(rule,)))
        sql_store.monitors.update_monitor(Monitor(mon, dep, window_ms=60_000, rules=(rule,)))
    [logged, validated] = _of(sql_store, "dataset_version", str(version.id))
    assert (logged.action, _after(logged)["ref"], _after(logged)["rows"]) == ("datasets.log_version", f"{ds}@1", 4)
    assert (validated.action, _after(validated)["passed"], validated.actor) == ("datasets.save_validation", True, "erin")
    created, updated = _of(sql_store, "monitor", mon)
    assert (created.action, updated.action) == ("monitors.create", "monitors.update")
    assert json.loads(updated.before or "")["window_ms"] == 3_600_000 and _after(updated)["window_ms"] == 60_000
    # a webhook URL may hold a secret: the log keeps its host and a digest only
    assert "SECRET" not in (created.after or "") and "webhook:https://hooks.example.com/" in (created.after or "")


def test_alerts_raised_resolved_and_actions_are_recorded(sql_store: SqlStore) -> None:
    from keel.core.monitoring import ActionRecord, Alert, AlertRule, Monitor

    dep, mon = unique("d"), unique("mon")
    sql_store.deployments.create(dep, "models:/churn/1")
    sql_store.monitors.create_monitor(Monitor(mon, dep, rules=(AlertRule("drift", "drift.share > 0.3"),)))
    with acting_as("scheduler"):
        alert, opened = sql_store.monitors.open_alert(Alert(0, mon, "drift", "warning", "firing", 0, 1000, 0.3, "psi high"))
        sql_store.monitors.open_alert(Alert(0, mon, "drift", "warning", "firing", 1000, 2000, 0.4, "psi high"))  # counted
        sql_store.monitors.record_action(ActionRecord(alert.id, "log", "ok", ""))
        sql_store.monitors.resolve_alert(mon, "drift")
    assert opened
    events = _of(sql_store, "alert", str(alert.id))
    assert [(e.action, e.actor) for e in events] == [
        ("monitors.alert_raised", "scheduler"), ("monitors.record_action", "scheduler"),
        ("monitors.alert_resolved", "scheduler"),
    ]  # fmt: skip
    assert _after(events[0])["rule"] == "drift" and _after(events[2])["state"] == "resolved"


def test_a_failed_change_appends_nothing(sql_store: SqlStore) -> None:
    exp = sql_store.get_or_create_experiment(unique())
    run = sql_store.create_run(exp.id, "r", params={"lr": "0.1"})
    head = sql_store.audit.head()
    with pytest.raises(Conflict):
        sql_store.log_params(run.id, {"lr": "0.2", "new": "1"})  # a param cannot change: nothing of the call is kept
    with pytest.raises(InvalidArgument):
        sql_store.set_tags(run.id, {"": "x"})
    with pytest.raises(NotFound):
        sql_store.create_run(10**9, "r")
    with pytest.raises(InvalidArgument):
        sql_store.deployments.create(unique("d"), "not-a-model-uri")
    with pytest.raises(NotFound):
        sql_store.models.move_alias(unique("m"), "production", 1, actor="x")
    sql_store.end_run(run.id, RunStatus.FINISHED)
    with pytest.raises(Conflict):
        sql_store.end_run(run.id, RunStatus.FAILED)
    after_end = sql_store.audit.head()
    assert head is not None and after_end is not None and after_end.seq == head.seq + 1 and after_end.action == "runs.end"
    assert "new" not in sql_store.get_run(run.id).params


def test_events_pages_filters_and_bad_arguments(sql_store: SqlStore) -> None:
    exp = sql_store.get_or_create_experiment(unique())
    runs = [sql_store.create_run(exp.id, f"r{i}") for i in range(5)]
    everything = sql_store.audit.events()
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1)) and everything[0].prev_hash == GENESIS
    page = sql_store.audit.events(after_seq=2, limit=2)
    assert [e.seq for e in page] == [3, 4]
    assert [e.entity_id for e in sql_store.audit.events(entity="run")] == [r.id for r in runs]
    assert sql_store.audit.head() == everything[-1]
    for bad in ({"limit": 0}, {"limit": 1001}, {"after_seq": -1}, {"entity_id": "x"}, {"limit": True}):
        with pytest.raises(InvalidArgument):
            sql_store.audit.events(**bad)  # type: ignore[arg-type]


# tampering -----------------------------------------------------------------------------------------------------------


def _fill(store: SqlStore, n: int = 6) -> None:
    exp = store.get_or_create_experiment(unique())
    for i in range(n - 1):
        store.create_run(exp.id, f"r{i}")
    assert store.audit.head() is not None and store.audit.head().seq == n  # type: ignore[union-attr]


def _sql(store: SqlStore, statement: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def test_verify_names_an_edited_event(sql_store: SqlStore) -> None:
    _fill(sql_store)
    assert sql_store.audit.verify() is None
    actor = sql_store.audit.events()[2].actor
    _sql(sql_store, update(t.audit_events).where(t.audit_events.c.seq == 3).values(actor="mallory"))
    problem = sql_store.audit.verify()
    assert problem is not None and (problem.seq, problem.kind) == (3, "edited")
    _sql(sql_store, update(t.audit_events).where(t.audit_events.c.seq == 3).values(actor=actor))
    assert sql_store.audit.verify() is None  # put back as it was: intact again (the check is of content, not of a flag)
    _sql(sql_store, update(t.audit_events).where(t.audit_events.c.seq == 5).values(after='{"name":"other"}'))
    problem = sql_store.audit.verify()
    assert problem is not None and (problem.seq, problem.kind) == (5, "edited")


def test_verify_names_a_deleted_event(sql_store: SqlStore) -> None:
    _fill(sql_store)
    _sql(sql_store, t.audit_events.delete().where(t.audit_events.c.seq == 4))
    problem = sql_store.audit.verify()
    assert problem is not None and (problem.seq, problem.kind) == (4, "deleted") and "from 3 to 5" in problem.detail


def test_verify_names_the_first_of_two_swapped_events(sql_store: SqlStore) -> None:
    _fill(sql_store)
    seq = t.audit_events.c.seq
    _sql(sql_store, update(t.audit_events).where(seq == 2).values(seq=-2))
    _sql(sql_store, update(t.audit_events).where(seq == 5).values(seq=2))
    _sql(sql_store, update(t.audit_events).where(seq == -2).values(seq=5))
    problem = sql_store.audit.verify()
    assert problem is not None and (problem.seq, problem.kind) == (2, "reordered")


def test_a_rewritten_table_is_found_against_an_anchor(sql_store: SqlStore) -> None:
    _fill(sql_store)
    head = sql_store.audit.head()
    assert head is not None
    anchors = [Anchor(head.seq, head.hash, head.at)]
    assert sql_store.audit.verify(anchors) is None
    # a rewrite with every hash recomputed: event 2 names another actor, and the chain is consistent in itself
    old = sql_store.audit.events()
    rewritten, prev = [], GENESIS
    for e in old:
        actor = "mallory" if e.seq == 2 else e.actor
        made = make_event(e.seq, prev, e.at, actor, e.action, e.entity, e.entity_id, e.before, e.after)
        rewritten.append(made)
        prev = made.hash
    _sql(sql_store, t.audit_events.delete())
    _sql(sql_store, t.audit_events.insert().values([e.to_json() for e in rewritten]))
    assert sql_store.audit.verify() is None  # without anchors, a full rewrite cannot be seen
    problem = sql_store.audit.verify(anchors)
    assert problem is not None and (problem.seq, problem.kind) == (head.seq, "anchor") and "rewritten" in problem.detail
    # events deleted at the end: the anchored event is missing
    _sql(sql_store, t.audit_events.delete().where(t.audit_events.c.seq >= 5))
    problem = sql_store.audit.verify([Anchor(6, rewritten[5].hash, 0)])
    assert problem is not None and (problem.seq, problem.kind) == (6, "anchor") and "ends at event 4" in problem.detail


def test_verify_streams_pages() -> None:
    """``verify_chain`` over events fed one at a time; the store's walk uses the same code page by page."""
    events, prev = [], GENESIS
    for seq in range(1, 2501):
        e = make_event(seq, prev, seq, "a", "x", "run", str(seq), None, None)
        events.append(e)
        prev = e.hash
    assert verify_chain(iter(events)) is None
    assert verify_chain(iter(events[:1200] + events[1201:])) == verify_chain(iter(events[:1200] + events[1201:]))
    problem = verify_chain(iter(events[:1200] + events[1201:]))
    assert problem is not None and problem.seq == 1201


# concurrency ---------------------------------------------------------------------------------------------------------


def test_concurrent_appends_make_one_chain(sql_store: SqlStore) -> None:
    exp = sql_store.get_or_create_experiment(unique())
    errors: list[BaseException] = []

    def work(store: SqlStore, who: str) -> None:
        try:
            with acting_as(who):
                for i in range(8):
                    run = store.create_run(exp.id, f"{who}-{i}")
                    store.set_tags(run.id, {"who": who})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    stores = [sql_store] * 2
    if sql_store.dialect == "postgresql":  # two engines: two pools of connections, as two processes would have
        stores.append(open_store(sql_store.uri))  # type: ignore[arg-type]
        stores.append(open_store(sql_store.uri))  # type: ignore[arg-type]
    threads = [threading.Thread(target=work, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in stores[2:]:
        s.close()
    assert not errors, errors
    events = sql_store.audit.events()
    assert len(events) == 1 + len(stores) * 16
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sql_store.audit.verify() is None
    assert {e.actor for e in events[1:]} == {f"w{i}" for i in range(len(stores))}


def test_postgres_appends_wait_for_the_log_lock(fresh_postgres_url: str) -> None:
    """Two connections: while one transaction holds the log's lock, another's append waits, then chains after it."""
    from keel.store.metadata.sql.audit import append_event

    store = open_store(fresh_postgres_url)
    assert isinstance(store, SqlStore)
    try:
        started, done = threading.Event(), threading.Event()

        def second() -> None:
            started.wait(5)
            with store.db.transaction() as conn:
                append_event(conn, "test.second", "test", "2", None, None)
            done.set()

        th = threading.Thread(target=second)
        th.start()
        with store.db.transaction() as conn:
            append_event(conn, "test.first", "test", "1", None, None)
            started.set()
            assert not done.wait(0.5)  # blocked on the advisory lock until this transaction commits
        th.join(10)
        assert done.is_set()
        events = store.audit.events(entity="test")
        assert [e.action for e in events] == ["test.first", "test.second"] and events[1].prev_hash == events[0].hash
        assert store.audit.verify() is None
        with store.engine.connect() as conn:  # the lock is transaction-scoped: nothing is left held
            held = conn.execute(text("select count(*) from pg_locks where locktype = 'advisory'")).scalar()
        assert held == 0
    finally:
        store.close()


# REST ----------------------------------------------------------------------------------------------------------------


def test_rest_reads_the_servers_log(server_url: str) -> None:
    store = open_store(server_url)
    try:
        exp = store.get_or_create_experiment(unique())
        run = store.create_run(exp.id, "r", tags={"a": "1"})
        store.set_tags(run.id, {"a": "2"})
        events = store.audit.events(entity="run", entity_id=run.id)
        assert [e.action for e in events] == ["runs.create", "runs.set_tags"]
        assert json.loads(events[1].before or "") == {"a": "1"} and json.loads(events[1].after or "") == {"a": "2"}
        head = store.audit.head()
        assert head is not None and head.seq >= events[1].seq
        assert store.audit.events(after_seq=head.seq) == []
        assert store.audit.verify() is None  # paged through on the client
        with pytest.raises(InvalidArgument):
            store.audit.events(limit=0)
        assert not hasattr(store.audit, "append")
    finally:
        store.close()
