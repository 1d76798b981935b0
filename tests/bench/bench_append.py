"""Append throughput: the event store port on PostgreSQL against raw asyncpg writing the same rows.

Configurations (interleaved round by round, medians reported, ratios taken within the same run):

- ``store``: ``PostgresEventStore.for_tenant(t).append(stream, events, expected_version=<known>, ...)`` — the real
  command path: expected-version check, idempotency bookkeeping (no key here), one statement per command, NOTIFY.
- ``store, notify=False``: the same without the store's wake-up ``pg_notify`` (sent after commits on its own
  connection, coalesced: see ``_Notifier``), to show what it costs.
- ``raw``: the physical reference, on dedicated connections. Single-event commands: one autocommitted ``INSERT``
  per event. 100-event commands: ``executemany`` of the 100 rows inside one transaction. Same rows (same payload
  and metadata JSON, explicit versions) into ``raw_events``, a ``CREATE TABLE ... (LIKE events INCLUDING ALL)``
  copy of the store's table: same columns, defaults, identity, unique constraint and indexes.
- ``raw-pool`` (single-event commands only): the same ``INSERT`` through an ``asyncpg`` pool (``pool.execute``,
  no reset query): the floor of any pooled implementation, to show where the store's time goes.

Each writer has its own pool connection and appends round-robin to its own 100 streams with explicit versions.
Goals (issue 2): store >= 0.8x raw; 4 writers no slower than 1. ``LOCKGATE_BENCH_ENFORCE=1`` turns the goals into
assertions; otherwise they are reported. ``LOCKGATE_BENCH_ROUNDS`` (default 7) sets the number of rounds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from contracts.base import Event
from contracts.envelope import Actor, Metadata, NewEvent
from contracts.ids import new_uuid
from contracts.registry import EventRegistry
from services.shared.eventstore.postgres import PostgresEventStore, create_pool
from tests.bench.conftest import (
    Result,
    Sample,
    fmt_rate,
    interleaved,
    machine,
    markdown_table,
    now_utc,
    update_readme_section,
)

pytestmark = pytest.mark.bench

ROUNDS = int(os.environ.get("LOCKGATE_BENCH_ROUNDS", "7"))
ENFORCE = os.environ.get("LOCKGATE_BENCH_ENFORCE") == "1"
STREAMS_PER_WRITER = 100
EVENTS_PER_RUN = {1: 2_000, 100: 40_000}  # events per run for single-event and 100-event commands
TENANT = "bench"
COMMAND = "make bench  (= .venv/bin/pytest tests/bench -m bench -p no:randomly -s)"


class ItemRecorded(Event, frozen=True, kw_only=True, tag="bench.item_recorded.v1"):
    """About 300 bytes of JSON, like the events of ../shared/EVENTSTORE.md."""

    item_id: str
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    warehouse: str
    note: str
    recorded_by: str


REGISTRY = EventRegistry()
REGISTRY.register(ItemRecorded)
TYPE = "bench.item_recorded.v1"
ENCODER = msgspec.json.Encoder()


def payload(n: int) -> ItemRecorded:
    return ItemRecorded(
        item_id=f"item-{n:012d}",
        sku=f"SKU-{n % 9973:06d}-XL-BLUE",
        name="Widget, anodised aluminium, 40 mm, with mounting kit",
        quantity=n % 17 + 1,
        unit_price_cents=1999 + n % 500,
        warehouse="eu-central-1/fra-02/aisle-17/shelf-4",
        note="received in good condition; packaging slightly dented on one corner, contents unaffected",
        recorded_by="user:alice@example.com",
    )


def metadata() -> Metadata:
    return Metadata(
        actor=Actor(subject="user:alice@example.com", display_name="Alice", roles=("operator",)),
        correlation_id=uuid.uuid4(),
        project_id="shop",
    )


RAW_INSERT = (
    "INSERT INTO raw_events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata,"
    " occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8::jsonb, $9)"
)


@dataclass
class Writer:
    """One writer's streams and their versions; stream names are unique per run."""

    prefix: str
    versions: list[int]

    @classmethod
    def new(cls, run: str, w: int) -> Writer:
        return cls(prefix=f"bench-{run}w{w}s", versions=[0] * STREAMS_PER_WRITER)


Command = Callable[[Writer, int, int], Awaitable[None]]


async def run_writers(writers: int, batch: int, command: Command) -> Sample:
    commands = EVENTS_PER_RUN[batch] // batch // writers
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []

    async def one(w: int) -> None:
        writer = Writer.new(run, w)
        for c in range(commands):
            t0 = time.perf_counter()
            await command(writer, c % STREAMS_PER_WRITER, batch)
            latencies.append(time.perf_counter() - t0)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(w) for w in range(writers)))
    return Sample(
        units=commands * writers * batch,
        seconds=time.perf_counter() - start,
        latencies_s=latencies,
        cpu_seconds=time.process_time() - cpu,
    )


