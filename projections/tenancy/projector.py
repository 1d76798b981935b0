"""``TenancyProjector``: folds tenancy events into four tables, one row per aggregate.

Each row keeps ``version`` = the version of its stream after the last event applied, so the API can
answer with an ETag and wait for its own write (read-your-writes) by comparing versions. Every UPDATE is
guarded by ``version < $new``: applying an event twice changes nothing, even outside the runner's
checkpoint guarantee. Events of other contexts are ignored.
"""

from __future__ import annotations

from typing import assert_never

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from contracts.envelope import RecordedEvent
from contracts.events.tenancy import (
    EnvironmentArchived,
    EnvironmentCreated,
    EnvironmentRenamed,
    EnvironmentSettingsChanged,
    OrgArchived,
    OrgCreated,
    OrgRenamed,
    ProjectArchived,
    ProjectCreated,
    ProjectRenamed,
    ProjectSettingsChanged,
    TenancyEvent,
    TenantArchived,
    TenantCreated,
    TenantRenamed,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenancy_tenants (
    tenant_id   text        PRIMARY KEY,
    name        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'archived')),
    version     integer     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    archived_at timestamptz
);
CREATE TABLE IF NOT EXISTS tenancy_orgs (
    tenant_id   text        NOT NULL,
    org_id      text        NOT NULL,
    name        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'archived')),
    version     integer     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    archived_at timestamptz,
    PRIMARY KEY (tenant_id, org_id)
);
CREATE TABLE IF NOT EXISTS tenancy_projects (
    tenant_id           text        NOT NULL,
    project_id          text        NOT NULL,
    org_id              text        NOT NULL,
    name                text        NOT NULL,
    repository          jsonb       NOT NULL,
    roundtrip_level     smallint    NOT NULL CHECK (roundtrip_level BETWEEN 0 AND 2),
    editable_models     text[]      NOT NULL,
    status              text        NOT NULL CHECK (status IN ('active', 'archived')),
    version             integer     NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    archived_at         timestamptz,
    PRIMARY KEY (tenant_id, project_id)
);
CREATE INDEX IF NOT EXISTS tenancy_projects_org ON tenancy_projects (tenant_id, org_id, project_id);
CREATE TABLE IF NOT EXISTS tenancy_environments (
    tenant_id       text        NOT NULL,
    project_id      text        NOT NULL,
    environment_id  text        NOT NULL,
    name            text        NOT NULL,
    adapter_type    text        NOT NULL,
    target          jsonb       NOT NULL,
    secrets         jsonb       NOT NULL,
    production      boolean     NOT NULL,
    status          text        NOT NULL CHECK (status IN ('active', 'archived')),
    version         integer     NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    archived_at     timestamptz,
    PRIMARY KEY (tenant_id, project_id, environment_id)
);
"""

TABLES = ("tenancy_tenants", "tenancy_orgs", "tenancy_projects", "tenancy_environments")

_json = msgspec.json.Encoder()


def _encode(value: object) -> str:
    return _json.encode(value).decode()


class TenancyProjector:
    """The tenancy read model (checkpoint name ``tenancy``)."""

    @property
    def name(self) -> str:
        return "tenancy"

    @property
    def schema(self) -> str:
        return SCHEMA

    @property
    def tables(self) -> tuple[str, ...]:
        return TABLES

    async def apply(self, conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record], event: RecordedEvent) -> None:  # noqa: PLR0912 - one case per event
        payload = event.payload
        if not isinstance(payload, TenancyEvent):
            return
        tenant, version, at = event.tenant_id, event.version, event.occurred_at
        match payload:
            case TenantCreated():
                await conn.execute(
                    "INSERT INTO tenancy_tenants (tenant_id, name, status, version, created_at, updated_at) "
                    "VALUES ($1, $2, 'active', $3, $4, $5) ON CONFLICT DO NOTHING",
                    tenant, payload.name, version, payload.created_at, at,
                )  # fmt: skip
            case TenantRenamed():
                await conn.execute(
                    "UPDATE tenancy_tenants SET name = $2, version = $3, updated_at = $4 "
                    "WHERE tenant_id = $1 AND version < $3",
                    tenant, payload.name, version, at,
                )  # fmt: skip
            case TenantArchived():
                await conn.execute(
                    "UPDATE tenancy_tenants SET status = 'archived', archived_at = $2, version = $3, updated_at = $4 "
                    "WHERE tenant_id = $1 AND version < $3",
                    tenant, payload.archived_at, version, at,
                )  # fmt: skip
            case OrgCreated():
                await conn.execute(
                    "INSERT INTO tenancy_orgs (tenant_id, org_id, name, status, version, created_at, updated_at) "
                    "VALUES ($1, $2, $3, 'active', $4, $5, $6) ON CONFLICT DO NOTHING",
                    tenant, payload.org_id, payload.name, version, payload.created_at, at,
                )  # fmt: skip
            case OrgRenamed():
                await conn.execute(
                    "UPDATE tenancy_orgs SET name = $3, version = $4, updated_at = $5 "
                    "WHERE tenant_id = $1 AND org_id = $2 AND version < $4",
                    tenant, payload.org_id, payload.name, version, at,
                )  # fmt: skip
            case OrgArchived():
                await conn.execute(
                    "UPDATE tenancy_orgs SET status = 'archived', archived_at = $3, version = $4, updated_at = $5 "
                    "WHERE tenant_id = $1 AND org_id = $2 AND version < $4",
                    tenant, payload.org_id, payload.archived_at, version, at,
                )  # fmt: skip
            case ProjectCreated():
                await conn.execute(
                    "INSERT INTO tenancy_projects (tenant_id, project_id, org_id, name, repository, roundtrip_level, "
                    "editable_models, status, version, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, 'active', $8, $9, $10) ON CONFLICT DO NOTHING",
                    tenant, payload.project_id, payload.org_id, payload.name, _encode(payload.repository),
                    payload.roundtrip_level, list(payload.editable_models), version, payload.created_at, at,
                )  # fmt: skip
            case ProjectRenamed():
                await conn.execute(
                    "UPDATE tenancy_projects SET name = $3, version = $4, updated_at = $5 "
                    "WHERE tenant_id = $1 AND project_id = $2 AND version < $4",
                    tenant, payload.project_id, payload.name, version, at,
                )  # fmt: skip
            case ProjectSettingsChanged():
                await conn.execute(
                    "UPDATE tenancy_projects SET repository = $3::jsonb, roundtrip_level = $4, editable_models = $5, "
                    "version = $6, updated_at = $7 WHERE tenant_id = $1 AND project_id = $2 AND version < $6",
                    tenant, payload.project_id, _encode(payload.repository), payload.roundtrip_level,
                    list(payload.editable_models), version, at,
                )  # fmt: skip
            case ProjectArchived():
                await conn.execute(
                    "UPDATE tenancy_projects SET status = 'archived', archived_at = $3, version = $4, "
                    "updated_at = $5 WHERE tenant_id = $1 AND project_id = $2 AND version < $4",
                    tenant, payload.project_id, payload.archived_at, version, at,
                )  # fmt: skip
            case EnvironmentCreated():
                await conn.execute(
                    "INSERT INTO tenancy_environments (tenant_id, project_id, environment_id, name, adapter_type, "
                    "target, secrets, production, status, version, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, 'active', $9, $10, $11) "
                    "ON CONFLICT DO NOTHING",
                    tenant, payload.project_id, payload.environment_id, payload.name, payload.adapter_type,
                    _encode(payload.target), _encode(payload.secrets), payload.production, version,
                    payload.created_at, at,
                )  # fmt: skip
            case EnvironmentRenamed():
                await conn.execute(
                    "UPDATE tenancy_environments SET name = $4, version = $5, updated_at = $6 "
                    "WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3 AND version < $5",
                    tenant, payload.project_id, payload.environment_id, payload.name, version, at,
                )  # fmt: skip
            case EnvironmentSettingsChanged():
                await conn.execute(
                    "UPDATE tenancy_environments SET adapter_type = $4, target = $5::jsonb, secrets = $6::jsonb, "
                    "production = $7, version = $8, updated_at = $9 "
                    "WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3 AND version < $8",
                    tenant, payload.project_id, payload.environment_id, payload.adapter_type,
                    _encode(payload.target), _encode(payload.secrets), payload.production, version, at,
                )  # fmt: skip
            case EnvironmentArchived():
                await conn.execute(
                    "UPDATE tenancy_environments SET status = 'archived', archived_at = $4, version = $5, "
                    "updated_at = $6 WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3 "
                    "AND version < $5",
                    tenant, payload.project_id, payload.environment_id, payload.archived_at, version, at,
                )  # fmt: skip
            case _:
                assert_never(payload)
