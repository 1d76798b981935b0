"""``lockgate select``, ``plan``, ``run``, ``approve``, ``reject``, ``cancel`` and ``runs`` as subprocesses of the
installed entry point against a private PostgreSQL database; the execution side (``runs show/logs/cancel``,
``run --wait`` exit statuses) on runs whose runner's events are appended by hand."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.runner.logs import LiveLog
from services.shared.eventstore.postgres import PostgresEventStore
from tests.corpus import corpus_path
from tests.integration.test_cli import LOCKGATE, Run, as_json, lockgate  # noqa: F401 - the fixture
from tests.integration.test_runs_execution_readmodel import ORDERS, STG, T0, RunScript

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


# -- execution: runs list/show/logs/cancel and run --wait on runs whose runner's events are appended by hand ------


def lockgate_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of the ``lockgate`` fixture, for a command the test runs in the background."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOCKGATE_") and key != "PYTHONPATH"}
    env.update({"LOCKGATE_DATABASE_URL": pg_url, "LOCKGATE_HOME": str(tmp_path / "home")})
    return env


def seed(pg_url: str, work: Callable[[PostgresEventStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await PostgresEventStore.connect(pg_url, migrate=False)
        try:
            await work(store)
        finally:
            await store.close()

    asyncio.run(main())


def script_of(store: PostgresEventStore, run: dict[str, Any], tenant: str = "default") -> RunScript:
    script = RunScript(store, tenant=tenant, run_id=uuid.UUID(run["run_id"]))
    script.version = run["version"]
    return script


def test_runs_list_show_logs_and_cancel_of_executed_runs(lockgate: Run, pg_url: str) -> None:  # noqa: F811
    setup_project(lockgate)
    tenant = "default"  # the CLI acts in the configured default tenant
    failed = as_json(lockgate("run", "shop", "--env", "dev", "--select", "orders", "--json"))
    running = as_json(lockgate("run", "shop", "--env", "dev", "--select", "stg_orders", "--json"))

    async def execute(store: PostgresEventStore) -> None:
        run = script_of(store, failed, tenant)
        await run.started()
        await run.node(STG, "success", rows_affected=7)
        await run.node(ORDERS, "error", at=T0 + timedelta(seconds=2), message="Division by zero")
        async with LiveLog(store.pool, tenant, run.run_id) as live:
            for i in range(1, 6):
                live.add(f"dbt says {i}")
        await run.finished("failed", reason="node_failed", message="model.shop.orders failed", log_lines=live.lines)
        await script_of(store, running, tenant).started()

    seed(pg_url, execute)
    shown = as_json(lockgate("runs", "show", failed["run_id"], "--json"))
    assert (shown["run"]["status"], shown["run"]["reason"]) == ("failed", "node_failed")
    assert [(n["unique_id"], n["status"]) for n in shown["nodes"]] == [(STG, "success"), (ORDERS, "error")]
    human = lockgate("runs", "show", failed["run_id"]).stdout
    assert f"run {failed['run_id']}: failed" in human
    assert "node_failed: model.shop.orders failed" in human
    assert re.search(rf"{re.escape(ORDERS)}\s+error\s+.*Division by zero", human), human
    assert lockgate("runs", "logs", failed["run_id"]).stdout.splitlines() == [f"dbt says {i}" for i in range(1, 6)]
    assert lockgate("runs", "logs", failed["run_id"], "--from", "3").stdout.splitlines() == ["dbt says 4", "dbt says 5"]
    followed = lockgate("runs", "logs", failed["run_id"], "--follow", "--from", "4", "--json").stdout.splitlines()
    assert [json.loads(line) for line in followed] == [{"line": 5, "text": "dbt says 5"}]  # ends: the run ended

    listed = as_json(lockgate("runs", "list", "--env", "dev", "--status", "failed", "--json"))
    assert [r["run_id"] for r in listed] == [failed["run_id"]]
    assert as_json(lockgate("runs", "list", "--since", "1h", "--actor", "nobody", "--json")) == []
    assert "duration" in lockgate("runs", "list", "--since", "yesterday", expect=2).stderr

    canceled = lockgate("runs", "cancel", running["run_id"], "--reason", "enough")
    assert "cancel requested" in canceled.stdout
    asked = as_json(lockgate("runs", "show", running["run_id"], "--json"))["run"]
    assert (asked["status"], asked["cancel_reason"]) == ("running", "enough")


def test_run_wait_exit_statuses(lockgate: Run, pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    # This test plays the runner itself (hand-appended events): no runner may start in the CLI's process.
    (tmp_path / "lockgate.toml").write_text("[lockgate]\nrunner_in_process = false\n")
    setup_project(lockgate)
    waiting = lockgate("run", "shop", "--env", "prod", "--select", "orders", "--wait", expect=3)
    assert "awaits approval" in waiting.stderr
    assert (
        "--timeout only applies with --wait"
        in lockgate("run", "shop", "--env", "dev", "--timeout", "1", expect=2).stderr
    )
    stuck = lockgate("run", "shop", "--env", "dev", "--select", "orders", "--wait", "--timeout", "1", expect=4)
    assert "still approved after 1.0 s" in stuck.stderr

    for final, code in (("warning", 0), ("canceled", 1)):
        waiter = subprocess.Popen(
            [LOCKGATE, "run", "shop", "--env", "dev", "--select", "orders", "--wait"],
            cwd=tmp_path,
            env=lockgate_env(pg_url, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert waiter.stdout is not None
            first = waiter.stdout.readline()  # "run <id>: approved (...)": requested, now waiting
            requested = re.match(r"run ([0-9a-f-]{36}): approved", first)
            assert requested is not None, first
            run_id = requested[1]

            async def execute(store: PostgresEventStore, run_id: str = run_id, final: str = final) -> None:
                stream = await store.for_tenant("default").read_stream(f"run-{run_id}")
                run = script_of(store, {"run_id": run_id, "version": stream[-1].version})
                await run.started()
                async with LiveLog(store.pool, "default", run.run_id) as live:
                    live.add("hello from dbt")
                await run.finished(final, log_lines=live.lines)

            seed(pg_url, execute)
            out, err = waiter.communicate(timeout=30)
        finally:
            waiter.kill()
            waiter.wait()
        assert waiter.returncode == code, (final, out, err)
        assert out.splitlines()[-2:] == ["hello from dbt", f"run {run_id}: {final}"]  # its log, then its end
