"""Read-your-writes: a catch-up returns only once every event committed before it is applied, even while
an older transaction elsewhere in the cluster hides that event from tailing readers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg

from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, RecordedEvent
from contracts.events.tenancy import TenantCreated
from contracts.ids import new_uuid
from projections.runner import ProjectionRunner
from projections.runtime import Connection
from services.shared.eventstore.port import NO_STREAM
from services.shared.eventstore.postgres import PostgresEventStore


class SeenIds:
    name = "ryw_probe"
    schema = "CREATE TABLE IF NOT EXISTS ryw_probe (event_id uuid PRIMARY KEY)"
    tables = ("ryw_probe",)

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        await conn.execute("INSERT INTO ryw_probe VALUES ($1)", event.event_id)


async def test_catch_up_waits_for_an_event_hidden_by_an_older_open_transaction(
    store: PostgresEventStore, pg_url: str
) -> None:
    blocker = await asyncpg.connect(pg_url)
    blocking = blocker.transaction()
    await blocking.start()
    await blocker.fetchval("SELECT pg_current_xact_id()")  # takes an xid older than the append below: the horizon
    try:
        now = datetime.now(UTC)
        payload = TenantCreated(tenant_id="acme", name="Acme", created_at=now)
        result = await store.for_tenant("acme").append(
            "tenant-acme",
            [NewEvent(event_id=new_uuid(), payload=payload, occurred_at=now)],
            expected_version=NO_STREAM,
            metadata=Metadata(actor=Actor(subject="t"), correlation_id=uuid.uuid4()),
        )
        assert await store.read_all(ORIGIN) == [], "the open transaction hides the committed event"
        runner = ProjectionRunner(SeenIds(), store.pool, store)
        catching_up = asyncio.create_task(runner.catch_up())
        await asyncio.sleep(0.3)
        assert not catching_up.done(), "catch_up returned before the committed event was applied"
        await blocking.rollback()
        async with asyncio.timeout(10):
            position = await catching_up
        assert position == result.positions[-1]
        assert await store.pool.fetchval("SELECT count(*) FROM ryw_probe") == 1
    finally:
        await blocker.close()
