"""Indexed graphs kept between requests: a graph version never changes, and indexing 10k nodes costs ~0.3 s,
while a selection on an indexed graph takes milliseconds (the plan benchmark's warm and cold rows)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from contracts.graph import LogicalGraph
from services.planning.selection.engine import Selector


class SelectorCache:
    """Indexed graphs of recent graph versions (versions never change, indexing 10k nodes takes ~0.3 s), each
    with its latest reference context (the state diff is cached in it)."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._indexed: OrderedDict[tuple[str, str, int], tuple[LogicalGraph, Selector]] = OrderedDict()
        self._contexts: OrderedDict[
            tuple[str, str, int, int | None], tuple[int, LogicalGraph, LogicalGraph | None, Selector]
        ] = OrderedDict()

    def get(
        self,
        key: tuple[str, str, int, int | None, Mapping[str, str]],
        graph: LogicalGraph,
        reference: LogicalGraph | None,
    ) -> Selector:
        # An entry serves only the very graph objects it was built from: a key names a graph version, but two
        # stores (databases) in one process, or a graph rebuilt from its events, may give the same key another
        # graph. The entry holds its graphs, so an ``is`` match cannot be a recycled object.
        tenant, project, version, ref, results = key
        fingerprint = hash(frozenset(results.items()))
        cached = self._contexts.get((tenant, project, version, ref))
        if cached is not None and cached[0] == fingerprint and cached[1] is graph and cached[2] is reference:
            self._contexts.move_to_end((tenant, project, version, ref))
            return cached[3]
        indexed = self._indexed.get((tenant, project, version))
        if indexed is None or indexed[0] is not graph:
            indexed = self._indexed[(tenant, project, version)] = (graph, Selector(graph))
            _trim(self._indexed, self._size)
        selector = indexed[1].with_context(state=reference, results=results)
        self._contexts[(tenant, project, version, ref)] = (fingerprint, graph, reference, selector)
        _trim(self._contexts, self._size)
        return selector


def _trim(cache: OrderedDict[Any, Any], size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)


SELECTORS = SelectorCache()
"""The process's cache: the API's select and plan routes share it."""
