"""Canvas deciders, given/when/then, and two properties: folding the events of any command sequence gives what a
plain reference model of the canvas says, and a command applied a second time records nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from contracts.events.canvas import GroupDeleted, NodePosition, NodesMoved, Viewport
from services.canvas.domain import EMPTY, CanvasState, Where, decide, evolve, user_workspace
from services.shared.errors import AlreadyExistsError, ContractViolationError, NotFoundError

AT = Where(project_id="shop", workspace="shared", now=datetime(2026, 1, 1, tzinfo=UTC))
NODES = [uuid.UUID(int=i) for i in range(1, 6)]


def arranged(*commands: CanvasCommand) -> CanvasState:
    state = EMPTY
    for command in commands:
        for event in decide(state, command, AT):
            state = evolve(state, event)
    return state


def test_a_move_records_only_the_nodes_that_really_moved_in_a_stable_order() -> None:
    state = arranged(MoveNodes(positions=[NodePosition(node_uuid=NODES[0], x=1, y=2)]))
    events = decide(
        state,
        MoveNodes(
            positions=[
                NodePosition(node_uuid=NODES[2], x=3, y=3),
                NodePosition(node_uuid=NODES[0], x=1, y=2),  # already there
                NodePosition(node_uuid=NODES[1], x=0, y=0),
                NodePosition(node_uuid=NODES[1], x=7, y=7),  # the last position of a node wins
            ]
        ),
        AT,
    )
    assert events == [
        NodesMoved(
            project_id="shop",
            workspace="shared",
            positions=(NodePosition(node_uuid=NODES[1], x=7, y=7), NodePosition(node_uuid=NODES[2], x=3, y=3)),
            moved_at=AT.now,
        )
    ]


def test_deleting_a_group_forgets_its_collapsed_state_and_keeps_its_nodes_placed() -> None:
    state = arranged(
        MoveNodes(positions=[NodePosition(node_uuid=NODES[0], x=1, y=1)]),
        CreateGroup(group_id="g", name="G", members=[NODES[0]]),
        SetCollapsed(keys=["group:g", "tag:x"], collapsed=True),
    )
    events = decide(state, DeleteGroup(group_id="g"), AT)
    assert events == [GroupDeleted(project_id="shop", workspace="shared", group_id="g", deleted_at=AT.now)]
    after = evolve(state, events[0])
    assert (after.groups, after.collapsed, after.positions) == ({}, frozenset({"tag:x"}), {NODES[0]: (1.0, 1.0)})


@pytest.mark.parametrize(
    ("history", "command", "error", "needle"),
    [
        ((), RenameGroup(group_id="g", name="x"), NotFoundError, "'g' not found"),
        ((CreateGroup(group_id="g", name="G"),), CreateGroup(group_id="g", name="again"), AlreadyExistsError, "exists"),
        ((), CreateGroup(group_id="g", name=" \t "), ContractViolationError, "blank"),
        ((), CreateGroup(group_id="g", name="a\x1bb"), ContractViolationError, "control"),
        ((), SetCollapsed(keys=["folder:"], collapsed=True), ContractViolationError, "group key"),
        ((), SetCollapsed(keys=["group:ghost"], collapsed=True), NotFoundError, "ghost"),
        (
            (),
            MoveNodes(positions=[NodePosition(node_uuid=NODES[0], x=float("nan"), y=0)]),
            ContractViolationError,
            "finite",
        ),
        ((), SetViewport(viewport=Viewport(x=0, y=0, zoom=float("inf"))), ContractViolationError, "zoom"),
        ((), SetViewport(viewport=Viewport(x=-1e9, y=0, zoom=1)), ContractViolationError, "viewport.x"),
    ],
)
def test_refused_commands_name_the_problem(
    history: tuple[CanvasCommand, ...], command: CanvasCommand, error: type[Exception], needle: str
) -> None:
    with pytest.raises(error, match=needle):
        decide(arranged(*history), command, AT)


def test_a_users_workspace_key_is_a_digest_that_keeps_stream_ids_plain() -> None:
    key = user_workspace("alice@example.com/../../'; DROP")
    assert key.startswith("user_")
    assert len(key) == 37
    assert key.removeprefix("user_").isalnum()
    assert user_workspace("alice") != user_workspace("Alice")


# -- properties -----------------------------------------------------------------------------------------------

coordinates = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: round(v, 2))
nodes = st.sampled_from(NODES)
group_ids = st.sampled_from(["a", "b", "c"])
keys = st.one_of(group_ids.map(lambda g: f"group:{g}"), st.sampled_from(["folder:models", "tag:pii", "type:seed"]))
commands: st.SearchStrategy[CanvasCommand] = st.one_of(
    st.builds(
        MoveNodes,
        positions=st.lists(
            st.builds(NodePosition, node_uuid=nodes, x=coordinates, y=coordinates), min_size=1, max_size=4
        ),
    ),
    st.builds(ResetPositions, node_uuids=st.lists(nodes, max_size=3)),
    st.builds(
        CreateGroup, group_id=group_ids, name=st.sampled_from(["One", "Two"]), members=st.lists(nodes, max_size=3)
    ),
    st.builds(RenameGroup, group_id=group_ids, name=st.sampled_from(["One", "Two", "Three"])),
    st.builds(SetGroupMembers, group_id=group_ids, members=st.lists(nodes, max_size=4)),
    st.builds(DeleteGroup, group_id=group_ids),
    st.builds(SetCollapsed, keys=st.lists(keys, min_size=1, max_size=3), collapsed=st.booleans()),
    st.builds(SetGrouping, grouping=st.sampled_from(["none", "folder", "package", "tag", "type"])),
    st.builds(
        SetViewport, viewport=st.builds(Viewport, x=coordinates, y=coordinates, zoom=st.sampled_from([0.5, 1.0, 2.0]))
    ),
)


def reference(state: dict[str, Any], command: CanvasCommand) -> None:
    """What the canvas should look like after ``command``, written as plainly as possible (mutates ``state``)."""
    groups, collapsed = state["groups"], state["collapsed"]
    match command:
        case MoveNodes():
            for p in command.positions:
                state["positions"][p.node_uuid] = (p.x, p.y)
        case ResetPositions():
            for n in command.node_uuids or list(state["positions"]):
                state["positions"].pop(n, None)
        case CreateGroup():
            groups[command.group_id] = (command.name, tuple(sorted(set(command.members))))
        case RenameGroup():
            groups[command.group_id] = (command.name, groups[command.group_id][1])
        case SetGroupMembers():
            groups[command.group_id] = (groups[command.group_id][0], tuple(sorted(set(command.members))))
        case DeleteGroup():
            del groups[command.group_id]
            collapsed.discard(f"group:{command.group_id}")
        case SetCollapsed():
            (collapsed.update if command.collapsed else collapsed.difference_update)(command.keys)
        case SetGrouping():
            state["grouping"] = command.grouping
        case SetViewport():
            state["viewport"] = command.viewport


@settings(max_examples=300, deadline=None)
@given(st.lists(commands, max_size=30))
def test_folding_the_events_of_any_sequence_matches_the_reference_model(sequence: list[CanvasCommand]) -> None:
    state = EMPTY
    expected: dict[str, Any] = {"positions": {}, "groups": {}, "collapsed": set(), "grouping": None, "viewport": None}
    for command in sequence:
        try:
            events = decide(state, command, AT)
        except (NotFoundError, AlreadyExistsError):
            continue  # refused: nothing recorded, the reference does not change either
        reference(expected, command)
        for event in events:
            state = evolve(state, event)
        if not isinstance(command, (CreateGroup, DeleteGroup)):  # absolute commands: the second time is a no-op
            assert decide(state, command, AT) == []
    assert state.positions == expected["positions"]
    assert {k: (g.name, g.members) for k, g in state.groups.items()} == expected["groups"]
    assert state.collapsed == expected["collapsed"]
    assert (state.grouping, state.viewport) == (expected["grouping"], expected["viewport"])


@settings(max_examples=100, deadline=None)
@given(st.lists(commands, max_size=20))
def test_events_survive_their_wire_form(sequence: list[CanvasCommand]) -> None:
    state = EMPTY
    for command in sequence:
        try:
            events = decide(state, command, AT)
        except (NotFoundError, AlreadyExistsError):
            continue
        for event in events:
            assert msgspec.json.decode(msgspec.json.encode(event), type=type(event)) == event
            state = evolve(state, event)
