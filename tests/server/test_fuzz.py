"""REST fuzzing of the platform API with auth on: schemathesis generates requests from the live server's
``/openapi.json`` (valid and invalid ones) for every operation, and two properties must hold:

- as an admin, no generated request gets a 5xx: bad input is a 4xx with a JSON error;
- without a token, or with a wrong one (garbage, a real token id with a wrong secret, a revoked token, a token of a
  disabled principal), no operation but the public ones ever answers 2xx.

Bounded for CI: a few examples per operation and mode, a fixed seed (the same requests every run), a timeout per
request. Each property gets its own server, so the failure limiter the wrong tokens trip (429) cannot lock the admin
out; the refusal server's limiter is raised so wrong tokens keep reaching the token check instead of stopping at 429
after twenty (the limiter itself: tests/server/test_auth.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from keel.core.failures import FailureLimiter
from keel.server.app import create_app
from keel.server.policy import PUBLIC, policy_for
from keel.store.artifacts import ArtifactStore, open_artifact_store
from keel.store.metadata import open_store
from keel.store.metadata.base import MetadataStore
from keel.testing.services import serve_app

SEED = 20261129
ADMIN_EXAMPLES = 30  # per operation and generation mode (valid, invalid)
REFUSED_EXAMPLES = 6  # per operation and mode
REQUEST_TIMEOUT = 10.0  # seconds: a request that hangs fails the property instead of the whole run
ADMIN = "fuzz-admin-q7x"  # a name generated path parameters will not hit (fuzzing may disable principals)
AUTHENTICATE = "/api/v1/identity/authenticate"
TRACE_LINES = 16
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class Server:
    url: str
    tokens: dict[str, str] = field(repr=False)  # what to send as Authorization (a label -> the header value)
    known: dict[str, str]  # path parameters that name something the store has, so fuzzing gets past the 404s
    errors: list[logging.LogRecord] = field(default_factory=list)  # what the server logged at ERROR: 5xx tracebacks


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


def _seed(store: MetadataStore, artifacts: ArtifactStore) -> dict[str, str]:
    """An experiment, a run, a blob and a model version with an alias: random ids alone only ever reach 404s."""
    experiment = store.get_or_create_experiment("fuzz")
    run = store.create_run(experiment.id, "fuzz-run")
    blob = artifacts.put_bytes(b"fuzz")
    store.models.create_version("fuzz-model", flavor="sklearn", artifact_sha256=blob.sha256, size=blob.size, signature={})
    store.models.move_alias("fuzz-model", "production", 1, actor=ADMIN, force=True)
    return {
        "experiment_id": str(experiment.id), "run_id": run.id, "sha256": blob.sha256, "name": "fuzz-model",
        "alias": "production", "version": "1",
    }  # fmt: skip


def _serve(base: Path, generous_limiter: bool) -> Iterator[Server]:
    store = open_store(f"sqlite:///{base / 'keel.db'}")
    identity = store.identity
    identity.create_principal(ADMIN)
    identity.grant(ADMIN, "admin")
    admin = identity.create_token(ADMIN, name="fuzz")
    revoked = identity.create_token(ADMIN, name="revoked")
    identity.revoke_token(revoked.token.id)
    identity.create_principal("fuzz-gone")
    identity.grant("fuzz-gone", "admin")
    gone = identity.create_token("fuzz-gone").secret
    identity.set_disabled("fuzz-gone", True)
    tokens = {
        "admin": f"Bearer {admin.secret}",
        "garbage": "Bearer not-a-token",
        "not bearer": f"Basic {admin.secret}",
        "wrong secret": f"Bearer keel_{admin.token.id}_{'A' * 43}",  # well formed, a real id: the hash is checked
        "revoked": f"Bearer {revoked.secret}",
        "disabled principal": f"Bearer {gone}",
    }
    artifacts = open_artifact_store(str(base / "artifacts"))
    known = _seed(store, artifacts)
    limiter = FailureLimiter(limit=1_000_000) if generous_limiter else None
    app = create_app(store, artifacts, auth=True, limiter=limiter)
    server = Server("", tokens, known)
    handler = _Collect(server.errors)
    logging.getLogger().addHandler(handler)
    try:
        with serve_app(app) as url:
            server.url = url
            yield server
    finally:
        logging.getLogger().removeHandler(handler)
        store.close()


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("fuzz-admin"), generous_limiter=False)


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(tmp_path_factory.mktemp("fuzz-refused"), generous_limiter=True)


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=REQUEST_TIMEOUT)
    return [cast(Any, result).ok() for result in schema.get_all_operations()]


def _send(session: requests.Session, server: Server, case: Any, authorization: str | None) -> requests.Response:
    server.errors.clear()  # one request at a time: what the server logs next is this request's
    headers = {"Authorization": authorization} if authorization else {}
    if case.method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
        # the server answers 415 to a changing request that is not JSON (correct, and not what this fuzzes)
        headers["Content-Type"] = "application/json"
    return case.call(base_url=server.url, session=session, headers=headers, timeout=REQUEST_TIMEOUT, allow_redirects=False)


def _describe(case: Any, response: requests.Response, server: Server) -> str:
    sent = response.request
    trace = ""
    for record in server.errors:
        trace += "\nserver log: " + record.getMessage()
        if record.exc_info:  # the innermost frames: where it broke
            trace += "\n" + "\n".join(logging.Formatter().formatException(record.exc_info).splitlines()[-TRACE_LINES:])
    return (
        f"{sent.method} {sent.url} body={sent.body!r} -> {response.status_code} {response.text[:500]}"
        f"\nas curl: {case.as_curl_command()}{trace}"
    )


def _fuzz(
    operation: Any,
    known_ids: dict[str, str],
    examples: int,
    check: Callable[[Any], None],
    extra: st.SearchStrategy[Any] | None = None,
) -> str:
    """Run ``check`` on generated cases of ``operation`` in both modes; the failures found (shrunk), one per mode."""
    found: list[str] = []
    for mode in MODES:
        strategy = operation.as_strategy(generation_mode=mode)
        known = {name: value for name, value in known_ids.items() if f"{{{name}}}" in operation.path}
        if known:  # half the cases name things that exist (the other parameters and the body still generated)
            strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=known))
        if extra is not None:
            strategy = st.tuples(strategy, extra)

        @seed(SEED)
        @settings(
            max_examples=examples, deadline=None, database=None, print_blob=False,
            suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate, Phase.shrink),
        )  # fmt: skip
        @given(strategy)
        def run(drawn: Any) -> None:
            check(drawn)

        try:
            run()
        except Unsatisfiable:
            continue  # e.g. no invalid request exists for an operation without parameters
        except (AssertionError, ExceptionGroup) as exc:  # hypothesis groups distinct failures
            errors = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
            found.extend(f"[{mode.value}] {error}" for error in errors)
    return "\n".join(found)


def test_an_admin_never_gets_a_5xx(admin_server: Server) -> None:
    server = admin_server
    session = requests.Session()
    operations = _operations(server.url)
    assert len(operations) >= 80
    statuses: dict[int, int] = {}

    def check(case: Any) -> None:
        response = _send(session, server, case, server.tokens["admin"])
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, _describe(case, response, server)
        if response.status_code >= 400 and case.method.upper() != "HEAD":
            code = response.json()["error"]["code"]  # a 4xx is the JSON error of keel.server.app, whatever the input
            # the fuzzing got past the guard: the right host and content type, the admin's token accepted and never
            # rate limited (the authenticate route answers 401 to a bad token in its body: that is its job)
            refused = code == "permission_denied" or (code == "unauthenticated" and case.path != AUTHENTICATE)
            guarded = code in ("bad_host", "unsupported_media_type", "too_many_failures")
            assert not guarded and not refused, _describe(case, response, server)

    failures = {f"{op.method.upper()} {op.path}": _fuzz(op, server.known, ADMIN_EXAMPLES, check) for op in operations}
    failures = {name: found for name, found in failures.items() if found}
    assert not failures, "\n\n".join(f"{name}:\n{found}" for name, found in failures.items())
    # the admin got past auth and the fuzzing reached the routes: successes and the routes' own 4xx both happened
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) > 50, statuses
    assert statuses.get(403, 0) == 0, statuses


def test_no_operation_answers_2xx_without_a_valid_token(refusing_server: Server) -> None:
    server = refusing_server
    session = requests.Session()
    operations = [op for op in _operations(server.url) if policy_for(op.method.upper(), op.path) != PUBLIC]
    assert len(operations) >= 75  # all but health
    wrong = [None, *(label for label in server.tokens if label != "admin")]
    seen: dict[str | None, set[int]] = {}

    def check(drawn: tuple[Any, str | None]) -> None:
        case, label = drawn
        response = _send(session, server, case, server.tokens[label] if label else None)
        seen.setdefault(label, set()).add(response.status_code)
        said = f"{label or 'no token'}: {_describe(case, response, server)}"
        assert not 200 <= response.status_code < 300, said
        if label is None:
            assert response.status_code == 401, said  # the guard refused it before anything read the body
        else:
            assert response.status_code in (401, 429), said  # the guard refused it before any route ran

    failures = {
        f"{op.method.upper()} {op.path}": _fuzz(op, server.known, REFUSED_EXAMPLES, check, st.sampled_from(wrong))
        for op in operations
    }
    failures = {name: found for name, found in failures.items() if found}
    assert not failures, "\n\n".join(f"{name}:\n{found}" for name, found in failures.items())
    assert set(seen) == set(wrong), seen  # every kind of wrong token was tried
    assert all(statuses == {401} for label, statuses in seen.items() if label), seen  # none stopped at the limiter
    assert 401 in seen[None], seen
