"""Graph events: what an ingestion of dbt artifacts recorded (wire tags ``graph.<event_snake>.v1``).

One stream per project, ``graph-<project>``. One ingestion command appends, in this order and in one
transaction: the graph change as a diff against the previous graph version (``nodes_added``,
``nodes_renamed``, ``nodes_changed``, ``nodes_removed``, ``macros_changed``, ``catalog_recorded``, each cut
into chunks small enough for one NATS message), then ``graph_version_created`` when anything changed, then
run history (``run_results_recorded``, ``source_freshness_recorded``), and always last
``artifacts_ingested``, which names every stored artifact by content hash and the graph version they left
the project at. The last event of the stream is therefore enough to know the current graph version, its
snapshot, and whether the same artifacts are being ingested again.

Node records carry the hot model only (``contracts.graph``); the SQL is in the stored code object
(``code_key``) and the artifacts themselves in the object store.
"""

from __future__ import annotations

import uuid

import msgspec

from contracts.base import Event
from contracts.graph import ArtifactInfo, CatalogEntry, GraphNode, Group, Macro, Meta, NodeResult, SourceFreshness
from contracts.graph_diff import NodeRename
from contracts.registry import REGISTRY


class NodeRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    node_uuid: uuid.UUID
    node: GraphNode


class ChangedNode(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    node_uuid: uuid.UUID
    aspects: tuple[str, ...]
    """What changed (``contracts.graph_diff`` vocabulary: ``body``, ``configs``, ``relation``...)."""
    modified: bool
    """Whether dbt's ``state:modified`` would select the node for this change."""
    node: GraphNode


class RemovedNode(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    unique_id: str
    node_uuid: uuid.UUID


class StoredArtifact(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One artifact file as stored: content hash, size, object-store key and what its metadata said."""

    sha256: str
    size: int
    key: str
    info: ArtifactInfo


class NodesAdded(Event, frozen=True, kw_only=True, tag="graph.nodes_added.v1"):
    context = "graph"
    project_id: str
    graph_version: int
    nodes: tuple[NodeRecord, ...]


class NodesRenamed(Event, frozen=True, kw_only=True, tag="graph.nodes_renamed.v1"):
    """Nodes whose unique_id changed but whose body and parents say they are the same node: they keep
    their ``node_uuid``. ``nodes`` holds their records under the new unique_id."""

    context = "graph"
    project_id: str
    graph_version: int
    renames: tuple[NodeRename, ...]
    nodes: tuple[NodeRecord, ...]


class NodesChanged(Event, frozen=True, kw_only=True, tag="graph.nodes_changed.v1"):
    context = "graph"
    project_id: str
    graph_version: int
    nodes: tuple[ChangedNode, ...]


class NodesRemoved(Event, frozen=True, kw_only=True, tag="graph.nodes_removed.v1"):
    context = "graph"
    project_id: str
    graph_version: int
    nodes: tuple[RemovedNode, ...]


class MacrosChanged(Event, frozen=True, kw_only=True, tag="graph.macros_changed.v1"):
    """Macros added or whose SQL changed (``upserted``) and removed ones, by unique_id."""

    context = "graph"
    project_id: str
    graph_version: int
    upserted: tuple[Macro, ...] = ()
    removed: tuple[str, ...] = ()


class CatalogRecorded(Event, frozen=True, kw_only=True, tag="graph.catalog_recorded.v1"):
    """Catalog entries that are new or differ from the previous version's, and ones no longer there."""

    context = "graph"
    project_id: str
    graph_version: int
    entries: tuple[CatalogEntry, ...] = ()
    removed: tuple[str, ...] = ()


class GraphVersionCreated(Event, frozen=True, kw_only=True, tag="graph.graph_version_created.v1"):
    context = "graph"
    project_id: str
    graph_version: int
    previous_version: int
    manifest: ArtifactInfo
    manifest_sha256: str
    catalog_sha256: str | None = None
    nodes: int
    edges: int
    added: int
    changed: int
    modified: int
    removed: int
    renamed: int
    macros_changed: int
    groups: tuple[Group, ...] = ()
    selectors: Meta = msgspec.field(default_factory=dict)
    disabled: tuple[str, ...] = ()
    """unique_ids of disabled nodes (their definitions are in the snapshot)."""
    snapshot_key: str
    """The whole normalised graph at this version (object store), a cache that the events can rebuild."""
    code_key: str
    """raw_code / compiled_code of every node at this version (object store)."""


class RunResultsRecorded(Event, frozen=True, kw_only=True, tag="graph.run_results_recorded.v1"):
    """Part of one dbt invocation's run_results.json: run history that later feeds cost estimates."""

    context = "graph"
    project_id: str
    invocation_id: str
    info: ArtifactInfo
    graph_version: int
    """The project's graph version when the results were ingested."""
    elapsed_time: float = 0.0
    results: tuple[NodeResult, ...]
    unknown_nodes: tuple[str, ...] = ()
    """Results naming nodes the graph does not have (kept, flagged)."""


class SourceFreshnessRecorded(Event, frozen=True, kw_only=True, tag="graph.source_freshness_recorded.v1"):
    context = "graph"
    project_id: str
    invocation_id: str
    info: ArtifactInfo
    graph_version: int
    results: tuple[SourceFreshness, ...]
    unknown_nodes: tuple[str, ...] = ()


class ArtifactsIngested(Event, frozen=True, kw_only=True, tag="graph.artifacts_ingested.v1"):
    """Always the last event of an ingestion: what was stored, and where it left the project's graph."""

    context = "graph"
    project_id: str
    ingestion_id: uuid.UUID
    artifacts: tuple[StoredArtifact, ...]
    graph_version: int
    snapshot_key: str
    new_version: bool
    """Whether this ingestion created ``graph_version`` (False: the graph did not change)."""
    nodes: int
    edges: int
    """Size of the graph at ``graph_version``."""
    warnings: tuple[str, ...] = ()
    unknown_nodes: int = 0


GraphDiffEvents = NodesAdded | NodesRenamed | NodesChanged | NodesRemoved | MacrosChanged | CatalogRecorded
AnyGraphEvent = GraphDiffEvents | GraphVersionCreated | RunResultsRecorded | SourceFreshnessRecorded | ArtifactsIngested

GRAPH_EVENTS: tuple[type[Event], ...] = (
    NodesAdded,
    NodesRenamed,
    NodesChanged,
    NodesRemoved,
    MacrosChanged,
    CatalogRecorded,
    GraphVersionCreated,
    RunResultsRecorded,
    SourceFreshnessRecorded,
    ArtifactsIngested,
)

REGISTRY.register(*GRAPH_EVENTS)
