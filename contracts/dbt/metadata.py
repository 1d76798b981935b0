"""``metadata``: the block every dbt artifact starts with, the same shape in every kind and version."""

from __future__ import annotations

import msgspec


class Metadata(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    dbt_schema_version: str | None = None
    """``https://schemas.getdbt.com/dbt/<kind>/v<N>.json``: what the ingester dispatches on."""
    dbt_version: str | None = None
    generated_at: str | None = None
    invocation_id: str | None = None
    adapter_type: str | None = None
    """manifest v1+ and run_results of recent versions; absent from catalogs and older run_results."""
    project_name: str | None = None
    """manifest v10+."""
    project_id: str | None = None


class Header(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Only the metadata of an artifact of any kind: read to explain why a typed decode failed."""

    metadata: Metadata
