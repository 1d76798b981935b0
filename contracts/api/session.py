"""Who the caller is (``GET /api/me``): what the web UI needs to show and to offer only what is allowed."""

from __future__ import annotations

import msgspec


class MeView(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    display_name: str
    tenant_id: str
    roles: list[str]
    can_write: bool
    """May request runs, ingest and edit projects (``admin``)."""
    can_approve: bool
    """May approve or reject plans (``approver`` or ``admin``); in production, never one's own run."""
