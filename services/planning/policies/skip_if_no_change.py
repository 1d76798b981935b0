"""``skip_if_no_change``: do not rebuild what nothing changed since it last succeeded.

With a reference graph (and no full refresh), every item gets a decision: SKIP, or RUN with the reason it
cannot be skipped (``new``, ``modified``, ``upstream_modified``, ``never_ran``, ``last_run_unsuccessful``,
``last_run_undated``, ``upstream_runs``, ``upstream_newer``), so the explainer can say why each node runs.

An item is SKIPped (reason ``unchanged``, not a failure) when all of these hold:

- there is a reference graph, the node is in it, and the plan is not a full refresh;
- neither the node nor any ancestor is ``state:modified`` against the reference (``modified_nodes``);
- its last execution succeeded (``success``/``pass``) and has a ``completed_at``;
- every item upstream of it in this plan is skipped by this rule too (an upstream item that runs brings new
  data);
- nothing upstream is fresher: no parent source's ``max_loaded_at`` (source freshness) and no parent's last
  ``completed_at`` is later than the node's last run. Views and ephemerals hold no data, so the walk goes
  through them to their own parents. Unknown times (no freshness, no history) are no evidence of newer data.
"""

from __future__ import annotations

from datetime import datetime

from contracts.plan import Decision, Evidence
from services.planning.costs import SUCCESS_STATUSES, parse_timestamp
from services.planning.policies._base import reason
from services.planning.policies._context import PASS_THROUGH_MATERIALIZATIONS, PolicyContext, materialization


class SkipIfNoChange:
    id = "skip_if_no_change"
    version = 1

    def evaluate(self, context: PolicyContext) -> list[Decision]:
        if context.reference is None or context.settings.full_refresh:
            return []
        index = context.index
        skipped: set[str] = set()
        decisions: list[Decision] = []
        for uid in index.topological:
            why = self._why_run(context, uid, skipped)
            if why is not None:
                code, message, evidence = why
                decisions.append(Decision(unique_id=uid, action="RUN", reason=reason(self, code, message, evidence)))
                continue
            last = context.last_status[uid]
            skipped.add(uid)
            evidence = {
                "compared_with": "reference graph",
                "last_status": last.status,
                "last_completed_at": last.completed_at,
            }
            message = (
                f"unchanged since the reference graph, upstream too; last run {last.status} at "
                f"{last.completed_at}, nothing upstream newer"
            )
            decisions.append(
                Decision(unique_id=uid, action="SKIP", reason=reason(self, "unchanged", message, evidence))
            )
        return decisions

    def _why_run(  # noqa: PLR0911 (one return per rule, in the docstring's order)
        self, context: PolicyContext, uid: str, skipped: set[str]
    ) -> tuple[str, str, Evidence] | None:
        """Why ``uid`` must run (code, message, evidence), or None when it may be skipped."""
        index = context.index
        if context.reference is None or uid not in context.reference.nodes:
            return "new", "not in the reference graph", {}
        modified = index.upstream_modified(uid)
        if modified == uid:
            return "modified", "modified since the reference graph (state:modified)", {}
        if modified is not None:
            return "upstream_modified", f"upstream {modified} is modified", {"modified": modified}
        last = context.last_status.get(uid)
        if last is None:
            return "never_ran", "no execution on record", {}
        if last.status not in SUCCESS_STATUSES:
            return "last_run_unsuccessful", f"last run {last.status}", {"last_status": last.status}
        done = parse_timestamp(last.completed_at)
        if done is None:
            return "last_run_undated", "last run has no completion time", {"last_status": last.status}
        running = [p for p in index.plan_parents(uid) if p not in skipped]
        if running:
            return "upstream_runs", f"upstream {running[0]} runs in this plan", {"upstream": running}
        newer = self._newer_upstream(context, uid, done)
        if newer is not None:
            what = "loaded" if "max_loaded_at" in newer else "ran"
            message = f"upstream {newer['unique_id']} {what} after the last run ({last.completed_at})"
            return "upstream_newer", message, {**newer, "last_completed_at": last.completed_at}
        return None

    @staticmethod
    def _newer_upstream(context: PolicyContext, unique_id: str, done: datetime) -> Evidence | None:
        """The first upstream fact later than ``done`` (walking parents in sorted order), or None."""
        nodes = context.graph.nodes
        index = context.index
        seen: set[str] = set()
        stack = list(reversed(index.parents(unique_id)))
        while stack:
            uid = stack.pop()
            if uid in seen:
                continue
            seen.add(uid)
            node = nodes[uid]
            if node.resource_type == "source":
                fresh = context.freshness.get(uid)
                loaded = parse_timestamp(fresh.max_loaded_at) if fresh is not None else None
                if loaded is not None and loaded > done:
                    return {"unique_id": uid, "max_loaded_at": fresh.max_loaded_at if fresh else None}
                continue
            last = context.last_status.get(uid)
            ran = parse_timestamp(last.completed_at) if last is not None else None
            if ran is not None and ran > done:
                return {"unique_id": uid, "completed_at": last.completed_at if last else None}
            if materialization(node) in PASS_THROUGH_MATERIALIZATIONS:
                stack.extend(reversed(index.parents(uid)))
        return None
