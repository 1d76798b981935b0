"""Graph algorithms over a dbt project's dependency graph, on rustworkx.

Edges point from parent to child (``depends_on`` reversed): ancestors are what a node reads from,
descendants what reads from it. Results are sets or lists of unique_ids, ordered deterministically
(topological order breaks ties by unique_id), so plans and diffs built on them are reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import rustworkx as rx


class Dag:
    """An immutable index over one graph version: unique_id <-> rustworkx node index."""

    __slots__ = ("_graph", "_ids", "_index")

    def __init__(self, parents: Mapping[str, Iterable[str]]) -> None:
        """``parents``: every node's unique_id -> the unique_ids it depends on. Parents that are not keys
        are ignored here (the ingester decides whether a dangling reference is an error)."""
        self._ids: list[str] = list(parents)
        self._index: dict[str, int] = {uid: i for i, uid in enumerate(self._ids)}
        graph: rx.PyDiGraph[str, None] = rx.PyDiGraph(
            check_cycle=False, multigraph=False, node_count_hint=len(self._ids)
        )
        graph.add_nodes_from(self._ids)
        index = self._index
        graph.add_edges_from_no_data(
            [(index[parent], index[child]) for child, ps in parents.items() for parent in ps if parent in index]
        )
        self._graph = graph

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, unique_id: object) -> bool:
        return unique_id in self._index

    @property
    def edge_count(self) -> int:
        return self._graph.num_edges()

    def find_cycle(self) -> list[str] | None:
        """One dependency cycle as ``[a, b, ..., a]`` (each depends on the one before), or None."""
        if rx.is_directed_acyclic_graph(self._graph):
            return None
        edges = rx.digraph_find_cycle(self._graph)
        return [self._ids[edges[0][0]]] + [self._ids[b] for _, b in edges]

    def parents(self, unique_id: str) -> list[str]:
        return sorted(self._ids[i] for i in self._graph.predecessor_indices(self._index[unique_id]))

    def children(self, unique_id: str) -> list[str]:
        return sorted(self._ids[i] for i in self._graph.successor_indices(self._index[unique_id]))

    def ancestors(self, unique_id: str, depth: int | None = None) -> set[str]:
        return self._reach(unique_id, depth, upstream=True)

    def descendants(self, unique_id: str, depth: int | None = None) -> set[str]:
        return self._reach(unique_id, depth, upstream=False)

    def _reach(self, unique_id: str, depth: int | None, *, upstream: bool) -> set[str]:
        start = self._index[unique_id]
        if depth is None:
            found = rx.ancestors(self._graph, start) if upstream else rx.descendants(self._graph, start)
            return {self._ids[i] for i in found}
        step = self._graph.predecessor_indices if upstream else self._graph.successor_indices
        seen: set[int] = {start}
        frontier = [start]
        for _ in range(depth):
            frontier = [n for i in frontier for n in step(i) if n not in seen]
            seen.update(frontier)
            if not frontier:
                break
        seen.discard(start)
        return {self._ids[i] for i in seen}

    def topological_order(self) -> list[str]:
        """Parents before children; ties broken by unique_id, so the order is reproducible."""
        # Node data are the unique_ids themselves, and rustworkx returns node data here.
        return list(rx.lexicographical_topological_sort(self._graph, key=str))

    def layers(self) -> list[list[str]]:
        """Generations: layer 0 has no parents, layer n only parents in layers < n; each layer sorted."""
        return [sorted(self._ids[i] for i in layer) for layer in rx.topological_generations(self._graph)]
