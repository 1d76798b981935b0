"""``GET /api/me``: the caller as the API sees them (subject, tenant, roles and what they may do)."""

from __future__ import annotations

from litestar import get

from contracts.api.session import MeView
from services.api.deps import PrincipalDep
from services.runs.domain import APPROVING_ROLES
from services.shared.auth import ADMIN


@get("/api/me", summary="Who is calling", tags=["session"])
async def me(principal: PrincipalDep) -> MeView:
    roles = sorted(principal.roles)
    return MeView(
        subject=principal.subject,
        display_name=principal.display_name or principal.subject,
        tenant_id=principal.tenant_id,
        roles=roles,
        can_write=ADMIN in roles,
        can_approve=bool(APPROVING_ROLES & set(roles)),
    )
