"""Logs and traces (ADR 0007): structlog JSON lines carrying request and correlation ids, and an
OpenTelemetry tracer whose W3C ``traceparent`` travels in each event's envelope and NATS headers."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext

import structlog
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

TRACER_NAME = "lockgate"


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    """Route stdlib logging and structlog through one JSON (or console) renderer on stderr."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # logs every initdb/pg_ctl command line at INFO


def _add_trace_ids(_logger: object, _method: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event_dict["trace_id"] = format(span.trace_id, "032x")
        event_dict["span_id"] = format(span.span_id, "016x")
    return event_dict


def configure_tracing(provider: TracerProvider | None = None) -> TracerProvider:
    """Install a tracer provider (an exporter is added by configuration or by tests)."""
    current = trace.get_tracer_provider()
    if provider is None and isinstance(current, TracerProvider):
        return current
    provider = provider or TracerProvider()
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to be stored in an event's envelope."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(traceparent: str | None) -> Context | None:
    """The trace context an event was recorded in, to parent the spans of its consumers."""
    if not traceparent:
        return None
    return propagate.extract({"traceparent": traceparent})


def consumer_span(name: str, traceparent: str | None, **attributes: str) -> AbstractContextManager[object]:
    """A CONSUMER span parented by the trace an event was recorded in; nothing when it carries none."""
    context = context_from_traceparent(traceparent)
    if context is None:
        return nullcontext()
    return tracer().start_as_current_span(name, context=context, kind=SpanKind.CONSUMER, attributes=attributes)


def context_from_headers(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))
