"""Queries of the canvas read model, scoped to one tenant, project and workspace."""

from __future__ import annotations

import msgspec
from asyncpg import Pool

from contracts.api.canvas import CanvasGroupView, CanvasView, WorkspaceName
from contracts.events.canvas import Viewport

_viewport = msgspec.json.Decoder(Viewport)


async def get_canvas(db: Pool, tenant: str, project: str, workspace: str, name: WorkspaceName) -> CanvasView:
    """The workspace as arranged so far (version 0 and defaults when nothing was arranged yet)."""
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(
            "SELECT grouping, viewport::text AS viewport, collapsed, version, updated_by FROM canvas_workspaces "
            "WHERE tenant_id = $1 AND project_id = $2 AND workspace = $3",
            tenant, project, workspace,
        )  # fmt: skip
        if row is None:
            return CanvasView(project_id=project, workspace=name, version=0)
        positions = await conn.fetch(
            "SELECT node_uuid::text AS node, x, y FROM canvas_positions "
            "WHERE tenant_id = $1 AND project_id = $2 AND workspace = $3",
            tenant, project, workspace,
        )  # fmt: skip
        groups = await conn.fetch(
            "SELECT group_id, name, members FROM canvas_groups "
            "WHERE tenant_id = $1 AND project_id = $2 AND workspace = $3 ORDER BY name, group_id",
            tenant, project, workspace,
        )  # fmt: skip
    return CanvasView(
        project_id=project,
        workspace=name,
        version=row["version"],
        grouping=row["grouping"],
        viewport=_viewport.decode(row["viewport"]) if row["viewport"] is not None else None,
        collapsed=sorted(row["collapsed"]),
        positions={p["node"]: (p["x"], p["y"]) for p in positions},
        groups=[CanvasGroupView(group_id=g["group_id"], name=g["name"], members=list(g["members"])) for g in groups],
        updated_by=row["updated_by"],
    )
