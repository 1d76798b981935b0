"""The relay: follows the events table (the outbox) and publishes every event to NATS JetStream (ADR 0004).

One relay per database publishes; it is elected by a session-level advisory lock held on a dedicated
connection, and the other instances wait on standby until that session ends. The leader loops:

1. read the events after its read cursor below the visibility horizon, in ``(tx_id, global_position)`` order;
2. publish them pipelined, ``Nats-Msg-Id`` = event id, and read on while up to ``max_in_flight`` batches await
   their acknowledgements;
3. once every message of the oldest batch is acknowledged, save its end as the checkpoint, on the lock's own
   connection (a relay that lost its session cannot move it).

Nothing is lost and nothing is stored twice: when a batch is not fully acknowledged (NATS down, ack timeout, a
restart), everything after the checkpoint is re-sent, and JetStream drops the re-sends it already stored within its
``duplicate_window``. Re-sends cannot reorder the stream either: every message but the first of an attempt carries
``Nats-Expected-Last-Msg-Id`` = its predecessor, so when one message is lost the server refuses every later one
instead of storing them ahead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import asyncpg
import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from contracts.base import parse_tag
from contracts.envelope import ORIGIN, Metadata, Position
from contracts.ids import is_slug
from contracts.wire import WireEvent
from services.shared.bus.inprocess import DEFAULT_BATCH_SIZE, Backoff, Wakeup, is_transient_pg_error, sleep_or_stop
from services.shared.bus.nats import (
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    MSG_ID_HEADER,
    NATS_UNAVAILABLE,
    POSITION_HEADER,
    STREAM_HEADER,
    TENANT_HEADER,
    TRACEPARENT_HEADER,
    TX_HEADER,
    TYPE_HEADER,
    VERSION_HEADER,
    ensure_stream,
)
from services.shared.checkpoints import load_checkpoint, save_checkpoint
from services.shared.eventstore.postgres import READ_ALL_SQL, PostgresEventStore

log = logging.getLogger(__name__)

EXPECTED_LAST_MSG_ID_HEADER = "Nats-Expected-Last-Msg-Id"
UNROUTABLE = "_invalid"
"""Subject token for a stored row whose tenant or type cannot name a subject (never a slug: slugs start [a-z0-9])."""

# The relay reads raw rows of the store's tailing statement (READ_ALL_SQL) instead of ``read_all`` so that it
# forwards the payload bytes as stored: no decode/re-encode on the hot path, and an event type this process
# does not know (a newer writer) is still published rather than wedging it. An event therefore travels under its
# stored tag with its stored payload; consumers upcast when they decode it (``WireEvent.to_recorded``), as every
# reader of the store does.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def lock_key(name: str) -> int:
    """The advisory-lock key that elects the relay called ``name`` (a signed 64-bit int, stable across versions)."""
    digest = hashlib.blake2b(f"lockgate.relay.{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@lru_cache(maxsize=4096)
def subject_for(prefix: str, tenant_id: str, event_type: str) -> str:
    """``<prefix>.<tenant>.<context>.<event_snake>`` from the wire tag ``<context>.<event_snake>.v<N>``."""
    try:
        tag = parse_tag(event_type)
    except ValueError:
        return f"{prefix}.{UNROUTABLE}"
    if not is_slug(tenant_id):
        return f"{prefix}.{UNROUTABLE}"
    return f"{prefix}.{tenant_id}.{tag.context}.{tag.name}"


class PublishError(Exception):
    """JetStream did not acknowledge a message (refused it, or no stream answered)."""


class NoStreamError(PublishError):
    """No JetStream stream takes the subject (the stream was deleted, or NATS lost its state)."""


@dataclass(frozen=True)
class Outgoing:
    subject: str
    body: bytes
    headers: dict[str, str]
    msg_id: str
    position: Position


_ENCODER = msgspec.json.Encoder()
_METADATA = msgspec.json.Decoder(Metadata)


def outgoing(row: asyncpg.Record, prefix: str) -> Outgoing:
    """The NATS message of one stored row: body = ``WireEvent`` JSON, position and identity in headers."""
    metadata = _METADATA.decode(row["metadata"])
    msg_id = str(row["event_id"])
    wire = WireEvent(
        event_id=row["event_id"],
        type=row["type"],
        schema_version=row["schema_version"],
        stream_id=row["stream_id"],
        version=row["version"],
        tx_id=row["tx_id"],
        global_position=row["global_position"],
        tenant_id=row["tenant_id"],
        metadata=metadata,
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        data=msgspec.Raw(row["data"].encode()),
    )
    headers = {
        MSG_ID_HEADER: msg_id,
        TX_HEADER: str(row["tx_id"]),
        POSITION_HEADER: str(row["global_position"]),
        STREAM_HEADER: row["stream_id"],
        VERSION_HEADER: str(row["version"]),
        TYPE_HEADER: row["type"],
        TENANT_HEADER: row["tenant_id"],
    }
    # The traceparent comes from a caller: forward it only in its W3C shape, never as free text in a header.
    if metadata.traceparent is not None and _TRACEPARENT.fullmatch(metadata.traceparent):
        headers[TRACEPARENT_HEADER] = metadata.traceparent
    return Outgoing(
        subject=subject_for(prefix, row["tenant_id"], row["type"]),
        body=_ENCODER.encode(wire),
        headers=headers,
        msg_id=msg_id,
        position=Position(row["tx_id"], row["global_position"]),
    )


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: _ApiError | None = None


_PUB_ACK = msgspec.json.Decoder(_PubAck)


class Acks:
    """The pending acknowledgements of one batch of messages, in publish order."""

    def __init__(self, futures: list[asyncio.Future[bool]]) -> None:
        self.futures = futures

    async def wait(self, seconds: float) -> int:
        """Wait until every message is acknowledged; return how many were duplicates. Raises on any failure."""
        async with asyncio.timeout(seconds):
            return sum(await asyncio.gather(*self.futures))

    def abandon(self) -> None:
        for future in self.futures:
            if not future.cancel() and not future.cancelled():
                future.exception()  # already failed: mark it seen, the batch is re-sent anyway


class Publisher:
    """Pipelined JetStream publishing: messages go out back to back, their acks are awaited per batch.

    Every message but the first of an attempt carries ``Nats-Expected-Last-Msg-Id`` = its predecessor, so a
    message lost on the way makes the server refuse every later one instead of storing them ahead of it.

    Not ``js.publish_async``: in nats-py 2.16 an error reply (such as a refused expectation) raises inside the
    client's reply handler and leaves the returned future pending forever (nats-io/nats.py#985).
    """

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._subscription: Subscription | None = None
        self._next_token = 0

    async def open(self) -> None:
        if self._subscription is None:
            self._subscription = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        if subscription is not None:
            with contextlib.suppress(*NATS_UNAVAILABLE):
                await subscription.unsubscribe()

    async def send(self, messages: list[Outgoing], *, after: str | None = None) -> Acks:
        """Publish in order; the first message expects ``after`` (the previous batch's last id) unless None."""
        if not self._nc.is_connected:
            msg = "NATS is not connected"
            raise PublishError(msg)
        await self.open()
        loop = asyncio.get_running_loop()
        acks = Acks([])
        previous = after
        try:
            for message in messages:
                token = str(self._next_token)
                self._next_token += 1
                future: asyncio.Future[bool] = loop.create_future()
                self._waiting[token] = future
                acks.futures.append(future)
                headers = message.headers
                if previous is not None:
                    headers = {**headers, EXPECTED_LAST_MSG_ID_HEADER: previous}
                await self._nc.publish(message.subject, message.body, reply=f"{self._inbox}.{token}", headers=headers)
                previous = message.msg_id
        except BaseException:
            self.abandon(acks)
            raise
        return acks

    def abandon(self, acks: Acks) -> None:
        """Give up on a batch: its late acks, if any come, are ignored."""
        acks.abandon()
        self._waiting = {token: future for token, future in self._waiting.items() if not future.done()}

    async def publish(self, messages: list[Outgoing], ack_timeout: float) -> int:
        """Send one batch as an attempt of its own and wait for every ack; return how many were duplicates."""
        acks = await self.send(messages)
        try:
            return await acks.wait(ack_timeout)
        finally:
            self.abandon(acks)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._inbox) + 1 :], None)
        if future is None or future.done():
            return  # a late ack of a batch that was given up
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(NoStreamError("no JetStream stream takes the subject"))
            return
        try:
            ack = _PUB_ACK.decode(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(PublishError(f"unreadable JetStream ack: {exc}"))
            return
        if ack.error is not None:
            error = ack.error
            future.set_exception(PublishError(f"JetStream refused ({error.err_code}): {error.description}"))
        else:
            future.set_result(ack.duplicate)


@dataclass
class _InFlight:
    acks: Acks
    end: Position
    """Checkpoint once every ack of the batch is in."""
    deadline: float
    rows: int
    messages: int


@dataclass
class _Window:
    """Batches sent but not yet acknowledged, and where reading goes on (ahead of the checkpoint)."""

    checkpoint: Position
    cursor: Position
    last_id: str | None = None
    """Id of the last message sent in this attempt: the next batch's first message expects it."""
    in_flight: deque[_InFlight] = field(default_factory=deque)

    def rewind(self, publisher: Publisher) -> None:
        """Give up everything in flight and read again from the checkpoint, as a new attempt."""
        for batch in self.in_flight:
            publisher.abandon(batch.acks)
        self.in_flight.clear()
        self.cursor, self.last_id = self.checkpoint, None


@dataclass
class RelayStats:
    published: int = 0
    """Events acknowledged by JetStream, re-sends (duplicates) included."""
    duplicates: int = 0
    """Acknowledged as already stored (a re-send after a failure or a restart)."""
    batches: int = 0
    """Batches fully acknowledged and checkpointed."""
    failures: int = 0
    """Batch attempts that failed (NATS down, ack timeout, refused) and were retried."""
    unpublishable: int = 0
    """Stored rows whose envelope could not be read: logged and skipped."""
    elections: int = 0
    """Times this instance became the leader."""
    leader: bool = False
    standby: bool = False
    """Waiting for the lock that another instance holds."""
    checkpoint: Position = field(default=ORIGIN)


class Relay:
    """Publishes the store's events to JetStream; run one per process, any number per database."""

    def __init__(
        self,
        store: PostgresEventStore,
        nc: NatsClient,
        *,
        stream: str = DEFAULT_STREAM,
        prefix: str = DEFAULT_PREFIX,
        name: str = "relay",
        batch_size: int = DEFAULT_BATCH_SIZE,
        ack_timeout: float = 5.0,
        poll_interval: float = 0.02,
        standby_interval: float = 0.5,
        max_in_flight: int = 4,
        max_backoff: float = 2.0,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        max_age: float | None = None,
    ) -> None:
        if batch_size < 1:
            msg = "batch_size must be at least 1"
            raise ValueError(msg)
        self._store = store
        self._nc = nc
        self._stream = stream
        self._prefix = prefix
        self._name = name
        self._lock_key = lock_key(name)
        self._batch_size = batch_size
        self._ack_timeout = ack_timeout
        self._poll_interval = poll_interval
        self._standby_interval = standby_interval
        self._max_in_flight = max(1, max_in_flight)
        self._max_backoff = max_backoff
        self._duplicate_window = duplicate_window
        self._max_age = max_age
        self.stats = RelayStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by, lead, and publish until ``stop`` is set; survives PostgreSQL and NATS outages."""
        backoff = Backoff(cap=self._max_backoff)
        while not stop.is_set():
            try:
                async with self._store.pool.acquire() as conn:
                    if await self._elect(conn, stop):
                        backoff.reset()
                        try:
                            await self._lead(conn, stop)
                        finally:
                            self.stats.leader = False
                            with contextlib.suppress(Exception):
                                await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_key)
            except Exception as exc:
                if not is_transient_pg_error(exc):
                    raise
                log.warning("relay %s: PostgreSQL unavailable (%s); standing by again", self._name, exc)
            if not stop.is_set():
                await backoff.sleep(stop)
        log.info("relay %s stopped at %s", self._name, self.stats.checkpoint)

    async def _elect(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], stop: asyncio.Event) -> bool:
        try:
            while not stop.is_set():
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                    self.stats.elections += 1
                    self.stats.leader = True
                    log.info("relay %s: elected", self._name)
                    return True
                if not self.stats.standby:
                    log.info("relay %s: standing by (another instance holds the lock)", self._name)
                    self.stats.standby = True
                await sleep_or_stop(stop, self._standby_interval)
            return False
        finally:
            self.stats.standby = False

    async def _lead(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], stop: asyncio.Event) -> None:
        checkpoint = await load_checkpoint(conn, self._name) or ORIGIN
        self.stats.checkpoint = checkpoint
        log.info("relay %s: publishing to %s after %s", self._name, self._stream, checkpoint)
        publisher = Publisher(self._nc)
        window = _Window(checkpoint, checkpoint)
        failures = Backoff(cap=self._max_backoff)
        stream_ready = False
        async with Wakeup(self._store, stop, poll_interval=self._poll_interval) as wakeup:
            await wakeup.listen(conn)
            try:
                while not stop.is_set():
                    if not stream_ready and not (stream_ready := await self._prepare(publisher)):
                        await failures.sleep(stop)
                        continue
                    try:
                        if await self._step(conn, publisher, window, wakeup):
                            failures.reset()
                    except (PublishError, *NATS_UNAVAILABLE) as exc:
                        self.stats.failures += 1
                        stream_ready = not isinstance(exc, NoStreamError)
                        log.warning(
                            "relay %s: events after %s not acknowledged (%s); re-sending",
                            self._name, window.checkpoint, str(exc) or type(exc).__name__,
                        )  # fmt: skip
                        window.rewind(publisher)
                        await failures.sleep(stop)
                await self._drain(conn, window)
            finally:
                window.rewind(publisher)
                await publisher.close()

    async def _prepare(self, publisher: Publisher) -> bool:
        try:
            await ensure_stream(
                self._nc, self._stream, self._prefix, duplicate_window=self._duplicate_window, max_age=self._max_age
            )
            await publisher.open()
        except NATS_UNAVAILABLE as exc:
            self.stats.failures += 1
            log.warning("relay %s: JetStream unavailable (%s); retrying", self._name, str(exc) or type(exc).__name__)
            return False
        return True

    async def _step(
        self,
        conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        publisher: Publisher,
        window: _Window,
        wakeup: Wakeup,
    ) -> bool:
        """Send the next batch while there is room in flight, else checkpoint the oldest batch once acknowledged.

        Reading and sending ahead while earlier acks are on their way keeps PostgreSQL, this process and NATS
        busy at once. Returns whether anything moved; raises when a batch is not acknowledged.
        """
        if len(window.in_flight) < self._max_in_flight:
            wakeup.arm()
            rows = await conn.fetch(
                READ_ALL_SQL, str(window.cursor.tx_id), window.cursor.global_position, self._batch_size
            )
            if rows:
                messages = self._messages(rows, window.cursor)
                acks = await publisher.send(messages, after=window.last_id)
                end = Position(rows[-1]["tx_id"], rows[-1]["global_position"])
                deadline = time.monotonic() + self._ack_timeout
                window.in_flight.append(_InFlight(acks, end, deadline, len(rows), len(messages)))
                window.cursor = end
                window.last_id = messages[-1].msg_id if messages else window.last_id
                return True
        if not window.in_flight:
            await wakeup.wait()
            return False
        await self._settle_oldest(conn, window)
        return True

    async def _settle_oldest(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], window: _Window) -> None:
        """Wait for every ack of the oldest batch in flight, then checkpoint its end."""
        batch = window.in_flight[0]
        duplicates = await batch.acks.wait(max(0.0, batch.deadline - time.monotonic()))
        window.in_flight.popleft()
        # On the lock's own connection: if our session (and so the lock) is gone, this fails instead of racing
        # the new leader's checkpoint.
        await save_checkpoint(conn, self._name, batch.end)
        window.checkpoint = self.stats.checkpoint = batch.end
        self.stats.batches += 1
        self.stats.published += batch.messages
        self.stats.duplicates += duplicates
        self.stats.unpublishable += batch.rows - batch.messages

    async def _drain(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], window: _Window) -> None:
        """On a clean stop, checkpoint what is already on its way, so that the next leader re-sends less."""
        try:
            while window.in_flight:
                await self._settle_oldest(conn, window)
        except (PublishError, *NATS_UNAVAILABLE) as exc:
            log.info("relay %s: stopping with batches unacknowledged (%s); they will be re-sent", self._name, exc)

    def _messages(self, rows: list[asyncpg.Record], after: Position) -> list[Outgoing]:
        messages: list[Outgoing] = []
        for row in rows:
            try:
                messages.append(outgoing(row, self._prefix))
            except msgspec.MsgspecError as exc:
                # Only a row written around the store can get here; holding it back would stop publication.
                log.error(  # noqa: TRY400 - the row is identified below; a traceback adds nothing
                    "relay %s: skipping event %s at (%s, %s) after %s: unreadable envelope: %s",
                    self._name, row["event_id"], row["tx_id"], row["global_position"], after, exc,
                )  # fmt: skip
        return messages
