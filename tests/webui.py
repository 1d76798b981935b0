"""A real ``lockgate serve`` for browser tests and benchmarks: its own process, a private PostgreSQL database, its
own home, the in-process runner; and the flags Debian's Chromium needs on these machines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _admin, database_url
from tests.services import RUN_ID, free_port, missing_service, port_open

CHROMIUM = os.environ.get("LOCKGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_S = 120.0


def chromium() -> str:
    if not Path(CHROMIUM).exists():
        missing_service("Chromium", "apt-get install chromium (bash .ci/run does it)")
    return CHROMIUM


def in_thread(work: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion on its own thread: Playwright's sync API keeps an event loop running on
    this one, where ``asyncio.run`` is refused."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, work).result()


class Server:
    def __init__(self, url: str, home: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.home = home
        self.process = process
        self.log = log

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("timeout", 120)
        return httpx.request(method, f"{self.url}{path}", **kwargs)


@contextmanager
def lockgate_server(home: Path) -> Iterator[Server]:
    """``lockgate serve`` on a free port, with a private database and ``home``; stopped and dropped after."""
    if not port_open("127.0.0.1", 5432):
        missing_service("PostgreSQL", "bash .ci/run")
    name = f"lgtest_{RUN_ID}_web_{uuid.uuid4().hex[:6]}"
    in_thread(_admin(f'CREATE DATABASE "{name}"'))
    port = free_port()
    log = home / "serve.log"
    env = {
        **os.environ,
        "LOCKGATE_HOME": str(home),
        "LOCKGATE_DATABASE_URL": database_url(name),
        "LOCKGATE_RUNNER_IN_PROCESS": "true",
        "LOCKGATE_PORT": str(port),
        "LOCKGATE_LOG_LEVEL": "warning",
    }
    env.pop("LOCKGATE_NATS_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve"], env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"lockgate serve did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.25)
        yield Server(url, home, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
