"""The relay against the real servers: PostgreSQL, the shared NATS JetStream (own stream and subject prefix per
test) and, for outages, a private nats-server that the test stops and starts (``PrivateNats``).

What a consumer sees is checked with ``JetStreamFeed`` and against the ground truth: the store's own
``read_all`` order once everything is committed. Event types are test-only, in a private registry; the relay
itself needs none (it forwards stored payloads without decoding them).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient

from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, Position, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from contracts.wire import decode_wire
from services.shared.bus.nats import MSG_ID_HEADER, JetStreamFeed, connect_nats, ensure_stream
from services.shared.bus.relay import (
    EXPECTED_LAST_MSG_ID_HEADER,
    Outgoing,
    Publisher,
    PublishError,
    Relay,
    subject_for,
)
from services.shared.checkpoints import load_checkpoint, save_checkpoint
from services.shared.eventstore.postgres import PostgresEventStore
from tests.services import PrivateNats

pytestmark = pytest.mark.slow


class ItemAdded(Event, frozen=True, kw_only=True, tag="relaytest.item_added.v1"):
    n: int


REGISTRY = EventRegistry()
REGISTRY.register(ItemAdded)
ACTOR = Actor(subject="user:relay", display_name="Relay tests")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
DEADLINE_S = 60.0
REPO = Path(__file__).resolve().parents[2]


def added(n: int) -> NewEvent:
    return NewEvent(event_id=new_uuid(), payload=ItemAdded(n=n), occurred_at=datetime.now(UTC))


async def append(
    store: PostgresEventStore,
    count: int,
    *,
    tenant: str = "acme",
    stream: str = "item-1",
    traceparent: str | None = None,
) -> tuple[Position, ...]:
    result = await store.for_tenant(tenant).append(
        stream,
        [added(i) for i in range(count)],
        expected_version=None,
        metadata=Metadata(actor=ACTOR, correlation_id=uuid.uuid4(), traceparent=traceparent),
    )
    return result.positions


async def open_store(url: str) -> PostgresEventStore:
    return PostgresEventStore(await asyncpg.create_pool(url, min_size=1, max_size=6), registry=REGISTRY)


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await open_store(pg_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def nc(nats_url: str, nats_names: tuple[str, str]) -> AsyncIterator[NatsClient]:
    """A client of the shared server; the test's stream (created by the relay) is deleted afterwards."""
    client = await connect_nats(nats_url, name="test-relay", max_reconnect_attempts=3)
    try:
        yield client
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(nats_names[0])
        await client.close()


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[PrivateNats]:
    server = PrivateNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Recorder:
    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    async def __call__(self, batch: list[RecordedEvent]) -> None:
        self.events.extend(batch)

    @property
    def ids(self) -> list[uuid.UUID]:
        return [event.event_id for event in self.events]


