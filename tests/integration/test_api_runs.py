"""Selection, plans and the run lifecycle through the real app: automatic approval, approval by an approver,
separation of duties in production, rejection, cancel, stale plans, racing approvers, tenant isolation; and the
execution side with a runner's events appended by hand: node timeline, cancel requests, logs (pages, the stored
log, SSE with resume over a real uvicorn server), artifacts, the filtered and paged list."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient

from contracts.events.runs import RunArtifact
from services.api.app import create_app
from services.runner.logs import LiveLog, store_log
from services.runtime import Runtime
from services.shared.auth import TokenTable
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.objectstore.local import LocalObjectStore
from services.shared.settings import Settings
from tests.corpus import corpus_path
from tests.integration.api_support import (
    ADMIN_H,
    APPROVER2_H,
    APPROVER_H,
    GLOBEX_H,
    PROBLEM,
    TOKENS,
    VIEWER_H,
    api_client,
    env_body,
    open_with_tenants,
    project_body,
)
from tests.integration.test_runs_execution_readmodel import ORDERS, STG, T0, RunScript

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


# -- execution: the read model, logs, artifacts and cancel of runs a runner executes (events appended by hand) --


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    """The app's database, opened by the test itself (the test client runs the app in another event loop)."""
    store = await PostgresEventStore.connect(pg_url, migrate=False)
    try:
        yield store
    finally:
        await store.close()


async def executing(client: AsyncTestClient[Litestar], es: PostgresEventStore, env: str = "dev") -> RunScript:
    """A run requested through the API and started by a (hand-written) runner."""
    run = (await request_run(client, env, select="orders")).json()
    script = RunScript(es, run_id=uuid.UUID(run["run_id"]))
    script.version = run["version"]
    await script.started()
    return script


async def test_a_running_run_shows_its_timeline_and_a_cancel_is_a_request(
    client: AsyncTestClient[Litestar], es: PostgresEventStore
) -> None:
    run = await executing(client, es)
    await run.node(STG, "success", rows_affected=5, query_ids=("q-1",))
    await run.node(ORDERS, "running", at=T0 + timedelta(seconds=3))
    url = f"{BASE}/runs/{run.run_id}"
    detail = (await client.get(url, headers=VIEWER_H)).json()
    assert (detail["run"]["status"], detail["run"]["attempt"], detail["run"]["runner_id"]) == ("running", 1, "runner-1")
    assert [(n["unique_id"], n["status"]) for n in detail["nodes"]] == [(STG, "success"), (ORDERS, "running")]
    assert detail["nodes"][0]["query_ids"] == ["q-1"]
    assert detail["plan"]["plan_hash"] == detail["run"]["plan_hash"]
    nodes = (await client.get(f"{url}/nodes", headers=VIEWER_H)).json()
    assert nodes == detail["nodes"]
    assert (await client.get(f"{url}/nodes", params={"attempt": 2}, headers=VIEWER_H)).json() == []

    assert (await client.post(f"{url}/cancel", json={"reason": "x"}, headers=VIEWER_H)).status_code == 403
    asked = await client.post(f"{url}/cancel", json={"reason": "wrong env"}, headers=ADMIN_H)
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert (body["status"], body["cancel_requested_by"], body["cancel_reason"]) == ("running", "alice", "wrong env")
    again = await client.post(f"{url}/cancel", json={}, headers=ADMIN_H)
    assert again.status_code == 409
    assert "already being canceled" in again.json()["detail"]
    run.version = body["version"]
    await run.finished("canceled", reason="canceled", message="canceled by alice: wrong env")
    ended = (await client.get(url, headers=VIEWER_H)).json()["run"]
    assert (ended["status"], ended["reason"], ended["message"]) == (
        "canceled",
        "canceled",
        "canceled by alice: wrong env",
    )
    assert (await client.get(f"/api/tenants/globex/runs/{run.run_id}/nodes", headers=GLOBEX_H)).status_code == 404
    assert (await client.get(f"{url}/nodes", headers=GLOBEX_H)).status_code == 403


