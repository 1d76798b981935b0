"""Reading stored events whose shape has moved on: a v1 event stored through the real PostgreSQL store is read
back as v2; stored rows are never rewritten; unknown types and malformed stored payloads give typed errors.

The v1/v2 Structs are test-only and live in private registries: ``OLD`` is the code before the change (it knows
only v1), ``NEW`` the code after it (v1 kept registered, plus the upcaster to v2).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from contracts.base import Event, tag_of
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventDecodeError, EventRegistry, UnknownEventTypeError
from contracts.wire import decode_wire, encode_wire
from services.shared.eventstore.port import ANY_VERSION, NO_STREAM
from services.shared.eventstore.postgres import PostgresEventStore


class WidgetRenamedV1(Event, frozen=True, kw_only=True, tag="lgtest.widget_renamed.v1"):
    widget_id: uuid.UUID
    name: str


class WidgetRenamedV2(Event, frozen=True, kw_only=True, tag="lgtest.widget_renamed.v2"):
    """v2 splits the one ``name`` into the new name and the previous one (unknown for v1 events)."""

    widget_id: uuid.UUID
    new_name: str
    previous_name: str | None = None


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    width: int
    height: int


class WidgetResized(Event, frozen=True, kw_only=True, tag="lgtest.widget_resized.v1"):
    widget_id: uuid.UUID
    sizes: list[Sizes]


def upcast_renamed(old: WidgetRenamedV1) -> WidgetRenamedV2:
    return WidgetRenamedV2(widget_id=old.widget_id, new_name=old.name)


OLD = EventRegistry()
OLD.register(WidgetRenamedV1, WidgetResized)

NEW = EventRegistry()
NEW.register(WidgetResized)
NEW.register_upcaster(WidgetRenamedV1, WidgetRenamedV2, upcast_renamed)

HORIZON = "tx_id < pg_snapshot_xmin(pg_current_snapshot())"
WIDGET = uuid.UUID("00000000-0000-7000-8000-000000000001")


def new(payload: Event) -> NewEvent:
    return NewEvent(event_id=new_uuid(), payload=payload, occurred_at=datetime.now(UTC))


def meta() -> Metadata:
    return Metadata(actor=Actor(subject="user:alice"), correlation_id=uuid.uuid4())


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def raw_rows(pool: asyncpg.Pool) -> list[tuple[str, int, str]]:
    rows = await pool.fetch("SELECT type, schema_version, data::text FROM events ORDER BY global_position")
    return [(r["type"], r["schema_version"], r["data"]) for r in rows]


async def read_every_way(store: PostgresEventStore, stream: str) -> list[list[RecordedEvent]]:
    tenant = store.for_tenant("acme")
    await wait_visible(store, await store.pool.fetchval("SELECT count(*) FROM events"))
    return [await tenant.read_stream(stream), await tenant.read_after(ORIGIN), await store.read_all(ORIGIN)]


async def test_a_stored_v1_event_is_read_as_v2(pool: asyncpg.Pool) -> None:
    old_code = PostgresEventStore(pool, registry=OLD)
    await old_code.for_tenant("acme").append(
        "widget-1",
        [new(WidgetRenamedV1(widget_id=WIDGET, name="Sprocket"))],
        expected_version=NO_STREAM,
        metadata=meta(),
    )
    stored = await raw_rows(pool)
    assert [(t, v) for t, v, _ in stored] == [("lgtest.widget_renamed.v1", 1)]
    assert msgspec.json.decode(stored[0][2]) == {"widget_id": str(WIDGET), "name": "Sprocket"}

    new_code = PostgresEventStore(pool, registry=NEW)
    for read in await read_every_way(new_code, "widget-1"):
        [event] = read
        assert event.payload == WidgetRenamedV2(widget_id=WIDGET, new_name="Sprocket", previous_name=None)
        assert type(event.payload) is WidgetRenamedV2
        # The envelope still says what is stored; the payload is what readers handle today.
        assert (event.type, event.schema_version) == ("lgtest.widget_renamed.v1", 1)

    assert await raw_rows(pool) == stored, "reading must never rewrite a stored event"


async def test_a_stream_mixing_versions_reads_as_the_current_version_in_order(pool: asyncpg.Pool) -> None:
    old_code = PostgresEventStore(pool, registry=OLD)
    new_code = PostgresEventStore(pool, registry=NEW)
    await old_code.for_tenant("acme").append(
        "widget-1", [new(WidgetRenamedV1(widget_id=WIDGET, name="A"))], expected_version=NO_STREAM, metadata=meta()
    )
    await new_code.for_tenant("acme").append(
        "widget-1",
        [
            new(WidgetRenamedV2(widget_id=WIDGET, new_name="B", previous_name="A")),
            new(WidgetResized(widget_id=WIDGET, sizes=[Sizes(width=1, height=2)])),
        ],
        expected_version=1,
        metadata=meta(),
    )
    for read in await read_every_way(new_code, "widget-1"):
        assert [e.payload for e in read] == [
            WidgetRenamedV2(widget_id=WIDGET, new_name="A"),
            WidgetRenamedV2(widget_id=WIDGET, new_name="B", previous_name="A"),
            WidgetResized(widget_id=WIDGET, sizes=[Sizes(width=1, height=2)]),
        ]
        assert [e.schema_version for e in read] == [1, 2, 1]


async def test_dropping_the_old_struct_makes_old_events_unreadable(pool: asyncpg.Pool) -> None:
    """Why an old version stays registered: without it, the stored v1 events have no decoder."""
    await (
        PostgresEventStore(pool, registry=OLD)
        .for_tenant("acme")
        .append(
            "widget-1", [new(WidgetRenamedV1(widget_id=WIDGET, name="A"))], expected_version=NO_STREAM, metadata=meta()
        )
    )
    forgetful = EventRegistry()
    forgetful.register(WidgetRenamedV2)
    with pytest.raises(UnknownEventTypeError) as info:
        await PostgresEventStore(pool, registry=forgetful).for_tenant("acme").read_stream("widget-1")
    assert info.value.tag == "lgtest.widget_renamed.v1"


async def test_an_upcast_event_survives_the_wire(pool: asyncpg.Pool) -> None:
    await (
        PostgresEventStore(pool, registry=OLD)
        .for_tenant("acme")
        .append(
            "widget-1", [new(WidgetRenamedV1(widget_id=WIDGET, name="A"))], expected_version=NO_STREAM, metadata=meta()
        )
    )
    store = PostgresEventStore(pool, registry=NEW)
    await wait_visible(store, 1)
    [recorded] = await store.read_all(ORIGIN)
    received = decode_wire(encode_wire(recorded, NEW)).to_recorded(NEW)
    assert received.payload == recorded.payload


# -- what a reader gets for stored rows it cannot decode ---------------------------------------------


async def insert_raw(pool: asyncpg.Pool, tag: str, data: str, *, stream: str = "widget-1", version: int = 1) -> None:
    await pool.execute(
        "INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata,"
        " occurred_at) VALUES ($1, 'acme', $2, $3, $4, 1, $5::jsonb, $6::jsonb, now())",
        new_uuid(),
        stream,
        version,
        tag,
        data,
        msgspec.json.encode(meta()).decode(),
    )


async def wait_visible(store: PostgresEventStore, count: int, timeout: float = 30.0) -> None:
    """The global feed's horizon is cluster-wide (other work on the shared server may hold it back for a while):
    wait until ``count`` rows are below it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await store.pool.fetchval(f"SELECT count(*) FROM events WHERE {HORIZON}") < count:
        if loop.time() > deadline:
            pytest.fail("rows never came below the visibility horizon")
        await asyncio.sleep(0.01)


