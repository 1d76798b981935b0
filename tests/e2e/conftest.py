"""The end-to-end suite: a real ``lockgate serve`` (its own process, a private PostgreSQL database, the in-process
runner with real dbt-duckdb) serving the built web UI, driven by Playwright in Debian's Chromium.

The UI must have been built (``make ui``: ``make test`` does it before pytest). Chromium comes from Debian's
package (``.ci/run`` installs it); Playwright's own browser download does not work on these machines.
Screenshots of every view land in ``test-results/e2e/`` (look at them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.webui import UI_DIST
from services.demo.build import DEMO_PROJECT, DemoArtifacts, generate_artifacts
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
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "e2e"
SERVER_START_S = 120.0


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        missing_service("Chromium", "apt-get install chromium (bash .ci/run does it)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture(scope="session")
def ui_dist() -> Path:
    if not (UI_DIST / "index.html").is_file():
        pytest.fail(f"the web UI is not built ({UI_DIST}): run `make ui` (make test does it)")
    return UI_DIST


@pytest.fixture(scope="session")
def demo_artifacts(tmp_path_factory: pytest.TempPathFactory) -> DemoArtifacts:
    """The demo dbt project built with real dbt (what a user would ingest from their own CI)."""
    return generate_artifacts(DEMO_PROJECT, tmp_path_factory.mktemp("demo-artifacts"))


def demo_manifest(artifacts: DemoArtifacts) -> Path:
    assert artifacts.manifest is not None, "dbt parse wrote no manifest.json"
    return artifacts.manifest


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
        return httpx.request(method, f"{self.url}{path}", timeout=60, **kwargs)


@pytest.fixture(scope="session")
def server(ui_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``lockgate serve`` on a free port, with a private database and its own home; stopped and dropped after."""
    if not port_open("127.0.0.1", 5432):
        missing_service("PostgreSQL", "bash .ci/run")
    name = f"lgtest_{RUN_ID}_e2e_{uuid.uuid4().hex[:6]}"
    in_thread(_admin(f'CREATE DATABASE "{name}"'))
    home = tmp_path_factory.mktemp("lockgate-home")
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
    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"lockgate serve did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.25)
    try:
        yield Server(url, home, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def shop(server: Server) -> str:
    """A project ``shop`` whose repository is the demo dbt project, with ``dev`` and a production ``prod``; nothing
    ingested (the browser does that)."""
    repository = server.home / "shop-repo"
    shutil.copytree(DEMO_PROJECT, repository, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    created = server.api(
        "POST",
        "/api/tenants/default/projects",
        json={"project_id": "shop", "name": "Shop analytics", "repository": str(repository)},
    )
    assert created.status_code == 201, created.text
    for env, production in (("dev", False), ("prod", True)):
        body = {
            "environment_id": env,
            "name": env.title(),
            "adapter_type": "duckdb",
            "target": {"path": str(server.home / f"shop-{env}.duckdb"), "threads": 2},
            "production": production,
        }
        answer = server.api("POST", "/api/tenants/default/projects/shop/environments", json=body)
        assert answer.status_code == 201, answer.text
    return "shop"


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
