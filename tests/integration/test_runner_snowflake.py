"""QUERY_TAG per node with real dbt-snowflake against the Snowflake stand-in (fakesnow + shim, tests/snowflake.py).

The project is copied to a workspace, the macro file is added there only, and ``dbt build`` runs in the copy;
the stand-in's ``SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY`` is then read with the real connector. dbt's own
query comment (``/* {"app": "dbt", ..., "node_id": ...} */``) says which node each statement ran for, which
gives an account of every statement independent of the tags under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector

from services.runner.querytag import MACRO_NAME, query_tag_macro, run_query_tag
from tests.snowflake import QUERY_HISTORY, FakeSnowflake, fakesnow_server

DBT_TIMEOUT_S = 120
DATABASE = "ANALYTICS"
SCHEMA = "DBT_CI"
TENANT = 'acme\'s "eu" \\ team'
"""Not a slug on purpose: a quote, double quotes and a backslash must survive Jinja, JSON and SQL quoting."""
ENVIRONMENT = "prod"
READER_TAG = "lockgate-test-reader"

PROJECT_FILES = {
    "dbt_project.yml": (
        "name: lg_snow\nversion: '1.0'\nconfig-version: 2\nprofile: lg_snow\n"
        "models:\n  lg_snow:\n    +materialized: table\n"
    ),
    "seeds/raw_orders.csv": "id,customer,amount\n1,ann,5\n2,bob,20\n3,ann,30\n",
    "models/orders.sql": "select id, customer, amount from {{ ref('raw_orders') }}\n",
    "models/customer_revenue.sql": (
        "select customer, sum(amount) as revenue from {{ ref('orders') }} group by customer\n"
    ),
    "models/big_orders.sql": "{{ config(materialized='view') }}\nselect * from {{ ref('orders') }} where amount > 10\n",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [not_null]\n"
    ),
}
MATERIALISED = {
    "seed.lg_snow.raw_orders": "raw_orders",
    "model.lg_snow.orders": "orders",
    "model.lg_snow.customer_revenue": "customer_revenue",
    "model.lg_snow.big_orders": "big_orders",
}
"""The nodes the runner names (the test's unique_id has dbt's hash suffix: it goes unnamed, node_uuid null)."""
TEST_NODE_PREFIX = "test.lg_snow.not_null_orders_id."
_TRAILING_COMMENT = re.compile(r"/\*\s*(\{.*\})\s*\*/\s*;?\s*$", re.S)


@pytest.fixture(scope="module")
def snow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSnowflake]:
    with fakesnow_server(tmp_path_factory.mktemp("fakesnow")) as server:
        with snowflake.connector.connect(**server.connection_kwargs(session_parameters={"QUERY_TAG": READER_TAG})) as c:
            c.cursor().execute(f"create database if not exists {DATABASE}")
        yield server


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def write_profile(directory: Path, snow: FakeSnowflake, query_tag: str) -> None:
    output = {
        "type": "snowflake",
        "account": "fakesnow",
        "host": snow.host,
        "port": snow.port,
        "protocol": "http",
        "user": "fake",
        "password": "fake",
        "database": DATABASE,
        "schema": SCHEMA,
        "warehouse": "WH",
        "role": "R",
        "threads": 1,
        "query_tag": query_tag,
    }
    profile = {"lg_snow": {"target": "dev", "outputs": {"dev": output}}}
    (directory / "profiles.yml").write_text(json.dumps(profile))  # JSON is YAML


def dbt_build(project: Path, profiles: Path, logs: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "DBT_USE_COLORS": "false",
        "DO_NOT_TRACK": "1",
    }
    argv = ["timeout", "-k", "5", str(DBT_TIMEOUT_S), sys.executable, "-m", "dbt.cli.main", "build"]
    argv += ["--project-dir", str(project), "--profiles-dir", str(profiles), "--log-path", str(logs)]
    # fakesnow can leave dbt retrying forever (FEASIBILITY.md §1): `timeout` and the subprocess timeout bound it.
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=DBT_TIMEOUT_S + 15, check=False)


def dbt_statements(snow: FakeSnowflake) -> list[tuple[str, str, dict[str, Any]]]:
    """(query_tag, query_text, dbt's query comment) of every statement dbt ran, in order."""
    with snowflake.connector.connect(**snow.connection_kwargs(session_parameters={"QUERY_TAG": READER_TAG})) as c:
        cursor = c.cursor()
        cursor.execute(f"select query_tag, query_text from {QUERY_HISTORY} order by start_time, end_time")
        rows = cursor.fetchall()
    statements = []
    for tag, text in rows:
        if (comment := _TRAILING_COMMENT.search(text)) is None:
            continue  # the stand-in's and this test's own statements
        statements.append((tag, text, json.loads(comment.group(1))))
    return statements


def test_every_statement_of_a_node_carries_its_json_tag_and_the_rest_keep_the_profile_tag(
    snow: FakeSnowflake, tmp_path: Path
) -> None:
    repository = tmp_path / "repository"
    for name, text in PROJECT_FILES.items():
        (repository / name).parent.mkdir(parents=True, exist_ok=True)
        (repository / name).write_text(text)
    before = tree_digest(repository)

    run_id = uuid.uuid4()
    nodes = {unique_id: uuid.uuid4() for unique_id in MATERIALISED}
    profile_tag = run_query_tag(run_id=run_id, tenant=TENANT, environment=ENVIRONMENT)
    workspace = tmp_path / "workspace"
    shutil.copytree(repository, workspace)
    macro = workspace / "macros" / "lockgate" / f"{MACRO_NAME}.sql"
    macro.parent.mkdir(parents=True)
    macro.write_text(
        query_tag_macro(run_id=run_id, tenant=TENANT, environment=ENVIRONMENT, nodes=nodes, session_tag=profile_tag)
    )
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    write_profile(profiles, snow, profile_tag)

    result = dbt_build(workspace, profiles, tmp_path / "logs")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "PASS=5" in result.stdout

    def expected_tag(unique_id: str) -> dict[str, Any]:
        node_uuid = nodes.get(unique_id)
        return {
            "run_id": str(run_id),
            "node_uuid": None if node_uuid is None else str(node_uuid),
            "unique_id": unique_id,
            "tenant": TENANT,
            "env": ENVIRONMENT,
        }

    statements = dbt_statements(snow)
    by_node: dict[str, list[tuple[str, str]]] = {}
    outside_nodes = []
    for tag, text, comment in statements:
        if "node_id" in comment:
            by_node.setdefault(comment["node_id"], []).append((tag, text))
        else:
            outside_nodes.append((tag, text))

    test_nodes = [unique_id for unique_id in by_node if unique_id.startswith(TEST_NODE_PREFIX)]
    assert len(test_nodes) == 1
    assert set(by_node) == set(MATERIALISED) | set(test_nodes)
    for unique_id, node_statements in by_node.items():
        (switch_tag, switch_text), *inside = node_statements
        # The node's first statement switches to its tag, still under the profile's; all others carry the node's.
        assert switch_text.lower().startswith("alter session set query_tag"), switch_text
        assert switch_tag == profile_tag
        assert inside, f"{unique_id} ran nothing after setting its tag"
        for tag, text in inside:
            assert json.loads(tag) == expected_tag(unique_id), text
        # ... and its last one restores the profile's tag for what comes next.
        assert inside[-1][1].lower().startswith("alter session set query_tag"), inside[-1][1]

    for unique_id, relation in MATERIALISED.items():
        qualified = f"{DATABASE}.{SCHEMA}.{relation}".lower()
        materialising = [
            text
            for _, text in by_node[unique_id]
            if re.match(rf"\s*(create\b[^(]*|insert\b[^(]*into)\s+{re.escape(qualified)}\b", text.lower())
        ]
        assert materialising, f"no create/insert of {qualified} among {unique_id}'s statements"
    (test_node,) = test_nodes
    assert any("dbt_internal_test" in text for _, text in by_node[test_node])

    assert outside_nodes, "dbt ran no statement outside a node (schema and catalog look-ups expected)"
    assert {tag for tag, _ in outside_nodes} == {profile_tag}
    assert any(text.lower().startswith("show terse schemas") for _, text in outside_nodes)

    assert tree_digest(repository) == before
    assert not (repository / "macros").exists()
    assert not (repository / "target").exists()


def test_the_stand_in_keeps_session_tags_and_history_and_takes_dbts_temp_relations_and_merge(
    snow: FakeSnowflake,
) -> None:
    """What the test above relies on from the stand-in, and the shim's fixes for dbt's incremental SQL."""
    tag = 'it\'s a \\ "tag"'
    literal = "'" + tag.replace("\\", "\\\\").replace("'", "''") + "'"
    with snowflake.connector.connect(**snow.connection_kwargs(session_parameters={"QUERY_TAG": "login"})) as c:
        cursor = c.cursor()

        def one(sql: str) -> Any:
            cursor.execute(sql)
            return cursor.fetchall()

        assert one("show parameters like 'query_tag' in session")[0][:2] == ("QUERY_TAG", "login")
        one(f"alter session set query_tag = {literal} /* a trailing comment */")
        assert one("show parameters like 'query_tag'")[0][1] == tag
        one("create schema if not exists ANALYTICS.STAND_IN")
        one("create or replace transient table ANALYTICS.STAND_IN.target as select 1 as id, 'a' as v")
        one("create or replace temporary view ANALYTICS.STAND_IN.target__tmp as select 1 as id, 'b' as v")
        one("create or replace temporary table ANALYTICS.STAND_IN.target__tmp as select 1 as id, 'b' as v")
        one("insert into ANALYTICS.STAND_IN.target__tmp values (2, 'c')")
        one(
            "merge into ANALYTICS.STAND_IN.target as DBT_INTERNAL_DEST"
            " using ANALYTICS.STAND_IN.target__tmp as DBT_INTERNAL_SOURCE"
            " on (DBT_INTERNAL_SOURCE.id = DBT_INTERNAL_DEST.id)"
            ' when matched then update set "ID" = DBT_INTERNAL_SOURCE."ID", "V" = DBT_INTERNAL_SOURCE."V"'
            ' when not matched then insert ("ID", "V") values ("ID", "V")'
        )
        assert one("select id, v from ANALYTICS.STAND_IN.target order by id") == [(1, "b"), (2, "c")]
        with pytest.raises(snowflake.connector.ProgrammingError):
            one("select * from ANALYTICS.STAND_IN.no_such_table")
        one("alter session unset query_tag")
        assert one("show parameters like 'query_tag' in session")[0][1] == ""
        history = one(
            f"select query_text, query_tag, execution_status from {QUERY_HISTORY}"
            " where query_text like '%STAND_IN%' or query_text like 'alter session%' order by start_time"
        )
    by_text = {text: (recorded_tag, status) for text, recorded_tag, status in history}
    assert by_text["create schema if not exists ANALYTICS.STAND_IN"] == (tag, "SUCCESS")
    assert by_text["select * from ANALYTICS.STAND_IN.no_such_table"] == (tag, "FAIL")
    assert by_text[f"alter session set query_tag = {literal} /* a trailing comment */"] == ("login", "SUCCESS")
    assert by_text["alter session unset query_tag"] == (tag, "SUCCESS")
