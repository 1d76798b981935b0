"""The projection runner and replay against the real store on PostgreSQL: restarts, failures, replay of one
projector among several, separate checkpoints, a replay beside a live runner, concurrent runners, a feed.

Event types are test-only and live in a private registry (nothing leaks into the process-wide one).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, Position, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from projections.replay import replay, reset
from projections.runner import ProjectionFailedError, ProjectionRunner, run_projectors
from projections.runtime import Connection
from services.shared.bus.inprocess import StoreFeed
from services.shared.bus.port import Handler
from services.shared.eventstore.postgres import PostgresEventStore

pytestmark = pytest.mark.timeout(120)  # a runner that loops instead of failing must not hang the suite


class Deposited(Event, frozen=True, kw_only=True, tag="projint.deposited.v1"):
    amount: int


class Noted(Event, frozen=True, kw_only=True, tag="projint.noted.v1"):
    text: str


REGISTRY = EventRegistry()
REGISTRY.register(Deposited, Noted)
ACTOR = Actor(subject="user:test")


class BalanceProjector:
    """Per (tenant, stream): number of deposits, their sum and the last event id; ignores ``Noted``."""

    def __init__(self, name: str, *, poison: int | None = None) -> None:
        self.name = name
        self.table = f"{name}_balances"
        self.poison = poison
        self.schema = f"""CREATE TABLE IF NOT EXISTS {self.table} (
            tenant_id text NOT NULL, stream_id text NOT NULL, n integer NOT NULL, total bigint NOT NULL,
            last_event uuid NOT NULL, PRIMARY KEY (tenant_id, stream_id))"""
        self.tables = (self.table,)

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        payload = event.payload
        if not isinstance(payload, Deposited):
            return
        if payload.amount == self.poison:
            raise ValueError(f"cannot take a deposit of {payload.amount}")
        await conn.execute(
            f"INSERT INTO {self.table} AS b VALUES ($1, $2, 1, $3, $4) ON CONFLICT (tenant_id, stream_id) "
            "DO UPDATE SET n = b.n + 1, total = b.total + EXCLUDED.total, last_event = EXCLUDED.last_event",
            event.tenant_id,
            event.stream_id,
            payload.amount,
            event.event_id,
        )


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=8)
    store = PostgresEventStore(pool, registry=REGISTRY)
    try:
        yield store
    finally:
        await store.close()


async def deposit(store: PostgresEventStore, tenant: str, stream: str, *amounts: int) -> Position:
    events = [
        NewEvent(event_id=new_uuid(), payload=Deposited(amount=a), occurred_at=datetime.now(UTC)) for a in amounts
    ]
    result = await store.for_tenant(tenant).append(
        stream, events, expected_version=None, metadata=Metadata(actor=ACTOR, correlation_id=uuid.uuid4())
    )
    return result.positions[-1]


async def note(store: PostgresEventStore, tenant: str, stream: str) -> Position:
    event = NewEvent(event_id=new_uuid(), payload=Noted(text="hi"), occurred_at=datetime.now(UTC))
    result = await store.for_tenant(tenant).append(
        stream, [event], expected_version=None, metadata=Metadata(actor=ACTOR, correlation_id=uuid.uuid4())
    )
    return result.positions[-1]


async def rows(store: PostgresEventStore, table: str) -> list[tuple[Any, ...]]:
    records = await store.pool.fetch(f"SELECT * FROM {table} ORDER BY tenant_id, stream_id")
    return [tuple(r) for r in records]


async def checkpoint(store: PostgresEventStore, name: str) -> Position | None:
    row = await store.pool.fetchrow(
        "SELECT tx_id::text::bigint AS tx, global_position AS pos FROM checkpoints WHERE name = $1", name
    )
    return None if row is None else Position(row["tx"], row["pos"])


async def sums(store: PostgresEventStore, table: str) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r[0], r[1]): (r[2], r[3]) for r in await rows(store, table)}


async def visible(store: PostgresEventStore, position: Position) -> None:
    """Wait until a tailing reader can see ``position``: the horizon waits for every older transaction of the
    whole (shared) cluster, so a just-committed event may stay hidden for a moment. Nothing to await but polling."""
    async with asyncio.timeout(10):
        while await store.head() < position:
            await asyncio.sleep(0.005)


def runner(store: PostgresEventStore, projector: BalanceProjector, page_size: int = 1000) -> ProjectionRunner:
    return ProjectionRunner(projector, store.pool, store, page_size=page_size)


async def test_a_restarted_runner_resumes_from_its_checkpoint_and_applies_nothing_twice(
    es: PostgresEventStore,
) -> None:
    await deposit(es, "t1", "acct-a", 1, 2, 3)
    head = await deposit(es, "t2", "acct-a", 10)
    first = runner(es, BalanceProjector("bal"), page_size=2)
    assert await first.catch_up(until=head) == head
    assert await checkpoint(es, "bal") == head
    await note(es, "t1", "acct-a")
    last = await deposit(es, "t1", "acct-b", 5, 6)

    second = runner(es, BalanceProjector("bal"), page_size=2)
    assert await second.start() == head
    assert await second.catch_up(until=last) == last

    assert second.applied == 3  # the note and two deposits; nothing of before the restart
    assert await sums(es, "bal_balances") == {
        ("t1", "acct-a"): (3, 6),
        ("t1", "acct-b"): (2, 11),
        ("t2", "acct-a"): (1, 10),
    }
    assert await checkpoint(es, "bal") == last


async def test_a_failing_projector_leaves_its_checkpoint_and_read_model_unchanged(es: PostgresEventStore) -> None:
    first = await deposit(es, "t1", "acct-a", 1, 2)
    projector = BalanceProjector("bal", poison=13)
    await runner(es, projector).catch_up(until=first)
    before_rows, before_checkpoint = await rows(es, "bal_balances"), await checkpoint(es, "bal")
    await deposit(es, "t1", "acct-a", 4)
    poisoned = await deposit(es, "t1", "acct-b", 13)
    last = await deposit(es, "t1", "acct-a", 5)
    poisoned_event = (await es.for_tenant("t1").read_stream("acct-b"))[0]
    await visible(es, last)  # so that the three arrive in one page

    with pytest.raises(ProjectionFailedError) as raised:
        await runner(es, projector).catch_up(until=last)  # one page: 4 applies, 13 raises, so 4 is rolled back too

    assert raised.value.projector == "bal"
    assert raised.value.event_id == poisoned_event.event_id
    assert raised.value.event_type == "projint.deposited.v1"
    assert raised.value.position == poisoned
    assert str(poisoned_event.event_id) in str(raised.value)
    assert await rows(es, "bal_balances") == before_rows
    assert await checkpoint(es, "bal") == before_checkpoint

    projector.poison = None  # the bug is fixed: the runner picks up where it stopped
    await runner(es, projector).catch_up(until=last)
    assert await sums(es, "bal_balances") == {("t1", "acct-a"): (4, 12), ("t1", "acct-b"): (1, 13)}


async def test_replay_of_one_projector_leaves_the_others_untouched(es: PostgresEventStore) -> None:
    await deposit(es, "t1", "acct-a", 1, 2, 3)
    last = await deposit(es, "t2", "acct-b", 4)
    a, b = BalanceProjector("alpha"), BalanceProjector("beta")
    for projector in (a, b):
        await runner(es, projector).catch_up(until=last)
    # Marks that only a rebuild removes: a row no event produced, and a drifted total.
    for table in ("alpha_balances", "beta_balances"):
        await es.pool.execute(f"INSERT INTO {table} VALUES ('t9', 'junk-x', 1, 1, $1)", uuid.uuid4())
        await es.pool.execute(f"UPDATE {table} SET total = total + 100 WHERE stream_id = 'acct-a'")
    beta_rows, beta_checkpoint = await rows(es, "beta_balances"), await checkpoint(es, "beta")

    report = await replay(es, [a, b], names=["alpha"])

    assert [(p.name, p.applied, p.position) for p in report.projections] == [("alpha", 4, last)]
    assert report.events == 4
    assert report.seconds > 0
    assert await sums(es, "alpha_balances") == {("t1", "acct-a"): (3, 6), ("t2", "acct-b"): (1, 4)}
    assert await checkpoint(es, "alpha") == last
    assert await rows(es, "beta_balances") == beta_rows
    assert await checkpoint(es, "beta") == beta_checkpoint


async def test_replay_of_all_projectors_reads_the_store_once_and_rebuilds_each(es: PostgresEventStore) -> None:
    last = ORIGIN
    for i in range(25):
        last = await deposit(es, f"t{i % 3}", f"acct-{i % 4}", i, i + 1)
    a, b = BalanceProjector("alpha"), BalanceProjector("beta")
    await runner(es, a).catch_up(until=last)
    expected = await sums(es, "alpha_balances")
    await es.pool.execute("UPDATE alpha_balances SET n = 0")

    report = await replay(es, [a, b], page_size=7)

    assert report.events == 50
    assert [(p.name, p.applied) for p in report.projections] == [("alpha", 50), ("beta", 50)]
    assert await sums(es, "alpha_balances") == expected
    assert await sums(es, "beta_balances") == expected


async def test_two_projectors_keep_separate_checkpoints(es: PostgresEventStore) -> None:
    middle = await deposit(es, "t1", "acct-a", 1, 2)
    last = await deposit(es, "t1", "acct-a", 3)
    await visible(es, last)
    events = await es.read_all(ORIGIN)
    a, b = runner(es, BalanceProjector("alpha")), runner(es, BalanceProjector("beta"))

    await a.handle(events[:2])
    await b.handle(events)

    assert (await checkpoint(es, "alpha"), await checkpoint(es, "beta")) == (middle, last)
    again_a, again_b = runner(es, BalanceProjector("alpha")), runner(es, BalanceProjector("beta"))
    assert (await again_a.start(), await again_b.start()) == (middle, last)
    await again_a.handle(events)  # a redelivery of all three: only the third is new to alpha
    assert again_a.applied == 1
    assert await sums(es, "alpha_balances") == await sums(es, "beta_balances") == {("t1", "acct-a"): (3, 6)}


async def test_a_live_runner_whose_read_model_was_reset_by_a_replay_catches_up_before_its_next_batch(
    es: PostgresEventStore,
) -> None:
    before = await deposit(es, "t1", "acct-a", 1, 2, 3)
    live = runner(es, BalanceProjector("bal"), page_size=2)
    await live.catch_up(until=before)
    await reset(es.pool, [BalanceProjector("bal")])  # what a replay elsewhere does first
    assert await rows(es, "bal_balances") == []
    assert await checkpoint(es, "bal") == ORIGIN
    new = await deposit(es, "t1", "acct-b", 7)
    await visible(es, new)

    assert await live.handle(await es.read_all(before)) == new  # the feed delivers only the new event

    assert await sums(es, "bal_balances") == {("t1", "acct-a"): (3, 6), ("t1", "acct-b"): (1, 7)}


async def test_two_runners_of_one_projector_racing_apply_each_event_once(es: PostgresEventStore) -> None:
    last = ORIGIN
    for i in range(40):
        last = await deposit(es, "t1", f"acct-{i % 5}", 1, 1)
    one, two = runner(es, BalanceProjector("bal"), page_size=3), runner(es, BalanceProjector("bal"), page_size=5)

    await asyncio.gather(one.catch_up(until=last), two.catch_up(until=last))

    assert one.applied + two.applied == 80
    assert await sums(es, "bal_balances") == {("t1", f"acct-{i}"): (16, 16) for i in range(5)}


async def test_catch_up_until_a_just_appended_position_gives_read_your_writes(es: PostgresEventStore) -> None:
    projector = runner(es, BalanceProjector("bal"))
    await projector.catch_up()
    position = await deposit(es, "t1", "acct-a", 42)

    async with asyncio.timeout(10):
        assert await projector.catch_up(until=position) >= position

    assert await sums(es, "bal_balances") == {("t1", "acct-a"): (1, 42)}


class ObservedFeed:
    """The real in-process ``StoreFeed``, with a note of how far each follower's handler got (= what it acked)."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.feed = StoreFeed(store, batch_size=3, poll_interval=0.01)
        self.acked: dict[str, Position] = {}
        self.progress = asyncio.Condition()

    async def run(self, name: str, after: Position, handler: Handler, stop: asyncio.Event) -> None:
        async with self.progress:
            self.acked[name] = after  # the runner may have caught up from the store before following the feed
            self.progress.notify_all()

        async def observed(batch: list[RecordedEvent]) -> None:
            await handler(batch)
            async with self.progress:
                self.acked[name] = batch[-1].position
                self.progress.notify_all()

        await self.feed.run(name, after, observed, stop)

    async def wait_for(self, names: Sequence[str], position: Position) -> None:
        async with self.progress:
            await self.progress.wait_for(lambda: all(self.acked.get(n, ORIGIN) >= position for n in names))


