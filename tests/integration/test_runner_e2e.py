"""The runner end to end with real dbt (dbt-duckdb) on real PostgreSQL: approved plans executed exactly,
node events in order, artifacts stored and ingested as run history, failing and warn-severity tests, skipped
plan items left untouched in the warehouse, cancel mid-run, a memory limit that kills, redaction of a secret
everywhere it could leak, and a runner killed mid-run whose run is taken over by another."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from contracts.envelope import Actor, RecordedEvent
from contracts.events.runs import (
    NodeFinished,
    NodeStarted,
    RunCancelRequested,
    RunFinished,
    RunRequeued,
    RunStarted,
)
from contracts.events.tenancy import SecretRef
from projections.graph import queries as graph_queries
from services.ingestion.readmodel import graph_read_model
from services.runner.factory import build_runner
from services.runner.isolation.cgroups import CgroupHost
from services.runner.leases import Leases
from services.runner.logs import read_lines
from services.runner.secrets import env_var_name, fingerprint
from services.runner.worker import RunnerOptions
from services.runner.workspace import tree_digest
from services.runs.readmodel import runs_read_model
from services.shared.commands import CommandContext
from tests.integration.runner_support import (
    DEMO_ONLY,
    EXTRA,
    SECRET,
    TENANT,
    Shop,
    add_environment,
    make_repository,
    parse_manifest,
    shop,
)

pytestmark = pytest.mark.timeout(600)

BOB = CommandContext(actor=Actor(subject="bob", roles=("admin",)), correlation_id=uuid.uuid4())


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The user's repository and its manifest (one real ``dbt parse`` for the whole module)."""
    root = tmp_path_factory.mktemp("user")
    repo = make_repository(root)
    return repo, parse_manifest(repo, root / "artifacts")


def finished_of(events: Sequence[RecordedEvent]) -> RunFinished:
    last = [e.payload for e in events if isinstance(e.payload, RunFinished)]
    assert len(last) == 1
    return last[0]


def table_rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).fetchall()


