"""Queries over the runs read model, scoped to one tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from contracts.api.runs import RunView

MAX_LIMIT = 500

_any = msgspec.json.Decoder()

_COLUMNS = (
    "run_id, project_id, environment_id, status, requested_by, requested_at, select_expr, exclude_expr, selector, "
    "state_reference, full_refresh, plan_id, plan_hash, graph_version, totals::text AS totals, "
    "approvals::text AS approvals, decided_by, decided_at, comment, version"
)


def _view(row: asyncpg.Record) -> RunView:
    values: dict[str, Any] = dict(row)
    values["select"] = values.pop("select_expr")
    values["exclude"] = values.pop("exclude_expr")
    for key in ("totals", "approvals"):
        values[key] = _any.decode(values[key]) if values[key] is not None else None
    return RunView(**values)


async def get_run(db: asyncpg.Pool, tenant: str, run_id: uuid.UUID) -> RunView | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM runs WHERE tenant_id = $1 AND run_id = $2", tenant, run_id)
    return None if row is None else _view(row)


async def get_plan(db: asyncpg.Pool, tenant: str, run_id: uuid.UUID) -> str | None:
    """The run's current plan as stored (JSON text), for the API to return verbatim."""
    value: str | None = await db.fetchval(
        "SELECT plan::text FROM runs WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
    )
    return value


async def list_runs(
    db: asyncpg.Pool,
    tenant: str,
    *,
    project: str | None = None,
    status: str | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> list[RunView]:
    """Newest first; ``before`` is the ``requested_at`` of the last row of the previous page."""
    sql = [f"SELECT {_COLUMNS} FROM runs WHERE tenant_id = $1"]
    args: list[Any] = [tenant]
    for column, value in (("project_id", project), ("status", status)):
        if value is not None:
            args.append(value)
            sql.append(f"AND {column} = ${len(args)}")
    if before is not None:
        args.append(before)
        sql.append(f"AND requested_at < ${len(args)}")
    args.append(limit)
    sql.append(f"ORDER BY requested_at DESC, run_id LIMIT ${len(args)}")
    return [_view(row) for row in await db.fetch(" ".join(sql), *args)]
