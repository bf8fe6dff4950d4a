"""Issue 9: an alias moves through its gates in one store transaction (compare-and-swap on the holder), and a
move without gates is refused unless the caller forces it, which is recorded; over REST as in the store."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from keel.core.actor import local_actor
from keel.core.errors import Conflict
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.cli import keel_cmd
from keel.testing.store_contract import unique

SHA = "d" * 64


def _register(store: MetadataStore, name: str, auc: float) -> int:
    return store.models.create_version(
        name, flavor="python", artifact_sha256=SHA, size=1, signature={"inputs": []}, metrics={"auc": auc}
    ).version


@pytest.mark.parametrize("holder", [None, 1], ids=["unheld", "held"])
def test_concurrent_promotions_with_the_same_expected_holder_one_wins(store_uri: str, holder: int | None) -> None:
    stores = [open_store(store_uri) for _ in range(6)]
    try:
        name = unique("raced")
        versions = [_register(stores[0], name, 0.9 + i / 100) for i in range(len(stores) + 1)]
        if holder is not None:
            stores[0].models.move_alias(name, "production", holder, rules=["auc >= 0.5"], actor="ana")
        start = threading.Barrier(len(stores))
        outcomes: dict[int, object] = {}

        def promote(i: int) -> None:
            start.wait()
            rules = ["auc >= baseline"] if holder is not None else ["auc >= 0.5"]
            try:
                outcomes[i] = stores[i].models.move_alias(
                    name, "production", versions[i + 1], rules=rules, expected_from=holder, actor=f"ci-{i}"
                )
            except Conflict as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=promote, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [i for i, o in outcomes.items() if not isinstance(o, Exception)]
        assert len(outcomes) == len(stores) and len(winners) == 1, outcomes
        losers = [o for o in outcomes.values() if isinstance(o, Exception)]
        assert all(type(o) is Conflict and "another move came first" in str(o) for o in losers)
        moves = [c for c in stores[0].models.alias_history(name, "production") if c.from_version == holder]
        assert len(moves) == 1 and moves[0].to_version == versions[winners[0] + 1] and moves[0].gated
        assert stores[0].models.resolve_alias(name, "production").version == versions[winners[0] + 1]
    finally:
        for s in stores:
            s.close()


def _put(server_url: str, name: str, body: dict[str, object]) -> httpx.Response:
    return httpx.put(f"{server_url}/api/v1/models/{name}/aliases/production", json=body, timeout=30)


def test_a_raw_rest_move_without_gates_is_refused_unless_forced_and_then_recorded(server_url: str) -> None:
    store = open_store(server_url)
    try:
        name = unique("raw")
        _register(store, name, 0.9)
        _register(store, name, 0.7)
        bodies: list[dict[str, object]] = [
            {"version": 1},
            {"version": 1, "actor": "mallory", "reason": "old"},
            {"version": 1, "rules": []},
        ]
        for body in bodies:
            refused = _put(server_url, name, body)
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["code"] == "invalid_argument" and "passes no gate" in error["message"]
        assert store.models.alias_history(name) == []
        gated_out = _put(server_url, name, {"version": 2, "rules": ["auc >= 0.8"]})
        assert gated_out.status_code == 409 and gated_out.json()["error"]["code"] == "promotion_refused"
        assert gated_out.json()["error"]["details"]["checks"][0] == {
            "rule": "auc >= 0.8", "metric": "auc", "candidate": 0.7, "baseline": None, "threshold": 0.8, "passed": False,
        }  # fmt: skip
        forced = _put(server_url, name, {"version": 2, "force": True, "actor": "ana", "reason": "hotfix"})
        assert forced.status_code == 200, forced.text
        assert forced.json()["forced"] is True and forced.json()["gated"] is False
        # the actor is the server's caller (this open server: its local user), never the name the body declares
        caller = local_actor()
        assert forced.json()["actor"] == caller
        long_name = _put(server_url, name, {"version": 2, "force": True, "actor": "x" * 100, "expected_from": 2})
        assert long_name.status_code == 200 and long_name.json()["actor"] == caller
        anonymous = _put(server_url, name, {"version": 1, "rules": ["auc >= baseline"], "expected_from": 2})
        assert anonymous.status_code == 200 and anonymous.json()["actor"] == caller and anonymous.json()["gated"]
        stale = _put(server_url, name, {"version": 2, "force": True, "expected_from": 2})
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
        history = httpx.get(f"{server_url}/api/v1/models/{name}/history", timeout=30).json()
        assert [(h["from_version"], h["to_version"], h["forced"], h["gated"], h["actor"]) for h in history] == [
            (None, 2, True, False, caller), (2, 2, True, False, caller), (2, 1, False, True, caller),
        ]  # fmt: skip
    finally:
        store.close()


def test_keel_models_promote_needs_gates_or_force(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / '.keel' / 'keel.db'}")
    try:
        _register(store, "cli-model", 0.9)
    finally:
        store.close()
    ungated = keel_cmd(tmp_path, "models", "promote", "cli-model", "1", "production")
    assert ungated.returncode == 2 and "passes no gate" in ungated.stderr, ungated.stderr
    refused = keel_cmd(tmp_path, "models", "promote", "cli-model", "1", "production", "-r", "auc >= 0.95")
    assert refused.returncode == 1 and "'auc >= 0.95': auc is 0.9, threshold 0.95" in refused.stderr
    forced = keel_cmd(tmp_path, "models", "promote", "cli-model", "1", "production", "--force", "--reason", "hotfix")
    assert forced.returncode == 0 and "nothing -> v1" in forced.stdout and "forced" in forced.stdout, forced.stderr
    history = keel_cmd(tmp_path, "models", "history", "cli-model")
    assert "hotfix" in history.stdout and "forced" in history.stdout
