"""The ``lockgate`` command, run as a subprocess of the installed entry point against a private
PostgreSQL database (LOCKGATE_DATABASE_URL): create, list, events, bad input and exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

LOCKGATE = str(Path(sys.executable).parent / "lockgate")
FINGERPRINT = "sha256:" + "cd" * 32

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def lockgate(pg_url: str, tmp_path: Path) -> Run:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("LOCKGATE_") and key not in {"PYTHONPATH"}
    }
    env.update({"LOCKGATE_DATABASE_URL": pg_url, "LOCKGATE_HOME": str(tmp_path / "home")})

    def run(*args: str, expect: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [LOCKGATE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if expect is not None:
            assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
        return result

    return run


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_version(lockgate: Run) -> None:
    assert lockgate("--version").stdout.strip() == "lockgate 0.1.0"


def test_create_a_project_and_an_environment_and_list_them_as_json(lockgate: Run) -> None:
    created = as_json(lockgate("project", "create", "shop", "--repo", "/srv/dbt/shop", "--name", "Shop <b>", "--json"))
    assert (created["project_id"], created["name"], created["org_id"], created["version"]) == (
        "shop",
        "Shop <b>",
        "default",
        1,
    )
    assert created["repository"] == {"kind": "local", "location": "/srv/dbt/shop"}

    listed = as_json(lockgate("project", "list", "--json"))
    assert [(p["project_id"], p["status"]) for p in listed] == [("shop", "active")]

    env = as_json(
        lockgate(
            "env", "create", "shop", "prod", "--adapter", "snowflake",
            "--target", "database=ANALYTICS", "--target", "threads=8", "--target", "client_session_keep_alive=true",
            "--secret", f"password=vault:kv/dbt/prod@{FINGERPRINT}", "--production", "--json",
        )
    )  # fmt: skip
    assert env["target"] == {"database": "ANALYTICS", "threads": 8, "client_session_keep_alive": True}
    assert env["secrets"] == {"password": {"secret_id": "vault:kv/dbt/prod", "fingerprint": FINGERPRINT}}
    assert env["production"] is True
    assert [e["environment_id"] for e in as_json(lockgate("env", "list", "shop", "--json"))] == ["prod"]

    table = lockgate("project", "list").stdout
    assert "shop" in table
    assert "/srv/dbt/shop" in table


def test_a_relative_repository_path_is_resolved_on_the_callers_side(lockgate: Run, tmp_path: Path) -> None:
    created = as_json(lockgate("project", "create", "local", "--repo", "demo", "--json"))
    assert created["repository"]["location"] == str((tmp_path / "demo").resolve())


def test_events_list_shows_the_events_as_json(lockgate: Run) -> None:
    lockgate("project", "create", "shop", "--repo", "https://github.com/acme/shop.git", "--ref", "main")
    lockgate("env", "create", "shop", "dev", "--adapter", "duckdb", "--target", "path=/tmp/dev.duckdb")
    page = as_json(lockgate("events", "list", "--json"))
    types = [e["type"] for e in page["items"]]
    assert types == [
        "tenancy.tenant_created.v1",
        "tenancy.org_created.v1",
        "tenancy.project_created.v1",
        "tenancy.environment_created.v1",
    ]
    project_event = page["items"][2]
    assert project_event["metadata"]["actor"]["subject"] == "dev"
    assert project_event["payload"]["repository"] == {
        "kind": "git",
        "location": "https://github.com/acme/shop.git",
        "ref": "main",
    }

    only_project = as_json(lockgate("events", "list", "--stream", "project-shop", "--json"))["items"]
    assert [e["stream_id"] for e in only_project] == ["project-shop"]
    only_env = as_json(lockgate("events", "list", "--type", "tenancy.environment_created.v1", "--json"))["items"]
    assert [e["stream_id"] for e in only_env] == ["environment-shop.dev"]
    after = as_json(lockgate("events", "list", "--after", page["items"][1]["position"], "--json"))["items"]
    assert [e["type"] for e in after] == types[2:]
    first = as_json(lockgate("events", "list", "--limit", "1", "--json"))
    assert len(first["items"]) == 1
    assert first["next_after"] == first["items"][0]["position"]


def test_orgs_and_tenants(lockgate: Run) -> None:
    lockgate("org", "create", "sales", "--name", "Sales")
    assert [o["org_id"] for o in as_json(lockgate("org", "list", "--json"))] == ["default", "sales"]
    lockgate("project", "create", "shop", "--repo", "/srv/shop", "--org", "sales")
    assert as_json(lockgate("project", "list", "--org", "sales", "--json"))[0]["project_id"] == "shop"

    lockgate("tenant", "create", "acme", "--name", "Acme")
    lockgate("project", "create", "shop", "--repo", "/srv/acme", "--tenant", "acme")
    acme = as_json(lockgate("project", "list", "--tenant", "acme", "--json"))
    assert [(p["tenant_id"], p["repository"]["location"]) for p in acme] == [("acme", "/srv/acme")]
    default = as_json(lockgate("project", "list", "--json"))
    assert [(p["tenant_id"], p["repository"]["location"]) for p in default] == [("default", "/srv/shop")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("project", "create", "Bad Id", "--repo", "/srv/x"), "project id 'Bad Id' is not a valid slug"),
        (("project", "create", "x", "--repo", "ext::sh -c id"), "repository location refused"),
        (("project", "create", "x", "--repo", "--upload-pack=touch /tmp/x"), "repository location refused"),
        (("project", "create", "x", "--repo", "/srv/x", "--editable-model", "orders"), "only allowed at roundtrip"),
        (
            ("env", "create", "shop", "dev", "--adapter", "duckdb", "--target", "password=hunter2"),
            "looks like a secret",
        ),
        (("env", "create", "shop", "dev", "--adapter", "duckdb", "--target", "novalue"), "must look like NAME=VALUE"),
        (("events", "list", "--after", "nonsense"), "is not a cursor"),
        (("project", "list", "--tenant", "Not A Slug"), "tenant id 'Not A Slug' is not a valid slug"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(lockgate: Run, args: tuple[str, ...], message: str) -> None:
    result = lockgate(*args, expect=2)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lockgate: error: ")
    assert message in lines[0]
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("project", "create", "x"), "the following arguments are required: --repo"),
        (("project", "create", "x", "--repo", "/srv/x", "--roundtrip", "3"), "roundtrip level must be 0, 1 or 2"),
        (("events", "list", "--limit", "0"), "limit must be in"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_usage_errors_exit_2(lockgate: Run, args: tuple[str, ...], message: str) -> None:
    assert message in lockgate(*args, expect=2).stderr


def test_conflicts_and_unknown_targets_exit_1(lockgate: Run) -> None:
    lockgate("project", "create", "shop", "--repo", "/srv/shop")
    duplicate = lockgate("project", "create", "shop", "--repo", "/srv/other", expect=1)
    assert duplicate.stderr.strip() == "lockgate: error: project 'shop' already exists"
    unknown = lockgate("env", "list", "ghost", expect=1)
    assert unknown.stderr.strip() == "lockgate: error: project 'ghost' not found"
    no_org = lockgate("project", "create", "other", "--repo", "/srv/x", "--org", "ghost", expect=1)
    assert "org 'ghost' not found" in no_org.stderr
    no_tenant = lockgate("project", "list", "--tenant", "ghost", "--json")
    assert as_json(no_tenant) == []
    assert [p["repository"]["location"] for p in as_json(lockgate("project", "list", "--json"))] == ["/srv/shop"]


def test_serve_refuses_a_public_host_while_the_dev_principal_is_enabled(lockgate: Run) -> None:
    result = lockgate("serve", "--host", "0.0.0.0", "--port", "8999", expect=2)  # noqa: S104 - the point of the test
    assert "refusing to serve on '0.0.0.0'" in result.stderr
    assert "development principal" in result.stderr


def test_replay_runs_and_refuses_an_unknown_projection(lockgate: Run) -> None:
    lockgate("project", "create", "shop", "--repo", "/srv/shop")
    report = as_json(lockgate("replay", "--json"))
    assert report["events"] >= 0
    unknown = lockgate("replay", "--projection", "nope", expect=1)
    assert "no projection named 'nope'" in unknown.stderr
    assert [p["project_id"] for p in as_json(lockgate("project", "list", "--json"))] == ["shop"]
