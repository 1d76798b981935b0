"""Canvas events: how people arranged the graph on screen (wire tags ``canvas.<event_snake>.v1``).

A canvas is a *view* of a project's LogicalGraph, never a change to it (DESIGN.md §1: separate streams; a
canvas edit never changes the graph). Each project has one shared workspace and one workspace per user, each a
stream ``canvas-<project>.<workspace>`` where ``workspace`` is ``shared`` or ``user_<digest of the subject>``.

Nodes are referred to by ``node_uuid`` (stable across renames and moves, issue 3), so a node keeps its place
when its unique_id changes. Group *keys* name what can be collapsed: a user group (``group:<group_id>``) or a
derived grouping (``folder:<path>``, ``package:<name>``, ``tag:<name>``, ``type:<resource_type>``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from contracts.base import Event
from contracts.registry import REGISTRY

Grouping = Literal["none", "folder", "package", "tag", "type"]
"""How the canvas groups nodes it draws (user groups are drawn in every grouping)."""


class NodePosition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    node_uuid: uuid.UUID
    x: float
    y: float


class Viewport(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    x: float
    y: float
    zoom: float


class NodesMoved(Event, frozen=True, kw_only=True, tag="canvas.nodes_moved.v1"):
    """Nodes placed by hand (absolute positions): they stay there whatever the automatic layout says."""

    context = "canvas"
    project_id: str
    workspace: str
    positions: tuple[NodePosition, ...]
    moved_at: datetime


class PositionsReset(Event, frozen=True, kw_only=True, tag="canvas.positions_reset.v1"):
    """Nodes given back to the automatic layout (all of them when ``node_uuids`` is empty)."""

    context = "canvas"
    project_id: str
    workspace: str
    node_uuids: tuple[uuid.UUID, ...] = ()
    reset_at: datetime


class GroupCreated(Event, frozen=True, kw_only=True, tag="canvas.group_created.v1"):
    context = "canvas"
    project_id: str
    workspace: str
    group_id: str
    name: str
    members: tuple[uuid.UUID, ...]
    created_at: datetime


class GroupRenamed(Event, frozen=True, kw_only=True, tag="canvas.group_renamed.v1"):
    context = "canvas"
    project_id: str
    workspace: str
    group_id: str
    name: str
    renamed_at: datetime


class GroupMembersChanged(Event, frozen=True, kw_only=True, tag="canvas.group_members_changed.v1"):
    context = "canvas"
    project_id: str
    workspace: str
    group_id: str
    members: tuple[uuid.UUID, ...]
    changed_at: datetime


class GroupDeleted(Event, frozen=True, kw_only=True, tag="canvas.group_deleted.v1"):
    """The group is gone; its nodes stay where they are (and in the graph, which a canvas never changes)."""

    context = "canvas"
    project_id: str
    workspace: str
    group_id: str
    deleted_at: datetime


class GroupsCollapsed(Event, frozen=True, kw_only=True, tag="canvas.groups_collapsed.v1"):
    """Groups drawn as one box each (``collapsed``) or opened again (not ``collapsed``)."""

    context = "canvas"
    project_id: str
    workspace: str
    keys: tuple[str, ...]
    collapsed: bool
    changed_at: datetime


class GroupingChanged(Event, frozen=True, kw_only=True, tag="canvas.grouping_changed.v1"):
    context = "canvas"
    project_id: str
    workspace: str
    grouping: Grouping
    changed_at: datetime


class ViewportChanged(Event, frozen=True, kw_only=True, tag="canvas.viewport_changed.v1"):
    context = "canvas"
    project_id: str
    workspace: str
    viewport: Viewport
    changed_at: datetime


CanvasEvent = (
    NodesMoved
    | PositionsReset
    | GroupCreated
    | GroupRenamed
    | GroupMembersChanged
    | GroupDeleted
    | GroupsCollapsed
    | GroupingChanged
    | ViewportChanged
)

CANVAS_EVENTS: tuple[type[Event], ...] = (
    NodesMoved,
    PositionsReset,
    GroupCreated,
    GroupRenamed,
    GroupMembersChanged,
    GroupDeleted,
    GroupsCollapsed,
    GroupingChanged,
    ViewportChanged,
)

REGISTRY.register(*CANVAS_EVENTS)
