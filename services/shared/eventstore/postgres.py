"""The PostgreSQL event store (ADR 0002): asyncpg, no write locks, one round trip per command.

Ordering rule for tailing readers (DESIGN.md §2): ``global_position`` alone is not commit-ordered, so a
reader that tails by it alone misses events committed out of order. Readers here only see rows whose
transaction is older than every transaction still running (``tx_id < pg_snapshot_xmin(...)``) and order
and checkpoint by ``(tx_id, global_position)``. No row can ever appear behind such a cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from importlib import resources
from typing import Any, TypeVar

import asyncpg
import msgspec

from contracts.base import parse_tag, tag_of
from contracts.envelope import Metadata, NewEvent, Position, RecordedEvent
from contracts.ids import category_of, is_slug
from contracts.registry import REGISTRY, EventRegistry
from services.shared.errors import (
    ConcurrencyConflictError,
    ContractViolationError,
    IdempotencyKeyReusedError,
    InfrastructureError,
)
from services.shared.eventstore.port import AppendResult

log = logging.getLogger(__name__)

MAX_EVENTS_PER_APPEND = 10_000
MAX_STREAM_ID_LENGTH = 200
MAX_IDEMPOTENCY_KEY_LENGTH = 200
_MAX_VERSION = 2**31 - 1  # the version column is an integer
_ANY_VERSION_RETRIES = 100
_RETRY_BACKOFF_S = 0.0005
PG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down, restarting or starting up
    asyncpg.InternalClientError,  # a connection the server just killed: "another operation is in progress"
)

NOTIFY_CHANNEL = "lockgate_events"
T = TypeVar("T")

_OWN_STATEMENT: ContextVar[bool] = ContextVar("lockgate_store_own_statement", default=False)
"""True while the store runs one of its own single, autocommitted statements on a pool connection."""


async def _reset_after_foreign_use(conn: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default sends ``RESET ALL; UNLISTEN *; ...`` on every release: one
    more round trip per append. The store's own statements leave no session state behind (no SET, LISTEN, cursor,
    session lock or open transaction), so the reset query is skipped for them; any other use of a pool connection
    (a LISTEN, an advisory lock, a transaction) still gets asyncpg's full reset."""
    if not _OWN_STATEMENT.get():
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool for the store (see ``_reset_after_foreign_use``)."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_reset_after_foreign_use)


_COLUMNS = """event_id, type, schema_version, stream_id, version, tx_id::text::bigint AS tx_id,
    global_position, tenant_id, metadata::text AS metadata, occurred_at, recorded_at, data::text AS data"""
_HORIZON = "tx_id < pg_snapshot_xmin(pg_current_snapshot())"
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""A JSON ``\\u0000`` escape (an odd number of backslashes before ``u0000``: an escaped backslash is not one)."""

READ_ALL_SQL = (
    f"SELECT {_COLUMNS} FROM events WHERE (tx_id, global_position) > ($1::text::xid8, $2) "
    # Qualified: a bare ``tx_id`` in ORDER BY names the output alias (tx_id::text::bigint), which no
    # index serves, so every page would sort the whole table. ``events.tx_id`` is the indexed xid8.
    f"AND {_HORIZON} ORDER BY events.tx_id, events.global_position LIMIT $3"
)
"""The tailing rule as one statement ($1 tx_id as text, $2 global_position, $3 limit): every tenant's
committed events after a position, in commit-safe order. ``read_all`` decodes its rows; the relay forwards
them raw."""

# One statement: check the expected version, record the idempotency key, insert every event.
# The unique (tenant_id, stream_id, version) constraint makes a lost race fail with nothing written.
_APPEND_SQL = """
WITH prior AS (
    SELECT stream_id, first_version, last_version FROM command_log
    WHERE tenant_id = $1 AND idempotency_key = $3
), cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE tenant_id = $1 AND stream_id = $2
), go AS (
    SELECT v FROM cur WHERE NOT EXISTS (SELECT 1 FROM prior) AND ($4::int IS NULL OR v = $4::int)
), logged AS (
    INSERT INTO command_log (tenant_id, idempotency_key, stream_id, first_version, last_version)
    SELECT $1, $3, $2, go.v + 1, go.v + cardinality($5::uuid[]) FROM go WHERE $3::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
), ins AS (
    INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata,
                        occurred_at)
    SELECT e.id, $1, $2, go.v + e.n::int, e.t, e.sv, e.d::json, $9::jsonb, e.at
    FROM go, unnest($5::uuid[], $6::text[], $7::int2[], $8::text[], $10::timestamptz[])
        WITH ORDINALITY AS e(id, t, sv, d, at, n)
    WHERE $3::text IS NULL OR EXISTS (SELECT 1 FROM logged)
    RETURNING global_position, tx_id, version
)
SELECT c.v AS current_version, p.stream_id AS prior_stream, p.first_version AS prior_first,
       p.last_version AS prior_last, i.global_position, i.tx_id::text::bigint AS tx_id, i.version
