"""``CanvasProjector``: folds canvas events into three tables per workspace (its settings, the positions of the
nodes placed by hand, and its groups).

The workspace row holds the stream's ``version`` after the last event applied; each event first advances it with
``version < $new`` and applies the rest only if that row changed, so an event applied twice changes nothing, and
a replay from position 0 rebuilds the same rows. Events of other contexts are ignored.
"""

from __future__ import annotations

from typing import assert_never

import msgspec

from contracts.envelope import RecordedEvent
from contracts.events.canvas import (
    CanvasEvent,
    GroupCreated,
    GroupDeleted,
    GroupingChanged,
    GroupMembersChanged,
    GroupRenamed,
    GroupsCollapsed,
    NodesMoved,
    PositionsReset,
    ViewportChanged,
)
from projections.runtime import Connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS canvas_workspaces (
    tenant_id   text        NOT NULL,
    project_id  text        NOT NULL,
    workspace   text        NOT NULL,
    grouping    text,
    viewport    json,
    collapsed   text[]      NOT NULL DEFAULT '{}',
    version     integer     NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text        NOT NULL,
    PRIMARY KEY (tenant_id, project_id, workspace)
);
CREATE TABLE IF NOT EXISTS canvas_positions (
    tenant_id   text             NOT NULL,
    project_id  text             NOT NULL,
    workspace   text             NOT NULL,
    node_uuid   uuid             NOT NULL,
    x           double precision NOT NULL,
    y           double precision NOT NULL,
    PRIMARY KEY (tenant_id, project_id, workspace, node_uuid)
);
CREATE TABLE IF NOT EXISTS canvas_groups (
    tenant_id   text        NOT NULL,
    project_id  text        NOT NULL,
    workspace   text        NOT NULL,
    group_id    text        NOT NULL,
    name        text        NOT NULL,
    members     uuid[]      NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, project_id, workspace, group_id)
);
"""

TABLES = ("canvas_workspaces", "canvas_positions", "canvas_groups")

_json = msgspec.json.Encoder()


class CanvasProjector:
    """The canvas read model (checkpoint name ``canvas``)."""

    @property
    def name(self) -> str:
        return "canvas"

    @property
    def schema(self) -> str:
        return SCHEMA

    @property
    def tables(self) -> tuple[str, ...]:
        return TABLES

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        payload = event.payload
        if not isinstance(payload, CanvasEvent):
            return
        where = (event.tenant_id, payload.project_id, payload.workspace)
        advanced = await conn.fetchval(
            "INSERT INTO canvas_workspaces AS w (tenant_id, project_id, workspace, version, updated_at, updated_by) "
            "VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (tenant_id, project_id, workspace) DO UPDATE "
            "SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by "
            "WHERE w.version < EXCLUDED.version RETURNING true",
            *where, event.version, event.occurred_at, event.metadata.actor.subject,
        )  # fmt: skip
        if advanced:
            await self._apply(conn, where, payload)

    async def _apply(self, conn: Connection, where: tuple[str, str, str], payload: CanvasEvent) -> None:
        key = "tenant_id = $1 AND project_id = $2 AND workspace = $3"
        match payload:
            case NodesMoved():
                await conn.executemany(
                    "INSERT INTO canvas_positions (tenant_id, project_id, workspace, node_uuid, x, y) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, project_id, workspace, node_uuid) "
                    "DO UPDATE SET x = EXCLUDED.x, y = EXCLUDED.y",
                    [(*where, p.node_uuid, p.x, p.y) for p in payload.positions],
                )
            case PositionsReset():
                if payload.node_uuids:
                    await conn.execute(
                        f"DELETE FROM canvas_positions WHERE {key} AND node_uuid = ANY($4::uuid[])",
                        *where, list(payload.node_uuids),
                    )  # fmt: skip
                else:
                    await conn.execute(f"DELETE FROM canvas_positions WHERE {key}", *where)
            case GroupCreated():
                await conn.execute(
                    "INSERT INTO canvas_groups (tenant_id, project_id, workspace, group_id, name, members, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    *where, payload.group_id, payload.name, list(payload.members), payload.created_at,
                )  # fmt: skip
            case GroupRenamed():
                await conn.execute(
                    f"UPDATE canvas_groups SET name = $5 WHERE {key} AND group_id = $4",
                    *where, payload.group_id, payload.name,
                )  # fmt: skip
            case GroupMembersChanged():
                await conn.execute(
                    f"UPDATE canvas_groups SET members = $5 WHERE {key} AND group_id = $4",
                    *where, payload.group_id, list(payload.members),
                )  # fmt: skip
            case GroupDeleted():
                await conn.execute(f"DELETE FROM canvas_groups WHERE {key} AND group_id = $4", *where, payload.group_id)
                await conn.execute(
                    f"UPDATE canvas_workspaces SET collapsed = array_remove(collapsed, $4) WHERE {key}",
                    *where, f"group:{payload.group_id}",
                )  # fmt: skip
            case GroupsCollapsed():
                sql = (
                    "SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}') FROM unnest(collapsed || $4::text[]) k"
                    if payload.collapsed
                    else "SELECT coalesce(array_agg(k ORDER BY k), '{}') FROM unnest(collapsed) k "
                    "WHERE NOT k = ANY($4::text[])"
                )
                await conn.execute(
                    f"UPDATE canvas_workspaces SET collapsed = ({sql}) WHERE {key}", *where, list(payload.keys)
                )
            case GroupingChanged():
                await conn.execute(f"UPDATE canvas_workspaces SET grouping = $4 WHERE {key}", *where, payload.grouping)
            case ViewportChanged():
                await conn.execute(
                    f"UPDATE canvas_workspaces SET viewport = $4::json WHERE {key}",
                    *where, _json.encode(payload.viewport).decode(),
                )  # fmt: skip
            case _:
                assert_never(payload)
