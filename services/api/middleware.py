"""Request and correlation ids, bound to every log line and echoed in the response headers, and one
server span per request so that commands are traced from HTTP to the events they record."""

from __future__ import annotations

import re
import uuid

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.shared.telemetry import context_from_headers, tracer

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            text = value.decode("latin-1")
            return text if _SAFE_ID.fullmatch(text) else None
    return None


def request_context(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        # A caller-supplied correlation id ties this request to a wider flow; a malformed one is ignored.
        correlation_id = _header(scope, b"x-correlation-id")
        try:
            correlation_id = str(uuid.UUID(correlation_id)) if correlation_id else str(uuid.uuid4())
        except ValueError:
            correlation_id = str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["correlation_id"] = correlation_id

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-correlation-id", correlation_id.encode()))
                message["headers"] = headers
                span = trace.get_current_span()
                span.set_attribute("http.response.status_code", message["status"])
            await send(message)

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        name = f"{scope.get('method', 'HTTP')} {scope.get('path', '')}"
        with (
            structlog.contextvars.bound_contextvars(request_id=request_id, correlation_id=correlation_id),
            tracer().start_as_current_span(name, context=context_from_headers(carrier), kind=SpanKind.SERVER),
        ):
            await app(scope, receive, send_with_ids)

    return middleware
