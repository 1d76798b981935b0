"""The in-process feed: followers read the store directly (the embedded default, ADR 0003).

It takes the place of NATS behind the same ``EventFeed`` port. It also holds what every store follower
(this feed and the relay) needs to wait well: ``Wakeup`` combines the three wake-up sources, and the
poll that none of them can replace (an event becomes visible only once every older transaction ended,
which notifies nobody).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.envelope import Position
from services.shared.bus.port import Handler
from services.shared.errors import InfrastructureError
from services.shared.eventstore.postgres import NOTIFY_CHANNEL, PG_UNAVAILABLE, PostgresEventStore

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.025
DEFAULT_BATCH_SIZE = 1000

_TRANSIENT_PG_ERRORS = (*PG_UNAVAILABLE, InfrastructureError)


def is_transient_pg_error(exc: BaseException) -> bool:
    """Errors that a restart of PostgreSQL or a broken connection causes: retry, do not stop."""
    return isinstance(exc, _TRANSIENT_PG_ERRORS)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True as soon as ``stop`` is set."""
    if stop.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True


class Backoff:
    """Exponential back-off between retries of an operation that failed for reasons outside our control."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    async def sleep(self, stop: asyncio.Event) -> None:
        await sleep_or_stop(stop, self._next)
        self._next = min(self._cap, self._next * 2)

    def reset(self) -> None:
        self._next = self._first


Listener: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[Any]"


class Wakeup:
    """Wakes a store follower when new events may be readable.

    Sources: ``store.appended`` (appends of this process), a LISTEN on ``NOTIFY_CHANNEL`` (appends of any
    process), ``stop``, and a poll timeout. Use: ``arm()`` before each read, ``wait()`` when the read came back
    short; a wake-up that arrives between the two is kept, so no append is slept through.

    ``store.appended`` is shared by every follower of the process and must be cleared by someone; each
    ``Wakeup`` clears it after forwarding. A follower that was busy at that moment falls back to its poll.
    """

    def __init__(self, store: PostgresEventStore, stop: asyncio.Event, *, poll_interval: float) -> None:
        self._store = store
        self._stop = stop
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: Listener | None = None
        self._owned: PoolConnectionProxy[Any] | None = None
        """The listening connection when it was taken from the pool (and goes back to it)."""

    async def __aenter__(self) -> Wakeup:
        self._tasks = [
            asyncio.create_task(self._forward_appends(), name="wakeup-appends"),
            asyncio.create_task(self._forward_stop(), name="wakeup-stop"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.unlisten()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def listen(self, conn: Listener | None = None) -> None:
        """LISTEN on ``conn``, or on a connection of the store's pool held until ``unlisten()``."""
        if self.listening:
            return
        await self.unlisten()
        owned: PoolConnectionProxy[Any] | None = None
        listener: Listener
        if conn is None:
            owned = listener = await self._store.pool.acquire()
        else:
            listener = conn
        try:
            await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except BaseException:
            if owned is not None:
                await self._store.pool.release(owned)
            raise
        self._conn, self._owned = listener, owned

    async def unlisten(self) -> None:
        conn, owned = self._conn, self._owned
        self._conn, self._owned = None, None
        if conn is None:
            return
        with contextlib.suppress(*_TRANSIENT_PG_ERRORS):
            if not conn.is_closed():
                await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
        if owned is not None:
            with contextlib.suppress(*_TRANSIENT_PG_ERRORS):
                await self._store.pool.release(owned)

    def arm(self) -> None:
        self._wake.clear()

    async def wait(self) -> None:
        """Return when woken since the last ``arm()``, or after the poll interval."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._poll_interval):
                await self._wake.wait()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _forward_appends(self) -> None:
        appended = self._store.appended
        while True:
            await appended.wait()
            appended.clear()
            self._wake.set()

    async def _forward_stop(self) -> None:
        await self._stop.wait()
        self._wake.set()


class StoreFeed:
    """``EventFeed`` that reads ``store.read_all`` directly: no broker, same order and the same guarantees.

    Acknowledging a batch means moving the in-memory position past it once the handler returned; the
    durable position is the handler's own checkpoint, passed back as ``after`` on the next run. A lost
    PostgreSQL connection is retried with back-off; a handler exception stops the feed.
    """

    def __init__(
        self,
        store: PostgresEventStore,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        listen: bool = True,
    ) -> None:
        if batch_size < 1:
            msg = "batch_size must be at least 1"
            raise ValueError(msg)
        self._store = store
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listen = listen

    async def run(self, name: str, after: Position, handler: Handler, stop: asyncio.Event) -> None:
        position = after
        backoff = Backoff()
        log.info("store feed %s starts after %s", name, after)
        async with Wakeup(self._store, stop, poll_interval=self._poll_interval) as wakeup:
            while not stop.is_set():
                try:
                    if self._listen:
                        await wakeup.listen()
                    wakeup.arm()
                    batch = await self._store.read_all(position, limit=self._batch_size)
                except Exception as exc:
                    if not is_transient_pg_error(exc):
                        raise
                    log.warning("store feed %s: PostgreSQL unavailable (%s); retrying", name, exc)
                    await wakeup.unlisten()
                    await backoff.sleep(stop)
                    continue
                backoff.reset()
                if batch:
                    await handler(batch)
                    position = batch[-1].position
                    if len(batch) == self._batch_size:
                        continue  # more may be waiting: read again before sleeping
                await wakeup.wait()
        log.info("store feed %s stopped at %s", name, position)
