"""Graph routes on the real app: multipart and by-key ingestion, the graph (whole, paged, focused), node
docs with code and catalog, versions, diff, artifact download, size limit, tenant isolation."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.corpus import corpus_path
from tests.integration.api_support import ADMIN_H, GLOBEX_H, PROBLEM, VIEWER_H, api_client, project_body

SHOP = "/api/tenants/acme/projects/shop"
JAFFLE = "jaffle_shop_duckdb"


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url, home=tmp_path, max_upload_bytes=2_000_000) as client:
        created = await client.post("/api/tenants/acme/projects", json=project_body(), headers=ADMIN_H)
        assert created.status_code == 201, created.text
        yield client


def upload(*kinds: tuple[str, Path]) -> dict[str, tuple[str, bytes, str]]:
    return {kind: (path.name, path.read_bytes(), "application/json") for kind, path in kinds}


async def ingest_jaffle(client: AsyncTestClient[Litestar]) -> dict[str, object]:
    files = upload(
        ("manifest", corpus_path(JAFFLE, "manifest.json")),
        ("catalog", corpus_path(JAFFLE, "catalog.json")),
        ("run_results", corpus_path(JAFFLE, "run_results.json")),
    )
    response = await client.post(f"{SHOP}/ingestions", files=files, headers=ADMIN_H)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_multipart_ingestion_then_graph_node_and_versions(client: AsyncTestClient[Litestar]) -> None:
    outcome = await ingest_jaffle(client)
    assert (outcome["graph_version"], outcome["nodes"], outcome["edges"]) == (1, 28, 29)

    again = await client.post(
        f"{SHOP}/ingestions",
        files=upload(
            ("manifest", corpus_path(JAFFLE, "manifest.json")),
            ("catalog", corpus_path(JAFFLE, "catalog.json")),
            ("run_results", corpus_path(JAFFLE, "run_results.json")),
        ),
        headers=ADMIN_H,
    )
    assert again.status_code == 200
    assert again.json()["deduplicated"] is True

    graph = (await client.get(f"{SHOP}/graph", headers=VIEWER_H)).json()
    assert graph["graph_version"] == 1
    assert len(graph["nodes"]) == 28
    assert len(graph["edges"]) == 29
    orders = next(n for n in graph["nodes"] if n["node"]["unique_id"] == "model.jaffle_shop.orders")
    assert orders["last_status"] == "success"

    page = (await client.get(f"{SHOP}/graph", params={"limit": 10}, headers=VIEWER_H)).json()
    rest = (await client.get(f"{SHOP}/graph", params={"after": page["next_after"]}, headers=VIEWER_H)).json()
    assert len(page["nodes"]) == 10
    assert len(page["nodes"]) + len(rest["nodes"]) == 28

    focus = (
        await client.get(
            f"{SHOP}/graph", params={"focus": "model.jaffle_shop.stg_orders", "up": 1, "down": 1}, headers=VIEWER_H
        )
    ).json()
    ids = {n["node"]["unique_id"] for n in focus["nodes"]}
    assert "seed.jaffle_shop.raw_orders" in ids
    assert "model.jaffle_shop.orders" in ids
    assert "model.jaffle_shop.customers" in ids
    assert all(e["parent"] in ids and e["child"] in ids for e in focus["edges"])

    node = await client.get(f"{SHOP}/graph/nodes/{quote('model.jaffle_shop.customers')}", headers=VIEWER_H)
    assert node.status_code == 200, node.text
    detail = node.json()
    assert "ref('stg_customers')" in detail["raw_code"]
    assert '"dev"."main"."stg_customers"' in detail["compiled_code"]
    assert detail["parents"] == [
        "model.jaffle_shop.stg_customers",
        "model.jaffle_shop.stg_orders",
        "model.jaffle_shop.stg_payments",
    ]
    assert any(t.startswith("test.jaffle_shop.unique_customers_customer_id") for t in detail["tests"])
    assert {c["name"] for c in detail["catalog"]["columns"]} >= {"customer_id", "number_of_orders"}

    versions = (await client.get(f"{SHOP}/graph/versions", headers=VIEWER_H)).json()["items"]
    assert [v["graph_version"] for v in versions] == [1]
    assert versions[0]["adapter_type"] == "duckdb"


async def test_by_key_ingestion_diff_and_download(client: AsyncTestClient[Litestar]) -> None:
    folder = corpus_path(JAFFLE, "state_modified")
    keys = []
    for name in ("manifest.base.json", "manifest.edited.json"):
        stored = await client.post(
            f"{SHOP}/artifacts?kind=manifest", content=(folder / name).read_bytes(), headers=ADMIN_H
        )
        assert stored.status_code == 201, stored.text
        keys.append(stored.json()["key"])
    for key in keys:
        response = await client.post(f"{SHOP}/ingestions/by-key", json={"manifest": key}, headers=ADMIN_H)
        assert response.status_code == 201, response.text
    diff = (await client.get(f"{SHOP}/graph/diff", params={"from": 1, "to": 2}, headers=VIEWER_H)).json()
    assert [c["unique_id"] for c in diff["changed"] if c["modified"]] == ["model.jaffle_shop.stg_orders"]
    assert diff["added"] == []
    assert diff["removed"] == []
    backwards = await client.get(f"{SHOP}/graph/diff", params={"from": 2, "to": 1}, headers=VIEWER_H)
    assert backwards.status_code == 422
    assert "must not be after" in backwards.json()["detail"]

    ingestions = (await client.get(f"{SHOP}/ingestions", headers=VIEWER_H)).json()["items"]
    assert [i["graph_version"] for i in ingestions] == [2, 1]
    key = ingestions[0]["artifacts"][0]["key"]
    download = await client.get(f"{SHOP}/artifacts/{key}", headers=VIEWER_H)
    assert download.status_code == 200
    assert (
        hashlib.sha256(download.content).hexdigest()
        == hashlib.sha256((folder / "manifest.edited.json").read_bytes()).hexdigest()
    )


async def test_oversized_upload_is_413_and_nothing_is_stored(client: AsyncTestClient[Litestar]) -> None:
    big = b"{" + b" " * 2_100_000 + b"}"
    response = await client.post(
        f"{SHOP}/ingestions", files={"manifest": ("manifest.json", big, "application/json")}, headers=ADMIN_H
    )
    assert response.status_code == 413
    raw = await client.post(f"{SHOP}/artifacts?kind=manifest", content=big, headers=ADMIN_H)
    assert raw.status_code == 413
    assert (await client.get(f"{SHOP}/ingestions", headers=VIEWER_H)).json()["items"] == []


async def test_bad_artifact_is_422_problem(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        f"{SHOP}/ingestions",
        files={"manifest": ("manifest.json", b'{"metadata": {"dbt_schema_version": 1', "application/json")},
        headers=ADMIN_H,
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "invalid_artifact"


async def test_other_tenants_and_viewers_cannot_ingest_or_read(client: AsyncTestClient[Litestar]) -> None:
    await ingest_jaffle(client)
    files = upload(("manifest", corpus_path(JAFFLE, "manifest.json")))
    assert (await client.post(f"{SHOP}/ingestions", files=files, headers=VIEWER_H)).status_code == 403
    assert (await client.post(f"{SHOP}/ingestions", files=files, headers=GLOBEX_H)).status_code == 403
    assert (await client.get(f"{SHOP}/graph", headers=GLOBEX_H)).status_code == 403
    other = await client.get("/api/tenants/globex/projects/shop/graph", headers=GLOBEX_H)
    assert other.status_code == 404


async def test_graph_by_selector(client: AsyncTestClient[Litestar]) -> None:
    await ingest_jaffle(client)
    selected = (await client.get(f"{SHOP}/graph", params={"select": "+orders"}, headers=VIEWER_H)).json()
    ids = {n["node"]["unique_id"] for n in selected["nodes"]}
    assert {"model.jaffle_shop.orders", "model.jaffle_shop.stg_orders", "seed.jaffle_shop.raw_orders"} <= ids
    assert "model.jaffle_shop.customers" not in ids
    assert all(e["parent"] in ids and e["child"] in ids for e in selected["edges"])
    both = await client.get(
        f"{SHOP}/graph", params={"select": "orders", "focus": "model.jaffle_shop.orders"}, headers=VIEWER_H
    )
    assert both.status_code == 422
    bad = await client.get(f"{SHOP}/graph", params={"select": "nosuch:x"}, headers=VIEWER_H)
    assert bad.status_code == 422