async def test_a_finished_runs_logs_and_artifacts(
    client: AsyncTestClient[Litestar], es: PostgresEventStore, tmp_path: Path
) -> None:
    run = await executing(client, es)
    lines = [f"line {i}" for i in range(1, 26)]
    async with LiveLog(es.pool, "acme", run.run_id) as live:
        for text in lines:
            live.add(text)
    objects = LocalObjectStore(tmp_path / "objects").for_tenant("acme")  # the app's store under its home
    results = await objects.put("run_results", b'{"results": []}', content_type="application/json")
    stored_log = await store_log(objects, run.run_id, lines)
    artifacts = (
        RunArtifact(name="run_results.json", key=results.key, size=results.size, sha256=results.sha256),
        stored_log,
    )
    url = f"{BASE}/runs/{run.run_id}"
    running_page = (await client.get(f"{url}/logs", params={"from": 20}, headers=VIEWER_H)).json()
    assert ([i["line"] for i in running_page["items"]], running_page["final"]) == ([21, 22, 23, 24, 25], False)
    await run.finished("success", artifacts=artifacts, node_counts={"success": 2}, log_lines=live.lines)

    page = (await client.get(f"{url}/logs", params={"from": 10, "limit": 5}, headers=VIEWER_H)).json()
    assert page == {
        "items": [{"line": n, "text": f"line {n}"} for n in range(11, 16)],
        "next_from": 15,
        "final": False,
    }
    last = (await client.get(f"{url}/logs", params={"from": 15, "limit": 100}, headers=VIEWER_H)).json()
    assert (last["items"][-1]["line"], last["next_from"], last["final"]) == (25, 25, True)
    async with es.pool.acquire() as conn:  # the live lines are pruned: the page comes from the stored log
        await conn.execute("DELETE FROM run_log_lines WHERE run_id = $1", run.run_id)
    pruned = (await client.get(f"{url}/logs", params={"from": 23}, headers=VIEWER_H)).json()
    assert [i["text"] for i in pruned["items"]] == ["line 24", "line 25"]

    downloaded = await client.get(f"{url}/artifacts/run_results.json", headers=VIEWER_H)
    assert downloaded.status_code == 200
    assert (downloaded.content, downloaded.headers["content-type"]) == (b'{"results": []}', "application/json")
    assert 'filename="run_results.json"' in downloaded.headers["content-disposition"]
    log_gz = await client.get(f"{url}/artifacts/dbt.log.gz", headers=VIEWER_H)
    assert gzip.decompress(log_gz.content).decode().splitlines() == lines
    assert hashlib.sha256(log_gz.content).hexdigest() == stored_log.sha256
    missing = await client.get(f"{url}/artifacts/manifest.json", headers=VIEWER_H)
    assert missing.status_code == 404
    assert (await client.get(f"{url}/artifacts/dbt.log.gz", headers=GLOBEX_H)).status_code == 403
    shown = (await client.get(url, headers=VIEWER_H)).json()["run"]
    assert [a["name"] for a in shown["artifacts"]] == ["run_results.json", "dbt.log.gz"]
    assert (shown["status"], shown["node_counts"], shown["log_lines"]) == ("success", {"success": 2}, 25)


