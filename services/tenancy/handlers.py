"""Tenancy command handlers: validate ids, load the ancestors a rule needs, then run the pure decider
through ``services.shared.commands.execute`` (load -> fold -> decide -> append with the expected version).

Creation appends with ``expected_version=NO_STREAM``: a second create of the same id, even one racing the
first, is refused with ``AlreadyExistsError`` naming the id (a retry with the same idempotency key is a
no-op instead). Ancestor checks read the ancestors' streams just before deciding; a parent archived in the
same instant as a child is created may still let that child in (accepted: archiving closes the door to
new children, it does not delete anything).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from contracts.base import Event
from contracts.commands.tenancy import (
    ArchiveEnvironment,
    ArchiveOrg,
    ArchiveProject,
    ArchiveTenant,
    ChangeEnvironmentSettings,
    ChangeProjectSettings,
    CreateEnvironment,
    CreateOrg,
    CreateProject,
    CreateTenant,
    RenameEnvironment,
    RenameOrg,
    RenameProject,
    RenameTenant,
)
from contracts.envelope import Scope
from services.shared.commands import CommandContext, CommandResult, execute, load
from services.shared.errors import AlreadyExistsError, ConcurrencyConflictError, ForbiddenError
from services.shared.eventstore.port import NO_STREAM, TenantEventStore
from services.tenancy import domain
from services.tenancy.domain import (
    EnvironmentState,
    OrgState,
    ProjectState,
    TenantState,
    environment_stream,
    evolve_environment,
    evolve_org,
    evolve_project,
    evolve_tenant,
    org_stream,
    project_stream,
    tenant_stream,
)
from services.tenancy.rules import check_id

S = TypeVar("S")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


async def _create(
    store: TenantEventStore,
    stream: str,
    label: str,
    *,
    evolve: Callable[[S | None, Event], S | None],
    decide: Callable[[S | None], Sequence[Event]],
    scope: Scope,
    context: CommandContext,
    now: datetime,
) -> CommandResult:
    try:
        return await execute(
            store,
            stream,
            initial=None,
            evolve=evolve,
            decide=decide,
            scope=scope,
            context=context,
            expected_version=NO_STREAM,
            now=now,
        )
    except ConcurrencyConflictError as exc:
        raise AlreadyExistsError(f"{label} already exists", stream_id=stream) from exc


async def load_tenant(store: TenantEventStore) -> TenantState | None:
    return (await load(store, tenant_stream(store.tenant_id), None, evolve_tenant)).state


async def load_org(store: TenantEventStore, org_id: str) -> OrgState | None:
    return (await load(store, org_stream(org_id), None, evolve_org)).state


async def load_project(store: TenantEventStore, project_id: str) -> ProjectState | None:
    return (await load(store, project_stream(project_id), None, evolve_project)).state


async def load_environment(store: TenantEventStore, project_id: str, environment_id: str) -> EnvironmentState | None:
    return (await load(store, environment_stream(project_id, environment_id), None, evolve_environment)).state


# -- tenant ----------------------------------------------------------------------------------


async def handle_create_tenant(
    store: TenantEventStore, cmd: CreateTenant, context: CommandContext, *, now: datetime | None = None
) -> CommandResult:
    """A tenant's stream lives in its own slice of the store, so ``store`` must be scoped to that tenant."""
    check_id("tenant", cmd.tenant_id)
    if cmd.tenant_id != store.tenant_id:
        raise ForbiddenError(f"tenant {cmd.tenant_id!r} can only be created in its own scope, not {store.tenant_id!r}")
    at = _now(now)
    return await _create(
        store,
        tenant_stream(cmd.tenant_id),
        f"tenant {cmd.tenant_id!r}",
        evolve=evolve_tenant,
        decide=lambda state: domain.create_tenant(state, cmd, now=at),
        scope=Scope(tenant_id=store.tenant_id),
        context=context,
        now=at,
    )


