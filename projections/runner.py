"""The projection runner: one projector, its read model and its checkpoint, kept in step (ADR 0005).

Every batch is applied in **one** PostgreSQL transaction that also upserts the projector's checkpoint
``(tx_id, global_position)``; only after the commit does the runner return, so a feed acknowledges only
what is durable. Events at or below the checkpoint are skipped, so redeliveries and restarts never apply
an event twice.

Concurrency rules, which the property test exercises:

* Each batch transaction first takes the projector's advisory lock (the same one a replay takes), then
  reads the checkpoint. Two runners of one projector (two processes, or a replay beside a live runner)
  therefore serialise per batch, and each skips what the other already applied.
* A runner remembers the checkpoint it last saw. If the stored one is *lower* (a replay reset it), the
  events between the two are missing from the read model and the batch in hand does not follow on from
  the stored checkpoint: the runner then catches up from the store (which holds every event) before it
  looks at the batch again. A feed batch is thus never applied across a gap.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence

import asyncpg

from contracts.envelope import ORIGIN, Position, RecordedEvent
from projections.runtime import Connection, Projector
from services.shared.bus.port import EventFeed
from services.shared.checkpoints import load_checkpoint, save_checkpoint
from services.shared.errors import ContractViolationError, InfrastructureError, LockgateError
from services.shared.eventstore.port import GlobalFeed
from services.shared.eventstore.postgres import PG_UNAVAILABLE
from services.shared.telemetry import consumer_span

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 1000
"""Events per transaction when catching up from the store (a replay uses larger pages)."""

PROJECTION_LOCK_CLASS = 0x4C475052
"""First key of the two-key advisory lock of a projector (``'LGPR'``); the second is ``hashtext(name)``.
The two-int4 key space of advisory locks does not overlap the single-bigint one the store and relay use."""

RESERVED_NAMES = frozenset({"relay"})
"""Checkpoint names other followers own (ADR 0004)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_LOCK_SQL = "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))"

_CONNECTION_ERRORS = PG_UNAVAILABLE
"""The database went away (the store's one list): an infrastructure failure, not the projector's."""

_POLL_FIRST = 0.002
_POLL_MAX = 0.05


class ProjectionFailedError(LockgateError):
    """A projector raised on an event. Its batch was rolled back; its checkpoint did not move."""

    code = "projection_failed"

    def __init__(self, projector: str, event: RecordedEvent, cause: Exception) -> None:
        super().__init__(
            f"projector {projector!r} failed on event {event.event_id} ({event.type}, stream {event.stream_id!r} "
            f"v{event.version}, position {event.position.tx_id}/{event.position.global_position}): {cause!r}",
            projector=projector,
            event_id=str(event.event_id),
            event_type=event.type,
        )
        self.projector = projector
        self.event_id = event.event_id
        self.event_type = event.type
        self.position = event.position


def check_projector_name(name: str) -> str:
    """A projector's name is its checkpoint name, its lock key and its durable consumer name on NATS."""
    if not _NAME.fullmatch(name):
        raise ContractViolationError(f"projector name {name!r} must match {_NAME.pattern}")
    if name in RESERVED_NAMES:
        raise ContractViolationError(f"projector name {name!r} is reserved")
    return name


async def lock_projection(conn: Connection, name: str) -> None:
    """Take the projector's transaction-scoped advisory lock (held until commit or rollback)."""
    await conn.execute(_LOCK_SQL, PROJECTION_LOCK_CLASS, name)


