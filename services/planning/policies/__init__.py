"""Planning policies: pure rules that turn a selection into RUN / SKIP / PARTIAL decisions and approval needs.

A ``Policy`` has an ``id``, a ``version`` and ``evaluate(context) -> list[Decision]``. The planner evaluates the
environment's policies in a fixed order (``PlanningSettings.policy_order``, default ``DEFAULT_POLICY_ORDER``),
each seeing the decisions of the ones before it, then combines the decisions per item by the precedence rules
of ``_combine`` (failure SKIP > SKIP > PARTIAL > RUN; REQUIRE_APPROVAL is plan-level). Plugins add policies with
``register_policy``. Built-ins (registered on import): ``skip_if_no_change``, ``partial_by_partition``,
``prioritize_exposures``, ``limit_cost_budget``, ``approval_rules``.
"""

from __future__ import annotations

from services.planning.policies._base import (
    DEFAULT_POLICY_ORDER,
    PlanningError,
    Policy,
    get_policy,
    reason,
    register_policy,
    registered_policies,
    resolve_policies,
    unregister_policy,
)
from services.planning.policies._combine import combine, combined_action, strength
from services.planning.policies._context import PlanIndex, PolicyContext, latest_record
from services.planning.policies.approval_rules import ApprovalRules, breaking_contract_change
from services.planning.policies.limit_cost_budget import LimitCostBudget
from services.planning.policies.partial_by_partition import PartialByPartition, partition_contract
from services.planning.policies.prioritize_exposures import PrioritizeExposures
from services.planning.policies.skip_if_no_change import SkipIfNoChange

__all__ = [
    "DEFAULT_POLICY_ORDER",
    "ApprovalRules",
    "LimitCostBudget",
    "PartialByPartition",
    "PlanIndex",
    "PlanningError",
    "Policy",
    "PolicyContext",
    "PrioritizeExposures",
    "SkipIfNoChange",
    "breaking_contract_change",
    "combine",
    "combined_action",
    "get_policy",
    "latest_record",
    "partition_contract",
    "reason",
    "register_policy",
    "registered_policies",
    "resolve_policies",
    "strength",
    "unregister_policy",
]

for _builtin in (SkipIfNoChange(), PartialByPartition(), PrioritizeExposures(), LimitCostBudget(), ApprovalRules()):
    register_policy(_builtin)
