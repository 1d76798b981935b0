"""``RunsProjector``: one row per run with its status, current plan, decision and execution (checkpoint name
``runs``), and one ``run_nodes`` row per node and attempt: the run's timeline.

Rows keep ``version`` = the run stream's version after the last event applied, so the API answers with an
ETag and waits for its own write the way the tenancy read model does. Every UPDATE is guarded by
``version < $new``: applying an event twice changes nothing. A node event first advances its run's version
(the same guard) and touches ``run_nodes`` only when that advanced, so a redelivered node event is a no-op too.
"""

from __future__ import annotations

import uuid
from typing import assert_never, cast

import msgspec

from contracts.envelope import RecordedEvent
from contracts.events.runs import (
    RUN_EVENTS,
    NodeFinished,
    NodeStarted,
    PlanApproved,
    PlanCreated,
    PlanRejected,
    RunCanceled,
    RunCancelRequested,
    RunEvent,
    RunFinished,
    RunQueued,
    RunRequested,
    RunRequeued,
    RunStarted,
)
from projections.runtime import Connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    tenant_id       text        NOT NULL,
    run_id          uuid        NOT NULL,
    project_id      text        NOT NULL,
    environment_id  text        NOT NULL,
    status          text        NOT NULL,
    requested_by    text        NOT NULL,
    requested_at    timestamptz NOT NULL,
    select_expr     text,
    exclude_expr    text,
    selector        text,
    state_reference integer,
    full_refresh    boolean     NOT NULL,
    plan_id         uuid,
    plan_hash       text,
    graph_version   integer,
    totals          json,
    approvals       json,
    plan            json,
    decided_by      text,
    decided_at      timestamptz,
    comment         text,
    version         integer     NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);
ALTER TABLE runs
    ADD COLUMN IF NOT EXISTS queued_at           timestamptz,
    ADD COLUMN IF NOT EXISTS attempt             integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS runner_id           text,
    ADD COLUMN IF NOT EXISTS dbt_version         text,
    ADD COLUMN IF NOT EXISTS started_at          timestamptz,
    ADD COLUMN IF NOT EXISTS finished_at         timestamptz,
    ADD COLUMN IF NOT EXISTS reason              text,
    ADD COLUMN IF NOT EXISTS message             text,
    ADD COLUMN IF NOT EXISTS node_counts         json,
    ADD COLUMN IF NOT EXISTS artifacts           json,
    ADD COLUMN IF NOT EXISTS deviation           json,
    ADD COLUMN IF NOT EXISTS log_lines           integer,
    ADD COLUMN IF NOT EXISTS cancel_requested_by text,
    ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz,
    ADD COLUMN IF NOT EXISTS cancel_reason       text;
