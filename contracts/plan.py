"""ExecutionPlans: what a run will do to each selected node, and why: the wire types (issue 4).

A plan is data (SQLMesh's plan/explainer split): ``services.planning.planner.build_plan`` computes it without
side effects from the graph, the selection, the reference graph (state), run history, source freshness and the
environment's ``PlanningSettings``; the run lifecycle stores it in events, executes it, or renders it with
``services.planning.explain``. Nothing here is computed on read: every field is what the planner decided.

Vocabulary:

- ``Decision``: one policy's verdict about one node (``RUN``, ``SKIP``, ``PARTIAL``) or about the plan
  (``REQUIRE_APPROVAL``, which never changes an item's action), with the ``Reason`` that explains it.
- ``PlanItem``: one selected, executable node with its final action, the reasons for that action (in policy
  order), its ``CostEstimate``, and its place: ``wave`` (priority band, parents never in a later wave than
  their children) and ``order`` (position in the plan: items are sorted by ``(wave, order)``).
- ``ApprovalRequirement``: who must approve the plan before it runs, and which rule asked for it.
- ``plan_hash``: sha256 over ``canonical_plan_bytes`` (msgspec JSON, dict keys and Struct fields sorted, the
  hash and ``plan_id`` blanked), so equal plans hash equally in any process, whatever ``PYTHONHASHSEED``.

Costs: ``cost`` is ``None`` (with ``currency`` ``None``) when the environment prices nothing (no rate, no
warehouse size): Lockgate never reports a made-up 0. Every estimate's ``evidence`` says where its numbers came
from (``source``: ``history``, ``catalog`` or ``default``).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

Action = Literal["RUN", "SKIP", "PARTIAL", "REQUIRE_APPROVAL"]
"""A policy's decision. ``REQUIRE_APPROVAL`` is about the plan, never about an item's action."""

ItemAction = Literal["RUN", "SKIP", "PARTIAL"]
"""What the run does with one item: build it, leave it alone, or build only a window of its partitions."""

Confidence = Literal["high", "medium", "low"]

BatchSize = Literal["hour", "day", "month", "year"]
"""dbt's microbatch ``batch_size`` values."""

BudgetAction = Literal["drop", "approve"]
"""Over budget: SKIP the lowest-priority work until the plan fits (``drop``), or ask for approval."""

Evidence = dict[str, Any]
"""JSON-able facts behind a reason or an estimate (sample sizes, timestamps, sources of defaults...)."""


