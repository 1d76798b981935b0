"""``approval_rules``: when a plan needs a human's approval before it runs (role ``settings.approval_role``).

Rules (``rule_id``), each a REQUIRE_APPROVAL decision (never a change to an item's action):

- ``production``: the environment is a production environment (whenever the plan runs anything).
- ``cost_threshold``: the estimated cost of what runs exceeds ``settings.approval_cost_threshold`` (priced
  items only; when nothing is priced the rule cannot fire, and its absence is not a guarantee).
- ``full_refresh``: the plan is a full refresh and rebuilds an incremental model or a seed from scratch.
- ``breaking_contract``: a model that runs had an enforced contract in the reference graph and now breaks it:
  enforcement removed, a column removed, or a column's declared ``data_type`` changed (dbt's breaking changes,
  DBT-NOTES (b)(iii); removed constraints are not checked yet). One decision per model.
"""

from __future__ import annotations

from contracts.graph import GraphNode
from contracts.plan import Decision, Evidence
from services.planning.policies._base import reason
from services.planning.policies._context import PolicyContext, materialization

_LISTED = 20


def breaking_contract_change(old: GraphNode, new: GraphNode) -> Evidence | None:
    """What breaks ``old``'s enforced contract in ``new``, or None (also when ``old`` enforced nothing)."""
    if old.contract is None or not old.contract.enforced:
        return None
    if new.contract is None or not new.contract.enforced:
        return {"enforcement_removed": True}
    now = {c.name.lower(): c for c in new.columns}
    removed = sorted(c.name for c in old.columns if c.name.lower() not in now)
    changed = {
        c.name: [c.data_type, now[c.name.lower()].data_type]
        for c in sorted(old.columns, key=lambda c: c.name)
        if c.name.lower() in now
        and (c.data_type or "").strip().lower() != (now[c.name.lower()].data_type or "").strip().lower()
    }
    if not removed and not changed:
        return None
    evidence: Evidence = {}
    if removed:
        evidence["removed_columns"] = removed
    if changed:
        evidence["type_changes"] = changed
    return evidence


class ApprovalRules:
    id = "approval_rules"
    version = 1

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        settings = context.settings
        role = settings.approval_role
        running = context.running()
        decisions: list[Decision] = []

        def require(code: str, message: str, evidence: Evidence, unique_id: str | None = None) -> None:
            why = reason(self, code, message, evidence)
            decisions.append(Decision(unique_id=unique_id, action="REQUIRE_APPROVAL", reason=why, role=role))

        if settings.production and running:
            require("production", "the environment is a production environment", {"running_items": len(running)})
        threshold = settings.approval_cost_threshold
        if threshold is not None:
            priced = [context.estimates[u].cost for u in running if u in context.estimates]
            total = round(sum(c for c in priced if c is not None), 6)
            if total > threshold:
                evidence: Evidence = {"estimated_cost": total, "threshold": threshold, "currency": settings.currency}
                require(
                    "cost_threshold", f"estimated cost {total} exceeds the approval threshold {threshold}", evidence
                )
        nodes = context.graph.nodes
        if settings.full_refresh:
            rebuilt = [
                u for u in running if materialization(nodes[u]) == "incremental" or nodes[u].resource_type == "seed"
            ]
            if rebuilt:
                rebuilt_evidence: Evidence = {"rebuilt": rebuilt[:_LISTED], "rebuilt_count": len(rebuilt)}
                message = f"full refresh rebuilds {len(rebuilt)} incremental model(s) or seed(s) from scratch"
                require("full_refresh", message, rebuilt_evidence)
        if context.reference is not None:
            old_nodes = context.reference.nodes
            for uid in running:
                node, old = nodes[uid], old_nodes.get(uid)
                if node.resource_type != "model" or old is None:
                    continue
                broken = breaking_contract_change(old, node)
                if broken is not None:
                    require("breaking_contract", "a breaking change to an enforced model contract", broken, uid)
        return decisions
