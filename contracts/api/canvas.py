"""Response bodies of the canvas routes (``/api/tenants/{t}/projects/{p}/canvas``)."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from contracts.events.canvas import Grouping, Viewport

WorkspaceName = Literal["mine", "shared"]
"""``mine``: the caller's own canvas of the project; ``shared``: the one every member of the project sees."""


class CanvasGroupView(msgspec.Struct, frozen=True, kw_only=True):
    group_id: str
    name: str
    members: list[uuid.UUID]


class CanvasView(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    workspace: WorkspaceName
    version: int
    """The stream version (0: nothing arranged yet); send it as ``If-Match`` to refuse a stale edit."""
    grouping: Grouping | None = None
    """None until someone chooses one: the UI then groups a large graph by folder, collapsed, and a small one not."""
    viewport: Viewport | None = None
    collapsed: list[str] = []
    """Keys of the collapsed groups, sorted."""
    positions: dict[str, tuple[float, float]] = {}
    """node_uuid -> (x, y) of the nodes placed by hand."""
    groups: list[CanvasGroupView] = []
    """Sorted by name, then id."""
    updated_by: str | None = None