class Reason(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Why a policy decided what it decided: a stable ``code``, a sentence, and the evidence."""

    policy_id: str
    policy_version: int
    code: str
    """Stable, machine-readable (``unchanged``, ``budget_exceeded``, ``exposure_ancestor``, ``upstream_skipped``...)."""
    message: str
    evidence: Evidence = {}
    failure: bool = False
    """A SKIP for a failure reason (the node cannot or must not run: its upstream failed, it is quarantined):
    it beats every other decision, and nothing downstream of it in the same plan runs."""


class PartitionWindow(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """The slice of a partitioned model a PARTIAL item rebuilds: ``[start, end)`` in whole batches."""

    start: datetime
    end: datetime
    event_time: str
    """The column the model's partitions are keyed on (dbt's ``event_time``)."""
    batch_size: BatchSize
    batches: int
    lookback: int = 0
    """Batches before the new data that are reprocessed as well (dbt's ``lookback``), included in ``start``."""


class Decision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One policy's verdict. ``unique_id`` is None only for plan-level ``REQUIRE_APPROVAL``."""

    unique_id: str | None
    action: Action
    reason: Reason
    wave: int | None = None
    """A priority hint (lower runs earlier); the planner raises it where a parent sits in a later wave."""
    window: PartitionWindow | None = None
    """Required with ``PARTIAL``, forbidden otherwise."""
    role: str | None = None
    """With ``REQUIRE_APPROVAL``: who must approve (default ``approver``)."""


class CostEstimate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """How long one node should take and what it should cost, with where those numbers came from."""

    seconds: float
    seconds_spread: float = 0.0
    """Median absolute deviation of the samples (0 with fewer than two)."""
    cost: float | None = None
    """In ``currency``; None when the environment has no price for this adapter (never a made-up 0)."""
    currency: str | None = None
    """``USD``... as configured, ``credits`` (Snowflake without a credit price), None when unpriced."""
    confidence: Confidence
    evidence: Evidence = {}
    """Always has ``source`` (``history``, ``catalog``, ``default``) and the inputs of the cost model."""


class PlanItem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    node_uuid: uuid.UUID
    unique_id: str
    resource_type: str
    action: ItemAction
    reasons: tuple[Reason, ...] = ()
    """The reasons for ``action``, in policy order (then policy id, then code)."""
    estimate: CostEstimate | None = None
    wave: int = 0
    order: int = 0
    """Position in the plan (0-based): items are sorted by ``(wave, order)`` and ``order`` is unique."""
    window: PartitionWindow | None = None
    """Only for ``PARTIAL``."""


class ApprovalRequirement(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    role: str
    rule_id: str
    reason: Reason
    unique_id: str | None = None
    """The node that triggered the rule, or None for the plan as a whole."""


class PolicyRef(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    policy_id: str
    version: int


class PlanInputs(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Everything a plan was built from, by reference: enough to rebuild it and get the same hash.

    ``policy_set`` and ``settings_digest`` are filled in by ``build_plan`` (what was really applied), whatever
    the caller passed.
    """

    project_id: str
    environment_id: str
    graph_version: int
    state_reference: int | None = None
    """The graph version compared against (dbt's ``--state``), if any."""
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    selector: str | None = None
    as_of: datetime
    """The planner's "now" (partition windows end here); passed in, never read from a clock."""
    policy_set: tuple[PolicyRef, ...] = ()
    settings_digest: str = ""
    """sha256 of the canonical ``PlanningSettings`` JSON."""


class PlanTotals(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    run: int = 0
    skip: int = 0
    partial: int = 0
    estimated_seconds: float = 0.0
    """Sum of the estimates of RUN and PARTIAL items (compute time, all threads)."""
    estimated_duration_seconds: float = 0.0
    """Wall-clock estimate: waves and topological levels in sequence, each level spread over the threads."""
    estimated_cost: float | None = None
    """Sum over priced RUN/PARTIAL items; None when none is priced."""
    currency: str | None = None
    unpriced: int = 0
    """RUN/PARTIAL items whose estimate has no cost."""
    not_executable: int = 0
    """Selected nodes that dbt never executes (sources, exposures, metrics...): not items."""


class ExecutionPlan(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    plan_id: str | None = None
    """Assigned by whoever stores the plan; not part of ``plan_hash``."""
    inputs: PlanInputs
    items: tuple[PlanItem, ...] = ()
    totals: PlanTotals
    approvals: tuple[ApprovalRequirement, ...] = ()
    """Sorted by ``(rule_id, unique_id, role)``; empty means the plan may run without approval."""
    plan_hash: str = ""

    @property
    def requires_approval(self) -> bool:
        return bool(self.approvals)


class PlanningSettings(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """An environment's planning configuration (travels in events, so every field has a default)."""

    production: bool = False
    adapter_type: str = ""
    threads: int = 1
    full_refresh: bool = False
    # cost model
    currency: str | None = None
    """Unit of ``rate_per_second`` and ``credit_price`` (``USD``...)."""
    rate_per_second: float | None = None
    """Non-Snowflake adapters: price of one second of execution. None: costs are not priced."""
    warehouse_size: str | None = None
    """Snowflake: size of the environment's warehouse (``X-Small`` ... ``6X-Large``)."""
    warehouse_sizes: dict[str, str] = {}
    """Snowflake: warehouse name -> size, for models that set ``snowflake_warehouse``."""
    credit_price: float | None = None
    """Snowflake: price of one credit in ``currency``; None: costs are reported in credits."""
    history_samples: int = 10
    """How many of the last successful executions an estimate uses."""
    default_seconds: dict[str, float] = {}
    """Per-materialization (or resource type) overrides of the defaults for never-seen nodes."""
    # budget and approvals
    budget_cost: float | None = None
    budget_seconds: float | None = None
    budget_action: BudgetAction = "drop"
    approval_cost_threshold: float | None = None
    approval_role: str = "approver"
    # policies
    policy_order: tuple[str, ...] = ()
    """Policy ids in evaluation order; empty: ``services.planning.policies.DEFAULT_POLICY_ORDER``."""
    # partitions
    partition_start: datetime | None = None
    partition_end: datetime | None = None
    """Default window of PARTIAL items; without a start, a model's last successful run's end; without an
    end, the plan's ``as_of``."""


_canonical = msgspec.json.Encoder(order="sorted")


def canonical_bytes(value: object) -> bytes:
    """JSON (msgspec) with sorted dict keys and Struct fields: the same bytes for equal values in any process."""
    return _canonical.encode(value)


def canonical_plan_bytes(plan: ExecutionPlan) -> bytes:
    """The plan as hashed: without ``plan_id`` and ``plan_hash``."""
    return canonical_bytes(msgspec.structs.replace(plan, plan_id=None, plan_hash=""))


def compute_plan_hash(plan: ExecutionPlan) -> str:
    return hashlib.sha256(canonical_plan_bytes(plan)).hexdigest()


def digest_settings(settings: PlanningSettings) -> str:
    return hashlib.sha256(canonical_bytes(settings)).hexdigest()
