"""Property (ADR 0005): for random event sequences and random schedules of incremental processing, with
redeliveries, restarts, catch-ups, resets by a replay elsewhere and random batch sizes, the read model equals
the one that a single rebuild from position 0 gives; and both equal a plain fold over the stored order.

Runs against the real PostgreSQL. One database per test run: the events of earlier examples stay in the
append-only store (they are a common prefix of both paths); the read-model tables and checkpoints are
dropped between examples. The projector is order-sensitive on purpose (running hashes per stream and per
tenant, last-writer fields), and records each applied position under a primary key, so an event applied
twice fails loudly and an event applied out of order changes a hash.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, Position, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from projections.replay import replay, reset
from projections.runner import ProjectionRunner
from projections.runtime import Connection
from services.shared.eventstore.postgres import PostgresEventStore

pytestmark = pytest.mark.timeout(300)  # a runner that loops instead of failing must not hang the suite


class Credited(Event, frozen=True, kw_only=True, tag="projprop.credited.v1"):
    amount: int


class Debited(Event, frozen=True, kw_only=True, tag="projprop.debited.v1"):
    amount: int


class Remarked(Event, frozen=True, kw_only=True, tag="projprop.remarked.v1"):
    text: str


REGISTRY = EventRegistry()
REGISTRY.register(Credited, Debited, Remarked)
ACTOR = Actor(subject="user:prop")

TENANTS = ("t1", "t2", "t3")
STREAMS = ("acct-a", "acct-b", "acct-c")


def delta_of(event: RecordedEvent) -> int | None:
    match event.payload:
        case Credited(amount=amount):
            return amount
        case Debited(amount=amount):
            return -amount
        case _:
            return None  # Remarked: not this read model's business, but it still moves the checkpoint


def piece(event: RecordedEvent, delta: int) -> str:
    return f"{event.event_id}:{delta}"


class LedgerProjector:
    """Per stream: count, sum, last amount, running hash; per tenant: count, running hash; applied positions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tables = (f"{name}_streams", f"{name}_tenants", f"{name}_seen")
        self.schema = f"""
CREATE TABLE IF NOT EXISTS {name}_streams (tenant_id text, stream_id text, n int NOT NULL, total bigint NOT NULL,
    last_amount int NOT NULL, chain text NOT NULL, PRIMARY KEY (tenant_id, stream_id));
CREATE TABLE IF NOT EXISTS {name}_tenants (tenant_id text PRIMARY KEY, n int NOT NULL, chain text NOT NULL);
CREATE TABLE IF NOT EXISTS {name}_seen (tx_id bigint, global_position bigint, PRIMARY KEY (tx_id, global_position));
"""

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        delta = delta_of(event)
        if delta is None:
            return
        step = piece(event, delta)
        await conn.execute(
            f"INSERT INTO {self.name}_streams AS s VALUES ($1, $2, 1, $3::int, $3::int, md5(':' || $4::text)) "
            "ON CONFLICT (tenant_id, stream_id) DO UPDATE SET n = s.n + 1, total = s.total + $3::int, "
            "last_amount = $3::int, chain = md5(s.chain || ':' || $4::text)",
            event.tenant_id, event.stream_id, delta, step,
        )  # fmt: skip
        await conn.execute(
            f"INSERT INTO {self.name}_tenants AS t VALUES ($1, 1, md5(':' || $2::text)) "
            "ON CONFLICT (tenant_id) DO UPDATE SET n = t.n + 1, chain = md5(t.chain || ':' || $2::text)",
            event.tenant_id, step,
        )  # fmt: skip
        await conn.execute(
            f"INSERT INTO {self.name}_seen VALUES ($1, $2)", event.position.tx_id, event.position.global_position
        )


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def fold(events: list[RecordedEvent]) -> dict[str, list[tuple[Any, ...]]]:
    """The oracle: the same read model as a plain fold over the stored order, in the shape ``snapshot`` returns."""
    streams: dict[tuple[str, str], tuple[int, int, int, str]] = {}
    tenants: dict[str, tuple[int, str]] = {}
    seen = []
    for event in events:
        delta = delta_of(event)
        if delta is None:
            continue
        step = piece(event, delta)
        n, total, _, chain = streams.get((event.tenant_id, event.stream_id), (0, 0, 0, ""))
        streams[event.tenant_id, event.stream_id] = (n + 1, total + delta, delta, md5(f"{chain}:{step}"))
        tn, tchain = tenants.get(event.tenant_id, (0, ""))
        tenants[event.tenant_id] = (tn + 1, md5(f"{tchain}:{step}"))
        seen.append((event.position.tx_id, event.position.global_position))
    return {
        "streams": sorted((t, s, *v) for (t, s), v in streams.items()),
        "tenants": sorted((t, *v) for t, v in tenants.items()),
        "seen": sorted(seen),
    }