async def test_the_demo_project_runs_end_to_end_and_a_skipping_plan_leaves_skipped_nodes_untouched(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path]
) -> None:
    source, _ = user_repo
    repo = tmp_path / "repo"  # this test edits its repository later: its own copy
    shutil.copytree(source, repo)
    manifest = parse_manifest(repo, tmp_path / "v1")
    before = tree_digest(repo)
    async with shop(pg_url, tmp_path, repo, manifest) as s:
        run_id = await s.request("*", exclude=DEMO_ONLY)
        view = await s.wait_final(run_id)
        assert tree_digest(repo) == before  # roundtrip level 0: the user's repository is never modified

        # The demo has one warn-severity test: the run ends `warning`, every planned node executed once.
        assert (view.status, view.reason) == ("warning", "")
        events = await s.events(run_id)
        plan = next(e.payload.plan for e in events if hasattr(e.payload, "plan"))
        planned = {item.unique_id for item in plan.items if item.action == "RUN"}
        started = [e.payload for e in events if isinstance(e.payload, RunStarted)]
        assert len(started) == 1
        assert started[0].attempt == 1
        assert started[0].commands[0][0] == "build"
        assert all("$WORKSPACE" in arg or "/" not in arg for arg in started[0].commands[0])
        order = [
            (type(e.payload).__name__, e.payload.unique_id)
            for e in events
            if isinstance(e.payload, NodeStarted | NodeFinished)
        ]
        finished_nodes = {uid for kind, uid in order if kind == "NodeFinished"}
        assert finished_nodes == planned
        for uid in planned:  # each node: one start, then one finish
            assert [kind for kind, u in order if u == uid] == ["NodeStarted", "NodeFinished"]
        statuses = {e.payload.unique_id: e.payload.status for e in events if isinstance(e.payload, NodeFinished)}
        warned = [uid for uid in statuses if "not_null_stg_shop__customers_country" in uid]
        assert [statuses[uid] for uid in warned] == ["warn"]
        finished = finished_of(events)
        assert finished.deviation is None
        assert finished.log_lines > 0
        assert type(events[-1].payload) is RunFinished  # nothing after the end

        # Artifacts: each invocation's run_results.json (together: exactly the planned nodes) and manifest.json
        # (one invocation per wave: the exposure's ancestors first), and the whole log, all stored.
        invocations = len(started[0].commands)
        artifacts = {a.name: a for a in finished.artifacts}
        assert invocations == 2
        assert set(artifacts) == {f"{i}-{name}" for i in (1, 2) for name in ("run_results.json", "manifest.json")} | {
            "dbt.log.gz"
        }
        objects = s.runtime.objects.for_tenant(TENANT)
        reported: set[str] = set()
        for i in (1, 2):
            results = json.loads(await objects.get(artifacts[f"{i}-run_results.json"].key))
            reported |= {r["unique_id"] for r in results["results"]}
        assert reported == planned
        stored_log = gzip.decompress(await objects.get(artifacts["dbt.log.gz"].key)).decode().splitlines()
        live = await read_lines(s.store.pool, TENANT, run_id, 0, 100_000)
        assert [line.text for line in live] == stored_log
        assert len(stored_log) == finished.log_lines

        # Run history was ingested: the graph read model knows each node's last status from this run.
        model = graph_read_model(s.store)
        await model.catch_up()
        last = await graph_queries.last_statuses(model.db, TENANT, "shop")
        assert last["model.lockgate_demo.dim_plans"] == "success"

        # The read model shows the run with its node timeline.
        nodes = await _nodes(s, run_id)
        assert {n for n, _ in nodes} == planned
        assert table_rows(s.warehouse, "select count(*) from dim_customers")[0][0] > 0

        # Fidelity: a marker row in a table the next plan SKIPs survives; the one in a table it RUNs is gone.
        with duckdb.connect(str(s.warehouse)) as conn:
            conn.execute("insert into dim_customers (customer_id) select max(customer_id) + 1000 from dim_customers")
            conn.execute("insert into dim_plans (plan_id) values ('lockgate-marker')")
        sql = repo / "models" / "marts" / "dim_plans.sql"
        sql.write_text(sql.read_text() + "\n-- edited\n")
        await s.ingest(parse_manifest(repo, tmp_path / "v2"))
        second = await s.request("*", exclude=DEMO_ONLY)  # state: by default the last good run's graph (1)
        view = await s.wait_final(second)
        assert view.status in {"success", "warning"}, (view.reason, view.message, view.deviation)
        events = await s.events(second)
        plan = next(e.payload.plan for e in events if hasattr(e.payload, "plan"))
        assert (plan.inputs.graph_version, plan.inputs.state_reference) == (2, 1)
        actions = {item.unique_id: item.action for item in plan.items}
        assert actions["model.lockgate_demo.dim_plans"] == "RUN"
        assert actions["model.lockgate_demo.dim_customers"] == "SKIP"
        touched = {e.payload.unique_id for e in events if isinstance(e.payload, NodeStarted | NodeFinished)}
        assert touched == {uid for uid, action in actions.items() if action == "RUN"}
        assert finished_of(events).deviation is None
        assert table_rows(s.warehouse, "select count(*) from dim_plans where plan_id = 'lockgate-marker'")[0][0] == 0
        assert (
            table_rows(
                s.warehouse,
                "select count(*) from dim_customers where customer_id = (select max(customer_id) from dim_customers)",
            )[0][0]
            == 1
        )
        max_id = table_rows(s.warehouse, "select max(customer_id) from dim_customers")[0][0]
        assert isinstance(max_id, int)
        assert max_id > 1000


async def _nodes(s: Shop, run_id: uuid.UUID) -> list[tuple[str, str]]:
    return [(n.unique_id, n.status) for n in await runs_read_model(s.store).nodes(TENANT, run_id)]


