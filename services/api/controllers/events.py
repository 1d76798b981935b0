"""``GET /api/tenants/{tenant_id}/events``: the tenant's event log (envelope + payload), in commit-safe order.

Reads the store directly (``store.for_tenant(t).read_after``), so it shows every committed event the
moment it is visible to tailing readers, whatever the state of the read models.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from contracts.api.events import EventList, EventView, parse_cursor
from services.api.deps import PrincipalDep, RuntimeDep
from services.shared.auth import ADMIN, VIEWER
from services.shared.errors import ContractViolationError

MAX_LIMIT = 1000
MAX_TYPES = 50


class EventController(Controller):
    path = "/api/tenants/{tenant_id:str}/events"
    tags = ["events"]  # noqa: RUF012 - litestar reads it as a class attribute

    @get("/", summary="The tenant's events after a position, optionally of one stream or of some types")
    async def list_events(
        self,
        *,
        tenant_id: FromPath[str],
        runtime: RuntimeDep,
        principal: PrincipalDep,
        stream: Annotated[str | None, QueryParameter(max_length=200, description="Only this stream id.")] = None,
        event_type: Annotated[
            list[str] | None, QueryParameter(name="type", description="Only these wire tags (repeatable).")
        ] = None,
        after: Annotated[
            str | None, QueryParameter(max_length=41, description="A `position` cursor '<tx_id>:<global_position>'.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 100,
    ) -> EventList:
        principal.require_tenant(tenant_id)
        principal.require_role(ADMIN, VIEWER)
        try:
            position = parse_cursor(after or "0")
        except ValueError as exc:
            raise ContractViolationError(str(exc), field="after") from None
        if event_type is not None and len(event_type) > MAX_TYPES:
            raise ContractViolationError(f"at most {MAX_TYPES} event types", field="type")
        events = await runtime.store.for_tenant(tenant_id).read_after(
            position, limit=limit, types=event_type, stream_id=stream
        )
        items = [EventView.of(event) for event in events]
        return EventList(items=items, next_after=items[-1].position if len(items) == limit else None)
