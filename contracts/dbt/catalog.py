"""``catalog.json`` v1 (every dbt release so far): what ``dbt docs generate`` found in the warehouse.

Columns decode straight into :class:`contracts.graph.CatalogColumn`, whose shape is the artifact's.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.dbt.metadata import Metadata
from contracts.graph import CatalogColumn


class TableMetadata(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    type: str | None = None
    schema_name: str | None = msgspec.field(default=None, name="schema")
    name: str | None = None
    database: str | None = None
    comment: str | None = None
    owner: str | None = None


class CatalogTable(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    metadata: TableMetadata = TableMetadata()
    columns: dict[str, CatalogColumn] = {}
    stats: dict[str, Any] = {}
    unique_id: str | None = None


class Catalog(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    metadata: Metadata
    nodes: dict[str, CatalogTable] = {}
    sources: dict[str, CatalogTable] = {}
    errors: list[str] | None = None
    """What ``docs generate`` could not read; the ingester passes them on as warnings."""