FROM cur c LEFT JOIN prior p ON true LEFT JOIN ins i ON true
ORDER BY i.version
"""
# The same statement for the common case of a command without an idempotency key: no command-log probe,
# no key bookkeeping. Same parameters ($3, the absent key, only types a NULL column) and the same result shape.
_APPEND_WITHOUT_KEY_SQL = """
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE tenant_id = $1 AND stream_id = $2
), ins AS (
    INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata,
                        occurred_at)
    SELECT e.id, $1, $2, cur.v + e.n::int, e.t, e.sv, e.d::json, $9::jsonb, e.at
    FROM cur, unnest($5::uuid[], $6::text[], $7::int2[], $8::text[], $10::timestamptz[])
        WITH ORDINALITY AS e(id, t, sv, d, at, n)
    WHERE $4::int IS NULL OR cur.v = $4::int
    RETURNING global_position, tx_id, version
)
SELECT c.v AS current_version, $3::text AS prior_stream, NULL::int AS prior_first,
       NULL::int AS prior_last, i.global_position, i.tx_id::text::bigint AS tx_id, i.version
FROM cur c LEFT JOIN ins i ON true
ORDER BY i.version
"""
_NOTIFY_SQL = f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')"
NOTIFY_GATHER_S = 0.002
"""How long the notifier waits before a NOTIFY, gathering the appends of that moment into it: followers wake
at most this much later (the relay's latency goal is 10 ms at p99), writers pay one NOTIFY per burst."""


class _Notifier:
    """Wakes followers in other processes after appends, off the append's path.

    A NOTIFY inside the append's transaction takes PostgreSQL's cluster-wide notification lock at commit, which
    serialises concurrent writers (measured: 4 writers of single-event commands at 0.53x raw with it, 0.86x
    without). Here the store sends one ``pg_notify`` on its own connection shortly after a commit, and
    coalesces: appends within ``NOTIFY_GATHER_S`` share one, and while one is in flight further appends only ask
    for one more, so a burst costs a couple of NOTIFYs and the last append is always followed by one. It stays
    a hint: followers also poll, and a failed NOTIFY is only logged.
    """

    def __init__(self, send: Callable[[], Awaitable[None]], *, gather_s: float = NOTIFY_GATHER_S) -> None:
        self._send = send
        self._gather_s = gather_s
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def poke(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lockgate-store-notify")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._gather_s)  # appends of the next moment share this NOTIFY
            self._again = False
            try:
                await self._send()
            except Exception as exc:  # noqa: BLE001 - a wake-up hint; followers poll as well
                log.debug("store NOTIFY failed (followers fall back to polling): %r", exc)
            if not self._again:
                return

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


def _load_schema() -> str:
    return resources.files("services.shared.eventstore").joinpath("schema.sql").read_text(encoding="utf-8")


class _RowDecoder:
    """Turns asyncpg rows into RecordedEvents; shared by every read path."""

    def __init__(self, registry: EventRegistry) -> None:
        self._decode_payload = registry.decode
        self._metadata = msgspec.json.Decoder(Metadata)

    def __call__(self, row: asyncpg.Record) -> RecordedEvent:
        # Positional unpacking follows _COLUMNS; it is ~25% cheaper than twelve lookups by name, and this is
        # the replay hot path.
        event_id, type_, schema_version, stream_id, version, tx_id, position, tenant_id, metadata, occurred_at, \
            recorded_at, data = row  # fmt: skip
        return RecordedEvent(
            event_id=event_id,
            type=type_,
            schema_version=schema_version,
            stream_id=stream_id,
            version=version,
            position=Position(tx_id, position),
            tenant_id=tenant_id,
            metadata=self._metadata.decode(metadata),
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            payload=self._decode_payload(type_, data),
        )


class _Lanes:
    """A few connections the store keeps for its own single, autocommitted statements (appends and reads).

    asyncpg's pool costs about as much per statement as a trivial statement itself (acquire, release, the
    shielded release task: measured 40-55 µs on this machine against ~50 µs for ``SELECT 1``). The store's
    own statements leave no session state, so a connection can go straight back to a free list. A
    connection that fails or whose statement is cancelled is closed and replaced on next use, which is how
    the store recovers from a PostgreSQL restart. Everything else (transactions, LISTEN, locks) uses the pool.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._slots = asyncio.Semaphore(size)
        self._idle: list[asyncpg.Connection] = []
        self._closed = False

    async def run(self, method: str, sql: str, *args: Any) -> Any:
        async with self._slots:
            if self._closed:
                msg = "the event store is closed"
                raise asyncpg.InterfaceError(msg)
            conn = self._idle.pop() if self._idle else await asyncpg.connect(self._dsn)
            try:
                result = await getattr(conn, method)(sql, *args)
            except asyncpg.PostgresError as exc:
                if isinstance(exc, PG_UNAVAILABLE):
                    conn.terminate()
                else:
                    self._idle.append(conn)  # a statement error leaves an autocommitted session clean
                raise
            except BaseException:
                conn.terminate()  # broken, or cancelled mid-statement: never reuse
                raise
            await self._give_back(conn)
            return result

    async def _give_back(self, conn: asyncpg.Connection) -> None:
        if self._closed:  # closed while the statement ran
            await conn.close()
        else:
            self._idle.append(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


class PostgresEventStore:
    """The asyncpg adapter of the store port. One instance per process; it owns a connection pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        registry: EventRegistry = REGISTRY,
        notify: bool = True,
        dsn: str | None = None,
        lanes: int = 4,
    ) -> None:
        self._pool = pool
        self._lanes = _Lanes(dsn, lanes) if dsn is not None and lanes > 0 else None
        """Without a DSN (a store built on a caller's pool), every statement goes through the pool."""
        self._registry = registry
        self._decode = _RowDecoder(registry)
        self._metadata_encoder = msgspec.json.Encoder()
        self._append_sql = _APPEND_SQL
        self._append_without_key_sql = _APPEND_WITHOUT_KEY_SQL
        self._notifier = _Notifier(self._notify) if notify else None
        self.appended = asyncio.Event()
        """Set after every append by this process: an in-process wake-up for followers."""

    @classmethod
    async def connect(
        cls, dsn: str, *, min_size: int = 1, max_size: int = 10, migrate: bool = True, notify: bool = True
    ) -> PostgresEventStore:
        try:
            pool = await create_pool(dsn, min_size=min_size, max_size=max_size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise InfrastructureError(f"cannot connect to PostgreSQL: {exc}") from exc
        store = cls(pool, notify=notify, dsn=dsn)
        if migrate:
            await store.migrate()
        return store

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def migrate(self) -> None:
        # Serialise concurrent starts: CREATE ... IF NOT EXISTS is not safe against itself.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7061766574)")
            await conn.execute(_load_schema())

    async def close(self) -> None:
        if self._notifier is not None:
            await self._notifier.close()
        if self._lanes is not None:
            await self._lanes.close()
        await self._pool.close()

    async def _notify(self) -> None:
        await self._statement("execute", _NOTIFY_SQL)

    def for_tenant(self, tenant_id: str) -> PostgresTenantStore:
        if not is_slug(tenant_id):
            raise ContractViolationError(f"tenant id {tenant_id!r} is not a valid slug")
        return PostgresTenantStore(self, tenant_id)

    async def _statement(self, method: str, sql: str, *args: Any) -> Any:
        """Run one of the store's own single statements on a lane, or on the pool without reset round trip."""
        if self._lanes is not None:
            return await self._lanes.run(method, sql, *args)
        own = _OWN_STATEMENT.set(True)
        try:
            return await getattr(self._pool, method)(sql, *args)
        finally:
            _OWN_STATEMENT.reset(own)

    async def _read(self, method: str, sql: str, *args: Any) -> Any:
        """Run one of the store's own read statements, translating driver errors into the store's errors."""
        try:
            return await self._statement(method, sql, *args)
        except PG_UNAVAILABLE as exc:
            raise InfrastructureError(f"PostgreSQL is unavailable: {exc}") from exc
        except asyncpg.DataError as exc:  # e.g. a NUL character or an out-of-range number in an argument
            raise ContractViolationError(f"invalid argument: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise InfrastructureError(f"PostgreSQL is unavailable: {exc}") from exc

    # -- global feed (infrastructure only) -------------------------------------------------------

    async def read_all(self, after: Position, *, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._read(
            "fetch",
            READ_ALL_SQL,
            str(after.tx_id),
            after.global_position,
            limit,
        )
        return [self._decode(row) for row in rows]

    async def head(self) -> Position:
        row = await self._read(
            "fetchrow",
            f"SELECT tx_id::text::bigint AS tx_id, global_position FROM events WHERE {_HORIZON} "
            "ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1",
        )
        return Position(0, 0) if row is None else Position(row["tx_id"], row["global_position"])

    async def newest(self) -> Position:
        """The newest event committed before this call, whether or not tailing readers may see it yet.

        ``head()`` stops at the visibility horizon, so a transaction still open anywhere in the cluster hides
        events that committed after it started; a reader that must see everything committed so far
        (read-your-writes) reads until it reaches this position instead.
        """
        row = await self._read(
            "fetchrow",
            "SELECT tx_id::text::bigint AS tx_id, global_position FROM events "
            "ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1",
        )
        return Position(0, 0) if row is None else Position(row["tx_id"], row["global_position"])

    # -- used by the tenant view ----------------------------------------------------------------

    def _encode_batch(self, events: Sequence[NewEvent]) -> tuple[list[Any], list[str], list[int], list[str], list[Any]]:
        ids, types, versions, datas, times = [], [], [], [], []
        for event in events:
            tag = tag_of(type(event.payload))
            if not self._registry.is_known(tag):
                raise ContractViolationError(f"event type {tag!r} is not registered")
            if event.occurred_at.tzinfo is None:
                raise ContractViolationError("occurred_at must be timezone-aware (UTC)")
            ids.append(event.event_id)
            types.append(tag)
            versions.append(parse_tag(tag).version)
            data = self._registry.encode(event.payload)
            if b"\\u0000" in data and _NUL_ESCAPE.search(data):
                # The json column would keep it, but no text column of a read model could: refuse it here.
                raise ContractViolationError(f"{tag} payload cannot be stored: it holds a NUL character (\\u0000)")
            datas.append(data.decode())
            times.append(event.occurred_at)
        return ids, types, versions, datas, times

    async def _append(
        self,
        tenant_id: str,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        metadata: Metadata,
    ) -> AppendResult:
        _check_append(stream_id, events, expected_version, metadata.idempotency_key)
        try:
            ids, types, versions, datas, times = self._encode_batch(events)
            meta = self._metadata_encoder.encode(metadata).decode()
        except UnicodeEncodeError as exc:  # lone surrogates cannot be stored as UTF-8
            raise ContractViolationError(f"event or metadata text is not valid Unicode: {exc}") from None
        key = metadata.idempotency_key
        for attempt in range(_ANY_VERSION_RETRIES):
            try:
                rows = await self._own_fetch(
                    self._append_sql if key is not None else self._append_without_key_sql,
                    tenant_id, stream_id, key, expected_version,
                    ids, types, versions, datas, meta, times,
                )  # fmt: skip
                if key is not None and _lost_to_a_concurrent_duplicate(rows, expected_version):
                    prior = await self._concurrent_duplicate(tenant_id, stream_id, key)
                    if prior is None:
                        continue  # the other request rolled back after all: try again
                    return prior
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "events_stream_version" and expected_version is None:
                    # Lost a race without an expectation: take the new version and try again, with a small
                    # random back-off so that writers hammering one stream do not keep colliding.
                    await asyncio.sleep(random.random() * _RETRY_BACKOFF_S * min(attempt, 20))  # noqa: S311
                    continue
                if exc.constraint_name == "events_stream_version":
                    raise ConcurrencyConflictError(
                        f"stream {stream_id!r} was written concurrently (expected version {expected_version})",
                        stream_id=stream_id, expected=expected_version, actual=None,
                    ) from None  # fmt: skip
                raise ContractViolationError(f"duplicate event id in append to {stream_id!r}") from exc
            except asyncpg.DataError as exc:  # e.g. a NUL character, which PostgreSQL text cannot hold
                raise ContractViolationError(f"append to {stream_id!r} cannot be stored: {exc}") from None
            except PG_UNAVAILABLE as exc:
                raise InfrastructureError(f"PostgreSQL is unavailable: {exc}") from exc
            return self._append_result(rows, stream_id, expected_version, key, tenant_id)
        raise ConcurrencyConflictError(
            f"stream {stream_id!r} is too contended to append to",
            stream_id=stream_id, expected=expected_version, actual=None,
        )  # fmt: skip

    async def _own_fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._statement("fetch", sql, *args)
        return rows

    async def _concurrent_duplicate(self, tenant_id: str, stream_id: str, key: str) -> AppendResult | None:
        """The command that a concurrent request with the same key committed while ours ran (read now that it
        has committed); refused if it was for another stream. None if it rolled back after all."""
        prior = await self._find_command(tenant_id, key)
        if prior is not None and prior.stream_id != stream_id:
            raise IdempotencyKeyReusedError(
                f"idempotency key {key!r} was already used for stream {prior.stream_id!r}", stream_id=stream_id
            )
        return prior

    def _append_result(
        self, rows: list[asyncpg.Record], stream_id: str, expected: int | None, key: str | None, tenant: str
    ) -> AppendResult:
        first = rows[0]
        if first["prior_first"] is not None:
            if first["prior_stream"] != stream_id:
                raise IdempotencyKeyReusedError(
                    f"idempotency key {key!r} was already used for stream {first['prior_stream']!r}",
                    stream_id=stream_id,
                )
            return AppendResult(
                stream_id=stream_id, first_version=first["prior_first"], last_version=first["prior_last"],
                deduplicated=True,
            )  # fmt: skip
        if first["global_position"] is None:
            current = first["current_version"]
            if expected is not None and current != expected:
                raise ConcurrencyConflictError(
                    f"stream {stream_id!r} is at version {current}, not {expected}",
                    stream_id=stream_id, expected=expected, actual=current,
                )  # fmt: skip
            msg = f"append to {stream_id!r} wrote nothing"  # unreachable: see _lost_to_a_concurrent_duplicate
            raise AssertionError(msg)
        self.appended.set()
        if self._notifier is not None:
            self._notifier.poke()
        return AppendResult(
            stream_id=stream_id,
            first_version=first["version"],
            last_version=rows[-1]["version"],
            positions=tuple(Position(r["tx_id"], r["global_position"]) for r in rows),
        )

    async def _read_stream(self, tenant_id: str, stream_id: str, after_version: int) -> list[RecordedEvent]:
        rows = await self._read(
            "fetch",
            f"SELECT {_COLUMNS} FROM events WHERE tenant_id = $1 AND stream_id = $2 AND version > $3 ORDER BY version",
            tenant_id,
            stream_id,
            after_version,
        )
        return [self._decode(row) for row in rows]

    async def _find_command(self, tenant_id: str, idempotency_key: str) -> AppendResult | None:
        row = await self._read(
            "fetchrow",
            "SELECT stream_id, first_version, last_version FROM command_log "
            "WHERE tenant_id = $1 AND idempotency_key = $2",
            tenant_id,
            idempotency_key,
        )
        if row is None:
            return None
        return AppendResult(
            stream_id=row["stream_id"],
            first_version=row["first_version"],
            last_version=row["last_version"],
            deduplicated=True,
        )

    async def _stream_version(self, tenant_id: str, stream_id: str) -> int:
        value = await self._read(
            "fetchval",
            "SELECT coalesce(max(version), 0) FROM events WHERE tenant_id = $1 AND stream_id = $2",
            tenant_id,
            stream_id,
        )
        return int(value)

    async def _read_after(
        self,
        tenant_id: str,
        after: Position,
        limit: int,
        types: Sequence[str] | None,
        stream_id: str | None,
    ) -> list[RecordedEvent]:
        rows = await self._read(
            "fetch",
            f"SELECT {_COLUMNS} FROM events WHERE tenant_id = $1 "
            "AND (tx_id, global_position) > ($2::text::xid8, $3) "
            f"AND {_HORIZON} AND ($4::text[] IS NULL OR type = ANY($4::text[])) "
            "AND ($5::text IS NULL OR stream_id = $5) "
            "ORDER BY events.tx_id, events.global_position LIMIT $6",
            tenant_id,
            str(after.tx_id),
            after.global_position,
            list(types) if types is not None else None,
            stream_id,
            limit,
        )
        return [self._decode(row) for row in rows]


class PostgresTenantStore:
    """The store as one tenant sees it: every statement carries ``tenant_id = $1``."""

    def __init__(self, store: PostgresEventStore, tenant_id: str) -> None:
        self._store = store
        self._tenant_id = tenant_id

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        metadata: Metadata,
    ) -> AppendResult:
        return await self._store._append(self._tenant_id, stream_id, events, expected_version, metadata)

    async def read_stream(self, stream_id: str, *, after_version: int = 0) -> list[RecordedEvent]:
        return await self._store._read_stream(self._tenant_id, stream_id, after_version)

    async def find_command(self, idempotency_key: str) -> AppendResult | None:
        return await self._store._find_command(self._tenant_id, idempotency_key)

    async def stream_version(self, stream_id: str) -> int:
        return await self._store._stream_version(self._tenant_id, stream_id)

    async def read_after(
        self,
        after: Position,
        *,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        stream_id: str | None = None,
    ) -> list[RecordedEvent]:
        return await self._store._read_after(self._tenant_id, after, limit, types, stream_id)


def _check_append(stream_id: str, events: Sequence[NewEvent], expected_version: int | None, key: str | None) -> None:
    _check_stream_id(stream_id)
    if not events:
        raise ContractViolationError("an append needs at least one event")
    if len(events) > MAX_EVENTS_PER_APPEND:
        raise ContractViolationError(f"at most {MAX_EVENTS_PER_APPEND} events per append")
    if expected_version is not None and not 0 <= expected_version <= _MAX_VERSION:
        raise ContractViolationError(f"expected version must be between 0 and {_MAX_VERSION}")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ContractViolationError(f"an idempotency key has at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters")


def _lost_to_a_concurrent_duplicate(rows: list[asyncpg.Record], expected: int | None) -> bool:
    """The version matched and no earlier command had the key, yet nothing was inserted: the key's insert met a
    concurrent request with the same key (ON CONFLICT DO NOTHING), which committed first."""
    first = rows[0]
    return (
        first["prior_first"] is None
        and first["global_position"] is None
        and (expected is None or first["current_version"] == expected)
    )


def _check_stream_id(stream_id: str) -> None:
    if not stream_id or len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise ContractViolationError(f"stream id must be 1..{MAX_STREAM_ID_LENGTH} characters")
    category, _, key = stream_id.partition("-")
    if not key or not is_slug(category_of(stream_id)) or not key.isprintable():
        raise ContractViolationError(f"stream id {stream_id!r} is not '<category>-<id>'")
    del category
