"""A real S3 server for the tests: moto's, in this process, on a free loopback port (FEASIBILITY.md §3: no
MinIO server can be had here; moto speaks enough S3 for the ``minio`` SDK).

moto checks no credentials or signatures, so nothing here can show that a wrong key is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from minio import Minio

from tests.services import free_port, missing_service

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@contextmanager
def moto_s3() -> Iterator[str]:
    """Start moto's S3 server, yield its ``host:port`` endpoint (plain HTTP), stop it afterwards."""
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415 - a dev dependency, only when S3 is tested
    except ImportError:  # pragma: no cover - moto is locked in the dev group
        missing_service("moto S3 server", "uv sync (installs moto[server])")
        raise
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Minio:
    """A plain SDK client on the test server, for looking (or tampering) behind the object store's back."""
    return Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)
