"""Layouts kept in PostgreSQL, gzip-compressed, at most ``KEEP_PER_PROJECT`` per project (the oldest go first).

Stored as the encoded ``GraphLayout`` document, so a read sends the stored bytes as they are
(``Content-Encoding: gzip``) without decoding ten thousand positions. Not an event-sourced read model: a cache of
derived data (ADR 0014), created on first use like the run logs.
"""

from __future__ import annotations

import gzip
import math
from datetime import UTC, datetime

import asyncpg
import msgspec

from contracts.api.layouts import GraphLayout, LayoutBody
from services.shared.errors import ContractViolationError
from services.shared.schema import ensure_schema

KEEP_PER_PROJECT = 64
COORDINATE_LIMIT = 100_000_000.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_layouts (
    tenant_id     text        NOT NULL,
    project_id    text        NOT NULL,
    graph_version integer     NOT NULL,
    layout_key    text        NOT NULL,
    items         integer     NOT NULL,
    document      bytea       NOT NULL,
    stored_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, project_id, graph_version, layout_key)
);
CREATE INDEX IF NOT EXISTS graph_layouts_age ON graph_layouts (tenant_id, project_id, stored_at DESC);
"""


def _check(body: LayoutBody) -> None:
    for item, (x, y) in body.positions.items():
        if not (math.isfinite(x) and math.isfinite(y) and abs(x) <= COORDINATE_LIMIT and abs(y) <= COORDINATE_LIMIT):
            raise ContractViolationError(
                f"position of {item[:100]!r} must be finite numbers within ±{COORDINATE_LIMIT:g}", field="positions"
            )
    if not math.isfinite(body.elapsed_ms):
        raise ContractViolationError("elapsed_ms must be a finite number", field="elapsed_ms")


async def put_layout(
    pool: asyncpg.Pool, tenant: str, project: str, *, graph_version: int, key: str, body: LayoutBody
) -> GraphLayout:
    _check(body)
    await ensure_schema(pool, "graph_layouts", SCHEMA)
    layout = GraphLayout(
        graph_version=graph_version,
        key=key,
        engine=body.engine,
        positions=body.positions,
        elapsed_ms=body.elapsed_ms,
        created_at=datetime.now(UTC),
    )
    document = gzip.compress(msgspec.json.encode(layout), compresslevel=5)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO graph_layouts (tenant_id, project_id, graph_version, layout_key, items, document, stored_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, project_id, graph_version, layout_key) "
            "DO UPDATE SET items = EXCLUDED.items, document = EXCLUDED.document, stored_at = EXCLUDED.stored_at",
            tenant, project, graph_version, key, len(body.positions), document, layout.created_at,
        )  # fmt: skip
        await conn.execute(
            "DELETE FROM graph_layouts WHERE tenant_id = $1 AND project_id = $2 AND (graph_version, layout_key) IN "
            "(SELECT graph_version, layout_key FROM graph_layouts WHERE tenant_id = $1 AND project_id = $2 "
            "ORDER BY stored_at DESC OFFSET $3)",
            tenant, project, KEEP_PER_PROJECT,
        )  # fmt: skip
    return layout


async def get_layout(pool: asyncpg.Pool, tenant: str, project: str, graph_version: int, key: str) -> bytes | None:
    """The stored ``GraphLayout`` document, gzip-compressed; None when none is kept."""
    await ensure_schema(pool, "graph_layouts", SCHEMA)
    document: bytes | None = await pool.fetchval(
        "SELECT document FROM graph_layouts "
        "WHERE tenant_id = $1 AND project_id = $2 AND graph_version = $3 AND layout_key = $4",
        tenant, project, graph_version, key,
    )  # fmt: skip
    return document
