"""Fixtures for the store tests: a real S3 (moto's server) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.testing.services import free_port


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).create_bucket(Bucket="keel-test")
    yield endpoint
    server.stop()
