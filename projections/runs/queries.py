"""Queries over the runs read model, scoped to one tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from contracts.api.runs import NodeView, RunCursor, RunView
from contracts.events.runs import PlanDeviation, RunArtifact

MAX_LIMIT = 500
FINAL_STATUSES = ("success", "warning", "failed", "canceled", "rejected")
"""Statuses after which nothing more happens to a run (no more nodes, no more log lines)."""

_any = msgspec.json.Decoder()
_artifacts = msgspec.json.Decoder(list[RunArtifact])
_deviation = msgspec.json.Decoder(PlanDeviation)
_counts = msgspec.json.Decoder(dict[str, int])

_COLUMNS = (
    "run_id, project_id, environment_id, status, requested_by, requested_at, select_expr, exclude_expr, selector, "
    "state_reference, full_refresh, plan_id, plan_hash, graph_version, totals::text AS totals, "
    "approvals::text AS approvals, decided_by, decided_at, comment, queued_at, attempt, runner_id, dbt_version, "
    "started_at, finished_at, reason, message, node_counts::text AS node_counts, artifacts::text AS artifacts, "
    "deviation::text AS deviation, log_lines, cancel_requested_by, cancel_requested_at, cancel_reason, version"
)
_NODE_COLUMNS = (
    "attempt, unique_id, node_uuid, status, started_at, finished_at, execution_time, rows_affected, failures, "
    "query_ids::text AS query_ids, adapter_response::text AS adapter_response, message"
)


def _view(row: asyncpg.Record) -> RunView:
    values: dict[str, Any] = dict(row)
    values["select"] = values.pop("select_expr")
    values["exclude"] = values.pop("exclude_expr")
    for key, decoder in (
        ("totals", _any),
        ("approvals", _any),
        ("node_counts", _counts),
        ("artifacts", _artifacts),
        ("deviation", _deviation),
    ):
        values[key] = decoder.decode(values[key]) if values[key] is not None else None
    return RunView(**values)


def _node(row: asyncpg.Record) -> NodeView:
    values: dict[str, Any] = dict(row)
    values["query_ids"] = _any.decode(values["query_ids"]) if values["query_ids"] is not None else []
    if values["adapter_response"] is not None:
        values["adapter_response"] = _any.decode(values["adapter_response"])
    return NodeView(**values)


async def get_run(db: asyncpg.Pool, tenant: str, run_id: uuid.UUID) -> RunView | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM runs WHERE tenant_id = $1 AND run_id = $2", tenant, run_id)
    return None if row is None else _view(row)


async def get_plan(db: asyncpg.Pool, tenant: str, run_id: uuid.UUID) -> str | None:
    """The run's current plan as stored (JSON text), for the API to return verbatim."""
    value: str | None = await db.fetchval(
        "SELECT plan::text FROM runs WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
    )
    return value


async def final_log_lines(db: asyncpg.Pool, tenant: str, run_id: uuid.UUID) -> int | None:
    """The run's final number of log lines once it has ended (0 for a run that never started), else None."""
    row = await db.fetchrow("SELECT status, log_lines FROM runs WHERE tenant_id = $1 AND run_id = $2", tenant, run_id)
    if row is None or row["status"] not in FINAL_STATUSES:
        return None
    lines: int | None = row["log_lines"]
    return lines or 0


async def run_nodes(db: asyncpg.Pool, tenant: str, run_id: uuid.UUID, *, attempt: int | None = None) -> list[NodeView]:
    """The timeline of one attempt (default: the run's current one): nodes in the order they started, nodes dbt
    reported without a start (skipped) last, in the order they were reported."""
    rows = await db.fetch(
        f"SELECT {_NODE_COLUMNS} FROM run_nodes WHERE tenant_id = $1 AND run_id = $2 AND attempt = "
        "coalesce($3::integer, (SELECT attempt FROM runs WHERE tenant_id = $1 AND run_id = $2)) "
        "ORDER BY started_at NULLS LAST, seq, unique_id",
        tenant,
        run_id,
        attempt,
    )
    return [_node(row) for row in rows]


async def list_runs(
    db: asyncpg.Pool,
    tenant: str,
    *,
    project: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: RunCursor | None = None,
    limit: int = 50,
) -> list[RunView]:
    """Newest first (by ``requested_at``, then run id); ``since`` inclusive, ``until`` exclusive; ``after`` is
    where the previous page ended (a keyset cursor: rows requested meanwhile do not shift the pages)."""
    sql = [f"SELECT {_COLUMNS} FROM runs WHERE tenant_id = $1"]
    args: list[Any] = [tenant]
    for column, value in (
        ("project_id", project),
        ("environment_id", environment),
        ("status", status),
        ("requested_by", actor),
    ):
        if value is not None:
            args.append(value)
            sql.append(f"AND {column} = ${len(args)}")
    if since is not None:
        args.append(since)
        sql.append(f"AND requested_at >= ${len(args)}")
    if until is not None:
        args.append(until)
        sql.append(f"AND requested_at < ${len(args)}")
    if after is not None:
        args.extend((after.requested_at, after.run_id))
        sql.append(f"AND (requested_at, run_id) < (${len(args) - 1}, ${len(args)})")
    args.append(min(limit, MAX_LIMIT))
    sql.append(f"ORDER BY requested_at DESC, run_id DESC LIMIT ${len(args)}")
    return [_view(row) for row in await db.fetch(" ".join(sql), *args)]


def cursor_of(page: list[RunView], limit: int) -> RunCursor | None:
    """Where the next page starts, when this one is full."""
    if len(page) < limit or not page:
        return None
    return RunCursor(page[-1].requested_at, page[-1].run_id)


async def last_successful_graph_version(db: asyncpg.Pool, tenant: str, project: str, environment: str) -> int | None:
    """The graph version of the environment's last run that ended ``success`` or ``warning``: the default state
    reference of its plans (dbt's ``--state`` of the last good production run)."""
    version: int | None = await db.fetchval(
        "SELECT graph_version FROM runs WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3 "
        "AND status IN ('success', 'warning') AND graph_version IS NOT NULL "
        "ORDER BY finished_at DESC NULLS LAST, requested_at DESC LIMIT 1",
        tenant,
        project,
        environment,
    )
    return version
