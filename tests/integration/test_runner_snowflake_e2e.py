"""QUERY_TAG through the whole runner: a run of a Snowflake environment, executed by Lockgate's in-process runner
with real dbt-snowflake against the Snowflake stand-in (fakesnow + shim, tests/snowflake.py).

tests/integration/test_runner_snowflake.py proves the macro itself on a hand-made workspace; this test proves
that the runner puts it there with the plan's node_uuids, renders the profile with the run's tag and the
password as a ``DBT_ENV_SECRET_*`` variable, leaves the user's repository alone and keeps the password out of
everything it records. dbt's own query comment (``/* {..., "node_id": ...} */``) in the stand-in's query
history says which node each statement ran for, independently of the tags under test.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest
import snowflake.connector

from contracts.commands.tenancy import CreateEnvironment
from contracts.envelope import RecordedEvent
from contracts.events.runs import PlanCreated, RunFinished, RunStarted
from contracts.events.tenancy import SecretRef
from services.demo.build import generate_artifacts
from services.runner.logs import read_lines
from services.runner.querytag import node_query_tag, run_query_tag
from services.runner.secrets import env_var_name, fingerprint
from services.runner.workspace import tree_digest
from services.tenancy import handlers
from tests.integration.runner_support import ALICE, PROJECT, TENANT, shop
from tests.integration.test_runner_snowflake import (
    DATABASE,
    MATERIALISED,
    PROJECT_FILES,
    READER_TAG,
    SCHEMA,
    TEST_NODE_PREFIX,
    dbt_statements,
)
from tests.snowflake import FakeSnowflake, fakesnow_server

pytestmark = pytest.mark.timeout(300)

ENVIRONMENT = "snow"
SECRET_ID = "shop-snow-password"
PASSWORD = "Sn0w-Pa55word-Never-Logged-7"
RUN_TIMEOUT_S = 240
"""The environment's ``timeout_seconds``: fakesnow can leave dbt retrying forever; the runner stops it."""


@pytest.fixture
def snow(tmp_path: Path) -> Iterator[FakeSnowflake]:
    (tmp_path / "fakesnow").mkdir()
    with fakesnow_server(tmp_path / "fakesnow") as server:
        with snowflake.connector.connect(**server.connection_kwargs(session_parameters={"QUERY_TAG": READER_TAG})) as c:
            c.cursor().execute(f"create database if not exists {DATABASE}")
        yield server


def write_repository(root: Path) -> Path:
    """The user's repository: the small Snowflake project of test_runner_snowflake.py (profile ``lg_snow``)."""
    for name, text in PROJECT_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def snowflake_target(snow: FakeSnowflake) -> dict[str, str | int]:
    """The environment's target: dbt-snowflake's fields pointing at the stand-in, no password (a secret)."""
    return {
        "account": "fakesnow",
        "host": snow.host,
        "port": snow.port,
        "protocol": "http",
        "user": "fake",
        "database": DATABASE,
        "schema": SCHEMA,
        "warehouse": "WH",
        "role": "R",
        "threads": 1,
        "timeout_seconds": RUN_TIMEOUT_S,
    }


E = TypeVar("E")


def of_type(events: list[RecordedEvent], kind: type[E]) -> list[E]:
    return [e.payload for e in events if isinstance(e.payload, kind)]


def materialising(statements: list[str], unique_id: str) -> list[str]:
    """The statements that create or fill ``unique_id``'s relation (a seed's table, a model's table or view)."""
    qualified = re.escape(f"{DATABASE}.{SCHEMA}.{MATERIALISED[unique_id]}".lower())
    pattern = re.compile(rf"\s*(create\b[^(]*|insert\b[^(]*into)\s+{qualified}\b")
    return [text for text in statements if pattern.match(text.lower())]


