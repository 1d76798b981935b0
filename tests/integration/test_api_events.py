"""``GET /api/tenants/{t}/events``: the tenant's events with envelope and payload, filters, paging by
cursor, and no view of another tenant's events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.api_support import (
    ADMIN_H,
    GLOBEX_H,
    PROBLEM,
    VIEWER_H,
    api_client,
    env_body,
    project_body,
)

BASE = "/api/tenants/acme"


@pytest.fixture
async def client(pg_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url) as client:
        headers = {**ADMIN_H, "X-Correlation-Id": "6a0c3a43-7c7e-4b4e-9d7f-2f1c9b1e0a11"}
        await client.post(f"{BASE}/projects", json=project_body(), headers=headers)
        await client.patch(f"{BASE}/projects/shop", json={"name": "Shop 2"}, headers=ADMIN_H)
        await client.post(f"{BASE}/projects/shop/environments", json=env_body(), headers=ADMIN_H)
        await client.post("/api/tenants/globex/projects", json=project_body("secret_globex"), headers=GLOBEX_H)
        yield client


async def test_the_log_shows_envelope_and_payload_in_order(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(f"{BASE}/events", headers=VIEWER_H)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [e["type"] for e in items] == [
        "tenancy.tenant_created.v1",
        "tenancy.org_created.v1",
        "tenancy.project_created.v1",
        "tenancy.project_renamed.v1",
        "tenancy.environment_created.v1",
    ]
    created = items[2]
    assert (created["stream_id"], created["version"], created["tenant_id"]) == ("project-shop", 1, "acme")
    assert created["metadata"]["actor"] == {"subject": "alice", "display_name": "Alice", "roles": ["admin"]}
    assert created["metadata"]["correlation_id"] == "6a0c3a43-7c7e-4b4e-9d7f-2f1c9b1e0a11"
    assert created["metadata"]["project_id"] == "shop"
    assert created["payload"]["repository"] == {"kind": "local", "location": "/srv/dbt/shop"}
    env = items[4]
    assert env["metadata"]["environment_id"] == "prod"
    assert env["payload"]["secrets"]["password"]["fingerprint"].startswith("sha256:")
    assert [e["global_position"] for e in items] == sorted(e["global_position"] for e in items)
    assert response.json()["next_after"] is None


async def test_filters_by_stream_and_type(client: AsyncTestClient[Litestar]) -> None:
    by_stream = (await client.get(f"{BASE}/events", params={"stream": "project-shop"}, headers=ADMIN_H)).json()
    assert [(e["stream_id"], e["version"]) for e in by_stream["items"]] == [("project-shop", 1), ("project-shop", 2)]
    by_type = await client.get(
        f"{BASE}/events",
        params=[("type", "tenancy.project_renamed.v1"), ("type", "tenancy.environment_created.v1")],
        headers=ADMIN_H,
    )
    assert [e["type"] for e in by_type.json()["items"]] == [
        "tenancy.project_renamed.v1",
        "tenancy.environment_created.v1",
    ]
    nothing = await client.get(f"{BASE}/events", params={"type": "no.such_type.v1"}, headers=ADMIN_H)
    assert nothing.json()["items"] == []


async def test_pages_by_cursor(client: AsyncTestClient[Litestar]) -> None:
    seen: list[str] = []
    after = "0"
    for _ in range(10):
        page = (await client.get(f"{BASE}/events", params={"after": after, "limit": "2"}, headers=ADMIN_H)).json()
        seen += [e["type"] for e in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    everything = (await client.get(f"{BASE}/events", headers=ADMIN_H)).json()["items"]
    assert seen == [e["type"] for e in everything]
    assert len(seen) == 5


async def test_another_tenants_events_are_invisible(client: AsyncTestClient[Litestar]) -> None:
    acme = await client.get(f"{BASE}/events", headers=ADMIN_H)
    assert "secret_globex" not in acme.text
    assert (await client.get(f"{BASE}/events", headers=GLOBEX_H)).status_code == 403
    globex = (await client.get("/api/tenants/globex/events", headers=GLOBEX_H)).json()["items"]
    assert {e["tenant_id"] for e in globex} == {"globex"}
    assert "project-shop" not in {e["stream_id"] for e in globex}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"after": "nonsense"}, 422),
        ({"after": "1:-2"}, 422),
        ({"after": "99999999999999999999:1"}, 422),
        ({"after": "1:2" + "0" * 40}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "5000"}, 400),
    ],
)
async def test_bad_parameters_are_refused(
    client: AsyncTestClient[Litestar], params: dict[str, str], status: int
) -> None:
    response = await client.get(f"{BASE}/events", params=params, headers=ADMIN_H)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
