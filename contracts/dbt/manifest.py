"""``manifest.json`` v1..v12 (dbt 0.19 to 1.12 and Core v2, which still writes v12).

One ``Resource`` Struct reads every section that holds selectable resources (``nodes``, ``sources``,
``exposures``, ``metrics``, ``semantic_models``, ``saved_queries``, ``unit_tests``, ``functions`` and
``disabled``): the sections share most keys, and a single flat Struct keeps decoding one tight loop. The
version differences it absorbs:

- ``raw_sql``/``compiled_sql`` (v1-v6) and ``raw_code``/``compiled_code`` (v7+): both pairs are declared, as
  ``msgspec.Raw`` so that the code (most of a build manifest's bytes) is never built as Python ``str`` here;
- seeds without ``depends_on.nodes`` (v8+), and sources without any ``depends_on``: empty defaults;
- ``checksum`` is ``{name, checksum}`` on nodes but a plain string on unit tests (v12);
- ``disabled`` is a list of nodes in v1-v3 and ``{unique_id: [node, ...]}`` from v4;
- ``refs`` (lists before v9, ``{name, package, version}`` after) is not read at all: ``depends_on.nodes``
  is dbt's resolved form of the same edges and has one shape in every version.

Pre-v10 metrics decode like any other resource; dropping them (as dbt's upgrader does) is the ingester's
decision, not the contract's. ``columns``, ``test_metadata`` and ``contract`` have exactly the shape of
their :mod:`contracts.graph` counterparts in every version, so they decode straight into those Structs and
the normaliser need not copy them one column at a time.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.dbt.metadata import Metadata
from contracts.graph import Column, Contract, TestMetadata

NO_CODE = msgspec.Raw()
"""The default of the code fields: an empty Raw (a JSON ``null`` decodes to ``Raw(b"null")`` instead)."""


class FileHash(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """dbt's checksum of the file a node comes from; ``name`` is ``none`` for generic tests."""

    name: str
    checksum: str = ""


class DependsOn(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    nodes: tuple[str, ...] = ()
    macros: tuple[str, ...] = ()


class Resource(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Any selectable resource: a node (model, test, seed, snapshot, analysis, operation), source, exposure,
    metric, semantic model, saved query, unit test or function. Fields a resource type lacks stay default."""

    unique_id: str
    resource_type: str
    name: str
    package_name: str
    original_file_path: str = ""
    path: str = ""
    patch_path: str | None = None
    fqn: tuple[str, ...] = ()
    database: str | None = None
    schema_name: str | None = msgspec.field(default=None, name="schema")
    alias: str | None = None
    relation_name: str | None = None
    checksum: FileHash | str | None = None
    raw_code: msgspec.Raw = NO_CODE
    raw_sql: msgspec.Raw = NO_CODE
    compiled_code: msgspec.Raw = NO_CODE
    compiled_sql: msgspec.Raw = NO_CODE
    language: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    meta: dict[str, Any] = {}
    config: dict[str, Any] = {}
    unrendered_config: dict[str, Any] = {}
    columns: dict[str, Column] = {}
    depends_on: DependsOn | None = None
    contract: Contract | None = None
    access: str | None = None
    group: str | None = None
    version: str | int | float | None = None
    latest_version: str | int | float | None = None
    deprecation_date: str | None = None
    test_metadata: TestMetadata | None = None
    attached_node: str | None = None
    column_name: str | None = None
    # sources
    source_name: str | None = None
    identifier: str | None = None
    quoting: dict[str, Any] = {}
    freshness: dict[str, Any] | None = None
    loaded_at_field: str | None = None
    external: dict[str, Any] | None = None
    # exposures (and ``label`` of metrics, semantic models, saved queries)
    type: str | None = None
    maturity: str | None = None
    owner: dict[str, Any] | None = None
    url: str | None = None
    label: str | None = None
    # semantic models (``ref('x')``) and unit tests (the model's name)
    model: str | None = None


class MacroDependsOn(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    macros: tuple[str, ...] = ()


class Macro(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    unique_id: str
    name: str
    package_name: str
    original_file_path: str = ""
    macro_sql: msgspec.Raw = NO_CODE
    depends_on: MacroDependsOn | None = None


class Group(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """v9+."""

    unique_id: str
    name: str
    package_name: str
    owner: dict[str, Any] = {}


class Manifest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    metadata: Metadata
    nodes: dict[str, Resource] = {}
    sources: dict[str, Resource] = {}
    exposures: dict[str, Resource] = {}
    metrics: dict[str, Resource] = {}
    """v4+; before v10 these are the old metrics that dbt's upgrader drops."""
    semantic_models: dict[str, Resource] = {}
    """v10+."""
    saved_queries: dict[str, Resource] = {}
    """v11+."""
    unit_tests: dict[str, Resource] = {}
    """v12 (dbt 1.8+)."""
    functions: dict[str, Resource] = {}
    """v12 from dbt 1.11 (UDFs), added without a schema version bump."""
    macros: dict[str, Macro] = {}
    groups: dict[str, Group] = {}
    selectors: dict[str, dict[str, Any]] = {}
    disabled: dict[str, list[Resource]] | list[Resource] | None = None


RESOURCE_SECTIONS: tuple[str, ...] = (
    "nodes",
    "sources",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "unit_tests",
    "functions",
)
"""The sections whose entries are resources with a unique_id (what ``depends_on.nodes`` may name)."""
