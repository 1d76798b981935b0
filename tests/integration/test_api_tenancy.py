"""Tenancy over HTTP against the real app and PostgreSQL: create/list/get/rename/archive flows, ETag and
If-Match, idempotent retries, tenants and roles, unknown and archived targets, the OpenAPI document."""

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
        yield client


async def test_project_lifecycle_with_etags(client: AsyncTestClient[Litestar]) -> None:
    created = await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{BASE}/projects/shop"
    assert created.headers["etag"] == '"1"'
    body = created.json()
    assert (body["project_id"], body["org_id"], body["status"], body["version"]) == ("shop", "default", "active", 1)
    assert body["repository"] == {"kind": "local", "location": "/srv/dbt/shop"}

    # read-your-writes: the list and the resource show it at once
    listed = await client.get(f"{BASE}/projects", headers=ADMIN_H)
    assert [p["project_id"] for p in listed.json()["items"]] == ["shop"]
    got = await client.get(f"{BASE}/projects/shop", headers=ADMIN_H)
    assert got.headers["etag"] == '"1"'
    assert got.json() == body

    renamed = await client.patch(
        f"{BASE}/projects/shop", json={"name": "Shop 2"}, headers={**ADMIN_H, "If-Match": '"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["etag"] == '"2"'
    assert renamed.json()["name"] == "Shop 2"

    stale = await client.patch(f"{BASE}/projects/shop", json={"name": "Lost"}, headers={**ADMIN_H, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith(PROBLEM)
    assert stale.json()["code"] == "concurrency_conflict"
    assert (await client.get(f"{BASE}/projects/shop", headers=ADMIN_H)).json()["name"] == "Shop 2"

    settings = await client.put(
        f"{BASE}/projects/shop/settings",
        json={
            "repository": "git@github.com:acme/shop.git",
            "ref": "main",
            "roundtrip_level": 2,
            "editable_models": ["orders"],
        },
        headers={**ADMIN_H, "If-Match": 'W/"2"'},
    )
    assert settings.status_code == 200, settings.text
    assert settings.headers["etag"] == '"3"'
    assert settings.json()["repository"] == {"kind": "git", "location": "git@github.com:acme/shop.git", "ref": "main"}
    assert settings.json()["editable_models"] == ["orders"]

    archived = await client.post(f"{BASE}/projects/shop/archive", json={"reason": "moved"}, headers=ADMIN_H)
    assert archived.status_code == 200, archived.text
    assert (archived.json()["status"], archived.headers["etag"]) == ("archived", '"4"')

    again = await client.post(f"{BASE}/projects/shop/archive", headers=ADMIN_H)
    assert again.status_code == 409
    assert again.json()["code"] == "archived"

    active = await client.get(f"{BASE}/projects", params={"status": "active"}, headers=ADMIN_H)
    assert active.json()["items"] == []


async def test_an_archived_project_refuses_environment_creation(client: AsyncTestClient[Litestar]) -> None:
    await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
    await client.post(f"{BASE}/projects/shop/archive", headers=ADMIN_H)
    refused = await client.post(f"{BASE}/projects/shop/environments", json=env_body(), headers=ADMIN_H)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["code"] == "archived"
    assert "project 'shop' is archived" in refused.json()["detail"]
    listed = await client.get(f"{BASE}/projects/shop/environments", headers=ADMIN_H)
    assert listed.json()["items"] == []


async def test_environment_lifecycle(client: AsyncTestClient[Litestar]) -> None:
    await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
    created = await client.post(f"{BASE}/projects/shop/environments", json=env_body(), headers=ADMIN_H)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{BASE}/projects/shop/environments/prod"
    env = created.json()
    assert env["target"] == {"database": "ANALYTICS", "warehouse": "TRANSFORM", "threads": 8}
    assert env["secrets"]["password"]["secret_id"] == "vault:kv/dbt/prod"
    assert env["production"] is True

    got = await client.get(f"{BASE}/projects/shop/environments/prod", headers=VIEWER_H)
    assert (got.status_code, got.headers["etag"]) == (200, '"1"')

    renamed = await client.patch(
        f"{BASE}/projects/shop/environments/prod", json={"name": "Prod"}, headers={**ADMIN_H, "If-Match": '"1"'}
    )
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Prod")
    changed = await client.put(
        f"{BASE}/projects/shop/environments/prod/settings",
        json={"adapter_type": "snowflake", "target": {"threads": 4}, "production": False},
        headers=ADMIN_H,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["target"], changed.json()["production"], changed.json()["version"]) == (
        {"threads": 4},
        False,
        3,
    )
    archived = await client.post(f"{BASE}/projects/shop/environments/prod/archive", headers=ADMIN_H)
    assert archived.json()["status"] == "archived"
    duplicate = await client.post(f"{BASE}/projects/shop/environments", json=env_body(), headers=ADMIN_H)
    assert duplicate.status_code == 409
    assert "environment 'prod' of project 'shop' already exists" in duplicate.json()["detail"]


async def test_org_flow_and_an_archived_org_refuses_projects(client: AsyncTestClient[Litestar]) -> None:
    created = await client.post(f"{BASE}/orgs", json={"org_id": "sales", "name": "Sales"}, headers=ADMIN_H)
    assert (created.status_code, created.headers["location"]) == (201, f"{BASE}/orgs/sales")
    listed = await client.get(f"{BASE}/orgs", headers=VIEWER_H)
    assert [o["org_id"] for o in listed.json()["items"]] == ["default", "sales"]
    renamed = await client.patch(f"{BASE}/orgs/sales", json={"name": "Revenue"}, headers=ADMIN_H)
    assert renamed.json()["name"] == "Revenue"
    await client.post(f"{BASE}/orgs/sales/archive", headers=ADMIN_H)
    refused = await client.post(f"{BASE}/projects", json=project_body(org_id="sales"), headers=ADMIN_H)
    assert refused.status_code == 409
    assert "org 'sales' is archived" in refused.json()["detail"]


async def test_the_tenant_itself(client: AsyncTestClient[Litestar]) -> None:
    got = await client.get(BASE, headers=VIEWER_H)
    assert (got.status_code, got.json()["tenant_id"], got.headers["etag"]) == (200, "acme", '"1"')
    renamed = await client.patch(BASE, json={"name": "ACME Corp"}, headers={**ADMIN_H, "If-Match": '"1"'})
    assert (renamed.status_code, renamed.json()["name"], renamed.headers["etag"]) == (200, "ACME Corp", '"2"')


async def test_a_retried_create_with_the_same_idempotency_key_returns_the_same_result(
    client: AsyncTestClient[Litestar],
) -> None:
    headers = {**ADMIN_H, "Idempotency-Key": "create-shop-7f3a"}
    first = await client.post(f"{BASE}/projects", json=project_body(), headers=headers)
    retry = await client.post(f"{BASE}/projects", json=project_body(), headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert (retry.headers["etag"], retry.headers["location"]) == (first.headers["etag"], first.headers["location"])
    events = await client.get(f"{BASE}/events", params={"stream": "project-shop"}, headers=ADMIN_H)
    assert len(events.json()["items"]) == 1

    without_key = await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
    assert without_key.status_code == 409
    assert without_key.json()["detail"] == "project 'shop' already exists"


async def test_another_tenants_id_is_forbidden(client: AsyncTestClient[Litestar]) -> None:
    await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
    for method, path, body in [
        ("GET", f"{BASE}/projects", None),
        ("GET", f"{BASE}/projects/shop", None),
        ("POST", f"{BASE}/projects", project_body("evil")),
        ("POST", f"{BASE}/projects/shop/archive", None),
        ("GET", f"{BASE}/events", None),
        ("GET", "/api/tenants/nonexistent/projects", None),
    ]:
        response = await client.request(method, path, json=body, headers=GLOBEX_H)
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["code"] == "forbidden"
    assert (await client.get(f"{BASE}/projects/shop", headers=ADMIN_H)).json()["status"] == "active"
    own = await client.get("/api/tenants/globex/projects", headers=GLOBEX_H)
    assert own.json()["items"] == []


async def test_a_viewer_reads_but_cannot_write(client: AsyncTestClient[Litestar]) -> None:
    await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
    assert (await client.get(f"{BASE}/projects", headers=VIEWER_H)).status_code == 200
    for method, path, body in [
        ("POST", f"{BASE}/projects", project_body("other")),
        ("PATCH", f"{BASE}/projects/shop", {"name": "x"}),
        ("PUT", f"{BASE}/projects/shop/settings", {"repository": "/srv/x"}),
        ("POST", f"{BASE}/projects/shop/archive", None),
        ("POST", f"{BASE}/orgs", {"org_id": "x", "name": "x"}),
        ("POST", f"{BASE}/projects/shop/environments", env_body()),
    ]:
        response = await client.request(method, path, json=body, headers=VIEWER_H)
        assert response.status_code == 403, (method, path, response.text)
        assert "needs one of the roles" in response.json()["detail"]
    got = (await client.get(f"{BASE}/projects/shop", headers=VIEWER_H)).json()
    assert (got["name"], got["version"]) == ("Shop", 1)


async def test_missing_or_unknown_credentials_are_unauthorized(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get(f"{BASE}/projects")).status_code == 401
    unknown = await client.get(f"{BASE}/projects", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"] == "Bearer"


async def test_unknown_targets_are_not_found(client: AsyncTestClient[Litestar]) -> None:
    for method, path, body in [
        ("GET", f"{BASE}/projects/ghost", None),
        ("PATCH", f"{BASE}/projects/ghost", {"name": "x"}),
        ("POST", f"{BASE}/projects/ghost/archive", None),
        ("PUT", f"{BASE}/projects/ghost/settings", {"repository": "/srv/x"}),
        ("GET", f"{BASE}/projects/ghost/environments", None),
        ("POST", f"{BASE}/projects/ghost/environments", env_body()),
        ("GET", f"{BASE}/orgs/ghost", None),
        ("POST", f"{BASE}/projects", project_body(org_id="ghost")),
    ]:
        response = await client.request(method, path, json=body, headers=ADMIN_H)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert "'ghost' not found" in response.json()["detail"]


async def test_the_openapi_document_lists_the_tenancy_routes(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    expected = {
        "/api/tenants/{tenant_id}": {"get", "patch"},
        "/api/tenants/{tenant_id}/orgs": {"get", "post"},
        "/api/tenants/{tenant_id}/orgs/{org_id}": {"get", "patch"},
        "/api/tenants/{tenant_id}/projects": {"get", "post"},
        "/api/tenants/{tenant_id}/projects/{project_id}": {"get", "patch"},
        "/api/tenants/{tenant_id}/projects/{project_id}/settings": {"put"},
        "/api/tenants/{tenant_id}/projects/{project_id}/archive": {"post"},
        "/api/tenants/{tenant_id}/projects/{project_id}/environments": {"get", "post"},
        "/api/tenants/{tenant_id}/projects/{project_id}/environments/{environment_id}": {"get", "patch"},
        "/api/tenants/{tenant_id}/projects/{project_id}/environments/{environment_id}/settings": {"put"},
        "/api/tenants/{tenant_id}/events": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    schemas = document["components"]["schemas"]
    assert "CreateProjectRequest" in schemas
    assert "ProjectView" in schemas
