"""Canvas routes on the real app: a user's own canvas and the shared one, each edit an event on a canvas stream
that never touches the graph; reload restores it exactly; stale edits, hostile input and other tenants refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from projections.registry import known_projectors
from projections.replay import replay
from services.shared.eventstore.postgres import PostgresEventStore
from tests.integration.api_support import (
    ADMIN_H,
    APPROVER_H,
    GLOBEX_H,
    PROBLEM,
    VIEWER_H,
    api_client,
    project_body,
)
from tests.integration.test_api_graph import SHOP, ingest_jaffle

CANVAS = f"{SHOP}/canvas"
A, B = uuid.UUID(int=1), uuid.UUID(int=2)


@pytest.fixture
async def client(pg_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url, home=tmp_path) as client:
        created = await client.post("/api/tenants/acme/projects", json=project_body(), headers=ADMIN_H)
        assert created.status_code == 201, created.text
        yield client


async def command(
    client: AsyncTestClient[Litestar], body: dict[str, Any], *, headers: dict[str, str], workspace: str = "mine"
) -> Any:
    return await client.post(f"{CANVAS}/commands", params={"workspace": workspace}, json=body, headers=headers)


async def canvas_events(client: AsyncTestClient[Litestar]) -> list[dict[str, Any]]:
    events = (await client.get("/api/tenants/acme/events", params={"limit": 1000}, headers=ADMIN_H)).json()["items"]
    return [e for e in events if e["stream_id"].startswith("canvas-")]


async def test_every_edit_is_an_event_and_a_reload_restores_the_canvas_exactly(
    client: AsyncTestClient[Litestar],
) -> None:
    await ingest_jaffle(client)
    graph_before = (await client.get(f"{SHOP}/graph/outline", headers=VIEWER_H)).content
    empty = await client.get(CANVAS, headers=VIEWER_H)
    assert empty.status_code == 200
    assert empty.json()["version"] == 0
    assert empty.json()["grouping"] is None  # nobody chose one yet: the UI decides by the graph's size
    assert empty.headers["etag"] == '"0"'

    edits: list[dict[str, Any]] = [
        {
            "type": "move_nodes",
            "positions": [{"node_uuid": str(A), "x": 10.5, "y": -20}, {"node_uuid": str(B), "x": 0, "y": 0}],
        },
        {"type": "create_group", "group_id": "g1", "name": "  Finance marts ", "members": [str(B), str(A), str(A)]},
        {"type": "set_collapsed", "keys": ["group:g1", "folder:models/staging"], "collapsed": True},
        {"type": "set_grouping", "grouping": "folder"},
        {"type": "set_viewport", "viewport": {"x": -120.25, "y": 40, "zoom": 0.75}},
        {"type": "rename_group", "group_id": "g1", "name": "Finance"},
        {"type": "move_nodes", "positions": [{"node_uuid": str(A), "x": 99, "y": 98}]},
    ]
    answers = [await command(client, edit, headers=VIEWER_H) for edit in edits]
    assert [a.status_code for a in answers] == [200] * len(edits), answers[-1].text
    view = answers[-1].json()
    assert view["version"] == len(edits)
    assert view["positions"] == {str(A): [99.0, 98.0], str(B): [0.0, 0.0]}
    assert view["groups"] == [{"group_id": "g1", "name": "Finance", "members": [str(A), str(B)]}]
    assert view["collapsed"] == ["folder:models/staging", "group:g1"]
    assert (view["grouping"], view["viewport"]) == ("folder", {"x": -120.25, "y": 40.0, "zoom": 0.75})
    assert view["updated_by"] == "victor"

    reloaded = await client.get(CANVAS, headers=VIEWER_H)
    assert reloaded.json() == view
    assert reloaded.headers["etag"] == f'"{len(edits)}"'
    types = [e["type"] for e in await canvas_events(client)]
    assert types == [
        "canvas.nodes_moved.v1",
        "canvas.group_created.v1",
        "canvas.groups_collapsed.v1",
        "canvas.grouping_changed.v1",
        "canvas.viewport_changed.v1",
        "canvas.group_renamed.v1",
        "canvas.nodes_moved.v1",
    ]
    # The canvas is a view: the graph is byte for byte what it was, and no graph event was appended.
    assert (await client.get(f"{SHOP}/graph/outline", headers=VIEWER_H)).content == graph_before
    assert (await client.get(f"{SHOP}/graph/versions", headers=VIEWER_H)).json()["items"][0]["graph_version"] == 1


async def test_choosing_no_grouping_is_recorded_once(client: AsyncTestClient[Litestar]) -> None:
    none = {"type": "set_grouping", "grouping": "none"}
    assert (await command(client, none, headers=VIEWER_H)).json()["grouping"] == "none"
    assert (await command(client, none, headers=VIEWER_H)).json()["version"] == 1


async def test_an_edit_that_changes_nothing_records_nothing(client: AsyncTestClient[Litestar]) -> None:
    viewport = {"type": "set_viewport", "viewport": {"x": 1, "y": 2, "zoom": 1}}
    assert (await command(client, viewport, headers=VIEWER_H)).json()["version"] == 1
    assert (await command(client, viewport, headers=VIEWER_H)).json()["version"] == 1
    move = {"type": "move_nodes", "positions": [{"node_uuid": str(A), "x": 5, "y": 5}]}
    await command(client, move, headers=VIEWER_H)
    assert (await command(client, move, headers=VIEWER_H)).json()["version"] == 2
    expand = {"type": "set_collapsed", "keys": ["tag:finance"], "collapsed": False}
    assert (await command(client, expand, headers=VIEWER_H)).json()["version"] == 2
    assert len(await canvas_events(client)) == 2


async def test_each_user_has_their_own_canvas_and_the_shared_one_is_edited_by_admins(
    client: AsyncTestClient[Litestar],
) -> None:
    move = {"type": "move_nodes", "positions": [{"node_uuid": str(A), "x": 1, "y": 1}]}
    await command(client, move, headers=VIEWER_H)
    assert (await client.get(CANVAS, headers=APPROVER_H)).json()["positions"] == {}
    assert (await client.get(CANVAS, headers=VIEWER_H)).json()["positions"] == {str(A): [1.0, 1.0]}

    refused = await command(client, move, headers=VIEWER_H, workspace="shared")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    shared = await command(client, move, headers=ADMIN_H, workspace="shared")
    assert shared.status_code == 200
    seen = await client.get(CANVAS, params={"workspace": "shared"}, headers=VIEWER_H)
    assert seen.json()["positions"] == {str(A): [1.0, 1.0]}
    assert seen.json()["workspace"] == "shared"
    # A user's stream id holds a digest of the subject, never the subject itself.
    streams = {e["stream_id"] for e in await canvas_events(client)}
    assert streams == {"canvas-shop.shared", next(s for s in streams if s.startswith("canvas-shop.user_"))}
    assert not any("victor" in s for s in streams)


async def test_if_match_refuses_a_stale_edit_and_writes_nothing(client: AsyncTestClient[Litestar]) -> None:
    first = await command(client, {"type": "set_grouping", "grouping": "tag"}, headers=VIEWER_H)
    assert first.headers["etag"] == '"1"'
    stale = await client.post(
        f"{CANVAS}/commands",
        json={"type": "set_grouping", "grouping": "package"},
        headers={**VIEWER_H, "If-Match": '"0"'},
    )
    assert stale.status_code == 412
    assert (await client.get(CANVAS, headers=VIEWER_H)).json()["grouping"] == "tag"
    fresh = await client.post(
        f"{CANVAS}/commands",
        json={"type": "set_grouping", "grouping": "package"},
        headers={**VIEWER_H, "If-Match": '"1"'},
    )
    assert fresh.json()["grouping"] == "package"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"type": "move_nodes", "positions": []}, 400, "positions"),
        ({"type": "move_nodes", "positions": [{"node_uuid": "not-a-uuid", "x": 0, "y": 0}]}, 400, "node_uuid"),
        ({"type": "move_nodes", "positions": [{"node_uuid": str(A), "x": 1e300, "y": 0}]}, 422, "finite"),
        ({"type": "set_viewport", "viewport": {"x": 0, "y": 0, "zoom": 0}}, 422, "zoom"),
        ({"type": "create_group", "group_id": "../../etc", "name": "x"}, 400, "group_id"),
        ({"type": "create_group", "group_id": "g", "name": "   "}, 422, "blank"),
        ({"type": "create_group", "group_id": "g", "name": "a\u0000b"}, 422, "control"),
        ({"type": "rename_group", "group_id": "nope", "name": "x"}, 404, "nope"),
        ({"type": "set_collapsed", "keys": ["nonsense"], "collapsed": True}, 422, "group key"),
        ({"type": "set_collapsed", "keys": ["group:ghost"], "collapsed": True}, 404, "ghost"),
        ({"type": "drop_table", "name": "graph_nodes"}, 400, "type"),
        ({"type": "set_grouping", "grouping": "folder", "extra": 1}, 400, "extra"),
    ],
)
async def test_bad_commands_get_a_clear_error_and_change_nothing(
    client: AsyncTestClient[Litestar], body: dict[str, Any], status: int, needle: str
) -> None:
    answer = await command(client, body, headers=VIEWER_H)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert needle in answer.text
    assert await canvas_events(client) == []


async def test_a_hostile_group_name_is_kept_verbatim_as_text(client: AsyncTestClient[Litestar]) -> None:
    name = "<img src=x onerror=alert(1)>'; DROP TABLE canvas_groups; --"
    await command(client, {"type": "create_group", "group_id": "h", "name": name}, headers=VIEWER_H)
    assert (await client.get(CANVAS, headers=VIEWER_H)).json()["groups"][0]["name"] == name


async def test_other_tenants_and_unknown_projects_are_refused(client: AsyncTestClient[Litestar]) -> None:
    move = {"type": "move_nodes", "positions": [{"node_uuid": str(A), "x": 1, "y": 1}]}
    assert (await command(client, move, headers=GLOBEX_H)).status_code == 403
    assert (await client.get(CANVAS, headers=GLOBEX_H)).status_code == 403
    unknown = await client.post("/api/tenants/acme/projects/nope/canvas/commands", json=move, headers=VIEWER_H)
    assert unknown.status_code == 404
    assert await canvas_events(client) == []


async def test_a_replay_rebuilds_the_same_canvas(client: AsyncTestClient[Litestar], pg_url: str) -> None:

    for i in range(5):
        await command(
            client, {"type": "move_nodes", "positions": [{"node_uuid": str(A), "x": i, "y": -i}]}, headers=VIEWER_H
        )
    await command(client, {"type": "create_group", "group_id": "g", "name": "G", "members": [str(A)]}, headers=VIEWER_H)
    await command(client, {"type": "set_collapsed", "keys": ["group:g"], "collapsed": True}, headers=VIEWER_H)
    await command(client, {"type": "delete_group", "group_id": "g"}, headers=VIEWER_H)
    before = (await client.get(CANVAS, headers=VIEWER_H)).json()
    store = await PostgresEventStore.connect(pg_url)  # the app's pool lives in the test client's own loop
    try:
        await replay(store, known_projectors().select(["canvas"]))
    finally:
        await store.close()
    after = (await client.get(CANVAS, headers=VIEWER_H)).json()
    assert after == before
    assert (before["groups"], before["collapsed"], before["positions"]) == ([], [], {str(A): [4.0, -4.0]})
