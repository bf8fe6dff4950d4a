"""The privacy store on SQLite, PostgreSQL and REST; spends at once from separate stores of one database; the
migration that adds the assessment and privacy tables, up and down."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy import inspect

from keel.core.errors import BudgetExceeded
from keel.core.models import Assessment
from keel.core.privacy import PrivacySpend
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.assessment_contract import register
from keel.testing.privacy_contract import PrivacyStoreContract, dataset, privacy_events, spend_at_once
from keel.testing.store_contract import unique

NEW_TABLES = {"model_assessments", "privacy_budgets", "privacy_spends"}


class TestPrivacyStore(PrivacyStoreContract):
    pass


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_spends_from_separate_stores_of_one_database_never_exceed_the_budget(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """As separate processes would: each thread opens its own store (engine, pool) on the same database."""
    uri = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_store_url"))
    owner = open_store(uri)
    opened: list[MetadataStore] = []
    for _ in range(12):
        opened.append(open_store(uri))
    try:
        ref = dataset(owner)
        owner.privacy.set_budget(ref, 1.0, 1e-5)
        spent, refused = spend_at_once(lambda i: opened[i], ref, threads=12, epsilon=0.15)
        assert len(spent) == 6 and all(isinstance(e, BudgetExceeded) for e in refused) and len(refused) == 6
        budget = owner.privacy.get_budget(ref)
        assert budget is not None and math.isclose(budget.spent_epsilon, 0.9) and budget.spent_epsilon <= budget.epsilon
        assert len(owner.privacy.spends(ref)) == 6
    finally:
        for store in (owner, *opened):
            store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_of_the_previous_revision_gains_the_new_tables_and_loses_them_going_down(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from keel.store.metadata.sql import engine as sql_engine
    from keel.store.metadata.sql.store import SqlStore

    uri = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else str(request.getfixturevalue("fresh_postgres_url"))
    engine = sql_engine.make_engine(uri)
    sql_engine.upgrade(engine, "0016")
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    store = SqlStore(uri)  # upgrades to the head
    try:
        assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD >= "0017"
        name = unique("model")
        register(store, name)
        assert store.models.add_assessment(Assessment(name, 1, "fairness", {"dp": 0.1})).id > 0
        ref = dataset(store)
        store.privacy.set_budget(ref, 1.0, 0.0)
        with pytest.raises(BudgetExceeded):
            store.privacy.spend(PrivacySpend(ref, 2.0, 0.0, "m"))
    finally:
        store.close()
    sql_engine.downgrade(engine, "0016")
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    sql_engine.upgrade(engine)
    assert NEW_TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_over_a_secured_server_the_spender_is_the_caller_and_only_an_admin_sets_a_budget(tmp_path: Path) -> None:
    from keel.core.errors import PermissionDenied
    from keel.server.app import create_app
    from keel.store.artifacts import open_artifact_store
    from keel.store.metadata.rest.client import RestStore
    from keel.testing.services import serve_app

    backing = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    tokens = {}
    for name, role in (("root", "admin"), ("ed", "editor"), ("vi", "viewer")):
        backing.identity.create_principal(name)
        backing.identity.grant(name, role)
        tokens[name] = backing.identity.create_token(name).secret
    app = create_app(backing, open_artifact_store(str(tmp_path / "artifacts")), auth=True)
    with serve_app(app) as url:
        admin, editor, viewer = (RestStore(url, token=tokens[n]) for n in ("root", "ed", "vi"))
        try:
            ref = dataset(admin)
            with pytest.raises(PermissionDenied):
                editor.privacy.set_budget(ref, 100.0, 0.0)  # a writer who could raise the budget would defeat it
            admin.privacy.set_budget(ref, 1.0, 0.0)
            spent = editor.privacy.spend(PrivacySpend(ref, 0.5, 0.0, "m", created_by="root", created_at=1, id=99))
            assert (spent.created_by, spent.id != 99, spent.created_at > 1) == ("ed", True, True)
            with pytest.raises(PermissionDenied):
                viewer.privacy.spend(PrivacySpend(ref, 0.1, 0.0, "m"))
            assert [s.created_by for s in viewer.privacy.spends(ref)] == ["ed"]
            assert (viewer.privacy.get_budget(ref) or pytest.fail("no budget")).spent_epsilon == 0.5
            name = unique("model")
            register(admin, name)
            made = editor.models.add_assessment(Assessment(name, 1, "fairness", {"dp": 0.1}, created_by="root"))
            assert made.created_by == "ed" and viewer.models.assessments(name, 1) == [made]
            with pytest.raises(PermissionDenied):
                viewer.models.add_assessment(Assessment(name, 1, "fairness", {"dp": 0.0}))
            events = privacy_events(backing, ref)
            assert [(e.action, e.actor) for e in events] == [("privacy.set_budget", "root"), ("privacy.spend", "ed")]
        finally:
            for store in (admin, editor, viewer):
                store.close()
    backing.close()


def test_gc_keeps_a_deleted_run_that_spent_budget_or_assessed_and_the_assessment_report(tmp_path: Path) -> None:
    from keel.store.artifacts import open_artifact_store
    from keel.store.gc import collect_garbage

    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    try:
        experiment = store.get_or_create_experiment("dp").id
        spender, assessor, plain_run = (store.create_run(experiment) for _ in range(3))
        ref = dataset(store)
        store.privacy.set_budget(ref, 1.0, 0.0)
        store.privacy.spend(PrivacySpend(ref, 0.5, 0.0, "m", run_id=spender.id))
        report = artifacts.put_bytes(b"<html>fairness report</html>").sha256
        name = unique("model")
        register(store, name)
        store.models.add_assessment(Assessment(name, 1, "fairness", {"dp": 0.1}, artifact_sha256=report, run_id=assessor.id))
        for run in (spender, assessor, plain_run):
            store.delete_run(run.id)
        done = collect_garbage(store, artifacts, blob_grace_ms=0)
        assert [r.id for r in done.runs] == [plain_run.id]
        assert sorted(done.kept) == sorted([
            f"run {spender.id}: it spent privacy budget (kept with the spend)",
            f"run {assessor.id}: it made an assessment of a model version",
        ])  # fmt: skip
        assert artifacts.exists(report) and [s.run_id for s in store.privacy.spends(ref)] == [spender.id]
    finally:
        store.close()
