"""Rebuild read models from position 0 (``lockgate replay [--projection NAME]``, ADR 0005).

1. Ensure each selected projector's schema.
2. In **one** transaction: take each projector's advisory lock (in name order), empty its tables, reset
   its checkpoint to the origin. Readers see the old read model until this commits.
3. Read the store once, in large keyset pages, and apply each page to every selected projector in that
   projector's own transaction (read model + checkpoint), prefetching the next page meanwhile.

A live runner of the same projector elsewhere notices that its checkpoint went back and catches up
from the store too; the per-batch lock and the checkpoint make the two skip each other's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

import asyncpg
import msgspec

from contracts.envelope import ORIGIN, Position, RecordedEvent
from projections.registry import ProjectorRegistry
from projections.runner import ProjectionRunner, lock_projection
from projections.runtime import Projector
from services.shared.checkpoints import save_checkpoint
from services.shared.errors import ContractViolationError
from services.shared.eventstore.port import GlobalFeed

log = logging.getLogger(__name__)

REPLAY_PAGE_SIZE = 10_000

PROTECTED_TABLES = frozenset({"events", "command_log", "checkpoints"})
"""The store's own tables: never emptied by a replay, whatever a projector declares."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class ReplayStore(GlobalFeed, Protocol):
    """What a replay needs of the store: the global feed and the pool of its (= the read models') database."""

    @property
    def pool(self) -> asyncpg.Pool: ...


class ProjectionReplayed(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    applied: int
    """Events applied to this read model."""
    position: Position
    """Its checkpoint at the end of the replay."""


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    projections: tuple[ProjectionReplayed, ...]
    events: int
    """Events read from the store (each page is read once for all selected projectors)."""
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def replay(
    store: ReplayStore,
    projectors: Sequence[Projector],
    *,
    names: Sequence[str] | None = None,
    page_size: int = REPLAY_PAGE_SIZE,
) -> ReplayReport:
    """Rebuild the named read models (all of ``projectors`` when ``names`` is None) from position 0.

    Unknown names raise ``UnknownProjectionError`` before anything is touched. A projector that fails
    raises ``ProjectionFailedError``: its read model stays at the last committed page (replay again).
    """
    selected = ProjectorRegistry(projectors).select(names)
    for projector in selected:
        _table_list(projector)  # refuse a protected or malformed table name before touching anything
    started = time.perf_counter()
    runners = [ProjectionRunner(projector, store.pool, store, page_size=page_size) for projector in selected]
    for runner in runners:
        await runner.ensure_schema()
    await reset(store.pool, selected)
    for runner in runners:
        await runner.start()
    with _bulk_allocation():
        events = await _catch_up_together(store, runners, page_size) if runners else 0
    report = ReplayReport(
        projections=tuple(
            ProjectionReplayed(name=runner.name, applied=runner.applied, position=runner.position) for runner in runners
        ),
        events=events,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "replayed %s: %d events in %.2f s (%.0f events/s)",
        ", ".join(runner.name for runner in runners), report.events, report.seconds, report.events_per_second,
    )  # fmt: skip
    return report


async def reset(pool: asyncpg.Pool, projectors: Sequence[Projector]) -> None:
    """Empty the projectors' tables and set their checkpoints to the origin, all in one transaction."""
    ordered = sorted(projectors, key=lambda projector: projector.name)
    tables = [table for projector in ordered for table in _table_list(projector)]
    async with pool.acquire() as conn, conn.transaction():
        for projector in ordered:
            await lock_projection(conn, projector.name)
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(dict.fromkeys(tables))}")
        for projector in ordered:
            await save_checkpoint(conn, projector.name, ORIGIN)


async def _catch_up_together(store: ReplayStore, runners: Sequence[ProjectionRunner], page_size: int) -> int:
    """Read each page once and hand it to every runner; the next page is fetched while this one is applied."""
    head = await store.head()
    cursor = min(runner.position for runner in runners)
    pending: asyncio.Task[list[RecordedEvent]] | None = asyncio.create_task(store.read_all(cursor, limit=page_size))
    read = 0
    try:
        while pending is not None:
            page = await pending
            pending = None
            if not page:
                break
            read += len(page)
            last = page[-1].position
            if len(page) == page_size and last < head:
                pending = asyncio.create_task(store.read_all(last, limit=page_size))
            for runner in runners:
                await runner.handle(page)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
    return read


BULK_GEN0_THRESHOLD = 100_000
_bulk_depth = 0
_saved_threshold: tuple[int, int, int] | None = None


@contextlib.contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Let the cyclic garbage collector run less often while a replay runs; restore it afterwards.

    A replay builds millions of short-lived, acyclic objects, and keeps a page or two of them alive. The
    envelope Structs are tracked by the collector, so with the default generation-0 threshold (700) it runs
    every ~150 events and promotes whole pages into the old generation, whose full scans then dominate:
    measured in a process as big as the CLI's, 0.37x the raw read with the default, 0.75-0.9x with 50,000-200,000.
    This is process-wide (nested or concurrent replays share it); ``gc=False`` on the envelope Structs
    would make it unnecessary (see tests/bench/README.md, "Replay").
    """
    global _bulk_depth, _saved_threshold  # noqa: PLW0603 - the process's collector settings are global
    if _bulk_depth == 0:
        _saved_threshold = gc.get_threshold()
        gc.set_threshold(max(_saved_threshold[0], BULK_GEN0_THRESHOLD), *_saved_threshold[1:])
    _bulk_depth += 1
    try:
        yield
    finally:
        _bulk_depth -= 1
        if _bulk_depth == 0 and _saved_threshold is not None:
            gc.set_threshold(*_saved_threshold)
            _saved_threshold = None


def _table_list(projector: Projector) -> list[str]:
    quoted = []
    for table in projector.tables:
        parts = table.split(".")
        if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
            raise ContractViolationError(f"projector {projector.name!r}: table name {table!r} is not an identifier")
        if parts[-1].lower() in PROTECTED_TABLES:
            raise ContractViolationError(f"projector {projector.name!r} may not replay the store's table {table!r}")
        quoted.append(table)  # unquoted, as in the projector's DDL; the pattern above admits no SQL
    return quoted
