"""Read-your-writes for one projection: the process that serves a request keeps the read model current
itself (ADR 0005), through the same ``ProjectionRunner`` as the workers (its advisory lock and checkpoint
make that safe beside them). ``catch_up`` applies everything committed so far; ``wait_until`` catches up
until a condition on the read model holds (a command's own write), with a deadline, else 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import asyncpg

from projections.runner import ProjectionRunner
from projections.runtime import Projector
from services.shared.errors import InfrastructureError
from services.shared.eventstore.port import GlobalFeed

_POLL = 0.005


class PooledStore(GlobalFeed, Protocol):
    @property
    def pool(self) -> asyncpg.Pool: ...


class Versioned(Protocol):
    @property
    def version(self) -> int:
        """The version of the row's stream after the last event the read model applied."""
        ...


R = TypeVar("R", bound=Versioned)


class CaughtUpReadModel:
    def __init__(self, projector: Projector, store: PooledStore, *, wait_seconds: float, page_size: int = 1000) -> None:
        self._pool = store.pool
        self._name = projector.name
        self._wait = wait_seconds
        self._runner = ProjectionRunner(projector, store.pool, store, page_size=page_size)

    @property
    def db(self) -> asyncpg.Pool:
        return self._pool

    async def catch_up(self, within: float | None = None) -> None:
        limit = self._wait if within is None else within
        try:
            async with asyncio.timeout(limit):
                await self._runner.catch_up()
        except TimeoutError:
            raise InfrastructureError(f"the {self._name} read model did not catch up within {limit:.1f} s") from None

    async def wait_until(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            await self.catch_up(within=max(deadline - loop.time(), 0.001))
            if await done():
                return
            if loop.time() >= deadline:
                raise InfrastructureError(f"{what} was recorded, but the {self._name} read model did not show it "
                                          f"within {self._wait} s")  # fmt: skip
            await asyncio.sleep(_POLL)  # our commit may still be behind the visibility horizon

    async def wait_for(self, fetch: Callable[[], Awaitable[R | None]], version: int, what: str) -> R:
        """Catch up until ``fetch`` returns the row at ``version`` or later (a command's own write)."""
        found: list[R] = []

        async def shown() -> bool:
            row = await fetch()
            if row is not None and row.version >= version:
                found.append(row)
                return True
            return False

        await self.wait_until(shown, f"{what} (version {version})")
        return found[-1]
