"""The PostgreSQL event store against a real PostgreSQL: append, read, concurrency, idempotency, tenant
scoping, immutability, bad input and the commit-safe order of the global feed.

Every test gets a private migrated database (``pg_url``). Event types are test-only and live in a private
registry, so nothing here leaks into the process-wide ``REGISTRY`` (whose golden schemas are checked).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import pytest

from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent, Position, RecordedEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from services.shared.errors import (
    ConcurrencyConflictError,
    ContractViolationError,
    IdempotencyKeyReusedError,
)
from services.shared.eventstore.port import ANY_VERSION, NO_STREAM
from services.shared.eventstore.postgres import MAX_EVENTS_PER_APPEND, PostgresEventStore


class ItemAdded(Event, frozen=True, kw_only=True, tag="lgtest.item_added.v1"):
    name: str
    qty: int = 1
    blob: str = ""


class ItemRemoved(Event, frozen=True, kw_only=True, tag="lgtest.item_removed.v1"):
    name: str


class NotRegistered(Event, frozen=True, kw_only=True, tag="lgtest.not_registered.v1"):
    name: str


REGISTRY = EventRegistry()
REGISTRY.register(ItemAdded, ItemRemoved)

ACTOR = Actor(subject="user:alice", display_name="Alice", roles=("admin",))


def added(name: str = "x", **kwargs: object) -> NewEvent:
    return NewEvent(event_id=new_uuid(), payload=ItemAdded(name=name, **kwargs), occurred_at=datetime.now(UTC))  # type: ignore[arg-type]


def batch(n: int, prefix: str = "e") -> list[NewEvent]:
    return [added(f"{prefix}{i}") for i in range(n)]


def meta(key: str | None = None) -> Metadata:
    return Metadata(actor=ACTOR, correlation_id=uuid.uuid4(), idempotency_key=key, project_id="p1")


async def open_store(url: str, *, size: int = 4) -> PostgresEventStore:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=size)
    return PostgresEventStore(pool, registry=REGISTRY)


@pytest.fixture
async def es(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await open_store(pg_url)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def sql(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection as the superuser of the test server, for looking behind the store's back."""
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


async def counts(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM command_log) AS c")
    assert row is not None
    return int(row["e"]), int(row["c"])


