"""The tenancy read model on real PostgreSQL: rows and versions after each command, tenant-scoped
queries, idempotent apply, and replay from position 0 giving the same read model."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from contracts.commands.tenancy import (
    ArchiveEnvironment,
    ArchiveOrg,
    ChangeEnvironmentSettings,
    ChangeProjectSettings,
    CreateEnvironment,
    CreateOrg,
    CreateProject,
    RenameOrg,
    RenameProject,
    RenameTenant,
)
from contracts.envelope import ORIGIN, Actor
from contracts.events.tenancy import SecretRef
from projections.replay import replay
from projections.runner import ProjectionRunner
from projections.tenancy import queries
from projections.tenancy.projector import TABLES, TenancyProjector
from services.bootstrap import ensure_tenant
from services.shared.commands import CommandContext
from services.shared.eventstore.postgres import PostgresEventStore
from services.tenancy import handlers

CTX = CommandContext(actor=Actor(subject="alice"), correlation_id=uuid.uuid4())
FINGERPRINT = "sha256:" + "0f" * 32


async def populate(store: PostgresEventStore) -> None:
    await ensure_tenant(store, "acme", "Acme", org_id="sales", org_name="Sales")
    await ensure_tenant(store, "globex", "Globex", org_id="sales", org_name="Globex Sales")
    acme = store.for_tenant("acme")
    await handlers.handle_rename_tenant(acme, RenameTenant(tenant_id="acme", name="ACME Corp"), CTX)
    await handlers.handle_create_org(acme, CreateOrg(org_id="ops", name="Ops"), CTX)
    await handlers.handle_rename_org(acme, RenameOrg(org_id="ops", name="Operations"), CTX)
    await handlers.handle_archive_org(acme, ArchiveOrg(org_id="ops"), CTX)
    await handlers.handle_create_project(
        acme, CreateProject(project_id="shop", org_id="sales", name="Shop", repository="/srv/shop"), CTX
    )
    await handlers.handle_rename_project(acme, RenameProject(project_id="shop", name="Shop <b>'; --"), CTX)
    await handlers.handle_change_project_settings(
        acme,
        ChangeProjectSettings(
            project_id="shop",
            repository="https://github.com/acme/shop.git",
            ref="main",
            roundtrip_level=2,
            editable_models=("orders", "customers"),
        ),
        CTX,
    )
    await handlers.handle_create_environment(
        acme,
        CreateEnvironment(
            project_id="shop",
            environment_id="prod",
            name="Prod",
            adapter_type="snowflake",
            target={"database": "ANALYTICS", "threads": 8, "client_session_keep_alive": True},
            secrets={"password": SecretRef(secret_id="vault:kv/prod", fingerprint=FINGERPRINT)},
            production=True,
        ),
        CTX,
    )
    await handlers.handle_change_environment_settings(
        acme,
        ChangeEnvironmentSettings(
            project_id="shop", environment_id="prod", adapter_type="snowflake", target={"threads": 16}, production=True
        ),
        CTX,
    )
    await handlers.handle_create_environment(
        acme, CreateEnvironment(project_id="shop", environment_id="dev", name="Dev", adapter_type="duckdb"), CTX
    )
    await handlers.handle_archive_environment(acme, ArchiveEnvironment(project_id="shop", environment_id="dev"), CTX)


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    result = {}
    for table in TABLES:
        rows = await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
        result[table] = [dict(row.items()) for row in rows]
    return result


@pytest.fixture
async def caught_up(store: PostgresEventStore) -> PostgresEventStore:
    await populate(store)
    await ProjectionRunner(TenancyProjector(), store.pool, store).catch_up()
    return store


async def test_rows_follow_the_streams(caught_up: PostgresEventStore) -> None:
    db = caught_up.pool
    tenant = await queries.get_tenant(db, "acme")
    assert tenant is not None
    assert (tenant.name, tenant.version, tenant.status) == ("ACME Corp", 2, "active")
    ops = await queries.get_org(db, "acme", "ops")
    assert ops is not None
    assert (ops.name, ops.status, ops.version) == ("Operations", "archived", 3)
    assert ops.archived_at is not None
    project = await queries.get_project(db, "acme", "shop")
    assert project is not None
    assert project.name == "Shop <b>'; --"
    assert (project.version, project.roundtrip_level, project.editable_models) == (3, 2, ["customers", "orders"])
    assert (project.repository.kind, project.repository.location, project.repository.ref) == (
        "git",
        "https://github.com/acme/shop.git",
        "main",
    )
    prod = await queries.get_environment(db, "acme", "shop", "prod")
    assert prod is not None
    assert (prod.version, prod.target, prod.secrets, prod.production) == (2, {"threads": 16}, {}, True)
    dev = await queries.get_environment(db, "acme", "shop", "dev")
    assert dev is not None
    assert dev.status == "archived"


async def test_queries_are_tenant_scoped(caught_up: PostgresEventStore) -> None:
    db = caught_up.pool
    assert [o.org_id for o in await queries.list_orgs(db, "acme")] == ["ops", "sales"]
    assert [(o.tenant_id, o.name) for o in await queries.list_orgs(db, "globex")] == [("globex", "Globex Sales")]
    assert await queries.get_project(db, "globex", "shop") is None
    assert await queries.list_projects(db, "globex") == []
    assert await queries.list_environments(db, "globex", "shop") == []
    assert [p.project_id for p in await queries.list_projects(db, "acme", org_id="sales")] == ["shop"]
    assert await queries.list_projects(db, "acme", org_id="ops") == []


async def test_list_filters_and_pages(caught_up: PostgresEventStore) -> None:
    db = caught_up.pool
    assert [e.environment_id for e in await queries.list_environments(db, "acme", "shop")] == ["dev", "prod"]
    assert [e.environment_id for e in await queries.list_environments(db, "acme", "shop", status="active")] == ["prod"]
    first = await queries.list_environments(db, "acme", "shop", limit=1)
    rest = await queries.list_environments(db, "acme", "shop", after=first[-1].environment_id, limit=1)
    assert [e.environment_id for e in first + rest] == ["dev", "prod"]


async def test_applying_an_event_twice_changes_nothing(caught_up: PostgresEventStore) -> None:
    before = await snapshot(caught_up.pool)
    projector = TenancyProjector()
    async with caught_up.pool.acquire() as conn, conn.transaction():
        for event in await caught_up.read_all(ORIGIN):
            await projector.apply(conn, event)
    assert await snapshot(caught_up.pool) == before


async def test_replay_from_zero_rebuilds_the_same_read_model(caught_up: PostgresEventStore) -> None:
    before = await snapshot(caught_up.pool)
    assert before["tenancy_projects"]
    report = await replay(caught_up, [TenancyProjector()])
    assert [p.name for p in report.projections] == ["tenancy"]
    assert await snapshot(caught_up.pool) == before


async def test_an_incremental_catch_up_equals_one_rebuild(store: PostgresEventStore) -> None:
    runner = ProjectionRunner(TenancyProjector(), store.pool, store, page_size=2)
    await ensure_tenant(store, "acme", "Acme", org_id="sales", org_name="Sales")
    await runner.catch_up()
    await populate(store)
    await runner.catch_up()
    incremental = await snapshot(store.pool)
    await replay(store, [TenancyProjector()])
    assert await snapshot(store.pool) == incremental
