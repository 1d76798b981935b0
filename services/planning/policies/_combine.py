"""How the decisions of several policies about one item become its action: the precedence rules.

1. ``REQUIRE_APPROVAL`` is about the plan: it becomes an ``ApprovalRequirement`` and never changes an item.
2. Strength, strongest first: **SKIP for a failure reason** (``Reason.failure``) > **SKIP** > **PARTIAL** >
   **RUN**. An item without decisions RUNs (it was selected). So a failure SKIP beats everything, any SKIP beats
   RUN and PARTIAL (an unchanged or over-budget node is not built, even partially), and PARTIAL beats RUN
   (a partial build is a restricted run).
3. PARTIAL only comes from a policy that attaches a ``PartitionWindow`` (``partial_by_partition`` does so only
   for models with an explicit partition contract); the planner rejects a PARTIAL without a window.
4. The item's reasons are those of the decisions with the winning action: failure reasons first, then in
   policy order (position in the environment's order), ties by policy id, then code. The window of a PARTIAL
   item is the first such decision's. The wave hint is the lowest any decision gave (default 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from contracts.plan import Action, Decision, ItemAction, PartitionWindow, Reason

_FAILURE_SKIP, _SKIP, _PARTIAL, _RUN = 0, 1, 2, 3


def strength(decision: Decision) -> int:
    """Lower is stronger (see the module docstring). ``REQUIRE_APPROVAL`` has no strength on items."""
    action: Action = decision.action
    match action:
        case "SKIP":
            return _FAILURE_SKIP if decision.reason.failure else _SKIP
        case "PARTIAL":
            return _PARTIAL
        case "RUN" | "REQUIRE_APPROVAL":
            return _RUN
        case _:
            assert_never(action)


def _item_action(rank: int) -> ItemAction:
    if rank <= _SKIP:
        return "SKIP"
    return "PARTIAL" if rank == _PARTIAL else "RUN"


def combined_action(decisions: Sequence[Decision]) -> ItemAction:
    item = [d for d in decisions if d.action != "REQUIRE_APPROVAL"]
    return _item_action(min((strength(d) for d in item), default=_RUN))


def combine(
    decisions: Sequence[tuple[int, Decision]],
) -> tuple[ItemAction, tuple[Reason, ...], PartitionWindow | None, int | None]:
    """``decisions``: (position of the policy in the order, decision) for one item, in any order.

    Returns the action, its reasons (ordered), the window (PARTIAL only) and the wave hint.
    """
    item = [(pos, d) for pos, d in decisions if d.action != "REQUIRE_APPROVAL"]
    if not item:
        return "RUN", (), None, None
    action = _item_action(min(strength(d) for _, d in item))
    winners = sorted(
        ((pos, d) for pos, d in item if _item_action(strength(d)) == action),
        key=lambda pair: (not pair[1].reason.failure, pair[0], pair[1].reason.policy_id, pair[1].reason.code),
    )
    window = next((d.window for _, d in winners if d.window is not None), None) if action == "PARTIAL" else None
    waves = [d.wave for _, d in item if d.wave is not None]
    return action, tuple(d.reason for _, d in winners), window, (min(waves) if waves else None)
