"""A run's log: live lines in PostgreSQL (the record, the same in the embedded default and distributed mode), a
``pg_notify`` per batch for followers, an optional core-NATS publish for other consumers, and the whole log
gzip-compressed in the object store once the run ends.

Writing (the runner): ``LiveLog.add`` numbers lines from 1 and buffers them; a background task writes a batch
every ``FLUSH_SECONDS`` or as soon as ``FLUSH_LINES`` wait (one COPY plus one notification, one transaction), so
a chatty dbt costs a few statements a second, not one per line. The runner calls ``close`` (everything written)
before it appends ``RunFinished``: a follower that sees the run final has every line in the table.

Reading (API, CLI): ``read_lines`` pages; ``follow`` yields lines as they are written, woken by the
notification (one shared LISTEN connection per pool) with a short poll as the fallback, and stops once the run
has ended and its last line was yielded. Text arrives redacted (the caller's job) and is stored as given.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from contracts.api.runs import LogLine
from contracts.events.runs import RunArtifact
from services.shared.errors import InfrastructureError
from services.shared.objectstore.port import TenantObjectStore
from services.shared.schema import ensure_schema

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

__all__ = [
    "CHANNEL",
    "FLUSH_LINES",
    "FLUSH_SECONDS",
    "LOG_ARTIFACT",
    "LiveLog",
    "LogLine",
    "ensure_log_schema",
    "follow",
    "log_subject",
    "read_lines",
    "read_stored_lines",
    "store_log",
]

log = logging.getLogger(__name__)

CHANNEL = "lockgate_run_log"
"""The notification channel; the payload is ``<tenant>/<run_id>/<last line of the batch>``."""
FLUSH_SECONDS = 0.05
FLUSH_LINES = 500
POLL_SECONDS = 0.25
"""How often a follower looks without a notification (a lost LISTEN connection, a missed wake-up)."""
PAGE = 1000
LOG_ARTIFACT = "dbt.log.gz"
LOG_KIND = "run_log"
"""Object kind of stored logs (keys ``<tenant>/run_log/<xx>/<sha256>``)."""
MAX_NATS_PAYLOAD = 512 * 1024
"""Batches are split below NATS's default 1 MiB message limit."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_log_lines (
    tenant_id text    NOT NULL,
    run_id    uuid    NOT NULL,
    line      integer NOT NULL,
    text      text    NOT NULL,
    PRIMARY KEY (tenant_id, run_id, line)
);
"""

_json = msgspec.json.Encoder()


async def ensure_log_schema(pool: asyncpg.Pool) -> None:
    """Create the log table if absent (idempotent; once per pool, then free)."""
    await ensure_schema(pool, "run_log_lines", SCHEMA)


def log_subject(prefix: str, tenant: str, run_id: uuid.UUID) -> str:
    """The core-NATS subject of one run's live lines: ``<prefix>_logs.<tenant>.<run_id>``, outside the events
    stream's ``<prefix>.>`` (a line published there would be stored in, and fed to projectors from, that stream)."""
    return f"{prefix}_logs.{tenant}.{run_id}"


# -- writing ------------------------------------------------------------------------------------------------


