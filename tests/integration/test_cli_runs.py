"""``lockgate select``, ``plan``, ``run``, ``approve``, ``reject``, ``cancel`` and ``runs`` as subprocesses of the
installed entry point against a private PostgreSQL database."""

from __future__ import annotations

from tests.corpus import corpus_path
from tests.integration.test_cli import Run, as_json, lockgate  # noqa: F401 - the fixture

JAFFLE = "jaffle_shop_duckdb"


def setup_project(lockgate: Run) -> None:  # noqa: F811
    lockgate("project", "create", "shop", "--repo", "/srv/dbt/shop")
    lockgate("env", "create", "shop", "dev", "--adapter", "duckdb")
    lockgate("env", "create", "shop", "prod", "--adapter", "duckdb", "--production")
    base = corpus_path(JAFFLE, "state_modified", "manifest.base.json")
    lockgate("ingest", "shop", "--manifest", str(base), "--run-results", str(corpus_path(JAFFLE, "run_results.json")))


def test_select_plan_and_the_lifecycle(lockgate: Run) -> None:  # noqa: F811
    setup_project(lockgate)
    assert as_json(lockgate("select", "shop", "stg_orders", "--json"))[0] == "model.jaffle_shop.stg_orders"
    assert lockgate("select", "shop", "--select", "tag:none_such").stdout == ""
    human_plan = lockgate("plan", "shop", "--env", "dev", "--select", "orders").stdout
    assert "model.jaffle_shop.orders" in human_plan
    plan = as_json(lockgate("plan", "shop", "--env", "prod", "--select", "orders", "--json"))
    assert plan["plan"]["approvals"]
    assert len(plan["plan"]["plan_hash"]) == 64

    dev = as_json(lockgate("run", "shop", "--env", "dev", "--select", "orders", "--json"))
    assert dev["status"] == "approved"
    prod = as_json(lockgate("run", "shop", "--env", "prod", "--select", "orders", "--json"))
    assert prod["status"] == "awaiting_approval"
    own = lockgate("approve", prod["run_id"], expect=1)
    assert "separation of duties" in own.stderr
    assert "--comment" in lockgate("reject", prod["run_id"], expect=2).stderr
    rejected = as_json(lockgate("reject", prod["run_id"], "--comment", "not today", "--json"))
    assert (rejected["status"], rejected["comment"]) == ("rejected", "not today")
    assert "cannot be canceled" in lockgate("cancel", prod["run_id"], expect=1).stderr

    shown = as_json(lockgate("runs", "show", dev["run_id"], "--json"))
    assert shown["run"]["status"] == "approved"
    assert shown["plan"]["plan_hash"] == dev["plan_hash"]
    listed = as_json(lockgate("runs", "list", "--json"))
    assert {r["run_id"] for r in listed} == {dev["run_id"], prod["run_id"]}
    assert "not a run id" in lockgate("runs", "show", "nope", expect=2).stderr


def test_bad_selection_and_unknown_environment_are_clear_errors(lockgate: Run) -> None:  # noqa: F811
    setup_project(lockgate)
    bad = lockgate("select", "shop", "nosuch:x", expect=2)
    assert "unknown selection method 'nosuch'" in bad.stderr
    assert "nope" in lockgate("plan", "shop", "--env", "nope", "--select", "orders", expect=1).stderr
    state = lockgate("select", "shop", "state:modified", expect=2)
    assert "state" in state.stderr
