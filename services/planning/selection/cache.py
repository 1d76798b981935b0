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
        self._indexed: OrderedDict[tuple[str, str, int], Selector] = OrderedDict()
        self._contexts: OrderedDict[tuple[str, str, int, int | None], tuple[int, Selector]] = OrderedDict()

    def get(
        self,
        key: tuple[str, str, int, int | None, Mapping[str, str]],
        graph: LogicalGraph,
        reference: LogicalGraph | None,
    ) -> Selector:
        tenant, project, version, ref, results = key
        fingerprint = hash(frozenset(results.items()))
        cached = self._contexts.get((tenant, project, version, ref))
        if cached is not None and cached[0] == fingerprint:
            self._contexts.move_to_end((tenant, project, version, ref))
            return cached[1]
        base = self._indexed.get((tenant, project, version))
        if base is None:
            base = self._indexed[(tenant, project, version)] = Selector(graph)
            _trim(self._indexed, self._size)
        selector = base.with_context(state=reference, results=results)
        self._contexts[(tenant, project, version, ref)] = (fingerprint, selector)
        _trim(self._contexts, self._size)
        return selector


def _trim(cache: OrderedDict[Any, Any], size: int) -> None:
    while len(cache) > size:
        cache.popitem(last=False)


SELECTORS = SelectorCache()
"""The process's cache: the API's select and plan routes share it."""