class Background:
    """Long-running workers (relays, feeds) in tasks; each stopped by its own event and awaited on exit."""

    def __init__(self) -> None:
        self._running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(
        self, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> tuple[asyncio.Event, asyncio.Task[None]]:
        stop = asyncio.Event()
        task = asyncio.create_task(run(stop))
        self._running.append((stop, task))
        return stop, task

    def check(self) -> None:
        """Fail at once if a worker died."""
        for _, task in self._running:
            if task.done():
                task.result()
                pytest.fail("a worker stopped on its own")

    async def stop(self, task: asyncio.Task[None]) -> None:
        for stop, running in list(self._running):
            if running is task:
                stop.set()
                self._running.remove((stop, running))
        async with asyncio.timeout(DEADLINE_S):
            await task

    async def __aenter__(self) -> Background:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stop, _ in self._running:
            stop.set()
        async with asyncio.timeout(DEADLINE_S):
            for _, task in self._running:
                await task  # re-raises what a worker died of


async def until(condition: Callable[[], bool], what: str, background: Background | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if background is not None:
            background.check()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def relay_for(store: PostgresEventStore, client: NatsClient, names: tuple[str, str], **options: Any) -> Relay:
    stream, prefix = names
    return Relay(store, client, stream=stream, prefix=prefix, **options)


def feed_for(client: NatsClient, names: tuple[str, str]) -> JetStreamFeed:
    stream, prefix = names
    return JetStreamFeed(client, stream=stream, prefix=prefix, registry=REGISTRY, idle_check=0.3)


async def truth(store: PostgresEventStore) -> list[RecordedEvent]:
    """Every committed event in commit-safe order: what every follower must see, once each, in this order."""
    return await store.read_all(ORIGIN, limit=1_000_000)


async def stream_messages(client: NatsClient, stream: str) -> int:
    return int((await client.jetstream().stream_info(stream)).state.messages)


async def caught_up(relay: Relay, store: PostgresEventStore) -> Callable[[], bool]:
    """A condition: the relay has checkpointed the newest committed event (call it once nothing is being written).

    Not ``store.head()``: that is bounded by the cluster-wide horizon, which other sessions on the shared server
    (other tests) can hold back for a while."""
    row = await store.pool.fetchrow(
        "SELECT tx_id::text::bigint AS tx_id, global_position FROM events "
        "ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1"
    )
    assert row is not None
    last = Position(row["tx_id"], row["global_position"])
    return lambda: relay.stats.checkpoint == last


# -- what is published --------------------------------------------------------------------------------------


async def test_relay_publishes_every_event_with_its_subject_and_headers(
    es: PostgresEventStore, nc: NatsClient, nats_names: tuple[str, str]
) -> None:
    stream, prefix = nats_names
    hostile_stream = "order-x'\"<b>;DROP TABLE events;--"
    await append(es, 3, traceparent=TRACEPARENT)
    await append(es, 2, tenant="globex", stream=hostile_stream, traceparent="00-abc\r\nX-Evil: 1")
    relay = relay_for(es, nc, nats_names)
    async with Background() as bg:
        bg.start(relay.run)
        await until(await caught_up(relay, es), "the relay to reach the head", bg)
    events = await truth(es)
    js = nc.jetstream()
    messages = [await js.get_msg(stream, seq) for seq in range(1, len(events) + 1)]
    assert await stream_messages(nc, stream) == 5
    previous: str | None = None
    for message, event in zip(messages, events, strict=True):
        assert message.subject == f"{prefix}.{event.tenant_id}.relaytest.item_added"
        headers = dict(message.headers or {})
        expected_last = headers.pop(EXPECTED_LAST_MSG_ID_HEADER, None)
        assert expected_last in (None, previous)  # chains to the message before it, or starts an attempt
        expected = {
            "Nats-Msg-Id": str(event.event_id),
            "Lockgate-Tx": str(event.position.tx_id),
            "Lockgate-Position": str(event.position.global_position),
            "Lockgate-Stream": event.stream_id,
            "Lockgate-Version": str(event.version),
            "Lockgate-Type": "relaytest.item_added.v1",
            "Lockgate-Tenant": event.tenant_id,
        }
        if event.tenant_id == "acme":
            expected["traceparent"] = TRACEPARENT  # a malformed one (globex: CRLF injection) is not forwarded
        assert headers == expected
        assert message.data is not None
        assert decode_wire(message.data).to_recorded(REGISTRY) == event
        previous = str(event.event_id)
    assert events[-1].stream_id == hostile_stream
    assert relay.stats.published == 5
    assert relay.stats.duplicates == 0
    assert relay.stats.batches >= 1
    assert await load_checkpoint(es.pool, "relay") == events[-1].position


def test_subject_names_tenant_context_and_event() -> None:
    assert subject_for("lockgate", "acme", "tenancy.project_created.v2") == "lockgate.acme.tenancy.project_created"
    # Stored rows written around the store cannot inject subject tokens or wildcards.
    assert subject_for("lockgate", "ac.me", "tenancy.project_created.v1") == "lockgate._invalid"
    assert subject_for("lockgate", "acme", "tenancy.*.v1") == "lockgate._invalid"
    assert subject_for("lockgate", "acme", "no tag") == "lockgate._invalid"


async def test_relay_restarted_from_an_old_checkpoint_republishes_and_jetstream_drops_the_duplicates(
    es: PostgresEventStore, nc: NatsClient, nats_names: tuple[str, str]
) -> None:
    stream, _ = nats_names
    for i in range(4):
        await append(es, 10, stream=f"item-{i}")
    first = relay_for(es, nc, nats_names, batch_size=16)
    async with Background() as bg:
        _, task = bg.start(first.run)
        await until(await caught_up(first, es), "the first relay to reach the head", bg)
        await bg.stop(task)
        assert first.stats.published == 40
        await save_checkpoint(es.pool, "relay", ORIGIN)  # as if the relay's checkpoint had been lost
        await append(es, 5, stream="item-9")  # and new events arrived meanwhile
        second = relay_for(es, nc, nats_names, batch_size=16)
        recorder = Recorder()
        bg.start(second.run)
        bg.start(lambda stop: feed_for(nc, nats_names).run("proj", ORIGIN, recorder, stop))
        await until(await caught_up(second, es), "the second relay to reach the head", bg)
        await until(lambda: len(recorder.events) >= 45, "the consumer to see 45 events", bg)
    assert second.stats.published == 45
    assert second.stats.duplicates == 40
    assert await stream_messages(nc, stream) == 45
    assert recorder.ids == [event.event_id for event in await truth(es)]


async def test_a_message_lost_mid_pipeline_keeps_every_later_one_out_of_the_stream(
    nc: NatsClient, nats_names: tuple[str, str]
) -> None:
    """Why re-sends cannot reorder the stream: each message expects its predecessor to be the last one stored."""
    stream, prefix = nats_names
    await ensure_stream(nc, stream, prefix, duplicate_window=60)

    def message(i: int, subject: str = f"{prefix}.acme.relaytest.item_added") -> Outgoing:
        return Outgoing(subject, b"{}", {MSG_ID_HEADER: f"m{i}"}, f"m{i}", Position(1, i))

    publisher = Publisher(nc)
    try:
        lost = message(2, subject=f"{prefix}x.nowhere")  # no stream takes it: as if lost on the way
        with pytest.raises(PublishError):
            await publisher.publish([message(1), lost, message(3), message(4)], ack_timeout=5.0)
        assert await stream_messages(nc, stream) == 1  # m3 and m4 were refused, not stored ahead of m2
        assert await publisher.publish([message(i) for i in range(1, 5)], ack_timeout=5.0) == 1  # m1: duplicate
    finally:
        await publisher.close()
    ids = [(await nc.jetstream().get_msg(stream, seq)).headers for seq in range(1, 5)]
    assert [(headers or {})[MSG_ID_HEADER] for headers in ids] == ["m1", "m2", "m3", "m4"]


# -- faults ---------------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("outage", ["stop", "kill"])
async def test_nats_stopped_in_the_middle_of_10000_events_loses_and_duplicates_nothing(
    es: PostgresEventStore, private_nats: PrivateNats, nats_names: tuple[str, str], outage: str
) -> None:
    relay_nc = await connect_nats(private_nats.url, name="relay", reconnect_time_wait=0.1)
    feed_nc = await connect_nats(private_nats.url, name="feed", reconnect_time_wait=0.1)
    relay = relay_for(es, relay_nc, nats_names, ack_timeout=1.0, max_backoff=0.5)
    feed = feed_for(feed_nc, nats_names)
    recorder = Recorder()
    written = 0

    async def writer(stop: asyncio.Event) -> None:
        nonlocal written
        for i in range(1000):
            await append(es, 10, tenant=("acme", "globex")[i % 2], stream=f"item-{i % 7}")
            written += 10
            await asyncio.sleep(0.004)  # a steady stream that is still flowing when NATS goes away

    try:
        async with Background() as bg:
            bg.start(relay.run)
            bg.start(lambda stop: feed.run("proj", ORIGIN, recorder, stop))
            _, writing = bg.start(writer)
            await until(lambda: relay.stats.published >= 2500, "2,500 events published", bg)
            if outage == "kill":
                private_nats.kill()  # a crash: no flush, no goodbye to the clients
            else:
                private_nats.stop()
            written_at_stop = written
            await asyncio.sleep(1.5)  # the outage: appends go on, publication cannot
            # ...for as long as it takes the relay to run into it (another session on the shared PostgreSQL
            # can hold the horizon, and so hide new events from the relay, for a while).
            await until(lambda: relay.stats.failures >= 1, "the relay to run into the outage", bg)
            written_during_outage = written - written_at_stop
            private_nats.start()
            await bg.stop(writing)
            await until(lambda: len(recorder.events) >= 10_000, "the consumer to see 10,000 events", bg)
            await until(await caught_up(relay, es), "the relay to reach the head", bg)
        events = await truth(es)
        assert len(events) == 10_000
        assert written_during_outage > 0
        assert recorder.ids == [event.event_id for event in events]  # every event, once, in order
        assert await stream_messages(relay_nc, nats_names[0]) == 10_000
    finally:
        await relay_nc.close()
        await feed_nc.close()


CHILD_RELAY = """
import asyncio, sys
from services.shared.bus.nats import connect_nats
from services.shared.bus.relay import Relay
from services.shared.eventstore.postgres import PostgresEventStore

async def main(dsn, url, stream, prefix, batch):
    store = await PostgresEventStore.connect(dsn, migrate=False)
    nc = await connect_nats(url, name="relay-child")
    await Relay(store, nc, stream=stream, prefix=prefix, batch_size=int(batch)).run(asyncio.Event())

asyncio.run(main(*sys.argv[1:]))
"""


async def count_through(store: PostgresEventStore, position: Position | None) -> int:
    if position is None:
        return 0
    value = await store.pool.fetchval(
        "SELECT count(*) FROM events WHERE (tx_id, global_position) <= ($1::text::xid8, $2)",
        str(position.tx_id),
        position.global_position,
    )
    return int(value)


async def settled_messages(client: NatsClient, stream: str) -> int:
    """The stream's message count once it stops moving (a killed publisher's last bytes may still land)."""
    last = -1
    while (current := await stream_messages(client, stream)) != last:
        last = current
        await asyncio.sleep(0.2)
    return last


@pytest.mark.timeout(180)
async def test_relay_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    es: PostgresEventStore, nc: NatsClient, pg_url: str, nats_url: str, nats_names: tuple[str, str]
) -> None:
    stream, _ = nats_names
    batch = 500
    for i in range(200):
        await append(es, 100, stream=f"item-{i % 13}")
    total = 20_000
    published_past_checkpoint = 0
    for attempt in range(5):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD_RELAY, pg_url, nats_url, stream, nats_names[1], str(batch), cwd=REPO
        )
        try:
            deadline = time.monotonic() + DEADLINE_S
            while True:  # kill while a batch is on the wire: a count that is not a multiple of the batch size
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    count = await stream_messages(nc, stream)
                    if count >= 1000 * (attempt + 1) and count % batch:
                        break
                assert time.monotonic() < deadline, "the child relay made no progress"
                await asyncio.sleep(0.001)
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
        published = await settled_messages(nc, stream)
        checkpointed = await count_through(es, await load_checkpoint(es.pool, "relay"))
        assert checkpointed <= published < total
        published_past_checkpoint = published - checkpointed
        if published_past_checkpoint:
            break
    assert published_past_checkpoint > 0, "never managed to kill the relay between publishing and checkpointing"
    relay = relay_for(es, nc, nats_names, batch_size=batch)
    recorder = Recorder()
    async with Background() as bg:
        bg.start(relay.run)
        bg.start(lambda stop: feed_for(nc, nats_names).run("proj", ORIGIN, recorder, stop))
        await until(await caught_up(relay, es), "the restarted relay to reach the head", bg)
        await until(lambda: len(recorder.events) >= total, "the consumer to see every event", bg)
    assert relay.stats.duplicates >= published_past_checkpoint  # re-sent, and dropped by JetStream
    assert await stream_messages(nc, stream) == total
    assert recorder.ids == [event.event_id for event in await truth(es)]