def store_command(store: PostgresEventStore) -> Command:
    tenant = store.for_tenant(TENANT)

    async def command(writer: Writer, s: int, batch: int) -> None:
        now = datetime.now(UTC)
        version = writer.versions[s]
        events = [NewEvent(event_id=new_uuid(), payload=payload(version + n), occurred_at=now) for n in range(batch)]
        result = await tenant.append(f"{writer.prefix}{s}", events, expected_version=version, metadata=metadata())
        writer.versions[s] = result.last_version

    return command


def raw_command(connections: list[asyncpg.Connection] | asyncpg.Pool, writers: int) -> Command:
    by_writer: dict[str, asyncpg.Connection | asyncpg.Pool] = {}

    async def command(writer: Writer, s: int, batch: int) -> None:
        conn = by_writer.get(writer.prefix)
        if conn is None:
            pick = connections if isinstance(connections, asyncpg.Pool) else connections[len(by_writer) % writers]
            conn = by_writer[writer.prefix] = pick
        now = datetime.now(UTC)
        version = writer.versions[s]
        stream = f"{writer.prefix}{s}"
        meta = ENCODER.encode(metadata()).decode()
        rows = [
            (
                new_uuid(),
                TENANT,
                stream,
                version + n + 1,
                TYPE,
                1,
                ENCODER.encode(payload(version + n)).decode(),
                meta,
                now,
            )
            for n in range(batch)
        ]
        if batch == 1:
            await conn.execute(RAW_INSERT, *rows[0])
        else:
            assert isinstance(conn, asyncpg.Connection)
            async with conn.transaction():
                await conn.executemany(RAW_INSERT, rows)
        writer.versions[s] = version + batch

    return command


async def _no_reset(conn: asyncpg.Connection) -> None:
    del conn


@dataclass
class Targets:
    notifying: PostgresEventStore
    quiet: PostgresEventStore
    raw: list[asyncpg.Connection]
    raw_pool: asyncpg.Pool


