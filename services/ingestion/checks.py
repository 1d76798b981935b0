r"""Limits on what the graph keeps, so that a graph that was accepted can also be stored and served.

- ``MAX_UNIQUE_ID``: a unique_id is a key in events, read models and URLs; the longest in the corpus is
  771 characters (Spellbook), so 4096 leaves room for real projects and refuses garbage.
- ``MAX_DEPTH``: free-form YAML (``meta``, ``config``...) is stored as jsonb and walked by the UI and
  projections; nesting deeper than 64 levels is not a real project's YAML.
- NUL: PostgreSQL's jsonb (and text) cannot hold ``\u0000``; an artifact that has one in a kept string
  must be refused at the door, naming the node, rather than fail later inside a projector.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from contracts.graph import LogicalGraph

MAX_UNIQUE_ID = 4096
MAX_DEPTH = 64

_NUL_ESCAPE = re.compile(rb"\\u0000")
_CONTAINERS = frozenset((dict, list))


def too_deep(value: dict[str, Any] | list[Any], limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` (a dict or list, itself level 1) has containers nested more than ``limit`` deep.

    Only containers are descended into, so the usual flat ``config`` costs one pass over its values.
    """
    if limit <= 0:
        return True
    for item in value.values() if isinstance(value, dict) else value:
        if type(item) in _CONTAINERS and too_deep(item, limit - 1):
            return True
    return False


def may_hold_nul(data: bytes | bytearray | memoryview) -> bool:
    r"""Whether the JSON text can hold a NUL character: JSON can only spell one as the escape ``\u0000``.

    A cheap scan of the input (a regex reads any buffer, mmap included) that spares the exact walk over the
    graph's strings on every artifact without one. A hit may be an escaped backslash followed by ``u0000``
    or a NUL in code the graph does not keep; ``nul_holder`` then decides.
    """
    return _NUL_ESCAPE.search(data) is not None


def nul_holder(graph: LogicalGraph) -> str | None:
    """The unique_id (or selector name) of the first kept object with a NUL in a string, key or value."""
    for owner, value in _kept(graph):
        if _has_nul(msgspec.to_builtins(value)):
            return owner
    return None


def _kept(graph: LogicalGraph) -> Iterator[tuple[str, object]]:
    yield from graph.nodes.items()
    yield from graph.macros.items()
    yield from graph.groups.items()
    for uid, disabled in graph.disabled.items():
        for node in disabled:
            yield uid, node
    for name, selector in graph.selectors.items():
        yield f"selector {name}", (name, selector)


def _has_nul(value: object) -> bool:
    if type(value) is str:
        return "\x00" in value
    if type(value) is dict:
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if type(value) is list or type(value) is tuple:  # to_builtins keeps tuples
        return any(_has_nul(v) for v in value)
    return False