async def snapshot(pool: asyncpg.Pool, name: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [tuple(r) for r in await pool.fetch(f"SELECT * FROM {name}_{table} ORDER BY 1, 2")]
        for table in ("streams", "tenants", "seen")
    }


# -- the schedule ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Append:
    """Concurrent appends (one transaction each): (tenant, stream, [(kind, amount)])."""

    writes: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...]


@dataclass(frozen=True)
class Deliver:
    size: int


@dataclass(frozen=True)
class Redeliver:
    """The feed goes back ``back`` events (unacked or redelivered messages) and delivers ``size``."""

    back: int
    size: int


@dataclass(frozen=True)
class Restart:
    """A new runner instance; the feed resumes at or up to ``back`` events before its checkpoint."""

    back: int
    page_size: int


@dataclass(frozen=True)
class CatchUp:
    """The runner reads straight from the store (read-your-writes or a start-up catch-up)."""


@dataclass(frozen=True)
class ResetElsewhere:
    """A replay in another process empties the read model and its checkpoint (and dies before catching up)."""


Step = Append | Deliver | Redeliver | Restart | CatchUp | ResetElsewhere

kinds = st.sampled_from(("credit", "debit", "remark"))
new_events = st.lists(st.tuples(kinds, st.integers(1, 1000)), min_size=1, max_size=4).map(tuple)
one_write = st.tuples(st.sampled_from(TENANTS), st.sampled_from(STREAMS), new_events)
steps: st.SearchStrategy[Step] = st.one_of(
    st.builds(Append, st.lists(one_write, min_size=1, max_size=3).map(tuple)),
    st.builds(Deliver, st.integers(1, 8)),
    st.builds(Redeliver, st.integers(1, 12), st.integers(1, 8)),
    st.builds(Restart, st.integers(0, 12), st.integers(1, 10)),
    st.just(CatchUp()),
    st.just(ResetElsewhere()),
)
schedules = st.lists(steps, min_size=1, max_size=30)


