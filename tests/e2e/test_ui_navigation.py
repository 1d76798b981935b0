"""Every view is reachable by URL, by the command palette (Ctrl+K) and by its keyboard shortcut; the pages load
nothing from outside this machine (Monaco, fonts and workers are bundled) and raise no script errors."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from services.demo.build import DemoArtifacts
from tests.e2e.conftest import demo_manifest
from tests.webui import Server

pytestmark = pytest.mark.timeout(600)
VIEWS = [
    ("Dashboard", "d", r"/$"),
    ("Graph", "g", r"/projects/nav/graph"),
    ("Execution plan", "p", r"/projects/nav/plan"),
    ("Runs", "r", r"/runs$"),
    ("Artifacts", "a", r"/projects/nav/artifacts"),
    ("Diff", "f", r"/projects/nav/diff"),
    ("Docs", "o", r"/projects/nav/docs"),
]


@pytest.fixture(scope="module")
def nav(server: Server, demo_artifacts: DemoArtifacts) -> str:
    """A project ``nav`` with the demo's artifacts ingested through the API, opened as the session's project."""
    created = server.api(
        "POST",
        "/api/tenants/default/projects",
        json={"project_id": "nav", "name": "Navigation", "repository": "/srv/dbt/nav"},
    )
    assert created.status_code in (201, 409), created.text
    files = {"manifest": ("manifest.json", demo_manifest(demo_artifacts).read_bytes(), "application/json")}
    ingested = server.api("POST", "/api/tenants/default/projects/nav/ingestions", files=files)
    assert ingested.status_code in (200, 201), ingested.text
    return "nav"


def open_project(page: Page, server: Server, project: str) -> None:
    page.goto(f"{server.url}/projects/{project}/graph")
    expect(page.locator(".react-flow__node").first).to_be_visible(timeout=60_000)


@pytest.mark.parametrize(("label", "key", "url"), VIEWS)
def test_every_view_is_reachable_from_the_command_palette(
    page: Page, server: Server, nav: str, label: str, key: str, url: str
) -> None:
    open_project(page, server, nav)
    page.keyboard.press("Control+k")
    search = page.get_by_test_id("kbar-search")
    expect(search).to_be_visible()
    search.fill(f"Go to {label}")
    expect(page.get_by_test_id("kbar-item").first).to_contain_text(f"Go to {label}")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(url))


@pytest.mark.parametrize(("label", "key", "url"), VIEWS)
def test_every_view_has_a_keyboard_shortcut(
    page: Page, server: Server, nav: str, label: str, key: str, url: str
) -> None:
    open_project(page, server, nav)
    page.locator("body").click(position={"x": 5, "y": 890})  # focus the page, not an input
    page.keyboard.press("g")
    page.keyboard.press(key)
    expect(page).to_have_url(re.compile(url))


def test_the_pages_load_nothing_from_outside_this_machine(page: Page, server: Server, nav: str, shots: Path) -> None:
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_project(page, server, nav)
    node = "model.lockgate_demo.dim_customers"
    for path in ("/", "/runs", f"/projects/{nav}/plan", f"/projects/{nav}/artifacts", f"/projects/{nav}/diff"):
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
    page.goto(f"{server.url}/projects/{nav}/docs/{node}")
    expect(page.get_by_test_id("docs-sql")).to_be_visible(timeout=30_000)
    expect(page.locator(".monaco-editor").first).to_be_visible(timeout=60_000)  # Monaco really rendered, offline
    page.wait_for_load_state("networkidle")
    outside = {
        url
        for url in requests
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname != "127.0.0.1"
    }
    assert outside == set()
    assert len(requests) > 20
    assert errors == []
