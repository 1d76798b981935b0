"""Run leases: which runner executes which run, and the per-environment concurrency quota (ADR 0013).

A lease is operational state, not history: one row per run being executed, in the store's database. The
history (who ran what, when, how it ended) is the run stream's events; the lease only answers "who holds
this run right now, and is that runner alive". It gives three guarantees:

* **one holder**: ``(tenant_id, run_id)`` is the primary key, so two runners cannot both take a run;
* **a quota per environment**: claims of one environment are serialised on that environment's row of
  ``runner_slots`` (``SELECT ... FOR UPDATE``), so counting its leases and inserting one is atomic;
* **liveness**: the holder renews ``expires_at`` every heartbeat. A runner that cannot renew before its
  lease expires stops dbt itself (self-fencing); the reaper acts on a lease only once it has been expired
  for a further ``grace``, so a lost runner has stopped before its run is failed or handed to another.

Times are the database's (``now()``), so runners' clocks do not matter.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import asyncpg
import msgspec

from services.shared.schema import ensure_schema

SCHEMA = """
CREATE TABLE IF NOT EXISTS runner_slots (
    tenant_id       text NOT NULL,
    project_id      text NOT NULL,
    environment_id  text NOT NULL,
    PRIMARY KEY (tenant_id, project_id, environment_id)
);
CREATE TABLE IF NOT EXISTS runner_leases (
    tenant_id       text        NOT NULL,
    run_id          uuid        NOT NULL,
    project_id      text        NOT NULL,
    environment_id  text        NOT NULL,
    runner_id       text        NOT NULL,
    attempt         integer     NOT NULL,
    acquired_at     timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);
CREATE INDEX IF NOT EXISTS runner_leases_by_environment ON runner_leases (tenant_id, project_id, environment_id);
CREATE INDEX IF NOT EXISTS runner_leases_by_expiry ON runner_leases (expires_at);
"""


class Claim(Enum):
    CLAIMED = "claimed"
    BUSY = "busy"
    """The environment runs its quota of runs already."""
    TAKEN = "taken"
    """Another runner holds this run."""


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    run_id: uuid.UUID
    project_id: str
    environment_id: str
    runner_id: str
    attempt: int
    acquired_at: datetime
    expires_at: datetime


class Leases:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def ensure_schema(self) -> None:
        await ensure_schema(self._pool, "runner_leases", SCHEMA)

    async def claim(
        self,
        *,
        tenant_id: str,
        run_id: uuid.UUID,
        project_id: str,
        environment_id: str,
        runner_id: str,
        attempt: int,
        quota: int,
        ttl: float,
    ) -> Claim:
        async with self._pool.acquire() as conn, conn.transaction():
            slot = (tenant_id, project_id, environment_id)
            await conn.execute("INSERT INTO runner_slots VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", *slot)
            await conn.execute(
                "SELECT 1 FROM runner_slots WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3 "
                "FOR UPDATE",
                *slot,
            )
            if await conn.fetchval(
                "SELECT 1 FROM runner_leases WHERE tenant_id = $1 AND run_id = $2", tenant_id, run_id
            ):
                return Claim.TAKEN
            active: int = await conn.fetchval(
                "SELECT count(*) FROM runner_leases WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3",
                tenant_id,
                project_id,
                environment_id,
            )
            if active >= quota:
                return Claim.BUSY
            await conn.execute(
                "INSERT INTO runner_leases (tenant_id, run_id, project_id, environment_id, runner_id, attempt, "
                "expires_at) VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
                tenant_id,
                run_id,
                project_id,
                environment_id,
                runner_id,
                attempt,
                ttl,
            )
            return Claim.CLAIMED

    async def renew(self, tenant_id: str, run_id: uuid.UUID, runner_id: str, ttl: float) -> bool:
        """Extend the lease; False when it is no longer this runner's (reaped): the runner must stop dbt."""
        renewed = await self._pool.fetchval(
            "UPDATE runner_leases SET expires_at = now() + make_interval(secs => $4) "
            "WHERE tenant_id = $1 AND run_id = $2 AND runner_id = $3 AND expires_at > now() RETURNING 1",
            tenant_id,
            run_id,
            runner_id,
            ttl,
        )
        return renewed is not None

    async def release(self, tenant_id: str, run_id: uuid.UUID, runner_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM runner_leases WHERE tenant_id = $1 AND run_id = $2 AND runner_id = $3",
            tenant_id,
            run_id,
            runner_id,
        )

    async def expired(self, grace: float, limit: int = 100) -> list[Lease]:
        """Leases expired for more than ``grace`` seconds: their runners have stopped (or fenced themselves)."""
        rows = await self._pool.fetch(
            "SELECT tenant_id, run_id, project_id, environment_id, runner_id, attempt, acquired_at, expires_at "
            "FROM runner_leases WHERE expires_at < now() - make_interval(secs => $1) ORDER BY expires_at LIMIT $2",
            grace,
            limit,
        )
        return [Lease(**dict(row)) for row in rows]

    async def holder(self, tenant_id: str, run_id: uuid.UUID) -> Lease | None:
        row = await self._pool.fetchrow(
            "SELECT tenant_id, run_id, project_id, environment_id, runner_id, attempt, acquired_at, expires_at "
            "FROM runner_leases WHERE tenant_id = $1 AND run_id = $2",
            tenant_id,
            run_id,
        )
        return None if row is None else Lease(**dict(row))

    async def active(self, tenant_id: str, project_id: str, environment_id: str) -> int:
        count: int = await self._pool.fetchval(
            "SELECT count(*) FROM runner_leases WHERE tenant_id = $1 AND project_id = $2 AND environment_id = $3",
            tenant_id,
            project_id,
            environment_id,
        )
        return count
