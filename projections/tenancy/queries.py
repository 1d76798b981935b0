"""Queries of the tenancy read model. Every query takes the tenant id and filters by it: no query can
return another tenant's rows. Lists are keyset-paginated by id."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import asyncpg
import msgspec

from contracts.api.tenancy import EnvironmentView, OrgView, ProjectView, TenantView
from contracts.events.tenancy import Repository, SecretRef, TargetValue

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

StatusFilter = Literal["active", "archived"] | None


class Database(Protocol):
    """An asyncpg pool or connection."""

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None: ...


_repository = msgspec.json.Decoder(Repository)
_target = msgspec.json.Decoder(dict[str, TargetValue])
_secrets = msgspec.json.Decoder(dict[str, SecretRef])

_COMMON = "status, version, created_at, updated_at, archived_at"


def _tenant(row: asyncpg.Record) -> TenantView:
    return TenantView(
        tenant_id=row["tenant_id"], name=row["name"], status=row["status"], version=row["version"],
        created_at=row["created_at"], updated_at=row["updated_at"], archived_at=row["archived_at"],
    )  # fmt: skip


def _org(row: asyncpg.Record) -> OrgView:
    return OrgView(
        tenant_id=row["tenant_id"], org_id=row["org_id"], name=row["name"], status=row["status"],
        version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"],
        archived_at=row["archived_at"],
    )  # fmt: skip


def _project(row: asyncpg.Record) -> ProjectView:
    return ProjectView(
        tenant_id=row["tenant_id"], project_id=row["project_id"], org_id=row["org_id"], name=row["name"],
        repository=_repository.decode(row["repository"]), roundtrip_level=row["roundtrip_level"],
        editable_models=list(row["editable_models"]), status=row["status"], version=row["version"],
        created_at=row["created_at"], updated_at=row["updated_at"], archived_at=row["archived_at"],
    )  # fmt: skip


def _environment(row: asyncpg.Record) -> EnvironmentView:
    return EnvironmentView(
        tenant_id=row["tenant_id"], project_id=row["project_id"], environment_id=row["environment_id"],
        name=row["name"], adapter_type=row["adapter_type"], target=_target.decode(row["target"]),
        secrets=_secrets.decode(row["secrets"]), production=row["production"], status=row["status"],
        version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"],
        archived_at=row["archived_at"],
    )  # fmt: skip


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


async def get_tenant(db: Database, tenant_id: str) -> TenantView | None:
    row = await db.fetchrow(f"SELECT tenant_id, name, {_COMMON} FROM tenancy_tenants WHERE tenant_id = $1", tenant_id)
    return None if row is None else _tenant(row)


async def get_org(db: Database, tenant_id: str, org_id: str) -> OrgView | None:
    row = await db.fetchrow(
        f"SELECT tenant_id, org_id, name, {_COMMON} FROM tenancy_orgs WHERE tenant_id = $1 AND org_id = $2",
        tenant_id,
        org_id,
    )
    return None if row is None else _org(row)


async def list_orgs(
    db: Database, tenant_id: str, *, status: StatusFilter = None, after: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[OrgView]:
    rows = await db.fetch(
        f"SELECT tenant_id, org_id, name, {_COMMON} FROM tenancy_orgs WHERE tenant_id = $1 "
        "AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR org_id > $3) ORDER BY org_id LIMIT $4",
        tenant_id, status, after, _limit(limit),
    )  # fmt: skip
    return [_org(row) for row in rows]


_PROJECT_COLUMNS = (
    f"tenant_id, project_id, org_id, name, repository::text AS repository, roundtrip_level, editable_models, {_COMMON}"
)


async def get_project(db: Database, tenant_id: str, project_id: str) -> ProjectView | None:
    row = await db.fetchrow(
        f"SELECT {_PROJECT_COLUMNS} FROM tenancy_projects WHERE tenant_id = $1 AND project_id = $2",
        tenant_id,
        project_id,
    )
    return None if row is None else _project(row)


async def list_projects(
    db: Database,
    tenant_id: str,
    *,
    org_id: str | None = None,
    status: StatusFilter = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[ProjectView]:
    rows = await db.fetch(
        f"SELECT {_PROJECT_COLUMNS} FROM tenancy_projects WHERE tenant_id = $1 "
        "AND ($2::text IS NULL OR org_id = $2) AND ($3::text IS NULL OR status = $3) "
        "AND ($4::text IS NULL OR project_id > $4) ORDER BY project_id LIMIT $5",
        tenant_id, org_id, status, after, _limit(limit),
    )  # fmt: skip
    return [_project(row) for row in rows]


_ENVIRONMENT_COLUMNS = (
    "tenant_id, project_id, environment_id, name, adapter_type, target::text AS target, secrets::text AS secrets, "
    f"production, {_COMMON}"
)


async def get_environment(db: Database, tenant_id: str, project_id: str, environment_id: str) -> EnvironmentView | None:
    row = await db.fetchrow(
        f"SELECT {_ENVIRONMENT_COLUMNS} FROM tenancy_environments "
        "WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3",
        tenant_id,
        project_id,
        environment_id,
    )
    return None if row is None else _environment(row)


async def list_environments(
    db: Database,
    tenant_id: str,
    project_id: str,
    *,
    status: StatusFilter = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[EnvironmentView]:
    rows = await db.fetch(
        f"SELECT {_ENVIRONMENT_COLUMNS} FROM tenancy_environments WHERE tenant_id = $1 AND project_id = $2 "
        "AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR environment_id > $4) "
        "ORDER BY environment_id LIMIT $5",
        tenant_id, project_id, status, after, _limit(limit),
    )  # fmt: skip
    return [_environment(row) for row in rows]
