"""``lockgate demo``: the demo project, set up idempotently in the current ``LOCKGATE_HOME``.

Creates project ``demo`` (its repository is the demo dbt project shipped with Lockgate) with environments
``dev`` (dbt-duckdb, no approval) and ``prod`` (production: approval required), builds the project with
real dbt (parse, build, docs generate, source freshness) and ingests the artifacts, run history included.

Running it again changes nothing: existing project and environments are kept, the artifacts are rebuilt
only when the demo project's files (or the dbt version) changed since the last build, and an identical
ingestion appends nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from importlib import metadata
from pathlib import Path

import msgspec

from contracts.api.graph import IngestionOutcome
from contracts.commands.tenancy import CreateEnvironment, CreateProject
from contracts.envelope import SYSTEM_ACTOR
from services.demo.build import DEMO_PROJECT, generate_artifacts
from services.ingestion.service import ArtifactKind
from services.runtime import Runtime
from services.shared.commands import CommandContext
from services.tenancy import handlers

PROJECT_ID = "demo"
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
        await asyncio.to_thread(generate_artifacts, DEMO_PROJECT, out)
        stamp.write_text(fingerprint)
    files = {kind: out / name for kind, name in ARTIFACTS.items() if (out / name).is_file()}
    context = CommandContext(actor=SYSTEM_ACTOR, correlation_id=uuid.uuid4())
    outcome = await runtime.ingest(tenant, PROJECT_ID, files, context)
    return DemoOutcome(project_id=PROJECT_ID, created=created, built=built, ingestion=outcome)
