"""Issue 8: a put of the right bytes repairs a corrupted blob, on a local folder, S3 (moto) and through keel server."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from keel.core.errors import IntegrityError, KeelError
from keel.store.artifacts import ArtifactStore, open_artifact_store
from keel.testing.services import keel_server

GENUINE = b"the real model weights " * 100
OPTS = {"key": "test", "secret": "test"}


@pytest.fixture(params=["local", "s3"])
def store_and_corrupter(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ArtifactStore, Callable[[str, bytes], None]]:
    """An artifact store, and a function that overwrites a blob's stored bytes behind the store's back."""
    if request.param == "local":
        root = tmp_path / "artifacts"

        def corrupt_local(sha256: str, data: bytes) -> None:
            (root / "sha256" / sha256[:2] / sha256).write_bytes(data)

        return open_artifact_store(str(root)), corrupt_local
    endpoint = request.getfixturevalue("s3_url")
    options = {**OPTS, "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    prefix = f"keel-test/{tmp_path.name}"
    import s3fs

    fs = s3fs.S3FileSystem(**options)

    def corrupt_s3(sha256: str, data: bytes) -> None:
        fs.pipe_file(f"{prefix}/sha256/{sha256[:2]}/{sha256}", data)

    return open_artifact_store(f"s3://{prefix}", **options), corrupt_s3


@pytest.mark.parametrize(
    "damage",
    [
        lambda good: good[:-7],  # truncated
        lambda good: bytes([good[0] ^ 1]) + good[1:],  # one flipped bit, same size
    ],
    ids=["truncated", "same-size"],
)
def test_putting_the_right_bytes_repairs_a_corrupted_blob(store_and_corrupter, damage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, corrupt = store_and_corrupter
    info = store.put_bytes(GENUINE)
    assert store.put_bytes(GENUINE) == info  # a verified blob: the repeated put is a no-op
    corrupt(info.sha256, damage(GENUINE))
    with pytest.raises(IntegrityError):
        store.get_bytes(info.sha256)
    assert store.put_bytes(GENUINE) == info
    assert store.get_bytes(info.sha256) == GENUINE
    corrupt(info.sha256, damage(GENUINE))
    source = tmp_path / "weights.bin"
    source.write_bytes(GENUINE)
    assert store.put_file(source) == info
    assert store.get_bytes(info.sha256) == GENUINE


def test_an_intact_local_blob_is_not_rewritten(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    info = store.put_bytes(GENUINE)
    blob = tmp_path / "artifacts" / "sha256" / info.sha256[:2] / info.sha256
    before = blob.stat()
    store.put_bytes(GENUINE)
    after = blob.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    blob.write_bytes(b"x" * len(GENUINE))
    store.put_bytes(GENUINE)
    assert blob.read_bytes() == GENUINE


def test_a_corrupted_blob_is_repaired_through_the_server(tmp_path: Path) -> None:
    artifacts = tmp_path / "server-artifacts"
    with keel_server(f"sqlite:///{tmp_path / 'server.db'}", str(artifacts)) as url:
        client = open_artifact_store(url)
        info = client.put_bytes(GENUINE)
        blob = artifacts / "sha256" / info.sha256[:2] / info.sha256
        blob.write_bytes(bytes([GENUINE[0] ^ 1]) + GENUINE[1:])
        with pytest.raises(KeelError):  # IntegrityError, or StoreUnavailable when the server cuts the body short
            client.get_bytes(info.sha256)
        # a raw PUT of the right bytes: the server's put_file replaces the blob
        response = httpx.put(f"{url}/api/v1/artifacts/{info.sha256}", content=GENUINE)
        assert response.status_code == 200 and response.json() == {"sha256": info.sha256, "size": len(GENUINE)}
        assert blob.read_bytes() == GENUINE and client.get_bytes(info.sha256) == GENUINE
        # and through the SDK: after a failed read, the next put uploads even though the server has the blob
        blob.write_bytes(GENUINE[:10])
        with pytest.raises(KeelError):
            client.get_bytes(info.sha256)
        assert client.put_bytes(GENUINE) == info
        assert blob.read_bytes() == GENUINE and client.get_bytes(info.sha256) == GENUINE
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == info.sha256


def test_a_read_that_finds_a_corrupted_blob_moves_it_aside(store_and_corrupter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Any process sees the blob as missing after a failed read, so its next put stores it again."""
    store, corrupt = store_and_corrupter
    info = store.put_bytes(GENUINE)
    for read in (store.get_bytes, lambda sha: b"".join(store.iter_bytes(sha)), lambda sha: store.download(sha, tmp_path / "x")):
        corrupt(info.sha256, GENUINE[:-1])
        with pytest.raises(IntegrityError):
            read(info.sha256)
        assert not store.exists(info.sha256) and not (tmp_path / "x").exists()
        assert store.put_bytes(GENUINE) == info and store.get_bytes(info.sha256) == GENUINE


def test_a_corrupted_local_blob_is_kept_under_corrupt_not_deleted(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    info = open_artifact_store(str(root)).put_bytes(GENUINE)
    (root / "sha256" / info.sha256[:2] / info.sha256).write_bytes(b"bad")
    with pytest.raises(IntegrityError):
        open_artifact_store(str(root)).get_bytes(info.sha256)
    kept = list((root / "corrupt").iterdir())
    assert [p.name.split(".")[0] for p in kept] == [info.sha256] and kept[0].read_bytes() == b"bad"


def test_a_download_through_the_server_finds_the_corruption_and_a_new_client_repairs_it(tmp_path: Path) -> None:
    artifacts = tmp_path / "server-artifacts"
    with keel_server(f"sqlite:///{tmp_path / 'server.db'}", str(artifacts)) as url:
        info = open_artifact_store(url).put_bytes(GENUINE)
        (artifacts / "sha256" / info.sha256[:2] / info.sha256).write_bytes(bytes([GENUINE[0] ^ 1]) + GENUINE[1:])
        with pytest.raises(IntegrityError):
            open_artifact_store(url).download(info.sha256, tmp_path / "weights.bin")
        assert not (tmp_path / "weights.bin").exists()
        # another process: it never saw the failed read, and the server no longer claims to have the blob
        script = (
            "import sys; from keel.store.artifacts import open_artifact_store; "
            f"print(open_artifact_store(sys.argv[1]).put_bytes({GENUINE!r}).sha256)"
        )
        put = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120, check=True)
        assert put.stdout.strip() == info.sha256
        fresh = open_artifact_store(url)
        assert fresh.get_bytes(info.sha256) == GENUINE
        assert fresh.download(info.sha256, tmp_path / "weights.bin").read_bytes() == GENUINE