async def test_append_succeeds_while_nats_is_down_and_publication_catches_up(
    es: PostgresEventStore, private_nats: PrivateNats, nats_names: tuple[str, str]
) -> None:
    relay_nc = await connect_nats(private_nats.url, name="relay", reconnect_time_wait=0.1)
    feed_nc = await connect_nats(private_nats.url, name="feed", reconnect_time_wait=0.1)
    relay = relay_for(es, relay_nc, nats_names, ack_timeout=1.0, max_backoff=0.3)
    recorder = Recorder()
    try:
        async with Background() as bg:
            bg.start(relay.run)
            bg.start(lambda stop: feed_for(feed_nc, nats_names).run("proj", ORIGIN, recorder, stop))
            await append(es, 5)
            await until(lambda: len(recorder.events) == 5, "the first 5 events", bg)
            before = relay.stats.checkpoint
            private_nats.stop()
            positions = await append(es, 5)  # the command does not depend on NATS
            assert len(positions) == 5
            await until(lambda: relay.stats.failures >= 2, "the relay to try and fail twice", bg)
            assert relay.stats.checkpoint == before  # nothing unacknowledged is ever checkpointed
            assert await load_checkpoint(es.pool, "relay") == before
            private_nats.start()
            await until(lambda: len(recorder.events) == 10, "publication to catch up", bg)
            await until(await caught_up(relay, es), "the relay to reach the head", bg)
        assert recorder.ids == [event.event_id for event in await truth(es)]
    finally:
        await relay_nc.close()
        await feed_nc.close()


