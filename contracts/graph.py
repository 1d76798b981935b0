"""The LogicalGraph: Lockgate's one internal model of a dbt project, whatever artifact version it came from.

``contracts.dbt`` describes the artifacts as dbt writes them (many schema versions); the ingester
normalises them into these Structs, which every later capability reads (diffs, planning, the graph read
model, the UI). They travel inside graph events, so a change here is a wire change (golden schemas).

Hot model only: ``raw_code`` and ``compiled_code`` are not here. A node carries ``body_hash`` (a digest of
its ``raw_code``, what dbt's ``same_body`` compares) and the code itself is stored with the artifact.
Resource types, statuses and materializations are open sets (plain strings): dbt adds new ones without a
schema bump (``function`` in 1.11, ``reused`` in 1.12).
"""

from __future__ import annotations

from typing import Any

import msgspec

Meta = dict[str, Any]
"""Free-form YAML from the project (``meta``, ``config``): kept verbatim, never interpreted."""


class Column(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A column as the project declares it (YAML), not as the warehouse has it (see ``CatalogColumn``)."""

    name: str
    description: str = ""
    data_type: str | None = None
    meta: Meta = {}
    tags: tuple[str, ...] = ()
    constraints: tuple[Meta, ...] = ()


class Contract(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    enforced: bool = False
    alias_types: bool = True
    checksum: str | None = None


class TestMetadata(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What a generic test is: ``not_null``, ``relationships``... with its arguments."""

    name: str
    namespace: str | None = None
    kwargs: Meta = {}


class GraphNode(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One resource of the project: model, test, unit test, seed, snapshot, analysis, operation, function,
    source, exposure, metric, semantic model or saved query. ``unique_id`` is dbt's id; Lockgate's stable
    identity (``node_uuid``) is kept beside the node, in the graph's ``identities``.
    """

    unique_id: str
    resource_type: str
    name: str
    package_name: str
    original_file_path: str = ""
    path: str = ""
    patch_path: str | None = None
    fqn: tuple[str, ...] = ()
    database: str | None = None
    schema_name: str | None = None
    alias: str | None = None
    """For sources, the ``identifier``."""
    relation_name: str | None = None
    checksum: str = ""
    """``<algorithm>:<hex>`` as dbt computed it over the file; empty when dbt says ``none`` (generic tests)."""
    body_hash: str = ""
    """sha256 of ``raw_code`` (dbt's ``same_body``); empty when the node has no code."""
    language: str | None = None
    materialized: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    meta: Meta = {}
    config: Meta = {}
    unrendered_config: Meta = {}
    columns: tuple[Column, ...] = ()
    depends_on_nodes: tuple[str, ...] = ()
    depends_on_macros: tuple[str, ...] = ()
    contract: Contract | None = None
    access: str | None = None
    group: str | None = None
    version: str | None = None
    """Model version (``v2`` of ``model.p.m.v2``), as a string whatever type the YAML gave."""
    latest_version: str | None = None
    deprecation_date: str | None = None
    test_metadata: TestMetadata | None = None
    attached_node: str | None = None
    """For tests: the node the test is about (dbt's ``attached_node``, or inferred from its parents)."""
    column_name: str | None = None
    source_name: str | None = None
    extra: Meta = {}
    """Resource-specific attributes that state comparison reads: sources' ``quoting``, ``freshness``,
    ``loaded_at_field``, ``external``; exposures' ``type``, ``maturity``, ``owner``, ``url``, ``label``;
    semantic models' ``model``; anything else a later capability needs without a schema change."""


class Macro(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    unique_id: str
    name: str
    package_name: str
    original_file_path: str = ""
    sql_hash: str
    """sha256 of ``macro_sql``: a macro counts as modified when its SQL changes (dbt's rule)."""
    depends_on_macros: tuple[str, ...] = ()


class Group(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    unique_id: str
    name: str
    package_name: str
    owner: Meta = {}


class CatalogColumn(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    name: str
    type: str | None = None
    index: int | None = None
    comment: str | None = None


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What ``dbt docs generate`` found in the warehouse for one relation."""

    unique_id: str
    relation_type: str | None = None
    database: str | None = None
    schema_name: str | None = None
    name: str | None = None
    comment: str | None = None
    owner: str | None = None
    columns: tuple[CatalogColumn, ...] = ()
    stats: Meta = {}


class ArtifactInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """``metadata`` of one artifact, whatever its version."""

    kind: str
    """``manifest``, ``catalog``, ``run_results`` or ``sources``."""
    schema_version: int
    dbt_schema_version: str
    dbt_version: str | None = None
    adapter_type: str | None = None
    project_name: str | None = None
    project_id: str | None = None
    invocation_id: str | None = None
    generated_at: str | None = None
    command: str | None = None
    """run_results: ``args.which`` (``build``, ``run``, ``generate``...)."""


class LogicalGraph(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A normalised manifest (plus catalog): everything Lockgate knows about the project's shape."""

    info: ArtifactInfo
    nodes: dict[str, GraphNode]
    """Every resource with a unique_id that can be selected or depended on, keyed by unique_id."""
    macros: dict[str, Macro] = {}
    groups: dict[str, Group] = {}
    disabled: dict[str, tuple[GraphNode, ...]] = {}
    selectors: dict[str, Meta] = {}
    """The project's YAML selectors, verbatim (issue 4 evaluates them)."""
    catalog: dict[str, CatalogEntry] = {}


class CodeRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The code kept out of the hot model, stored next to the artifact."""

    raw_code: str | None = None
    compiled_code: str | None = None


class NodeResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One entry of ``run_results.json``: what happened to one node in one invocation."""

    unique_id: str
    status: str
    execution_time: float = 0.0
    started_at: str | None = None
    completed_at: str | None = None
    thread_id: str | None = None
    message: str | None = None
    failures: int | None = None
    rows_affected: int | None = None
    query_ids: tuple[str, ...] = ()
    adapter_response: Meta = {}
    relation_name: str | None = None


class RunResults(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    info: ArtifactInfo
    elapsed_time: float = 0.0
    results: tuple[NodeResult, ...] = ()


class SourceFreshness(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One entry of ``sources.json`` (``dbt source freshness``)."""

    unique_id: str
    status: str
    max_loaded_at: str | None = None
    snapshotted_at: str | None = None
    max_loaded_at_time_ago_in_s: float | None = None
    criteria: Meta = {}
    error: str | None = None


class FreshnessResults(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    info: ArtifactInfo
    elapsed_time: float = 0.0
    results: tuple[SourceFreshness, ...] = ()
