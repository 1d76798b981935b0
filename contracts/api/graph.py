"""Request and response bodies of the graph routes (``/api/tenants/{t}/projects/{p}/graph|ingestions|artifacts``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from contracts.graph import CatalogEntry, GraphNode

ObjectKey = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, description="An object-store key.")]


class IngestByKeyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    manifest: ObjectKey | None = None
    catalog: ObjectKey | None = None
    run_results: ObjectKey | None = None
    sources: ObjectKey | None = None


class ArtifactUpload(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    key: str
    sha256: str
    size: int


class IngestionOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one ingestion did; the CLI prints it and the API returns it."""

    project_id: str
    graph_version: int
    new_version: bool
    deduplicated: bool
    """True when the same artifacts had been ingested last: nothing was appended."""
    nodes: int
    edges: int
    added: int = 0
    changed: int = 0
    modified: int = 0
    removed: int = 0
    renamed: int = 0
    events: int = 0
    warnings: tuple[str, ...] = ()
    unknown_nodes: int = 0
    stream_version: int = 0
    global_position: int | None = None
    elapsed_ms: float = 0.0


class GraphVersionView(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    previous_version: int
    created_at: str
    dbt_version: str | None
    adapter_type: str | None
    dbt_project_name: str | None
    schema_version: int
    manifest_sha256: str
    catalog_sha256: str | None
    nodes: int
    edges: int
    added: int
    changed: int
    modified: int
    removed: int
    renamed: int
    macros_changed: int
    snapshot_key: str
    code_key: str


class GraphVersionList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[GraphVersionView]


class NodeStatusView(msgspec.Struct, frozen=True, kw_only=True):
    unique_id: str
    status: str
    invocation_id: str
    command: str | None
    execution_time: float
    completed_at: str | None


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    node_uuid: uuid.UUID
    valid_from: int
    """The graph version this record of the node appeared in."""
    aspects: tuple[str, ...] | None = None
    """What changed at ``valid_from`` (None: the node was added then)."""
    last_status: str | None = None
    node: GraphNode


class Edge(msgspec.Struct, frozen=True, kw_only=True):
    parent: str
    child: str


class GraphPage(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    nodes: list[NodeView]
    edges: list[Edge]
    """Edges into this page's nodes (for a focus query: only those between the returned nodes)."""
    next_after: str | None = None


class OutlineNode(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One node as the graph canvas draws it: identity, kind, and what grouping and filtering need."""

    unique_id: str
    node_uuid: uuid.UUID
    """Stable across renames: canvas positions are keyed on it."""
    name: str
    resource_type: str
    package_name: str
    path: str = ""
    """``original_file_path`` (the folder grouping reads it)."""
    materialized: str | None = None
    tags: tuple[str, ...] = ()
    access: str | None = None
    group: str | None = None
    version: str | None = None


class GraphOutline(msgspec.Struct, frozen=True, kw_only=True):
    """The whole graph at a version, compact: every node once, edges as pairs of indexes into ``nodes``."""

    graph_version: int
    nodes: list[OutlineNode]
    """Sorted by unique_id."""
    edges: list[tuple[int, int]]
    """``(parent, child)`` indexes into ``nodes``."""


class NodeStatuses(msgspec.Struct, frozen=True, kw_only=True):
    """unique_id -> status of the node's last recorded execution (nodes never executed are absent)."""

    statuses: dict[str, str]


class NodeDetail(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    node: NodeView
    catalog: CatalogEntry | None = None
    parents: list[str]
    children: list[str]
    tests: list[str]
    versions: list[str] = []
    """For a versioned model: the unique_ids of all its versions (itself included), sorted."""
    raw_code: str | None = None
    compiled_code: str | None = None
    owner: str | None = None
    """``meta.owner`` of the node, else the owner (name or email) of its dbt group."""


class NodeDiff(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["added", "removed", "renamed", "changed"]
    node_uuid: uuid.UUID
    unique_id: str
    old_unique_id: str | None = None
    resource_type: str
    aspects: tuple[str, ...] = ()
    modified: bool = False


class VersionDiff(msgspec.Struct, frozen=True, kw_only=True):
    from_version: int
    to_version: int
    added: list[NodeDiff]
    removed: list[NodeDiff]
    renamed: list[NodeDiff]
    changed: list[NodeDiff]


class IngestionView(msgspec.Struct, frozen=True, kw_only=True):
    ingestion_id: uuid.UUID
    stream_version: int
    recorded_at: str
    actor: str
    graph_version: int
    new_version: bool
    nodes: int
    edges: int
    artifacts: list[Any]
    warnings: list[str]
    unknown_nodes: int


class IngestionList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[IngestionView]
