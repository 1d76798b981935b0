"""``sources.json`` v1..v3 (``dbt source freshness``, dbt 0.19 to 1.12).

A result is either a freshness check (``max_loaded_at``, ``criteria``...) or a runtime error (``error``);
one Struct with optional fields reads both, in every version.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.dbt.metadata import Metadata


class FreshnessResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    unique_id: str
    status: str
    max_loaded_at: str | None = None
    snapshotted_at: str | None = None
    max_loaded_at_time_ago_in_s: float | None = None
    criteria: dict[str, Any] = {}
    error: str | None = None


class SourcesArtifact(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    metadata: Metadata
    results: tuple[FreshnessResult, ...] = ()
    elapsed_time: float = 0.0
