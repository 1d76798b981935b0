"""Canvas deciders: pure functions from a workspace's folded state and a command to the events it records.

A command that would change nothing (the same viewport, a node moved to where it already is, collapsing what is
collapsed) records nothing, so an idle canvas does not grow its stream. Positions and the viewport must be finite
and within ``COORDINATE_LIMIT``; group names are trimmed text without control characters.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import datetime
from typing import assert_never

import msgspec

from contracts.base import Event
from contracts.commands.canvas import (
    CanvasCommand,
    CreateGroup,
    DeleteGroup,
    MoveNodes,
    RenameGroup,
    ResetPositions,
    SetCollapsed,
    SetGrouping,
    SetGroupMembers,
    SetViewport,
)
from contracts.events.canvas import (
    CanvasEvent,
    GroupCreated,
    GroupDeleted,
    Grouping,
    GroupingChanged,
    GroupMembersChanged,
    GroupRenamed,
    GroupsCollapsed,
    NodePosition,
    NodesMoved,
    PositionsReset,
    Viewport,
    ViewportChanged,
)
from contracts.ids import StreamId, stream_id
from services.shared.errors import AlreadyExistsError, ContractViolationError, NotFoundError

SHARED = "shared"
COORDINATE_LIMIT = 10_000_000.0
ZOOM_RANGE = (0.001, 100.0)
MAX_GROUPS = 1_000
KEY_PREFIXES = ("group:", "folder:", "package:", "tag:", "type:")


def user_workspace(subject: str) -> str:
    """A user's workspace key: a digest of the subject, so that stream ids stay plain whatever the subject is."""
    return "user_" + hashlib.sha256(subject.encode()).hexdigest()[:32]


def canvas_stream(project_id: str, workspace: str) -> StreamId:
    return stream_id("canvas", f"{project_id}.{workspace}")


