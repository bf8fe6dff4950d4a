"""Issue 9: the SQL backend split by entity around one unit of work, checks every backend shares in keel.core."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from keel.core.dataset_records import check_dataset_version
from keel.core.datasets import ColumnSchema
from keel.core.errors import Conflict, InvalidArgument
from keel.core.model_records import check_model_version
from keel.core.validation import check_alias
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest.client import RestStore
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.database import Database
from keel.store.metadata.sql.store import SqlStore

SQL_PACKAGE = Path(__file__).resolve().parents[2] / "src" / "keel" / "store" / "metadata" / "sql"
SHA = "a" * 64


def test_the_root_store_is_a_metadata_store_and_the_old_name_still_works() -> None:
    from keel.store.metadata.base import TrackingStore

    assert TrackingStore is MetadataStore
    assert issubclass(SqlStore, MetadataStore) and issubclass(RestStore, MetadataStore)


def test_entity_stores_reach_no_private_of_another_object() -> None:
    """``x._name`` only on ``self``/``cls``: the stores use the unit of work (and each other) through public names."""
    offences = []
    for path in sorted(SQL_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    offences.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert offences == []


def test_backend_neutral_checks_import_no_sql() -> None:
    code = (
        "import sys, keel.core.dataset_records, keel.core.model_records, keel.core.validation\n"
        "assert 'sqlalchemy' not in sys.modules, sorted(m for m in sys.modules if m.startswith('sqlalchemy'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"role": "gold"}, "role must be one of data, quarantine"),
        ({"schema": []}, "schema must be a non-empty list of columns"),
        ({"size": True}, "size must be a non-negative integer"),
        ({"row_count": -1}, "row_count must be a non-negative integer"),
        ({"transform": ["x"]}, "transform must be a mapping"),
    ],
)
def test_dataset_versions_are_checked_in_core(change: dict[str, object], needle: str) -> None:
    args: dict[str, object] = dict(
        content_hash=SHA, artifact_sha256=SHA, size=1, row_count=1, schema=[ColumnSchema("x", "int64", False)]
    )
    checked = check_dataset_version("orders", **args)  # type: ignore[arg-type]
    assert (checked.role, checked.schema, checked.transform, checked.source) == (
        "data",
        (ColumnSchema("x", "int64", False),),
        None,
        "",
    )
    with pytest.raises(InvalidArgument, match=needle):
        check_dataset_version("orders", **{**args, **change})  # type: ignore[arg-type]


def test_model_versions_and_aliases_are_checked_in_core() -> None:
    checked = check_model_version(
        "churn", flavor="sklearn", artifact_sha256=SHA, size=3, signature={"a": 1}, metrics={"acc": 1}, datasets=["d@1"]
    )
    assert (checked.signature, checked.metrics, checked.datasets, checked.requirements) == (
        '{"a": 1}',
        '{"acc": 1.0}',
        '["d@1"]',
        "[]",
    )
    with pytest.raises(InvalidArgument, match="metric 'acc' value must be a number"):
        check_model_version("churn", flavor="sklearn", artifact_sha256=SHA, size=3, signature={}, metrics={"acc": "0.9"})
    with pytest.raises(InvalidArgument, match="signature must be a JSON object"):
        check_model_version("churn", flavor="sklearn", artifact_sha256=SHA, size=3, signature={"x": float("nan")})
    assert check_alias("production") == "production"
    for bad in ("Prod", "prod\n", "9x", "a" * 65):
        with pytest.raises(InvalidArgument, match="alias must be"):
            check_alias(bad)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'k.db'}")
    yield database
    database.close()


def test_numbered_write_runs_again_after_a_conflict_in_a_new_transaction(db: Database) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> int:
        attempts.append(1)
        insert = t.projects.insert().values(name=f"p{len(attempts)}", description="", created_at=0)
        conn.execute(insert)
        if len(attempts) < 3:
            conn.execute(insert)  # the same unique name again: Conflict
        return len(attempts)

    assert db.numbered_write(work) == 3
    with db.transaction(write=False) as conn:
        names = list(conn.execute(select(t.projects.c.name).order_by(t.projects.c.name)).scalars())
    assert names == ["p3"]  # the two refused passes were rolled back whole


def test_numbered_write_gives_up_after_its_attempts_with_the_message_given(db: Database) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        raise Conflict("raced")

    with pytest.raises(Conflict, match=r"^too busy$") as raised:
        db.numbered_write(work, exhausted="too busy")
    assert len(attempts) == 3 and raised.value.__cause__ is None
    with pytest.raises(Conflict, match=r"^raced$"):
        db.numbered_write(work)