async def test_a_snowflake_run_tags_every_nodes_queries_with_the_plans_node_uuid(
    pg_url: str, tmp_path: Path, snow: FakeSnowflake, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = write_repository(tmp_path / "repo")
    parse_profile: dict[str, str | int] = {"type": "snowflake", "password": "unused-by-parse"}
    parse_profile |= {k: v for k, v in snowflake_target(snow).items() if k != "timeout_seconds"}
    manifest = generate_artifacts(repo, tmp_path / "parsed", commands=("parse",), profile_output=parse_profile).manifest
    assert manifest is not None
    before = tree_digest(repo)

    monkeypatch.setenv(env_var_name(SECRET_ID), PASSWORD)  # the runner's own secret store: its environment
    async with shop(pg_url, tmp_path, repo, manifest) as s:
        await handlers.handle_create_environment(
            s.store.for_tenant(TENANT),
            CreateEnvironment(
                project_id=PROJECT,
                environment_id=ENVIRONMENT,
                name="Snowflake",
                adapter_type="snowflake",
                target=snowflake_target(snow),
                secrets={"password": SecretRef(secret_id=SECRET_ID, fingerprint=fingerprint(PASSWORD))},
            ),
            ALICE,
        )
        run_id = await s.request("*", env=ENVIRONMENT)
        view = await s.wait_final(run_id, timeout=RUN_TIMEOUT_S + 30)
        events = await s.events(run_id)
        finished = of_type(events, RunFinished)
        assert (view.status, view.reason) == ("success", ""), (view.message, view.deviation)
        assert len(finished) == 1
        assert finished[0].deviation is None
        objects = s.runtime.objects.for_tenant(TENANT)
        stored_log = gzip.decompress(
            await objects.get(next(a.key for a in finished[0].artifacts if a.name == "dbt.log.gz"))
        )
        live = [line.text for line in await read_lines(s.store.pool, TENANT, run_id, 0, 100_000)]

    (plan,) = [created.plan for created in of_type(events, PlanCreated)]
    node_uuids = {item.unique_id: item.node_uuid for item in plan.items if item.action == "RUN"}
    test_nodes = [unique_id for unique_id in node_uuids if unique_id.startswith(TEST_NODE_PREFIX)]
    assert set(node_uuids) == set(MATERIALISED) | set(test_nodes)
    assert len(test_nodes) == 1
    (started,) = of_type(events, RunStarted)
    assert started.commands[0][0] == "build"

    # Every statement of a node after its tag switch carries the node's JSON tag with the plan's node_uuid;
    # the switch itself (and everything outside nodes) runs under the run's tag, which the profile sets at login.
    run_tag = run_query_tag(run_id=run_id, tenant=TENANT, environment=ENVIRONMENT)
    by_node: dict[str, list[tuple[str, str]]] = {}
    outside_nodes: list[str] = []
    for tag, text, comment in dbt_statements(snow):
        if "node_id" in comment:
            by_node.setdefault(comment["node_id"], []).append((tag, text))
        else:
            assert tag == run_tag, text
            outside_nodes.append(text)
    assert set(by_node) == set(node_uuids)
    for unique_id, ((switch_tag, switch_text), *inside) in by_node.items():
        assert switch_text.lower().startswith("alter session set query_tag"), switch_text
        assert switch_tag == run_tag
        assert inside, f"{unique_id} ran nothing after setting its tag"
        expected = {
            "run_id": str(run_id),
            "node_uuid": str(node_uuids[unique_id]),
            "unique_id": unique_id,
            "tenant": TENANT,
            "env": ENVIRONMENT,
        }
        for tag, text in inside:
            assert json.loads(tag) == expected, text
        # ... and its last statement restores the run's tag for what comes next.
        assert inside[-1][1].lower().startswith("alter session set query_tag"), inside[-1][1]
        assert inside[0][0] == node_query_tag(
            run_id=run_id, tenant=TENANT, environment=ENVIRONMENT, unique_id=unique_id, node_uuid=node_uuids[unique_id]
        )
    for unique_id in MATERIALISED:
        assert materialising([text for _, text in by_node[unique_id][1:]], unique_id), unique_id
    assert any(text.lower().startswith("show terse schemas") for text in outside_nodes)

    # The user's repository is untouched (no macro, no target/), and the password is nowhere the runner wrote.
    assert tree_digest(repo) == before
    assert not (repo / "macros").exists()
    assert live, "the run logged nothing: the checks below would prove nothing"
    assert PASSWORD not in stored_log.decode()
    assert stored_log.decode().splitlines() == live
    assert PASSWORD not in "\n".join(live)
    assert PASSWORD.encode() not in b"".join(msgspec.json.encode(e.payload) for e in events)