class LiveLog:
    """One run's log as it is written. ``add`` from the runner's event loop; ``close`` at the end (or use
    ``async with``). A batch that cannot be written (PostgreSQL away) stays buffered and is retried; ``close``
    raises ``InfrastructureError`` if lines are still unwritten then."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenant: str,
        run_id: uuid.UUID,
        *,
        nats: NatsClient | None = None,
        subject_prefix: str = "lockgate",
        after: int = 0,
    ) -> None:
        """``after``: the last line already stored for this run (a later attempt continues the numbering;
        ``LiveLog.resume`` finds it)."""
        self._pool = pool
        self._tenant = tenant
        self._run_id = run_id
        self._nats = nats
        self._subject = log_subject(subject_prefix, tenant, run_id)
        self._next = after + 1
        self._buffer: list[tuple[str, uuid.UUID, int, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._write_lock = asyncio.Lock()

    @classmethod
    async def resume(
        cls,
        pool: asyncpg.Pool,
        tenant: str,
        run_id: uuid.UUID,
        *,
        nats: NatsClient | None = None,
        subject_prefix: str = "lockgate",
    ) -> LiveLog:
        """A log that continues after the run's stored lines (a retried attempt keeps one numbering)."""
        await ensure_log_schema(pool)
        last = await pool.fetchval(
            "SELECT coalesce(max(line), 0) FROM run_log_lines WHERE tenant_id = $1 AND run_id = $2", tenant, run_id
        )
        return cls(pool, tenant, run_id, nats=nats, subject_prefix=subject_prefix, after=int(last))

    @property
    def lines(self) -> int:
        """The last line number given out: the run's line count (what ``RunFinished.log_lines`` records)."""
        return self._next - 1

    def add(self, text: str) -> int:
        """Number and buffer one line (already redacted; no trailing newline); returns its number."""
        if self._closed:
            raise RuntimeError(f"the log of run {self._run_id} is closed")
        line = self._next
        self._next += 1
        self._buffer.append((self._tenant, self._run_id, line, text))
        if self._task is None:
            self._task = asyncio.create_task(self._flush_periodically(), name=f"run-log-{self._run_id}")
        if len(self._buffer) >= FLUSH_LINES:
            self._wake.set()
        return line

    async def flush(self) -> None:
        """Write what is buffered now (the background task does this on its own)."""
        async with self._write_lock:
            while self._buffer:
                batch = self._buffer[:FLUSH_LINES]
                await self._write(batch)
                del self._buffer[: len(batch)]
                await self._publish(batch)

    async def close(self) -> None:
        """Stop the background task and write every buffered line."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except (OSError, asyncpg.PostgresError) as exc:
            raise InfrastructureError(
                f"{len(self._buffer)} log lines of run {self._run_id} could not be stored: {exc}"
            ) from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _flush_periodically(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            try:
                await self.flush()
            except (OSError, asyncpg.PostgresError):
                log.warning("run %s: writing log lines failed; retrying", self._run_id, exc_info=True)
                await asyncio.sleep(FLUSH_SECONDS)

    async def _write(self, batch: Sequence[tuple[str, uuid.UUID, int, str]]) -> None:
        await ensure_log_schema(self._pool)
        notice = f"{self._tenant}/{self._run_id}/{batch[-1][2]}"
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                async with conn.transaction():  # a savepoint: the fallback below runs in the same transaction
                    await conn.copy_records_to_table(
                        "run_log_lines", records=batch, columns=("tenant_id", "run_id", "line", "text")
                    )
            except asyncpg.UniqueViolationError:
                # An earlier attempt at this batch committed although its client saw an error: write the rest.
                await conn.executemany(
                    "INSERT INTO run_log_lines (tenant_id, run_id, line, text) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT DO NOTHING",
                    batch,
                )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, notice)

    async def _publish(self, batch: Sequence[tuple[str, uuid.UUID, int, str]]) -> None:
        """Best effort, after the lines are stored: PostgreSQL is the record, NATS a live copy for subscribers.
        Each message is a JSON array of ``{"line": n, "text": ...}`` in order."""
        if self._nats is None:
            return
        try:
            for chunk in _chunks([LogLine(line=line, text=text) for _, _, line, text in batch]):
                await self._nats.publish(self._subject, chunk)
        except Exception:  # a NATS outage must not stop the run or its stored log
            log.warning("run %s: publishing log lines to NATS failed", self._run_id, exc_info=True)


def _chunks(lines: list[LogLine]) -> Iterable[bytes]:
    chunk: list[LogLine] = []
    size = 0
    for item in lines:
        item_size = len(item.text) * 4 + 32  # an upper bound of its encoded size, without encoding it twice
        if chunk and size + item_size > MAX_NATS_PAYLOAD:
            yield _json.encode(chunk)
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield _json.encode(chunk)


# -- reading ------------------------------------------------------------------------------------------------


async def read_lines(pool: asyncpg.Pool, tenant: str, run_id: uuid.UUID, after: int, limit: int) -> list[LogLine]:
    """Lines numbered after ``after``, in order, at most ``limit``."""
    await ensure_log_schema(pool)
    rows = await pool.fetch(
        "SELECT line, text FROM run_log_lines WHERE tenant_id = $1 AND run_id = $2 AND line > $3 "
        "ORDER BY line LIMIT $4",
        tenant,
        run_id,
        after,
        limit,
    )
    return [LogLine(line=row["line"], text=row["text"]) for row in rows]


async def follow(
    pool: asyncpg.Pool,
    tenant: str,
    run_id: uuid.UUID,
    after: int,
    *,
    finished: Callable[[], Awaitable[int | None]],
    stop: asyncio.Event | None = None,
) -> AsyncIterator[LogLine]:
    """Yield the lines after ``after`` as they are written until the run has ended and its last line was
    yielded (or ``stop`` is set). ``finished()`` returns the run's final line count, or None while it runs
    (e.g. ``RunsReadModel.final_log_lines``). The runner stores all lines before the run ends, so once
    ``finished()`` says the run ended, one more read yields the rest."""
    await ensure_log_schema(pool)
    listener = _listener_of(pool)
    wake = listener.subscribe(f"{tenant}/{run_id}/")
    try:
        try:
            await listener.start()
        except (OSError, asyncpg.PostgresError):
            log.warning("cannot LISTEN for run log lines; polling every %.2f s", POLL_SECONDS, exc_info=True)
        last = after
        while stop is None or not stop.is_set():
            wake.clear()  # before reading: a notification during the read wakes the next wait
            batch = await read_lines(pool, tenant, run_id, last, PAGE)
            for item in batch:
                yield item
                last = item.line
            if len(batch) == PAGE:
                continue
            if await finished() is not None:
                async for item in _rest(pool, tenant, run_id, last):
                    yield item
                return
            await _wait(wake, stop)
    finally:
        listener.unsubscribe(f"{tenant}/{run_id}/", wake)


async def _rest(pool: asyncpg.Pool, tenant: str, run_id: uuid.UUID, after: int) -> AsyncIterator[LogLine]:
    while batch := await read_lines(pool, tenant, run_id, after, PAGE):
        for item in batch:
            yield item
        after = batch[-1].line


async def _wait(wake: asyncio.Event, stop: asyncio.Event | None) -> None:
    waits = [asyncio.ensure_future(wake.wait())]
    if stop is not None:
        waits.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waits, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


class _Listener:
    """One LISTEN connection of a pool shared by all its followers; wakes those whose run a notice names.
    Held while anyone follows, released with the last one. If it breaks, followers fall back to polling."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: PoolConnectionProxy[asyncpg.Record] | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._conn is not None or not self._waiters:
                return
            conn = await self._pool.acquire()
            try:
                await conn.add_listener(CHANNEL, self._notified)
            except BaseException:
                await self._pool.release(conn)
                raise
            self._conn = conn

    def subscribe(self, prefix: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(prefix, set()).add(event)
        return event

    def unsubscribe(self, prefix: str, event: asyncio.Event) -> None:
        waiting = self._waiters.get(prefix)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self._waiters[prefix]
        if not self._waiters:
            task = asyncio.get_running_loop().create_task(self._stop_if_idle())
            _background.add(task)
            task.add_done_callback(_background.discard)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def _stop_if_idle(self) -> None:
        async with self._lock:
            if self._waiters:
                return
            if _listeners.get(id(self._pool)) is self:
                del _listeners[id(self._pool)]
            if self._conn is None:
                return
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.remove_listener(CHANNEL, self._notified)
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    def _notified(
        self, _conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record], _pid: int, _channel: str, payload: object
    ) -> None:
        text = str(payload)
        prefix = text[: text.rfind("/") + 1]
        for event in self._waiters.get(prefix, ()):
            event.set()


