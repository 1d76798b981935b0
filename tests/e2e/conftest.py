"""The end-to-end suite: a real ``lockgate serve`` (its own process, a private PostgreSQL database, the in-process
runner with real dbt-duckdb) serving the built web UI, driven by Playwright in Debian's Chromium.

The UI must have been built (``make ui``: ``make test`` does it before pytest). Chromium comes from Debian's
package (``.ci/run`` installs it); Playwright's own browser download does not work on these machines.
Screenshots of every view land in ``test-results/e2e/`` (look at them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.api.webui import UI_DIST
from services.demo.build import DEMO_PROJECT, DemoArtifacts, generate_artifacts
from tests.webui import CHROMIUM_ARGS, Server, chromium, lockgate_server

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "e2e"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": chromium(), "args": CHROMIUM_ARGS, "headless": True}


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


@pytest.fixture(scope="session")
def server(ui_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with lockgate_server(tmp_path_factory.mktemp("lockgate-home")) as running:
        yield running


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
