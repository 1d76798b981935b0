"""The whole path a new user takes, in a real browser against a real ``lockgate serve``: ingest artifacts -> open
the graph -> move a node and reload (it stays) -> build a plan -> approve -> the run executes with real dbt ->
follow its live log -> Run Detail -> re-ingest a changed manifest -> see the Diff. Screenshots of every view are
kept in ``test-results/e2e/``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from services.demo.build import DemoArtifacts
from tests.e2e.conftest import demo_manifest
from tests.webui import Server

pytestmark = pytest.mark.timeout(900)
ORDERS = "model.lockgate_demo.dim_customers"


def flow_position(node: Locator) -> str:
    """A node's place on the canvas (React Flow's transform of it), whatever the viewport."""
    transform = node.evaluate("element => element.style.transform")
    assert isinstance(transform, str)
    assert transform.startswith("translate(")
    return transform


def changed_manifest(artifacts: DemoArtifacts, folder: Path) -> Path:
    """The demo manifest with one model's SQL edited, as a new dbt parse would write it."""
    manifest = json.loads(demo_manifest(artifacts).read_text())
    node = manifest["nodes"]["model.lockgate_demo.dim_plans"]
    node["raw_code"] = node["raw_code"] + "\n-- a reviewed change\n"
    node["checksum"] = {"name": "sha256", "checksum": "0" * 64}
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_ingest_graph_plan_approve_run_log_diff(
    page: Page, server: Server, shop: str, demo_artifacts: DemoArtifacts, shots: Path, tmp_path: Path
) -> None:
    base = f"{server.url}/projects/{shop}"

    # -- ingest through the Artifacts view
    page.goto(f"{base}/artifacts")
    form = page.get_by_test_id("ingest-form")
    form.locator("input[type=file]").nth(0).set_input_files(str(demo_manifest(demo_artifacts)))
    assert demo_artifacts.catalog is not None
    assert demo_artifacts.run_results is not None
    form.locator("input[type=file]").nth(1).set_input_files(str(demo_artifacts.catalog))
    form.locator("input[type=file]").nth(2).set_input_files(str(demo_artifacts.run_results))
    page.get_by_test_id("ingest-submit").click()
    expect(page.get_by_test_id("ingest-outcome")).to_contain_text("1", timeout=60_000)
    page.screenshot(path=str(shots / "artifacts.png"), full_page=True)

    # -- the graph: every node drawn, one moved by hand, still there after a reload
    page.goto(f"{base}/graph")
    node = page.locator(f'.react-flow__node[data-id="{ORDERS}"]')
    expect(node).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__lockgateGraph !== undefined")
    page.screenshot(path=str(shots / "graph.png"))
    before = node.bounding_box()
    assert before is not None
    laid_out = flow_position(node)
    with page.expect_response(lambda r: "/canvas/commands" in r.url and r.request.method == "POST") as moved:
        page.mouse.move(before["x"] + 40, before["y"] + before["height"] / 2)
        page.mouse.down()
        page.mouse.move(before["x"] + 40 + 130, before["y"] + before["height"] / 2 + 90, steps=12)
        page.mouse.up()
    assert moved.value.status == 200
    placed = flow_position(node)
    assert placed != laid_out
    page.reload()
    expect(node).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__lockgateGraph !== undefined")
    assert flow_position(node) == placed  # where it was put, in the canvas's own coordinates

    # -- the node's side panel
    node.click()
    expect(page.get_by_test_id("node-panel")).to_contain_text("dim_customers")
    expect(page.get_by_test_id("node-columns")).to_contain_text("customer_id")
    page.screenshot(path=str(shots / "graph-panel.png"))

    # -- a plan that needs approval (a full refresh), approved, then run by the in-process runner
    page.goto(f"{base}/plan")
    page.get_by_test_id("plan-env").select_option("dev")
    page.get_by_test_id("plan-select").fill("*")  # a first run builds everything: the warehouse starts empty
    page.get_by_test_id("plan-full-refresh").check()
    page.get_by_test_id("build-plan").click()
    expect(page.get_by_test_id("plan-headline")).to_contain_text("run", timeout=30_000)
    expect(page.get_by_test_id("plan-approvals")).to_contain_text("approver")
    expect(page.get_by_test_id("plan-items")).to_contain_text("dim_customers")
    page.screenshot(path=str(shots / "plan.png"), full_page=True)
    page.get_by_test_id("plan-graph-tab").click()
    expect(page.locator(f'.react-flow__node[data-id="{ORDERS}"] .plan-badge')).to_have_text("RUN", timeout=30_000)
    page.screenshot(path=str(shots / "plan-graph.png"))
    page.get_by_test_id("request-run").click()
    expect(page.get_by_test_id("requested-run")).to_contain_text("awaiting approval", timeout=30_000)
    page.get_by_test_id("decision-comment").fill("full refresh of customers, reviewed")
    page.get_by_test_id("approve-plan").click()
    expect(page.get_by_test_id("requested-run")).not_to_contain_text("awaiting approval", timeout=30_000)

    # -- follow the live log, then Run Detail
    page.get_by_test_id("open-run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    log = page.get_by_test_id("run-log")
    expect(log).to_contain_text("Running with dbt", timeout=120_000)
    expect(page.get_by_test_id("run-status")).to_contain_text(re.compile("success|warning|failed"), timeout=300_000)
    run_id = page.url.split("/runs/")[1].split("?")[0]
    run = server.api("GET", f"/api/tenants/default/runs/{run_id}").json()["run"]
    assert run["status"] in ("success", "warning"), (run["status"], run["reason"], run["message"])
    expect(log).to_contain_text("Completed", timeout=30_000)
    page.screenshot(path=str(shots / "run-log.png"))
    page.goto(page.url.split("?")[0] + "?tab=timeline")
    expect(page.get_by_test_id("timeline")).to_contain_text("dim_customers")
    page.screenshot(path=str(shots / "run-timeline.png"), full_page=True)
    page.goto(page.url.split("?")[0] + "?tab=artifacts")
    expect(page.get_by_test_id("artifact-list")).to_contain_text("run_results.json")

    # -- re-ingest a changed manifest, see the Diff
    page.goto(f"{base}/artifacts")
    form = page.get_by_test_id("ingest-form")
    form.locator("input[type=file]").nth(0).set_input_files(str(changed_manifest(demo_artifacts, tmp_path)))
    page.get_by_test_id("ingest-submit").click()
    expect(page.get_by_test_id("ingest-outcome")).to_contain_text("2", timeout=60_000)
    page.goto(f"{base}/diff")
    expect(page.get_by_test_id("diff-changed")).to_contain_text("dim_plans", timeout=30_000)
    page.get_by_test_id("diff-changed").get_by_text("dim_plans").first.click()
    expect(page.get_by_test_id("diff-editor")).to_contain_text("a reviewed change", timeout=60_000)
    page.screenshot(path=str(shots / "diff.png"), full_page=True)

    # -- the runs list and the dashboard show the run
    page.goto(f"{server.url}/runs")
    expect(page.locator("table")).to_contain_text(re.compile("success|warning"))
    page.screenshot(path=str(shots / "runs.png"), full_page=True)
    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("recent-runs")).to_contain_text("shop/dev")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    page.goto(f"{base}/docs/{ORDERS}")
    expect(page.get_by_test_id("docs-columns")).to_contain_text("customer_id")
    page.screenshot(path=str(shots / "docs.png"), full_page=True)