CREATE INDEX IF NOT EXISTS runs_by_project ON runs (tenant_id, project_id, requested_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (tenant_id, status, requested_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (tenant_id, requested_at DESC, run_id DESC);
CREATE TABLE IF NOT EXISTS run_nodes (
    tenant_id        text        NOT NULL,
    run_id           uuid        NOT NULL,
    attempt          integer     NOT NULL,
    unique_id        text        NOT NULL,
    node_uuid        uuid,
    status           text        NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    execution_time   double precision,
    rows_affected    bigint,
    failures         bigint,
    query_ids        json,
    adapter_response json,
    message          text,
    seq              integer     NOT NULL,
    PRIMARY KEY (tenant_id, run_id, attempt, unique_id)
);
"""
"""``seq`` of a node row: the run stream's version of the node's first event, the order dbt reported nodes in
(the timeline's tie-breaker, e.g. for skipped nodes that have no start time)."""

TABLES = ("runs", "run_nodes")

_json = msgspec.json.Encoder(order="sorted")


def _encode(value: object) -> str:
    return _json.encode(value).decode()


class RunsProjector:
    @property
    def name(self) -> str:
        return "runs"

    @property
    def schema(self) -> str:
        return SCHEMA

    @property
    def tables(self) -> tuple[str, ...]:
        return TABLES

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        if isinstance(event.payload, RUN_EVENTS):
            await self._apply(conn, event, cast("RunEvent", event.payload))

    async def _apply(self, conn: Connection, event: RecordedEvent, payload: RunEvent) -> None:
        tenant, version, at, actor = event.tenant_id, event.version, event.occurred_at, event.metadata.actor.subject
        match payload:
            case RunRequested():
                await conn.execute(
                    "INSERT INTO runs (tenant_id, run_id, project_id, environment_id, status, requested_by, "
                    "requested_at, select_expr, exclude_expr, selector, state_reference, full_refresh, version, "
                    "updated_at) VALUES ($1, $2, $3, $4, 'planning', $5, $6, $7, $8, $9, $10, $11, $12, $13) "
                    "ON CONFLICT DO NOTHING",
                    tenant,
                    payload.run_id,
                    payload.project_id,
                    payload.environment_id,
                    actor,
                    payload.requested_at,
                    payload.select,
                    payload.exclude,
                    payload.selector,
                    payload.state_reference,
                    payload.full_refresh,
                    version,
                    at,
                )
            case PlanCreated():
                plan = payload.plan
                await conn.execute(
                    "UPDATE runs SET status = $3, plan_id = $4, plan_hash = $5, graph_version = $6, totals = $7::json, "
                    "approvals = $8::json, plan = $9::json, version = $10, updated_at = $11 "
                    "WHERE tenant_id = $1 AND run_id = $2 AND version < $10",
                    tenant,
                    payload.run_id,
                    "awaiting_approval" if plan.approvals else "planning",
                    payload.plan_id,
                    plan.plan_hash,
                    plan.inputs.graph_version,
                    _encode(plan.totals),
                    _encode(plan.approvals),
                    _encode(plan),
                    version,
                    at,
                )
            case PlanApproved():
                await _decided(conn, event, payload.run_id, "approved", payload.comment)
            case PlanRejected():
                await _decided(conn, event, payload.run_id, "rejected", payload.comment)
            case RunCanceled():
                await _decided(conn, event, payload.run_id, "canceled", payload.reason)
            case (
                RunQueued()
                | RunStarted()
                | NodeStarted()
                | NodeFinished()
                | RunCancelRequested()
                | RunFinished()
                | RunRequeued()
            ):
                await _apply_execution(conn, event, payload)
            case _:
                assert_never(payload)


ExecutionEvent = RunQueued | RunStarted | NodeStarted | NodeFinished | RunCancelRequested | RunFinished | RunRequeued


async def _apply_execution(conn: Connection, event: RecordedEvent, payload: ExecutionEvent) -> None:
    """A runner's event (or a cancel request): the run's execution columns and its nodes."""
    match payload:
        case RunQueued():
            await _advance(conn, event, payload.run_id, status="queued", queued_at=payload.queued_at,
                           message=payload.reason)  # fmt: skip
        case RunStarted():
            await _advance(
                conn,
                event,
                payload.run_id,
                status="running",
                attempt=payload.attempt,
                runner_id=payload.runner_id,
                dbt_version=payload.dbt_version,
                started_at=payload.started_at,
                finished_at=None,
                reason=None,
                message=None,
                cancel_requested_by=None,
                cancel_requested_at=None,
                cancel_reason=None,
            )
        case NodeStarted():
            if await _advance(conn, event, payload.run_id):
                await _node_started(conn, event, payload)
        case NodeFinished():
            if await _advance(conn, event, payload.run_id):
                await _node_finished(conn, event, payload)
        case RunCancelRequested():
            await _advance(
                conn,
                event,
                payload.run_id,
                cancel_requested_by=event.metadata.actor.subject,
                cancel_requested_at=payload.requested_at,
                cancel_reason=payload.reason,
            )
        case RunFinished():
            await _advance(
                conn,
                event,
                payload.run_id,
                status=payload.status,
                finished_at=payload.finished_at,
                reason=payload.reason,
                message=payload.message,
                deviation=_Json(payload.deviation),
                artifacts=_Json(payload.artifacts),
                node_counts=_Json(payload.node_counts),
                log_lines=payload.log_lines,
            )
        case RunRequeued():
            await _advance(
                conn, event, payload.run_id, status="approved", reason=payload.reason, message=payload.message
            )
        case _:
            assert_never(payload)


async def _decided(conn: Connection, event: RecordedEvent, run_id: uuid.UUID, status: str, comment: str) -> None:
    await conn.execute(
        "UPDATE runs SET status = $3, decided_by = $4, decided_at = $5, comment = $6, version = $7, "
        "updated_at = $5 WHERE tenant_id = $1 AND run_id = $2 AND version < $7",
        event.tenant_id,
        run_id,
        status,
        event.metadata.actor.subject,
        event.occurred_at,
        comment,
        event.version,
    )


class _Json:
    """A value for a ``json`` column (encoded with sorted keys: a replay writes the same text)."""

    def __init__(self, value: object) -> None:
        self.text = None if value is None else _encode(value)


_EXECUTION_COLUMNS = frozenset(
    {
        "status", "queued_at", "attempt", "runner_id", "dbt_version", "started_at", "finished_at", "reason",
        "message", "node_counts", "artifacts", "deviation", "log_lines", "cancel_requested_by",
        "cancel_requested_at", "cancel_reason",
    }
)  # fmt: skip


async def _advance(conn: Connection, event: RecordedEvent, run_id: uuid.UUID, **changes: object) -> bool:
    """A runner's event: set ``changes`` (columns of ``runs``) and the stream version. False when the row is
    already at this version or later (a redelivery) or absent: then nothing else may change either."""
    assignments, args = [], [event.tenant_id, run_id, event.version, event.occurred_at]
    for column, value in changes.items():
        if column not in _EXECUTION_COLUMNS:  # names are this module's own literals, never input
            raise ValueError(f"runs has no execution column {column!r}")
        if isinstance(value, _Json):
            args.append(value.text)
            assignments.append(f"{column} = ${len(args)}::json")
        else:
            args.append(value)
            assignments.append(f"{column} = ${len(args)}")
    sql = (
        f"UPDATE runs SET {''.join(a + ', ' for a in assignments)}version = $3, updated_at = $4 "
        "WHERE tenant_id = $1 AND run_id = $2 AND version < $3"
    )
    return str(await conn.execute(sql, *args)) == "UPDATE 1"


async def _node_started(conn: Connection, event: RecordedEvent, node: NodeStarted) -> None:
    await conn.execute(
        "INSERT INTO run_nodes (tenant_id, run_id, attempt, unique_id, node_uuid, status, started_at, seq) "
        "VALUES ($1, $2, $3, $4, $5, 'running', $6, $7) "
        "ON CONFLICT (tenant_id, run_id, attempt, unique_id) DO UPDATE SET node_uuid = EXCLUDED.node_uuid, "
        "status = 'running', started_at = EXCLUDED.started_at, finished_at = NULL",
        event.tenant_id,
        node.run_id,
        node.attempt,
        node.unique_id,
        node.node_uuid,
        node.started_at,
        event.version,
    )


async def _node_finished(conn: Connection, event: RecordedEvent, node: NodeFinished) -> None:
    """The node's result as dbt reported it; a start time it did not report keeps the one of ``NodeStarted``."""
    await conn.execute(
        "INSERT INTO run_nodes AS n (tenant_id, run_id, attempt, unique_id, node_uuid, status, started_at, "
        "finished_at, execution_time, rows_affected, failures, query_ids, adapter_response, message, seq) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::json, $13::json, $14, $15) "
        "ON CONFLICT (tenant_id, run_id, attempt, unique_id) DO UPDATE SET "
        "node_uuid = coalesce(EXCLUDED.node_uuid, n.node_uuid), status = EXCLUDED.status, "
        "started_at = coalesce(EXCLUDED.started_at, n.started_at), finished_at = EXCLUDED.finished_at, "
        "execution_time = EXCLUDED.execution_time, rows_affected = EXCLUDED.rows_affected, "
        "failures = EXCLUDED.failures, query_ids = EXCLUDED.query_ids, "
        "adapter_response = EXCLUDED.adapter_response, message = EXCLUDED.message",
        event.tenant_id,
        node.run_id,
        node.attempt,
        node.unique_id,
        node.node_uuid,
        node.status,
        node.started_at,
        node.finished_at,
        node.execution_time,
        node.rows_affected,
        node.failures,
        _encode(node.query_ids),
        _encode(node.adapter_response),
        node.message,
        event.version,
    )