async def dump(conn: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await conn.fetch("SELECT *, tx_id::text AS tx FROM events ORDER BY global_position")
    log = await conn.fetch("SELECT * FROM command_log ORDER BY tenant_id, idempotency_key")
    return [tuple(r.values()) for r in rows] + [tuple(r.values()) for r in log]


def versions(events: Sequence[RecordedEvent]) -> list[int]:
    return [e.version for e in events]


# -- append and read -------------------------------------------------------------------------------


async def test_append_then_read_stream(es: PostgresEventStore) -> None:
    store = es.for_tenant("acme")
    news = batch(3)
    metadata = meta()
    result = await store.append("cart-1", news, expected_version=NO_STREAM, metadata=metadata)

    assert (result.first_version, result.last_version, result.deduplicated) == (1, 3, False)
    assert len(result.positions) == 3
    assert len({p.tx_id for p in result.positions}) == 1, "one command is one transaction"
    assert [p.global_position for p in result.positions] == sorted(p.global_position for p in result.positions)

    read = await store.read_stream("cart-1")
    assert versions(read) == [1, 2, 3]
    for new, rec, pos in zip(news, read, result.positions, strict=True):
        assert rec.event_id == new.event_id
        assert rec.payload == new.payload
        assert rec.occurred_at == new.occurred_at
        assert rec.type == "lgtest.item_added.v1"
        assert rec.schema_version == 1
        assert (rec.stream_id, rec.tenant_id) == ("cart-1", "acme")
        assert rec.metadata == metadata
        assert rec.position == pos
        assert rec.recorded_at.tzinfo is not None
    assert versions(await store.read_stream("cart-1", after_version=2)) == [3]
    assert await store.stream_version("cart-1") == 3

    more = await store.append("cart-1", batch(2), expected_version=3, metadata=meta())
    assert (more.first_version, more.last_version) == (4, 5)
    assert versions(await store.read_stream("cart-1")) == [1, 2, 3, 4, 5]


async def test_an_unknown_stream_is_empty_at_version_zero(es: PostgresEventStore) -> None:
    store = es.for_tenant("acme")
    assert await store.read_stream("cart-nothing") == []
    assert await store.stream_version("cart-nothing") == 0


async def test_the_category_column_is_the_text_before_the_first_dash(
    es: PostgresEventStore, sql: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    await es.for_tenant("acme").append(f"cart-{key}", batch(1), expected_version=NO_STREAM, metadata=meta())
    assert await sql.fetchval("SELECT category FROM events") == "cart"


# -- optimistic concurrency ------------------------------------------------------------------------


@pytest.mark.parametrize("expected", [0, 1, 3, 50])
async def test_wrong_expected_version_is_a_conflict_and_writes_nothing(
    es: PostgresEventStore, sql: asyncpg.Connection, expected: int
) -> None:
    store = es.for_tenant("acme")
    await store.append("cart-1", batch(2), expected_version=NO_STREAM, metadata=meta("first"))
    before = await dump(sql)

    with pytest.raises(ConcurrencyConflictError) as info:
        await store.append("cart-1", batch(3), expected_version=expected, metadata=meta("second"))
    assert (info.value.stream_id, info.value.expected, info.value.actual) == ("cart-1", expected, 2)
    assert await dump(sql) == before, "a conflict must write neither events nor the idempotency key"

    # The key of the refused command was not consumed: the corrected retry goes through.
    retried = await store.append("cart-1", batch(1), expected_version=2, metadata=meta("second"))
    assert (retried.first_version, retried.deduplicated) == (3, False)


async def test_creating_a_stream_twice_conflicts(es: PostgresEventStore, sql: asyncpg.Connection) -> None:
    store = es.for_tenant("acme")
    first = batch(1)
    await store.append("cart-1", first, expected_version=NO_STREAM, metadata=meta())
    with pytest.raises(ConcurrencyConflictError):
        await store.append("cart-1", batch(1), expected_version=NO_STREAM, metadata=meta())
    assert [e.event_id for e in await store.read_stream("cart-1")] == [first[0].event_id]
    assert await counts(sql) == (1, 0)


async def test_racing_writers_on_one_stream_exactly_one_wins(pg_url: str, sql: asyncpg.Connection) -> None:
    """Two writers on separate connections append with the same expected version, round after round."""
    rounds = 60
    writers = [await open_store(pg_url, size=1) for _ in range(2)]
    try:
        for i, w in enumerate(writers):  # warm both connections so set-up does not decide the race
            await w.for_tenant("acme").append(f"warm-{i}", batch(1), expected_version=NO_STREAM, metadata=meta())
        stored_total = len(writers)
        decided_by_index = 0
        for n in range(rounds):
            stream = f"race-{n}"
            seeded = n % 3  # race on new streams and on streams that already have events
            if seeded:
                await writers[0].for_tenant("acme").append(stream, batch(seeded), expected_version=0, metadata=meta())
            attempts = [batch(1 + (n + i) % 3, prefix=f"w{i}-") for i in range(2)]
            outcomes = await asyncio.gather(
                *(
                    w.for_tenant("acme").append(stream, events, expected_version=seeded, metadata=meta())
                    for w, events in zip(writers, attempts, strict=True)
                ),
                return_exceptions=True,
            )
            winners = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
            losers = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(winners) == 1, f"round {n}: {outcomes}"
            assert isinstance(losers[0], ConcurrencyConflictError), f"round {n}: {losers[0]!r}"
            if "concurrently" in str(losers[0]):
                decided_by_index += 1  # both statements were in flight; the unique index decided
            won = attempts[winners[0]]
            stored = await writers[0].for_tenant("acme").read_stream(stream)
            assert versions(stored) == list(range(1, seeded + len(won) + 1))
            assert [e.event_id for e in stored[seeded:]] == [e.event_id for e in won]
            stored_total += seeded + len(won)
        assert await sql.fetchval("SELECT count(*) FROM events") == stored_total, "a loser wrote something"
        assert decided_by_index >= 0  # how many rounds overlapped in flight; both kinds of loss are covered above
    finally:
        for w in writers:
            await w.close()


async def test_concurrent_any_version_appends_keep_versions_gap_free(pg_url: str) -> None:
    writers = [await open_store(pg_url, size=1) for _ in range(4)]
    appends_per_writer = 40
    try:

        async def write(w: int) -> list[tuple[int, int, list[uuid.UUID]]]:
            done = []
            store = writers[w].for_tenant("acme")
            for n in range(appends_per_writer):
                events = batch(1 + (w + n) % 3, prefix=f"w{w}-")
                r = await store.append("log-1", events, expected_version=ANY_VERSION, metadata=meta())
                assert r.last_version - r.first_version + 1 == len(events)
                done.append((r.first_version, r.last_version, [e.event_id for e in events]))
            return done

        results = [r for rs in await asyncio.gather(*(write(w) for w in range(4))) for r in rs]
        stored = await writers[0].for_tenant("acme").read_stream("log-1")
        total = sum(last - first + 1 for first, last, _ in results)
        assert versions(stored) == list(range(1, total + 1))
        by_version = {e.version: e.event_id for e in stored}
        for first, last, ids in results:  # every append got a contiguous, ordered run of versions
            assert [by_version[v] for v in range(first, last + 1)] == ids
    finally:
        for w in writers:
            await w.close()


# -- idempotency -----------------------------------------------------------------------------------


async def test_a_retried_command_is_a_no_op(es: PostgresEventStore, sql: asyncpg.Connection) -> None:
    store = es.for_tenant("acme")
    events = batch(2)
    first = await store.append("cart-1", events, expected_version=NO_STREAM, metadata=meta("cmd-1"))
    assert not first.deduplicated
    before = await dump(sql)

    again = await store.append("cart-1", events, expected_version=NO_STREAM, metadata=meta("cmd-1"))
    assert again.deduplicated
    assert (again.first_version, again.last_version) == (1, 2)
    # A retry that regenerated its event ids, with an expected version that is stale by now, is still the same
    # command: the key decides, not the payload.
    regenerated = await store.append("cart-1", batch(5), expected_version=NO_STREAM, metadata=meta("cmd-1"))
    assert (regenerated.deduplicated, regenerated.first_version, regenerated.last_version) == (True, 1, 2)
    assert await dump(sql) == before

    found = await store.find_command("cmd-1")
    assert found is not None
    assert (found.stream_id, found.first_version, found.last_version, found.deduplicated) == ("cart-1", 1, 2, True)
    assert await store.find_command("cmd-unknown") is None

    await store.append("cart-1", batch(1), expected_version=2, metadata=meta("cmd-2"))
    late = await store.append("cart-1", events, expected_version=NO_STREAM, metadata=meta("cmd-1"))
    assert (late.deduplicated, late.first_version, late.last_version) == (True, 1, 2)
    assert await counts(sql) == (3, 2)


async def test_an_idempotency_key_reused_for_another_stream_is_refused(
    es: PostgresEventStore, sql: asyncpg.Connection
) -> None:
    store = es.for_tenant("acme")
    await store.append("cart-1", batch(1), expected_version=NO_STREAM, metadata=meta("cmd-1"))
    before = await dump(sql)
    with pytest.raises(IdempotencyKeyReusedError, match="cart-1"):
        await store.append("cart-2", batch(1), expected_version=NO_STREAM, metadata=meta("cmd-1"))
    assert await dump(sql) == before
    assert await store.read_stream("cart-2") == []


async def test_concurrent_retries_of_one_command_write_once(pg_url: str, sql: asyncpg.Connection) -> None:
    writers = [await open_store(pg_url, size=1) for _ in range(3)]
    try:
        for n in range(30):
            events = batch(2)
            key = f"cmd-{n}"
            stream = f"cart-{n}"
            results = await asyncio.gather(
                *(
                    w.for_tenant("acme").append(stream, events, expected_version=ANY_VERSION, metadata=meta(key))
                    for w in writers
                )
            )
            assert sorted(r.deduplicated for r in results) == [False, True, True], f"round {n}: {results}"
            assert all((r.stream_id, r.first_version, r.last_version) == (stream, 1, 2) for r in results), results
            assert [e.event_id for e in await writers[0].for_tenant("acme").read_stream(stream)] == [
                e.event_id for e in events
            ]
        assert await counts(sql) == (60, 30)
    finally:
        for w in writers:
            await w.close()


async def test_concurrent_reuse_of_a_key_for_another_stream_is_refused(pg_url: str, sql: asyncpg.Connection) -> None:
    writers = [await open_store(pg_url, size=1) for _ in range(2)]
    try:
        for n in range(30):
            outcomes = await asyncio.gather(
                *(
                    w.for_tenant("acme").append(
                        f"s{i}-{n}", batch(1), expected_version=NO_STREAM, metadata=meta(f"k{n}")
                    )
                    for i, w in enumerate(writers)
                ),
                return_exceptions=True,
            )
            ok = [o for o in outcomes if not isinstance(o, BaseException)]
            refused = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(ok) == 1, f"round {n}: {outcomes}"
            assert not ok[0].deduplicated
            assert isinstance(refused[0], IdempotencyKeyReusedError), f"round {n}: {refused[0]!r}"
        assert await counts(sql) == (30, 30)
    finally:
        for w in writers:
            await w.close()


# -- tenant scoping --------------------------------------------------------------------------------


async def test_tenants_never_see_each_other(es: PostgresEventStore, sql: asyncpg.Connection) -> None:
    a, b = es.for_tenant("acme"), es.for_tenant("globex")
    ra = await a.append("cart-1", batch(2, "a"), expected_version=NO_STREAM, metadata=meta("k1"))
    # Same stream id, same idempotency key, another tenant: another stream and another command.
    rb = await b.append("cart-1", batch(1, "b"), expected_version=NO_STREAM, metadata=meta("k1"))
    assert (ra.last_version, rb.first_version, rb.deduplicated) == (2, 1, False)
    await a.append("secret-1", [added("a-secret")], expected_version=NO_STREAM, metadata=meta("k2"))
    removed = NewEvent(event_id=new_uuid(), payload=ItemRemoved(name="a"), occurred_at=datetime.now(UTC))
    await a.append("other-1", [removed], expected_version=NO_STREAM, metadata=meta())

    assert [e.payload for e in await a.read_stream("cart-1")] == [ItemAdded(name="a0"), ItemAdded(name="a1")]
    assert [e.payload for e in await b.read_stream("cart-1")] == [ItemAdded(name="b0")]
    assert (await a.stream_version("cart-1"), await b.stream_version("cart-1")) == (2, 1)
    assert await b.read_stream("secret-1") == []
    assert await b.stream_version("secret-1") == 0
    assert await b.find_command("k2") is None
    found = await b.find_command("k1")
    assert found is not None
    assert (found.first_version, found.last_version) == (1, 1)

    a_all = await eventually(lambda: a.read_after(ORIGIN), lambda got: len(got) == 4)
    b_all = await eventually(lambda: b.read_after(ORIGIN), lambda got: len(got) == 1)
    assert {e.tenant_id for e in a_all} == {"acme"}
    assert [(e.tenant_id, e.stream_id) for e in b_all] == [("globex", "cart-1")]
    assert await b.read_after(ORIGIN, stream_id="secret-1") == []
    assert await b.read_after(ORIGIN, types=["lgtest.item_removed.v1"]) == []
    assert [e.stream_id for e in await a.read_after(ORIGIN, types=["lgtest.item_removed.v1"])] == ["other-1"]
    # b starting from a's newest position still sees nothing of a's
    assert await b.read_after(a_all[-1].position) == []

    # b writing to a's stream id creates b's own stream, at version 1
    rb2 = await b.append("secret-1", batch(1), expected_version=ANY_VERSION, metadata=meta())
    assert rb2.first_version == 1
    assert await a.stream_version("secret-1") == 1
    rows = await sql.fetch("SELECT tenant_id, version FROM events WHERE stream_id = 'secret-1' ORDER BY tenant_id")
    assert [tuple(r.values()) for r in rows] == [("acme", 1), ("globex", 1)]

    # the global feed (infrastructure only) sees both tenants
    every = await eventually(lambda: es.read_all(ORIGIN), lambda got: len(got) == 6)
    assert {e.tenant_id for e in every} == {"acme", "globex"}


@pytest.mark.parametrize(
    "tenant", ["", "Acme", "acme-corp", "acme.corp", "a'; DROP TABLE events; --", "acme\n", "ácme", "a" * 64, "*", ">"]
)
def test_a_hostile_tenant_id_is_refused(es: PostgresEventStore, tenant: str) -> None:
    with pytest.raises(ContractViolationError, match="not a valid slug"):
        es.for_tenant(tenant)


# -- immutability ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        """UPDATE events SET data = '{"name": "forged"}'::jsonb""",
        "UPDATE events SET tenant_id = 'evil' WHERE version = 1",
        "UPDATE events SET version = version + 100",
        "DELETE FROM events",
        "DELETE FROM events WHERE version = 2",
        "TRUNCATE events",
        "TRUNCATE events CASCADE",
        "TRUNCATE events, command_log",
        "UPDATE command_log SET stream_id = 'cart-2'",
        "DELETE FROM command_log",
        "WITH gone AS (DELETE FROM events RETURNING *) SELECT count(*) FROM gone",
    ],
)
async def test_stored_events_cannot_be_changed_even_by_the_superuser(
    es: PostgresEventStore, sql: asyncpg.Connection, statement: str
) -> None:
    await es.for_tenant("acme").append("cart-1", batch(2), expected_version=NO_STREAM, metadata=meta("k"))
    assert await sql.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"), "test needs a superuser"
    before = await dump(sql)
    assert len(before) == 3
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await sql.execute(statement)
    assert await dump(sql) == before


