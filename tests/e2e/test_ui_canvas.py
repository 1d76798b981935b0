"""Canvas edits in the graph workspace, in a real browser: grouping, collapsing a folder, making, renaming and
deleting a group of chosen nodes, panning and zooming. Each is a command that appends a canvas event; a reload
restores the canvas exactly; the graph itself never changes."""

from __future__ import annotations

import re

import pytest
from playwright._impl._sync_base import EventContextManager  # the type page.expect_response returns
from playwright.sync_api import Page, Response, expect

from services.demo.build import DemoArtifacts
from tests.e2e.conftest import demo_manifest
from tests.webui import Server

pytestmark = pytest.mark.timeout(600)
PROJECT = "canvas"
EVENTS = "/api/tenants/default/events"


@pytest.fixture(scope="module")
def project(server: Server, demo_artifacts: DemoArtifacts) -> str:
    body = {"project_id": PROJECT, "name": "Canvas", "repository": "/srv/dbt/canvas"}
    assert server.api("POST", "/api/tenants/default/projects", json=body).status_code == 201
    files = {"manifest": ("manifest.json", demo_manifest(demo_artifacts).read_bytes(), "application/json")}
    assert server.api("POST", f"/api/tenants/default/projects/{PROJECT}/ingestions", files=files).status_code == 201
    return PROJECT


def drawn(page: Page) -> None:
    page.wait_for_function("() => window.__lockgateGraph !== undefined", timeout=60_000)


def command(page: Page) -> EventContextManager[Response]:
    return page.expect_response(lambda r: "/canvas/commands" in r.url and r.request.method == "POST")


def stream_types(server: Server, prefix: str) -> list[str]:
    items = server.api("GET", EVENTS, params={"limit": 1000}).json()["items"]
    return [e["type"] for e in items if e["stream_id"].startswith(prefix)]


def test_canvas_edits_are_events_and_a_reload_restores_them(page: Page, server: Server, project: str) -> None:
    graph_events = stream_types(server, f"graph-{project}")
    page.goto(f"{server.url}/projects/{project}/graph")
    drawn(page)

    with command(page) as grouped:
        page.get_by_test_id("graph-grouping").select_option("folder")
    assert grouped.value.status == 200
    staging = page.get_by_test_id("group-folder:models/staging").get_by_role("checkbox")
    with command(page):
        staging.click()
    expect(page.locator('.react-flow__node[data-id="folder:models/staging"]')).to_be_visible()

    page.locator('.react-flow__node[data-id="model.lockgate_demo.dim_plans"]').click()
    page.locator('.react-flow__node[data-id="model.lockgate_demo.dim_customers"]').click(modifiers=["Control"])
    page.get_by_test_id("group-selection").click()
    page.get_by_test_id("group-name-form").get_by_label("Group name").fill("Revenue")
    with command(page):
        page.get_by_test_id("group-name-form").get_by_role("button", name="Create group").click()
    panel = page.get_by_test_id("groups-panel")
    page.locator(".react-flow__pane").click(position={"x": 20, "y": 20})  # deselect: the groups panel shows
    expect(panel).to_contain_text("Revenue")
    revenue = panel.locator("li", has_text="Revenue")
    revenue.get_by_role("button", name="rename").click()
    renaming = panel.get_by_test_id("group-name-form")  # the group's line turns into its rename form
    renaming.get_by_label("Group name").fill("Revenue marts")
    with command(page):
        renaming.get_by_role("button", name="Rename").click()
    expect(panel).to_contain_text("Revenue marts")

    canvas = page.get_by_test_id("graph-canvas")
    box = canvas.bounding_box()
    assert box is not None
    with command(page):
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, -300)
    transform = page.locator(".react-flow__viewport").get_attribute("style")

    page.reload()
    drawn(page)
    expect(page.get_by_test_id("graph-grouping")).to_have_value("folder")
    expect(page.locator('.react-flow__node[data-id="folder:models/staging"]')).to_be_visible()
    expect(page.get_by_test_id("groups-panel")).to_contain_text("Revenue marts")
    expect(page.locator(".react-flow__viewport")).to_have_attribute("style", transform or "")

    with command(page):
        page.get_by_test_id("groups-panel").locator("li", has_text="Revenue marts").get_by_role(
            "button", name="delete"
        ).click()
    page.reload()
    drawn(page)
    expect(page.get_by_test_id("groups-panel")).not_to_contain_text("Revenue marts")

    canvas_events = stream_types(server, f"canvas-{project}.")
    assert canvas_events[:3] == ["canvas.grouping_changed.v1", "canvas.groups_collapsed.v1", "canvas.group_created.v1"]
    assert "canvas.group_renamed.v1" in canvas_events
    assert "canvas.viewport_changed.v1" in canvas_events
    assert canvas_events[-1] == "canvas.group_deleted.v1"
    assert stream_types(server, f"graph-{project}") == graph_events  # the graph was never touched
    assert re.fullmatch(
        r"canvas-canvas\.user_[0-9a-f]{32}",
        server.api("GET", EVENTS, params={"type": "canvas.group_deleted.v1"}).json()["items"][0]["stream_id"],
    )