class ScriptedFeed:
    """An in-order, at-least-once feed under the test's control: a log read from the store, and a cursor."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.log: list[RecordedEvent] = []
        self.cursor = 0

    async def next(self, size: int) -> list[RecordedEvent]:
        missing = self.cursor + size - len(self.log)
        if missing > 0:
            after = self.log[-1].position if self.log else ORIGIN
            self.log += await self.store.read_all(after, limit=missing)
        batch = self.log[self.cursor : self.cursor + size]
        self.cursor += len(batch)
        return batch

    def back(self, n: int) -> None:
        self.cursor = max(0, self.cursor - n)

    def resume_after(self, checkpoint: Position, back: int) -> None:
        """Where a feed asked for "everything after the checkpoint" may restart (never past it)."""
        delivered_up_to_checkpoint = bisect.bisect_right([e.position for e in self.log], checkpoint)
        self.cursor = max(0, min(self.cursor, delivered_up_to_checkpoint) - back)


def kind_to_payload(kind: str, amount: int) -> Event:
    if kind == "credit":
        return Credited(amount=amount)
    if kind == "debit":
        return Debited(amount=amount)
    return Remarked(text=f"note {amount}")


async def append(store: PostgresEventStore, tenant: str, stream: str, specs: tuple[tuple[str, int], ...]) -> Position:
    events = [
        NewEvent(event_id=new_uuid(), payload=kind_to_payload(kind, amount), occurred_at=datetime.now(UTC))
        for kind, amount in specs
    ]
    result = await store.for_tenant(tenant).append(
        stream, events, expected_version=None, metadata=Metadata(actor=ACTOR, correlation_id=uuid.uuid4())
    )
    return result.positions[-1]


async def visible(store: PostgresEventStore, position: Position) -> None:
    """The horizon waits for every older transaction of the shared cluster; nothing to await but polling."""
    async with asyncio.timeout(10):
        while await store.head() < position:
            await asyncio.sleep(0.005)


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    pool = await asyncpg.create_pool(pg_url, min_size=2, max_size=8)
    store = PostgresEventStore(pool, registry=REGISTRY, notify=False)
    try:
        yield store
    finally:
        await store.close()


INCREMENTAL, REBUILT = "prop_incremental", "prop_rebuilt"


@settings(
    max_examples=60,
    deadline=None,
    # One database for all examples on purpose (creating one per example costs far more); the tables are
    # reset at the start of each example below.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=schedules, first_page=st.integers(1, 10), drain=st.integers(1, 9))
# Found by this test: a reset by a replay elsewhere, then nothing more from the feed; the final catch-up must
# still notice that the stored checkpoint went back (it reloads it) instead of trusting its own memory.
@example(
    schedule=[Append((("t3", "acct-a", (("debit", 183),)),)), Redeliver(1, 8), Deliver(8), ResetElsewhere()],
    first_page=1,
    drain=1,
)
async def test_incremental_processing_gives_the_read_model_of_one_rebuild(
    es: PostgresEventStore, schedule: list[Step], first_page: int, drain: int
) -> None:
    for name in (INCREMENTAL, REBUILT):
        await es.pool.execute(
            f"DROP TABLE IF EXISTS {name}_streams, {name}_tenants, {name}_seen; DELETE FROM checkpoints"
        )
    incremental = LedgerProjector(INCREMENTAL)
    runner = ProjectionRunner(incremental, es.pool, es, page_size=first_page)
    await runner.start()
    feed = ScriptedFeed(es)
    last = await es.head()  # events of earlier examples are already there

    for step in schedule:
        match step:
            case Append(writes):
                positions = await asyncio.gather(*(append(es, t, s, specs) for t, s, specs in writes))
                last = max(last, *positions)
            case Deliver(size):
                await runner.handle(await feed.next(size))
            case Redeliver(back, size):
                feed.back(back)
                await runner.handle(await feed.next(size))
            case Restart(back, page_size):
                runner = ProjectionRunner(LedgerProjector(INCREMENTAL), es.pool, es, page_size=page_size)
                feed.resume_after(await runner.start(), back)
            case CatchUp():
                await runner.catch_up()
            case ResetElsewhere():
                await reset(es.pool, [incremental])

    # Drain: the feed delivers the rest, then the runner makes sure it has reached the last append.
    await visible(es, last)
    while batch := await feed.next(drain):
        await runner.handle(batch)
    await runner.catch_up(until=last)

    report = await replay(es, [LedgerProjector(REBUILT)])

    stored = await es.read_all(ORIGIN, limit=1_000_000)
    assert report.events == len(stored)
    assert report.projections[0].position == runner.position == (stored[-1].position if stored else ORIGIN)
    rebuilt = await snapshot(es.pool, REBUILT)
    assert await snapshot(es.pool, INCREMENTAL) == rebuilt
    assert rebuilt == fold(stored)
