"""Canvas routes, under ``/api/tenants/{tenant_id}/projects/{project_id}/canvas``:

* ``GET /?workspace=mine|shared`` — the workspace's arrangement (``ETag``: its stream version);
* ``POST /commands?workspace=mine|shared`` — one canvas command (``type``: ``move_nodes``, ``create_group``...),
  answered with the workspace as it is after the command (read-your-writes); ``If-Match`` refuses a stale edit.

Anyone who may read the project arranges their own canvas (``mine``); the shared canvas is edited by admins. A
canvas never changes the graph: these routes only ever append to ``canvas-*`` streams.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from contracts.api.canvas import CanvasView, WorkspaceName
from contracts.commands.canvas import CanvasCommand
from projections.canvas import queries
from services.api.deps import ContextDep, PrincipalDep, RuntimeDep, expected_version
from services.canvas.domain import SHARED, user_workspace
from services.canvas.handlers import handle_canvas_command
from services.canvas.readmodel import canvas_read_model
from services.shared.auth import ADMIN, VIEWER, Principal
from services.tenancy.rules import check_id

PATH = "/api/tenants/{tenant_id:str}/projects/{project_id:str}/canvas"
APPROVER = "approver"
WorkspaceQuery = Annotated[WorkspaceName, QueryParameter(description="Whose canvas: the caller's or the shared one.")]


def _workspace(principal: Principal, tenant_id: str, project_id: str, name: WorkspaceName, *, write: bool) -> str:
    principal.require_tenant(tenant_id)
    check_id("project", project_id)
    if name == "shared":
        principal.require_role(*((ADMIN,) if write else (ADMIN, VIEWER, APPROVER)))
        return SHARED
    principal.require_role(ADMIN, VIEWER, APPROVER)
    return user_workspace(principal.subject)


def _respond(view: CanvasView) -> Response[CanvasView]:
    return Response(view, headers={"ETag": f'"{view.version}"'})


class CanvasController(Controller):
    path = PATH
    tags = ["canvas"]  # noqa: RUF012 - litestar reads it as a class attribute

    @get("/", summary="A canvas of the project's graph: positions, groups, collapsed groups, viewport")
    async def get_canvas(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        workspace: WorkspaceQuery = "mine",
    ) -> Response[CanvasView]:
        key = _workspace(principal, tenant_id, project_id, workspace, write=False)
        model = canvas_read_model(runtime.store)
        await model.catch_up()
        return _respond(await queries.get_canvas(model.db, tenant_id, project_id, key, workspace))

    @post("/commands", summary="Edit a canvas (never the graph)", status_code=200)
    async def command(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[CanvasCommand],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
        workspace: WorkspaceQuery = "mine",
    ) -> Response[CanvasView]:
        key = _workspace(principal, tenant_id, project_id, workspace, write=True)
        result = await handle_canvas_command(
            runtime.store.for_tenant(tenant_id),
            project_id,
            key,
            data,
            command_context,
            expected_version=expected_version(request),
        )
        model = canvas_read_model(runtime.store)
        view = await model.wait_for(
            lambda: queries.get_canvas(model.db, tenant_id, project_id, key, workspace),
            result.version,
            "the canvas edit",
        )
        return _respond(view)
