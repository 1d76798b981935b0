"""Canvas commands: what the graph workspace asks for (the body of ``POST .../canvas/commands``, tagged by
``type``). The bounds here keep one command small; the deciders (``services.canvas.domain``) check the rest."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from contracts.events.canvas import Grouping, NodePosition, Viewport

MAX_NODES_PER_COMMAND = 20_000
MAX_GROUP_KEYS = 5_000

GroupId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Chosen by the client.")]
GroupName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
GroupKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1024,
        description="'group:<group_id>', 'folder:<path>', 'package:<name>', 'tag:<name>' or 'type:<resource_type>'.",
    ),
]
# Lists, not tuples, in Annotated fields: the OpenAPI generator renders an Annotated variadic tuple as
# "an item or anything", which would type the UI's commands loosely.
Members = Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_NODES_PER_COMMAND)]


class _CanvasCommand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    pass


class MoveNodes(_CanvasCommand, frozen=True, kw_only=True, tag="move_nodes"):
    positions: Annotated[list[NodePosition], msgspec.Meta(min_length=1, max_length=MAX_NODES_PER_COMMAND)]


class ResetPositions(_CanvasCommand, frozen=True, kw_only=True, tag="reset_positions"):
    node_uuids: Members = []
    """Empty: every node goes back to the automatic layout."""


class CreateGroup(_CanvasCommand, frozen=True, kw_only=True, tag="create_group"):
    group_id: GroupId
    name: GroupName
    members: Members = []


class RenameGroup(_CanvasCommand, frozen=True, kw_only=True, tag="rename_group"):
    group_id: GroupId
    name: GroupName


class SetGroupMembers(_CanvasCommand, frozen=True, kw_only=True, tag="set_group_members"):
    group_id: GroupId
    members: Members


class DeleteGroup(_CanvasCommand, frozen=True, kw_only=True, tag="delete_group"):
    group_id: GroupId


class SetCollapsed(_CanvasCommand, frozen=True, kw_only=True, tag="set_collapsed"):
    keys: Annotated[list[GroupKey], msgspec.Meta(min_length=1, max_length=MAX_GROUP_KEYS)]
    collapsed: bool


class SetGrouping(_CanvasCommand, frozen=True, kw_only=True, tag="set_grouping"):
    grouping: Grouping


class SetViewport(_CanvasCommand, frozen=True, kw_only=True, tag="set_viewport"):
    viewport: Viewport


CanvasCommand = (
    MoveNodes
    | ResetPositions
    | CreateGroup
    | RenameGroup
    | SetGroupMembers
    | DeleteGroup
    | SetCollapsed
    | SetGrouping
    | SetViewport
)
