"""Support for the runner's end-to-end tests: a "user's repository" (the demo dbt project plus a few extra
models and tests kept apart by path), its manifest parsed once with real dbt, and a Runtime with a project,
environments and an ingested graph on a private database."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from contracts.api.runs import RunRequest, RunView
from contracts.commands.tenancy import CreateEnvironment, CreateProject
from contracts.envelope import Actor, RecordedEvent
from contracts.events.tenancy import SecretRef, TargetValue
from projections.runs.queries import FINAL_STATUSES
from services.demo.build import DEMO_PROJECT, generate_artifacts
from services.runs.domain import run_stream
from services.runs.readmodel import runs_read_model
from services.runs.service import RunService
from services.runtime import Runtime
from services.shared.commands import CommandContext
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.settings import Settings
from services.tenancy import handlers

TENANT = "default"
PROJECT = "shop"
ALICE = CommandContext(actor=Actor(subject="alice", roles=("admin",)), correlation_id=uuid.uuid4())
SECRET = "Sup3r-Secret-Value-9"
"""A secret of the ``leaky`` environment; the ``leak`` model spells it out, as a careless user might."""
EXTRA = "lockgate_extra"
"""Where the extra models and tests live (``path:models/lockgate_extra``...), kept out of the demo's runs."""
DEMO_ONLY = f"path:models/{EXTRA} path:tests/{EXTRA}"

TABLE = "{{ config(materialized='table') }}\n"
"""A view would only be created, not evaluated: these models must really compute."""

EXTRA_FILES = {
    # ~1e10 multiply-adds: tens of seconds, interrupted by a cancel long before it ends.
    f"models/{EXTRA}/slow_long.sql": TABLE
    + "select sum(a.range * b.range) as n from range(0, 120000) a, range(0, 60000) b",
    # A few seconds: long enough to kill a runner in the middle of it.
    f"models/{EXTRA}/slow_short.sql": TABLE
    + "select sum(a.range * b.range) as n from range(0, 25000) a, range(0, 25000) b",
    f"models/{EXTRA}/leak.sql": TABLE + f"select '{SECRET}'::integer as boom",
    # A failing (error-severity) test on stg_shop__plans: its children are skipped by dbt build.
    f"tests/{EXTRA}/assert_no_plans.sql": "select * from {{ ref('stg_shop__plans') }}",
}


def make_repository(root: Path) -> Path:
    """A copy of the demo dbt project with the extra files: the user's repository of these tests."""
    repo = root / "repo"
    shutil.copytree(DEMO_PROJECT, repo, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb"))
    for relative, text in EXTRA_FILES.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return repo


def parse_manifest(repo: Path, out: Path) -> Path:
    artifacts = generate_artifacts(repo, out, commands=("parse",))
    assert artifacts.manifest is not None
    return artifacts.manifest


@dataclass
class Shop:
    runtime: Runtime
    repo: Path
    warehouse: Path
    service: RunService

    @property
    def store(self) -> PostgresEventStore:
        return self.runtime.store

    async def request(
        self, select: str | None, *, env: str = "dev", exclude: str | None = None, **extra: object
    ) -> uuid.UUID:
        request = RunRequest(project_id=PROJECT, environment_id=env, select=select, exclude=exclude, **extra)  # type: ignore[arg-type]
        tenant = self.runtime.store.for_tenant(TENANT)
        outcome = await self.service.request(tenant, self.runtime.objects.for_tenant(TENANT), request, ALICE)
        return outcome.run_id

    async def view(self, run_id: uuid.UUID) -> RunView:
        return await runs_read_model(self.runtime.store).run(TENANT, run_id)

    async def wait_final(self, run_id: uuid.UUID, timeout: float = 240.0) -> RunView:
        async with asyncio.timeout(timeout):
            while True:
                view = await self.view(run_id)
                if view.status in FINAL_STATUSES:
                    return view
                await asyncio.sleep(0.2)

    async def wait_for(self, run_id: uuid.UUID, event_type: type, timeout: float = 120.0) -> RecordedEvent:
        async with asyncio.timeout(timeout):
            while True:
                for recorded in await self.events(run_id):
                    if isinstance(recorded.payload, event_type):
                        return recorded
                await asyncio.sleep(0.1)

    async def events(self, run_id: uuid.UUID) -> list[RecordedEvent]:
        return await self.runtime.store.for_tenant(TENANT).read_stream(run_stream(run_id))

    async def ingest(self, manifest: Path) -> None:
        context = CommandContext(actor=ALICE.actor, correlation_id=uuid.uuid4())
        await self.runtime.ingest(TENANT, PROJECT, {"manifest": manifest}, context)


async def add_environment(
    runtime: Runtime,
    environment: str,
    target: Mapping[str, TargetValue],
    *,
    secrets: Mapping[str, SecretRef] | None = None,
) -> None:
    await handlers.handle_create_environment(
        runtime.store.for_tenant(TENANT),
        CreateEnvironment(
            project_id=PROJECT,
            environment_id=environment,
            name=environment,
            adapter_type="duckdb",
            target=dict(target),
            secrets=dict(secrets or {}),
        ),
        ALICE,
    )


@asynccontextmanager
async def shop(pg_url: str, tmp_path: Path, repo: Path, manifest: Path, **settings: object) -> AsyncIterator[Shop]:
    """A runtime on a private database with project ``shop`` (repository ``repo``), environment ``dev``
    (DuckDB under ``tmp_path``) and ``manifest`` ingested; the runner runs in process unless told otherwise."""
    values: dict[str, object] = {
        "database_url": pg_url,
        "home": tmp_path / "home",
        "runner_in_process": True,
        "runner_heartbeat_seconds": 0.5,
        "runner_lease_seconds": 3.0,
        "runner_workspace_dir": tmp_path / "workspaces",
        **settings,
    }
    (tmp_path / "workspaces").mkdir(exist_ok=True)
    runtime = await Runtime.open_with_workers(Settings(**values))  # type: ignore[arg-type]
    try:
        await handlers.handle_create_project(
            runtime.store.for_tenant(TENANT),
            CreateProject(project_id=PROJECT, org_id="default", name="Shop", repository=str(repo)),
            ALICE,
        )
        warehouse = tmp_path / "warehouse"
        warehouse.mkdir()
        await add_environment(runtime, "dev", {"path": str(warehouse / "dev.duckdb"), "threads": 2})
        ready = Shop(
            runtime=runtime,
            repo=repo,
            warehouse=warehouse / "dev.duckdb",
            service=RunService(runtime.store, runtime.ingestion),
        )
        await ready.ingest(manifest)
        yield ready
    finally:
        await runtime.close()
