"""``limit_cost_budget``: keep a plan within the environment's budget.

The plan's estimate is the sum over the items that would run (RUN or PARTIAL after the earlier policies) of
their cost (``budget_cost``, in the environment's currency; unpriced items count 0) and seconds
(``budget_seconds``). Within both budgets: no decision. Over one of them:

- ``budget_action = "approve"``: one plan-level REQUIRE_APPROVAL (rule ``budget_exceeded``).
- ``budget_action = "drop"``: SKIP (reason ``budget_exceeded``, not a failure) the lowest-priority work
  until the plan fits: items exposures do not need first, then the most expensive (cost, then seconds), ties by
  unique_id. An item is dropped only when none of its descendants in the plan still runs, so every item that
  runs still gets its upstream rebuilt (leaves go first; a parent becomes droppable once its running
  descendants are dropped).
"""

from __future__ import annotations

import heapq

from contracts.plan import Decision, Evidence, PlanningSettings
from services.planning.policies._base import reason
from services.planning.policies._context import PolicyContext


class LimitCostBudget:
    id = "limit_cost_budget"
    version = 1

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        settings = context.settings
        if settings.budget_cost is None and settings.budget_seconds is None:
            return []
        running = context.running()
        estimates = context.estimates
        cost = {uid: (estimates[uid].cost or 0.0) if uid in estimates else 0.0 for uid in running}
        seconds = {uid: estimates[uid].seconds if uid in estimates else 0.0 for uid in running}
        total_cost, total_seconds = sum(cost[u] for u in running), sum(seconds[u] for u in running)
        if not _over(settings, total_cost, total_seconds):
            return []
        budget = {
            "budget_cost": settings.budget_cost,
            "budget_seconds": settings.budget_seconds,
            "currency": settings.currency,
            "estimated_cost": round(total_cost, 6),
            "estimated_seconds": round(total_seconds, 3),
        }
        if settings.budget_action == "approve":
            message = "the plan's estimate exceeds the environment's budget"
            why = reason(self, "budget_exceeded", message, budget)
            return [Decision(unique_id=None, action="REQUIRE_APPROVAL", reason=why, role=settings.approval_role)]
        return self._drop(
            context, running, cost=cost, seconds=seconds, totals=(total_cost, total_seconds), budget=budget
        )

    def _drop(
        self,
        context: PolicyContext,
        running: tuple[str, ...],
        *,
        cost: dict[str, float],
        seconds: dict[str, float],
        totals: tuple[float, float],
        budget: Evidence,
    ) -> list[Decision]:
        total_cost, total_seconds = totals
        index, priority = context.index, context.index.exposure_priority
        running_set = set(running)
        waiting: dict[str, int] = dict.fromkeys(running, 0)  # running descendants per running item
        for uid in running:
            for ancestor in index.plan_ancestors[uid]:
                if ancestor in running_set:
                    waiting[ancestor] += 1

        def key(uid: str) -> tuple[bool, float, float, str]:
            return (uid in priority, -cost[uid], -seconds[uid], uid)

        heap = [key(uid) for uid in running if waiting[uid] == 0]
        heapq.heapify(heap)
        decisions: list[Decision] = []
        while heap and _over(context.settings, total_cost, total_seconds):
            *_, uid = heapq.heappop(heap)
            total_cost -= cost[uid]
            total_seconds -= seconds[uid]
            evidence = {
                **budget,
                "dropped_rank": len(decisions) + 1,
                "item_cost": cost[uid],
                "item_seconds": seconds[uid],
                "exposure_priority": uid in priority,
            }
            message = "dropped to keep the plan within the budget (lowest priority first)"
            why = reason(self, "budget_exceeded", message, evidence)
            decisions.append(Decision(unique_id=uid, action="SKIP", reason=why))
            for ancestor in index.plan_ancestors[uid]:
                if ancestor in running_set:
                    waiting[ancestor] -= 1
                    if waiting[ancestor] == 0:
                        heapq.heappush(heap, key(ancestor))
        return decisions


def _over(settings: PlanningSettings, cost: float, seconds: float) -> bool:
    return (settings.budget_cost is not None and cost > settings.budget_cost) or (
        settings.budget_seconds is not None and seconds > settings.budget_seconds
    )
