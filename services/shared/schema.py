"""Tables that belong to the command side's own infrastructure (run logs, leases, the layout cache), not to an
event-sourced read model: created on first use, idempotently, once per pool and table."""

from __future__ import annotations

import asyncpg

_ensured: dict[tuple[int, str], asyncpg.Pool] = {}
"""Pools whose database has a table, by (pool id, table name) (asyncpg pools cannot be weakly referenced:
closed ones are pruned instead)."""


async def ensure_schema(pool: asyncpg.Pool, name: str, ddl: str) -> None:
    """Run ``ddl`` (``CREATE ... IF NOT EXISTS``) unless this pool already did for ``name``. Processes starting
    together take an advisory lock first, so that their CREATEs do not collide."""
    if _ensured.get((id(pool), name)) is pool:
        return
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"lockgate.{name}")
        await conn.execute(ddl)
    for key, known in list(_ensured.items()):
        if known.is_closing():
            del _ensured[key]
    _ensured[(id(pool), name)] = pool
