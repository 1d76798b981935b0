"""Shared set-up of the API tests: the real app on a private database, two tenants, bearer tokens.

The runtime is opened inside the app's lifespan (the test client runs the app in its own event loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from services.api.app import create_app
from services.bootstrap import ensure_tenant
from services.runtime import Runtime
from services.shared.auth import ADMIN, VIEWER, Principal, TokenTable
from services.shared.settings import Settings

TOKENS = {
    "acme-admin-token": Principal(subject="alice", display_name="Alice", tenant_id="acme", roles=(ADMIN,)),
    "acme-viewer-token": Principal(subject="victor", display_name="Victor", tenant_id="acme", roles=(VIEWER,)),
    "globex-admin-token": Principal(subject="gina", display_name="Gina", tenant_id="globex", roles=(ADMIN,)),
    "acme-approver-token": Principal(subject="bob", display_name="Bob", tenant_id="acme", roles=("approver",)),
    "acme-approver2-token": Principal(subject="carol", display_name="Carol", tenant_id="acme", roles=("approver",)),
}
ADMIN_H = {"Authorization": "Bearer acme-admin-token"}
VIEWER_H = {"Authorization": "Bearer acme-viewer-token"}
GLOBEX_H = {"Authorization": "Bearer globex-admin-token"}
APPROVER_H = {"Authorization": "Bearer acme-approver-token"}
APPROVER2_H = {"Authorization": "Bearer acme-approver2-token"}
PROBLEM = "application/problem+json"


async def open_with_tenants(settings: Settings) -> Runtime:
    runtime = await Runtime.open_with_workers(settings)
    for tenant in ("acme", "globex"):
        await ensure_tenant(runtime.store, tenant, tenant.title(), org_id="default", org_name="Default")
    return runtime


@asynccontextmanager
async def api_client(pg_url: str, **settings: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(
        Settings(database_url=pg_url, dev_principal=False, **settings),
        tokens=TokenTable(TOKENS),
        open_runtime=open_with_tenants,
    )
    async with AsyncTestClient(app) as client:
        yield client


def project_body(project_id: str = "shop", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"project_id": project_id, "name": "Shop", "repository": "/srv/dbt/shop"}
    body.update(changes)
    return body


def env_body(environment_id: str = "prod", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "environment_id": environment_id,
        "name": "Production",
        "adapter_type": "snowflake",
        "target": {"database": "ANALYTICS", "warehouse": "TRANSFORM", "threads": 8},
        "secrets": {"password": {"secret_id": "vault:kv/dbt/prod", "fingerprint": "sha256:" + "ab" * 32}},
        "production": True,
    }
    body.update(changes)
    return body
