"""The composition root: builds the store and the workers that one process runs, from Settings.

Embedded default (no database URL): an embedded PostgreSQL under LOCKGATE_HOME, projectors fed in
process straight from the store (the in-process feed). Distributed (database URL set): the API process
only serves; ``lockgate worker relay|projector`` run the followers, connected through NATS JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.settings import Settings

log = logging.getLogger(__name__)

Worker = Callable[[asyncio.Event], Awaitable[None]]
"""A long-running follower: runs until the event is set."""


@dataclass
class Runtime:
    settings: Settings
    store: PostgresEventStore
    _embedded_handle: Any = None
    extra_probes: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        handle: Any = None
        if settings.database_url is not None:
            dsn = settings.database_url
        else:
            from services.shared.embedded import start_embedded_postgres  # noqa: PLC0415

            dsn, handle = await asyncio.to_thread(start_embedded_postgres, settings.home)
        store = await PostgresEventStore.connect(dsn)
        return cls(settings=settings, store=store, _embedded_handle=handle)

    @classmethod
    async def open_with_workers(cls, settings: Settings) -> Runtime:
        """Open the runtime and start the workers this process runs in its mode (see module docstring)."""
        return await cls.open(settings)

    def readiness_probes(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """What /readyz checks: the store always, NATS when the process is connected to it."""
        probes: dict[str, Callable[[], Awaitable[None]]] = {"store": self.store.ping}
        probes.update(self.extra_probes)
        return probes

    def start_worker(self, name: str, worker: Worker) -> None:
        async def supervised() -> None:
            try:
                await worker(self._stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s stopped with an error", name)
                raise

        self._tasks.append(asyncio.create_task(supervised(), name=name))

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.store.close()
