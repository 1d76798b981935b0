"""Graph routes: ingest dbt artifacts into a project and read its LogicalGraph.

Under ``/api/tenants/{tenant_id}/projects/{project_id}``:

* ``POST /ingestions`` (multipart: ``manifest``, ``catalog``, ``run_results``, ``sources`` files) or
  ``POST /ingestions/by-key`` (JSON: object-store keys from ``POST /artifacts?kind=``, whose body is the
  raw file). Uploads stream to disk; over ``max_upload_bytes`` the answer is 413. 201 with the outcome; an
  identical re-ingestion answers 200 and appends nothing.
* ``GET /graph`` (whole, paginated, or a focus node with ``up``/``down`` levels), ``/graph/versions``,
  ``/graph/nodes/{unique_id}`` (docs: description, columns with catalog types, tests, last status,
  raw/compiled code), ``/graph/diff?from=&to=``, ``/ingestions``, ``/artifacts/{key}`` (download).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from contracts.api.graph import (
    ArtifactUpload,
    Edge,
    GraphOutline,
    GraphPage,
    GraphVersionList,
    IngestByKeyRequest,
    IngestionList,
    IngestionOutcome,
    NodeDetail,
    NodeStatuses,
    NodeStatusView,
    NodeView,
    VersionDiff,
)
from contracts.graph import GraphNode
from projections.graph import queries
from services.api.deps import ContextDep, PrincipalDep, RuntimeDep
from services.api.uploads import spool_body, spool_multipart
from services.ingestion import code as node_code
from services.ingestion.readmodel import GraphReadModel, graph_read_model
from services.ingestion.service import KINDS, ArtifactKind
from services.runs.service import RunService
from services.runtime import Runtime
from services.shared.auth import ADMIN, VIEWER, Principal
from services.shared.errors import ContractViolationError, NotFoundError
from services.shared.eventstore.postgres import PostgresTenantStore
from services.tenancy.rules import check_id

PROJECT_PATH = "/api/tenants/{tenant_id:str}/projects/{project_id:str}"
MAX_PAGE = 5000

Version = Annotated[int | None, QueryParameter(ge=1, description="Graph version (default: the latest).")]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size.")]
After = Annotated[str | None, QueryParameter(max_length=8192, description="`next_after` of the previous page.")]
Depth = Annotated[int | None, QueryParameter(ge=0, le=1000, description="Levels (default: all).")]


def _reader(runtime: Runtime, principal: Principal, tenant_id: str, project_id: str) -> GraphReadModel:
    principal.require_tenant(tenant_id)
    principal.require_role(ADMIN, VIEWER)
    check_id("project", project_id)
    return graph_read_model(runtime.store)


def _writer(runtime: Runtime, principal: Principal, tenant_id: str, project_id: str) -> PostgresTenantStore:
    principal.require_tenant(tenant_id)
    principal.require_role(ADMIN)
    check_id("project", project_id)
    return runtime.store.for_tenant(tenant_id)


def _view(row: queries.NodeRow, status: NodeStatusView | None = None) -> NodeView:
    return NodeView(
        node_uuid=row.node_uuid,
        valid_from=row.valid_from,
        aspects=row.aspects,
        last_status=status.status if status else None,
        node=row.node,
    )


def _edges(nodes: list[queries.NodeRow], within: set[str] | None) -> list[Edge]:
    return [
        Edge(parent=parent, child=row.node.unique_id)
        for row in nodes
        for parent in row.node.depends_on_nodes
        if within is None or parent in within
    ]


async def _owner(
    model: GraphReadModel, tenant_id: str, project_id: str, graph_version: int, node: GraphNode
) -> str | None:
    """Who owns a node: ``meta.owner`` (dbt's convention, also under ``config.meta``), else its group's owner."""
    for meta in (node.meta, node.config.get("meta") or {}):
        owner = meta.get("owner") if isinstance(meta, dict) else None
        if isinstance(owner, str) and owner:
            return owner
    if node.group is None:
        return None
    return (await queries.group_owners(model.db, tenant_id, project_id, graph_version)).get(node.group)


async def _ingest(
    runtime: Runtime, store: PostgresTenantStore, project_id: str, files: dict[ArtifactKind, Path], context: Any
) -> Response[IngestionOutcome]:
    outcome = await runtime.ingest(store.tenant_id, project_id, files, context)
    return Response(outcome, status_code=200 if outcome.deduplicated else 201)


async def _selected(
    runtime: Runtime,
    tenant_id: str,
    project_id: str,
    graph_version: int,
    *,
    select_expr: str | None,
    exclude: str | None,
    selector: str | None,
) -> list[str]:
    """The unique_ids a dbt selection picks in the project's current graph (dbt's grammar, issue 4)."""
    selection = await RunService(runtime.store, runtime.ingestion).select(
        runtime.store.for_tenant(tenant_id),
        runtime.objects.for_tenant(tenant_id),
        project_id,
        select_expr,
        exclude=exclude,
        selector=selector,
    )
    if selection.graph_version != graph_version:
        raise ContractViolationError("a selection applies to the project's latest graph version only")
    return selection.unique_ids


class GraphController(Controller):
    path = PROJECT_PATH
    tags = ["graph"]  # noqa: RUF012 - litestar reads it as a class attribute

    @post("/ingestions", summary="Ingest dbt artifacts (multipart upload)", request_max_body_size=None)
    async def ingest_upload(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[IngestionOutcome]:
        store = _writer(runtime, principal, tenant_id, project_id)
        with tempfile.TemporaryDirectory(prefix="lockgate-upload-") as tmp:
            files = await spool_multipart(request, Path(tmp), runtime.settings.max_upload_bytes, KINDS)
            if not files:
                raise ContractViolationError("no artifact in the upload; expected a 'manifest' file field")
            return await _ingest(runtime, store, project_id, files, command_context)  # type: ignore[arg-type]

    @post(
        "/artifacts",
        summary="Upload one artifact file (raw body) for a later by-key ingestion",
        request_max_body_size=None,
    )
    async def upload_artifact(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        kind: Annotated[str, QueryParameter(max_length=32, description="manifest, catalog, run_results or sources")],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
    ) -> Response[ArtifactUpload]:
        store = _writer(runtime, principal, tenant_id, project_id)
        if kind not in KINDS:
            raise ContractViolationError(f"unknown artifact kind {kind!r}; expected one of {', '.join(KINDS)}")
        with tempfile.TemporaryDirectory(prefix="lockgate-upload-") as tmp:
            path = await spool_body(request, Path(tmp) / kind, runtime.settings.max_upload_bytes)
            stored = await runtime.objects.for_tenant(store.tenant_id).put_file(kind, path)
        return Response(
            ArtifactUpload(kind=kind, key=stored.key, sha256=stored.sha256, size=stored.size), status_code=201
        )

    @post("/ingestions/by-key", summary="Ingest artifacts already in the object store")
    async def ingest_by_key(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[IngestByKeyRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[IngestionOutcome]:
        store = _writer(runtime, principal, tenant_id, project_id)
        objects = runtime.objects.for_tenant(tenant_id)
        keys: dict[ArtifactKind, str] = {kind: getattr(data, kind) for kind in KINDS if getattr(data, kind) is not None}
        if "manifest" not in keys and not keys:
            raise ContractViolationError("no artifact key given")
        with tempfile.TemporaryDirectory(prefix="lockgate-ingest-") as tmp:
            files: dict[ArtifactKind, Path] = {}
            for kind, key in keys.items():
                files[kind] = Path(tmp) / kind
                await objects.download(key, files[kind])
            return await _ingest(runtime, store, project_id, files, command_context)

    @get("/ingestions", summary="Recent ingestions of the project")
    async def list_ingestions(
        self, *, tenant_id: FromPath[str], project_id: FromPath[str], runtime: RuntimeDep, principal: PrincipalDep
    ) -> IngestionList:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        return IngestionList(items=await queries.ingestions(model.db, tenant_id, project_id))

    @get("/graph/versions", summary="The project's graph versions, newest first")
    async def list_versions(
        self, *, tenant_id: FromPath[str], project_id: FromPath[str], runtime: RuntimeDep, principal: PrincipalDep
    ) -> GraphVersionList:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        rows = await queries.versions(model.db, tenant_id, project_id)
        return GraphVersionList(items=rows)

    @get("/graph", summary="The graph at a version: whole (paginated) or around a focus node")
    async def get_graph(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        version: Version = None,
        focus: Annotated[str | None, QueryParameter(max_length=8192)] = None,
        up: Depth = None,
        down: Depth = None,
        resource_type: Annotated[str | None, QueryParameter(max_length=64)] = None,
        select_expr: Annotated[str | None, QueryParameter(name="select", max_length=4000)] = None,
        exclude: Annotated[str | None, QueryParameter(max_length=4000)] = None,
        selector: Annotated[str | None, QueryParameter(max_length=200)] = None,
        after: After = None,
        limit: Limit = 1000,
    ) -> GraphPage:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        row = await model.resolve_version(tenant_id, project_id, version)
        wanted: list[str] | None = None
        if select_expr is not None or exclude is not None or selector is not None:
            if focus is not None:
                raise ContractViolationError("give either a focus node or a selection, not both")
            wanted = await _selected(
                runtime,
                tenant_id,
                project_id,
                row.graph_version,
                select_expr=select_expr,
                exclude=exclude,
                selector=selector,
            )
        if focus is not None:
            dag = await model.dag(tenant_id, project_id, row.graph_version)
            if focus not in dag:
                raise NotFoundError(f"node {focus!r} is not in graph version {row.graph_version}")
            chosen = {focus}
            if up != 0:
                chosen |= dag.ancestors(focus, up)
            if down != 0:
                chosen |= dag.descendants(focus, down)
            wanted = sorted(chosen)
        nodes = await queries.nodes(
            model.db,
            tenant_id,
            project_id,
            row.graph_version,
            unique_ids=wanted,
            resource_type=resource_type,
            after=after,
            limit=limit,
        )
        ids = [n.node.unique_id for n in nodes]
        status = await queries.statuses(model.db, tenant_id, project_id, ids)
        return GraphPage(
            graph_version=row.graph_version,
            nodes=[_view(n, status.get(n.node.unique_id)) for n in nodes],
            edges=_edges(nodes, set(ids) if wanted is not None else None),
            next_after=ids[-1] if len(nodes) == limit else None,
        )

    @get(
        "/graph/outline",
        summary="The whole graph at a version, compact (what the graph canvas draws)",
        responses={
            200: ResponseSpec(
                data_container=GraphOutline, description="Nodes and edges (index pairs).", generate_examples=False
            )
        },
    )
    async def get_outline(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        version: Version = None,
    ) -> Response[bytes]:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        row = await model.resolve_version(tenant_id, project_id, version)
        outline = await model.outline(tenant_id, project_id, row.graph_version)
        # A version's outline never changes: the ETag names the version, and a browser revalidates cheaply.
        headers = {
            "ETag": f'"outline-{row.graph_version}"',
            "Cache-Control": "private, no-cache",
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(b"", status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(outline.gzip, media_type="application/json", headers=headers)
        return Response(outline.json, media_type="application/json", headers=headers)

    @get("/graph/statuses", summary="Each node's last recorded status (unique_id -> status)")
    async def get_statuses(
        self, *, tenant_id: FromPath[str], project_id: FromPath[str], runtime: RuntimeDep, principal: PrincipalDep
    ) -> NodeStatuses:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        return NodeStatuses(statuses=await queries.last_statuses(model.db, tenant_id, project_id))

    @get("/graph/nodes/{unique_id:path}", summary="One node with its docs, columns, tests, status and code")
    async def get_node(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        unique_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        version: Version = None,
    ) -> NodeDetail:
        model = _reader(runtime, principal, tenant_id, project_id)
        unique_id = unique_id.removeprefix("/")
        await model.catch_up()
        row = await model.resolve_version(tenant_id, project_id, version)
        found = await queries.nodes(model.db, tenant_id, project_id, row.graph_version, unique_ids=[unique_id])
        if not found:
            raise NotFoundError(f"node {unique_id!r} is not in graph version {row.graph_version}")
        dag = await model.dag(tenant_id, project_id, row.graph_version)
        children = dag.children(unique_id)
        neighbours = await queries.nodes(model.db, tenant_id, project_id, row.graph_version, unique_ids=children)
        tests = sorted(
            n.node.unique_id
            for n in neighbours
            if n.node.resource_type in ("test", "unit_test") and n.node.attached_node in (None, unique_id)
        )
        catalog = await queries.catalog(model.db, tenant_id, project_id, row.graph_version, [unique_id])
        status = await queries.statuses(model.db, tenant_id, project_id, [unique_id])
        code = await node_code.code_of(runtime.objects.for_tenant(tenant_id), row.code_key, unique_id)
        return NodeDetail(
            graph_version=row.graph_version,
            node=_view(found[0], status.get(unique_id)),
            catalog=catalog.get(unique_id),
            parents=dag.parents(unique_id),
            children=children,
            tests=tests,
            versions=await queries.version_siblings(model.db, tenant_id, project_id, row.graph_version, found[0].node),
            raw_code=code.raw_code,
            compiled_code=code.compiled_code,
            owner=await _owner(model, tenant_id, project_id, row.graph_version, found[0].node),
        )

    @get("/graph/diff", summary="What changed between two graph versions")
    async def diff(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        from_version: Annotated[int, QueryParameter(name="from", ge=0)],
        to_version: Annotated[int | None, QueryParameter(name="to", ge=1)] = None,
    ) -> VersionDiff:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        to_row = await model.resolve_version(tenant_id, project_id, to_version)
        if from_version > to_row.graph_version:
            raise ContractViolationError(
                f"a diff goes forward: from (v{from_version}) must not be after to (v{to_row.graph_version})",
                field="from",
            )
        if from_version > 0:
            await model.resolve_version(tenant_id, project_id, from_version)
        changes = await queries.diff(model.db, tenant_id, project_id, from_version, to_row.graph_version)
        return VersionDiff(
            from_version=from_version,
            to_version=to_row.graph_version,
            added=[c for c in changes if c.kind == "added"],
            removed=[c for c in changes if c.kind == "removed"],
            renamed=[c for c in changes if c.kind == "renamed"],
            changed=[c for c in changes if c.kind == "changed"],
        )

    @get("/artifacts/{key:path}", summary="Download a stored artifact of this project")
    async def download(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        key: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
    ) -> Response[bytes]:
        model = _reader(runtime, principal, tenant_id, project_id)
        await model.catch_up()
        key = key.lstrip("/")
        if key not in await queries.artifact_keys(model.db, tenant_id, project_id):
            raise NotFoundError(f"project {project_id!r} has no artifact {key!r}")
        data = await runtime.objects.for_tenant(tenant_id).get(key)
        return Response(data, media_type="application/json", headers={"ETag": f'"{key.rsplit("/", 1)[-1]}"'})