async def test_the_command_log_cannot_be_truncated(es: PostgresEventStore, sql: asyncpg.Connection) -> None:
    await es.for_tenant("acme").append("cart-1", batch(1), expected_version=NO_STREAM, metadata=meta("k"))
    before = await dump(sql)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await sql.execute("TRUNCATE command_log")
    assert await dump(sql) == before


# -- bad input -------------------------------------------------------------------------------------

REFUSED_STREAM_IDS = [
    "",
    "nodash",
    "-leading",
    "cart-",
    "'; DROP TABLE events; --",
    "Cart-1",
    "cärt-1",
    "cart.x-1",
    "ca rt-1",
    "cart-a\x00b",
    "cart-line\nbreak",
    "cart-tab\there",
    "cart-\u200b",  # zero-width space: invisible in logs and UIs
    "cart-\x1b[31mred",
    "x" * 10_000,
    "cart-" + "k" * 10_000,
    "cart-" + "k" * 196,  # 201 characters
]


@pytest.mark.parametrize("stream", REFUSED_STREAM_IDS, ids=lambda s: repr(s)[:40])
async def test_a_malformed_stream_id_is_refused_and_nothing_stored(
    es: PostgresEventStore, sql: asyncpg.Connection, stream: str
) -> None:
    with pytest.raises(ContractViolationError, match="stream id"):
        await es.for_tenant("acme").append(stream, batch(1), expected_version=ANY_VERSION, metadata=meta("k"))
    assert await counts(sql) == (0, 0)


