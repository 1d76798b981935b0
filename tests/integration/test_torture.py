"""Torture: 4 writers commit concurrently, holding their transactions open for random times between inserts,
while a tailing reader (``read_all``), the relay and a JetStream consumer follow the table. None of them may
miss or repeat an event, and all must see the same order: the store's commit-safe ``(tx_id, position)`` order.

A naive reader that tails by ``global_position`` alone runs beside them as the control: it must miss events,
which shows that the workload really commits out of order (DESIGN.md §2, EVENTSTORE.md §3.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import msgspec
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient

from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, Position, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from services.shared.bus.nats import JetStreamFeed, connect_nats
from services.shared.bus.relay import Relay
from services.shared.eventstore.postgres import NOTIFY_CHANNEL, PostgresEventStore

pytestmark = pytest.mark.slow


class Deposited(Event, frozen=True, kw_only=True, tag="torturetest.deposited.v1"):
    writer: int
    n: int


REGISTRY = EventRegistry()
REGISTRY.register(Deposited)
WRITERS = 4
TRANSACTIONS_PER_WRITER = 2000
ROLLBACK_SHARE = 0.05
MAX_HOLD_S = 0.004
DEADLINE_S = 90.0

# The store's columns, written around it in explicit transactions that stay open between inserts.
_INSERT = """
INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata, occurred_at)
VALUES ($1, $2, $3, $4, 'torturetest.deposited.v1', 1, $5::jsonb, $6::jsonb, $7)
"""
_METADATA = msgspec.json.encode(Metadata(actor=Actor(subject="user:torture"), correlation_id=uuid.uuid4())).decode()


async def writer(url: str, number: int, committed: list[uuid.UUID]) -> None:
    rng = random.Random(number)
    conn = await asyncpg.connect(url)
    version = 0
    try:
        for _ in range(TRANSACTIONS_PER_WRITER):
            ids = [new_uuid() for _ in range(rng.randint(1, 3))]
            tx = conn.transaction()
            await tx.start()
            for offset, event_id in enumerate(ids, start=1):
                data = msgspec.json.encode({"writer": number, "n": version + offset}).decode()
                await conn.execute(
                    _INSERT, event_id, ("acme", "globex")[number % 2], f"account-{number}",
                    version + offset, data, _METADATA, datetime.now(UTC),
                )  # fmt: skip
                await asyncio.sleep(rng.uniform(0, MAX_HOLD_S))  # held open: other writers commit past it
            if rng.random() < 0.3:
                await conn.execute(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")  # sent at commit
            if rng.random() < ROLLBACK_SHARE:
                await tx.rollback()
                continue
            await tx.commit()
            version += len(ids)
            committed.extend(ids)
    finally:
        await conn.close()


class Tail:
    """A ``read_all`` loop from the origin, as a catch-up projector runs it."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.ids: list[uuid.UUID] = []

    async def run(self, stop: asyncio.Event) -> None:
        position = ORIGIN
        while not stop.is_set():
            batch = await self.store.read_all(position, limit=500)
            if not batch:
                await asyncio.sleep(0.002)  # this is the poll under test, not a synchronisation
                continue
            self.ids.extend(event.event_id for event in batch)
            position = batch[-1].position


class NaiveTail:
    """The control: tails by ``global_position`` alone, which skips rows that commit after a younger one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[uuid.UUID] = []

    async def run(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self.url)
        last = 0
        try:
            while not stop.is_set():
                rows = await conn.fetch(
                    "SELECT event_id, global_position FROM events WHERE global_position > $1 "
                    "ORDER BY global_position LIMIT 500",
                    last,
                )
                if not rows:
                    await asyncio.sleep(0.002)
                    continue
                self.ids.extend(row["event_id"] for row in rows)
                last = rows[-1]["global_position"]
        finally:
            await conn.close()


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    store = PostgresEventStore(await asyncpg.create_pool(pg_url, min_size=1, max_size=6), registry=REGISTRY)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def nc(nats_url: str, nats_names: tuple[str, str]) -> AsyncIterator[NatsClient]:
    client = await connect_nats(nats_url, name="test-torture", max_reconnect_attempts=3)
    try:
        yield client
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(nats_names[0])
        await client.close()


async def wait_for(condition: object, what: str, tasks: list[asyncio.Task[None]]) -> None:
    assert callable(condition)
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        for task in tasks:
            if task.done():
                task.result()
                pytest.fail(f"a follower stopped before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.mark.timeout(180)
async def test_concurrent_out_of_order_commits_are_seen_once_each_and_in_one_order_by_every_follower(
    es: PostgresEventStore, pg_url: str, nc: NatsClient, nats_names: tuple[str, str]
) -> None:
    stream, prefix = nats_names
    relay = Relay(es, nc, stream=stream, prefix=prefix)
    feed = JetStreamFeed(nc, stream=stream, prefix=prefix, registry=REGISTRY, idle_check=0.3)
    consumed: list[RecordedEvent] = []

    async def consume(batch: list[RecordedEvent]) -> None:
        consumed.extend(batch)

    tail, naive = Tail(es), NaiveTail(pg_url)
    stop = asyncio.Event()
    followers = [
        asyncio.create_task(tail.run(stop)),
        asyncio.create_task(naive.run(stop)),
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(feed.run("torture", ORIGIN, consume, stop)),
    ]
    committed: list[uuid.UUID] = []
    try:
        await asyncio.gather(*(writer(pg_url, number, committed) for number in range(WRITERS)))
        total = len(committed)
        await wait_for(lambda: len(tail.ids) >= total, "the tailing reader to see every commit", followers)
        await wait_for(lambda: len(consumed) >= total, "the consumer to see every commit", followers)
        row = await es.pool.fetchrow(
            "SELECT tx_id::text::bigint AS tx_id, global_position FROM events "
            "ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1"
        )
        assert row is not None
        last = Position(row["tx_id"], row["global_position"])
        await wait_for(lambda: relay.stats.checkpoint == last, "the relay to reach the last commit", followers)
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE_S):
            await asyncio.gather(*followers)

    truth = [event.event_id for event in await es.read_all(ORIGIN, limit=1_000_000)]
    assert sorted(truth) == sorted(committed)  # every commit, once; no rolled-back event
    assert tail.ids == truth
    assert [event.event_id for event in consumed] == truth
    assert relay.stats.published == len(truth)
    assert (await nc.jetstream().stream_info(stream)).state.messages == len(truth)
    positions = [event.position for event in consumed]
    assert positions == sorted(positions)
    missed_by_naive = len(set(committed) - set(naive.ids))
    assert missed_by_naive > 0, "the control saw everything: the workload did not commit out of order"
