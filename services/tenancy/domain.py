"""The tenancy context's pure core: one state per aggregate, ``evolve`` folds, one decider per command.

Deciders take the current state (``None`` = the stream does not exist), the command and the time, plus the
states of the ancestors where a rule needs them, and return the events to record or raise a
``LockgateError``. They do no I/O; ``services.tenancy.handlers`` loads and appends around them.

Rules: ids are slugs and never change; a command on an unknown target is ``NotFoundError`` and on an
archived one ``ArchivedError``; a new child needs every ancestor to exist and be active (archiving does not
cascade, it only closes the door to new children); renaming to the current name records nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar, assert_never

import msgspec

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
from contracts.events.tenancy import (
    EnvironmentArchived,
    EnvironmentCreated,
    EnvironmentEvent,
    EnvironmentRenamed,
    EnvironmentSettingsChanged,
    OrgArchived,
    OrgCreated,
    OrgEvent,
    OrgRenamed,
    ProjectArchived,
    ProjectCreated,
    ProjectEvent,
    ProjectRenamed,
    ProjectSettingsChanged,
    Repository,
    RoundtripLevel,
    SecretRef,
    TargetValue,
    TenantArchived,
    TenantCreated,
    TenantEvent,
    TenantRenamed,
)
from contracts.ids import StreamId, stream_id
from services.shared.errors import AlreadyExistsError, ArchivedError, ContractViolationError, NotFoundError
from services.tenancy.rules import (
    check_adapter,
    check_id,
    check_name,
    check_reason,
    check_repository,
    check_roundtrip,
    check_secrets,
    check_target,
)

Status = Literal["active", "archived"]


# -- streams ---------------------------------------------------------------------------------


def tenant_stream(tenant_id: str) -> StreamId:
    return stream_id("tenant", check_id("tenant", tenant_id))


def org_stream(org_id: str) -> StreamId:
    return stream_id("org", check_id("org", org_id))


def project_stream(project_id: str) -> StreamId:
    return stream_id("project", check_id("project", project_id))


def environment_stream(project_id: str, environment_id: str) -> StreamId:
    """``environment-<project>.<environment>``: '.' never occurs in a slug, so the key is unambiguous."""
    return stream_id("environment", f"{check_id('project', project_id)}.{check_id('environment', environment_id)}")


# -- states ----------------------------------------------------------------------------------


class TenantState(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    name: str
    status: Status = "active"


class OrgState(msgspec.Struct, frozen=True, kw_only=True):
    org_id: str
    name: str
    status: Status = "active"


class ProjectState(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    org_id: str
    name: str
    repository: Repository
    roundtrip_level: RoundtripLevel
    editable_models: tuple[str, ...]
    status: Status = "active"


class EnvironmentState(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    environment_id: str
    name: str
    adapter_type: str
    target: dict[str, TargetValue]
    secrets: dict[str, SecretRef]
    production: bool
    status: Status = "active"


def _corrupt(stream: str, event: Event) -> ContractViolationError:
    return ContractViolationError(f"{stream} stream holds {type(event).__name__} before its creation event")


def _foreign(stream: str, event: Event) -> ContractViolationError:
    return ContractViolationError(f"{stream} stream holds a foreign event {type(event).__name__}")


# -- evolve ----------------------------------------------------------------------------------


def evolve_tenant(state: TenantState | None, event: Event) -> TenantState | None:
    if not isinstance(event, TenantEvent):
        raise _foreign("tenant", event)
    match event:
        case TenantCreated():
            return TenantState(tenant_id=event.tenant_id, name=event.name)
        case TenantRenamed():
            if state is None:
                raise _corrupt("tenant", event)
            return msgspec.structs.replace(state, name=event.name)
        case TenantArchived():
            if state is None:
                raise _corrupt("tenant", event)
            return msgspec.structs.replace(state, status="archived")
        case _:
            assert_never(event)


def evolve_org(state: OrgState | None, event: Event) -> OrgState | None:
    if not isinstance(event, OrgEvent):
        raise _foreign("org", event)
    match event:
        case OrgCreated():
            return OrgState(org_id=event.org_id, name=event.name)
        case OrgRenamed():
            if state is None:
                raise _corrupt("org", event)
            return msgspec.structs.replace(state, name=event.name)
        case OrgArchived():
            if state is None:
                raise _corrupt("org", event)
            return msgspec.structs.replace(state, status="archived")
        case _:
            assert_never(event)


def evolve_project(state: ProjectState | None, event: Event) -> ProjectState | None:
    if not isinstance(event, ProjectEvent):
        raise _foreign("project", event)
    match event:
        case ProjectCreated():
            return ProjectState(
                project_id=event.project_id,
                org_id=event.org_id,
                name=event.name,
                repository=event.repository,
                roundtrip_level=event.roundtrip_level,
                editable_models=event.editable_models,
            )
        case ProjectRenamed():
            if state is None:
                raise _corrupt("project", event)
            return msgspec.structs.replace(state, name=event.name)
        case ProjectSettingsChanged():
            if state is None:
                raise _corrupt("project", event)
            return msgspec.structs.replace(
                state,
                repository=event.repository,
                roundtrip_level=event.roundtrip_level,
                editable_models=event.editable_models,
            )
        case ProjectArchived():
            if state is None:
                raise _corrupt("project", event)
            return msgspec.structs.replace(state, status="archived")
        case _:
            assert_never(event)


def evolve_environment(state: EnvironmentState | None, event: Event) -> EnvironmentState | None:
    if not isinstance(event, EnvironmentEvent):
        raise _foreign("environment", event)
    match event:
        case EnvironmentCreated():
            return EnvironmentState(
                project_id=event.project_id,
                environment_id=event.environment_id,
                name=event.name,
                adapter_type=event.adapter_type,
                target=event.target,
                secrets=event.secrets,
                production=event.production,
            )
        case EnvironmentRenamed():
            if state is None:
                raise _corrupt("environment", event)
            return msgspec.structs.replace(state, name=event.name)
        case EnvironmentSettingsChanged():
            if state is None:
                raise _corrupt("environment", event)
            return msgspec.structs.replace(
                state,
                adapter_type=event.adapter_type,
                target=event.target,
                secrets=event.secrets,
                production=event.production,
            )
        case EnvironmentArchived():
            if state is None:
                raise _corrupt("environment", event)
            return msgspec.structs.replace(state, status="archived")
        case _:
            assert_never(event)


# -- shared rules ----------------------------------------------------------------------------

_Aggregate = TenantState | OrgState | ProjectState | EnvironmentState
A = TypeVar("A", TenantState, OrgState, ProjectState, EnvironmentState)


def _existing(state: A | None, what: str) -> A:
    if state is None:
        raise NotFoundError(f"{what} not found")
    return state


def _active(state: A | None, what: str) -> A:
    """The target of a command: it must exist and not be archived."""
    current = _existing(state, what)
    if current.status == "archived":
        raise ArchivedError(f"{what} is archived")
    return current


def _open_parent(state: _Aggregate | None, what: str, child: str) -> None:
    """An ancestor of a new child: it must exist and be active."""
    if state is None:
        raise NotFoundError(f"{what} not found")
    if state.status == "archived":
        raise ArchivedError(f"{what} is archived; it accepts no new {child}")


# -- tenant deciders -------------------------------------------------------------------------


def create_tenant(state: TenantState | None, cmd: CreateTenant, *, now: datetime) -> list[Event]:
    tenant_id = check_id("tenant", cmd.tenant_id)
    name = check_name("tenant", cmd.name)
    if state is not None:
        raise AlreadyExistsError(f"tenant {tenant_id!r} already exists", tenant_id=tenant_id)
    return [TenantCreated(tenant_id=tenant_id, name=name, created_at=now)]


def rename_tenant(state: TenantState | None, cmd: RenameTenant, *, now: datetime) -> list[Event]:
    current = _active(state, f"tenant {cmd.tenant_id!r}")
    name = check_name("tenant", cmd.name)
    if name == current.name:
        return []
    return [TenantRenamed(tenant_id=current.tenant_id, name=name, renamed_at=now)]


def archive_tenant(state: TenantState | None, cmd: ArchiveTenant, *, now: datetime) -> list[Event]:
    current = _active(state, f"tenant {cmd.tenant_id!r}")
    return [TenantArchived(tenant_id=current.tenant_id, reason=check_reason(cmd.reason), archived_at=now)]


# -- org deciders ----------------------------------------------------------------------------


def create_org(
    state: OrgState | None, cmd: CreateOrg, *, tenant_id: str, tenant: TenantState | None, now: datetime
) -> list[Event]:
    org_id = check_id("org", cmd.org_id)
    name = check_name("org", cmd.name)
    if state is not None:
        raise AlreadyExistsError(f"org {org_id!r} already exists", org_id=org_id)
    _open_parent(tenant, f"tenant {tenant_id!r}", "orgs")
    return [OrgCreated(org_id=org_id, name=name, created_at=now)]


def rename_org(state: OrgState | None, cmd: RenameOrg, *, now: datetime) -> list[Event]:
    current = _active(state, f"org {cmd.org_id!r}")
    name = check_name("org", cmd.name)
    if name == current.name:
        return []
    return [OrgRenamed(org_id=current.org_id, name=name, renamed_at=now)]


def archive_org(state: OrgState | None, cmd: ArchiveOrg, *, now: datetime) -> list[Event]:
    current = _active(state, f"org {cmd.org_id!r}")
    return [OrgArchived(org_id=current.org_id, reason=check_reason(cmd.reason), archived_at=now)]


# -- project deciders ------------------------------------------------------------------------


def create_project(
    state: ProjectState | None,
    cmd: CreateProject,
    *,
    tenant_id: str,
    tenant: TenantState | None,
    org: OrgState | None,
    now: datetime,
) -> list[Event]:
    project_id = check_id("project", cmd.project_id)
    org_id = check_id("org", cmd.org_id)
    name = check_name("project", cmd.name)
    repository = check_repository(cmd.repository, cmd.ref)
    models = check_roundtrip(cmd.roundtrip_level, cmd.editable_models)
    if state is not None:
        raise AlreadyExistsError(f"project {project_id!r} already exists", project_id=project_id)
    _open_parent(tenant, f"tenant {tenant_id!r}", "projects")
    _open_parent(org, f"org {org_id!r}", "projects")
    return [
        ProjectCreated(
            project_id=project_id,
            org_id=org_id,
            name=name,
            repository=repository,
            roundtrip_level=cmd.roundtrip_level,
            editable_models=models,
            created_at=now,
        )
    ]


def rename_project(state: ProjectState | None, cmd: RenameProject, *, now: datetime) -> list[Event]:
    current = _active(state, f"project {cmd.project_id!r}")
    name = check_name("project", cmd.name)
    if name == current.name:
        return []
    return [ProjectRenamed(project_id=current.project_id, name=name, renamed_at=now)]


def change_project_settings(state: ProjectState | None, cmd: ChangeProjectSettings, *, now: datetime) -> list[Event]:
    current = _active(state, f"project {cmd.project_id!r}")
    repository = check_repository(cmd.repository, cmd.ref)
    models = check_roundtrip(cmd.roundtrip_level, cmd.editable_models)
    if (repository, cmd.roundtrip_level, models) == (
        current.repository,
        current.roundtrip_level,
        current.editable_models,
    ):
        return []
    return [
        ProjectSettingsChanged(
            project_id=current.project_id,
            repository=repository,
            roundtrip_level=cmd.roundtrip_level,
            editable_models=models,
            changed_at=now,
        )
    ]


def archive_project(state: ProjectState | None, cmd: ArchiveProject, *, now: datetime) -> list[Event]:
    current = _active(state, f"project {cmd.project_id!r}")
    return [ProjectArchived(project_id=current.project_id, reason=check_reason(cmd.reason), archived_at=now)]


# -- environment deciders --------------------------------------------------------------------


def _environment_label(project_id: str, environment_id: str) -> str:
    return f"environment {environment_id!r} of project {project_id!r}"


def create_environment(
    state: EnvironmentState | None,
    cmd: CreateEnvironment,
    *,
    tenant_id: str,
    tenant: TenantState | None,
    org: OrgState | None,
    project: ProjectState | None,
    now: datetime,
) -> list[Event]:
    project_id = check_id("project", cmd.project_id)
    environment_id = check_id("environment", cmd.environment_id)
    name = check_name("environment", cmd.name)
    adapter = check_adapter(cmd.adapter_type)
    target = check_target(cmd.target)
    secrets = check_secrets(cmd.secrets, target)
    if state is not None:
        raise AlreadyExistsError(
            f"{_environment_label(project_id, environment_id)} already exists",
            project_id=project_id,
            environment_id=environment_id,
        )
    _open_parent(tenant, f"tenant {tenant_id!r}", "environments")
    _open_parent(project, f"project {project_id!r}", "environments")
    assert project is not None  # noqa: S101 - _open_parent refused None
    _open_parent(org, f"org {project.org_id!r}", "environments")
    return [
        EnvironmentCreated(
            project_id=project_id,
            environment_id=environment_id,
            name=name,
            adapter_type=adapter,
            target=target,
            secrets=secrets,
            production=cmd.production,
            created_at=now,
        )
    ]


def rename_environment(state: EnvironmentState | None, cmd: RenameEnvironment, *, now: datetime) -> list[Event]:
    current = _active(state, _environment_label(cmd.project_id, cmd.environment_id))
    name = check_name("environment", cmd.name)
    if name == current.name:
        return []
    return [
        EnvironmentRenamed(
            project_id=current.project_id, environment_id=current.environment_id, name=name, renamed_at=now
        )
    ]


def change_environment_settings(
    state: EnvironmentState | None, cmd: ChangeEnvironmentSettings, *, now: datetime
) -> list[Event]:
    current = _active(state, _environment_label(cmd.project_id, cmd.environment_id))
    adapter = check_adapter(cmd.adapter_type)
    target = check_target(cmd.target)
    secrets = check_secrets(cmd.secrets, target)
    if (adapter, target, secrets, cmd.production) == (
        current.adapter_type,
        current.target,
        current.secrets,
        current.production,
    ):
        return []
    return [
        EnvironmentSettingsChanged(
            project_id=current.project_id,
            environment_id=current.environment_id,
            adapter_type=adapter,
            target=target,
            secrets=secrets,
            production=cmd.production,
            changed_at=now,
        )
    ]


def archive_environment(state: EnvironmentState | None, cmd: ArchiveEnvironment, *, now: datetime) -> list[Event]:
    current = _active(state, _environment_label(cmd.project_id, cmd.environment_id))
    return [
        EnvironmentArchived(
            project_id=current.project_id,
            environment_id=current.environment_id,
            reason=check_reason(cmd.reason),
            archived_at=now,
        )
    ]