@pytest.fixture
async def targets(pg_url: str) -> AsyncIterator[Targets]:
    # The store as ``PostgresEventStore.connect`` builds it (its pool, and lanes on the DSN), one per variant.
    notifying = PostgresEventStore(await create_pool(pg_url, min_size=4, max_size=4), registry=REGISTRY, dsn=pg_url)
    quiet = PostgresEventStore(
        await create_pool(pg_url, min_size=4, max_size=4), registry=REGISTRY, notify=False, dsn=pg_url
    )
    raw = [await asyncpg.connect(pg_url) for _ in range(4)]
    raw_pool = await asyncpg.create_pool(pg_url, min_size=4, max_size=4, reset=_no_reset)
    await raw[0].execute("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
    try:
        yield Targets(notifying, quiet, raw, raw_pool)
    finally:
        for conn in raw:
            await conn.close()
        await raw_pool.close()
        await notifying.close()
        await quiet.close()


async def test_append_throughput(targets: Targets) -> None:
    raw = targets.raw
    configurations: dict[str, Callable[[], Awaitable[Sample]]] = {}
    for batch in (1, 100):
        for writers in (1, 4):
            configurations[f"raw {writers}w x{batch}"] = _bind(writers, batch, raw_command(raw, writers))
            if batch == 1:
                pooled = raw_command(targets.raw_pool, writers)
                configurations[f"raw-pool {writers}w x{batch}"] = _bind(writers, batch, pooled)
            configurations[f"store {writers}w x{batch}"] = _bind(writers, batch, store_command(targets.notifying))
            quiet = store_command(targets.quiet)
            configurations[f"store-nonotify {writers}w x{batch}"] = _bind(writers, batch, quiet)

    async def checkpoint() -> None:
        await raw[0].execute("CHECKPOINT")  # so that a checkpoint does not land inside one configuration's run

    # Warm-up: prepared statements on every connection, caches, the first pages of every index.
    for run in configurations.values():
        await run()
    results = await interleaved(configurations, rounds=ROUNDS, before_each=checkpoint)

    # Everything each side acknowledged is there, and nothing else (warm-up runs included).
    def written(prefix: str) -> int:
        measured = sum(s.units for r in results.values() if r.name.split()[0] in prefix.split() for s in r.samples)
        warm = sum(EVENTS_PER_RUN[int(n.rsplit("x", 1)[1])] for n in configurations if n.split()[0] in prefix.split())
        return measured + warm

    assert await raw[0].fetchval("SELECT count(*) FROM events") == written("store store-nonotify")
    assert await raw[0].fetchval("SELECT count(*) FROM raw_events") == written("raw raw-pool")

    pg_version = await raw[0].fetchval("SHOW server_version")
    report = render(results, pg_version)
    print("\n" + report)  # noqa: T201 - a benchmark's output is its report
    update_readme_section("Append", report)
    if ENFORCE:
        for batch in (1, 100):
            for writers in (1, 4):
                ratio = results[f"store {writers}w x{batch}"].median / results[f"raw {writers}w x{batch}"].median
                assert ratio >= 0.8, f"store {writers}w x{batch} is {ratio:.2f}x raw"
            assert results[f"store 4w x{batch}"].median >= results[f"store 1w x{batch}"].median


def _bind(writers: int, batch: int, command: Command) -> Callable[[], Awaitable[Sample]]:
    return lambda: run_writers(writers, batch, command)


def render(results: dict[str, Result], pg_version: str) -> str:
    rows, verdicts, notify_costs, pool_shares = [], [], [], []
    for batch in (1, 100):
        for writers in (1, 4):
            raw, store, quiet = (results[f"{k} {writers}w x{batch}"] for k in ("raw", "store", "store-nonotify"))
            pooled = results.get(f"raw-pool {writers}w x{batch}")
            ratio = store.median / raw.median
            verdicts.append(ratio >= 0.8)
            notify_costs.append(f"{1 - store.median / quiet.median:.0%} ({writers}w x{batch})")
            if pooled is not None:
                pool_shares.append(
                    f"{writers}w: raw through a pool {pooled.median / raw.median:.2f}x raw, "
                    f"store notify=False {quiet.median / pooled.median:.2f}x raw-through-a-pool"
                )
            rows.append(
                [
                    f"{'1 event' if batch == 1 else f'{batch} events'}/command, {writers} writer{'s' * (writers > 1)}",
                    _spread(raw),
                    _spread(store),
                    f"**{ratio:.2f}x**",
                    _spread(quiet),
                    f"{quiet.median / raw.median:.2f}x",
                    "" if pooled is None else _spread(pooled),
                    f"{store.latency_ms(0.5):.2f} / {store.latency_ms(0.99):.2f}",
                    f"{raw.latency_ms(0.5):.2f} / {raw.latency_ms(0.99):.2f}",
                    " / ".join("-" if r is None else f"{r.cpu_us_per_unit():.0f}" for r in (raw, pooled, quiet, store)),
                ]
            )
    scaling, scales = [], []
    for batch in (1, 100):
        for kind in ("raw", "store", "store-nonotify"):
            one, four = results[f"{kind} 1w x{batch}"].median, results[f"{kind} 4w x{batch}"].median
            scaling.append(f"{kind} x{batch}: **{four / one:.2f}**")
            if kind == "store":
                scales.append(four >= one)
    table = markdown_table(
        [
            "workload",
            "raw events/s (min-**median**-max)",
            "store events/s",
            "store / raw",
            "store notify=False events/s",
            "notify=False / raw",
            "raw through an asyncpg pool events/s",
            "store p50 / p99 ms per command",
            "raw p50 / p99 ms",
            "client CPU µs/event: raw / (raw via pool) / store notify=False / store",
        ],
        rows,
    )
    met = "met" if all(verdicts) else f"NOT met in {verdicts.count(False)} of {len(verdicts)} workloads"
    return f"""Measured {now_utc()} on {machine()}; PostgreSQL {pg_version} (the shared server of the machine, stock
configuration), {ROUNDS} interleaved rounds per configuration after one warm-up round.

Command: `{COMMAND}`

{table}

4 writers / 1 writer (median events/s): {"; ".join(scaling)}. Goal 4 store writers no slower than 1:
**{"met" if all(scales) else "NOT met"}**.

Goal store >= 0.8x raw: **{met}**. Cost of the wake-up NOTIFY (1 - store / store notify=False):
{", ".join(notify_costs)}. Single-event commands, where the time goes: {"; ".join(pool_shares)}.

Reading the single-event rows: the client CPU column splits the gap. "raw via pool" minus "raw" is asyncpg's pool
checkout and release per command; "store notify=False" minus "raw via pool" is the store's own client work (building and
encoding the events, five array parameters, the returned rows). The rest is server time: the one-statement CTE
(version check, command-log probe, insert, RETURNING), plus the coalesced NOTIFY statements sent after commits.
For 100-event commands the store's one `INSERT ... SELECT FROM unnest(...)` round trip beats `executemany` inside
BEGIN/COMMIT.

Each run writes {EVENTS_PER_RUN[1]:,} single-event or {EVENTS_PER_RUN[100]:,} batched events; writers are asyncio tasks
with one connection each, in one process, on the same 2-vCPU machine as the server, which other work shares, so
absolute figures are a floor and the ratios are the result (EVENTSTORE.md §9).
"""


def _spread(result: Result) -> str:
    rates = result.rates
    return f"{fmt_rate(min(rates))}-**{fmt_rate(statistics.median(rates))}**-{fmt_rate(max(rates))}"
