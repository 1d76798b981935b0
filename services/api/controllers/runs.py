"""Selection, plans and the run lifecycle, under ``/api/tenants/{tenant_id}``:

* ``GET /projects/{p}/select?select=&exclude=&selector=&state=`` — the selected unique_ids (dbt's grammar);
* ``POST /projects/{p}/plans`` — the plan a run would get now, explained; records nothing;
* ``POST /projects/{p}/runs`` — request a run: it is planned at once and either waits for approval (202)
  or is approved automatically (201); ``GET /runs``, ``GET /runs/{id}`` (with the plan and its explanation);
* ``POST /runs/{id}/approve``, ``/reject``, ``/cancel``, ``/replan`` — decisions (replan: a new plan for a
  waiting run, e.g. a stale one); 409 for an illegal transition or a
  stale plan, 403 without the approver role or for the requester where separation of duties applies.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from contracts.api.runs import (
    CancelRequest,
    DecisionRequest,
    RunDetail,
    RunList,
    RunRequest,
    RunRequestBody,
    RunView,
    SelectionView,
    format_run_cursor,
    parse_run_cursor,
)
from contracts.plan import ExecutionPlan
from projections.runs import queries
from services.api.deps import ContextDep, PrincipalDep, RuntimeDep
from services.planning.explain import explain, explanation_json
from services.runs.readmodel import runs_read_model
from services.runs.service import RunOutcome, RunService
from services.runtime import Runtime
from services.shared.auth import ADMIN, VIEWER, Principal
from services.shared.errors import ContractViolationError
from services.tenancy.rules import check_id

TENANT_PATH = "/api/tenants/{tenant_id:str}"
Expression = Annotated[str | None, QueryParameter(max_length=4000)]
APPROVER = "approver"


def _service(runtime: Runtime) -> RunService:
    return RunService(runtime.store, runtime.ingestion)


def _allowed(principal: Principal, tenant_id: str, *roles: str) -> None:
    principal.require_tenant(tenant_id)
    principal.require_role(*roles)


async def _answer(runtime: Runtime, tenant_id: str, outcome: RunOutcome, *, created: bool = False) -> Response[RunView]:
    view = await runs_read_model(runtime.store).run(tenant_id, outcome.run_id, version=outcome.stream_version)
    status = (202 if view.status == "awaiting_approval" else 201) if created else 200
    return Response(view, status_code=status, headers={"ETag": f'"{view.version}"'})


class RunsController(Controller):
    path = TENANT_PATH
    tags = ["runs"]  # noqa: RUF012 - litestar reads it as a class attribute

    @get("/projects/{project_id:str}/select", summary="Select nodes with dbt's grammar")
    async def select_nodes(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        select_expr: Annotated[str | None, QueryParameter(name="select", max_length=4000)] = None,
        exclude: Expression = None,
        selector: Annotated[str | None, QueryParameter(max_length=200)] = None,
        state_version: Annotated[
            int | None, QueryParameter(name="state", ge=1, description="Graph version for state: methods.")
        ] = None,
    ) -> SelectionView:
        _allowed(principal, tenant_id, ADMIN, VIEWER, APPROVER)
        return await _service(runtime).select(
            runtime.store.for_tenant(tenant_id),
            runtime.objects.for_tenant(tenant_id),
            check_id("project", project_id),
            select_expr,
            exclude=exclude,
            selector=selector,
            state_version=state_version,
        )

    @post("/projects/{project_id:str}/plans", summary="The plan a run would get now (records nothing)", status_code=200)
    async def preview_plan(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[RunRequestBody],
        runtime: RuntimeDep,
        principal: PrincipalDep,
    ) -> dict[str, Any]:
        _allowed(principal, tenant_id, ADMIN, VIEWER, APPROVER)
        request = RunRequest(project_id=check_id("project", project_id), **msgspec.structs.asdict(data))
        planned = await _service(runtime).preview(
            runtime.store.for_tenant(tenant_id), runtime.objects.for_tenant(tenant_id), request
        )
        return {"plan": planned.plan, "explain": explanation_json(explain(planned.plan))}

    @post("/projects/{project_id:str}/runs", summary="Request a run: planned now, then approved or awaiting approval")
    async def request_run(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[RunRequestBody],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[RunView]:
        _allowed(principal, tenant_id, ADMIN)
        request = RunRequest(project_id=check_id("project", project_id), **msgspec.structs.asdict(data))
        outcome = await _service(runtime).request(
            runtime.store.for_tenant(tenant_id), runtime.objects.for_tenant(tenant_id), request, command_context
        )
        return await _answer(runtime, tenant_id, outcome, created=True)

    @get("/runs", summary="Runs, newest first (filtered, in keyset pages)")
    async def list_runs(
        self,
        *,
        tenant_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        project: Annotated[str | None, QueryParameter(max_length=63)] = None,
        environment: Annotated[str | None, QueryParameter(max_length=63)] = None,
        status: Annotated[str | None, QueryParameter(max_length=32)] = None,
        actor: Annotated[str | None, QueryParameter(max_length=200, description="Who requested the run.")] = None,
        since: Annotated[datetime | None, QueryParameter(description="Requested at or after.")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Requested before.")] = None,
        cursor: Annotated[
            str | None, QueryParameter(max_length=60, description="The next_cursor of the previous page.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=queries.MAX_LIMIT)] = 50,
    ) -> RunList:
        _allowed(principal, tenant_id, ADMIN, VIEWER, APPROVER)
        try:
            after = parse_run_cursor(cursor) if cursor is not None else None
        except ValueError as exc:
            raise ContractViolationError(str(exc), field="cursor") from None
        model = runs_read_model(runtime.store)
        await model.catch_up()
        items = await queries.list_runs(
            model.db,
            tenant_id,
            project=project,
            environment=environment,
            status=status,
            actor=actor,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )
        following = queries.cursor_of(items, limit)
        return RunList(items=items, next_cursor=format_run_cursor(following) if following is not None else None)

    @get("/runs/{run_id:uuid}", summary="One run with its plan and the plan's explanation")
    async def get_run(
        self, *, tenant_id: FromPath[str], run_id: FromPath[uuid.UUID], runtime: RuntimeDep, principal: PrincipalDep
    ) -> RunDetail:
        _allowed(principal, tenant_id, ADMIN, VIEWER, APPROVER)
        model = runs_read_model(runtime.store)
        view = await model.run(tenant_id, run_id)
        raw = await queries.get_plan(model.db, tenant_id, run_id)
        plan = msgspec.json.decode(raw, type=ExecutionPlan) if raw else None
        return RunDetail(run=view, plan=plan, explain=explanation_json(explain(plan)) if plan is not None else None)

    @post("/runs/{run_id:uuid}/approve", summary="Approve the run's current plan", status_code=200)
    async def approve(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[RunView]:
        _allowed(principal, tenant_id, ADMIN, APPROVER)
        outcome = await _service(runtime).approve(
            runtime.store.for_tenant(tenant_id),
            runtime.objects.for_tenant(tenant_id),
            run_id,
            command_context,
            plan_id=data.plan_id,
            comment=data.comment,
        )
        return await _answer(runtime, tenant_id, outcome)

    @post(
        "/runs/{run_id:uuid}/reject", summary="Reject the run's current plan (a comment is required)", status_code=200
    )
    async def reject(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[RunView]:
        _allowed(principal, tenant_id, ADMIN, APPROVER)
        outcome = await _service(runtime).reject(
            runtime.store.for_tenant(tenant_id), run_id, command_context, comment=data.comment, plan_id=data.plan_id
        )
        return await _answer(runtime, tenant_id, outcome)

    @post("/runs/{run_id:uuid}/replan", summary="Plan a waiting run again (after its plan went stale)", status_code=200)
    async def replan(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[RunView]:
        _allowed(principal, tenant_id, ADMIN)
        outcome = await _service(runtime).replan(
            runtime.store.for_tenant(tenant_id), runtime.objects.for_tenant(tenant_id), run_id, command_context
        )
        return await _answer(runtime, tenant_id, outcome)

    @post("/runs/{run_id:uuid}/cancel", summary="Cancel a run that has not ended", status_code=200)
    async def cancel(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        data: JSONBody[CancelRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[RunView]:
        _allowed(principal, tenant_id, ADMIN)
        outcome = await _service(runtime).cancel(
            runtime.store.for_tenant(tenant_id), run_id, command_context, reason=data.reason
        )
        return await _answer(runtime, tenant_id, outcome)
