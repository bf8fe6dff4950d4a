"""The identity-store contract (principals, role bindings, API tokens), as tests every backend must pass."""

from __future__ import annotations

import time
from typing import Any

import pytest

from keel.core.clock import now_ms
from keel.core.errors import Conflict, InvalidArgument, NotFound, Unauthenticated
from keel.core.identity import parse_token
from keel.store.metadata.base import MetadataStore
from keel.testing.store_contract import unique

BAD_TOKEN = "invalid or expired token"


def _refused(store: MetadataStore, token: Any) -> str:
    """The message of the ``Unauthenticated`` that ``token`` gets: the same for every failure, never the token."""
    with pytest.raises(Unauthenticated) as caught:
        store.identity.authenticate(token)
    message = str(caught.value)
    assert BAD_TOKEN in message
    if isinstance(token, str) and token:
        assert token not in message
        parsed = parse_token(token)
        assert parsed is None or parsed[1] not in message
    return message


def _invalid(field: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        call(*args, **kwargs)
    assert str(caught.value).startswith(f"{field} must be"), str(caught.value)


class IdentityStoreContract:
    # principals ----------------------------------------------------------------------------------------------
    def test_create_get_list_and_disable_principals(self, store: MetadataStore) -> None:
        ids = store.identity
        before = ids.count_principals()
        alice, robot = unique("alice"), unique("robot")
        made = ids.create_principal(alice)
        assert (made.name, made.kind, made.disabled) == (alice, "user", False)
        assert made.created_at > 0 and made.created_by
        service = ids.create_principal(robot, kind="service")
        assert service.kind == "service"
        assert ids.get_principal(alice) == made
        listed = ids.list_principals()
        assert made in listed and service in listed
        names = [p.name for p in listed]
        assert names == sorted(names)
        assert ids.count_principals() == before + 2
        off = ids.set_disabled(alice, True)
        assert off.disabled and ids.get_principal(alice).disabled
        assert not ids.set_disabled(alice, False).disabled
        with pytest.raises(NotFound):
            ids.get_principal(unique("nobody"))
        with pytest.raises(NotFound):
            ids.set_disabled(unique("nobody"), True)

    def test_a_taken_name_is_a_conflict(self, store: MetadataStore) -> None:
        name = unique("bo")
        store.identity.create_principal(name)
        with pytest.raises(Conflict):
            store.identity.create_principal(name, kind="service")
        assert [p.kind for p in store.identity.list_principals() if p.name == name] == ["user"]

    def test_bad_input_names_the_field_and_writes_nothing(self, store: MetadataStore) -> None:
        ids = store.identity
        count = ids.count_principals()
        _invalid("principal", ids.create_principal, "has space")
        _invalid("principal", ids.create_principal, "")
        _invalid("principal", ids.create_principal, "x" * 129)
        _invalid("kind", ids.create_principal, unique("k"), kind="robot")
        assert ids.count_principals() == count

        name = unique("cy")
        ids.create_principal(name)
        _invalid("role", ids.grant, name, "owner")
        _invalid("project", ids.grant, name, "viewer", project="")
        _invalid("project", ids.grant, name, "viewer", project="a/b")
        _invalid("project", ids.grant, name, "viewer", project="p" * 129)
        _invalid("model", ids.grant, name, "viewer", model="")
        _invalid("model", ids.grant, name, "viewer", model="bad/model")
        _invalid("principal", ids.grant, "bad name", "viewer")
        assert ids.bindings(name) == []

        _invalid("scopes", ids.create_token, name, scopes=["read", "sudo"])
        _invalid("scopes", ids.create_token, name, scopes="read")
        _invalid("expires_at", ids.create_token, name, expires_at=now_ms() - 1000)
        _invalid("name", ids.create_token, name, name="line\nbreak")
        _invalid("token_id", ids.revoke_token, "not-an-id")
        assert ids.list_tokens(name) == []

    # roles ---------------------------------------------------------------------------------------------------
    def test_grant_is_idempotent_and_revoke_removes_one_binding(self, store: MetadataStore) -> None:
        ids = store.identity
        name = unique("dee")
        ids.create_principal(name)
        first = ids.grant(name, "editor", project="churn")
        assert (first.principal, first.role, first.project, first.model) == (name, "editor", "churn", None)
        assert first.created_at > 0
        assert ids.grant(name, "editor", project="churn") == first
        everywhere = ids.grant(name, "viewer")
        assert everywhere.project == "*" and everywhere.model is None
        assert sorted((b.role, b.project) for b in ids.bindings(name)) == [("editor", "churn"), ("viewer", "*")]
        ids.revoke_role(name, "editor", project="churn")
        assert ids.bindings(name) == [everywhere]
        with pytest.raises(NotFound):
            ids.revoke_role(name, "editor", project="churn")
        with pytest.raises(NotFound):
            ids.revoke_role(name, "admin")
        with pytest.raises(NotFound):
            ids.grant(unique("nobody"), "viewer")

    def test_bindings_filtered_by_principal_and_by_model(self, store: MetadataStore) -> None:
        ids = store.identity
        ed, ann, model = unique("ed"), unique("ann"), unique("churn-model")
        ids.create_principal(ed)
        ids.create_principal(ann)
        on_model = ids.grant(ed, "editor", model=model)
        ids.grant(ed, "viewer")
        other = ids.grant(ann, "admin", project="fraud", model=model)
        ids.grant(ann, "viewer", model=unique("other-model"))
        assert on_model.model == model
        assert sorted(b.role for b in ids.bindings(ed)) == ["editor", "viewer"]
        assert ids.bindings(model=model) == sorted([on_model, other], key=lambda b: b.principal)
        assert ids.bindings(ed, model=model) == [on_model]
        everyone = ids.bindings()
        assert on_model in everyone and other in everyone
        # a model binding is its own binding: revoking it leaves the project-wide one
        ids.revoke_role(ed, "editor", model=model)
        assert ids.bindings(model=model) == [other]
        with pytest.raises(NotFound):
            ids.bindings(unique("nobody"))

    # tokens --------------------------------------------------------------------------------------------------
    def test_a_token_is_shown_once_and_authenticates(self, store: MetadataStore) -> None:
        ids = store.identity
        name = unique("fay")
        ids.create_principal(name, kind="service")
        expires = now_ms() + 3_600_000
        new = ids.create_token(name, name="ci", scopes=["read", "log", "read"], expires_at=expires)
        parsed = parse_token(new.secret)
        assert parsed is not None and parsed[0] == new.token.id
        record = new.token
        assert (record.principal, record.name, record.scopes, record.expires_at) == (name, "ci", ("read", "log"), expires)
        assert record.revoked_at is None and record.last_used_at is None and record.created_at > 0
        listed = ids.list_tokens(name)
        assert listed == [record]
        assert new.secret not in repr(listed) and parsed[1] not in repr(ids.list_tokens())
        principal, token = ids.authenticate(new.secret)
        assert (principal.name, principal.kind, token.id, token.scopes) == (name, "service", record.id, ("read", "log"))
        assert token.last_used_at is not None and token.last_used_at >= record.created_at
        assert ids.list_tokens(name)[0].last_used_at == token.last_used_at
        # noted at most once a minute: a second call right after leaves it as it is
        assert ids.authenticate(new.secret)[1].last_used_at == token.last_used_at
        with pytest.raises(NotFound):
            ids.create_token(unique("nobody"))
        with pytest.raises(NotFound):
            ids.list_tokens(unique("nobody"))

    def test_tokens_are_listed_newest_first(self, store: MetadataStore) -> None:
        ids = store.identity
        name = unique("gus")
        ids.create_principal(name)
        old = ids.create_token(name, name="old").token
        time.sleep(0.01)
        new = ids.create_token(name, name="new").token
        assert [t.id for t in ids.list_tokens(name)] == [new.id, old.id]
        assert {new.id, old.id} <= {t.id for t in ids.list_tokens()}

    def test_every_failure_is_the_same_unauthenticated(self, store: MetadataStore) -> None:
        ids = store.identity
        name = unique("hal")
        ids.create_principal(name)
        secret = ids.create_token(name).secret
        parsed = parse_token(secret)
        assert parsed is not None
        token_id, raw = parsed
        wrong = f"keel_{token_id}_{'A' * 43}"
        unknown = f"keel_{'0' * 12}_{raw}"
        messages = {
            _refused(store, wrong),
            _refused(store, unknown),
            _refused(store, "not a token"),
            _refused(store, secret + "x"),
            _refused(store, ""),
            _refused(store, secret.upper()),
        }
        assert len(messages) == 1
        ids.authenticate(secret)  # the failures did not spoil the right token
        assert _refused(store, wrong) in messages  # nor does a verified one make a wrong secret of its id pass

    def test_revocation_expiry_and_disabling_count_at_once(self, store: MetadataStore) -> None:
        ids = store.identity
        name = unique("ivy")
        ids.create_principal(name)
        revoked, disabled = ids.create_token(name).secret, ids.create_token(name).secret
        ids.authenticate(revoked)  # verified, and so remembered by the store
        parsed = parse_token(revoked)
        assert parsed is not None
        first = ids.revoke_token(parsed[0])
        assert first.revoked_at is not None and not first.active(now_ms())
        assert ids.revoke_token(parsed[0]).revoked_at == first.revoked_at  # revoking twice keeps the first time
        message = _refused(store, revoked)

        ids.authenticate(disabled)
        ids.set_disabled(name, True)
        assert _refused(store, disabled) == message
        ids.set_disabled(name, False)
        assert ids.authenticate(disabled)[0].name == name

        expiring = ids.create_token(name, expires_at=now_ms() + 1500)
        assert ids.authenticate(expiring.secret)[1].id == expiring.token.id
        time.sleep(max(0.0, (expiring.token.expires_at or 0) - now_ms()) / 1000 + 0.05)
        assert _refused(store, expiring.secret) == message
        with pytest.raises(NotFound):
            ids.revoke_token("0" * 12)