class Group(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    members: tuple[uuid.UUID, ...]


class CanvasState(msgspec.Struct, frozen=True, kw_only=True):
    positions: dict[uuid.UUID, tuple[float, float]] = {}
    groups: dict[str, Group] = {}
    collapsed: frozenset[str] = frozenset()
    grouping: Grouping | None = None
    """None until someone chooses a grouping (the UI then picks one by the size of the graph)."""
    viewport: Viewport | None = None


EMPTY = CanvasState()


def evolve(state: CanvasState, event: Event) -> CanvasState:  # noqa: PLR0911 - one return per event type
    if not isinstance(event, CanvasEvent):
        return state
    match event:
        case NodesMoved():
            positions = dict(state.positions)
            positions.update((p.node_uuid, (p.x, p.y)) for p in event.positions)
            return msgspec.structs.replace(state, positions=positions)
        case PositionsReset():
            if not event.node_uuids:
                return msgspec.structs.replace(state, positions={})
            gone = set(event.node_uuids)
            return msgspec.structs.replace(state, positions={k: v for k, v in state.positions.items() if k not in gone})
        case GroupCreated():
            groups = {**state.groups, event.group_id: Group(name=event.name, members=event.members)}
            return msgspec.structs.replace(state, groups=groups)
        case GroupRenamed():
            group = msgspec.structs.replace(state.groups[event.group_id], name=event.name)
            return msgspec.structs.replace(state, groups={**state.groups, event.group_id: group})
        case GroupMembersChanged():
            group = msgspec.structs.replace(state.groups[event.group_id], members=event.members)
            return msgspec.structs.replace(state, groups={**state.groups, event.group_id: group})
        case GroupDeleted():
            groups = {k: v for k, v in state.groups.items() if k != event.group_id}
            collapsed = state.collapsed - {f"group:{event.group_id}"}
            return msgspec.structs.replace(state, groups=groups, collapsed=collapsed)
        case GroupsCollapsed():
            keys = set(event.keys)
            collapsed = state.collapsed | keys if event.collapsed else state.collapsed - keys
            return msgspec.structs.replace(state, collapsed=frozenset(collapsed))
        case GroupingChanged():
            return msgspec.structs.replace(state, grouping=event.grouping)
        case ViewportChanged():
            return msgspec.structs.replace(state, viewport=event.viewport)
        case _:
            assert_never(event)


def _coordinate(value: float, field: str) -> float:
    if not math.isfinite(value) or abs(value) > COORDINATE_LIMIT:
        raise ContractViolationError(f"{field} must be a finite number within ±{COORDINATE_LIMIT:g}", field=field)
    return value


def _name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ContractViolationError("group name must not be blank", field="name")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ContractViolationError("group name must not contain control characters", field="name")
    return name


def _members(members: list[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    return tuple(sorted(set(members)))


def _group(state: CanvasState, group_id: str) -> Group:
    group = state.groups.get(group_id)
    if group is None:
        raise NotFoundError(f"canvas group {group_id!r} not found", group_id=group_id)
    return group


def _key(key: str) -> str:
    if not key.startswith(KEY_PREFIXES) or key.split(":", 1)[1] == "":
        raise ContractViolationError(
            f"group key {key[:80]!r} must be one of {', '.join(p + '<name>' for p in KEY_PREFIXES)}", field="keys"
        )
    if "\x00" in key:
        raise ContractViolationError("group key must not contain NUL", field="keys")
    return key


class Where(msgspec.Struct, frozen=True, kw_only=True):
    """Which workspace a command is for, and when it is decided."""

    project_id: str
    workspace: str
    now: datetime


def move_nodes(state: CanvasState, command: MoveNodes, at: Where) -> list[Event]:
    latest = {
        p.node_uuid: (_coordinate(p.x, "positions.x"), _coordinate(p.y, "positions.y")) for p in command.positions
    }
    moved = tuple(
        NodePosition(node_uuid=node, x=x, y=y)
        for node, (x, y) in sorted(latest.items())
        if state.positions.get(node) != (x, y)
    )
    if not moved:
        return []
    return [NodesMoved(project_id=at.project_id, workspace=at.workspace, positions=moved, moved_at=at.now)]


def reset_positions(state: CanvasState, command: ResetPositions, at: Where) -> list[Event]:
    placed = tuple(n for n in _members(command.node_uuids) if n in state.positions)
    if not (placed if command.node_uuids else state.positions):
        return []
    return [PositionsReset(project_id=at.project_id, workspace=at.workspace, node_uuids=placed, reset_at=at.now)]


def create_group(state: CanvasState, command: CreateGroup, at: Where) -> list[Event]:
    if command.group_id in state.groups:
        raise AlreadyExistsError(f"canvas group {command.group_id!r} already exists", group_id=command.group_id)
    if len(state.groups) >= MAX_GROUPS:
        raise ContractViolationError(f"a canvas holds at most {MAX_GROUPS} groups", field="group_id")
    return [
        GroupCreated(
            project_id=at.project_id,
            workspace=at.workspace,
            group_id=command.group_id,
            name=_name(command.name),
            members=_members(command.members),
            created_at=at.now,
        )
    ]


def rename_group(state: CanvasState, command: RenameGroup, at: Where) -> list[Event]:
    name = _name(command.name)
    if _group(state, command.group_id).name == name:
        return []
    return [
        GroupRenamed(
            project_id=at.project_id, workspace=at.workspace, group_id=command.group_id, name=name, renamed_at=at.now
        )
    ]


def set_group_members(state: CanvasState, command: SetGroupMembers, at: Where) -> list[Event]:
    members = _members(command.members)
    if _group(state, command.group_id).members == members:
        return []
    return [
        GroupMembersChanged(
            project_id=at.project_id,
            workspace=at.workspace,
            group_id=command.group_id,
            members=members,
            changed_at=at.now,
        )
    ]


def delete_group(state: CanvasState, command: DeleteGroup, at: Where) -> list[Event]:
    _group(state, command.group_id)
    return [
        GroupDeleted(project_id=at.project_id, workspace=at.workspace, group_id=command.group_id, deleted_at=at.now)
    ]


def set_collapsed(state: CanvasState, command: SetCollapsed, at: Where) -> list[Event]:
    keys = sorted({_key(k) for k in command.keys})
    for key in keys:
        if key.startswith("group:"):
            _group(state, key.removeprefix("group:"))
    changing = tuple(k for k in keys if (k in state.collapsed) != command.collapsed)
    if not changing:
        return []
    return [
        GroupsCollapsed(
            project_id=at.project_id,
            workspace=at.workspace,
            keys=changing,
            collapsed=command.collapsed,
            changed_at=at.now,
        )
    ]


def set_grouping(state: CanvasState, command: SetGrouping, at: Where) -> list[Event]:
    if command.grouping == state.grouping:
        return []
    return [
        GroupingChanged(project_id=at.project_id, workspace=at.workspace, grouping=command.grouping, changed_at=at.now)
    ]


def set_viewport(state: CanvasState, command: SetViewport, at: Where) -> list[Event]:
    v = command.viewport
    if not (math.isfinite(v.zoom) and ZOOM_RANGE[0] <= v.zoom <= ZOOM_RANGE[1]):
        raise ContractViolationError(f"viewport.zoom must be within {ZOOM_RANGE}", field="viewport.zoom")
    viewport = Viewport(x=_coordinate(v.x, "viewport.x"), y=_coordinate(v.y, "viewport.y"), zoom=v.zoom)
    if viewport == state.viewport:
        return []
    return [ViewportChanged(project_id=at.project_id, workspace=at.workspace, viewport=viewport, changed_at=at.now)]


def decide(state: CanvasState, command: CanvasCommand, at: Where) -> list[Event]:  # noqa: PLR0911 - one per command
    """The events ``command`` records against ``state`` (none when it changes nothing)."""
    match command:
        case MoveNodes():
            return move_nodes(state, command, at)
        case ResetPositions():
            return reset_positions(state, command, at)
        case CreateGroup():
            return create_group(state, command, at)
        case RenameGroup():
            return rename_group(state, command, at)
        case SetGroupMembers():
            return set_group_members(state, command, at)
        case DeleteGroup():
            return delete_group(state, command, at)
        case SetCollapsed():
            return set_collapsed(state, command, at)
        case SetGrouping():
            return set_grouping(state, command, at)
        case SetViewport():
            return set_viewport(state, command, at)
        case _:
            assert_never(command)