async def test_two_relays_on_one_database_only_the_elected_one_publishes_and_the_other_takes_over(
    es: PostgresEventStore, nc: NatsClient, nats_names: tuple[str, str]
) -> None:
    stream, _ = nats_names
    first = relay_for(es, nc, nats_names, standby_interval=0.05)
    second = relay_for(es, nc, nats_names, standby_interval=0.05)
    recorder = Recorder()
    async with Background() as bg:
        bg.start(lambda stop: feed_for(nc, nats_names).run("proj", ORIGIN, recorder, stop))
        _, first_task = bg.start(first.run)
        await until(lambda: first.stats.leader, "the first relay to be elected", bg)
        bg.start(second.run)
        await until(lambda: second.stats.standby, "the second relay to stand by", bg)
        await append(es, 50)
        await until(await caught_up(first, es), "the leader to publish 50", bg)
        await until(lambda: len(recorder.events) == 50, "the consumer to see 50", bg)
        assert second.stats.published == 0
        assert not second.stats.leader
        assert second.stats.elections == 0
        await bg.stop(first_task)  # the leader goes away: its session, and so its lock, ends
        await append(es, 50)
        await until(lambda: second.stats.leader, "the standby to take over", bg)
        await until(await caught_up(second, es), "the new leader to publish the rest", bg)
        await until(lambda: len(recorder.events) == 100, "the consumer to see 100", bg)
    assert first.stats.published == 50
    assert second.stats.elections == 1
    assert second.stats.published == 50  # it resumed at the first one's checkpoint: no re-sends
    assert await stream_messages(nc, stream) == 100
    assert recorder.ids == [event.event_id for event in await truth(es)]


