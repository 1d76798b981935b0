"""Tenancy handlers on the real PostgreSQL store: creation conflicts, ancestors, If-Match, idempotency,
envelope metadata, racing creators, and the idempotent bootstrap."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts.commands.tenancy import (
    ArchiveProject,
    CreateEnvironment,
    CreateOrg,
    CreateProject,
    CreateTenant,
    RenameProject,
)
from contracts.envelope import Actor
from contracts.events.tenancy import ProjectCreated, ProjectRenamed
from services.bootstrap import bootstrap, ensure_tenant
from services.shared.commands import CommandContext
from services.shared.errors import (
    AlreadyExistsError,
    ArchivedError,
    ConcurrencyConflictError,
    ForbiddenError,
    NotFoundError,
)
from services.shared.eventstore.postgres import PostgresEventStore, PostgresTenantStore
from services.shared.settings import Settings
from services.tenancy import handlers

ALICE = Actor(subject="alice", display_name="Alice", roles=("admin",))


def ctx(key: str | None = None) -> CommandContext:
    return CommandContext(actor=ALICE, correlation_id=uuid.uuid4(), idempotency_key=key)


@pytest.fixture
async def acme(store: PostgresEventStore) -> PostgresTenantStore:
    await ensure_tenant(store, "acme", "Acme", org_id="sales", org_name="Sales")
    return store.for_tenant("acme")


def shop(**changes: object) -> CreateProject:
    values: dict[str, object] = {"project_id": "shop", "org_id": "sales", "name": "Shop", "repository": "/srv/shop"}
    values.update(changes)
    return CreateProject(**values)  # type: ignore[arg-type]


async def test_a_created_project_is_stored_with_actor_and_scope(acme: PostgresTenantStore) -> None:
    result = await handlers.handle_create_project(acme, shop(), ctx())
    assert (result.stream_id, result.version) == ("project-shop", 1)
    [recorded] = await acme.read_stream("project-shop")
    assert isinstance(recorded.payload, ProjectCreated)
    assert recorded.metadata.actor == ALICE
    assert (recorded.tenant_id, recorded.metadata.org_id, recorded.metadata.project_id) == ("acme", "sales", "shop")


async def test_a_second_create_is_refused_naming_the_id_and_writes_nothing(acme: PostgresTenantStore) -> None:
    await handlers.handle_create_project(acme, shop(), ctx())
    with pytest.raises(AlreadyExistsError, match="project 'shop' already exists"):
        await handlers.handle_create_project(acme, shop(name="Other"), ctx())
    assert await acme.stream_version("project-shop") == 1


async def test_racing_creates_exactly_one_wins(acme: PostgresTenantStore) -> None:
    outcomes = await asyncio.gather(
        *(handlers.handle_create_project(acme, shop(name=f"Shop {i}"), ctx()) for i in range(8)),
        return_exceptions=True,
    )
    wins = [o for o in outcomes if not isinstance(o, BaseException)]
    losses = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(o, AlreadyExistsError) for o in losses), losses
    assert await acme.stream_version("project-shop") == 1


async def test_a_retried_create_with_the_same_idempotency_key_is_a_no_op(acme: PostgresTenantStore) -> None:
    first = await handlers.handle_create_project(acme, shop(), ctx("create-shop-1"))
    again = await handlers.handle_create_project(acme, shop(), ctx("create-shop-1"))
    assert (first.version, again.version, again.deduplicated) == (1, 1, True)
    assert len(await acme.read_stream("project-shop")) == 1


async def test_if_match_on_a_moved_stream_is_a_conflict_and_writes_nothing(acme: PostgresTenantStore) -> None:
    await handlers.handle_create_project(acme, shop(), ctx())
    await handlers.handle_rename_project(acme, RenameProject(project_id="shop", name="A"), ctx(), expected_version=1)
    with pytest.raises(ConcurrencyConflictError, match="at version 2, not 1"):
        await handlers.handle_rename_project(
            acme, RenameProject(project_id="shop", name="B"), ctx(), expected_version=1
        )
    events = await acme.read_stream("project-shop")
    assert [type(e.payload) for e in events] == [ProjectCreated, ProjectRenamed]


async def test_an_archived_project_refuses_new_environments(acme: PostgresTenantStore) -> None:
    await handlers.handle_create_project(acme, shop(), ctx())
    await handlers.handle_archive_project(acme, ArchiveProject(project_id="shop"), ctx())
    env = CreateEnvironment(project_id="shop", environment_id="dev", name="Dev", adapter_type="duckdb")
    with pytest.raises(ArchivedError, match="project 'shop' is archived; it accepts no new environments"):
        await handlers.handle_create_environment(acme, env, ctx())
    assert await acme.stream_version("environment-shop.dev") == 0


async def test_an_unknown_org_or_project_is_not_found(acme: PostgresTenantStore) -> None:
    with pytest.raises(NotFoundError, match="org 'nope' not found"):
        await handlers.handle_create_project(acme, shop(org_id="nope"), ctx())
    env = CreateEnvironment(project_id="ghost", environment_id="dev", name="Dev", adapter_type="duckdb")
    with pytest.raises(NotFoundError, match="project 'ghost' not found"):
        await handlers.handle_create_environment(acme, env, ctx())


async def test_tenants_do_not_see_each_others_orgs(store: PostgresEventStore, acme: PostgresTenantStore) -> None:
    await ensure_tenant(store, "globex", "Globex", org_id="ops", org_name="Ops")
    globex = store.for_tenant("globex")
    with pytest.raises(NotFoundError, match="org 'sales' not found"):
        await handlers.handle_create_project(globex, shop(), ctx())
    await handlers.handle_create_project(globex, shop(org_id="ops"), ctx())
    await handlers.handle_create_project(acme, shop(), ctx())  # same id, other tenant: no clash


async def test_a_tenant_is_only_created_in_its_own_scope(store: PostgresEventStore) -> None:
    with pytest.raises(ForbiddenError):
        await handlers.handle_create_tenant(store.for_tenant("acme"), CreateTenant(tenant_id="globex", name="G"), ctx())


async def test_bootstrap_is_idempotent_and_safe_when_processes_start_together(store: PostgresEventStore) -> None:
    settings = Settings(database_url="unused")
    results = await asyncio.gather(*(bootstrap(store, settings) for _ in range(6)))
    assert sum(results) >= 1
    assert await bootstrap(store, settings) is False
    default = store.for_tenant("default")
    assert await default.stream_version("tenant-default") == 1
    assert await default.stream_version("org-default") == 1
    # and the default org accepts projects
    await handlers.handle_create_org(default, CreateOrg(org_id="extra", name="Extra"), ctx())
