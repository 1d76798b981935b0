"""The error body of every failed HTTP request (RFC 9457 problem details)."""

from __future__ import annotations

from typing import Any

import msgspec


class ProblemDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str
    """A stable URN per error code: ``urn:lockgate:error:<code>``."""
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    request_id: str | None = None
    extra: dict[str, Any] = {}
