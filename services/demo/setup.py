"""``lockgate demo``: the demo project, set up idempotently in the current ``LOCKGATE_HOME``.

Creates project ``demo`` (its repository is the demo dbt project shipped with Lockgate) with environments
``dev`` (dbt-duckdb, no approval) and ``prod`` (production: approval required), builds the project with
real dbt (parse, build, docs generate, source freshness) into ``dev``'s warehouse and ingests the artifacts,
run history included. The first time, it also runs the whole project once in ``dev`` through the runner
(plan, automatic approval, dbt build), so that a fresh installation shows a completed run.

Running it again changes nothing: existing project and environments are kept, the artifacts are rebuilt
only when the demo project's files (or the dbt version) changed since the last build, and an identical
ingestion appends nothing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import uuid
from importlib import metadata
from pathlib import Path

import msgspec

from contracts.api.graph import IngestionOutcome
from contracts.api.runs import RunRequest, RunView
from contracts.commands.tenancy import CreateEnvironment, CreateProject
from contracts.envelope import SYSTEM_ACTOR
from projections.runs import queries as run_queries
from services.demo.build import DEMO_PROJECT, generate_artifacts
from services.ingestion.service import ArtifactKind
from services.runs.readmodel import runs_read_model
from services.runs.service import RunService
from services.runtime import Runtime
from services.shared.commands import CommandContext
from services.tenancy import handlers

PROJECT_ID = "demo"
FIRST_RUN_TIMEOUT_S = 900.0
ARTIFACTS: dict[ArtifactKind, str] = {
    "manifest": "manifest.json",
    "catalog": "catalog.json",
    "run_results": "run_results.json",
    "sources": "sources.json",
}


class DemoOutcome(msgspec.Struct, frozen=True, kw_only=True):
    project_id: str
    created: list[str]
    built: bool
    """Whether dbt ran (False: the artifacts of an identical earlier build were reused)."""
    ingestion: IngestionOutcome
    first_run: RunView | None = None
    """The demo's first run (``dev``, every node), executed by the runner when the project had no run yet."""


def _fingerprint(project: Path) -> str:
    """Hash of every file of the demo project (names and bytes) plus the dbt version that builds it."""
    digest = hashlib.sha256(metadata.version("dbt-core").encode())
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


async def _ensure_tenancy(runtime: Runtime, tenant: str, home: Path) -> list[str]:
    store = runtime.store.for_tenant(tenant)
    context = CommandContext(actor=SYSTEM_ACTOR, correlation_id=uuid.uuid4())
    created: list[str] = []
    if await handlers.load_project(store, PROJECT_ID) is None:
        await handlers.handle_create_project(
            store,
            CreateProject(
                project_id=PROJECT_ID,
                org_id=runtime.settings.default_org,
                name="Lockgate demo shop",
                repository=str(DEMO_PROJECT),
            ),
            context,
        )
        created.append(f"project {PROJECT_ID}")
    for env, production in (("dev", False), ("prod", True)):
        if await handlers.load_environment(store, PROJECT_ID, env) is None:
            await handlers.handle_create_environment(
                store,
                CreateEnvironment(
                    project_id=PROJECT_ID,
                    environment_id=env,
                    name=env,
                    adapter_type="duckdb",
                    target={"path": str(home / "demo" / f"{env}.duckdb"), "threads": 2},
                    production=production,
                ),
                context,
            )
            created.append(f"environment {PROJECT_ID}/{env}")
    return created


async def setup_demo(runtime: Runtime, tenant: str) -> DemoOutcome:
    home = runtime.settings.home.absolute()
    created = await _ensure_tenancy(runtime, tenant, home)
    out = home / "demo" / "artifacts"
    stamp = out / "fingerprint"
    fingerprint = await asyncio.to_thread(_fingerprint, DEMO_PROJECT)
    built = not (stamp.is_file() and stamp.read_text() == fingerprint)
    if built:
        out.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        # Built into dev's own warehouse: the run history this build records (what planning reads, e.g. the
        # partitions a microbatch model already has) is then true of the environment the demo runs in.
        dev: dict[str, str | int | bool] = {"type": "duckdb", "path": str(home / "demo" / "dev.duckdb"), "threads": 2}
        await asyncio.to_thread(functools.partial(generate_artifacts, DEMO_PROJECT, out, profile_output=dev))
        stamp.write_text(fingerprint)
    files = {kind: out / name for kind, name in ARTIFACTS.items() if (out / name).is_file()}
    context = CommandContext(actor=SYSTEM_ACTOR, correlation_id=uuid.uuid4())
    outcome = await runtime.ingest(tenant, PROJECT_ID, files, context)
    first_run = await _first_run(runtime, tenant)
    return DemoOutcome(project_id=PROJECT_ID, created=created, built=built, ingestion=outcome, first_run=first_run)


async def _first_run(runtime: Runtime, tenant: str) -> RunView | None:
    """Run the whole demo project once in ``dev`` (through plan, automatic approval and the runner), so that a
    fresh installation shows a completed run; nothing when the project has runs already."""
    model = runs_read_model(runtime.store)
    await model.catch_up()
    if (await run_queries.list_runs(model.db, tenant, project=PROJECT_ID, limit=1)).items:
        return None
    request = RunRequest(project_id=PROJECT_ID, environment_id="dev", select="*")
    context = CommandContext(actor=SYSTEM_ACTOR, correlation_id=uuid.uuid4())
    service = RunService(runtime.store, runtime.ingestion)
    outcome = await service.request(
        runtime.store.for_tenant(tenant), runtime.objects.for_tenant(tenant), request, context
    )
    await runtime.ensure_local_runner()
    async with asyncio.timeout(FIRST_RUN_TIMEOUT_S):
        while True:
            view = await model.run(tenant, outcome.run_id)
            if view.status in run_queries.FINAL_STATUSES:
                return view
            await asyncio.sleep(0.25)
