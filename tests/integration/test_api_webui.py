"""The web UI as ``lockgate serve`` serves it: the built files at /, index.html for the UI's own routes, a year's
cache for hashed assets, never a file outside the build, API paths left to the API, and a page that says how to
build the UI when it is not built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.api_support import ADMIN_H, PROBLEM, api_client

INDEX = b"<!doctype html><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_bytes(b"console.log(1)")
    (root / "assets" / "codicon-x.ttf").write_bytes(b"\x00\x01")
    (tmp_path / "secret.txt").write_text("not for the web")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
async def client(pg_url: str, tmp_path: Path, dist: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url, home=tmp_path / "home", ui_dir=dist) as client:
        yield client


async def test_the_ui_is_served_at_the_root_and_on_its_own_routes(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/", "/runs", "/runs/0b1f2d1c-aaaa-4bbb-8ccc-0123456789ab", "/projects/demo/docs/model.a.b%2Fc"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.content == INDEX
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_for_a_year_with_their_type(client: AsyncTestClient[Litestar]) -> None:
    js = await client.get("/assets/index-abc123.js")
    assert (js.status_code, js.content) == (200, b"console.log(1)")
    assert js.headers["content-type"].startswith("text/javascript")
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (await client.get("/assets/codicon-x.ttf")).headers["content-type"] == "font/ttf"


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/escape", "/a%00b"]
)
async def test_nothing_outside_the_build_is_ever_sent(client: AsyncTestClient[Litestar], path: str) -> None:
    answer = await client.get(path)
    assert b"not for the web" not in answer.content
    assert answer.status_code in (200, 400, 404)


async def test_api_paths_stay_api_paths(client: AsyncTestClient[Litestar]) -> None:
    unknown = await client.get("/api/nope", headers=ADMIN_H)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert (await client.get("/api/me", headers=ADMIN_H)).json()["subject"] == "alice"
    assert (await client.get("/schema/openapi.json")).json()["info"]["title"] == "Lockgate"
    assert (await client.get("/healthz")).status_code == 200


async def test_an_unbuilt_ui_says_how_to_build_it(pg_url: str, tmp_path: Path) -> None:
    async with api_client(pg_url, home=tmp_path / "home", ui_dir=tmp_path / "nothing") as client:
        answer = await client.get("/runs")
        assert answer.status_code == 200
        assert b"make ui" in answer.content