# -- rows written around the store ----------------------------------------------------------------------------

_RAW_INSERT = """
INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, now())
"""


async def test_relay_forwards_unknown_types_skips_unreadable_envelopes_and_never_wedges(
    es: PostgresEventStore, nc: NatsClient, nats_names: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    stream, prefix = nats_names
    metadata = msgspec.json.encode(Metadata(actor=ACTOR, correlation_id=uuid.uuid4())).decode()
    future_id, broken_id, odd_tenant_id = new_uuid(), new_uuid(), new_uuid()
    await append(es, 2)
    # A newer writer's event type that this process does not know: forwarded as stored.
    await es.pool.execute(_RAW_INSERT, future_id, "acme", "thing-1", 1, "future.thing_done.v3", 3, '{"x": 1}', metadata)
    # An envelope without its mandatory fields: cannot become a wire event; logged and skipped.
    await es.pool.execute(_RAW_INSERT, broken_id, "acme", "thing-2", 1, "relaytest.item_added.v1", 1, '{"n": 1}', "{}")
    # A tenant id that is no slug: routed to the unroutable subject instead of injecting subject tokens.
    await es.pool.execute(
        _RAW_INSERT, odd_tenant_id, "Bad.Tenant.>", "thing-3", 1, "relaytest.item_added.v1", 1, '{"n": 2}', metadata
    )
    await append(es, 2)
    relay = relay_for(es, nc, nats_names)
    feed = feed_for(nc, nats_names)
    recorder = Recorder()
    async with Background() as bg:
        bg.start(relay.run)
        bg.start(lambda stop: feed.run("proj", ORIGIN, recorder, stop))
        await until(await caught_up(relay, es), "the relay to pass every row", bg)
        await until(lambda: len(recorder.events) == 5, "the 5 decodable events", bg)
    assert relay.stats.unpublishable == 1
    assert str(broken_id) in caplog.text
    assert await stream_messages(nc, stream) == 6
    subjects: dict[uuid.UUID, str | None] = {}
    for seq in range(1, 7):
        message = await nc.jetstream().get_msg(stream, seq)
        subjects[uuid.UUID((message.headers or {})["Nats-Msg-Id"])] = message.subject
    assert subjects[future_id] == f"{prefix}.acme.future.thing_done"
    assert subjects[odd_tenant_id] == f"{prefix}._invalid"
    assert broken_id not in subjects
    assert feed.stats.poisoned == 1  # the unknown type: logged and terminated by the consumer
    assert future_id not in recorder.ids
    assert odd_tenant_id in recorder.ids
