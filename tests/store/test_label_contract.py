"""The label-store contract on SQLite, PostgreSQL and REST.

Annotators are principals: in process, ``acting_as`` their name; over REST, each holds a token of a server with
authentication on (the actor of a request is its token's principal, never something the client says), so the REST
case runs its own in-process server instead of the session's open one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from keel.core.actor import acting_as, current_actor
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.label_contract import LabelStoreContract, LabelTeam, in_process_team

ANNOTATOR_ROLE = "annotator"  # the role that may only be handed tasks and answer them


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LabelTeam]:
    if request.param != "rest":
        uri = f"sqlite:///{tmp_path / 'keel.db'}" if request.param == "sqlite" else str(request.getfixturevalue("pg_store_url"))
        store = open_store(uri)
        yield in_process_team(store)
        store.close()
        return
    with _secured_team(tmp_path) as secured:
        yield secured


@contextlib.contextmanager
def _secured_team(tmp_path: Path) -> Iterator[LabelTeam]:
    from keel.server.app import create_app
    from keel.store.artifacts import open_artifact_store
    from keel.store.metadata.rest.client import RestStore
    from keel.testing.services import serve_app

    backing = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    app = create_app(backing, open_artifact_store(str(tmp_path / "artifacts")), auth=True)
    opened: list[MetadataStore] = []

    def token(name: str, role: str) -> str:
        if name not in {p.name for p in backing.identity.list_principals()}:
            backing.identity.create_principal(name)
            backing.identity.grant(name, role)
        return backing.identity.create_token(name).secret

    with serve_app(app) as url:

        @contextlib.contextmanager
        def annotator(name: str) -> Iterator[MetadataStore]:
            store = RestStore(url, token=token(name, ANNOTATOR_ROLE))
            opened.append(store)
            yield store

        owner = RestStore(url, token=token("owner", "admin"))
        try:
            yield LabelTeam(owner, "owner", annotator)
        finally:
            for store in (owner, *opened):
                store.close()
    backing.close()


class TestLabelStore(LabelStoreContract):
    pass


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_of_the_previous_revision_gains_the_label_tables_and_loses_them_going_down(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from keel.store.metadata.sql import engine as sql_engine
    from keel.store.metadata.sql.store import SqlStore

    uri = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else str(request.getfixturevalue("fresh_postgres_url"))
    engine = sql_engine.make_engine(uri)
    sql_engine.upgrade(engine, "0015")
    store = SqlStore(uri)  # upgrades to the head
    try:
        assert sql_engine.current_revision(store.engine) == sql_engine.SCHEMA_HEAD
        team = in_process_team(store)
        TestLabelStore().test_a_submit_retried_with_its_request_id_answers_once(team)
    finally:
        store.close()
    sql_engine.downgrade(engine, "0015")
    assert not [name for name in inspect(engine).get_table_names() if name.startswith("label_")]
    sql_engine.upgrade(engine)
    assert sql_engine.current_revision(engine) == sql_engine.SCHEMA_HEAD
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_annotators_on_separate_stores_of_one_database_never_overfill(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """As separate processes would: each annotator's thread opens its own store (engine, pool) on the same database."""
    uri = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_store_url"))
    owner = open_store(uri)

    @contextlib.contextmanager
    def annotator(name: str) -> Iterator[MetadataStore]:
        store = open_store(uri)
        try:
            with acting_as(name):
                yield store
        finally:
            store.close()

    try:
        TestLabelStore().test_annotators_asking_at_once_never_overfill_an_item_nor_get_one_twice(
            LabelTeam(owner, current_actor(), annotator)
        )
    finally:
        owner.close()
