"""The identity-store contract on SQLite, PostgreSQL and the REST store against a real server; what only SQL shows
(the stored hash, the actor, the verified-token memo); the routes as any HTTP client sees them."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from keel.core.actor import acting_as
from keel.core.errors import Unauthenticated
from keel.core.identity import hash_secret, parse_token
from keel.store.metadata import open_store
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.store import SqlStore
from keel.testing.identity_contract import BAD_TOKEN, IdentityStoreContract
from keel.testing.store_contract import unique


class TestIdentityStore(IdentityStoreContract):
    pass


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: object) -> SqlStore:
    uri = f"sqlite:///{tmp_path}/keel.db" if request.param == "sqlite" else str(request.getfixturevalue("pg_store_url"))
    store = open_store(uri)
    assert isinstance(store, SqlStore)
    request.addfinalizer(store.close)
    return store


def test_the_table_holds_a_hash_never_the_secret(sql_store: SqlStore) -> None:
    name = unique("jo")
    sql_store.identity.create_principal(name)
    new = sql_store.identity.create_token(name, scopes=["read"])
    parsed = parse_token(new.secret)
    assert parsed is not None
    token_id, secret = parsed
    with sql_store.engine.connect() as conn:
        row = conn.execute(select(t.api_tokens).where(t.api_tokens.c.id == token_id)).one()
    assert row.hash == hash_secret(token_id, secret) and row.hash.startswith("scrypt$")
    assert all(secret not in str(value) and new.secret not in str(value) for value in row)
    assert row.scopes == "read"


def test_created_by_is_the_acting_principal(sql_store: SqlStore) -> None:
    with acting_as("root-admin"):
        made = sql_store.identity.create_principal(unique("kim"))
    assert made.created_by == "root-admin"
    assert sql_store.identity.get_principal(made.name).created_by == "root-admin"


def test_a_verified_token_is_remembered_but_its_row_still_read(sql_store: SqlStore) -> None:
    ids = sql_store.identity
    name = unique("lou")
    ids.create_principal(name)
    new = ids.create_token(name)
    assert new.token.id not in ids._verified
    ids.authenticate(new.secret)
    assert new.token.id in ids._verified
    # the memo is keyed by the stored hash too: a row whose hash changed (another database under the same store
    # object, a token id reused) is verified again, and fails
    with sql_store.db.transaction() as conn:
        conn.execute(t.api_tokens.update().where(t.api_tokens.c.id == new.token.id).values(hash="scrypt$00"))
    with pytest.raises(Unauthenticated, match=BAD_TOKEN):
        ids.authenticate(new.secret)
    # and a row deleted behind its back is not found, memo or not
    with sql_store.db.transaction() as conn:
        conn.execute(t.api_tokens.delete().where(t.api_tokens.c.id == new.token.id))
    with pytest.raises(Unauthenticated, match=BAD_TOKEN):
        ids.authenticate(new.secret)


def test_last_used_is_noted_again_after_a_minute(sql_store: SqlStore) -> None:
    ids = sql_store.identity
    name = unique("max")
    ids.create_principal(name)
    new = ids.create_token(name)
    first = ids.authenticate(new.secret)[1].last_used_at
    assert first is not None
    with sql_store.db.transaction() as conn:  # as if the last use were 61 s ago
        conn.execute(t.api_tokens.update().where(t.api_tokens.c.id == new.token.id).values(last_used_at=first - 61_000))
    again = ids.authenticate(new.secret)[1].last_used_at
    assert again is not None and again >= first
    assert ids.list_tokens(name)[0].last_used_at == again


def test_the_routes_as_any_http_client_sees_them(server_url: str) -> None:
    """The generated routes: bodies checked by the server, the token only in a body and never in an answer."""
    api = f"{server_url}/api/v1/identity"
    name = unique("ned")
    made = httpx.post(f"{api}/principals", json={"name": name, "kind": "service"})
    assert made.status_code == 200 and made.json()["kind"] == "service"
    assert httpx.post(f"{api}/principals", json={"name": name}).status_code == 409
    assert httpx.post(f"{api}/principals", json={"name": unique("x"), "admin": True}).status_code == 400
    bad_kind = httpx.post(f"{api}/principals", json={"name": unique("x"), "kind": "robot"})
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["error"]["message"]
    assert httpx.get(f"{api}/principals/{name}").json()["name"] == name
    assert httpx.get(f"{api}/principals/{unique('nobody')}").status_code == 404
    assert httpx.post(f"{api}/principals/{name}/disabled", json={"disabled": "yes"}).status_code == 400
    assert httpx.get(f"{api}/principal-count").json()["count"] >= 1

    granted = httpx.post(f"{api}/bindings", json={"principal": name, "role": "service", "model": "churn"})
    assert granted.status_code == 200 and granted.json()["model"] == "churn"
    listed = httpx.get(f"{api}/bindings", params={"model": "churn"}).json()
    assert [b["principal"] for b in listed if b["principal"] == name] == [name]
    binding = {"principal": name, "role": "service", "model": "churn"}
    json_type = {"content-type": "application/json"}  # the server refuses a change that is not JSON (415), body or not
    assert httpx.delete(f"{api}/bindings", params=binding, headers=json_type).status_code == 200
    assert httpx.delete(f"{api}/bindings", params=binding, headers=json_type).status_code == 404

    new = httpx.post(f"{api}/tokens", json={"principal": name, "scopes": ["serve"]}).json()
    secret = new["secret"]
    assert set(new["token"]) == {"id", "principal", "name", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"}
    assert secret not in httpx.get(f"{api}/tokens", params={"principal": name}).text
    ok = httpx.post(f"{api}/authenticate", json={"token": secret})
    assert ok.status_code == 200 and ok.json()["principal"]["name"] == name and ok.json()["token"]["scopes"] == ["serve"]
    assert secret not in ok.text
    parsed = parse_token(secret)
    assert parsed is not None
    wrong = f"keel_{parsed[0]}_{'B' * 43}"
    refused = httpx.post(f"{api}/authenticate", json={"token": wrong})
    assert refused.status_code == 401 and wrong not in refused.text and BAD_TOKEN in refused.text
    assert httpx.post(f"{api}/tokens/{parsed[0]}/revoke", headers=json_type).json()["revoked_at"] is not None
    assert httpx.post(f"{api}/authenticate", json={"token": secret}).status_code == 401
    assert httpx.post(f"{api}/tokens/nothex/revoke", headers=json_type).status_code == 400
