"""Tenancy routes: ``/api/tenants/{tenant_id}``, its orgs, projects and environments.

Every route first checks that ``tenant_id`` is the caller's (403 otherwise, without saying whether it
exists); writes also need the ``admin`` role. Commands answer with the read model's view of what they
wrote (read-your-writes, see ``services.tenancy.readmodel``), its ``ETag`` (the stream version) and, for
creates, ``201`` with a ``Location``. ``If-Match`` is the expected stream version of renames, settings
changes and archives (412 when the stream moved on); ``Idempotency-Key`` makes a retried command a no-op
that answers like the first one. Errors are mapped to problem+json in ``services.api.errors`` only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from contracts.api.tenancy import (
    ArchiveRequest,
    CreateEnvironmentRequest,
    CreateOrgRequest,
    CreateProjectRequest,
    EnvironmentList,
    EnvironmentSettingsRequest,
    EnvironmentView,
    OrgList,
    OrgView,
    ProjectList,
    ProjectSettingsRequest,
    ProjectView,
    RenameRequest,
    Status,
    TenantView,
)
from contracts.commands.tenancy import (
    ArchiveEnvironment,
    ArchiveOrg,
    ArchiveProject,
    ArchiveTenant,
    ChangeEnvironmentSettings,
    ChangeProjectSettings,
    CreateEnvironment,
    CreateOrg,
    CreateProject,
    RenameEnvironment,
    RenameOrg,
    RenameProject,
    RenameTenant,
)
from projections.tenancy import queries
from services.api.deps import ContextDep, PrincipalDep, RuntimeDep, expected_version
from services.runtime import Runtime
from services.shared.auth import ADMIN, VIEWER, Principal
from services.shared.commands import CommandResult
from services.shared.errors import NotFoundError
from services.shared.eventstore.postgres import PostgresTenantStore
from services.tenancy import handlers
from services.tenancy.readmodel import TenancyReadModel, read_model
from services.tenancy.rules import check_id

V = TypeVar("V", TenantView, OrgView, ProjectView, EnvironmentView)


Limit = Annotated[int, QueryParameter(ge=1, le=queries.MAX_LIMIT, description="Page size.")]
After = Annotated[str | None, QueryParameter(max_length=63, description="The `next_after` of the previous page.")]
StatusQuery = Annotated[Status | None, QueryParameter(description="Only rows with this status.")]

TENANT_PATH = "/api/tenants/{tenant_id:str}"


def _reader(runtime: Runtime, principal: Principal, tenant_id: str) -> TenancyReadModel:
    principal.require_tenant(tenant_id)
    principal.require_role(ADMIN, VIEWER)
    return read_model(runtime.store)


def _writer(runtime: Runtime, principal: Principal, tenant_id: str) -> PostgresTenantStore:
    principal.require_tenant(tenant_id)
    principal.require_role(ADMIN)
    return runtime.store.for_tenant(tenant_id)


def _etag(version: int) -> str:
    return f'"{version}"'


def _respond(view: V, *, status: int = 200, location: str | None = None) -> Response[V]:
    headers = {"ETag": _etag(view.version)}
    if location is not None:
        headers["Location"] = location
    return Response(view, status_code=status, headers=headers)


async def _found(model: TenancyReadModel, fetch: Callable[[], Awaitable[V | None]], what: str) -> V:
    await model.catch_up()
    view = await fetch()
    if view is None:
        raise NotFoundError(f"{what} not found")
    return view


async def _after_command(
    model: TenancyReadModel, result: CommandResult, fetch: Callable[[], Awaitable[V | None]], what: str
) -> V:
    return await model.wait_for(fetch, result.version, what)


def _page_end(items: list[Any], limit: int, key: Callable[[Any], str]) -> str | None:
    return key(items[-1]) if len(items) == limit else None


class TenantController(Controller):
    path = TENANT_PATH
    tags = ["tenancy"]  # noqa: RUF012 - litestar reads it as a class attribute

    @get("/", summary="The tenant")
    async def get_tenant(
        self, *, tenant_id: FromPath[str], runtime: RuntimeDep, principal: PrincipalDep
    ) -> Response[TenantView]:
        model = _reader(runtime, principal, tenant_id)
        view = await _found(model, lambda: queries.get_tenant(model.db, tenant_id), f"tenant {tenant_id!r}")
        return _respond(view)

    @patch("/", summary="Rename the tenant")
    async def rename_tenant(
        self,
        *,
        tenant_id: FromPath[str],
        data: JSONBody[RenameRequest],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[TenantView]:
        store = _writer(runtime, principal, tenant_id)
        result = await handlers.handle_rename_tenant(
            store,
            RenameTenant(tenant_id=tenant_id, name=data.name),
            command_context,
            expected_version=expected_version(request),
        )
        model = read_model(runtime.store)
        fetch = lambda: queries.get_tenant(model.db, tenant_id)  # noqa: E731
        return _respond(await _after_command(model, result, fetch, f"tenant {tenant_id!r}"))

    @post("/archive", summary="Archive the tenant (it accepts no new orgs, projects or environments)", status_code=200)
    async def archive_tenant(
        self,
        *,
        tenant_id: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
        data: JSONBody[ArchiveRequest | None] = None,
    ) -> Response[TenantView]:
        store = _writer(runtime, principal, tenant_id)
        result = await handlers.handle_archive_tenant(
            store,
            ArchiveTenant(tenant_id=tenant_id, reason=data.reason if data else ""),
            command_context,
            expected_version=expected_version(request),
        )
        model = read_model(runtime.store)
        fetch = lambda: queries.get_tenant(model.db, tenant_id)  # noqa: E731
        return _respond(await _after_command(model, result, fetch, f"tenant {tenant_id!r}"))


class OrgController(Controller):
    path = f"{TENANT_PATH}/orgs"
    tags = ["tenancy"]  # noqa: RUF012

    @post("/", summary="Create an org")
    async def create_org(
        self,
        *,
        tenant_id: FromPath[str],
        data: JSONBody[CreateOrgRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[OrgView]:
        store = _writer(runtime, principal, tenant_id)
        result = await handlers.handle_create_org(store, CreateOrg(org_id=data.org_id, name=data.name), command_context)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_org(model.db, tenant_id, data.org_id)  # noqa: E731
        view = await _after_command(model, result, fetch, f"org {data.org_id!r}")
        return _respond(view, status=201, location=f"/api/tenants/{tenant_id}/orgs/{data.org_id}")

    @get("/", summary="List orgs")
    async def list_orgs(
        self,
        *,
        tenant_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        status: StatusQuery = None,
        after: After = None,
        limit: Limit = queries.DEFAULT_LIMIT,
    ) -> OrgList:
        model = _reader(runtime, principal, tenant_id)
        await model.catch_up()
        items = await queries.list_orgs(model.db, tenant_id, status=status, after=after, limit=limit)
        return OrgList(items=items, next_after=_page_end(items, limit, lambda org: org.org_id))

    @get("/{org_id:str}", summary="One org")
    async def get_org(
        self, *, tenant_id: FromPath[str], org_id: FromPath[str], runtime: RuntimeDep, principal: PrincipalDep
    ) -> Response[OrgView]:
        model = _reader(runtime, principal, tenant_id)
        check_id("org", org_id)
        view = await _found(model, lambda: queries.get_org(model.db, tenant_id, org_id), f"org {org_id!r}")
        return _respond(view)

    @patch("/{org_id:str}", summary="Rename an org")
    async def rename_org(
        self,
        *,
        tenant_id: FromPath[str],
        org_id: FromPath[str],
        data: JSONBody[RenameRequest],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[OrgView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_org(model.db, tenant_id, check_id("org", org_id))  # noqa: E731
        await _found(model, fetch, f"org {org_id!r}")
        result = await handlers.handle_rename_org(
            store, RenameOrg(org_id=org_id, name=data.name), command_context, expected_version=expected_version(request)
        )
        return _respond(await _after_command(model, result, fetch, f"org {org_id!r}"))

    @post("/{org_id:str}/archive", summary="Archive an org (it accepts no new projects)", status_code=200)
    async def archive_org(
        self,
        *,
        tenant_id: FromPath[str],
        org_id: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
        data: JSONBody[ArchiveRequest | None] = None,
    ) -> Response[OrgView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_org(model.db, tenant_id, check_id("org", org_id))  # noqa: E731
        await _found(model, fetch, f"org {org_id!r}")
        result = await handlers.handle_archive_org(
            store,
            ArchiveOrg(org_id=org_id, reason=data.reason if data else ""),
            command_context,
            expected_version=expected_version(request),
        )
        return _respond(await _after_command(model, result, fetch, f"org {org_id!r}"))


class ProjectController(Controller):
    path = f"{TENANT_PATH}/projects"
    tags = ["tenancy"]  # noqa: RUF012

    @post("/", summary="Create a project")
    async def create_project(
        self,
        *,
        tenant_id: FromPath[str],
        data: JSONBody[CreateProjectRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[ProjectView]:
        store = _writer(runtime, principal, tenant_id)
        command = CreateProject(
            project_id=data.project_id,
            org_id=data.org_id or runtime.settings.default_org,
            name=data.name,
            repository=data.repository,
            ref=data.ref,
            roundtrip_level=data.roundtrip_level,
            editable_models=tuple(data.editable_models),
        )
        result = await handlers.handle_create_project(store, command, command_context)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_project(model.db, tenant_id, data.project_id)  # noqa: E731
        view = await _after_command(model, result, fetch, f"project {data.project_id!r}")
        return _respond(view, status=201, location=f"/api/tenants/{tenant_id}/projects/{data.project_id}")

    @get("/", summary="List projects")
    async def list_projects(
        self,
        *,
        tenant_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        org_id: Annotated[str | None, QueryParameter(max_length=63, description="Only this org's projects.")] = None,
        status: StatusQuery = None,
        after: After = None,
        limit: Limit = queries.DEFAULT_LIMIT,
    ) -> ProjectList:
        model = _reader(runtime, principal, tenant_id)
        await model.catch_up()
        items = await queries.list_projects(model.db, tenant_id, org_id=org_id, status=status, after=after, limit=limit)
        return ProjectList(items=items, next_after=_page_end(items, limit, lambda project: project.project_id))

    @get("/{project_id:str}", summary="One project")
    async def get_project(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
    ) -> Response[ProjectView]:
        model = _reader(runtime, principal, tenant_id)
        check_id("project", project_id)
        fetch = lambda: queries.get_project(model.db, tenant_id, project_id)  # noqa: E731
        return _respond(await _found(model, fetch, f"project {project_id!r}"))

    @patch("/{project_id:str}", summary="Rename a project")
    async def rename_project(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[RenameRequest],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[ProjectView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_project(model.db, tenant_id, check_id("project", project_id))  # noqa: E731
        await _found(model, fetch, f"project {project_id!r}")
        result = await handlers.handle_rename_project(
            store,
            RenameProject(project_id=project_id, name=data.name),
            command_context,
            expected_version=expected_version(request),
        )
        return _respond(await _after_command(model, result, fetch, f"project {project_id!r}"))

    @put("/{project_id:str}/settings", summary="Replace a project's repository and roundtrip settings")
    async def change_project_settings(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[ProjectSettingsRequest],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[ProjectView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_project(model.db, tenant_id, check_id("project", project_id))  # noqa: E731
        await _found(model, fetch, f"project {project_id!r}")
        command = ChangeProjectSettings(
            project_id=project_id,
            repository=data.repository,
            ref=data.ref,
            roundtrip_level=data.roundtrip_level,
            editable_models=tuple(data.editable_models),
        )
        result = await handlers.handle_change_project_settings(
            store, command, command_context, expected_version=expected_version(request)
        )
        return _respond(await _after_command(model, result, fetch, f"project {project_id!r}"))

    @post("/{project_id:str}/archive", summary="Archive a project (it accepts no new environments)", status_code=200)
    async def archive_project(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
        data: JSONBody[ArchiveRequest | None] = None,
    ) -> Response[ProjectView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_project(model.db, tenant_id, check_id("project", project_id))  # noqa: E731
        await _found(model, fetch, f"project {project_id!r}")
        result = await handlers.handle_archive_project(
            store,
            ArchiveProject(project_id=project_id, reason=data.reason if data else ""),
            command_context,
            expected_version=expected_version(request),
        )
        return _respond(await _after_command(model, result, fetch, f"project {project_id!r}"))


class EnvironmentController(Controller):
    path = f"{TENANT_PATH}/projects/{{project_id:str}}/environments"
    tags = ["tenancy"]  # noqa: RUF012

    @post("/", summary="Create an environment of a project")
    async def create_environment(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        data: JSONBody[CreateEnvironmentRequest],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[EnvironmentView]:
        store = _writer(runtime, principal, tenant_id)
        check_id("project", project_id)
        command = CreateEnvironment(
            project_id=project_id,
            environment_id=data.environment_id,
            name=data.name,
            adapter_type=data.adapter_type,
            target=data.target,
            secrets=data.secrets,
            production=data.production,
        )
        result = await handlers.handle_create_environment(store, command, command_context)
        model = read_model(runtime.store)
        fetch = lambda: queries.get_environment(model.db, tenant_id, project_id, data.environment_id)  # noqa: E731
        what = f"environment {data.environment_id!r}"
        view = await _after_command(model, result, fetch, what)
        location = f"/api/tenants/{tenant_id}/projects/{project_id}/environments/{data.environment_id}"
        return _respond(view, status=201, location=location)

    @get("/", summary="List a project's environments")
    async def list_environments(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        status: StatusQuery = None,
        after: After = None,
        limit: Limit = queries.DEFAULT_LIMIT,
    ) -> EnvironmentList:
        model = _reader(runtime, principal, tenant_id)
        check_id("project", project_id)
        await _found(model, lambda: queries.get_project(model.db, tenant_id, project_id), f"project {project_id!r}")
        items = await queries.list_environments(
            model.db, tenant_id, project_id, status=status, after=after, limit=limit
        )
        return EnvironmentList(items=items, next_after=_page_end(items, limit, lambda env: env.environment_id))

    @get("/{environment_id:str}", summary="One environment")
    async def get_environment(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        environment_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
    ) -> Response[EnvironmentView]:
        model = _reader(runtime, principal, tenant_id)
        fetch = _environment_fetch(model, tenant_id, project_id, environment_id)
        return _respond(await _found(model, fetch, _environment_label(project_id, environment_id)))

    @patch("/{environment_id:str}", summary="Rename an environment")
    async def rename_environment(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        environment_id: FromPath[str],
        data: JSONBody[RenameRequest],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[EnvironmentView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = _environment_fetch(model, tenant_id, project_id, environment_id)
        what = _environment_label(project_id, environment_id)
        await _found(model, fetch, what)
        result = await handlers.handle_rename_environment(
            store,
            RenameEnvironment(project_id=project_id, environment_id=environment_id, name=data.name),
            command_context,
            expected_version=expected_version(request),
        )
        return _respond(await _after_command(model, result, fetch, what))

    @put("/{environment_id:str}/settings", summary="Replace an environment's adapter, target and secret references")
    async def change_environment_settings(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        environment_id: FromPath[str],
        data: JSONBody[EnvironmentSettingsRequest],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
    ) -> Response[EnvironmentView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = _environment_fetch(model, tenant_id, project_id, environment_id)
        what = _environment_label(project_id, environment_id)
        await _found(model, fetch, what)
        command = ChangeEnvironmentSettings(
            project_id=project_id,
            environment_id=environment_id,
            adapter_type=data.adapter_type,
            target=data.target,
            secrets=data.secrets,
            production=data.production,
        )
        result = await handlers.handle_change_environment_settings(
            store, command, command_context, expected_version=expected_version(request)
        )
        return _respond(await _after_command(model, result, fetch, what))

    @post("/{environment_id:str}/archive", summary="Archive an environment", status_code=200)
    async def archive_environment(
        self,
        *,
        tenant_id: FromPath[str],
        project_id: FromPath[str],
        environment_id: FromPath[str],
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        command_context: ContextDep,
        data: JSONBody[ArchiveRequest | None] = None,
    ) -> Response[EnvironmentView]:
        store = _writer(runtime, principal, tenant_id)
        model = read_model(runtime.store)
        fetch = _environment_fetch(model, tenant_id, project_id, environment_id)
        what = _environment_label(project_id, environment_id)
        await _found(model, fetch, what)
        result = await handlers.handle_archive_environment(
            store,
            ArchiveEnvironment(
                project_id=project_id, environment_id=environment_id, reason=data.reason if data else ""
            ),
            command_context,
            expected_version=expected_version(request),
        )
        return _respond(await _after_command(model, result, fetch, what))


def _environment_label(project_id: str, environment_id: FromPath[str]) -> str:
    return f"environment {environment_id!r} of project {project_id!r}"


def _environment_fetch(
    model: TenancyReadModel, tenant_id: FromPath[str], project_id: FromPath[str], environment_id: FromPath[str]
) -> Callable[[], Awaitable[EnvironmentView | None]]:
    check_id("project", project_id)
    check_id("environment", environment_id)
    return lambda: queries.get_environment(model.db, tenant_id, project_id, environment_id)


TENANCY_CONTROLLERS = [TenantController, OrgController, ProjectController, EnvironmentController]
