"""The one explainer of ExecutionPlans: ``explain(plan)`` builds a ``PlanExplanation`` (JSON-able with
``explanation_json``, for the API), and ``render_tree`` prints that same structure as a terminal tree, so the CLI
and the API always say the same thing.

Grouped by action (RUN, PARTIAL, SKIP), then wave; each node with its position, estimate, partition window and
reasons (policy, version, code, sentence, evidence). Pure: no I/O, deterministic.
"""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from contracts.explain import (
    ExplainedApproval,
    ExplainedGroup,
    ExplainedNode,
    ExplainedReason,
    PlanExplanation,
    PlanSummary,
)
from contracts.plan import CostEstimate, ExecutionPlan, ItemAction, PartitionWindow, Reason

__all__ = ["PlanExplanation", "explain", "explanation_json", "render_tree"]

ACTION_ORDER: tuple[ItemAction, ...] = ("RUN", "PARTIAL", "SKIP")


def _action_title(action: ItemAction) -> str:
    match action:
        case "RUN":
            return "runs"
        case "PARTIAL":
            return "runs a partition window"
        case "SKIP":
            return "skipped"
        case _:
            assert_never(action)


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.1f} s"


def _estimate(estimate: CostEstimate | None) -> str | None:
    if estimate is None:
        return None
    text = f"~{_seconds(estimate.seconds)}"
    if estimate.seconds_spread:
        text += f" ±{_seconds(estimate.seconds_spread)}"
    if estimate.cost is not None:
        text += f", {estimate.cost:.4g} {estimate.currency}"
    source = estimate.evidence.get("source", "?")
    samples = estimate.evidence.get("samples")
    origin = f"{source}, n={samples}" if samples is not None else str(source)
    return f"{text} ({estimate.confidence} confidence: {origin})"


def _window(window: PartitionWindow | None) -> str | None:
    if window is None:
        return None
    return (
        f"{window.start.isoformat()} -> {window.end.isoformat()}: {window.batches} {window.batch_size} batch(es)"
        f" of {window.event_time}" + (f", lookback {window.lookback}" if window.lookback else "")
    )


def _reason(reason: Reason) -> ExplainedReason:
    return ExplainedReason(
        policy=f"{reason.policy_id} v{reason.policy_version}",
        code=reason.code,
        message=reason.message,
        failure=reason.failure,
        evidence=reason.evidence,
    )


def explain(plan: ExecutionPlan) -> PlanExplanation:
    totals, inputs = plan.totals, plan.inputs
    summary = PlanSummary(
        project_id=inputs.project_id,
        environment_id=inputs.environment_id,
        graph_version=inputs.graph_version,
        state_reference=inputs.state_reference,
        as_of=inputs.as_of.isoformat(),
        run=totals.run,
        partial=totals.partial,
        skip=totals.skip,
        not_executable=totals.not_executable,
        estimated_seconds=totals.estimated_seconds,
        estimated_duration_seconds=totals.estimated_duration_seconds,
        estimated_cost=totals.estimated_cost,
        currency=totals.currency,
        unpriced=totals.unpriced,
        policies=[f"{p.policy_id} v{p.version}" for p in inputs.policy_set],
        requires_approval=plan.requires_approval,
    )
    cost = f", {totals.estimated_cost:.4g} {totals.currency}" if totals.estimated_cost is not None else ""
    headline = (
        f"{len(plan.items)} node(s): {totals.run} run, {totals.partial} partial, {totals.skip} skipped; "
        f"~{_seconds(totals.estimated_seconds)} of work, ~{_seconds(totals.estimated_duration_seconds)} wall{cost}"
    )
    grouped: dict[tuple[int, int], list[ExplainedNode]] = {}
    for item in plan.items:
        node = ExplainedNode(
            order=item.order,
            unique_id=item.unique_id,
            resource_type=item.resource_type,
            node_uuid=str(item.node_uuid),
            estimate=_estimate(item.estimate),
            window=_window(item.window),
            reasons=tuple(_reason(r) for r in item.reasons),
        )
        grouped.setdefault((ACTION_ORDER.index(item.action), item.wave), []).append(node)
    groups = tuple(
        ExplainedGroup(
            action=ACTION_ORDER[a],
            wave=wave,
            title=f"{ACTION_ORDER[a]} ({_action_title(ACTION_ORDER[a])}), wave {wave}: {len(nodes)} node(s)",
            nodes=tuple(sorted(nodes, key=lambda n: n.order)),
        )
        for (a, wave), nodes in sorted(grouped.items())
    )
    approvals = tuple(
        ExplainedApproval(
            role=a.role,
            rule_id=a.rule_id,
            message=a.reason.message,
            policy=f"{a.reason.policy_id} v{a.reason.policy_version}",
            unique_id=a.unique_id,
        )
        for a in plan.approvals
    )
    return PlanExplanation(
        plan_hash=plan.plan_hash, headline=headline, summary=summary, approvals=approvals, groups=groups
    )


def explanation_json(explanation: PlanExplanation) -> dict[str, Any]:
    """The explanation as plain JSON-able builtins (dict keys sorted), for the API."""
    result: dict[str, Any] = msgspec.json.decode(msgspec.json.Encoder(order="sorted").encode(explanation))
    return result


def _evidence(evidence: dict[str, Any]) -> str:
    return ", ".join(f"{k}={msgspec.json.encode(evidence[k]).decode()}" for k in sorted(evidence))


def render_tree(explanation: PlanExplanation, *, evidence: bool = False) -> str:
    """A terminal tree of ``explanation``; ``evidence`` adds each reason's evidence."""
    lines = [f"Plan {explanation.plan_hash[:12]}  {explanation.headline}"]
    summary = explanation.summary
    state = f", against graph v{summary.state_reference}" if summary.state_reference is not None else ""
    lines.append(
        f"  {summary.project_id}/{summary.environment_id} graph v{summary.graph_version}{state}"
        f", as of {summary.as_of}; policies: {', '.join(summary.policies) or 'none'}"
    )
    if explanation.approvals:
        lines.append("Approval required:")
        for approval in explanation.approvals:
            about = f" [{approval.unique_id}]" if approval.unique_id else ""
            lines.append(f"  - {approval.role}: {approval.rule_id}{about} ({approval.policy}): {approval.message}")
    else:
        lines.append("No approval required.")
    for g, group in enumerate(explanation.groups):
        last_group = g == len(explanation.groups) - 1
        lines.append(f"{'└── ' if last_group else '├── '}{group.title}")
        indent = "    " if last_group else "│   "
        for n, node in enumerate(group.nodes):
            last_node = n == len(group.nodes) - 1
            lines.append(f"{indent}{'└── ' if last_node else '├── '}{node.order}. {node.unique_id}")
            inner = indent + ("    " if last_node else "│   ")
            details = [d for d in (node.estimate, node.window and f"window {node.window}") if d]
            details += [
                f"{r.policy} {r.code}{' (failure)' if r.failure else ''}: {r.message}"
                + (f" [{_evidence(r.evidence)}]" if evidence and r.evidence else "")
                for r in node.reasons
            ]
            for d, detail in enumerate(details):
                lines.append(f"{inner}{'└── ' if d == len(details) - 1 else '├── '}{detail}")
    return "\n".join(lines) + "\n"
