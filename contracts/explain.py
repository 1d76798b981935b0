"""The explanation of an ExecutionPlan: what ``services.planning.explain.explain`` says about a plan, in the shape
the API returns and the terminal tree prints (one structure for both, so they always agree).

Grouped by action (RUN, PARTIAL, SKIP), then wave; each node with its position, estimate, partition window and
reasons (policy, version, code, sentence, evidence).
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.plan import ItemAction


class ExplainedReason(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    policy: str
    """``<policy_id> v<version>``."""
    code: str
    message: str
    failure: bool = False
    evidence: dict[str, Any] = {}


class ExplainedNode(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    order: int
    unique_id: str
    resource_type: str
    node_uuid: str
    estimate: str | None = None
    window: str | None = None
    reasons: tuple[ExplainedReason, ...] = ()


class ExplainedGroup(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    action: ItemAction
    wave: int
    title: str
    nodes: tuple[ExplainedNode, ...] = ()


class ExplainedApproval(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    role: str
    rule_id: str
    message: str
    policy: str
    unique_id: str | None = None


class PlanSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The plan's inputs and totals in one flat record (every key always present, ``None`` where unknown)."""

    project_id: str
    environment_id: str
    graph_version: int
    state_reference: int | None
    as_of: str
    run: int
    partial: int
    skip: int
    not_executable: int
    estimated_seconds: float
    estimated_duration_seconds: float
    estimated_cost: float | None
    currency: str | None
    unpriced: int
    policies: list[str]
    requires_approval: bool


class PlanExplanation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    plan_hash: str
    headline: str
    summary: PlanSummary
    approvals: tuple[ExplainedApproval, ...] = ()
    groups: tuple[ExplainedGroup, ...] = ()