async def test_an_unknown_stored_event_type_is_an_unknown_event_type_error(pool: asyncpg.Pool) -> None:
    await insert_raw(pool, "lgtest.widget_vanished.v1", '{"widget_id": "x"}')
    store = PostgresEventStore(pool, registry=NEW)
    await wait_visible(store, 1)
    reads = [
        store.for_tenant("acme").read_stream("widget-1"),
        store.for_tenant("acme").read_after(ORIGIN),
        store.read_all(ORIGIN),
    ]
    for read in reads:
        with pytest.raises(UnknownEventTypeError) as info:
            await read
        assert info.value.tag == "lgtest.widget_vanished.v1"


@pytest.mark.parametrize(
    ("tag", "data", "path"),
    [
        ("lgtest.widget_renamed.v1", '{"widget_id": "00000000-0000-7000-8000-000000000001", "name": 5}', "$.name"),
        ("lgtest.widget_renamed.v1", '{"widget_id": "not-a-uuid", "name": "x"}', "$.widget_id"),
        ("lgtest.widget_renamed.v1", '{"widget_id": "00000000-0000-7000-8000-000000000001"}', "`name`"),
        (
            "lgtest.widget_resized.v1",
            '{"widget_id": "00000000-0000-7000-8000-000000000001",'
            ' "sizes": [{"width": 1, "height": 2}, {"width": "w"}]}',
            "$.sizes[1].width",
        ),
        ("lgtest.widget_resized.v1", "[1, 2]", "Expected `object`, got `array`"),
        ("lgtest.widget_resized.v1", '"just a string"', "Expected `object`, got `str`"),
    ],
)
async def test_a_malformed_stored_payload_is_a_decode_error_with_the_json_path(
    pool: asyncpg.Pool, tag: str, data: str, path: str
) -> None:
    await insert_raw(pool, tag, data)
    store = PostgresEventStore(pool, registry=NEW)
    await wait_visible(store, 1)
    reads = [
        store.for_tenant("acme").read_stream("widget-1"),
        store.for_tenant("acme").read_after(ORIGIN),
        store.read_all(ORIGIN),
    ]
    for read in reads:
        with pytest.raises(EventDecodeError) as info:
            await read
        assert str(info.value).startswith(tag)
        assert path in str(info.value)


async def test_appending_an_old_version_is_still_possible_and_read_as_new(pool: asyncpg.Pool) -> None:
    """Old writers may still be running during a deployment; what they append is upcast on read."""
    store = PostgresEventStore(pool, registry=NEW)
    result = await store.for_tenant("acme").append(
        "widget-1", [new(WidgetRenamedV1(widget_id=WIDGET, name="A"))], expected_version=ANY_VERSION, metadata=meta()
    )
    assert result.first_version == 1
    [event] = await store.for_tenant("acme").read_stream("widget-1")
    assert tag_of(type(event.payload)) == "lgtest.widget_renamed.v2"
