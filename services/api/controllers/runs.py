"""Selection, plans and the run lifecycle, under ``/api/tenants/{tenant_id}``:

* ``GET /projects/{p}/select?select=&exclude=&selector=&state=`` — the selected unique_ids (dbt's grammar);
* ``POST /projects/{p}/plans`` — the plan a run would get now, explained; records nothing;
* ``POST /projects/{p}/runs`` — request a run: it is planned at once and either waits for approval (202)
  or is approved automatically (201); ``GET /runs``, ``GET /runs/{id}`` (with the plan and its explanation);
* ``POST /runs/{id}/approve``, ``/reject``, ``/cancel``, ``/replan`` — decisions (replan: a new plan for a
  waiting run, e.g. a stale one); 409 for an illegal transition or a
  stale plan, 403 without the approver role or for the requester where separation of duties applies; cancel
  of a running run answers 202: the runner stops dbt and ends the run ``canceled``;
* ``GET /runs?project=&environment=&status=&actor=&since=&until=&limit=&cursor=`` — newest first, keyset pages;
* ``GET /runs/{id}/nodes`` — the node timeline; ``GET /runs/{id}/logs?from=&limit=`` — a page of log lines;
  ``GET /runs/{id}/logs/stream?from=`` — Server-Sent Events (``id`` = line number, ``Last-Event-ID`` resumes),
  ending with ``event: end`` once the run has ended and every line was sent;
  ``GET /runs/{id}/artifacts/{name}`` — a stored artifact (``run_results.json``, ``manifest.json``, ``dbt.log.gz``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from contracts.api.runs import (
    CancelRequest,
    DecisionRequest,
    LogPage,
    NodeView,
    PlanPreview,
    RunDetail,
    RunList,
    RunRequest,
    RunRequestBody,
    RunSort,
    RunView,
    SelectionView,
    format_run_cursor,
    parse_run_cursor,
)
from contracts.events.runs import RunArtifact
from contracts.plan import ExecutionPlan
from projections.runs import queries
from services.api.deps import ContextDep, PrincipalDep, RuntimeDep
from services.planning.explain import explain
from services.runner import logs
from services.runs.readmodel import runs_read_model
from services.runs.service import RunOutcome, RunService
from services.runtime import Runtime
from services.shared.auth import ADMIN, VIEWER, Principal
from services.shared.errors import ContractViolationError, NotFoundError
from services.tenancy.rules import check_id

TENANT_PATH = "/api/tenants/{tenant_id:str}"
Expression = Annotated[str | None, QueryParameter(max_length=4000)]
APPROVER = "approver"
READERS = (ADMIN, VIEWER, APPROVER)
MAX_LOG_PAGE = 5000
FromLine = Annotated[int, QueryParameter(name="from", ge=0, description="Read the lines after this line number.")]
_MEDIA_TYPES = {".json": "application/json", ".gz": "application/gzip"}
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _service(runtime: Runtime) -> RunService:
    return RunService(runtime.store, runtime.ingestion)


def _allowed(principal: Principal, tenant_id: str, *roles: str) -> None:
    principal.require_tenant(tenant_id)
    principal.require_role(*roles)


async def _answer(runtime: Runtime, tenant_id: str, outcome: RunOutcome, *, created: bool = False) -> Response[RunView]:
    view = await runs_read_model(runtime.store).run(tenant_id, outcome.run_id, version=outcome.stream_version)
    status = (202 if view.status == "awaiting_approval" else 201) if created else 200
    return Response(view, status_code=status, headers={"ETag": f'"{view.version}"'})


def _artifact(view: RunView, name: str) -> RunArtifact | None:
    return next((a for a in view.artifacts or () if a.name == name), None)


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
        _allowed(principal, tenant_id, *READERS)
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
    ) -> PlanPreview:
        _allowed(principal, tenant_id, *READERS)
        request = RunRequest(project_id=check_id("project", project_id), **msgspec.structs.asdict(data))
        planned = await _service(runtime).preview(
            runtime.store.for_tenant(tenant_id), runtime.objects.for_tenant(tenant_id), request
        )
        return PlanPreview(plan=planned.plan, explain=explain(planned.plan))

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
        sort: Annotated[RunSort, QueryParameter(description="The order (then by run id).")] = "requested_at",
        order: Annotated[Literal["asc", "desc"], QueryParameter(description="Ascending or descending.")] = "desc",
        cursor: Annotated[
            str | None, QueryParameter(max_length=800, description="The next_cursor of the previous page.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=queries.MAX_LIMIT)] = 50,
    ) -> RunList:
        _allowed(principal, tenant_id, *READERS)
        try:
            after = parse_run_cursor(cursor) if cursor is not None else None
        except ValueError as exc:
            raise ContractViolationError(str(exc), field="cursor") from None
        model = runs_read_model(runtime.store)
        await model.catch_up()
        page = await queries.list_runs(
            model.db,
            tenant_id,
            project=project,
            environment=environment,
            status=status,
            actor=actor,
            since=since,
            until=until,
            sort=sort,
            descending=order == "desc",
            after=after,
            limit=limit,
        )
        following = page.next_cursor
        return RunList(items=page.items, next_cursor=format_run_cursor(following) if following is not None else None)

    @get("/runs/{run_id:uuid}", summary="One run with its plan, its explanation and its node timeline")
    async def get_run(
        self, *, tenant_id: FromPath[str], run_id: FromPath[uuid.UUID], runtime: RuntimeDep, principal: PrincipalDep
    ) -> RunDetail:
        _allowed(principal, tenant_id, *READERS)
        model = runs_read_model(runtime.store)
        view = await model.run(tenant_id, run_id)
        raw = await queries.get_plan(model.db, tenant_id, run_id)
        plan = msgspec.json.decode(raw, type=ExecutionPlan) if raw else None
        return RunDetail(
            run=view,
            plan=plan,
            explain=explain(plan) if plan is not None else None,
            nodes=await queries.run_nodes(model.db, tenant_id, run_id),
        )

    @get("/runs/{run_id:uuid}/nodes", summary="The run's nodes in the order they started (one attempt)")
    async def get_nodes(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        attempt: Annotated[int | None, QueryParameter(ge=1, description="Default: the current attempt.")] = None,
    ) -> list[NodeView]:
        _allowed(principal, tenant_id, *READERS)
        model = runs_read_model(runtime.store)
        await model.run(tenant_id, run_id)  # 404 for an unknown run rather than an empty timeline
        return await model.nodes(tenant_id, run_id, attempt=attempt)

    @get("/runs/{run_id:uuid}/logs", summary="A page of the run's log lines")
    async def get_logs(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        from_line: FromLine = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LOG_PAGE)] = 1000,
    ) -> LogPage:
        _allowed(principal, tenant_id, *READERS)
        view = await runs_read_model(runtime.store).run(tenant_id, run_id)
        items = await logs.read_lines(runtime.store.pool, tenant_id, run_id, from_line, limit)
        stored = _artifact(view, logs.LOG_ARTIFACT)
        if not items and stored is not None and from_line < (view.log_lines or 0):
            # The live lines are gone (or were never kept here): read the log the run stored.
            items = await logs.read_stored_lines(runtime.objects.for_tenant(tenant_id), stored, from_line, limit)
        ended = view.status in queries.FINAL_STATUSES
        return LogPage(
            items=items, next_from=items[-1].line if items else from_line, final=ended and len(items) < limit
        )

    @get("/runs/{run_id:uuid}/logs/stream", summary="The run's log lines as Server-Sent Events, live")
    async def stream_logs(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        from_line: FromLine = 0,
        last_event_id: Annotated[
            str | None,
            HeaderParameter(name="Last-Event-ID", max_length=20, description="Resume after this line (SSE)."),
        ] = None,
    ) -> ServerSentEvent:
        _allowed(principal, tenant_id, *READERS)
        model = runs_read_model(runtime.store)
        await model.run(tenant_id, run_id)
        after = from_line
        if last_event_id is not None and last_event_id.strip():
            if not last_event_id.strip().isdigit():
                raise ContractViolationError("Last-Event-ID must be a line number", field="Last-Event-ID")
            after = int(last_event_id)

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            last = after
            async for line in logs.follow(
                runtime.store.pool, tenant_id, run_id, after, finished=lambda: model.final_log_lines(tenant_id, run_id)
            ):
                last = line.line
                yield ServerSentEventMessage(id=line.line, data=line.text)
            yield ServerSentEventMessage(event="end", id=last, data=str(last))

        return ServerSentEvent(events())

    @get("/runs/{run_id:uuid}/artifacts/{name:str}", summary="Download an artifact the run stored")
    async def get_artifact(
        self,
        *,
        tenant_id: FromPath[str],
        run_id: FromPath[uuid.UUID],
        name: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
    ) -> Response[bytes]:
        _allowed(principal, tenant_id, *READERS)
        view = await runs_read_model(runtime.store).run(tenant_id, run_id)
        artifact = _artifact(view, name)
        if artifact is None:
            raise NotFoundError(f"run {run_id} has no artifact {name[:100]!r}", run_id=str(run_id))
        data = await runtime.objects.for_tenant(tenant_id).get(artifact.key)
        media_type = next(
            (t for suffix, t in _MEDIA_TYPES.items() if name.endswith(suffix)), "application/octet-stream"
        )
        headers = {"ETag": f'"{artifact.sha256}"'}
        if _SAFE_FILENAME.fullmatch(name):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(data, media_type=media_type, headers=headers)

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

    @post(
        "/runs/{run_id:uuid}/cancel",
        summary="Cancel a run that has not ended (202: a running run; its runner stops dbt)",
        status_code=200,
    )
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
        answer = await _answer(runtime, tenant_id, outcome)
        if outcome.status == "running":  # a cancel request: the run ends once its runner has stopped dbt
            answer.status_code = 202
        return answer
