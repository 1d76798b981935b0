"""Tenancy commands. Validation of their values (slugs, names, repository, target settings) is the
deciders' job (``services.tenancy.domain``), so that the API, the CLI and tests share one set of rules."""

from __future__ import annotations

import msgspec

from contracts.base import Command
from contracts.events.tenancy import RoundtripLevel, SecretRef, TargetValue


class CreateTenant(Command, frozen=True, kw_only=True):
    tenant_id: str
    name: str


class RenameTenant(Command, frozen=True, kw_only=True):
    tenant_id: str
    name: str


class ArchiveTenant(Command, frozen=True, kw_only=True):
    tenant_id: str
    reason: str = ""


class CreateOrg(Command, frozen=True, kw_only=True):
    org_id: str
    name: str


class RenameOrg(Command, frozen=True, kw_only=True):
    org_id: str
    name: str


class ArchiveOrg(Command, frozen=True, kw_only=True):
    org_id: str
    reason: str = ""


class CreateProject(Command, frozen=True, kw_only=True):
    project_id: str
    org_id: str
    name: str
    repository: str
    """An absolute local path or a git URL (https://, ssh://, git://, or scp-like ``git@host:path``)."""
    ref: str | None = None
    roundtrip_level: RoundtripLevel = 0
    editable_models: tuple[str, ...] = ()


class RenameProject(Command, frozen=True, kw_only=True):
    project_id: str
    name: str


class ChangeProjectSettings(Command, frozen=True, kw_only=True):
    """Replace the repository and roundtrip settings as a whole."""

    project_id: str
    repository: str
    ref: str | None = None
    roundtrip_level: RoundtripLevel = 0
    editable_models: tuple[str, ...] = ()


class ArchiveProject(Command, frozen=True, kw_only=True):
    project_id: str
    reason: str = ""


class CreateEnvironment(Command, frozen=True, kw_only=True):
    project_id: str
    environment_id: str
    name: str
    adapter_type: str
    target: dict[str, TargetValue] = msgspec.field(default_factory=dict)
    secrets: dict[str, SecretRef] = msgspec.field(default_factory=dict)
    production: bool = False


class RenameEnvironment(Command, frozen=True, kw_only=True):
    project_id: str
    environment_id: str
    name: str


class ChangeEnvironmentSettings(Command, frozen=True, kw_only=True):
    """Replace the adapter, target settings, secret references and production flag as a whole."""

    project_id: str
    environment_id: str
    adapter_type: str
    target: dict[str, TargetValue] = msgspec.field(default_factory=dict)
    secrets: dict[str, SecretRef] = msgspec.field(default_factory=dict)
    production: bool = False


class ArchiveEnvironment(Command, frozen=True, kw_only=True):
    project_id: str
    environment_id: str
    reason: str = ""
