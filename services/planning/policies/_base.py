"""The ``Policy`` protocol, the registry plugins add to, and the default evaluation order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contracts.plan import Decision, Evidence, Reason
from services.planning.policies._context import PolicyContext
from services.shared.errors import LockgateError


class PlanningError(LockgateError):
    """A plan cannot be built: unknown policy, a policy's malformed decision, ids missing from the graph."""

    code = "planning_error"


class Policy(Protocol):
    """A pure rule: the same context gives the same decisions, in the same order, in any process.

    ``evaluate`` returns decisions about items of ``context.items`` (RUN, SKIP, PARTIAL with a window) or
    ``REQUIRE_APPROVAL`` (about the plan, ``unique_id`` None, or naming the node that triggered it). Each
    decision's reason carries this policy's ``id`` and ``version``; a new behaviour is a new version.
    """

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    def evaluate(self, context: PolicyContext) -> list[Decision]: ...


def reason(
    policy: Policy, code: str, message: str, evidence: Evidence | None = None, *, failure: bool = False
) -> Reason:
    return Reason(
        policy_id=policy.id,
        policy_version=policy.version,
        code=code,
        message=message,
        evidence=evidence or {},
        failure=failure,
    )


DEFAULT_POLICY_ORDER: tuple[str, ...] = (
    "skip_if_no_change",
    "partial_by_partition",
    "prioritize_exposures",
    "limit_cost_budget",
    "approval_rules",
)
"""Skips first (so the budget never counts unchanged work), partitions, priorities, then the budget (which
drops lowest-priority work), approvals last (they read the final actions and costs)."""

_REGISTRY: dict[str, Policy] = {}


def register_policy(policy: Policy, *, replace: bool = False) -> Policy:
    """Make ``policy`` available by id (for ``PlanningSettings.policy_order``). Registering another policy
    under a taken id is an error unless ``replace``."""
    existing = _REGISTRY.get(policy.id)
    if existing is not None and existing is not policy and not replace:
        raise PlanningError(f"a policy with id {policy.id!r} is already registered")
    _REGISTRY[policy.id] = policy
    return policy


def unregister_policy(policy_id: str) -> None:
    _REGISTRY.pop(policy_id, None)


def get_policy(policy_id: str) -> Policy:
    try:
        return _REGISTRY[policy_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise PlanningError(f"unknown policy {policy_id!r} (registered: {known})") from None


def registered_policies() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def resolve_policies(order: Sequence[str]) -> tuple[Policy, ...]:
    """The policies named by ``order`` (empty: ``DEFAULT_POLICY_ORDER``), in that order; duplicates refused."""
    ids = tuple(order) or DEFAULT_POLICY_ORDER
    if len(set(ids)) != len(ids):
        raise PlanningError(f"policy order names a policy twice: {ids}")
    return tuple(get_policy(pid) for pid in ids)
