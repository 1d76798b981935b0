"""Rebuilding a project's current graph from its events alone, for when the snapshot is gone.

Snapshots are a cache (ADR 0010): an object store that was emptied, moved or corrupted must not stop a
project from being ingested again. Folding ``graph-<project>`` gives back every node record with its
``node_uuid``, the macros, the catalog, the groups, selectors and version metadata, which is all a diff
reads. Disabled nodes come back as ids only (the events record which nodes were disabled, the snapshot
their definitions); a diff compares only those ids.
"""

from __future__ import annotations

import uuid

from contracts.events.graph import (
    CatalogRecorded,
    GraphVersionCreated,
    MacrosChanged,
    NodesAdded,
    NodesChanged,
    NodesRemoved,
    NodesRenamed,
)
from contracts.graph import CatalogEntry, GraphNode, LogicalGraph, Macro
from services.ingestion.snapshots import GraphSnapshot
from services.shared.errors import NotFoundError
from services.shared.eventstore.port import TenantEventStore


class _Fold:
    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.ids: dict[str, uuid.UUID] = {}
        self.macros: dict[str, Macro] = {}
        self.catalog: dict[str, CatalogEntry] = {}
        self.version: GraphVersionCreated | None = None

    def put(self, node_uuid: uuid.UUID, node: GraphNode) -> None:
        self.nodes[node.unique_id] = node
        self.ids[node.unique_id] = node_uuid

    def drop(self, unique_id: str) -> None:
        self.nodes.pop(unique_id, None)
        self.ids.pop(unique_id, None)

    def apply(self, payload: object) -> None:  # noqa: PLR0912 - one case per event type
        match payload:
            case NodesAdded():
                for record in payload.nodes:
                    self.put(record.node_uuid, record.node)
            case NodesRenamed():
                for rename in payload.renames:
                    self.drop(rename.old_unique_id)
                for record in payload.nodes:
                    self.put(record.node_uuid, record.node)
            case NodesChanged():
                for changed in payload.nodes:
                    self.put(changed.node_uuid, changed.node)
            case NodesRemoved():
                for removed in payload.nodes:
                    self.drop(removed.unique_id)
            case MacrosChanged():
                for macro in payload.upserted:
                    self.macros[macro.unique_id] = macro
                for unique_id in payload.removed:
                    self.macros.pop(unique_id, None)
            case CatalogRecorded():
                for entry in payload.entries:
                    self.catalog[entry.unique_id] = entry
                for unique_id in payload.removed:
                    self.catalog.pop(unique_id, None)
            case GraphVersionCreated():
                self.version = payload
            case _:
                pass  # run history and ingestion records do not shape the graph


_SHAPES_GRAPH = (
    NodesAdded,
    NodesRenamed,
    NodesChanged,
    NodesRemoved,
    MacrosChanged,
    CatalogRecorded,
    GraphVersionCreated,
)


async def rebuild_snapshot(
    store: TenantEventStore, stream: str, project_id: str, *, graph_version: int | None = None
) -> GraphSnapshot:
    """The graph at ``graph_version`` (default: the stream's latest), folded from its events."""
    fold = _Fold()
    for recorded in await store.read_stream(stream):
        payload = recorded.payload
        if graph_version is not None and isinstance(payload, _SHAPES_GRAPH) and payload.graph_version > graph_version:
            break
        fold.apply(payload)
    version = fold.version
    if version is None or (graph_version is not None and version.graph_version != graph_version):
        raise NotFoundError(
            f"stream {stream!r} holds no graph version {graph_version or ''} to rebuild", stream_id=stream
        )
    graph = LogicalGraph(
        info=version.manifest,
        nodes=fold.nodes,
        macros=fold.macros,
        groups={group.unique_id: group for group in version.groups},
        disabled=dict.fromkeys(version.disabled, ()),
        selectors=version.selectors,
        catalog=fold.catalog,
    )
    return GraphSnapshot(project_id=project_id, graph_version=version.graph_version, graph=graph, identities=fold.ids)
