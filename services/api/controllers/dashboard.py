"""``GET /api/tenants/{tenant_id}/dashboard``: recent runs, runs awaiting the caller's decision, failures, each
project's graph size and freshness, and the latest runs' estimated against actual cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from litestar import get
from litestar.params import FromPath

from contracts.api.dashboard import Dashboard, ProjectHealth, RunCost
from contracts.api.runs import RunView
from projections.graph import queries as graph_queries
from projections.runs import queries as run_queries
from projections.tenancy import queries as tenancy_queries
from services.api.deps import PrincipalDep, RuntimeDep
from services.ingestion.readmodel import graph_read_model
from services.runs.domain import APPROVING_ROLES
from services.runs.readmodel import runs_read_model
from services.shared.auth import ADMIN, VIEWER, Principal
from services.tenancy.readmodel import read_model as tenancy_read_model

RECENT = 10
FAILURE_WINDOW = timedelta(days=7)
FINISHED = ("success", "warning", "failed", "canceled")


def _may_decide(principal: Principal, run: RunView, production: set[tuple[str, str]]) -> bool:
    if not APPROVING_ROLES & set(principal.roles):
        return False
    return (run.project_id, run.environment_id) not in production or run.requested_by != principal.subject


def _cost(run: RunView, actual: float | None) -> RunCost:
    totals = run.totals
    estimated_seconds = totals.estimated_seconds if totals else None
    estimated_cost = totals.estimated_cost if totals else None
    actual_cost = None
    if actual is not None and estimated_cost is not None and estimated_seconds:
        actual_cost = estimated_cost / estimated_seconds * actual
    return RunCost(
        run_id=run.run_id,
        project_id=run.project_id,
        environment_id=run.environment_id,
        status=run.status,
        finished_at=run.finished_at,
        estimated_seconds=estimated_seconds,
        actual_seconds=actual,
        estimated_cost=estimated_cost,
        actual_cost=actual_cost,
        currency=totals.currency if totals else None,
    )


@get("/api/tenants/{tenant_id:str}/dashboard", summary="What needs attention in the tenant", tags=["dashboard"])
async def dashboard(tenant_id: FromPath[str], runtime: RuntimeDep, principal: PrincipalDep) -> Dashboard:
    principal.require_tenant(tenant_id)
    principal.require_role(ADMIN, VIEWER, "approver")
    tenancy, graph, runs = (
        tenancy_read_model(runtime.store),
        graph_read_model(runtime.store),
        runs_read_model(runtime.store),
    )
    for model in (tenancy, graph, runs):
        await model.catch_up()
    projects = await tenancy_queries.list_projects(tenancy.db, tenant_id, status="active")
    production = {
        (env.project_id, env.environment_id)
        for project in projects
        for env in await tenancy_queries.list_environments(tenancy.db, tenant_id, project.project_id)
        if env.production
    }
    health = await graph_queries.health(graph.db, tenant_id)
    recent = (await run_queries.list_runs(runs.db, tenant_id, limit=RECENT)).items
    waiting = (await run_queries.list_runs(runs.db, tenant_id, status="awaiting_approval", limit=500)).items
    failures = (
        await run_queries.list_runs(
            runs.db, tenant_id, status="failed", since=datetime.now(UTC) - FAILURE_WINDOW, limit=RECENT
        )
    ).items
    finished = (await run_queries.list_runs(runs.db, tenant_id, sort="finished_at", limit=RECENT * 2)).items
    finished = [run for run in finished if run.status in FINISHED]
    actual = await run_queries.actual_seconds(runs.db, tenant_id, [run.run_id for run in finished])
    mine = [run for run in waiting if _may_decide(principal, run, production)]
    return Dashboard(
        projects=[
            ProjectHealth(
                project_id=project.project_id,
                name=project.name,
                **({} if (h := health.get(project.project_id)) is None else msgspec.structs.asdict(h)),
            )
            for project in projects
        ],
        recent_runs=recent,
        awaiting_my_approval=mine,
        awaiting_others=len(waiting) - len(mine),
        failures=failures,
        costs=[_cost(run, actual.get(run.run_id)) for run in finished],
    )
