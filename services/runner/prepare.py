"""Before dbt starts: the run's graph, its secrets, its workspace and its dbt invocations.

Everything here can fail for reasons the user must fix (a missing secret, a repository that moved, a plan
that cannot be expressed in dbt's selection syntax): ``prepare`` turns those into ``PreparationError`` with
a redacted message, which the worker records as the run's end (``failed``, ``workspace_error``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.events.tenancy import TargetValue
from contracts.plan import ExecutionPlan
from services.ingestion.readmodel import graph_read_model
from services.ingestion.service import Ingestion
from services.ingestion.snapshots import GraphSnapshot
from services.runner import profiles, querytag, workspace
from services.runner.invocations import Invocation, plan_invocations
from services.runner.ports import SecretResolver
from services.runner.redaction import Redactor
from services.shared.errors import LockgateError
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.objectstore.port import TenantObjectStore
from services.tenancy.domain import EnvironmentState, ProjectState


class PreparationError(LockgateError):
    code = "workspace_error"


def target_number(target: Mapping[str, TargetValue], key: str) -> float | None:
    """A positive number from an environment's target (None when absent, zero or negative)."""
    value = target.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except ValueError:
        raise PreparationError(f"environment setting {key!r} must be a number, not {value!r}") from None
    return number if number > 0 else None


@dataclass
class Prepared:
    snapshot: GraphSnapshot
    workspace: workspace.Workspace
    invocations: list[Invocation]
    redactor: Redactor


@dataclass(frozen=True)
class RunSubject:
    """Which run is being prepared, and where."""

    tenant_id: str
    run_id: uuid.UUID
    plan: ExecutionPlan
    full_refresh: bool
    environment: EnvironmentState
    project: ProjectState


async def graph_of(
    store: PostgresEventStore, ingestion: Ingestion, objects: TenantObjectStore, project: str, version: int
) -> GraphSnapshot:
    """The graph version a plan was built on (its snapshot, or a fold of the events)."""
    model = graph_read_model(store)
    await model.catch_up()
    row = await model.resolve_version(objects.tenant_id, project, version)
    return await ingestion.graph_at(
        store.for_tenant(objects.tenant_id), objects, project, row.graph_version, row.snapshot_key
    )


async def prepare(
    subject: RunSubject,
    *,
    store: PostgresEventStore,
    ingestion: Ingestion,
    objects: TenantObjectStore,
    secrets: SecretResolver,
    workspace_dir: Path | None,
) -> Prepared:
    env = subject.environment
    redactor = Redactor(())
    try:
        values = {name: secrets.resolve(ref.secret_id, ref.fingerprint) for name, ref in env.secrets.items()}
        redactor = Redactor(values.values())
        snapshot = await graph_of(
            store, ingestion, objects, subject.plan.inputs.project_id, subject.plan.inputs.graph_version
        )
        threads = int(target_number(env.target, "threads") or 1)
        # Snowflake: queries outside nodes carry the run's tag (set at login); each node's carry its own.
        session_tag = (
            querytag.run_query_tag(run_id=subject.run_id, tenant=subject.tenant_id, environment=env.environment_id)
            if env.adapter_type == "snowflake"
            else None
        )
        ws = await workspace.open_workspace(
            subject.project.repository,
            root_parent=workspace_dir,
            commit=None,
            profile_for=lambda name: profiles.render_profile(
                name, env.adapter_type, env.target, values, threads=threads, query_tag=session_tag
            ),
        )
    except (LockgateError, OSError) as exc:
        raise PreparationError(redactor.redact(str(exc))) from exc
    try:
        if session_tag is not None:
            nodes = {item.unique_id: item.node_uuid for item in subject.plan.items}
            ws.add_macro(
                querytag.MACRO_NAME,
                querytag.query_tag_macro(
                    run_id=subject.run_id,
                    tenant=subject.tenant_id,
                    environment=env.environment_id,
                    nodes=nodes,
                    session_tag=session_tag,
                ),
            )
        invocations = plan_invocations(
            subject.plan,
            snapshot.graph,
            threads=threads,
            target=profiles.TARGET_NAME,
            project_dir=ws.project_dir,
            profiles_dir=ws.profiles_dir,
            target_path=ws.target_path,
            log_path=ws.log_path,
            full_refresh=subject.full_refresh,
        )
    except (LockgateError, OSError) as exc:
        ws.close()
        raise PreparationError(redactor.redact(str(exc))) from exc
    return Prepared(snapshot=snapshot, workspace=ws, invocations=invocations, redactor=redactor)
