"""Content-addressed artifacts on a local folder, S3 (moto's server on 127.0.0.1) and through keel server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from keel.core.errors import IntegrityError, InvalidArgument, NotFound
from keel.store.artifacts import ArtifactStore, open_artifact_store


@pytest.fixture(params=["local", "s3", "http"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "artifacts"))
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_url")
        return open_artifact_store(
            f"s3://keel-test/{tmp_path.name}",
            key="test",
            secret="test",
            client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
        )
    return open_artifact_store(request.getfixturevalue("server_url"))


def test_identical_content_is_stored_once(artifacts: ArtifactStore, tmp_path: Path) -> None:
    data = b"weights" * 1000
    first = artifacts.put_bytes(data)
    path = tmp_path / "copy.bin"
    path.write_bytes(data)
    second = artifacts.put_file(path)
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest() and first.size == len(data)
    assert artifacts.get_bytes(first.sha256) == data
    out = artifacts.download(first.sha256, tmp_path / "out" / "model.bin")
    assert out.read_bytes() == data


def test_missing_blob_is_not_found(artifacts: ArtifactStore) -> None:
    missing = "0" * 64
    assert not artifacts.exists(missing)
    with pytest.raises(NotFound):
        artifacts.get_bytes(missing)


def test_bad_hash_is_refused(artifacts: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match="sha256 must be 64 lowercase hex"):
        artifacts.get_bytes("../../etc/passwd")


def test_local_store_writes_each_blob_once(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "a"))
    for _ in range(3):
        store.put_bytes(b"same")
    blobs = [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert len(blobs) == 1


def test_tampered_local_blob_raises_instead_of_returning_bad_bytes(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "a"))
    info = store.put_bytes(b"the real model")
    blob = next(p for p in (tmp_path / "a").rglob(info.sha256))
    blob.write_bytes(b"the evil model")
    with pytest.raises(IntegrityError, match="corrupted or was tampered with"):
        store.get_bytes(info.sha256)
    assert not store.exists(info.sha256)  # the failed read moved the blob aside (kept under corrupt/)
    blob.write_bytes(b"the evil model")
    dest = tmp_path / "dl" / "model.bin"
    with pytest.raises(IntegrityError):
        store.download(info.sha256, dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no partial file left behind
    blob.write_bytes(b"the real")  # truncated
    with pytest.raises(IntegrityError):
        store.get_bytes(info.sha256)


def test_tampered_s3_blob_raises(s3_url: str, tmp_path: Path) -> None:
    opts = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": s3_url, "region_name": "us-east-1"}}
    store = open_artifact_store("s3://keel-test/tamper", **opts)
    info = store.put_bytes(b"genuine")
    import s3fs

    fs = s3fs.S3FileSystem(**opts)
    fs.pipe_file(f"keel-test/tamper/sha256/{info.sha256[:2]}/{info.sha256}", b"forged!")
    with pytest.raises(IntegrityError):
        store.get_bytes(info.sha256)


def test_server_refuses_upload_whose_content_does_not_match_its_name(server_url: str) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    response = httpx.put(f"{server_url}/api/v1/artifacts/{wrong}", content=b"payload")
    assert response.status_code == 409
    assert "hashes to" in response.json()["error"]["message"]
    assert httpx.head(f"{server_url}/api/v1/artifacts/{wrong}").status_code == 404
    bad = httpx.put(f"{server_url}/api/v1/artifacts/not-a-hash", content=b"x")
    assert bad.status_code == 400 and "sha256" in bad.json()["error"]["message"]
