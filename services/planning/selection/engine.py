"""Node selection as ``dbt ls`` does it, over a LogicalGraph: ``select(graph, "tag:nightly+", exclude=...)``.

Evaluation follows dbt-core 1.11's ``NodeSelector`` (``dbt/graph/selector.py``) step for step:

1. a criterion's method matches resources; its graph operators add relatives (``n+``/``+n`` walk up to n
   generations, ``@`` adds the children and every ancestor of the node and its children);
2. unless the criterion's indirect selection is ``empty``, tests (and unit tests) that are direct children of
   what it selected come along: all of them (``eager``, dbt's default), those whose parents are all selected
   (``cautious``), or those whose parents are all selected or upstream of the selection (``buildable``);
   the others are kept aside as *indirect*;
3. unions, intersections and differences combine both the selected and the (selected + indirect) sets; a
   group in ``cautious``/``buildable`` mode then admits the indirect tests whose parents its result covers;
4. ``dbt ls`` keeps the resource types asked for (by default every type but analyses; operations are never
   listed) and prints the unique_ids sorted.

So ``--exclude x`` removes x's tests too (in eager mode they belong to x's selection), ``a,b`` keeps what
both select, and a selection that matches nothing is simply empty.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final

from contracts.graph import LogicalGraph
from services.ingestion.diff import DBT_LS_RESOURCE_TYPES
from services.planning.selection.grammar import (
    DEFAULT_INCLUDES,
    INDIRECT_SELECTION_MODES,
    Criterion,
    Group,
    IndirectSelection,
    SelectorSyntaxError,
    Spec,
    check_indirect_selection,
    parse_difference,
)
from services.planning.selection.index import GraphIndex
from services.planning.selection.methods import FreshnessComparison, MethodContext, MissingStateError, search
from services.planning.selection.yaml_selectors import UnknownSelectorError, default_selector, parse_selector
from services.shared.errors import ContractViolationError

__all__ = [
    "ALL_RESOURCE_TYPES",
    "DBT_LS_RESOURCE_TYPES",
    "DEFAULT_INCLUDES",
    "INDIRECT_SELECTION_MODES",
    "FreshnessComparison",
    "MissingStateError",
    "Selection",
    "Selector",
    "SelectorSyntaxError",
    "UnknownSelectorError",
    "resource_types_from_args",
    "select",
]

ALL_RESOURCE_TYPES: Final = DBT_LS_RESOURCE_TYPES | {"analysis"}
"""``dbt ls --resource-type all``."""


def resource_types_from_args(
    resource_types: Iterable[str] | None = None, exclude_resource_types: Iterable[str] | None = None
) -> frozenset[str]:
    """The types ``dbt ls --resource-type ... --exclude-resource-type ...`` lists: none given means the
    default set, ``all`` adds analyses, ``default`` is the default set."""
    wanted = set(resource_types or ())
    if not wanted:
        chosen = set(DBT_LS_RESOURCE_TYPES)
    else:
        chosen = wanted - {"all", "default"}
        if "all" in wanted:
            chosen |= ALL_RESOURCE_TYPES
        if "default" in wanted:
            chosen |= DBT_LS_RESOURCE_TYPES
    return frozenset(chosen - set(exclude_resource_types or ()))


class Selection:
    """A parsed selection (what ``Selector.parse`` returns): evaluate it with ``Selector.evaluate``."""

    __slots__ = ("indirect_selection", "spec")

    def __init__(self, spec: Spec, indirect_selection: IndirectSelection) -> None:
        self.spec = spec
        self.indirect_selection = indirect_selection


class Selector:
    """A graph indexed once for many selections (``select`` builds one per call).

    ``state`` is the reference graph of ``state:`` methods (dbt's ``--state`` manifest), ``results`` the
    status of every node in the reference run (``result:``: unique_id -> ``success``, ``error``, ``fail``,
    ``warn``, ``pass``, ``skipped``...), ``freshness`` the two ``sources.json`` of ``source_status:``.
    """

    def __init__(
        self,
        graph: LogicalGraph,
        *,
        state: LogicalGraph | None = None,
        results: Mapping[str, str] | None = None,
        freshness: FreshnessComparison | None = None,
    ) -> None:
        self.graph = graph
        self.index = GraphIndex(graph)
        self.context = MethodContext(state=state, results=results, freshness=freshness)

    def with_context(
        self,
        *,
        state: LogicalGraph | None = None,
        results: Mapping[str, str] | None = None,
        freshness: FreshnessComparison | None = None,
    ) -> Selector:
        """The same indexed graph with another reference: indexing is the costly part (a quarter of a second
        at 10k nodes) and depends only on the graph, so a server keeps one index per graph version."""
        other = Selector.__new__(Selector)
        other.graph = self.graph
        other.index = self.index
        other.context = MethodContext(state=state, results=results, freshness=freshness)
        return other

    # ------------------------------------------------------------------------------------------------ API

    def parse(
        self,
        select: str | Sequence[str] | None = None,
        *,
        exclude: str | Sequence[str] | None = None,
        selector: str | None = None,
        indirect_selection: str = "eager",
    ) -> Selection:
        """The spec ``dbt ls`` would evaluate for these arguments (raises ``SelectorSyntaxError``,
        ``UnknownSelectorError``). ``--selector`` replaces --select/--exclude (passing both is refused);
        without any of them the project's ``default: true`` selector applies, as in dbt."""
        mode = check_indirect_selection(indirect_selection)
        if selector is not None:
            if select is not None or exclude is not None:
                raise ContractViolationError("--selector cannot be combined with --select or --exclude")
            return Selection(parse_selector(self.graph.selectors, selector, indirect_selection=mode), mode)
        if select is None and exclude is None:
            default = default_selector(self.graph.selectors)
            if default is not None:
                return Selection(parse_selector(self.graph.selectors, default, indirect_selection=mode), mode)
        return Selection(parse_difference(select, exclude, indirect_selection=mode), mode)

    def select(
        self,
        select: str | Sequence[str] | None = None,
        *,
        exclude: str | Sequence[str] | None = None,
        selector: str | None = None,
        resource_types: Collection[str] = DBT_LS_RESOURCE_TYPES,
        indirect_selection: str = "eager",
    ) -> list[str]:
        """The unique_ids ``dbt ls --select ... --exclude ... [--selector ...]`` prints, sorted."""
        selection = self.parse(select, exclude=exclude, selector=selector, indirect_selection=indirect_selection)
        return self.evaluate(selection, resource_types=resource_types)

    def evaluate(self, selection: Selection, *, resource_types: Collection[str] = DBT_LS_RESOURCE_TYPES) -> list[str]:
        direct, _ = self._evaluate(selection.spec)
        type_of = self.index.type_of
        types = frozenset(resource_types)
        return sorted(uid for uid in direct if type_of[uid] in types)

    def matches(self, criterion: Criterion) -> set[str]:
        """What one criterion's method matches, before graph operators and tests (for explanations)."""
        return search(self.index, criterion, self.context)

    # ------------------------------------------------------------------------------------------------ dbt's steps

    def _evaluate(self, spec: Spec) -> tuple[set[str], set[str]]:
        """``(selected, indirect)``: dbt's ``select_nodes_recursively`` (indirect includes selected for groups)."""
        if isinstance(spec, Criterion):
            return self._criterion(spec)
        parts = [self._evaluate(component) for component in spec.components]
        direct = _combine(spec, [d for d, _ in parts])
        indirect = _combine(spec, [d | i for d, i in parts])
        return self._incorporate(direct, indirect, spec.indirect_selection), indirect

    def _criterion(self, criterion: Criterion) -> tuple[set[str], set[str]]:
        collected = search(self.index, criterion, self.context)
        selected = collected | self._neighbours(criterion, collected)
        if criterion.indirect_selection == "empty":
            return selected, set()
        return self._expand(selected, criterion.indirect_selection)

    def _neighbours(self, criterion: Criterion, selected: set[str]) -> set[str]:
        index = self.index
        extra: set[str] = set()
        if criterion.childrens_parents:
            below = _walk(index.children, selected, None) | selected
            extra |= _walk(index.parents, below, None) | below
        if criterion.parents:
            extra |= _walk(index.parents, selected, criterion.parents_depth)
        if criterion.children:
            extra |= _walk(index.children, selected, criterion.children_depth)
        return extra

    def _expand(self, selected: set[str], mode: IndirectSelection) -> tuple[set[str], set[str]]:
        """Tests whose parent is selected (dbt's ``expand_selection``)."""
        index = self.index
        nodes = index.nodes
        direct, indirect = set(selected), set[str]()
        tests = index.test_children
        candidates: set[str] = set()
        for uid in selected:
            kids = tests.get(uid)
            if kids:
                candidates.update(kids)
        if mode == "eager":
            direct |= candidates
            return direct, indirect
        around: set[str] | None = None
        if mode == "buildable":
            around = selected | _walk(index.parents, selected, None) | index.sources_everywhere
        for uid in candidates:
            node = nodes[uid]
            if selected.issuperset(node.depends_on_nodes) or (
                around is not None and around.issuperset(node.depends_on_nodes)
            ):
                direct.add(uid)
            else:
                indirect.add(uid)
        return direct, indirect

    def _incorporate(self, direct: set[str], indirect: set[str], mode: IndirectSelection) -> set[str]:
        """Indirect tests a group admits once its result covers their parents (``incorporate_indirect_nodes``)."""
        if mode not in ("cautious", "buildable") or direct == indirect:
            return direct
        nodes = self.index.nodes
        selected = set(direct)
        around = selected if mode == "cautious" else selected | _walk(self.index.parents, selected, None)
        for uid in indirect:
            node = nodes[uid]
            if node.resource_type == "test" and around.issuperset(node.depends_on_nodes):
                selected.add(uid)
        return selected


def _combine(group: Group, sets: list[set[str]]) -> set[str]:
    if not sets:
        return set()
    first, *rest = sets
    if group.kind == "union":
        return first.union(*rest)
    if group.kind == "intersection":
        return first.intersection(*rest)
    return first.difference(*rest)


def _walk(edges: Mapping[str, list[str]], start: Iterable[str], depth: int | None) -> set[str]:
    """Everything reachable from ``start`` in 1..depth steps along ``edges`` (no depth: any number)."""
    found: set[str] = set()
    frontier = list(start)
    steps = 0
    while frontier and (depth is None or steps < depth):
        layer: list[str] = []
        for uid in frontier:
            for nxt in edges.get(uid, ()):
                if nxt not in found:
                    found.add(nxt)
                    layer.append(nxt)
        frontier = layer
        steps += 1
    return found


def select(
    graph: LogicalGraph,
    select: str | Sequence[str] | None = None,
    *,
    exclude: str | Sequence[str] | None = None,
    selector: str | None = None,
    state: LogicalGraph | None = None,
    results: Mapping[str, str] | None = None,
    freshness: FreshnessComparison | None = None,
    resource_types: Collection[str] = DBT_LS_RESOURCE_TYPES,
    indirect_selection: str = "eager",
) -> list[str]:
    """The sorted unique_ids ``dbt ls`` selects (see the module doc); build a ``Selector`` to select many
    times over the same graph."""
    engine = Selector(graph, state=state, results=results, freshness=freshness)
    return engine.select(
        select, exclude=exclude, selector=selector, resource_types=resource_types, indirect_selection=indirect_selection
    )
