"""Guessing tokens through the UI's sign-in is limited like the API: after 20 failures a minute from one client, the
answer is 429 and even a right token is refused until the wait is over."""

from __future__ import annotations

from pathlib import Path

import httpx

from keel.store.metadata import open_store
from keel.testing import services


def test_sign_in_guesses_are_limited_as_the_apis(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'keel.db'}"
    store = open_store(uri)
    store.identity.create_principal("ana")
    store.identity.grant("ana", "viewer")
    token = store.identity.create_token("ana").secret
    store.close()
    with services.keel_server(uri, str(tmp_path / "artifacts")) as url:
        answers = [httpx.post(f"{url}/ui/session", json={"token": f"keel_{n:012x}_{'x' * 43}"}, timeout=30) for n in range(20)]
        assert {a.status_code for a in answers} == {401}
        limited = httpx.post(f"{url}/ui/session", json={"token": token}, timeout=30)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "too_many_failures"
        assert "keel_token" not in limited.headers.get("set-cookie", "")
