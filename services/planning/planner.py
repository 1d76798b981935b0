"""``build_plan``: the selection, the graph, history and policies in; an ``ExecutionPlan`` out. Pure.

No I/O, no clock (the caller's ``inputs.as_of`` is "now"), no randomness, no set iteration order in the output:
the same arguments give a byte-identical plan and ``plan_hash`` in any process, whatever ``PYTHONHASHSEED``.

Steps:

1. Items: the selected nodes dbt executes (models except ephemerals, seeds, snapshots, tests, unit tests,
   functions); other selected nodes (sources, exposures...) are only counted (``totals.not_executable``).
2. A ``CostEstimate`` per item (``services.planning.costs``).
3. The policies, in the environment's order, each seeing the decisions before it; every decision is checked
   (its reason names the policy, it is about an item, PARTIAL carries a window).
4. Per item, the decisions combine by precedence (``services.planning.policies._combine``): failure SKIP >
   SKIP > PARTIAL > RUN; REQUIRE_APPROVAL becomes an ``ApprovalRequirement``. An item nothing decided about
   RUNs with reason ``selected``.
5. Consistency pass: an item whose upstream in the plan (nearest items up the graph, through nodes outside the
   plan) is SKIPped for a failure reason is SKIPped for a failure reason too (``upstream_skipped``), in
   topological order, so a plan never RUNs a node whose required upstream will not run for a failure. A unit
   test whose model is not built (SKIP, or not selected) is SKIPped (``tested_model_not_built``): ``dbt build``
   runs unit tests only together with their model, so the plan says what dbt will really do.
6. Waves: the lowest hint any decision gave (default 0), raised to the highest wave of the item's plan parents.
   Items sorted by (wave, topological position, ties by unique_id); ``order`` is the position.
7. Totals (counts, summed seconds and cost, a wall-clock estimate with the env's threads), approvals sorted,
   ``inputs`` completed with the policies applied and the settings digest, and the hash.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Literal, assert_never

import msgspec

from contracts.graph import LogicalGraph, SourceFreshness
from contracts.plan import (
    ApprovalRequirement,
    CostEstimate,
    Decision,
    ExecutionPlan,
    ItemAction,
    PartitionWindow,
    PlanInputs,
    PlanItem,
    PlanningSettings,
    PlanTotals,
    PolicyRef,
    Reason,
    compute_plan_hash,
    digest_settings,
)
from services.planning.costs import ExecutionRecord, estimate_costs, plan_duration
from services.planning.policies import (
    PlanIndex,
    PlanningError,
    Policy,
    PolicyContext,
    combine,
    latest_record,
    resolve_policies,
)
from services.planning.policies._context import materialization

__all__ = ["CONSISTENCY_POLICY_ID", "EXECUTABLE_TYPES", "SELECTION_POLICY_ID", "build_plan", "executable"]

EXECUTABLE_TYPES: frozenset[str] = frozenset({"model", "seed", "snapshot", "test", "unit_test", "function"})
"""What ``dbt build`` executes (ephemeral models excepted: they are inlined into their readers)."""

SELECTION_POLICY_ID = "lockgate.selection"
CONSISTENCY_POLICY_ID = "lockgate.consistency"
_SELECTED = Reason(
    policy_id=SELECTION_POLICY_ID, policy_version=1, code="selected", message="selected; no policy objected"
)


def executable(graph: LogicalGraph, unique_id: str) -> bool:
    node = graph.nodes[unique_id]
    return node.resource_type in EXECUTABLE_TYPES and materialization(node) != "ephemeral"


class _LatestRecords(Mapping[str, ExecutionRecord]):
    """``unique_id -> latest execution``, computed on first access (history can cover the whole project)."""

    def __init__(self, history: Mapping[str, Sequence[ExecutionRecord]]) -> None:
        self._history = history
        self._cache: dict[str, ExecutionRecord | None] = {}

    def __getitem__(self, key: str) -> ExecutionRecord:
        if key not in self._cache:
            self._cache[key] = latest_record(self._history.get(key, ()))
        found = self._cache[key]
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        return (k for k in sorted(self._history) if self.get(k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _check(policy: Policy, decision: Decision, items: frozenset[str], graph: LogicalGraph) -> None:
    why = decision.reason
    if (why.policy_id, why.policy_version) != (policy.id, policy.version):
        raise PlanningError(
            f"policy {policy.id!r} v{policy.version} returned a reason of {why.policy_id!r} v{why.policy_version}"
        )
    action = decision.action
    match action:
        case "REQUIRE_APPROVAL":
            if decision.unique_id is not None and decision.unique_id not in graph.nodes:
                raise PlanningError(f"policy {policy.id!r} asked approval for unknown node {decision.unique_id!r}")
            if decision.window is not None:
                raise PlanningError(f"policy {policy.id!r} put a partition window on REQUIRE_APPROVAL")
        case "RUN" | "SKIP" | "PARTIAL":
            if decision.unique_id is None or decision.unique_id not in items:
                raise PlanningError(
                    f"policy {policy.id!r} decided {action} about {decision.unique_id!r}, which is not in the plan"
                )
            if (action == "PARTIAL") != (decision.window is not None):
                raise PlanningError(
                    f"policy {policy.id!r}: {action} for {decision.unique_id!r} "
                    + ("needs a partition window" if action == "PARTIAL" else "cannot carry a partition window")
                )
        case _:
            assert_never(action)


def _evaluate(
    policies: Sequence[Policy], base: PolicyContext, items: frozenset[str], graph: LogicalGraph
) -> tuple[dict[str, list[tuple[int, Decision]]], list[tuple[int, Decision]]]:
    per_item: dict[str, list[tuple[int, Decision]]] = {}
    approvals: list[tuple[int, Decision]] = []
    prior: dict[str, tuple[Decision, ...]] = {}
    for position, policy in enumerate(policies):
        context = dataclasses.replace(base, prior=dict(prior))
        for decision in policy.evaluate(context):
            _check(policy, decision, items, graph)
            if decision.action == "REQUIRE_APPROVAL":
                approvals.append((position, decision))
                continue
            assert decision.unique_id is not None  # noqa: S101 (checked above)
            per_item.setdefault(decision.unique_id, []).append((position, decision))
            prior[decision.unique_id] = (*prior.get(decision.unique_id, ()), decision)
    return per_item, approvals


def build_plan(
    *,
    graph: LogicalGraph,
    node_uuids: Mapping[str, uuid.UUID],
    selected: Collection[str],
    reference: LogicalGraph | None,
    history: Mapping[str, Sequence[ExecutionRecord]],
    freshness: Mapping[str, SourceFreshness],
    settings: PlanningSettings,
    policies: Sequence[Policy] | None = None,
    inputs: PlanInputs,
) -> ExecutionPlan:
    """The plan for running ``selected`` (unique_ids of ``graph``) in the environment ``settings`` describe.

    ``node_uuids``: Lockgate's identity of every item; ``reference``: the state graph (dbt's ``--state``);
    ``history``: past executions per unique_id (any order); ``freshness``: the latest source freshness per
    source; ``policies``: overrides ``settings.policy_order``. Raises ``PlanningError`` for ids missing from the
    graph or ``node_uuids``, an unknown policy, or a policy's malformed decision.
    """
    unknown = sorted(uid for uid in selected if uid not in graph.nodes)
    if unknown:
        raise PlanningError(f"{len(unknown)} selected node(s) are not in the graph, first {unknown[0]!r}")
    if inputs.as_of.tzinfo is None:
        raise PlanningError("inputs.as_of must be timezone-aware")
    chosen = sorted(set(selected))
    item_ids = [uid for uid in chosen if executable(graph, uid)]
    missing = [uid for uid in item_ids if uid not in node_uuids]
    if missing:
        raise PlanningError(f"{len(missing)} item(s) have no node_uuid, first {missing[0]!r}")
    applied = tuple(policies) if policies is not None else resolve_policies(settings.policy_order)

    index = PlanIndex(graph, item_ids, reference)
    estimates = estimate_costs(graph, item_ids, history, settings)
    base = PolicyContext(
        graph=graph,
        index=index,
        reference=reference,
        history=history,
        last_status=_LatestRecords(history),
        freshness=freshness,
        settings=settings,
        estimates=estimates,
        now=inputs.as_of,
    )
    per_item, approval_decisions = _evaluate(applied, base, index.item_set, graph)

    items = _items(index, per_item, estimates, node_uuids)
    totals = _totals(index, items, settings, not_executable=len(chosen) - len(item_ids))
    approvals = _approvals(approval_decisions, settings)
    completed = msgspec.structs.replace(
        inputs,
        policy_set=tuple(PolicyRef(policy_id=p.id, version=p.version) for p in applied),
        settings_digest=digest_settings(settings),
    )
    plan = ExecutionPlan(inputs=completed, items=items, totals=totals, approvals=approvals)
    return msgspec.structs.replace(plan, plan_hash=compute_plan_hash(plan))


def _items(
    index: PlanIndex,
    per_item: Mapping[str, list[tuple[int, Decision]]],
    estimates: Mapping[str, CostEstimate],
    node_uuids: Mapping[str, uuid.UUID],
) -> tuple[PlanItem, ...]:
    nodes = index.graph.nodes
    decided: dict[str, tuple[ItemAction, tuple[Reason, ...], int]] = {}
    windows: dict[str, PartitionWindow | None] = {}
    failed: dict[str, str] = {}  # item -> the failure-skipped item it traces back to
    for uid in index.topological:
        action, reasons, window, hint = combine(per_item.get(uid, ()))
        parents = index.plan_parents(uid)
        blocked = sorted(p for p in parents if p in failed)
        if blocked and not (action == "SKIP" and any(r.failure for r in reasons)):
            roots = sorted({failed[p] for p in blocked})
            why = Reason(
                policy_id=CONSISTENCY_POLICY_ID,
                policy_version=1,
                code="upstream_skipped",
                message=f"upstream {blocked[0]} is skipped for a failure reason",
                evidence={"upstream": blocked, "failed": roots},
                failure=True,
            )
            action, reasons, window = "SKIP", (why,), None
        if action == "SKIP" and any(r.failure for r in reasons):
            failed[uid] = min((failed[p] for p in blocked), default=uid)
        tested = _tested_model(index.graph, uid)
        if action != "SKIP" and tested is not None and decided.get(tested, ("SKIP",))[0] == "SKIP":
            why = Reason(
                policy_id=CONSISTENCY_POLICY_ID,
                policy_version=1,
                code="tested_model_not_built",
                message=f"dbt build runs a unit test only with the model it tests, and {tested} is not built",
                evidence={"model": tested},
            )
            action, reasons, window = "SKIP", (why,), None
        wave = max([hint or 0, *(decided[p][2] for p in parents)])
        decided[uid] = (action, reasons or (_SELECTED,), wave)
        windows[uid] = window
    position = {uid: i for i, uid in enumerate(index.topological)}
    ordered = sorted(index.items, key=lambda uid: (decided[uid][2], position[uid]))
    return tuple(
        PlanItem(
            node_uuid=node_uuids[uid],
            unique_id=uid,
            resource_type=nodes[uid].resource_type,
            action=decided[uid][0],
            reasons=decided[uid][1],
            estimate=estimates.get(uid),
            wave=decided[uid][2],
            order=order,
            window=windows[uid],
        )
        for order, uid in enumerate(ordered)
    )


def _tested_model(graph: LogicalGraph, unique_id: str) -> str | None:
    """The model a unit test tests (None for any other node)."""
    node = graph.nodes[unique_id]
    if node.resource_type != "unit_test":
        return None
    if node.attached_node:
        return node.attached_node
    return next((p for p in node.depends_on_nodes if p.startswith("model.")), None)


def _totals(
    index: PlanIndex, items: Sequence[PlanItem], settings: PlanningSettings, *, not_executable: int
) -> PlanTotals:
    counts: dict[Literal["RUN", "SKIP", "PARTIAL"], int] = {"RUN": 0, "SKIP": 0, "PARTIAL": 0}
    seconds: dict[str, float] = {}
    cost, priced, currency = 0.0, 0, None
    for item in items:
        counts[item.action] += 1
        if item.action == "SKIP" or item.estimate is None:
            continue
        seconds[item.unique_id] = item.estimate.seconds
        if item.estimate.cost is not None:
            cost += item.estimate.cost
            priced += 1
            currency = item.estimate.currency
    running = counts["RUN"] + counts["PARTIAL"]
    layer_of = {uid: n for n, layer in enumerate(index.plan_dag.layers()) for uid in layer}
    levels: dict[tuple[int, int], list[str]] = {}
    for item in items:
        if item.unique_id in seconds:
            levels.setdefault((item.wave, layer_of[item.unique_id]), []).append(item.unique_id)
    return PlanTotals(
        run=counts["RUN"],
        skip=counts["SKIP"],
        partial=counts["PARTIAL"],
        estimated_seconds=round(sum(seconds[uid] for uid in sorted(seconds)), 3),
        estimated_duration_seconds=plan_duration([levels[k] for k in sorted(levels)], seconds, settings.threads),
        estimated_cost=round(cost, 6) if priced else None,
        currency=currency if priced else None,
        unpriced=running - priced,
        not_executable=not_executable,
    )


def _approvals(
    decisions: Sequence[tuple[int, Decision]], settings: PlanningSettings
) -> tuple[ApprovalRequirement, ...]:
    ranked = sorted(
        decisions, key=lambda pair: (pair[1].reason.code, pair[1].unique_id or "", pair[1].role or "", pair[0])
    )
    result: list[ApprovalRequirement] = []
    for _, decision in ranked:
        requirement = ApprovalRequirement(
            role=decision.role or settings.approval_role,
            rule_id=decision.reason.code,
            reason=decision.reason,
            unique_id=decision.unique_id,
        )
        if requirement not in result:
            result.append(requirement)
    return tuple(result)
