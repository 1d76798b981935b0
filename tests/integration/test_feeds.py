"""Both adapters of the feed port against the real servers: ``StoreFeed`` on PostgreSQL, ``JetStreamFeed`` on the
shared NATS JetStream (its own stream and subject prefix per test, deleted afterwards).

Event types are test-only and live in a private registry, so nothing leaks into the process-wide ``REGISTRY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest
from nats.aio.client import Client as NatsClient

from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, Position, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from contracts.wire import encode_wire
from services.shared.bus.inprocess import StoreFeed
from services.shared.bus.nats import (
    MSG_ID_HEADER,
    POSITION_HEADER,
    TX_HEADER,
    JetStreamFeed,
    connect_nats,
    ensure_stream,
)
from services.shared.bus.port import EventFeed
from services.shared.checkpoints import load_checkpoint, save_checkpoint
from services.shared.eventstore.postgres import NOTIFY_CHANNEL, PostgresEventStore


class ItemAdded(Event, frozen=True, kw_only=True, tag="feedtest.item_added.v1"):
    n: int


REGISTRY = EventRegistry()
REGISTRY.register(ItemAdded)
ACTOR = Actor(subject="user:feeds", display_name="Feeds")
DEADLINE_S = 60.0


def added(n: int) -> NewEvent:
    return NewEvent(event_id=new_uuid(), payload=ItemAdded(n=n), occurred_at=datetime.now(UTC))


async def append(store: PostgresEventStore, count: int, *, tenant: str = "acme", stream: str = "item-1") -> None:
    await store.for_tenant(tenant).append(
        stream,
        [added(i) for i in range(count)],
        expected_version=None,
        metadata=Metadata(actor=ACTOR, correlation_id=uuid.uuid4()),
    )


async def open_store(url: str) -> PostgresEventStore:
    return PostgresEventStore(await asyncpg.create_pool(url, min_size=1, max_size=4), registry=REGISTRY)


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await open_store(pg_url)
    try:
        yield store
    finally:
        await store.close()


class Recorder:
    """A handler that keeps every batch, and can be told to fail on a given call."""

    def __init__(self, *, fail_on_call: int | None = None) -> None:
        self.batches: list[list[RecordedEvent]] = []
        self.calls = 0
        self._fail_on_call = fail_on_call

    async def __call__(self, batch: list[RecordedEvent]) -> None:
        self.calls += 1
        if self.calls == self._fail_on_call:
            msg = "handler failed on purpose"
            raise RuntimeError(msg)
        self.batches.append(batch)

    @property
    def events(self) -> list[RecordedEvent]:
        return [event for batch in self.batches for event in batch]

    @property
    def ids(self) -> list[uuid.UUID]:
        return [event.event_id for event in self.events]


async def until(condition: Callable[[], bool], what: str, task: asyncio.Task[None] | None = None) -> None:
    """Poll ``condition`` until it holds; fail after the deadline, or at once if ``task`` died."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if task is not None and task.done():
            task.result()
            pytest.fail(f"the feed stopped before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Running:
    """A feed run in a task, stopped and awaited on exit."""

    def __init__(self, feed: EventFeed, name: str, after: Position, handler: Recorder) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(feed.run(name, after, handler, self.stop))

    async def __aenter__(self) -> Running:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        async with asyncio.timeout(DEADLINE_S):
            await self.task


async def visible(store: PostgresEventStore, count: int, after: Position = ORIGIN) -> list[RecordedEvent]:
    """``read_all`` once ``count`` events are readable. The horizon is cluster-wide: any session's open transaction
    on the shared server (other tests) holds back what a tailing reader may see, for as long as it stays open."""
    deadline = time.monotonic() + DEADLINE_S
    while len(events := await store.read_all(after, limit=100_000)) < count:
        assert time.monotonic() < deadline, f"only {len(events)} of {count} events became visible"
        await asyncio.sleep(0.01)
    return events


async def all_ids(store: PostgresEventStore, count: int) -> list[uuid.UUID]:
    return [event.event_id for event in await visible(store, count)]


def assert_strictly_ordered(events: list[RecordedEvent]) -> None:
    positions = [event.position for event in events]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


# -- StoreFeed ----------------------------------------------------------------------------------------------


async def test_store_feed_delivers_everything_in_order_in_bounded_batches(es: PostgresEventStore) -> None:
    for tenant, stream in [("acme", "item-1"), ("globex", "order-9"), ("acme", "item-2")]:
        await append(es, 9, tenant=tenant, stream=stream)
    recorder = Recorder()
    async with Running(StoreFeed(es, batch_size=7), "p", ORIGIN, recorder) as run:
        await until(lambda: len(recorder.events) >= 27, "27 events", run.task)
    assert recorder.ids == await all_ids(es, 27)
    assert all(1 <= len(batch) <= 7 for batch in recorder.batches)
    assert {event.tenant_id for event in recorder.events} == {"acme", "globex"}


async def test_store_feed_resumes_strictly_after_the_given_position(es: PostgresEventStore) -> None:
    await append(es, 20)
    expected = await all_ids(es, 20)
    after = (await visible(es, 20))[11].position
    recorder = Recorder()
    async with Running(StoreFeed(es, batch_size=5), "p", after, recorder) as run:
        await until(lambda: len(recorder.events) >= 8, "8 events", run.task)
        await append(es, 3)
        await until(lambda: len(recorder.events) >= 11, "the 3 appended later", run.task)
    assert recorder.ids[:8] == expected[12:]
    assert len(recorder.ids) == 11
    assert_strictly_ordered(recorder.events)


async def caught_up_latency(feed: StoreFeed, reader: PostgresEventStore, write: Callable[[], Awaitable[None]]) -> float:
    """Seconds from an append's return to its delivery once the feed is idle: the best of three tries.

    The best, because another session's open transaction on the shared server may hold the horizon at the
    moment of a wake-up, which then finds nothing and sleeps a whole poll: a broken wake-up is slow every time.
    """
    recorder = Recorder()
    latencies = []
    async with Running(feed, "p", await reader.head(), recorder) as run:
        await write()
        await until(lambda: len(recorder.events) == 1, "the first event", run.task)
        for delivered in range(2, 5):
            await asyncio.sleep(0.2)  # let the feed go idle: the wake-up, not a pending read, must deliver it
            started = time.monotonic()
            await write()
            await until(lambda: len(recorder.events) == delivered, f"event {delivered}", run.task)  # noqa: B023
            latencies.append(time.monotonic() - started)
    return min(latencies)


async def test_store_feed_wakes_on_an_append_of_this_process(es: PostgresEventStore) -> None:
    # A 3 s poll and no LISTEN: only ``store.appended`` can deliver the event within the second.
    feed = StoreFeed(es, poll_interval=3.0, listen=False)
    assert await caught_up_latency(feed, es, lambda: append(es, 1)) < 1.0


async def test_store_feed_wakes_on_an_append_of_another_process(es: PostgresEventStore, pg_url: str) -> None:
    other = await open_store(pg_url)  # another pool, as another process: its appends do not set es.appended
    try:
        feed = StoreFeed(es, poll_interval=3.0, listen=True)
        assert await caught_up_latency(feed, es, lambda: append(other, 1)) < 1.0
    finally:
        await other.close()


class NotifyingStore(PostgresEventStore):
    """Another process's store whose appends NOTIFY explicitly (stands in for the store until it notifies)."""

    async def notify(self) -> None:
        await self.pool.execute(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")


async def test_store_feed_wakes_on_notify_from_another_connection(es: PostgresEventStore, pg_url: str) -> None:
    other = NotifyingStore(await asyncpg.create_pool(pg_url, min_size=1, max_size=2), registry=REGISTRY)

    async def write() -> None:
        await append(other, 1)
        await other.notify()

    try:
        feed = StoreFeed(es, poll_interval=3.0, listen=True)  # a 3 s poll: only the LISTEN can be quick
        assert await caught_up_latency(feed, es, write) < 1.0
    finally:
        await other.close()


async def test_store_feed_without_wakeups_still_polls(es: PostgresEventStore, pg_url: str) -> None:
    other = await open_store(pg_url)
    try:
        feed = StoreFeed(es, poll_interval=0.05, listen=False)
        assert await caught_up_latency(feed, es, lambda: append(other, 1)) < 1.0
    finally:
        await other.close()


async def test_store_feed_handler_error_stops_it_and_the_batch_comes_again(es: PostgresEventStore) -> None:
    await append(es, 10)
    await visible(es, 10)  # so that the batches are 4, 4 and 2
    failing = Recorder(fail_on_call=2)
    with pytest.raises(RuntimeError, match="on purpose"):
        async with asyncio.timeout(DEADLINE_S):
            await StoreFeed(es, batch_size=4).run("p", ORIGIN, failing, asyncio.Event())
    assert len(failing.events) == 4
    # The handler's checkpoint is the last batch it committed: a new run from there re-delivers the failed batch.
    again = Recorder()
    async with Running(StoreFeed(es, batch_size=4), "p", failing.events[-1].position, again) as run:
        await until(lambda: len(again.events) >= 6, "the remaining 6", run.task)
    assert failing.ids + again.ids == await all_ids(es, 10)


async def test_store_feed_holds_back_events_behind_an_open_transaction(es: PostgresEventStore, pg_url: str) -> None:
    """An older transaction still open hides younger committed events until it ends, then both arrive in order."""
    blocker = await asyncpg.connect(pg_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT pg_current_xact_id()")  # takes a transaction id older than the next append's
        recorder = Recorder()
        async with Running(StoreFeed(es, poll_interval=0.02), "p", ORIGIN, recorder) as run:
            await append(es, 3)
            await asyncio.sleep(0.3)  # several polls: nothing may be delivered while the horizon is held
            assert recorder.events == []
            await tx.rollback()
            await until(lambda: len(recorder.events) == 3, "the 3 events", run.task)
    finally:
        await blocker.close()


async def test_checkpoints_round_trip_on_a_connection_and_in_a_rolled_back_transaction(es: PostgresEventStore) -> None:
    assert await load_checkpoint(es.pool, "p") is None
    big = Position(2**62 + 5, 2**40)  # beyond int32 and float precision: xid8 travels as text
    await save_checkpoint(es.pool, "p", big)
    assert await load_checkpoint(es.pool, "p") == big
    async with es.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await save_checkpoint(conn, "p", Position(1, 1))
        assert await load_checkpoint(conn, "p") == Position(1, 1)
        await tx.rollback()
    assert await load_checkpoint(es.pool, "p") == big
    for bad in ["", "bad\nname", "x" * 201]:
        with pytest.raises(ValueError, match="checkpoint name"):
            await save_checkpoint(es.pool, bad, big)


# -- JetStreamFeed ------------------------------------------------------------------------------------------


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await connect_nats(nats_url, name="test-feeds", max_reconnect_attempts=3)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def js_stream(nc: NatsClient, nats_names: tuple[str, str]) -> AsyncIterator[tuple[str, str]]:
    stream, prefix = nats_names
    await ensure_stream(nc, stream, prefix, duplicate_window=60)
    try:
        yield stream, prefix
    finally:
        await nc.jetstream().delete_stream(stream)


async def publish(nc: NatsClient, prefix: str, events: list[RecordedEvent]) -> None:
    """Publish as the relay does (its own tests cover the relay): wire body, id and position headers."""
    js = nc.jetstream()
    for event in events:
        await js.publish(
            f"{prefix}.{event.tenant_id}.feedtest.item_added",
            encode_wire(event, REGISTRY),
            headers={
                MSG_ID_HEADER: str(event.event_id),
                TX_HEADER: str(event.position.tx_id),
                POSITION_HEADER: str(event.position.global_position),
            },
        )


def jetstream_feed(nc: NatsClient, js_stream: tuple[str, str], *, batch_size: int = 1000) -> JetStreamFeed:
    stream, prefix = js_stream
    return JetStreamFeed(nc, stream=stream, prefix=prefix, registry=REGISTRY, idle_check=0.2, batch_size=batch_size)


async def test_jetstream_feed_delivers_in_order_and_skips_up_to_after(
    es: PostgresEventStore, nc: NatsClient, js_stream: tuple[str, str]
) -> None:
    await append(es, 30)
    events = await visible(es, 30)
    await publish(nc, js_stream[1], events)
    recorder = Recorder()
    feed = jetstream_feed(nc, js_stream, batch_size=8)
    async with Running(feed, "proj", events[9].position, recorder) as run:
        await until(lambda: len(recorder.events) >= 20, "20 events", run.task)
    assert recorder.ids == [event.event_id for event in events[10:]]
    assert recorder.events == events[10:]  # full envelope and payload survive the wire
    assert all(1 <= len(batch) <= 8 for batch in recorder.batches)
    assert feed.stats.skipped == 10


async def test_jetstream_feed_handler_error_leaves_the_batch_unacked_for_the_next_run(
    es: PostgresEventStore, nc: NatsClient, js_stream: tuple[str, str]
) -> None:
    await append(es, 25)
    events = await visible(es, 25)
    await publish(nc, js_stream[1], events)
    failing = Recorder(fail_on_call=3)
    with pytest.raises(RuntimeError, match="on purpose"):
        async with asyncio.timeout(DEADLINE_S):
            await jetstream_feed(nc, js_stream, batch_size=5).run("proj", ORIGIN, failing, asyncio.Event())
    assert failing.calls == 3
    assert 2 <= len(failing.events) <= 10  # two batches of what had arrived, at most 5 each
    # Restart from the handler's checkpoint: the durable consumer resumes at its ack floor, not behind the
    # messages it had pushed before the failure (those would otherwise wait ack_wait and arrive out of order).
    again = Recorder()
    rest = 25 - len(failing.events)
    async with Running(jetstream_feed(nc, js_stream, batch_size=5), "proj", failing.events[-1].position, again) as r:
        await until(lambda: len(again.events) >= rest, "the rest", r.task)
    assert failing.ids + again.ids == [event.event_id for event in events]


async def test_jetstream_feed_restart_resumes_at_its_ack_floor_and_replays_when_behind_it(
    es: PostgresEventStore, nc: NatsClient, js_stream: tuple[str, str]
) -> None:
    await append(es, 12)
    events = await visible(es, 12)
    await publish(nc, js_stream[1], events)
    first = Recorder()
    async with Running(jetstream_feed(nc, js_stream, batch_size=4), "proj", ORIGIN, first) as run:
        await until(lambda: len(first.events) == 12, "12 events", run.task)
    await append(es, 3)
    more = await visible(es, 3, events[-1].position)
    await publish(nc, js_stream[1], more)
    second_feed = jetstream_feed(nc, js_stream)
    second = Recorder()
    async with Running(second_feed, "proj", events[-1].position, second) as run:
        await until(lambda: len(second.events) == 3, "the 3 new events", run.task)
    assert second.events == more
    # Resumed at the ack floor, not from the start: at most the last batch (whose ack may still have been on its
    # way when the consumer was read) comes again, and is skipped.
    assert second_feed.stats.skipped <= 4
    # A handler whose read model was reset (checkpoint at the origin) gets the whole stream again.
    third = Recorder()
    async with Running(jetstream_feed(nc, js_stream), "proj", ORIGIN, third) as run:
        await until(lambda: len(third.events) == 15, "all 15 again", run.task)
    assert third.events == events + more


async def test_jetstream_feed_recovers_when_its_consumer_disappears(
    es: PostgresEventStore, nc: NatsClient, js_stream: tuple[str, str]
) -> None:
    stream, prefix = js_stream
    await append(es, 10)
    events = await visible(es, 10)
    await publish(nc, prefix, events[:5])
    feed = jetstream_feed(nc, js_stream)
    recorder = Recorder()
    async with Running(feed, "proj", ORIGIN, recorder) as run:
        await until(lambda: len(recorder.events) == 5, "5 events", run.task)
        await nc.jetstream().delete_consumer(stream, "proj")
        await publish(nc, prefix, events[5:])
        await until(lambda: len(recorder.events) == 10, "the 5 published after the loss", run.task)
    assert recorder.events == events
    assert feed.stats.resets >= 1


class CuttableProxy:
    """A TCP proxy in front of NATS whose connections the test can break the way a network does.

    ``blackhole()`` keeps the connections up but drops what the server sends: the server believes it delivered.
    ``cut()`` then aborts them, and the client reconnects through the proxy.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._dropping = False
        self.port = 0

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def blackhole(self) -> None:
        self._dropping = True

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        self._dropping = False

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        self._writers += [client_writer, server_writer]
        for pipe in (
            self._pipe(client_reader, server_writer, from_server=False),
            self._pipe(server_reader, client_writer, from_server=True),
        ):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_server: bool) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if from_server and self._dropping:
                    continue
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


@pytest.mark.parametrize("more_after_cut", [True, False], ids=["hole-seen-in-sequence", "hole-seen-while-idle"])
async def test_jetstream_feed_recovers_deliveries_lost_in_a_broken_connection(
    es: PostgresEventStore, nc: NatsClient, js_stream: tuple[str, str], nats_url: str, more_after_cut: bool
) -> None:
    """Deliveries the server pushed into a dying connection would come back only after ack_wait (60 s), behind
    newer ones. The feed notices the hole, from the consumer sequence of the next delivery or, with nothing
    more to deliver, from the server's delivered count while idle, and resumes after the last handled message."""
    _, prefix = js_stream
    await append(es, 90)
    events = await visible(es, 90)
    upstream = int(nats_url.rsplit(":", 1)[1])
    async with CuttableProxy(upstream) as proxy:
        feed_nc = await connect_nats(f"nats://127.0.0.1:{proxy.port}", name="feed-via-proxy", reconnect_time_wait=0.05)
        try:
            feed = jetstream_feed(feed_nc, js_stream)
            recorder = Recorder()
            async with Running(feed, "proj", ORIGIN, recorder) as run:
                await publish(nc, prefix, events[:30])
                await until(lambda: len(recorder.events) == 30, "the first 30", run.task)
                proxy.blackhole()
                await publish(nc, prefix, events[30:60])  # pushed by the server, never received
                await until_delivered(nc, js_stream[0], 60)
                proxy.cut()
                expected = events if more_after_cut else events[:60]
                if more_after_cut:
                    await publish(nc, prefix, events[60:])
                await until(lambda: len(recorder.events) == len(expected), "every event", run.task)
            assert recorder.events == expected
            assert feed.stats.resets >= 1
        finally:
            await feed_nc.close()


async def until_delivered(nc: NatsClient, stream: str, count: int) -> None:
    """Wait until the server has pushed ``count`` messages to the consumer (received or not)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        info = await nc.jetstream().consumer_info(stream, "proj")
        if info.delivered is not None and info.delivered.stream_seq >= count:
            return
        assert time.monotonic() < deadline, "the server did not push the messages"
        await asyncio.sleep(0.01)


async def test_jetstream_feed_logs_and_skips_undecodable_and_unknown_events(
    es: PostgresEventStore, nc: NatsClient, js_stream: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, prefix = js_stream
    js = nc.jetstream()
    await append(es, 4)
    events = await visible(es, 4)
    other = EventRegistry()  # a newer writer knows a type this consumer does not

    class Unknown(Event, frozen=True, kw_only=True, tag="feedtest.from_the_future.v9"):
        n: int

    other.register(Unknown)
    future = msgspec.structs.replace(
        events[0], type="feedtest.from_the_future.v9", event_id=new_uuid(), payload=Unknown(n=1)
    )
    await publish(nc, prefix, events[:2])
    await js.publish(f"{prefix}.acme.feedtest.item_added", b"{not json", headers={MSG_ID_HEADER: "junk-1"})
    await js.publish(
        f"{prefix}.acme.feedtest.from_the_future", encode_wire(future, other), headers={MSG_ID_HEADER: "future-1"}
    )
    await publish(nc, prefix, events[2:])
    feed = jetstream_feed(nc, js_stream)
    recorder = Recorder()
    with caplog.at_level(logging.ERROR, logger="services.shared.bus.nats"):
        async with Running(feed, "proj", ORIGIN, recorder) as run:
            await until(lambda: len(recorder.events) == 4, "the 4 valid events", run.task)
    assert recorder.events == events
    assert feed.stats.poisoned == 2
    logged = caplog.text
    assert "junk-1" in logged
    assert "future-1" in logged
    assert "feedtest.from_the_future.v9" in logged
    # Terminated: a new run does not see them again.
    again_feed = jetstream_feed(nc, js_stream)
    again = Recorder()
    await append(es, 1)
    last = (await visible(es, 1, events[-1].position))[0]
    await publish(nc, prefix, [last])
    async with Running(again_feed, "proj", events[-1].position, again) as run:
        await until(lambda: len(again.events) == 1, "the next event", run.task)
    assert again_feed.stats.poisoned == 0


def test_jetstream_feed_refuses_a_name_that_cannot_name_a_consumer(nats_names: tuple[str, str]) -> None:
    feed = JetStreamFeed(NatsClient(), stream=nats_names[0])
    for bad in ["a.b", "a b", "a*", ">", "", "x" * 65]:
        with pytest.raises(ValueError, match="feed name"):
            asyncio.run(feed.run(bad, ORIGIN, Recorder(), asyncio.Event()))
