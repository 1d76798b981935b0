"""Reads the web UI is built on, through the real app: the compact graph outline and node statuses, a node's
owner, the layout cache, who am I, and the dashboard (runs awaiting my decision, failures, estimated against
actual cost), each with its bad input and tenant checks."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from services.shared.eventstore.postgres import PostgresEventStore
from tests.corpus import corpus_path
from tests.integration.api_support import (
    ADMIN_H,
    APPROVER_H,
    GLOBEX_H,
    PROBLEM,
    VIEWER_H,
    api_client,
    env_body,
    project_body,
)
from tests.integration.test_api_runs import JAFFLE, SHOP, ingest
from tests.integration.test_runs_execution_readmodel import RunScript

BASE = "/api/tenants/acme"


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url, home=tmp_path) as client:
        assert (await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)).status_code == 201
        priced = {"threads": 2, "rate_per_second": "0.5", "currency": "USD"}  # target values are text, numbers, flags
        dev = env_body("dev", adapter_type="duckdb", target=priced, secrets={}, production=False)
        prod = env_body("prod", adapter_type="duckdb", target=priced, secrets={}, production=True)
        for env in (dev, prod):
            assert (await client.post(f"{SHOP}/environments", json=env, headers=ADMIN_H)).status_code == 201
        await ingest(client, corpus_path(JAFFLE, "manifest.json"), run_results=corpus_path(JAFFLE, "run_results.json"))
        yield client


async def test_the_outline_is_the_graph_compact_and_cached_per_version(client: AsyncTestClient[Litestar]) -> None:
    graph = (await client.get(f"{SHOP}/graph", headers=VIEWER_H)).json()
    answer = await client.get(f"{SHOP}/graph/outline", headers=VIEWER_H)
    assert answer.status_code == 200
    assert answer.headers["etag"] == '"outline-1"'
    outline = answer.json()
    assert outline["graph_version"] == 1
    ids = [n["unique_id"] for n in outline["nodes"]]
    assert ids == sorted(n["node"]["unique_id"] for n in graph["nodes"])
    full = {n["node"]["unique_id"]: n for n in graph["nodes"]}
    for node in outline["nodes"]:
        record = full[node["unique_id"]]
        assert node["node_uuid"] == record["node_uuid"]
        assert (node["resource_type"], node["name"]) == (record["node"]["resource_type"], record["node"]["name"])
        assert node["path"] == record["node"].get("original_file_path", "")
        assert node.get("materialized") == record["node"].get("materialized")
    edges = {(ids[p], ids[c]) for p, c in outline["edges"]}
    assert edges == {(e["parent"], e["child"]) for e in graph["edges"]}
    assert len(outline["edges"]) == len(edges)

    # gzip on request, the same document either way; a revalidation with the ETag costs nothing
    zipped = await client.get(f"{SHOP}/graph/outline", headers={**VIEWER_H, "Accept-Encoding": "gzip"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert zipped.json() == outline
    again = await client.get(f"{SHOP}/graph/outline", headers={**VIEWER_H, "If-None-Match": '"outline-1"'})
    assert (again.status_code, again.content) == (304, b"")
    assert (await client.get(f"{SHOP}/graph/outline", params={"version": 9}, headers=VIEWER_H)).status_code == 404
    assert (await client.get(f"{SHOP}/graph/outline", headers=GLOBEX_H)).status_code == 403

    statuses = (await client.get(f"{SHOP}/graph/statuses", headers=VIEWER_H)).json()["statuses"]
    assert statuses["model.jaffle_shop.orders"] == "success"
    assert set(statuses) <= set(ids)


async def test_a_nodes_owner_comes_from_its_meta_or_its_group(
    client: AsyncTestClient[Litestar], tmp_path: Path
) -> None:
    manifest = json.loads(corpus_path(JAFFLE, "manifest.json").read_text())
    manifest["nodes"]["model.jaffle_shop.orders"]["meta"] = {"owner": "finance@example.com"}
    manifest["nodes"]["model.jaffle_shop.customers"]["group"] = "marketing"
    manifest["groups"] = {
        "group.jaffle_shop.marketing": {
            "name": "marketing",
            "resource_type": "group",
            "package_name": "jaffle_shop",
            "path": "schema.yml",
            "original_file_path": "models/schema.yml",
            "unique_id": "group.jaffle_shop.marketing",
            "owner": {"name": "Marketing analytics", "email": "mkt@example.com"},
        }
    }
    edited = tmp_path / "manifest.json"
    edited.write_text(json.dumps(manifest))
    await ingest(client, edited)

    async def owner(unique_id: str) -> Any:
        return (await client.get(f"{SHOP}/graph/nodes/{unique_id}", headers=VIEWER_H)).json()["owner"]

    assert await owner("model.jaffle_shop.orders") == "finance@example.com"
    assert await owner("model.jaffle_shop.customers") == "Marketing analytics"
    assert await owner("model.jaffle_shop.stg_orders") is None


LAYOUTS = f"{SHOP}/graph/layouts"
KEY = "0123456789abcdef0123"


async def test_a_layout_is_kept_per_version_and_key_and_sent_back_as_stored(client: AsyncTestClient[Litestar]) -> None:
    missing = await client.get(f"{LAYOUTS}/{KEY}", params={"version": 1}, headers=VIEWER_H)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    body = {
        "engine": "elk",
        "positions": {"model.jaffle_shop.orders": [10.5, -3], "folder:models/staging": [0, 0]},
        "elapsed_ms": 812.5,
    }
    kept = await client.put(f"{LAYOUTS}/{KEY}", params={"version": 1}, json=body, headers=VIEWER_H)
    assert kept.status_code == 200, kept.text
    layout = (await client.get(f"{LAYOUTS}/{KEY}", params={"version": 1}, headers=VIEWER_H)).json()
    assert layout["positions"] == body["positions"]
    assert (layout["engine"], layout["elapsed_ms"], layout["graph_version"], layout["key"]) == ("elk", 812.5, 1, KEY)
    raw = await client.get(f"{LAYOUTS}/{KEY}", params={"version": 1}, headers={**VIEWER_H, "Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert json.loads(raw.content) == layout
    # another version or key is another layout
    assert (await client.get(f"{LAYOUTS}/{KEY[::-1]}", params={"version": 1}, headers=VIEWER_H)).status_code == 404


@pytest.mark.parametrize(
    ("key", "version", "body", "status"),
    [
        (KEY, 2, {"engine": "elk", "positions": {}}, 404),  # no such graph version
        ("../../etc/passwd", 1, {"engine": "elk", "positions": {}}, 404),
        ("ABCDEF0123456789ABCD", 1, {"engine": "elk", "positions": {}}, 422),
        (KEY, 1, {"engine": "graphviz", "positions": {}}, 400),
        (KEY, 1, {"engine": "elk", "positions": {"a": [1e12, 0]}}, 422),
        (KEY, 1, {"engine": "elk", "positions": {"a": [1, 2, 3]}}, 400),
        (KEY, 1, {"engine": "elk", "positions": {"": [1, 2]}}, 400),
        (KEY, 1, {"engine": "elk", "positions": {}, "elapsed_ms": -1}, 400),
    ],
)
async def test_bad_layouts_are_refused_and_keep_nothing(
    client: AsyncTestClient[Litestar], key: str, version: int, body: dict[str, Any], status: int
) -> None:
    answer = await client.put(f"{LAYOUTS}/{key}", params={"version": version}, json=body, headers=VIEWER_H)
    assert answer.status_code == status, answer.text
    assert (await client.get(f"{LAYOUTS}/{KEY}", params={"version": 1}, headers=VIEWER_H)).status_code == 404


async def test_layouts_are_bounded_in_size_count_and_tenant(client: AsyncTestClient[Litestar]) -> None:
    huge = {"engine": "elk", "positions": {f"model.p.{'n' * 900}{i}": [i, i] for i in range(20_000)}}
    too_big = await client.put(f"{LAYOUTS}/{KEY}", params={"version": 1}, json=huge, headers=VIEWER_H)
    assert too_big.status_code == 413
    assert (await client.put(f"{LAYOUTS}/{KEY}", params={"version": 1}, json={"engine": "elk", "positions": {}},
                             headers=GLOBEX_H)).status_code == 403  # fmt: skip
    keys = [uuid.uuid4().hex for _ in range(66)]
    for key in keys:
        body = {"engine": "dagre", "positions": {"x": [1, 1]}}
        assert (
            await client.put(f"{LAYOUTS}/{key}", params={"version": 1}, json=body, headers=VIEWER_H)
        ).status_code == 200
    kept = [(await client.get(f"{LAYOUTS}/{k}", params={"version": 1}, headers=VIEWER_H)).status_code for k in keys]
    assert kept == [404, 404] + [200] * 64  # the oldest go first


async def test_me_says_who_is_calling_and_what_they_may_do(client: AsyncTestClient[Litestar]) -> None:
    admin = (await client.get("/api/me", headers=ADMIN_H)).json()
    assert admin == {
        "subject": "alice",
        "display_name": "Alice",
        "tenant_id": "acme",
        "roles": ["admin"],
        "can_write": True,
        "can_approve": True,
    }
    viewer = (await client.get("/api/me", headers=VIEWER_H)).json()
    assert (viewer["can_write"], viewer["can_approve"]) == (False, False)
    approver = (await client.get("/api/me", headers=APPROVER_H)).json()
    assert (approver["can_write"], approver["can_approve"]) == (False, True)
    assert (await client.get("/api/me")).status_code == 401


async def test_the_dashboard_shows_what_needs_attention(client: AsyncTestClient[Litestar], pg_url: str) -> None:
    dev = (
        await client.post(f"{SHOP}/runs", json={"environment_id": "dev", "select": "+orders"}, headers=ADMIN_H)
    ).json()
    prod = await client.post(f"{SHOP}/runs", json={"environment_id": "prod", "select": "orders"}, headers=ADMIN_H)
    assert prod.status_code == 202
    store = await PostgresEventStore.connect(pg_url)
    try:
        script = RunScript(store, run_id=uuid.UUID(dev["run_id"]))
        script.version = dev["version"]
        await script.started()
        await script.node("model.jaffle_shop.stg_orders", "success")
        await script.node("model.jaffle_shop.orders", "error", message="boom")
        await script.finished("failed", reason="node_failed", message="model.jaffle_shop.orders failed")
    finally:
        await store.close()

    board = (await client.get(f"{BASE}/dashboard", headers=APPROVER_H)).json()
    assert [r["run_id"] for r in board["awaiting_my_approval"]] == [prod.json()["run_id"]]
    assert board["awaiting_others"] == 0
    assert [r["run_id"] for r in board["failures"]] == [dev["run_id"]]
    assert {r["run_id"] for r in board["recent_runs"]} == {dev["run_id"], prod.json()["run_id"]}
    (project,) = board["projects"]
    assert (project["project_id"], project["graph_version"], project["nodes"], project["edges"]) == ("shop", 1, 28, 29)
    assert project["node_statuses"]["success"] > 0
    assert project["ingested_at"] is not None
    (cost,) = board["costs"]
    assert cost["run_id"] == dev["run_id"]
    assert cost["actual_seconds"] == 2.0  # two nodes of 1 s each (RunScript)
    assert cost["currency"] == "USD"
    assert cost["estimated_cost"] == pytest.approx(cost["estimated_seconds"] * 0.5)
    assert cost["actual_cost"] == pytest.approx(1.0)  # 2 s at the plan's 0.5 USD/s

    # the requester may not approve their own production run: it waits for someone else
    own = (await client.get(f"{BASE}/dashboard", headers=ADMIN_H)).json()
    assert (own["awaiting_my_approval"], own["awaiting_others"]) == ([], 1)
    assert (await client.get(f"{BASE}/dashboard", headers=VIEWER_H)).json()["awaiting_others"] == 1
    assert (await client.get(f"{BASE}/dashboard", headers=GLOBEX_H)).status_code == 403


async def test_the_runs_list_sorts_on_the_server_and_refuses_a_bad_order(client: AsyncTestClient[Litestar]) -> None:
    for select in ("orders", "customers", "stg_orders"):
        answer = await client.post(f"{SHOP}/runs", json={"environment_id": "dev", "select": select}, headers=ADMIN_H)
        assert answer.status_code == 201, answer.text
    by_select = await client.get(
        f"{BASE}/runs", params={"sort": "requested_at", "order": "asc", "limit": 2}, headers=VIEWER_H
    )
    first = by_select.json()
    assert [r["select"] for r in first["items"]] == ["orders", "customers"]
    rest = await client.get(
        f"{BASE}/runs",
        params={"sort": "requested_at", "order": "asc", "limit": 2, "cursor": first["next_cursor"]},
        headers=VIEWER_H,
    )
    assert [r["select"] for r in rest.json()["items"]] == ["stg_orders"]
    assert rest.json()["next_cursor"] is None

    bogus = await client.get(f"{BASE}/runs", params={"sort": "select; DROP TABLE runs"}, headers=VIEWER_H)
    assert bogus.status_code == 400
    assert bogus.headers["content-type"].startswith(PROBLEM)
    other_order = await client.get(
        f"{BASE}/runs", params={"sort": "status", "cursor": first["next_cursor"]}, headers=VIEWER_H
    )
    assert other_order.status_code == 422
    assert "another order" in other_order.json()["detail"]
    assert len((await client.get(f"{BASE}/runs", headers=VIEWER_H)).json()["items"]) == 3  # nothing was lost