_background: set[asyncio.Task[None]] = set()


_listeners: dict[int, _Listener] = {}
"""The listener of each pool that has followers (by id: asyncpg pools cannot be weakly referenced); an idle
listener removes itself."""


def _listener_of(pool: asyncpg.Pool) -> _Listener:
    listener = _listeners.get(id(pool))
    if listener is None or listener.pool is not pool:
        listener = _listeners[id(pool)] = _Listener(pool)
    return listener


# -- the stored log ----------------------------------------------------------------------------------------


async def store_log(objects: TenantObjectStore, run_id: uuid.UUID, lines: Iterable[str]) -> RunArtifact:
    """Store the whole log gzip-compressed, each line (given without its newline) newline-terminated; returns
    the artifact the run records. ``mtime=0`` makes the bytes (and so the content key) depend on the lines only."""
    text = "".join(f"{line}\n" for line in lines).encode()
    data = await asyncio.to_thread(gzip.compress, text, 6, mtime=0)
    stored = await objects.put(LOG_KIND, data, content_type="application/gzip")
    log.debug("run %s: stored its log (%d bytes compressed)", run_id, stored.size)
    return RunArtifact(name=LOG_ARTIFACT, key=stored.key, size=stored.size, sha256=stored.sha256)


async def read_stored_lines(objects: TenantObjectStore, artifact: RunArtifact, after: int, limit: int) -> list[LogLine]:
    """Lines of a stored log (``store_log``'s artifact), for runs whose table lines are gone."""
    data = await objects.get(artifact.key)
    text = (await asyncio.to_thread(gzip.decompress, data)).decode()
    numbered = text.split("\n")[:-1] if text else []
    return [LogLine(line=n, text=t) for n, t in enumerate(numbered[after : after + limit], start=after + 1)]
