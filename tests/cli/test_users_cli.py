"""``keel users|roles|tokens`` as a user runs them on a local store: a token printed once, tables escaped, bad input
one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from keel.core.clock import now_ms
from keel.core.identity import parse_token
from keel.store.metadata import open_store
from keel.testing.cli import keel_cmd


def _ok(tmp_path: Path, *args: str) -> str:
    done = keel_cmd(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _bad(tmp_path: Path, *args: str) -> str:
    done = keel_cmd(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("keel: error:") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def _local_store(tmp_path: Path) -> object:
    return open_store(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")


def test_users_roles_and_tokens_from_create_to_revoke(tmp_path: Path) -> None:
    assert "created user ana" in _ok(tmp_path, "users", "create", "ana")
    assert "created service account replica" in _ok(tmp_path, "users", "create", "replica", "--service")
    listed = _ok(tmp_path, "users", "list")
    assert "ana" in listed and "replica" in listed and "service" in listed

    assert "ana is editor in project churn" in _ok(tmp_path, "roles", "grant", "ana", "editor", "--project", "churn")
    assert "model fraud" in _ok(tmp_path, "roles", "grant", "ana", "admin", "--model", "fraud")
    _ok(tmp_path, "roles", "grant", "replica", "service")
    mine = _ok(tmp_path, "roles", "list", "ana")
    assert "editor" in mine and "churn" in mine and "fraud" in mine and "replica" not in mine
    assert "replica" in _ok(tmp_path, "roles", "list")
    assert "revoked editor of ana" in _ok(tmp_path, "roles", "revoke", "ana", "editor", "--project", "churn")
    assert "churn" not in _ok(tmp_path, "roles", "list", "ana")

    made = _ok(tmp_path, "tokens", "create", "replica", "--name", "serving", "--scope", "serve", "--scope", "log",
               "--expires", "30d")  # fmt: skip
    assert "will not be shown again" in made
    [secret] = [line for line in made.splitlines() if line.startswith("keel_")]
    parsed = parse_token(secret)
    assert parsed is not None
    token_id = parsed[0]
    store = _local_store(tmp_path)
    try:
        principal, record = store.identity.authenticate(secret)  # type: ignore[attr-defined]
        assert (principal.name, record.id, record.scopes) == ("replica", token_id, ("serve", "log"))
        days = (record.expires_at - now_ms()) / 86_400_000
        assert 29.9 < days <= 30
    finally:
        store.close()  # type: ignore[attr-defined]
    listed = _ok(tmp_path, "tokens", "list", "replica")
    assert token_id in listed and "serving" in listed and "active" in listed and parsed[1] not in listed

    as_json = json.loads(_ok(tmp_path, "tokens", "create", "ana", "--json"))
    assert as_json["principal"] == "ana" and as_json["scopes"] == [] and as_json["expires_at"] is None
    assert parse_token(as_json["token"]) == (as_json["id"], parse_token(as_json["token"])[1])  # type: ignore[index]

    assert f"revoked token {token_id}" in _ok(tmp_path, "tokens", "revoke", token_id)
    assert "revoked" in _ok(tmp_path, "tokens", "list", "replica")
    assert "disabled ana" in _ok(tmp_path, "users", "disable", "ana")
    assert "disabled" in _ok(tmp_path, "users", "list")
    assert "enabled ana" in _ok(tmp_path, "users", "enable", "ana")
    store = _local_store(tmp_path)
    try:
        assert not store.identity.get_principal("ana").disabled  # type: ignore[attr-defined]
        assert [t.revoked_at is not None for t in store.identity.list_tokens("replica")] == [True]  # type: ignore[attr-defined]
    finally:
        store.close()  # type: ignore[attr-defined]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    _ok(tmp_path, "users", "create", "ana")
    assert "already exists" in _bad(tmp_path, "users", "create", "ana")
    assert "principal must be" in _bad(tmp_path, "users", "create", "has space")
    assert "role must be" in _bad(tmp_path, "roles", "grant", "ana", "owner")
    assert "project must be" in _bad(tmp_path, "roles", "grant", "ana", "viewer", "--project", "a/b")
    assert "does not exist" in _bad(tmp_path, "roles", "grant", "nobody", "viewer")
    assert "has no role" in _bad(tmp_path, "roles", "revoke", "ana", "viewer")
    assert "scopes must be" in _bad(tmp_path, "tokens", "create", "ana", "--scope", "sudo")
    assert "--expires" in _bad(tmp_path, "tokens", "create", "ana", "--expires", "soon")
    assert "token_id must be" in _bad(tmp_path, "tokens", "revoke", "xyz")
    assert "does not exist" in _bad(tmp_path, "tokens", "revoke", "0" * 12)
    assert "does not exist" in _bad(tmp_path, "users", "disable", "nobody")
    assert "ana" in _ok(tmp_path, "users", "list") and "has space" not in _ok(tmp_path, "users", "list")
    assert "viewer" not in _ok(tmp_path, "roles", "list") and "ana" not in _ok(tmp_path, "tokens", "list")


def test_user_data_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    _ok(tmp_path, "users", "create", "ana")
    _ok(tmp_path, "tokens", "create", "ana", "--name", "[red]x[/bold]")  # markup Rich would read (or fail on)
    assert "[red]x[/bold]" in _ok(tmp_path, "tokens", "list")
    refused = _bad(tmp_path, "tokens", "create", "ana", "--name", "\x1b[2J")  # never stored, and not echoed raw
    assert "name must be" in refused and "\x1b[2J" not in refused