@pytest.mark.parametrize(
    "stream",
    [
        "cart-'; DROP TABLE events; --",
        "cart-' OR '1'='1",
        'cart-"quoted" \\ back\\slash',
        "cart-ünïcødé ✓ 日本語 🎉",
        "cart-<script>alert(1)</script>",
        "cart-$(rm -rf /); `id`",
        "cart-%s %d {0} %(x)s",
        "cart-a-b-c",
        "cart-" + "k" * 195,  # 200 characters: the limit
    ],
    ids=lambda s: repr(s)[:40],
)
async def test_hostile_but_valid_stream_ids_are_stored_verbatim(
    es: PostgresEventStore, sql: asyncpg.Connection, stream: str
) -> None:
    store = es.for_tenant("acme")
    await store.append(stream, batch(2), expected_version=NO_STREAM, metadata=meta(stream))
    assert await sql.fetchval("SELECT to_regclass('events')::text") == "events"
    assert [e.stream_id for e in await store.read_stream(stream)] == [stream, stream]
    assert await sql.fetchval("SELECT DISTINCT stream_id FROM events") == stream
    assert await store.stream_version(stream) == 2


def naive(event: NewEvent) -> NewEvent:
    return NewEvent(event_id=event.event_id, payload=event.payload, occurred_at=event.occurred_at.replace(tzinfo=None))