async def test_a_failing_test_fails_the_run_and_skips_what_depends_on_it(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path]
) -> None:
    repo, manifest = user_repo
    async with shop(pg_url, tmp_path, repo, manifest) as s:
        run_id = await s.request("+dim_plans")
        view = await s.wait_final(run_id)
        assert (view.status, view.reason) == ("failed", "node_failed")
        assert "assert_no_plans" in (view.message or "")
        statuses = {
            e.payload.unique_id: e.payload.status for e in await s.events(run_id) if isinstance(e.payload, NodeFinished)
        }
        failing = next(u for u in statuses if u.endswith("assert_no_plans"))
        assert statuses[failing] == "fail", statuses
        assert statuses["model.lockgate_demo.stg_shop__plans"] == "success"
        # dim_plans (a later wave: exposures' ancestors go first) never ran: recorded as skipped, with why.
        skipped = next(
            e.payload
            for e in await s.events(run_id)
            if isinstance(e.payload, NodeFinished) and e.payload.unique_id == "model.lockgate_demo.dim_plans"
        )
        assert (skipped.status, skipped.message) == ("skipped", "not run: an earlier invocation of this run failed")


async def test_cancel_interrupts_dbt_and_ends_the_run_canceled(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path]
) -> None:
    repo, manifest = user_repo
    async with shop(pg_url, tmp_path, repo, manifest) as s:
        run_id = await s.request(f"path:models/{EXTRA}/slow_long.sql")
        await s.wait_for(run_id, NodeStarted)
        tenant = s.store.for_tenant(TENANT)
        outcome = await s.service.cancel(tenant, run_id, BOB, reason="wrong branch")
        assert outcome.status == "running"  # a request: the runner ends it
        view = await s.wait_final(run_id, timeout=60)
        assert (view.status, view.reason) == ("canceled", "canceled")
        assert "bob" in (view.message or "")
        assert "wrong branch" in (view.message or "")
        events = await s.events(run_id)
        assert any(isinstance(e.payload, RunCancelRequested) for e in events)
        finished_at = finished_of(events).finished_at
        requested_at = next(e.occurred_at for e in events if isinstance(e.payload, RunCancelRequested))
        assert (finished_at - requested_at).total_seconds() < 30  # interrupted, not run to its end


async def test_a_memory_limit_kills_the_run_as_out_of_memory(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path]
) -> None:
    if CgroupHost.detect() is None:
        pytest.skip(
            "no writable cgroup here: a memory limit that kills needs cgroups (rlimits only make allocations fail)"
        )
    repo, manifest = user_repo
    async with shop(pg_url, tmp_path, repo, manifest) as s:
        await add_environment(s.runtime, "tiny", {"path": str(tmp_path / "tiny.duckdb"), "memory_limit_mb": 60})
        run_id = await s.request("stg_shop__plans", env="tiny")
        view = await s.wait_final(run_id)
        assert (view.status, view.reason) == ("failed", "out_of_memory")
        assert "60 MiB" in (view.message or "")


