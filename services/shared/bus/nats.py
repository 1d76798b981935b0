"""NATS JetStream side of the bus: connecting, the events stream, and ``JetStreamFeed``.

The relay (``services.shared.bus.relay``) publishes every stored event to the stream; ``JetStreamFeed``
consumes it behind the same ``EventFeed`` port as the in-process feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from contracts.envelope import Position, RecordedEvent
from contracts.registry import REGISTRY, EventDecodeError, EventRegistry, UnknownEventTypeError
from contracts.wire import decode_wire
from services.shared.bus.inprocess import Backoff
from services.shared.bus.port import Handler

log = logging.getLogger(__name__)

DEFAULT_STREAM = "LOCKGATE_EVENTS"
DEFAULT_PREFIX = "lockgate"
DEFAULT_DUPLICATE_WINDOW = 600.0
"""Seconds. Must exceed the relay's fail-over time, so that a new leader's re-sends are dropped."""

TX_HEADER = "Lockgate-Tx"
POSITION_HEADER = "Lockgate-Position"
STREAM_HEADER = "Lockgate-Stream"
VERSION_HEADER = "Lockgate-Version"
TYPE_HEADER = "Lockgate-Type"
TENANT_HEADER = "Lockgate-Tenant"
TRACEPARENT_HEADER = "traceparent"
MSG_ID_HEADER = "Nats-Msg-Id"

# Errors that mean "NATS is not reachable right now": wait and retry, never give up.
NATS_UNAVAILABLE = (
    nats.errors.Error,  # timeouts, no responders, connection closed/reconnecting, ...
    nats.js.errors.ServiceUnavailableError,
    asyncio.TimeoutError,
    OSError,
)

_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


async def connect_nats(
    servers: str | list[str],
    *,
    name: str = "lockgate",
    connect_timeout: float = 2.0,
    reconnect_time_wait: float = 0.25,
    max_reconnect_attempts: int = -1,
    **options: Any,
) -> NatsClient:
    """Connect with the reconnect behaviour every Lockgate process wants.

    With ``max_reconnect_attempts=-1`` (the default) the client never gives up: the first connection waits
    until a server answers (bound it with ``asyncio.timeout`` if you must fail fast), and a lost connection
    is re-established forever while publishes are buffered. Disconnects are logged, never raised.
    """
    nc = NatsClient()

    async def on_error(exc: Exception) -> None:
        log.warning("NATS (%s): %s", name, exc)

    async def on_disconnected() -> None:
        log.warning("NATS (%s): disconnected", name)

    async def on_reconnected() -> None:
        log.info("NATS (%s): reconnected to %s", name, nc.connected_url)

    settings: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "allow_reconnect": True,
        "connect_timeout": connect_timeout,
        "reconnect_time_wait": reconnect_time_wait,
        "max_reconnect_attempts": max_reconnect_attempts,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
    }
    settings.update(options)
    await nc.connect(**settings)
    return nc


async def ensure_stream(
    nc: NatsClient,
    stream: str = DEFAULT_STREAM,
    prefix: str = DEFAULT_PREFIX,
    *,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    max_age: float | None = None,
) -> None:
    """Create the events stream (subjects ``<prefix>.>``, file storage) unless it exists.

    An existing stream is left as it is (an operator may have tuned it); a subject mismatch is logged.
    ``max_age`` bounds retention: PostgreSQL is the source of truth, so JetStream need not keep history.
    """
    js = nc.jetstream()
    subject = f"{prefix}.>"
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        config = StreamConfig(
            name=stream,
            subjects=[subject],
            storage=StorageType.FILE,
            duplicate_window=duplicate_window,
            max_age=max_age,
        )
        await js.add_stream(config)  # idempotent for an identical config, so racing relays both succeed
        log.info("created JetStream stream %s for %s", stream, subject)
        return
    if subject not in (info.config.subjects or []):
        log.warning("JetStream stream %s does not take %s (subjects %s)", stream, subject, info.config.subjects)


def position_of(headers: dict[str, str] | None) -> Position | None:
    """The position a relayed message carries in its headers, or None when they are missing or malformed."""
    if not headers:
        return None
    try:
        return Position(int(headers[TX_HEADER]), int(headers[POSITION_HEADER]))
    except (KeyError, ValueError):
        return None


@dataclass
class FeedStats:
    delivered: int = 0
    """Events passed to the handler."""
    skipped: int = 0
    """Messages at or below the position already handled (redelivery, hand-over, relay re-sends)."""
    poisoned: int = 0
    """Messages that could not be decoded or carry an unknown event type: logged and terminated."""
    resets: int = 0
    """Times the consumer was recreated from the last handled stream sequence (a delivery was lost)."""


@dataclass
class _Cursor:
    position: Position
    """Last position handed to the handler (or the caller's ``after``)."""
    stream_seq: int
    """Every message at or below this stream sequence was handled (or skipped) in order."""


@dataclass
class _Batch:
    position: Position
    stream_seq: int
    expected: int
    events: list[RecordedEvent] = field(default_factory=list)
    poisoned: list[Msg] = field(default_factory=list)
    top: Msg | None = None
    """The delivery with the highest stream sequence: acking it (AckAll) settles the whole batch."""
    lost: bool = False


@dataclass
class _Session:
    subscription: Subscription
    queue: asyncio.Queue[Msg | None]
    waker: asyncio.Task[None]

    async def close(self, nc: NatsClient) -> None:
        self.waker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.waker
        with contextlib.suppress(*NATS_UNAVAILABLE):
            await self.subscription.unsubscribe()
            await nc.flush(timeout=1)  # hand the last acks to the server before the next run reads the ack floor


class JetStreamFeed:
    """``EventFeed`` over a durable JetStream push consumer (one per follower ``name``).

    Order and completeness: the consumer acks with AckAll, one ack per batch after the handler returned.
    A push consumer can lose deliveries (a reconnect, a NATS restart, a slow subscriber) and would redeliver
    them only after ``ack_wait``, behind newer messages. So every delivery's consumer sequence must follow the
    previous one; on a hole, or when the server says it delivered more than arrived while we sat idle, the
    feed deletes the consumer and recreates it at the first stream sequence not yet handled. Each run starts
    the same way, from the consumer's ack floor. Messages at or below the handled position are acked and
    skipped, which makes redeliveries, relay re-sends and the hand-over from a PostgreSQL rebuild idempotent.

    Undecodable messages and unknown event types (decision): such a message can never become decodable by
    waiting, and holding it back would wedge this follower for good. It is logged at ERROR with its stream
    sequence, ``Nats-Msg-Id`` and subject, counted in ``stats.poisoned``, terminated (``term``, which also emits
    a JetStream advisory for monitoring) and skipped; the event stays in PostgreSQL, the source of truth.

    One running instance per ``name``: a second one would keep recreating the first one's consumer.
    """

    def __init__(
        self,
        nc: NatsClient,
        *,
        stream: str = DEFAULT_STREAM,
        prefix: str = DEFAULT_PREFIX,
        filter_subject: str | None = None,
        batch_size: int = 1000,
        ack_wait: float = 60.0,
        max_ack_pending: int = 10_000,
        idle_check: float = 1.0,
        registry: EventRegistry = REGISTRY,
    ) -> None:
        if not 1 <= batch_size <= max_ack_pending:
            msg = "batch_size must be between 1 and max_ack_pending"
            raise ValueError(msg)
        self._nc = nc
        self._js = nc.jetstream()
        self._stream = stream
        self._subject = filter_subject or f"{prefix}.>"
        self._batch_size = batch_size
        self._ack_wait = ack_wait
        self._max_ack_pending = max_ack_pending
        self._idle_check = idle_check
        self._registry = registry
        self.stats = FeedStats()

    async def run(self, name: str, after: Position, handler: Handler, stop: asyncio.Event) -> None:
        if not _CONSUMER_NAME.fullmatch(name):
            msg = f"feed name {name!r} must match {_CONSUMER_NAME.pattern} (it names a JetStream consumer)"
            raise ValueError(msg)
        backoff = Backoff(cap=1.0)
        cursor: _Cursor | None = None
        while not stop.is_set():
            try:
                if cursor is None:
                    cursor = _Cursor(after, await self._resume_after(name, after))
                session = await self._open(name, cursor.stream_seq + 1, stop)
            except NATS_UNAVAILABLE as exc:
                log.warning("feed %s: JetStream unavailable (%s); retrying", name, exc)
                await backoff.sleep(stop)
                continue
            backoff.reset()
            try:
                lost = await self._consume(name, session, cursor, handler, stop)
            finally:
                await session.close(self._nc)
            if lost:
                self.stats.resets += 1
                log.info("feed %s: a delivery was lost; resuming after stream sequence %d", name, cursor.stream_seq)

    async def _resume_after(self, name: str, after: Position) -> int:
        """The stream sequence up to which the durable consumer acknowledged, checked against ``after``."""
        try:
            info = await self._js.consumer_info(self._stream, name)
        except nats.js.errors.NotFoundError:
            return 0
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        if floor == 0:
            return 0
        try:
            acked = position_of((await self._js.get_msg(self._stream, floor)).headers)
        except nats.js.errors.NotFoundError:
            acked = None  # trimmed by retention: trust the consumer
        if acked is not None and acked > after:
            # The handler's checkpoint is behind what this consumer acknowledged (its read model was reset):
            # replay the whole stream; everything at or below ``after`` is skipped.
            log.warning("feed %s: checkpoint %s is behind the consumer's ack floor %s; replaying", name, after, acked)
            return 0
        return floor

    async def _open(self, name: str, start_seq: int, stop: asyncio.Event) -> _Session:
        # Subscribe before the consumer exists, so that its first pushes find us listening.
        queue: asyncio.Queue[Msg | None] = asyncio.Queue()

        async def deliver(msg: Msg) -> None:
            queue.put_nowait(msg)

        async def wake_on_stop() -> None:
            await stop.wait()
            queue.put_nowait(None)

        inbox = self._nc.new_inbox()
        subscription = await self._nc.subscribe(inbox, cb=deliver)
        session = _Session(subscription, queue, asyncio.create_task(wake_on_stop()))
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_consumer(self._stream, name)
            await self._js.add_consumer(
                self._stream,
                ConsumerConfig(
                    durable_name=name,
                    deliver_subject=inbox,
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=start_seq,
                    ack_policy=AckPolicy.ALL,
                    ack_wait=self._ack_wait,
                    max_ack_pending=self._max_ack_pending,
                    max_deliver=-1,
                    filter_subject=self._subject,
                ),
            )
        except BaseException:
            await session.close(self._nc)
            raise
        return session

    async def _consume(
        self, name: str, session: _Session, cursor: _Cursor, handler: Handler, stop: asyncio.Event
    ) -> bool:
        """Handle deliveries until ``stop`` (False) or until one was lost (True)."""
        expected = 1  # consumer sequence of the next delivery of this freshly created consumer
        while not stop.is_set():
            msgs = await self._next_batch(session.queue)
            if not msgs:
                if not stop.is_set() and await self._server_is_ahead(name, expected - 1):
                    return True
                continue
            batch = self._sort(name, msgs, cursor, expected)
            expected = batch.expected
            if batch.events:
                await handler(batch.events)  # an exception propagates: nothing of this batch is acked
                self.stats.delivered += len(batch.events)
            try:
                for msg in batch.poisoned:
                    await msg.term()  # with AckAll, a term also settles every earlier message
                if batch.top is not None and batch.top not in batch.poisoned:
                    await batch.top.ack()  # AckAll: settles every earlier message of the batch
            except NATS_UNAVAILABLE as exc:
                # Handled and committed, but not acked: start over after it; the redelivery is skipped.
                log.warning("feed %s: could not acknowledge (%s); recreating the consumer", name, exc)
                batch.lost = True
            cursor.position, cursor.stream_seq = batch.position, batch.stream_seq
            if batch.lost:
                return True
        return False

    def _sort(self, name: str, msgs: list[Msg], cursor: _Cursor, expected: int) -> _Batch:
        """Decode deliveries in order up to the first lost one; drop those already handled."""
        batch = _Batch(position=cursor.position, stream_seq=cursor.stream_seq, expected=expected)
        for msg in msgs:
            try:
                sequence = msg.metadata.sequence
            except (ValueError, IndexError, AttributeError, nats.errors.Error):
                log.warning("feed %s: ignoring a non-JetStream message on %s", name, msg.subject)
                continue
            if sequence.consumer != batch.expected:
                batch.lost = True
                break
            batch.expected += 1
            if sequence.stream <= batch.stream_seq:
                self.stats.skipped += 1
                continue
            batch.stream_seq, batch.top = sequence.stream, msg
            event = self._decode(name, msg)
            if event is None:
                batch.poisoned.append(msg)
            elif event.position <= batch.position:
                self.stats.skipped += 1
            else:
                batch.events.append(event)
                batch.position = event.position
        return batch

    async def _next_batch(self, queue: asyncio.Queue[Msg | None]) -> list[Msg]:
        try:
            async with asyncio.timeout(self._idle_check):
                first = await queue.get()
        except TimeoutError:
            return []
        if first is None:
            return []
        batch = [first]
        while len(batch) < self._batch_size and not queue.empty():
            msg = queue.get_nowait()
            if msg is None:
                break
            batch.append(msg)
        return batch

    async def _server_is_ahead(self, name: str, seen: int) -> bool:
        """While idle: did the server deliver more than arrived (deliveries lost in a reconnect)?"""
        try:
            info = await self._js.consumer_info(self._stream, name, timeout=self._idle_check)
        except nats.js.errors.NotFoundError:
            return True  # someone deleted our consumer: recreate it
        except NATS_UNAVAILABLE:
            return False
        return info.delivered is not None and info.delivered.consumer_seq > seen

    def _decode(self, name: str, msg: Msg) -> RecordedEvent | None:
        try:
            return decode_wire(msg.data).to_recorded(self._registry)
        except (msgspec.MsgspecError, UnknownEventTypeError, EventDecodeError, ValueError) as exc:
            headers = msg.headers or {}
            log.error(  # noqa: TRY400 - the reason is the message; a traceback adds nothing
                "feed %s: skipping undecodable event (stream seq %s, Nats-Msg-Id %s, subject %s): %s",
                name,
                msg.metadata.sequence.stream,
                headers.get(MSG_ID_HEADER, "?"),
                msg.subject,
                exc,
            )
            self.stats.poisoned += 1
            return None
