"""Request-scoped dependencies: the runtime, the caller (principal), and the command context."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from services.runtime import Runtime
from services.shared.auth import Principal, TokenTable, dev_principal, is_loopback
from services.shared.commands import CommandContext
from services.shared.errors import ContractViolationError, UnauthenticatedError
from services.shared.telemetry import current_traceparent

RuntimeDep = NamedDependency[Runtime]
PrincipalDep = NamedDependency[Principal]
ContextDep = NamedDependency[CommandContext]
"""Controller parameters that litestar fills from the app's dependencies (declared once, here)."""

_IF_MATCH = re.compile(r'^\s*(?:W/)?(?:"(\d{1,9})"|(\d{1,9}))\s*$')
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    runtime: Runtime = state.runtime
    tokens: TokenTable = state.tokens
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("expected 'Authorization: Bearer <token>'")
        principal = tokens.resolve(token.strip())
        if principal is None:
            raise UnauthenticatedError("unknown or expired token")
        return principal
    client = request.client.host if request.client else None
    if runtime.settings.dev_principal and is_loopback(client):
        # The development principal exists for the embedded default on a laptop: `serve` refuses to
        # bind a non-loopback address while it is enabled, and it is checked per request as well.
        return dev_principal(runtime.settings.default_tenant)
    raise UnauthenticatedError("authentication required")


def provide_command_context(request: Request[Any, Any, Any], principal: NamedDependency[Principal]) -> CommandContext:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ContractViolationError("Idempotency-Key must be 1..200 printable ASCII characters")
    correlation = request.scope["state"].get("correlation_id")
    return CommandContext(
        actor=principal.actor(),
        correlation_id=uuid.UUID(correlation) if correlation else uuid.uuid4(),
        traceparent=current_traceparent(),
        idempotency_key=key,
    )


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """The If-Match header as an expected stream version (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(header)
    if match is None:
        raise ContractViolationError(f"If-Match must be a stream version such as '\"3\"', got {header[:40]!r}")
    return int(match.group(1) or match.group(2))
