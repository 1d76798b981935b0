"""What a policy sees: ``PolicyContext`` (immutable inputs and the decisions of earlier policies) over a
``PlanIndex`` (graph walks computed once per plan and shared by every policy)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from contracts.graph import GraphNode, LogicalGraph, SourceFreshness
from contracts.plan import CostEstimate, Decision, ItemAction, PlanningSettings
from services.ingestion.diff import modified_nodes
from services.planning.costs import ExecutionRecord, parse_timestamp
from services.planning.policies._combine import combined_action
from services.shared.dag import Dag

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PASS_THROUGH_MATERIALIZATIONS = frozenset({"view", "ephemeral"})
"""Relations that hold no data of their own: what is upstream of them is upstream of their readers."""
TEST_TYPES = frozenset({"test", "unit_test"})


def latest_record(records: Sequence[ExecutionRecord]) -> ExecutionRecord | None:
    """The most recent execution by ``completed_at`` (undated records count as oldest; ties: the later one)."""
    best: ExecutionRecord | None = None
    best_key: tuple[bool, datetime] | None = None
    for record in records:
        at = parse_timestamp(record.completed_at)
        key = (at is not None, at or _EPOCH)
        if best_key is None or key >= best_key:
            best, best_key = record, key
    return best


def materialization(node: GraphNode) -> str | None:
    value = node.materialized or node.config.get("materialized")
    return value if isinstance(value, str) else None


class PlanIndex:
    """Graph walks for one plan, computed on first use and cached (the plan's inputs are immutable).

    "Plan parents" of an item are its nearest ancestors that are items too, looking through nodes that are not
    in the plan: the dependencies that matter for ordering, waves and consistency inside the plan.
    """

    def __init__(self, graph: LogicalGraph, items: Sequence[str], reference: LogicalGraph | None) -> None:
        self.graph = graph
        self.items: tuple[str, ...] = tuple(sorted(items))
        self.item_set: frozenset[str] = frozenset(self.items)
        self.reference = reference
        self._plan_parents: dict[str, tuple[str, ...]] = {}
        self._frontier: dict[str, frozenset[str]] = {}
        self._tainted: dict[str, bool] = {}
        self._parents: dict[str, tuple[str, ...]] = {}

    def parents(self, unique_id: str) -> tuple[str, ...]:
        """Direct parents that are nodes of the graph, sorted."""
        cached = self._parents.get(unique_id)
        if cached is None:
            nodes = self.graph.nodes
            cached = self._parents[unique_id] = tuple(
                sorted({p for p in nodes[unique_id].depends_on_nodes if p in nodes})
            )
        return cached

    def upward_closure(self, starts: Sequence[str]) -> frozenset[str]:
        """``starts`` and all their ancestors."""
        seen: set[str] = set()
        stack = list(starts)
        while stack:
            uid = stack.pop()
            if uid not in seen:
                seen.add(uid)
                stack.extend(self.parents(uid))
        return frozenset(seen)

    def plan_parents(self, unique_id: str) -> tuple[str, ...]:
        cached = self._plan_parents.get(unique_id)
        if cached is None:
            found: set[str] = set()
            for parent in self.parents(unique_id):
                if parent in self.item_set:
                    found.add(parent)
                else:
                    found.update(self._item_frontier(parent))
            cached = self._plan_parents[unique_id] = tuple(sorted(found))
        return cached

    def _item_frontier(self, start: str) -> frozenset[str]:
        """Items reached upward from the non-item ``start`` without crossing another item (iterative, memoised)."""
        stack = [start]
        while stack:
            uid = stack[-1]
            if uid in self._frontier:
                stack.pop()
                continue
            pending = [p for p in self.parents(uid) if p not in self.item_set and p not in self._frontier]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            found: set[str] = set()
            for parent in self.parents(uid):
                if parent in self.item_set:
                    found.add(parent)
                else:
                    found.update(self._frontier.get(parent, frozenset()))  # absent only on a cycle
            self._frontier[uid] = frozenset(found)
        return self._frontier[start]

    @functools.cached_property
    def plan_dag(self) -> Dag:
        return Dag({uid: self.plan_parents(uid) for uid in self.items})

    @functools.cached_property
    def topological(self) -> tuple[str, ...]:
        """Items, parents first, ties by unique_id."""
        return tuple(self.plan_dag.topological_order())

    @functools.cached_property
    def plan_ancestors(self) -> dict[str, frozenset[str]]:
        """Every item's ancestors among the items."""
        result: dict[str, frozenset[str]] = {}
        for uid in self.topological:
            acc: set[str] = set()
            for parent in self.plan_parents(uid):
                acc.add(parent)
                acc.update(result[parent])
            result[uid] = frozenset(acc)
        return result

    @functools.cached_property
    def modified(self) -> frozenset[str]:
        """The nodes dbt's ``state:modified`` selects against the reference graph (empty without one)."""
        if self.reference is None:
            return frozenset()
        # dbt's rule compares each node with its namesake (plus the macros it uses): restricting both graphs to
        # the items and their ancestors gives the same answer for them, without comparing the whole project.
        upstream = self.upward_closure(self.items)
        new = msgspec.structs.replace(self.graph, nodes={u: n for u, n in self.graph.nodes.items() if u in upstream})
        ref_nodes = self.reference.nodes
        old = msgspec.structs.replace(self.reference, nodes={u: ref_nodes[u] for u in upstream if u in ref_nodes})
        return frozenset(modified_nodes(old, new))

    def upstream_modified(self, unique_id: str) -> str | None:
        """A modified node among ``unique_id`` and its ancestors (the smallest unique_id found first in a
        sorted walk), or None."""
        modified = self.modified
        if not modified:
            return None
        seen: set[str] = set()
        stack = [unique_id]
        while stack:
            uid = stack.pop()
            if uid in seen:
                continue
            seen.add(uid)
            if uid in modified:
                return uid
            if self._tainted.get(uid) is False:
                continue
            stack.extend(reversed(self.parents(uid)))
        for uid in seen:
            self._tainted[uid] = False
        return None

    @functools.cached_property
    def exposures(self) -> tuple[str, ...]:
        return tuple(sorted(uid for uid, n in self.graph.nodes.items() if n.resource_type == "exposure"))

    @functools.cached_property
    def exposure_needs(self) -> dict[str, tuple[str, ...]]:
        """Every ancestor of an exposure -> the exposures that need it (sorted). One pass over the exposures'
        ancestors, children before parents, with a bit per exposure."""
        exposures = self.exposures
        if not exposures:
            return {}
        closure = self.upward_closure(exposures)
        pending: dict[str, int] = dict.fromkeys(closure, 0)
        for uid in closure:
            for parent in self.parents(uid):
                pending[parent] += 1
        mask: dict[str, int] = dict.fromkeys(closure, 0)
        for bit, exposure in enumerate(exposures):
            mask[exposure] |= 1 << bit
        ready = sorted(uid for uid, n in pending.items() if n == 0)
        while ready:
            uid = ready.pop()
            for parent in self.parents(uid):
                mask[parent] |= mask[uid]
                pending[parent] -= 1
                if pending[parent] == 0:
                    ready.append(parent)
        exposure_set = frozenset(exposures)
        return {
            uid: tuple(e for bit, e in enumerate(exposures) if m >> bit & 1)
            for uid, m in mask.items()
            if uid not in exposure_set and m
        }

    @functools.cached_property
    def exposure_priority(self) -> frozenset[str]:
        """Items that exposures need: their ancestors, and the tests of those ancestors (every parent of the
        test is one)."""
        needs = self.exposure_needs
        nodes = self.graph.nodes
        found = set()
        for uid in self.items:
            if uid in needs:
                found.add(uid)
            elif nodes[uid].resource_type in TEST_TYPES:
                parents = self.parents(uid)
                if parents and all(p in needs for p in parents):
                    found.add(uid)
        return frozenset(found)


@dataclasses.dataclass(frozen=True, slots=True)
class PolicyContext:
    """Everything a policy may read. Immutable; ``prior`` holds the decisions of the policies evaluated before
    this one (item decisions by unique_id, in policy order), so a later policy can see what an earlier one did."""

    graph: LogicalGraph
    index: PlanIndex
    reference: LogicalGraph | None
    """The state graph (dbt's ``--state``), or None: then nothing counts as unchanged."""
    history: Mapping[str, Sequence[ExecutionRecord]]
    last_status: Mapping[str, ExecutionRecord]
    """The most recent execution per node, whatever its status."""
    freshness: Mapping[str, SourceFreshness]
    settings: PlanningSettings
    estimates: Mapping[str, CostEstimate]
    now: datetime
    prior: Mapping[str, tuple[Decision, ...]] = dataclasses.field(default_factory=dict)

    @property
    def items(self) -> tuple[str, ...]:
        """The selected, executable nodes the plan is about, sorted."""
        return self.index.items

    def current_action(self, unique_id: str) -> ItemAction:
        """The action the decisions so far give ``unique_id`` (the planner's precedence; RUN without any)."""
        return combined_action(self.prior.get(unique_id, ()))

    def running(self) -> tuple[str, ...]:
        """Items that would run (RUN or PARTIAL) given the decisions so far, sorted."""
        return tuple(uid for uid in self.items if self.current_action(uid) != "SKIP")
