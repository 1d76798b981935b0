"""The graph read model as the API and the CLI use it: queries, subgraphs and read-your-writes.

Like the tenancy read model (``services.tenancy.readmodel``), the process that serves a request catches the
graph projection up itself before reading, through the same ``ProjectionRunner`` (its advisory lock and
checkpoint make that safe beside a projector worker). Graph versions are immutable, so the dependency
graph of a version (a rustworkx ``Dag``) is cached in process per (tenant, project, version).
"""

from __future__ import annotations

import gzip
import weakref
from collections import OrderedDict
from typing import Generic, TypeVar

import msgspec

from contracts.api.graph import GraphOutline, GraphVersionView
from projections.graph import queries
from projections.graph.projector import GraphProjector
from services.shared.dag import Dag
from services.shared.errors import NotFoundError
from services.shared.readmodel import CaughtUpReadModel, PooledStore

WAIT_SECONDS = 30.0
"""A first ingestion of a 10,000-node project projects tens of megabytes: allow it time."""

PAGE_SIZE = 32
"""Events per catch-up transaction. Graph events carry up to 256 KiB of node records each, so a page of the
runner's default 1,000 would hold a whole first ingestion (tens of MB, several times that once decoded)."""


K = TypeVar("K")
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """The few most recently used values of something immutable (graph versions never change)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


class EncodedOutline(msgspec.Struct, frozen=True, kw_only=True):
    """A graph version's outline as JSON, plain and gzip-compressed (what the graph canvas downloads)."""

    graph_version: int
    json: bytes
    gzip: bytes


class GraphReadModel(CaughtUpReadModel):
    def __init__(self, store: PooledStore) -> None:
        super().__init__(GraphProjector(), store, wait_seconds=WAIT_SECONDS, page_size=PAGE_SIZE)
        self._dags: _Recent[tuple[str, str, int], Dag] = _Recent(8)
        self._outlines: _Recent[tuple[str, str, int], EncodedOutline] = _Recent(4)

    async def wait_for_ingestion(self, tenant: str, project: str, stream_version: int) -> None:
        """Catch up until the read model shows the ingestion that left the stream at ``stream_version``."""

        async def shown() -> bool:
            seen = await self.db.fetchval(
                "SELECT max(stream_version) FROM graph_ingestions WHERE tenant_id = $1 AND project_id = $2",
                tenant,
                project,
            )
            return seen is not None and seen >= stream_version

        await self.wait_until(shown, f"the ingestion into {project!r}")

    async def resolve_version(self, tenant: str, project: str, graph_version: int | None) -> GraphVersionView:
        row = await queries.version(self.db, tenant, project, graph_version)
        if row is None:
            what = "has no graph yet" if graph_version is None else f"has no graph version {graph_version}"
            raise NotFoundError(f"project {project!r} {what}", project_id=project)
        return row

    async def dag(self, tenant: str, project: str, graph_version: int) -> Dag:
        key = (tenant, project, graph_version)
        dag = self._dags.get(key)
        if dag is None:
            dag = self._dags.put(key, Dag(await queries.parents_at(self.db, tenant, project, graph_version)))
        return dag

    async def outline(self, tenant: str, project: str, graph_version: int) -> EncodedOutline:
        """The version's ``GraphOutline``, encoded once per process and version (then served from memory)."""
        key = (tenant, project, graph_version)
        cached = self._outlines.get(key)
        if cached is not None:
            return cached
        rows = await queries.outline(self.db, tenant, project, graph_version)
        index = {row.node.unique_id: i for i, row in enumerate(rows)}
        edges = [(index[p], i) for i, row in enumerate(rows) for p in row.parents if p in index]
        body = msgspec.json.encode(
            GraphOutline(graph_version=graph_version, nodes=[row.node for row in rows], edges=edges)
        )
        encoded = EncodedOutline(graph_version=graph_version, json=body, gzip=gzip.compress(body, compresslevel=5))
        return self._outlines.put(key, encoded)


_models: weakref.WeakKeyDictionary[PooledStore, GraphReadModel] = weakref.WeakKeyDictionary()


def graph_read_model(store: PooledStore) -> GraphReadModel:
    model = _models.get(store)
    if model is None:
        model = _models[store] = GraphReadModel(store)
    return model
