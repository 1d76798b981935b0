"""One trace from an HTTP command through the stored event's envelope, the NATS headers, and the
projector's span (issue 2, item 10), on the real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.envelope import ORIGIN, RecordedEvent
from contracts.events.tenancy import ProjectCreated
from projections.runner import ProjectionRunner
from projections.runtime import Connection
from services.api.app import create_app
from services.shared.auth import TokenTable
from services.shared.bus.nats import JetStreamFeed, connect_nats, ensure_stream
from services.shared.bus.relay import Relay
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.settings import Settings
from services.shared.telemetry import configure_tracing
from tests.integration.api_support import ADMIN_H, TOKENS, open_with_tenants, project_body

_EXPORTER = InMemorySpanExporter()
_installed = False


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider with an in-memory exporter (a provider can be installed only once)."""
    global _installed  # noqa: PLW0603 - one processor for the whole test session
    provider = configure_tracing()
    if not _installed:
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _installed = True
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


class ProjectedIds:
    """A read model of its own (the API process already keeps the tenancy read model current)."""

    name = "trace_probe"
    schema = "CREATE TABLE IF NOT EXISTS trace_probe (event_id uuid PRIMARY KEY)"
    tables = ("trace_probe",)

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        await conn.execute("INSERT INTO trace_probe VALUES ($1)", event.event_id)


def trace_and_span(traceparent: str) -> tuple[int, int]:
    _version, trace_id, span_id, _flags = traceparent.split("-")
    return int(trace_id, 16), int(span_id, 16)


async def test_one_trace_links_the_http_command_the_stored_event_nats_and_the_projector(
    spans: InMemorySpanExporter, pg_url: str, nats_url: str, nats_names: tuple[str, str]
) -> None:
    stream, prefix = nats_names
    app = create_app(Settings(database_url=pg_url, dev_principal=False), tokens=TokenTable(TOKENS),
                     open_runtime=open_with_tenants)  # fmt: skip
    async with AsyncTestClient(app) as client:
        response = await client.post("/api/tenants/acme/projects", json=project_body("traced"), headers=ADMIN_H)
        assert response.status_code == 201, response.text

    [server_span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER and "projects" in s.name]
    http_trace = server_span.context.trace_id

    store = await PostgresEventStore.connect(pg_url, migrate=False)
    nc = await connect_nats(nats_url)
    stop = asyncio.Event()
    try:
        # 1. The stored event's envelope carries the HTTP request's trace.
        [stored] = [
            e for e in await store.for_tenant("acme").read_after(ORIGIN) if isinstance(e.payload, ProjectCreated)
        ]
        assert stored.metadata.traceparent is not None
        stored_trace, stored_parent = trace_and_span(stored.metadata.traceparent)
        assert stored_trace == http_trace
        recorded_in = {s.context.span_id: s for s in spans.get_finished_spans()}
        assert stored_parent in recorded_in, "the envelope names a span of the HTTP request"

        # 2. The relay copies it into the NATS headers.
        await ensure_stream(nc, stream, prefix)
        relay = Relay(store, nc, stream=stream, prefix=prefix)
        relay_task = asyncio.create_task(relay.run(stop))
        js = nc.jetstream()
        message = None
        async with asyncio.timeout(20):
            while message is None:
                with contextlib.suppress(Exception):
                    message = await js.get_last_msg(stream, f"{prefix}.acme.tenancy.project_created")
                if message is None:
                    await asyncio.sleep(0.05)
        assert message.headers is not None
        assert message.headers["traceparent"] == stored.metadata.traceparent

        # 3. The projector, fed from JetStream, applies the event in a span that is a child of that context.
        spans.clear()
        runner = ProjectionRunner(ProjectedIds(), store.pool, store)
        seen: list[RecordedEvent] = []
        feed = JetStreamFeed(nc, stream=stream, prefix=prefix)

        async def handler(events: list[RecordedEvent]) -> None:
            await runner.handle(events)
            seen.extend(events)
            if any(e.event_id == stored.event_id for e in events):
                stop.set()

        await runner.start()
        async with asyncio.timeout(30):
            await feed.run("traced_projection", ORIGIN, handler, stop)
        await relay_task
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)  # created by this test only (nats_names)
        await nc.close()
        await store.close()

    projector_spans: list[ReadableSpan] = [
        s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER and s.attributes
        and s.attributes.get("lockgate.event_id") == str(stored.event_id)
    ]  # fmt: skip
    assert len(projector_spans) == 1, [s.name for s in spans.get_finished_spans()]
    [applied] = projector_spans
    assert applied.context.trace_id == http_trace
    assert applied.parent is not None
    assert applied.parent.span_id == stored_parent
    assert trace.get_current_span() is trace.INVALID_SPAN or not trace.get_current_span().is_recording()
    assert stored.event_id in {e.event_id for e in seen}
