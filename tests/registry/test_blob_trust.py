"""Trust in what gets loaded: a pickle's writer is recorded with the version, run artifact or step-cache entry
that names it; a client of a keel server unpickles it only when it wrote those bytes itself or a principal with
a role the project trusts did (admin by default), and a forged pickle from anyone else never runs."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import keel.registry as registry
from keel.context import Context
from keel.core.errors import PermissionDenied
from keel.server.app import create_app
from keel.store.artifacts import open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.services import serve_app


class Evil:
    """Unpickling this writes ``marker``: stands for any code a forged pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "code ran"))


class Constant:
    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, rows: object) -> list[int]:
        return [self.value]


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], MetadataStore]]:
    store = open_store(f"sqlite:///{tmp_path / 'keel.db'}")
    tokens = {}
    for name, role in (("mallory", "editor"), ("alice", "editor"), ("boss", "admin")):
        store.identity.create_principal(name)
        store.identity.grant(name, role)
        tokens[name] = store.identity.create_token(name).secret
    with serve_app(create_app(store, open_artifact_store(str(tmp_path / "artifacts")), auth=True)) as url:
        yield url, tokens, store
    store.close()


def as_user(url: str, token: str, monkeypatch: pytest.MonkeyPatch) -> Context:
    """A client context of ``url`` whose requests carry ``token`` (KEEL_TOKEN, read when the stores open)."""
    monkeypatch.setenv("KEEL_TOKEN", token)
    ctx = Context(url, url)
    assert ctx.store is not None and ctx.artifacts is not None  # opened now, with this token
    monkeypatch.delenv("KEEL_TOKEN")
    return ctx


def upload_version(url: str, token: str, blob: bytes, name: str) -> str:
    """Two requests any editor may make: upload bytes, register them as a pickle model."""
    auth = {"authorization": f"Bearer {token}"}
    sha = hashlib.sha256(blob).hexdigest()
    put = httpx.put(f"{url}/api/v1/artifacts/{sha}", content=blob, headers={**auth, "content-type": "application/octet-stream"})
    assert put.status_code == 200, put.text
    body = {"name": name, "flavor": "sklearn", "artifact_sha256": sha, "size": len(blob), "signature": {"format": "pickle"}}
    created = httpx.post(f"{url}/api/v1/models/versions", json=body, headers=auth)
    assert created.status_code == 200, created.text
    return f"models:/{name}/{created.json()['version']}"


def test_a_forged_pickle_from_an_untrusted_principal_is_refused_and_never_runs(
    team: tuple[str, dict[str, str], MetadataStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tokens, store = team
    marker = tmp_path / "pwned"
    forged = upload_version(url, tokens["mallory"], pickle.dumps(Evil(marker)), "forged")
    alice = as_user(url, tokens["alice"], monkeypatch)
    with pytest.raises(PermissionDenied) as caught:
        registry.load(forged, ctx=alice)
    assert "written by mallory" in caught.value.message and "keel roles trust" in caught.value.message
    assert not marker.exists()  # refused before a byte was unpickled
    # the server answers for its caller: alice cannot ask as mallory
    sha = store.models.get_version("forged", 1).artifact_sha256
    verdict = alice.store.identity.blob_trust(sha, "mallory")
    assert (verdict.principal, verdict.trusted, verdict.writers) == ("alice", False, ("mallory",))
    alice.close()


def test_own_bytes_and_a_trusted_roles_bytes_load_without_opt_in(
    team: tuple[str, dict[str, str], MetadataStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tokens, store = team
    boss = as_user(url, tokens["boss"], monkeypatch)
    by_admin = registry.register(Constant(7), "by-admin", ctx=boss)  # the SDK over REST: the store records boss
    alice = as_user(url, tokens["alice"], monkeypatch)
    assert registry.load(by_admin.uri, ctx=alice).model.predict(None) == [7]  # admin: a trusted role by default
    by_alice = registry.register(Constant(3), "by-alice", ctx=alice)
    assert registry.load(by_alice.uri, ctx=alice).model.predict(None) == [3]  # her own bytes
    mallory = as_user(url, tokens["mallory"], monkeypatch)
    with pytest.raises(PermissionDenied, match="written by alice: not you"):
        registry.load(by_alice.uri, ctx=mallory)
    # an admin marks editors trusted: then an editor's pickle loads for every member of the project
    assert boss.store.identity.set_trusted_roles("default", ["admin", "editor"]) == ("admin", "editor")
    assert registry.load(by_alice.uri, ctx=mallory).model.predict(None) == [3]
    with pytest.raises(PermissionDenied):  # setting trust is an admin's
        alice.store.identity.set_trusted_roles("default", ["viewer"])
    assert [e.action for e in store.audit.events(entity="project")][-1] == "identity.set_trusted_roles"
    for ctx in (boss, alice, mallory):
        ctx.close()


def test_naming_someone_elses_bytes_makes_nobody_their_writer(
    team: tuple[str, dict[str, str], MetadataStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an upload records a writer: an admin's run that lists mallory's pickle among its artifacts (as a cached
    step's copied artifacts would) does not make the admin its writer, and a disabled admin vouches for nothing."""
    url, tokens, store = team
    forged = upload_version(url, tokens["mallory"], pickle.dumps(Evil(tmp_path / "pwned")), "forged2")
    sha = store.models.get_version("forged2", 1).artifact_sha256
    admin = {"authorization": f"Bearer {tokens['boss']}"}
    experiment = httpx.post(f"{url}/api/v1/experiments", json={"name": "copies"}, headers=admin).json()["id"]
    run = httpx.post(f"{url}/api/v1/runs", json={"experiment_id": experiment}, headers=admin).json()["id"]
    listed = httpx.post(f"{url}/api/v1/runs/{run}/artifacts", json={"artifacts": [{"path": "x.pkl", "sha256": sha, "size": 1}]},
                        headers=admin)  # fmt: skip
    assert listed.status_code == 200, listed.text
    assert store.identity.blob_trust(sha, "alice").writers == ("mallory",)
    alice = as_user(url, tokens["alice"], monkeypatch)
    with pytest.raises(PermissionDenied):
        registry.load(forged, ctx=alice)
    assert not (tmp_path / "pwned").exists()
    boss = as_user(url, tokens["boss"], monkeypatch)
    by_admin = registry.register(Constant(5), "by-admin-2", ctx=boss)
    assert registry.load(by_admin.uri, ctx=alice).model.predict(None) == [5]
    store.identity.set_disabled("boss", True)  # a compromised admin, disabled: its uploads are trusted no more
    with pytest.raises(PermissionDenied, match="written by boss"):
        registry.load(by_admin.uri, ctx=alice)
    for ctx in (alice, boss):
        ctx.close()
