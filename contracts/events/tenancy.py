"""Tenancy events: Tenant -> Org -> Project -> Environment (wire tags ``tenancy.<event_snake>.v1``).

Streams (one per aggregate, inside the tenant's slice of the store): ``tenant-<tenant>``, ``org-<org>``,
``project-<project>``, ``environment-<project>.<environment>``. Ids are slugs (``contracts.ids``); names
are display names. Secrets never appear here: an environment references them by id and fingerprint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from contracts.base import Event
from contracts.registry import REGISTRY

RepositoryKind = Literal["local", "git"]


class Repository(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where a project's dbt repository lives: an absolute local path or a git URL (no credentials)."""

    kind: RepositoryKind
    location: str
    ref: str | None = None
    """Git branch or tag; only for ``kind=git``."""


RoundtripLevel = Literal[0, 1, 2]
"""0: the repository is never modified; 1: new files only under ``managed/``; 2: listed models are editable."""


class SecretRef(msgspec.Struct, frozen=True, kw_only=True):
    """A reference to a secret held elsewhere: never the value."""

    secret_id: str
    fingerprint: str


TargetValue = str | int | bool


# -- tenant ------------------------------------------------------------------------------------


class TenantCreated(Event, frozen=True, kw_only=True, tag="tenancy.tenant_created.v1"):
    context = "tenancy"
    tenant_id: str
    name: str
    created_at: datetime


class TenantRenamed(Event, frozen=True, kw_only=True, tag="tenancy.tenant_renamed.v1"):
    context = "tenancy"
    tenant_id: str
    name: str
    renamed_at: datetime


class TenantArchived(Event, frozen=True, kw_only=True, tag="tenancy.tenant_archived.v1"):
    context = "tenancy"
    tenant_id: str
    reason: str = ""
    archived_at: datetime


# -- org ---------------------------------------------------------------------------------------


class OrgCreated(Event, frozen=True, kw_only=True, tag="tenancy.org_created.v1"):
    context = "tenancy"
    org_id: str
    name: str
    created_at: datetime


class OrgRenamed(Event, frozen=True, kw_only=True, tag="tenancy.org_renamed.v1"):
    context = "tenancy"
    org_id: str
    name: str
    renamed_at: datetime


class OrgArchived(Event, frozen=True, kw_only=True, tag="tenancy.org_archived.v1"):
    context = "tenancy"
    org_id: str
    reason: str = ""
    archived_at: datetime


# -- project -----------------------------------------------------------------------------------


class ProjectCreated(Event, frozen=True, kw_only=True, tag="tenancy.project_created.v1"):
    context = "tenancy"
    project_id: str
    org_id: str
    name: str
    repository: Repository
    roundtrip_level: RoundtripLevel = 0
    editable_models: tuple[str, ...] = ()
    """Only at roundtrip level 2: the models the project declares editable (sorted, unique)."""
    created_at: datetime


class ProjectRenamed(Event, frozen=True, kw_only=True, tag="tenancy.project_renamed.v1"):
    context = "tenancy"
    project_id: str
    name: str
    renamed_at: datetime


class ProjectSettingsChanged(Event, frozen=True, kw_only=True, tag="tenancy.project_settings_changed.v1"):
    """The complete new settings (not a diff), so that a reader needs only the last one."""

    context = "tenancy"
    project_id: str
    repository: Repository
    roundtrip_level: RoundtripLevel
    editable_models: tuple[str, ...] = ()
    changed_at: datetime


class ProjectArchived(Event, frozen=True, kw_only=True, tag="tenancy.project_archived.v1"):
    context = "tenancy"
    project_id: str
    reason: str = ""
    archived_at: datetime


# -- environment -------------------------------------------------------------------------------


class EnvironmentCreated(Event, frozen=True, kw_only=True, tag="tenancy.environment_created.v1"):
    context = "tenancy"
    project_id: str
    environment_id: str
    name: str
    adapter_type: str
    target: dict[str, TargetValue] = msgspec.field(default_factory=dict)
    """Non-secret target settings (database, schema, warehouse, threads, ...)."""
    secrets: dict[str, SecretRef] = msgspec.field(default_factory=dict)
    production: bool = False
    created_at: datetime


class EnvironmentRenamed(Event, frozen=True, kw_only=True, tag="tenancy.environment_renamed.v1"):
    context = "tenancy"
    project_id: str
    environment_id: str
    name: str
    renamed_at: datetime


class EnvironmentSettingsChanged(Event, frozen=True, kw_only=True, tag="tenancy.environment_settings_changed.v1"):
    """The complete new settings (not a diff)."""

    context = "tenancy"
    project_id: str
    environment_id: str
    adapter_type: str
    target: dict[str, TargetValue] = msgspec.field(default_factory=dict)
    secrets: dict[str, SecretRef] = msgspec.field(default_factory=dict)
    production: bool = False
    changed_at: datetime


class EnvironmentArchived(Event, frozen=True, kw_only=True, tag="tenancy.environment_archived.v1"):
    context = "tenancy"
    project_id: str
    environment_id: str
    reason: str = ""
    archived_at: datetime


TenantEvent = TenantCreated | TenantRenamed | TenantArchived
OrgEvent = OrgCreated | OrgRenamed | OrgArchived
ProjectEvent = ProjectCreated | ProjectRenamed | ProjectSettingsChanged | ProjectArchived
EnvironmentEvent = EnvironmentCreated | EnvironmentRenamed | EnvironmentSettingsChanged | EnvironmentArchived
TenancyEvent = TenantEvent | OrgEvent | ProjectEvent | EnvironmentEvent

TENANCY_EVENTS: tuple[type[Event], ...] = (
    TenantCreated,
    TenantRenamed,
    TenantArchived,
    OrgCreated,
    OrgRenamed,
    OrgArchived,
    ProjectCreated,
    ProjectRenamed,
    ProjectSettingsChanged,
    ProjectArchived,
    EnvironmentCreated,
    EnvironmentRenamed,
    EnvironmentSettingsChanged,
    EnvironmentArchived,
)

REGISTRY.register(*TENANCY_EVENTS)
