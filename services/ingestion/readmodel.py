"""The graph read model as the API and the CLI use it: queries, subgraphs and read-your-writes.

Like the tenancy read model (``services.tenancy.readmodel``), the process that serves a request catches the
graph projection up itself before reading, through the same ``ProjectionRunner`` (its advisory lock and
checkpoint make that safe beside a projector worker). Graph versions are immutable, so the dependency
graph of a version (a rustworkx ``Dag``) is cached in process per (tenant, project, version).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict

import asyncpg

from contracts.api.graph import GraphVersionView
from projections.graph import queries
from projections.graph.projector import GraphProjector
from projections.runner import ProjectionRunner
from services.shared.dag import Dag
from services.shared.errors import InfrastructureError, NotFoundError
from services.tenancy.readmodel import PooledStore

WAIT_SECONDS = 30.0
"""A first ingestion of a 10,000-node project projects tens of megabytes: allow it time."""

_POLL = 0.005

PAGE_SIZE = 32
"""Events per catch-up transaction. Graph events carry up to 256 KiB of node records each, so a page of the
runner's default 1,000 would hold a whole first ingestion (tens of MB, several times that once decoded)."""


class GraphReadModel:
    def __init__(self, store: PooledStore) -> None:
        self._pool = store.pool
        self._runner = ProjectionRunner(GraphProjector(), store.pool, store, page_size=PAGE_SIZE)
        self._dags: OrderedDict[tuple[str, str, int], Dag] = OrderedDict()

    @property
    def db(self) -> asyncpg.Pool:
        return self._pool

    async def catch_up(self, within: float = WAIT_SECONDS) -> None:
        try:
            async with asyncio.timeout(within):
                await self._runner.catch_up()
        except TimeoutError:
            raise InfrastructureError(f"the graph read model did not catch up within {within:.1f} s") from None

    async def wait_for_ingestion(self, tenant: str, project: str, stream_version: int) -> None:
        """Catch up until the read model shows the ingestion that left the stream at ``stream_version``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            await self.catch_up(within=max(deadline - loop.time(), 0.001))
            seen = await self._pool.fetchval(
                "SELECT max(stream_version) FROM graph_ingestions WHERE tenant_id = $1 AND project_id = $2",
                tenant,
                project,
            )
            if seen is not None and seen >= stream_version:
                return
            if loop.time() >= deadline:
                raise InfrastructureError(
                    f"the ingestion into {project!r} was recorded, but the graph read model did not show it "
                    f"within {WAIT_SECONDS} s"
                )
            await asyncio.sleep(_POLL)  # our commit may still be behind the visibility horizon

    async def resolve_version(self, tenant: str, project: str, graph_version: int | None) -> GraphVersionView:
        row = await queries.version(self._pool, tenant, project, graph_version)
        if row is None:
            what = "has no graph yet" if graph_version is None else f"has no graph version {graph_version}"
            raise NotFoundError(f"project {project!r} {what}", project_id=project)
        return row

    async def dag(self, tenant: str, project: str, graph_version: int) -> Dag:
        key = (tenant, project, graph_version)
        dag = self._dags.get(key)
        if dag is None:
            dag = Dag(await queries.parents_at(self._pool, tenant, project, graph_version))
            self._dags[key] = dag
            while len(self._dags) > 8:
                self._dags.popitem(last=False)
        else:
            self._dags.move_to_end(key)
        return dag


_models: weakref.WeakKeyDictionary[PooledStore, GraphReadModel] = weakref.WeakKeyDictionary()


def graph_read_model(store: PooledStore) -> GraphReadModel:
    model = _models.get(store)
    if model is None:
        model = _models[store] = GraphReadModel(store)
    return model
