"""Selection, plans and the run lifecycle through the real app: automatic approval, approval by an approver,
separation of duties in production, rejection, cancel, stale plans, racing approvers, tenant isolation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.corpus import corpus_path
from tests.integration.api_support import (
    ADMIN_H,
    APPROVER2_H,
    APPROVER_H,
    GLOBEX_H,
    PROBLEM,
    VIEWER_H,
    api_client,
    env_body,
    project_body,
)

BASE = "/api/tenants/acme"
SHOP = f"{BASE}/projects/shop"
JAFFLE = "jaffle_shop_duckdb"


async def ingest(client: AsyncTestClient[Litestar], manifest: Path, **extra: Path) -> None:
    files = {"manifest": ("manifest.json", manifest.read_bytes(), "application/json")}
    files.update({kind: (p.name, p.read_bytes(), "application/json") for kind, p in extra.items()})
    response = await client.post(f"{SHOP}/ingestions", files=files, headers=ADMIN_H)
    assert response.status_code in (200, 201), response.text


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url, home=tmp_path) as client:
        assert (await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)).status_code == 201
        dev = env_body("dev", adapter_type="duckdb", target={"threads": 2}, secrets={}, production=False)
        prod = env_body("prod", adapter_type="duckdb", target={"threads": 4}, secrets={}, production=True)
        for env in (dev, prod):
            created = await client.post(f"{SHOP}/environments", json=env, headers=ADMIN_H)
            assert created.status_code == 201, created.text
        folder = corpus_path(JAFFLE, "state_modified")
        await ingest(client, folder / "manifest.base.json", run_results=corpus_path(JAFFLE, "run_results.json"))
        yield client


async def request_run(client: AsyncTestClient[Litestar], env: str, **body: Any) -> Any:
    response = await client.post(f"{SHOP}/runs", json={"environment_id": env, **body}, headers=ADMIN_H)
    assert response.status_code in (201, 202), response.text
    return response


async def test_select_and_preview_a_plan(client: AsyncTestClient[Litestar]) -> None:
    selected = await client.get(f"{SHOP}/select", params={"select": "+orders"}, headers=VIEWER_H)
    assert selected.status_code == 200, selected.text
    ids = selected.json()["unique_ids"]
    assert "model.jaffle_shop.orders" in ids
    assert "model.jaffle_shop.stg_orders" in ids
    assert "model.jaffle_shop.customers" not in ids
    bad = await client.get(f"{SHOP}/select", params={"select": "orders nosuch:x"}, headers=VIEWER_H)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith(PROBLEM)
    assert "unknown selection method 'nosuch'" in bad.json()["detail"]
    nothing = await client.get(f"{SHOP}/select", params={"select": "tag:no_such_tag"}, headers=VIEWER_H)
    assert nothing.json()["unique_ids"] == []

    preview = await client.post(f"{SHOP}/plans", json={"environment_id": "dev", "select": "orders"}, headers=VIEWER_H)
    assert preview.status_code == 200, preview.text
    plan = preview.json()["plan"]
    assert [i["unique_id"] for i in plan["items"] if i["unique_id"].startswith("model.")] == [
        "model.jaffle_shop.orders"
    ]
    assert plan.get("approvals", []) == []  # omitted when empty
    assert preview.json()["explain"]
    assert (await client.get(f"{BASE}/runs", headers=VIEWER_H)).json()["items"] == []  # a preview records nothing


async def test_dev_runs_are_approved_automatically(client: AsyncTestClient[Litestar]) -> None:
    response = await request_run(client, "dev", select="stg_orders+")
    assert response.status_code == 201
    run = response.json()
    assert (run["status"], run["decided_by"]) == ("approved", "alice")
    detail = (await client.get(f"{BASE}/runs/{run['run_id']}", headers=VIEWER_H)).json()
    assert detail["plan"]["plan_hash"] == run["plan_hash"]
    assert detail["explain"]


async def test_production_needs_another_approver(client: AsyncTestClient[Litestar]) -> None:
    response = await request_run(client, "prod", select="orders")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "awaiting_approval"
    assert run["approvals"]
    approve = f"{BASE}/runs/{run['run_id']}/approve"

    own = await client.post(approve, json={"comment": "mine"}, headers=ADMIN_H)
    assert own.status_code == 403
    assert "separation of duties" in own.json()["detail"]
    assert (await client.post(approve, json={}, headers=VIEWER_H)).status_code == 403

    approved = await client.post(approve, json={"comment": "ok"}, headers=APPROVER_H)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "bob")
    again = await client.post(approve, json={}, headers=APPROVER2_H)
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"


async def test_reject_needs_a_comment_and_a_rejected_run_cannot_be_canceled(client: AsyncTestClient[Litestar]) -> None:
    run = (await request_run(client, "prod", select="orders")).json()
    reject = f"{BASE}/runs/{run['run_id']}/reject"
    assert (await client.post(reject, json={"comment": ""}, headers=APPROVER_H)).status_code == 422
    rejected = await client.post(reject, json={"comment": "not before the release"}, headers=APPROVER_H)
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["comment"]) == ("rejected", "not before the release")
    cancel = await client.post(f"{BASE}/runs/{run['run_id']}/cancel", json={}, headers=ADMIN_H)
    assert cancel.status_code == 409


async def test_cancel_a_run_awaiting_approval(client: AsyncTestClient[Litestar]) -> None:
    run = (await request_run(client, "prod", select="orders")).json()
    canceled = await client.post(f"{BASE}/runs/{run['run_id']}/cancel", json={"reason": "typo"}, headers=ADMIN_H)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    late = await client.post(f"{BASE}/runs/{run['run_id']}/approve", json={}, headers=APPROVER_H)
    assert late.status_code == 409


async def test_a_newer_graph_version_makes_the_plan_stale(client: AsyncTestClient[Litestar]) -> None:
    run = (await request_run(client, "prod", select="orders")).json()
    await ingest(client, corpus_path(JAFFLE, "state_modified", "manifest.edited.json"))
    stale = await client.post(f"{BASE}/runs/{run['run_id']}/approve", json={}, headers=APPROVER_H)
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_plan"
    assert "re-plan" in stale.json()["detail"]

    replanned = await client.post(f"{BASE}/runs/{run['run_id']}/replan", headers=ADMIN_H)
    assert replanned.status_code == 200, replanned.text
    fresh = replanned.json()
    assert (fresh["status"], fresh["graph_version"]) == ("awaiting_approval", 2)
    assert fresh["plan_id"] != run["plan_id"]
    approved = await client.post(f"{BASE}/runs/{run['run_id']}/approve", json={}, headers=APPROVER_H)
    assert approved.status_code == 200, approved.text
    again = await client.post(f"{BASE}/runs/{run['run_id']}/replan", headers=ADMIN_H)
    assert again.status_code == 409


async def test_two_approvers_racing_one_wins(client: AsyncTestClient[Litestar]) -> None:
    run = (await request_run(client, "prod", select="orders")).json()
    approve = f"{BASE}/runs/{run['run_id']}/approve"
    first, second = await asyncio.gather(
        client.post(approve, json={"comment": "a"}, headers=APPROVER_H),
        client.post(approve, json={"comment": "b"}, headers=APPROVER2_H),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    listed = (await client.get(f"{BASE}/runs", params={"status": "approved"}, headers=VIEWER_H)).json()["items"]
    assert [r["run_id"] for r in listed] == [run["run_id"]]


async def test_state_selection_against_an_earlier_graph_version(client: AsyncTestClient[Litestar]) -> None:
    await ingest(client, corpus_path(JAFFLE, "state_modified", "manifest.edited.json"))
    selected = await client.get(f"{SHOP}/select", params={"select": "state:modified", "state": 1}, headers=VIEWER_H)
    assert selected.status_code == 200, selected.text
    ids = selected.json()["unique_ids"]
    assert [i for i in ids if not i.startswith("test.")] == ["model.jaffle_shop.stg_orders"]
    assert all("stg_orders" in i for i in ids)  # its tests come along (dbt's eager indirect selection)
    plus = await client.get(f"{SHOP}/select", params={"select": "state:modified+", "state": 1}, headers=VIEWER_H)
    expected = corpus_path(JAFFLE, "state_modified", "dbt_ls_state_modified_plus.txt").read_text().split()
    assert len(plus.json()["unique_ids"]) == len(expected)
    no_state = await client.get(f"{SHOP}/select", params={"select": "state:modified"}, headers=VIEWER_H)
    assert no_state.status_code == 422


async def test_other_tenants_see_nothing(client: AsyncTestClient[Litestar]) -> None:
    run = (await request_run(client, "dev", select="orders")).json()
    assert (await client.get(f"{BASE}/runs/{run['run_id']}", headers=GLOBEX_H)).status_code == 403
    assert (await client.get(f"/api/tenants/globex/runs/{run['run_id']}", headers=GLOBEX_H)).status_code == 404
    unknown_env = await client.post(f"{SHOP}/runs", json={"environment_id": "nope"}, headers=ADMIN_H)
    assert unknown_env.status_code == 404


async def test_replaying_a_runs_events_rebuilds_its_plan_byte_for_byte(client: AsyncTestClient[Litestar]) -> None:
    import msgspec  # noqa: PLC0415

    from contracts.plan import ExecutionPlan, canonical_plan_bytes, compute_plan_hash  # noqa: PLC0415

    run = (await request_run(client, "prod", select="+orders")).json()
    events = (await client.get(f"{BASE}/events", params={"stream": f"run-{run['run_id']}"}, headers=VIEWER_H)).json()
    assert [e["type"] for e in events["items"]] == ["runs.run_requested.v1", "runs.plan_created.v1"]
    recorded = msgspec.convert(events["items"][1]["payload"]["plan"], ExecutionPlan)
    assert compute_plan_hash(recorded) == recorded.plan_hash == run["plan_hash"]
    shown = (await client.get(f"{BASE}/runs/{run['run_id']}", headers=VIEWER_H)).json()["plan"]
    assert canonical_plan_bytes(msgspec.convert(shown, ExecutionPlan)) == canonical_plan_bytes(recorded)


async def test_a_selection_that_matches_nothing_is_an_empty_plan_not_an_error(
    client: AsyncTestClient[Litestar],
) -> None:
    preview = await client.post(
        f"{SHOP}/plans", json={"environment_id": "prod", "select": "tag:no_such_tag"}, headers=VIEWER_H
    )
    assert preview.status_code == 200, preview.text
    plan = preview.json()["plan"]
    assert plan.get("items", []) == []
    assert plan["totals"].get("run", 0) == 0
    unknown_state = await client.post(
        f"{SHOP}/plans",
        json={"environment_id": "dev", "select": "state:modified", "state_reference": 9},
        headers=VIEWER_H,
    )
    assert unknown_state.status_code == 404
    assert "graph version 9" in unknown_state.json()["detail"]
    syntax = await client.post(f"{SHOP}/runs", json={"environment_id": "dev", "select": "bogus:x"}, headers=ADMIN_H)
    assert syntax.status_code == 422
    assert "position" in syntax.json()["detail"]
    assert (await client.get(f"{BASE}/runs", headers=VIEWER_H)).json()["items"] == []