def unregistered() -> NewEvent:
    return NewEvent(event_id=new_uuid(), payload=NotRegistered(name="x"), occurred_at=datetime.now(UTC))


def same_event_twice() -> list[NewEvent]:
    event = added()
    return [event, event]


BAD_BATCHES: dict[str, tuple[Callable[[], list[NewEvent]], str]] = {
    "empty": (list, "at least one event"),
    "too many": (lambda: batch(MAX_EVENTS_PER_APPEND + 1), "at most 10000"),
    "naive datetime": (lambda: [naive(added())], "timezone-aware"),
    "naive datetime in the middle": (lambda: [*batch(3), naive(added()), *batch(3)], "timezone-aware"),
    "unregistered type": (lambda: [unregistered()], "not registered"),
    "unregistered type in the middle": (lambda: [*batch(2), unregistered(), *batch(2)], "not registered"),
    "NUL in the payload": (lambda: [*batch(2), added("a\x00b")], "cannot be stored"),
    "lone surrogate in the payload": (lambda: [*batch(2), added("a\ud800b")], "not valid Unicode"),
    "duplicate event ids": (same_event_twice, "duplicate event id"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
async def test_a_bad_batch_is_refused_and_nothing_stored(
    es: PostgresEventStore, sql: asyncpg.Connection, case: str
) -> None:
    make, message = BAD_BATCHES[case]
    with pytest.raises(ContractViolationError, match=message):
        await es.for_tenant("acme").append("cart-1", make(), expected_version=ANY_VERSION, metadata=meta("k"))
    assert await counts(sql) == (0, 0)


@pytest.mark.parametrize(
    "metadata",
    [
        Metadata(actor=Actor(subject="user:\x00"), correlation_id=uuid.uuid4()),
        Metadata(actor=ACTOR, correlation_id=uuid.uuid4(), idempotency_key="k\x00"),
        Metadata(actor=ACTOR, correlation_id=uuid.uuid4(), idempotency_key="k" * 100_000),
        Metadata(actor=ACTOR, correlation_id=uuid.uuid4(), traceparent="\udfff"),
    ],
    ids=["NUL in actor", "NUL in key", "100 kB key", "surrogate in traceparent"],
)
async def test_bad_metadata_is_refused_and_nothing_stored(
    es: PostgresEventStore, sql: asyncpg.Connection, metadata: Metadata
) -> None:
    with pytest.raises(ContractViolationError):
        await es.for_tenant("acme").append("cart-1", batch(1), expected_version=ANY_VERSION, metadata=metadata)
    assert await counts(sql) == (0, 0)


@pytest.mark.parametrize("expected", [-1, -(2**40), 2**31, 2**63])
async def test_an_impossible_expected_version_is_refused(
    es: PostgresEventStore, sql: asyncpg.Connection, expected: int
) -> None:
    with pytest.raises(ContractViolationError, match="expected version"):
        await es.for_tenant("acme").append("cart-1", batch(1), expected_version=expected, metadata=meta())
    assert await counts(sql) == (0, 0)


async def test_an_event_id_cannot_be_stored_twice(es: PostgresEventStore, sql: asyncpg.Connection) -> None:
    store = es.for_tenant("acme")
    event = added()
    await store.append("cart-1", [event], expected_version=NO_STREAM, metadata=meta())
    before = await dump(sql)
    with pytest.raises(ContractViolationError, match="duplicate event id"):
        await store.append("cart-2", [event], expected_version=NO_STREAM, metadata=meta())
    assert await dump(sql) == before


async def test_the_largest_allowed_append(es: PostgresEventStore, sql: asyncpg.Connection) -> None:
    store = es.for_tenant("acme")
    result = await store.append("bulk-1", batch(MAX_EVENTS_PER_APPEND), expected_version=NO_STREAM, metadata=meta())
    assert (result.first_version, result.last_version) == (1, MAX_EVENTS_PER_APPEND)
    assert len({p.tx_id for p in result.positions}) == 1
    assert await counts(sql) == (MAX_EVENTS_PER_APPEND, 0)


async def test_a_huge_payload_round_trips(es: PostgresEventStore) -> None:
    store = es.for_tenant("acme")
    blob = ("0123456789abcdef" * 65_536) * 5  # 5 MiB
    event = added("huge", blob=blob)
    await store.append("cart-1", [event], expected_version=NO_STREAM, metadata=meta())
    [stored] = await store.read_stream("cart-1")
    assert stored.payload == event.payload


# -- the global feed: commit-safe order --------------------------------------------------------------


async def test_read_all_never_lets_a_reader_skip_an_event_committed_late(
    es: PostgresEventStore, sql: asyncpg.Connection
) -> None:
    """A transaction that started earlier (older xid, lower position) commits after a newer one.

    A reader that tails by ``global_position`` alone checkpoints past the late row and never sees it; ``read_all``
    holds everything back until the older transaction has finished, so nothing is skipped.
    """
    store = es.for_tenant("acme")
    base = await store.append("cart-0", batch(1), expected_version=NO_STREAM, metadata=meta())
    checkpoint = await eventually(es.head, lambda head: head == base.positions[-1])

    slow = sql.transaction()
    await slow.start()
    slow_xid = await sql.fetchval("SELECT pg_current_xact_id()::text::bigint")
    slow_position = await sql.fetchval(
        "INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata,"
        " occurred_at) VALUES ($1, 'acme', 'slow-1', 1, 'lgtest.item_added.v1', 1, '{\"name\": \"slow\"}',"
        " $2::jsonb, now())"
        " RETURNING global_position",
        new_uuid(),
        '{"actor": {"subject": "user:slow"}, "correlation_id": "' + str(uuid.uuid4()) + '"}',
    )
    try:
        newer = await store.append("cart-1", batch(2), expected_version=NO_STREAM, metadata=meta())
        assert all(p.tx_id > slow_xid and p.global_position > slow_position for p in newer.positions)

        # The newer rows are committed; a naive tail sees them and would checkpoint past the slow row.
        naive_tail = await es.pool.fetch(
            "SELECT stream_id, global_position FROM events WHERE global_position > $1 ORDER BY global_position",
            checkpoint.global_position,
        )
        assert [r["stream_id"] for r in naive_tail] == ["cart-1", "cart-1"]

        # The commit-safe feed shows nothing past the open transaction, on every read path.
        assert await es.read_all(checkpoint) == []
        assert await store.read_after(checkpoint) == []
        assert await es.head() == checkpoint
    finally:
        await slow.commit()

    naive_after = await es.pool.fetch(
        "SELECT 1 FROM events WHERE global_position > $1", naive_tail[-1]["global_position"]
    )
    assert naive_after == [], "the naive tail has lost the slow row for good"

    seen = await eventually(lambda: es.read_all(checkpoint), lambda got: len(got) == 3)
    assert [e.stream_id for e in seen] == ["slow-1", "cart-1", "cart-1"]
    assert [e.position for e in seen] == sorted(e.position for e in seen)
    assert seen[0].payload == ItemAdded(name="slow")
    tenant_seen = await store.read_after(checkpoint)
    assert [e.event_id for e in tenant_seen] == [e.event_id for e in seen]
    assert await es.head() == seen[-1].position


async def test_read_after_pages_through_everything_once(es: PostgresEventStore) -> None:
    store = es.for_tenant("acme")
    written = []
    for n in range(7):
        events = batch(1 + n % 4)
        await store.append(f"cart-{n % 3}", events, expected_version=ANY_VERSION, metadata=meta())
        written += [e.event_id for e in events]
    await eventually(es.head, lambda head: head.global_position > 0 and head.tx_id > 0)

    async def page_through(read: Callable[[Position], Awaitable[list[RecordedEvent]]]) -> list[uuid.UUID]:
        cursor, seen = ORIGIN, list[uuid.UUID]()
        while True:
            page = await read(cursor)
            if not page:
                return seen
            assert len(page) <= 3
            seen += [e.event_id for e in page]
            cursor = page[-1].position

    expected = set(written)
    tenant_pages = await eventually(
        lambda: page_through(lambda c: store.read_after(c, limit=3)), lambda got: set(got) == expected
    )
    global_pages = await page_through(lambda c: es.read_all(c, limit=3))
    assert sorted(tenant_pages) == sorted(written) == sorted(global_pages)
    assert len(tenant_pages) == len(set(tenant_pages))


T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Await a condition on a read. The visibility horizon is cluster-wide: an open transaction of other work on
    the shared server may hold committed rows back for a while, so positive checks on the feed wait for them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.01)


# -- the store's connection pool -------------------------------------------------------------------


async def test_the_pool_resets_a_connection_after_any_use_but_the_stores_own_statements(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    resets: list[int] = []
    original = asyncpg.Connection.get_reset_query

    def counting(self: asyncpg.Connection) -> str:
        resets.append(1)
        return original(self)

    monkeypatch.setattr(asyncpg.Connection, "get_reset_query", counting)
    connected = await PostgresEventStore.connect(pg_url, min_size=1, max_size=1, migrate=False)
    store = PostgresEventStore(connected.pool, registry=REGISTRY)
    try:
        tenant = store.for_tenant("acme")
        await tenant.append("cart-1", batch(1), expected_version=NO_STREAM, metadata=meta())
        with pytest.raises(ConcurrencyConflictError):
            await tenant.append("cart-1", batch(1), expected_version=NO_STREAM, metadata=meta())
        assert resets == [], "an append paid for a reset round trip"

        # Any other use of a pool connection still gets asyncpg's full reset: nothing leaks to the next user,
        # also right after an append that failed inside the store.
        for leak in ("SET application_name = 'leaky'", "LISTEN somewhere", "SELECT pg_advisory_lock(42)"):
            async with store.pool.acquire() as conn:
                await conn.execute(leak)
            async with store.pool.acquire() as conn:
                assert await conn.fetchval("SHOW application_name") != "leaky"
                assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
                mine = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                assert await conn.fetchval(mine) == 0
        assert len(resets) == 6
    finally:
        await store.close()


async def test_a_store_created_with_jsonb_payloads_is_converted_to_json_on_start(
    es: PostgresEventStore, sql: asyncpg.Connection, pg_url: str
) -> None:
    """ADR 0002's revision: ``data`` became json; an older store's jsonb column is converted once, losslessly."""
    await sql.execute("ALTER TABLE events ALTER COLUMN data TYPE jsonb USING data::text::jsonb")
    tenant = es.for_tenant("acme")
    await tenant.append("item-1", batch(3), expected_version=NO_STREAM, metadata=meta())
    before = [e.payload for e in await tenant.read_stream("item-1")]

    await es.migrate()  # what every start does
    reopened = await open_store(pg_url)
    try:
        kind = await sql.fetchval(
            "SELECT atttypid::regtype::text FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'data'"
        )
        assert kind == "json"
        assert [e.payload for e in await reopened.for_tenant("acme").read_stream("item-1")] == before
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await sql.execute("DELETE FROM events")  # still append-only after the rewrite
    finally:
        await reopened.close()
