"""A transient failure must not leave a process without its workers: the runner's polling tickets survive a read
model that is slow to catch up, and a worker that fails is started again (after a pause) until the runtime
closes. Found in use: under heavy load a 5 s catch-up timeout killed the in-process runner for good, and approved
runs then waited forever."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg

from services.runner.tickets import PollingTickets
from services.runtime import Runtime
from services.shared.errors import InfrastructureError
from services.shared.settings import Settings


async def test_polling_tickets_look_again_after_a_slow_catch_up(pg_url: str) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    run_id = uuid.uuid4()
    try:
        await pool.execute(
            "CREATE TABLE runs (tenant_id text, run_id uuid, status text, updated_at timestamptz DEFAULT now());"
            "CREATE TABLE runner_leases (tenant_id text, run_id uuid)"
        )
        await pool.execute("INSERT INTO runs (tenant_id, run_id, status) VALUES ('acme', $1, 'approved')", run_id)
        calls = 0

        async def slow_then_fine() -> None:
            nonlocal calls
            calls += 1
            if calls <= 2:
                raise InfrastructureError("the runs read model did not catch up within 5.0 s")

        tickets = PollingTickets(pool, slow_then_fine, interval=0.01)
        ticket = await asyncio.wait_for(tickets.next(asyncio.Event()), timeout=5)
        assert ticket is not None
        assert (ticket.tenant_id, ticket.run_id) == ("acme", run_id)
        assert calls == 3
    finally:
        await pool.close()


async def test_a_failing_worker_is_started_again_until_the_runtime_closes(pg_url: str, tmp_path: Path) -> None:
    runtime = await Runtime.open(Settings(database_url=pg_url, home=tmp_path))
    starts: list[float] = []
    finished = asyncio.Event()

    async def flaky(stop: asyncio.Event) -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) < 3:
            raise RuntimeError("transient")
        finished.set()
        await stop.wait()

    try:
        runtime.start_worker("flaky", flaky)
        await asyncio.wait_for(finished.wait(), timeout=10)
    finally:
        await runtime.close()
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.9  # a pause before each new start, growing
    assert starts[2] - starts[1] >= 1.9
