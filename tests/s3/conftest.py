"""An S3-compatible server for the module: moto's server mode on 127.0.0.1, reached only through the AWS env vars."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

pytest.importorskip("moto.server", reason="the S3 tests need the dev extra (moto[server])")

BUCKET = "curate-test"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(ray_local) -> Iterator[str]:
    """The server's URL; the AWS variables point at it for the module, with one bucket created.

    Ray starts first, while none of these variables exist: its workers can only get them from
    curate, as on a cluster started elsewhere.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would bury a failure's report

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "curate-test-key")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "curate-test-secret")
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        mp.setenv("AWS_REGION", REGION)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups on a machine without one
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def s3_client(s3_endpoint):
    """boto3 on the same server, to look at the raw objects (what any S3 reader would list)."""
    import boto3

    return boto3.client("s3")
