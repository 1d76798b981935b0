"""The dashboard (``GET /api/tenants/{t}/dashboard``): what needs attention across the tenant's projects."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from contracts.api.runs import RunView


class ProjectHealth(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    name: str
    graph_version: int | None = None
    """The latest graph version (None: nothing ingested yet)."""
    nodes: int = 0
    edges: int = 0
    dbt_version: str | None = None
    ingested_at: datetime | None = None
    """When artifacts were last ingested (run history included): how fresh Lockgate's picture is."""
    node_statuses: dict[str, int] = {}
    """Nodes by the status of their last recorded execution."""
    source_freshness: dict[str, int] = {}
    """Sources by the status of their last freshness check (``pass``, ``warn``, ``error``, ``runtime error``)."""
    freshness_checked_at: str | None = None


class RunCost(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished run was expected to take and cost, and what it took."""

    run_id: uuid.UUID
    project_id: str
    environment_id: str
    status: str
    finished_at: datetime | None = None
    estimated_seconds: float | None = None
    """The plan's estimate of compute time (all threads)."""
    actual_seconds: float | None = None
    """The compute time dbt reported for the run's nodes (the sum of their execution times)."""
    estimated_cost: float | None = None
    actual_cost: float | None = None
    """``actual_seconds`` at the plan's own rate (its cost per second of estimate); None when it was unpriced."""
    currency: str | None = None


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    projects: list[ProjectHealth]
    recent_runs: list[RunView]
    awaiting_my_approval: list[RunView]
    """Runs waiting for a decision the caller may take (role, and not their own run in production)."""
    awaiting_others: int
    """Runs waiting for someone else's decision."""
    failures: list[RunView]
    """Runs that failed in the last seven days, newest first."""
    costs: list[RunCost]
    """The latest finished runs, estimate beside actual."""