async def test_the_list_filters_and_pages(client: AsyncTestClient[Litestar], es: PostgresEventStore) -> None:
    dev = [(await request_run(client, "dev", select="orders")).json() for _ in range(3)]
    prod = (await request_run(client, "prod", select="orders")).json()
    finished = await executing(client, es)
    await finished.finished("warning")

    async def listed(**params: Any) -> list[str]:
        response = await client.get(f"{BASE}/runs", params=params, headers=VIEWER_H)
        assert response.status_code == 200, response.text
        return [r["run_id"] for r in response.json()["items"]]

    everything = await listed()
    assert len(everything) == 5
    assert everything[0] == str(finished.run_id)  # newest first
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get(f"{BASE}/runs", params=params, headers=VIEWER_H)).json()
        pages.append([r["run_id"] for r in body["items"]])
        cursor = body.get("next_cursor")
        if cursor is None:
            break
    assert [run_id for page in pages for run_id in page] == everything
    assert await listed(environment="prod") == [prod["run_id"]]
    assert await listed(status="warning") == [str(finished.run_id)]
    assert set(await listed(status="approved", environment="dev")) == {r["run_id"] for r in dev}
    assert len(await listed(actor="alice", project="shop")) == 5
    assert await listed(actor="bob") == []
    first = dev[0]["requested_at"]
    assert await listed(until=first) == []
    assert len(await listed(since=first)) == 5
    bad = await client.get(f"{BASE}/runs", params={"cursor": "nope"}, headers=VIEWER_H)
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]


# -- the live log over a real HTTP server (uvicorn): SSE streaming, resume, the end ---------------------------


@asynccontextmanager
async def served(pg_url: str, home: Path) -> AsyncIterator[tuple[str, Litestar]]:
    app = create_app(
        Settings(database_url=pg_url, dev_principal=False, home=home),
        tokens=TokenTable(TOKENS),
        open_runtime=open_with_tenants,
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Server-Sent Events of a streaming response, one dict per event (field -> value)."""
    event: dict[str, str] = {}
    async for raw in response.aiter_lines():
        if not raw:
            if event:
                yield event
            event = {}
            continue
        field, _, value = raw.partition(":")
        event[field] = value.removeprefix(" ")


@pytest.mark.timeout(60)
async def test_live_log_lines_stream_as_server_sent_events_with_resume(pg_url: str, tmp_path: Path) -> None:
    async with served(pg_url, tmp_path) as (base, app), httpx.AsyncClient(base_url=base, timeout=10) as http:
        runtime: Runtime = app.state.runtime
        run = RunScript(runtime.store)
        await run.requested()
        await run.started()
        live = LiveLog(runtime.store.pool, "acme", run.run_id)
        stream_url = f"{BASE}/runs/{run.run_id}/logs/stream"

        received: list[dict[str, str]] = []
        async with http.stream("GET", stream_url, headers=VIEWER_H) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            for i in range(1, 4):
                live.add(f"line {i}")
                received.append(await asyncio.wait_for(anext(events), 2))  # each arrives before the next is written
        assert [(e["id"], e["data"]) for e in received] == [("1", "line 1"), ("2", "line 2"), ("3", "line 3")]

        for i in range(4, 7):
            live.add(f"line {i}")
        await live.close()
        resumed: list[dict[str, str]] = []
        async with http.stream("GET", stream_url, headers={**VIEWER_H, "Last-Event-ID": "3"}) as response:
            events = sse_events(response)
            resumed.extend([await asyncio.wait_for(anext(events), 2) for _ in range(3)])
            await run.finished("success", log_lines=live.lines)
            resumed.extend([event async for event in events])  # the stream ends by itself
        assert [(e.get("event"), e["id"], e["data"]) for e in resumed] == [
            (None, "4", "line 4"),
            (None, "5", "line 5"),
            (None, "6", "line 6"),
            ("end", "6", "6"),
        ]

        async with http.stream("GET", stream_url, params={"from": 5}, headers=VIEWER_H) as response:
            after_end = [event async for event in sse_events(response)]
        assert [(e.get("event"), e["data"]) for e in after_end] == [(None, "line 6"), ("end", "6")]
        bad = await http.get(stream_url, headers={**VIEWER_H, "Last-Event-ID": "x"})
        assert bad.status_code == 422
        unknown = await http.get(f"{BASE}/runs/{uuid.uuid4()}/logs/stream", headers=VIEWER_H)
        assert unknown.status_code == 404
