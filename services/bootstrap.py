"""First start: make sure the default tenant and its default org exist.

Idempotent and safe when several processes start at once: each step reads the stream first and, if two
processes race, the loser's create is refused as ``AlreadyExistsError`` (the store's unique stream
version), which is what "already done" means here. An archived default tenant or org is left as it is.
"""

from __future__ import annotations

import logging
import uuid

from contracts.commands.tenancy import CreateOrg, CreateTenant
from contracts.envelope import SYSTEM_ACTOR
from services.shared.commands import CommandContext
from services.shared.errors import AlreadyExistsError
from services.shared.eventstore.port import EventStore
from services.shared.settings import Settings
from services.tenancy.domain import org_stream, tenant_stream
from services.tenancy.handlers import handle_create_org, handle_create_tenant

log = logging.getLogger(__name__)


async def ensure_tenant(store: EventStore, tenant_id: str, name: str, *, org_id: str, org_name: str) -> bool:
    """Create ``tenant_id`` and its org ``org_id`` where missing; True if anything was created."""
    tenant_store = store.for_tenant(tenant_id)
    context = CommandContext(actor=SYSTEM_ACTOR, correlation_id=uuid.uuid4())
    created = False
    if await tenant_store.stream_version(tenant_stream(tenant_id)) == 0:
        try:
            await handle_create_tenant(tenant_store, CreateTenant(tenant_id=tenant_id, name=name), context)
            created = True
            log.info("created tenant %s", tenant_id)
        except AlreadyExistsError:
            pass  # another process won the race
    if await tenant_store.stream_version(org_stream(org_id)) == 0:
        try:
            await handle_create_org(tenant_store, CreateOrg(org_id=org_id, name=org_name), context)
            created = True
            log.info("created org %s in tenant %s", org_id, tenant_id)
        except AlreadyExistsError:
            pass
    return created


async def bootstrap(store: EventStore, settings: Settings) -> bool:
    """The embedded default's first start: tenant ``settings.default_tenant`` with org ``settings.default_org``."""
    return await ensure_tenant(
        store,
        settings.default_tenant,
        "Default",
        org_id=settings.default_org,
        org_name="Default",
    )
