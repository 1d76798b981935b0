"""Canvas command handling: check the project, then load -> decide -> append (``services.shared.commands``).

Canvas commands carry absolute values (a node's position, a group's full member list), so applying one on top of
an edit that raced it is still what the caller meant: without ``If-Match`` a lost race is retried on the fresh
state (a few times); with ``If-Match`` the caller asked to refuse a stale edit, and gets 412.
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.commands.canvas import CanvasCommand
from contracts.envelope import Scope
from services.canvas.domain import EMPTY, Where, canvas_stream, decide, evolve
from services.shared.commands import CommandContext, CommandResult, execute
from services.shared.errors import ArchivedError, ConcurrencyConflictError, NotFoundError
from services.shared.eventstore.port import TenantEventStore
from services.tenancy.handlers import load_project

ATTEMPTS = 3


async def handle_canvas_command(
    store: TenantEventStore,
    project_id: str,
    workspace: str,
    command: CanvasCommand,
    context: CommandContext,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> CommandResult:
    project = await load_project(store, project_id)
    if project is None:
        raise NotFoundError(f"project {project_id!r} not found", project_id=project_id)
    if project.status == "archived":
        raise ArchivedError(f"project {project_id!r} is archived", project_id=project_id)
    at = Where(project_id=project_id, workspace=workspace, now=now or datetime.now(UTC))
    attempt = 1
    while True:
        try:
            return await execute(
                store,
                canvas_stream(project_id, workspace),
                initial=EMPTY,
                evolve=evolve,
                decide=lambda state: decide(state, command, at),
                scope=Scope(tenant_id=store.tenant_id, org_id=project.org_id, project_id=project_id),
                context=context,
                expected_version=expected_version,
                now=at.now,
            )
        except ConcurrencyConflictError:
            if expected_version is not None or attempt >= ATTEMPTS:
                raise
            attempt += 1
