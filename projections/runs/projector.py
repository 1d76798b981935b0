"""``RunsProjector``: one row per run with its status, current plan and decision (checkpoint name ``runs``).

Rows keep ``version`` = the run stream's version after the last event applied, so the API answers with an
ETag and waits for its own write the way the tenancy read model does. Every UPDATE is guarded by
``version < $new``: applying an event twice changes nothing.
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
CREATE INDEX IF NOT EXISTS runs_by_project ON runs (tenant_id, project_id, requested_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (tenant_id, status, requested_at DESC);
"""

TABLES = ("runs",)

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
            case RunQueued() | RunRequeued():
                await _status(conn, event, payload.run_id, "queued" if isinstance(payload, RunQueued) else "approved")
            case RunStarted():
                await _status(conn, event, payload.run_id, "running")
            case RunFinished():
                await _status(conn, event, payload.run_id, payload.status)
            case NodeStarted() | NodeFinished() | RunCancelRequested():
                await _status(conn, event, payload.run_id, None)
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


async def _status(conn: Connection, event: RecordedEvent, run_id: uuid.UUID, status: str | None) -> None:
    """A runner's event: the new status (None: unchanged) and the stream version."""
    await conn.execute(
        "UPDATE runs SET status = coalesce($3, status), version = $4, updated_at = $5 "
        "WHERE tenant_id = $1 AND run_id = $2 AND version < $4",
        event.tenant_id,
        run_id,
        status,
        event.version,
        event.occurred_at,
    )
