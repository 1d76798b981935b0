"""Queries over the runs read model, scoped to one tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from contracts.api.runs import NodeView, RunCursor, RunSort, RunView
from contracts.events.runs import PlanDeviation, RunArtifact
from contracts.plan import ApprovalRequirement, PlanTotals
from services.shared.errors import ContractViolationError

MAX_LIMIT = 500
FINAL_STATUSES = ("success", "warning", "failed", "canceled", "rejected")
"""Statuses after which nothing more happens to a run (no more nodes, no more log lines)."""

_any = msgspec.json.Decoder()
_artifacts = msgspec.json.Decoder(list[RunArtifact])
_deviation = msgspec.json.Decoder(PlanDeviation)
_counts = msgspec.json.Decoder(dict[str, int])
_totals = msgspec.json.Decoder(PlanTotals)
_approvals = msgspec.json.Decoder(list[ApprovalRequirement])

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
    values.pop("sort_key", None)
    values["select"] = values.pop("select_expr")
    values["exclude"] = values.pop("exclude_expr")
    for key, decoder in (
        ("totals", _totals),
        ("approvals", _approvals),
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


_SORT_KEYS: dict[RunSort, str] = {
    "requested_at": "requested_at",
    "started_at": "coalesce(started_at, 'epoch'::timestamptz)",
    "finished_at": "coalesce(finished_at, 'epoch'::timestamptz)",
    "duration": "coalesce(extract(epoch FROM finished_at - started_at), -1)::float8",
    "status": "status",
    "environment": "environment_id",
    "project": "project_id",
    "actor": "requested_by",
}
"""The SQL of each order's key (``RunSort``); a page's cursor is built from the key PostgreSQL computed."""


class RunPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunView]
    next_cursor: RunCursor | None
    """Where the next page starts; None when this page is the last."""


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
    sort: RunSort = "requested_at",
    descending: bool = True,
    after: RunCursor | None = None,
    limit: int = 50,
) -> RunPage:
    """Runs in the given order (then by run id; newest first by default); ``since`` inclusive, ``until``
    exclusive (both on ``requested_at``); ``after`` is where the previous page ended (a keyset cursor: rows added
    meanwhile do not shift the pages). A cursor of another order is refused."""
    key = _SORT_KEYS[sort]
    sql = [f"SELECT {_COLUMNS}, {key} AS sort_key FROM runs WHERE tenant_id = $1"]
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
    direction = "DESC" if descending else "ASC"
    if after is not None:
        if (after.sort, after.descending) != (sort, descending):
            order = f"{after.sort} {'desc' if after.descending else 'asc'}"
            raise ContractViolationError(f"the cursor is for another order ({order})", field="cursor")
        args.extend((after.value, after.run_id))
        sql.append(f"AND ({key}, run_id) {'<' if descending else '>'} (${len(args) - 1}, ${len(args)})")
    args.append(min(limit, MAX_LIMIT))
    sql.append(f"ORDER BY {key} {direction}, run_id {direction} LIMIT ${len(args)}")
    rows = await db.fetch(" ".join(sql), *args)
    following = None
    if rows and len(rows) == limit:
        following = RunCursor(rows[-1]["sort_key"], rows[-1]["run_id"], sort=sort, descending=descending)
    return RunPage(items=[_view(row) for row in rows], next_cursor=following)


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


async def actual_seconds(db: asyncpg.Pool, tenant: str, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    """run_id -> the compute time dbt reported for the nodes of the run's current attempt."""
    rows = await db.fetch(
        "SELECT r.run_id, sum(n.execution_time) AS seconds FROM runs r JOIN run_nodes n "
        "ON n.tenant_id = r.tenant_id AND n.run_id = r.run_id AND n.attempt = r.attempt "
        "WHERE r.tenant_id = $1 AND r.run_id = ANY($2::uuid[]) AND n.execution_time IS NOT NULL GROUP BY r.run_id",
        tenant,
        run_ids,
    )
    return {row["run_id"]: row["seconds"] for row in rows}
