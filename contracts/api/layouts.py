"""The graph layout cache (``/api/tenants/{t}/projects/{p}/graph/layouts/{key}?version=N``).

A layout is derived data: positions an automatic layout engine (ELK, dagre) computed in a browser for one graph
version and one arrangement of what is drawn (grouping, collapsed groups, filters: what ``key`` digests). It is
kept so that the next person, or the next visit, draws a large graph at once instead of laying it out again. It is
never an event and never part of the graph: losing it only costs the time to compute it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

MAX_LAYOUT_ITEMS = 60_000
"""Drawn items (nodes and collapsed groups) in one layout: above the largest real project (about 22,000)."""

LAYOUT_KEY_PATTERN = r"^[a-f0-9]{16,64}$"
LayoutKey = Annotated[str, msgspec.Meta(pattern=LAYOUT_KEY_PATTERN, description="A digest made by the client.")]
ItemId = Annotated[str, msgspec.Meta(min_length=1, max_length=1100)]
LayoutEngine = Literal["elk", "dagre", "layered"]
"""ELK, dagre (small graphs), or the UI's own plain layered layout (drawings too large for ELK, ADR 0014)."""


class LayoutBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    engine: LayoutEngine
    positions: Annotated[dict[ItemId, tuple[float, float]], msgspec.Meta(max_length=MAX_LAYOUT_ITEMS)]
    """Drawn item id (a unique_id, or a group key) -> top-left (x, y)."""
    elapsed_ms: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    """How long the engine took: what the cache saves the next visitor."""


class GraphLayout(msgspec.Struct, frozen=True, kw_only=True):
    graph_version: int
    key: str
    engine: LayoutEngine
    positions: dict[str, tuple[float, float]]
    elapsed_ms: float
    created_at: datetime
