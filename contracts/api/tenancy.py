"""Request and response bodies of the tenancy routes (``/api/tenants/{tenant_id}/...``).

Request bodies carry light shape constraints (lengths, slug pattern) so that the OpenAPI document says
what is accepted; the full rules live in the deciders, which answer with a 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contracts.events.tenancy import Repository, RoundtripLevel, SecretRef, TargetValue
from contracts.ids import SLUG_PATTERN

Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=SLUG_PATTERN, examples=["analytics"])]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="Display name: any text, verbatim.")]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
RepositoryLocation = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1024,
        description="An absolute local path, or a git URL (https://, ssh://, git://, git@host:path) "
        "without credentials.",
        examples=["/srv/dbt/shop", "https://github.com/acme/shop-dbt.git"],
    ),
]
Status = Literal["active", "archived"]


# -- requests --------------------------------------------------------------------------------


class CreateOrgRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    org_id: Slug
    name: Name


class RenameRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name


class ArchiveRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason = ""


class CreateProjectRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    project_id: Slug
    name: Name
    repository: RepositoryLocation
    org_id: Slug | None = None
    """Defaults to the configured default org."""
    ref: str | None = None
    roundtrip_level: RoundtripLevel = 0
    editable_models: list[str] = msgspec.field(default_factory=list)


class ProjectSettingsRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    repository: RepositoryLocation
    ref: str | None = None
    roundtrip_level: RoundtripLevel = 0
    editable_models: list[str] = msgspec.field(default_factory=list)


class CreateEnvironmentRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    environment_id: Slug
    name: Name
    adapter_type: Annotated[str, msgspec.Meta(min_length=1, max_length=32, examples=["duckdb", "snowflake"])]
    target: dict[str, TargetValue] = msgspec.field(default_factory=dict)
    """Non-secret target settings; secret-looking keys (password, token, private_key, ...) are refused."""
    secrets: dict[str, SecretRef] = msgspec.field(default_factory=dict)
    production: bool = False


class EnvironmentSettingsRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    adapter_type: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    target: dict[str, TargetValue] = msgspec.field(default_factory=dict)
    secrets: dict[str, SecretRef] = msgspec.field(default_factory=dict)
    production: bool = False


# -- views (read models) ---------------------------------------------------------------------


class TenantView(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    name: str
    status: Status
    version: int
    """The tenant stream's version: the ETag, and the If-Match of the next command."""
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class OrgView(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    org_id: str
    name: str
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class ProjectView(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    project_id: str
    org_id: str
    name: str
    repository: Repository
    roundtrip_level: RoundtripLevel
    editable_models: list[str]
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class EnvironmentView(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    project_id: str
    environment_id: str
    name: str
    adapter_type: str
    target: dict[str, TargetValue]
    secrets: dict[str, SecretRef]
    production: bool
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class OrgList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[OrgView]
    next_after: str | None = None
    """Pass as ``after`` to get the next page; absent on the last page."""


class ProjectList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ProjectView]
    next_after: str | None = None


class EnvironmentList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[EnvironmentView]
    next_after: str | None = None