async def test_projectors_in_one_process_follow_a_feed_each_from_its_own_checkpoint(es: PostgresEventStore) -> None:
    first = await deposit(es, "t1", "acct-a", 1)
    a, b = BalanceProjector("alpha"), BalanceProjector("beta")
    await runner(es, a).catch_up(until=first)  # alpha is ahead of beta when the worker starts
    feed, stop = ObservedFeed(es), asyncio.Event()
    worker = asyncio.create_task(run_projectors([a, b], es.pool, es, feed, stop))

    last = Position(0, 0)
    for i in range(10):
        last = await deposit(es, "t1", f"acct-{i % 2}", i)
    async with asyncio.timeout(20):
        await feed.wait_for(["alpha", "beta"], last)
        stop.set()
        await worker

    expected = {("t1", "acct-a"): (1, 1), ("t1", "acct-0"): (5, 20), ("t1", "acct-1"): (5, 25)}
    assert await sums(es, "alpha_balances") == await sums(es, "beta_balances") == expected
    assert await checkpoint(es, "alpha") == await checkpoint(es, "beta") == last


async def test_a_failing_projector_stops_the_worker_with_its_error(es: PostgresEventStore) -> None:
    await deposit(es, "t1", "acct-a", 1, 13, 2)
    feed, stop = ObservedFeed(es), asyncio.Event()

    async with asyncio.timeout(20):
        with pytest.raises(ExceptionGroup) as raised:
            await run_projectors(
                [BalanceProjector("good"), BalanceProjector("bad", poison=13)], es.pool, es, feed, stop
            )

    (error,) = raised.value.exceptions
    assert isinstance(error, ProjectionFailedError)
    assert error.projector == "bad"
    assert await rows(es, "bad_balances") == []
    assert await checkpoint(es, "bad") is None