async def handle_rename_tenant(
    store: TenantEventStore,
    cmd: RenameTenant,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    at = _now(now)
    return await execute(
        store,
        tenant_stream(cmd.tenant_id),
        initial=None,
        evolve=evolve_tenant,
        decide=lambda state: domain.rename_tenant(state, cmd, now=at),
        scope=Scope(tenant_id=store.tenant_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


async def handle_archive_tenant(
    store: TenantEventStore,
    cmd: ArchiveTenant,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    at = _now(now)
    return await execute(
        store,
        tenant_stream(cmd.tenant_id),
        initial=None,
        evolve=evolve_tenant,
        decide=lambda state: domain.archive_tenant(state, cmd, now=at),
        scope=Scope(tenant_id=store.tenant_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


# -- org -------------------------------------------------------------------------------------


async def handle_create_org(
    store: TenantEventStore, cmd: CreateOrg, context: CommandContext, *, now: datetime | None = None
) -> CommandResult:
    stream = org_stream(cmd.org_id)
    at = _now(now)
    tenant = await load_tenant(store)
    return await _create(
        store,
        stream,
        f"org {cmd.org_id!r}",
        evolve=evolve_org,
        decide=lambda state: domain.create_org(state, cmd, tenant_id=store.tenant_id, tenant=tenant, now=at),
        scope=Scope(tenant_id=store.tenant_id, org_id=cmd.org_id),
        context=context,
        now=at,
    )


async def handle_rename_org(
    store: TenantEventStore,
    cmd: RenameOrg,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    at = _now(now)
    return await execute(
        store,
        org_stream(cmd.org_id),
        initial=None,
        evolve=evolve_org,
        decide=lambda state: domain.rename_org(state, cmd, now=at),
        scope=Scope(tenant_id=store.tenant_id, org_id=cmd.org_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


async def handle_archive_org(
    store: TenantEventStore,
    cmd: ArchiveOrg,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    at = _now(now)
    return await execute(
        store,
        org_stream(cmd.org_id),
        initial=None,
        evolve=evolve_org,
        decide=lambda state: domain.archive_org(state, cmd, now=at),
        scope=Scope(tenant_id=store.tenant_id, org_id=cmd.org_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


# -- project ---------------------------------------------------------------------------------


async def handle_create_project(
    store: TenantEventStore, cmd: CreateProject, context: CommandContext, *, now: datetime | None = None
) -> CommandResult:
    stream = project_stream(cmd.project_id)
    check_id("org", cmd.org_id)
    at = _now(now)
    tenant = await load_tenant(store)
    org = await load_org(store, cmd.org_id)
    return await _create(
        store,
        stream,
        f"project {cmd.project_id!r}",
        evolve=evolve_project,
        decide=lambda state: domain.create_project(
            state, cmd, tenant_id=store.tenant_id, tenant=tenant, org=org, now=at
        ),
        scope=Scope(tenant_id=store.tenant_id, org_id=cmd.org_id, project_id=cmd.project_id),
        context=context,
        now=at,
    )


async def _project_scope(store: TenantEventStore, project_id: str) -> Scope:
    project = await load_project(store, project_id)
    return Scope(tenant_id=store.tenant_id, org_id=project.org_id if project else None, project_id=project_id)


async def handle_rename_project(
    store: TenantEventStore,
    cmd: RenameProject,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    stream = project_stream(cmd.project_id)
    at = _now(now)
    return await execute(
        store,
        stream,
        initial=None,
        evolve=evolve_project,
        decide=lambda state: domain.rename_project(state, cmd, now=at),
        scope=await _project_scope(store, cmd.project_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


async def handle_change_project_settings(
    store: TenantEventStore,
    cmd: ChangeProjectSettings,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    stream = project_stream(cmd.project_id)
    at = _now(now)
    return await execute(
        store,
        stream,
        initial=None,
        evolve=evolve_project,
        decide=lambda state: domain.change_project_settings(state, cmd, now=at),
        scope=await _project_scope(store, cmd.project_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


async def handle_archive_project(
    store: TenantEventStore,
    cmd: ArchiveProject,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    stream = project_stream(cmd.project_id)
    at = _now(now)
    return await execute(
        store,
        stream,
        initial=None,
        evolve=evolve_project,
        decide=lambda state: domain.archive_project(state, cmd, now=at),
        scope=await _project_scope(store, cmd.project_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


# -- environment -----------------------------------------------------------------------------


async def _environment_scope(store: TenantEventStore, project_id: str, environment_id: str) -> Scope:
    scope = await _project_scope(store, project_id)
    return Scope(tenant_id=scope.tenant_id, org_id=scope.org_id, project_id=project_id, environment_id=environment_id)


async def handle_create_environment(
    store: TenantEventStore, cmd: CreateEnvironment, context: CommandContext, *, now: datetime | None = None
) -> CommandResult:
    stream = environment_stream(cmd.project_id, cmd.environment_id)
    at = _now(now)
    tenant = await load_tenant(store)
    project = await load_project(store, cmd.project_id)
    org = await load_org(store, project.org_id) if project is not None else None
    return await _create(
        store,
        stream,
        f"environment {cmd.environment_id!r} of project {cmd.project_id!r}",
        evolve=evolve_environment,
        decide=lambda state: domain.create_environment(
            state, cmd, tenant_id=store.tenant_id, tenant=tenant, org=org, project=project, now=at
        ),
        scope=Scope(
            tenant_id=store.tenant_id,
            org_id=project.org_id if project else None,
            project_id=cmd.project_id,
            environment_id=cmd.environment_id,
        ),
        context=context,
        now=at,
    )


async def handle_rename_environment(
    store: TenantEventStore,
    cmd: RenameEnvironment,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    stream = environment_stream(cmd.project_id, cmd.environment_id)
    at = _now(now)
    return await execute(
        store,
        stream,
        initial=None,
        evolve=evolve_environment,
        decide=lambda state: domain.rename_environment(state, cmd, now=at),
        scope=await _environment_scope(store, cmd.project_id, cmd.environment_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


async def handle_change_environment_settings(
    store: TenantEventStore,
    cmd: ChangeEnvironmentSettings,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    stream = environment_stream(cmd.project_id, cmd.environment_id)
    at = _now(now)
    return await execute(
        store,
        stream,
        initial=None,
        evolve=evolve_environment,
        decide=lambda state: domain.change_environment_settings(state, cmd, now=at),
        scope=await _environment_scope(store, cmd.project_id, cmd.environment_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )


async def handle_archive_environment(
    store: TenantEventStore,
    cmd: ArchiveEnvironment,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    stream = environment_stream(cmd.project_id, cmd.environment_id)
    at = _now(now)
    return await execute(
        store,
        stream,
        initial=None,
        evolve=evolve_environment,
        decide=lambda state: domain.archive_environment(state, cmd, now=at),
        scope=await _environment_scope(store, cmd.project_id, cmd.environment_id),
        context=context,
        expected_version=expected_version,
        now=at,
    )