async def test_a_secret_never_leaves_the_runner(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, manifest = user_repo
    monkeypatch.setenv(env_var_name("shop-leaky-password"), SECRET)
    async with shop(pg_url, tmp_path, repo, manifest) as s:
        ref = SecretRef(secret_id="shop-leaky-password", fingerprint=fingerprint(SECRET))
        # dbt-duckdb reads `password` from the profile (unused by DuckDB): the secret reaches dbt as
        # DBT_ENV_SECRET_PASSWORD, and the `leak` model spells it out in SQL that fails with it in the error.
        await add_environment(s.runtime, "leaky", {"path": str(tmp_path / "leaky.duckdb")}, secrets={"password": ref})
        run_id = await s.request(f"path:models/{EXTRA}/leak.sql", env="leaky")
        view = await s.wait_final(run_id)
        assert view.status == "failed", view
        events = await s.events(run_id)
        finished = finished_of(events)
        objects = s.runtime.objects.for_tenant(TENANT)
        stored = gzip.decompress(await objects.get(next(a.key for a in finished.artifacts if a.name == "dbt.log.gz")))
        live = "\n".join(line.text for line in await read_lines(s.store.pool, TENANT, run_id, 0, 100_000))
        encoded = b"".join(msgspec.json.encode(e.payload) for e in events)
        assert SECRET not in stored.decode()
        assert SECRET not in live
        assert SECRET.encode() not in encoded
        assert SECRET not in (view.message or "")
        assert "***" in live  # it was there, and was masked
        leak = next(
            e.payload for e in events if isinstance(e.payload, NodeFinished) and e.payload.unique_id.endswith(".leak")
        )
        assert leak.status == "error"
        assert "***" in leak.message


async def test_a_runner_killed_mid_run_is_detected_and_its_run_retried_by_another(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path]
) -> None:
    repo, manifest = user_repo
    async with shop(pg_url, tmp_path, repo, manifest, runner_in_process=False) as s:
        await add_environment(s.runtime, "retry", {"path": str(tmp_path / "retry.duckdb"), "run_retries": 1})
        run_id = await s.request(f"path:models/{EXTRA}/slow_short.sql", env="retry")
        env = {key: value for key, value in os.environ.items() if not key.startswith("LOCKGATE_")}
        env.update(
            {
                "LOCKGATE_DATABASE_URL": str(s.runtime.settings.database_url),
                "LOCKGATE_HOME": str(tmp_path / "home"),
                "LOCKGATE_RUNNER_HEARTBEAT_SECONDS": "0.5",
                "LOCKGATE_RUNNER_LEASE_SECONDS": "3",
                "LOCKGATE_LOG_JSON": "false",
            }
        )
        lockgate = Path(sys.executable).with_name("lockgate")
        victim = subprocess.Popen(
            [str(lockgate), "worker", "runner"],
            env=env,
            cwd=tmp_path,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            first = await s.wait_for(run_id, NodeStarted, timeout=120)
        finally:
            os.killpg(victim.pid, signal.SIGKILL)  # the runner and everything it started, mid-run
            victim.wait()
        assert isinstance(first.payload, NodeStarted)
        assert first.payload.attempt == 1
        s.runtime.start_worker("runner", s.runtime.run_runner)  # another runner, in this process
        view = await s.wait_final(run_id, timeout=180)
        events = await s.events(run_id)
        requeued = [e.payload for e in events if isinstance(e.payload, RunRequeued)]
        assert len(requeued) == 1
        assert requeued[0].reason == "runner_lost"
        starts = [e.payload for e in events if isinstance(e.payload, RunStarted)]
        assert [p.attempt for p in starts] == [1, 2]
        assert starts[0].runner_id != starts[1].runner_id
        assert view.status == "success"
        assert finished_of(events).attempt == 2


async def test_a_runner_stopped_mid_run_leaves_its_run_to_the_reaper(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path]
) -> None:
    repo, manifest = user_repo
    async with shop(pg_url, tmp_path, repo, manifest, runner_in_process=False) as s:
        options = RunnerOptions(heartbeat=0.5, lease_ttl=2.0, reap_grace=1.0)
        first = build_runner(s.runtime, options=options)
        stop = asyncio.Event()
        worker = asyncio.create_task(first.run(stop))
        run_id = await s.request(f"path:models/{EXTRA}/slow_long.sql")
        await s.wait_for(run_id, NodeStarted)
        stop.set()  # e.g. the serve process shutting down: dbt is interrupted, the run not ended
        await asyncio.wait_for(worker, 60)
        assert (await s.view(run_id)).status == "running"
        assert await Leases(s.store.pool).holder(TENANT, run_id) is not None  # kept: it will lapse

        second = build_runner(s.runtime, options=RunnerOptions(heartbeat=0.5, lease_ttl=2.0, reap_grace=1.0))
        stop2 = asyncio.Event()
        reaper = asyncio.create_task(second.run(stop2))
        try:
            view = await s.wait_final(run_id, timeout=60)
        finally:
            stop2.set()
            await asyncio.wait_for(reaper, 60)
        assert (view.status, view.reason) == ("failed", "runner_lost")
        assert first.options.runner_id in (view.message or "")
