"""Graph snapshots: the whole normalised graph of one version, so that the next ingestion can diff
against it without folding the project's event stream.

A snapshot is a cache, never the record: the events hold every node record, and the snapshot is written
content-addressed to the object store before the events that name it are appended (a failed append leaves
an orphan object, never a dangling reference). The process keeps the latest few in memory, keyed by the
snapshot key, so re-ingesting into a warm process costs no object-store read at all.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

import msgspec

from contracts.graph import LogicalGraph
from services.shared.errors import ContractViolationError
from services.shared.objectstore.port import TenantObjectStore

SNAPSHOT_KIND = "snapshot"


class GraphSnapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    project_id: str
    graph_version: int
    graph: LogicalGraph
    identities: dict[str, uuid.UUID]
    """unique_id -> node_uuid for every node of ``graph.nodes``."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(GraphSnapshot)


def encode_snapshot(snapshot: GraphSnapshot) -> bytes:
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> GraphSnapshot:
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ContractViolationError(f"graph snapshot does not decode: {exc}") from exc


class SnapshotCache:
    """The last ``size`` snapshots this process wrote or read, by (tenant, key)."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], GraphSnapshot] = OrderedDict()

    def remember(self, tenant_id: str, key: str, snapshot: GraphSnapshot) -> None:
        self._items[(tenant_id, key)] = snapshot
        self._items.move_to_end((tenant_id, key))
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    async def load(self, objects: TenantObjectStore, key: str) -> GraphSnapshot:
        cached = self._items.get((objects.tenant_id, key))
        if cached is not None:
            self._items.move_to_end((objects.tenant_id, key))
            return cached
        snapshot = decode_snapshot(await objects.get(key))
        self.remember(objects.tenant_id, key, snapshot)
        return snapshot
