"""The graph layout cache, under ``/api/tenants/{tenant_id}/projects/{project_id}/graph/layouts/{key}``:

* ``GET ?version=N`` — a layout kept for that graph version and key (404 when there is none: compute it);
* ``PUT ?version=N`` — keep one (anyone who may read the project: it is derived from what they can read).

The version must exist; positions are checked to be finite. See ``services.layouts.cache`` and ADR 0014.
"""

from __future__ import annotations

import gzip
import re
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from contracts.api.layouts import LAYOUT_KEY_PATTERN, GraphLayout, LayoutBody, LayoutKey
from services.api.deps import PrincipalDep, RuntimeDep
from services.ingestion.readmodel import graph_read_model
from services.layouts.cache import get_layout, put_layout
from services.shared.auth import ADMIN, VIEWER, Principal
from services.shared.errors import ContractViolationError, NotFoundError
from services.tenancy.rules import check_id

PATH = "/api/tenants/{tenant_id:str}/projects/{project_id:str}/graph/layouts"
MAX_LAYOUT_BODY = 16 * 1024 * 1024
_KEY = re.compile(LAYOUT_KEY_PATTERN)
VersionQuery = Annotated[int, QueryParameter(ge=1, description="The graph version the layout was computed for.")]


def _allowed(principal: Principal, tenant_id: str, project_id: str, key: str) -> None:
    principal.require_tenant(tenant_id)
    principal.require_role(ADMIN, VIEWER, "approver")
    check_id("project", project_id)
    if not _KEY.fullmatch(key):  # path parameters are not checked against their Meta
        raise ContractViolationError("a layout key is 16 to 64 lower-case hex digits", field="key")


class LayoutController(Controller):
    path = PATH
    tags = ["graph"]  # noqa: RUF012 - litestar reads it as a class attribute

    @get(
        "/{key:str}",
        summary="A kept layout of a graph version (404: none; compute it)",
        responses={200: ResponseSpec(data_container=GraphLayout, description="The layout.", generate_examples=False)},
    )
    async def get_layout(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        key: FromPath[LayoutKey],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        version: VersionQuery,
    ) -> Response[bytes]:
        _allowed(principal, tenant_id, project_id, key)
        document = await get_layout(runtime.store.pool, tenant_id, project_id, version, key)
        if document is None:
            raise NotFoundError(f"no layout {key!r} is kept for graph version {version}")
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(document, media_type="application/json", headers={"Content-Encoding": "gzip"})
        return Response(gzip.decompress(document), media_type="application/json")

    @put("/{key:str}", summary="Keep a layout of a graph version", request_max_body_size=MAX_LAYOUT_BODY)
    async def put_layout(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        key: FromPath[LayoutKey],
        data: JSONBody[LayoutBody],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        version: VersionQuery,
    ) -> GraphLayout:
        _allowed(principal, tenant_id, project_id, key)
        model = graph_read_model(runtime.store)
        await model.catch_up()
        await model.resolve_version(tenant_id, project_id, version)
        return await put_layout(runtime.store.pool, tenant_id, project_id, graph_version=version, key=key, body=data)