class ProjectionRunner:
    """Keeps one projector's read model up to date, from the store (``catch_up``) or a feed (``run``).

    ``pool`` reaches the read-model database, which is the store's database: the checkpoint lives in the
    store's ``checkpoints`` table, written in the read model's transaction.
    """

    def __init__(
        self,
        projector: Projector,
        pool: asyncpg.Pool,
        store: GlobalFeed,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self._projector = projector
        self._name = check_projector_name(projector.name)
        self._pool = pool
        self._store = store
        self._page_size = page_size
        self._position: Position | None = None
        self._applied = 0
        self._mutex = asyncio.Lock()

    @property
    def projector(self) -> Projector:
        return self._projector

    @property
    def name(self) -> str:
        return self._name

    @property
    def position(self) -> Position:
        """The checkpoint as this runner last saw it (``ORIGIN`` before ``start``)."""
        return ORIGIN if self._position is None else self._position

    @property
    def applied(self) -> int:
        """Events this instance has applied (skipped redeliveries not counted)."""
        return self._applied

    async def ensure_schema(self) -> None:
        """Create the read model's tables (idempotent DDL), serialised against other runners and replays."""
        if not self._projector.schema.strip():
            return
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await lock_projection(conn, self._name)
                await conn.execute(self._projector.schema)
        except _CONNECTION_ERRORS as exc:
            raise InfrastructureError(f"projector {self._name!r}: PostgreSQL is unavailable: {exc}") from exc

    async def start(self) -> Position:
        """Ensure the schema and (re)load the checkpoint."""
        await self.ensure_schema()
        async with self._pool.acquire() as conn:
            self._position = await load_checkpoint(conn, self._name) or ORIGIN
        return self._position

    async def handle(self, events: Sequence[RecordedEvent]) -> Position:
        """Apply one delivered batch (in feed order) in one transaction; returns the checkpoint after commit.

        The batch must continue the global order from at or before the checkpoint this runner last saw
        (what an in-order feed delivers, redeliveries included).
        """
        if self._position is None:
            await self.start()
        while (position := await self._commit(events)) is None:
            # The stored checkpoint went back (a replay reset it): fill the gap from the store first.
            await self.catch_up()
        return position

    async def catch_up(self, *, until: Position | None = None) -> Position:
        """Read straight from the store and apply page by page until every event committed before this call.

        With ``until`` (e.g. the position of an event just appended: read-your-writes), keep going until
        the checkpoint reaches it; events become readable once every older transaction in the cluster
        has finished, so this may poll briefly (bound it with ``asyncio.timeout``).
        """
        if self._position is None:
            await self.start()
        else:
            await self._reload()  # the stored checkpoint may have moved: another runner, or a replay's reset
        # Everything committed before this call, not just what the horizon shows now: an open transaction
        # elsewhere in the cluster may hide a committed event for a while, and read-your-writes needs it.
        target = await self._store.newest()
        if until is not None and until > target:
            target = until
        delay = _POLL_FIRST
        while self.position < target:
            events = await self._store.read_all(self.position, limit=self._page_size)
            if events:
                await self._commit(events)  # on a rewind the position drops and the loop re-reads
                continue
            await asyncio.sleep(delay)  # the horizon moves when older transactions end; nothing to await
            delay = min(delay * 2, _POLL_MAX)
        return self.position

    async def run(self, feed: EventFeed, stop: asyncio.Event) -> None:
        """Catch up from the store, then follow ``feed`` from the checkpoint until ``stop`` is set."""
        await self.catch_up()

        async def on_batch(events: list[RecordedEvent]) -> None:
            await self.handle(events)

        await feed.run(self._name, self.position, on_batch, stop)

    async def _reload(self) -> None:
        async with self._mutex, self._pool.acquire() as conn:
            stored = await load_checkpoint(conn, self._name) or ORIGIN
        if stored < self.position:
            self._log_rewind(stored)
        self._position = stored

    def _log_rewind(self, stored: Position) -> None:
        log.warning("projector %s: checkpoint went back from %s to %s (a replay?)", self._name, self.position, stored)

    async def _commit(self, events: Sequence[RecordedEvent]) -> Position | None:
        """One transaction: lock, read checkpoint, apply what is newer, save checkpoint. ``None`` = rewound."""
        async with self._mutex:
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await lock_projection(conn, self._name)
                    stored = await load_checkpoint(conn, self._name) or ORIGIN
                    if stored < self.position:
                        self._log_rewind(stored)
                        self._position = stored
                        return None
                    current, applied = await self._apply_newer(conn, events, stored)
                    if current != stored:
                        await save_checkpoint(conn, self._name, current)
            except _CONNECTION_ERRORS as exc:
                raise InfrastructureError(f"projector {self._name!r}: PostgreSQL is unavailable: {exc}") from exc
            self._position = current
            self._applied += applied
            return current

    async def _apply_newer(
        self, conn: Connection, events: Sequence[RecordedEvent], checkpoint: Position
    ) -> tuple[Position, int]:
        """Apply the events after ``checkpoint`` in order; returns the new checkpoint and how many were applied."""
        apply = self._projector.apply
        current, applied = checkpoint, 0
        for event in events:
            position = event.position
            if position <= current:
                continue  # at or below the checkpoint (or repeated within the batch): done already
            try:
                with consumer_span(
                    f"project {self._name}",
                    event.metadata.traceparent,
                    **{
                        "lockgate.projection": self._name,
                        "lockgate.event_id": str(event.event_id),
                        "lockgate.event_type": event.type,
                    },
                ):
                    await apply(conn, event)
            except _CONNECTION_ERRORS:
                raise
            except Exception as exc:
                raise ProjectionFailedError(self._name, event, exc) from exc
            current = position
            applied += 1
        return current, applied


async def run_projectors(
    projectors: Sequence[Projector], pool: asyncpg.Pool, store: GlobalFeed, feed: EventFeed, stop: asyncio.Event
) -> None:
    """Run several projectors in one process, each with its own checkpoint and feed subscription.

    The first failure stops them all and propagates (a projector error is never swallowed).
    """
    runners = [ProjectionRunner(projector, pool, store) for projector in projectors]
    names = [runner.name for runner in runners]
    if len(set(names)) != len(names):
        raise ContractViolationError(f"projector names must be unique: {names}")
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(runner.run(feed, stop), name=f"projector:{runner.name}") for runner in runners]
    del tasks
