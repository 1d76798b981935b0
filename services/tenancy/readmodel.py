"""The tenancy read model as the API and the CLI use it: queries plus read-your-writes.

Decision (read-your-writes): the process that handles a tenancy request keeps the tenancy projection
current itself. Before a read it catches the projection up to the store's head (one cheap query when
nothing is new); after a command it drives the catch-up until the read model shows the command's stream
version, with a short deadline (``WAIT_SECONDS``). Both go through ``ProjectionRunner.catch_up``, whose
per-batch advisory lock and checkpoint make it safe beside a projector worker, a replay or another API
process: whoever applies an event first wins and the others skip it. This works the same in the embedded
default and in the distributed mode; if the projection cannot catch up in time (a projector bug, a stuck
transaction elsewhere) the request fails with 503 and the command's events stay stored.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import asyncpg

from contracts.api.tenancy import EnvironmentView, OrgView, ProjectView, TenantView
from projections.runner import ProjectionRunner
from projections.tenancy.projector import TenancyProjector
from services.shared.errors import InfrastructureError
from services.shared.eventstore.port import GlobalFeed

WAIT_SECONDS = 5.0
_POLL = 0.005

V = TypeVar("V", TenantView, OrgView, ProjectView, EnvironmentView)


class PooledStore(GlobalFeed, Protocol):
    @property
    def pool(self) -> asyncpg.Pool: ...


class TenancyReadModel:
    def __init__(self, store: PooledStore) -> None:
        self._pool = store.pool
        self._runner = ProjectionRunner(TenancyProjector(), store.pool, store)

    @property
    def db(self) -> asyncpg.Pool:
        return self._pool

    async def catch_up(self, within: float = WAIT_SECONDS) -> None:
        try:
            async with asyncio.timeout(within):
                await self._runner.catch_up()
        except TimeoutError:
            raise InfrastructureError(
                f"the tenancy read model did not catch up with the store within {within:.1f} s"
            ) from None

    async def wait_for(self, fetch: Callable[[], Awaitable[V | None]], version: int, what: str) -> V:
        """Catch up until ``fetch`` returns the row at ``version`` or later (the command's own write)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            await self.catch_up(within=max(deadline - loop.time(), 0.001))
            view = await fetch()
            if view is not None and view.version >= version:
                return view
            if loop.time() >= deadline:
                raise InfrastructureError(
                    f"{what} was recorded at version {version}, but the tenancy read model did not show it "
                    f"within {WAIT_SECONDS} s"
                )
            await asyncio.sleep(_POLL)  # our commit may still be behind the visibility horizon


_models: weakref.WeakKeyDictionary[PooledStore, TenancyReadModel] = weakref.WeakKeyDictionary()


def read_model(store: PooledStore) -> TenancyReadModel:
    """One read model (and one runner, whose position and mutex are shared) per store instance."""
    model = _models.get(store)
    if model is None:
        model = _models[store] = TenancyReadModel(store)
    return model
