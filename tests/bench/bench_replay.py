"""Replay: rebuilding a read model from 1,000,000 stored events, against a raw keyset read of the same table.

Configurations (interleaved round by round after one warm-up read, medians reported, ratios within the same run):

- ``raw``: the physical reference (EVENTSTORE.md §3.4): ``SELECT <the store's columns> FROM events WHERE
  global_position > $1 ORDER BY global_position LIMIT 10000`` in a loop, and msgspec decoding of ``data`` (into a
  plain Struct of the payload's fields) and ``metadata`` (into ``Metadata``) of every row; nothing is kept.
- ``read_all``: the store's global feed, ``PostgresEventStore.read_all(after, limit=10000)`` page by page to the end:
  the commit-safe ``(tx_id, global_position)`` order under the visibility horizon, and full ``RecordedEvent``s
  (envelope, metadata, payload through the registry). Shown to split the replay's cost; not a goal.
- ``replay``: ``projections.replay.replay(store, [CountingProjector()])``: reset in one transaction, then pages of
  10,000 read once, each applied in its own transaction (advisory lock, checkpoint read, one ``apply`` per event,
  checkpoint upsert, commit), the next page prefetched meanwhile, the garbage collector relaxed (see the notes).
  The projector only counts.

The events are written straight into the store's ``events`` table with ``INSERT ... SELECT generate_series`` in
transactions of 100,000 (so ten ``tx_id``s), ~300-byte payloads and ~140-byte metadata like EVENTSTORE.md's; the
benchmark's private database is dropped afterwards (1 M events take ~960 MB with the store's five indexes).
Goal (issue 2): replay >= 0.8x raw. ``LOCKGATE_BENCH_ENFORCE=1`` turns it into an assertion.
``LOCKGATE_BENCH_REPLAY_EVENTS`` (default 1,000,000) and ``LOCKGATE_BENCH_REPLAY_ROUNDS`` (default 3) scale the run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from contracts.base import Event
from contracts.envelope import ORIGIN, Metadata, RecordedEvent
from contracts.registry import EventRegistry
from projections.replay import replay
from projections.runtime import Connection
from services.shared.eventstore.postgres import PostgresEventStore
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

EVENTS = int(os.environ.get("LOCKGATE_BENCH_REPLAY_EVENTS", "1000000"))
ROUNDS = int(os.environ.get("LOCKGATE_BENCH_REPLAY_ROUNDS", "3"))
ENFORCE = os.environ.get("LOCKGATE_BENCH_ENFORCE") == "1"
PAGE = 10_000
DASH = "\u2013"
FILL_CHUNK = 100_000
COMMAND = (
    "make bench  (= .venv/bin/pytest tests/bench -m bench -p no:randomly -s; this file: tests/bench/bench_replay.py)"
)


class ModelBuilt(Event, frozen=True, kw_only=True, tag="projbench.model_built.v1"):
    model: str
    run_id: uuid.UUID
    status: str
    rows: int
    bytes: int
    duration_ms: float
    warehouse: str
    message: str


class ModelBuiltBody(msgspec.Struct, frozen=True, kw_only=True):
    """The same fields as a plain Struct: what a raw reader decodes ``data`` into."""

    model: str
    run_id: uuid.UUID
    status: str
    rows: int
    bytes: int
    duration_ms: float
    warehouse: str
    message: str


REGISTRY = EventRegistry()
REGISTRY.register(ModelBuilt)

_FILL = """
INSERT INTO events (event_id, tenant_id, stream_id, version, type, schema_version, data, metadata, occurred_at)
SELECT gen_random_uuid(), 'bench', 'model-' || (g % 1000), g / 1000 + 1, 'projbench.model_built.v1', 1,
       jsonb_build_object(
           'model', 'model.jaffle_shop.orders_' || g, 'run_id', gen_random_uuid(), 'status', 'success',
           'rows', g, 'bytes', g * 1024, 'duration_ms', (g % 997) * 1.5, 'warehouse', 'TRANSFORMING_XS',
           'message', 'SUCCESS ' || g || ' rows in analytics.orders; ' || repeat('x', 100)),
       jsonb_build_object(
           'actor', jsonb_build_object(
               'subject', 'user:bench', 'display_name', 'Bench', 'roles', jsonb_build_array('admin')),
           'correlation_id', gen_random_uuid(), 'project_id', 'jaffle_shop'),
       now()
FROM generate_series($1::bigint, $2::bigint) AS g
"""

_RAW = """SELECT event_id, type, schema_version, stream_id, version, tx_id::text::bigint AS tx_id, global_position,
    tenant_id, metadata::text AS metadata, occurred_at, recorded_at, data::text AS data
FROM events WHERE global_position > $1 ORDER BY global_position LIMIT 10000"""


class CountingProjector:
    """The trivial projector: counts the events it is given (no SQL of its own; the runner still writes the
    checkpoint in one transaction per page)."""

    name = "bench_counting"
    schema = ""
    tables: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.count = 0

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        self.count += 1


@pytest.fixture
async def filled(pg_url: str) -> AsyncIterator[PostgresEventStore]:
    """A private database (dropped by ``pg_url`` afterwards) holding ``EVENTS`` events."""
    store = PostgresEventStore(await asyncpg.create_pool(pg_url, min_size=2, max_size=4), registry=REGISTRY)
    try:
        started = time.perf_counter()
        for low in range(0, EVENTS, FILL_CHUNK):
            await store.pool.execute(_FILL, low, min(low + FILL_CHUNK, EVENTS) - 1)
        await store.pool.execute("VACUUM (ANALYZE) events")
        size = await store.pool.fetchval("SELECT pg_size_pretty(pg_total_relation_size('events'))")
        print(f"\nreplay bench: {EVENTS:,} events written in {time.perf_counter() - started:.1f} s ({size})")  # noqa: T201
        yield store
    finally:
        await store.close()


async def raw_read(pool: asyncpg.Pool) -> Sample:
    data, metadata = msgspec.json.Decoder(ModelBuiltBody), msgspec.json.Decoder(Metadata)
    count, cursor = 0, 0
    started = time.perf_counter()
    while rows := await pool.fetch(_RAW, cursor):
        for row in rows:
            data.decode(row["data"])
            metadata.decode(row["metadata"])
        count += len(rows)
        cursor = rows[-1]["global_position"]
    return Sample(count, time.perf_counter() - started)


async def store_read_all(store: PostgresEventStore) -> Sample:
    count, cursor = 0, ORIGIN
    started = time.perf_counter()
    while events := await store.read_all(cursor, limit=PAGE):
        count += len(events)
        cursor = events[-1].position
    return Sample(count, time.perf_counter() - started)


async def projector_replay(store: PostgresEventStore) -> Sample:
    projector = CountingProjector()
    report = await replay(store, [projector], page_size=PAGE)
    assert projector.count == report.events == report.projections[0].applied == EVENTS
    return Sample(report.events, report.seconds)


async def test_replay_of_a_million_events_against_a_raw_keyset_read(filled: PostgresEventStore) -> None:
    warm = await raw_read(filled.pool)  # brings the table into the page cache for everyone alike
    assert warm.units == EVENTS

    results = await interleaved(
        {
            "raw": lambda: raw_read(filled.pool),
            "read_all": lambda: store_read_all(filled),
            "replay": lambda: projector_replay(filled),
        },
        rounds=ROUNDS,
    )

    for result in results.values():
        assert all(sample.units == EVENTS for sample in result.samples)
    raw, read_all, replayed = results["raw"], results["read_all"], results["replay"]
    ratio = replayed.median / raw.median
    report = report_text(raw, read_all, replayed, ratio)
    print("\n" + report)  # noqa: T201 - a benchmark's output is its report
    update_readme_section("Replay", report + "\n\n" + NOTES)
    if ENFORCE:
        assert ratio >= 0.8, f"replay is {ratio:.2f}x raw, goal >= 0.8x"


def spread(result: Result) -> str:
    rates = sorted(result.rates)
    return f"{fmt_rate(rates[0])}{DASH}**{fmt_rate(result.median)}**{DASH}{fmt_rate(rates[-1])}"


def report_text(raw: Result, read_all: Result, replayed: Result, ratio: float) -> str:
    table = markdown_table(
        ["reader", f"events/s (min{DASH}median{DASH}max)", "/ raw", "seconds for 1 M (median)"],
        [
            [name, spread(result), f"**{result.median / raw.median:.2f}x**", f"{1_000_000 / result.median:.1f}"]
            for name, result in (
                ("raw keyset read + msgspec decode of data and metadata", raw),
                ("store `read_all` pages (RecordedEvents)", read_all),
                ("`replay` through a counting projector", replayed),
            )
        ],
    )
    verdict = "met" if ratio >= 0.8 else "**NOT met**"
    return (
        f"Measured {now_utc()} on {machine()}; PostgreSQL: the shared server of the machine (stock configuration); "
        f"{EVENTS:,} events, {ROUNDS} interleaved rounds after one warm-up read.\n\n"
        f"Command: `{COMMAND}`\n\n{table}\n\nGoal replay >= 0.8x raw: {verdict} ({ratio:.2f}x)."
    )


NOTES = """The ratio swings with the load of this shared machine (other benchmarks and test suites ran beside it). Runs
of this benchmark on 2026-11-22, 1 M events and 3 rounds each, replay / raw:

| code | runs |
| --- | --- |
| before the changes below | 0.45x |
| + replay relaxes the collector (generation-0 threshold 50,000 / 100,000) | 0.65x / 0.73x, 0.87x, 0.79x |
| + registry decode fast path and `gc=False` envelope Structs (commit 707fde0), collector setting off | 0.63x, 0.57x |
| the same with the collector setting (the code as committed) | 0.93x, 0.76x, 0.76x |

Where the time went (cProfile and micro-benchmarks, per event):
- Fetching rows costs the same as in the raw read, since `read_all` orders by the indexed `events.tx_id`. Before
  that fix (commit a915e27), `ORDER BY tx_id` named the output alias `tx_id::text::bigint`, so every page sorted
  the whole table: 0.6 s per page at 200 k events, quadratic overall.
- Building `RecordedEvent`s cost ~8 \u00b5s with the cyclic garbage collector on and ~4 \u00b5s with it off, against
  ~2 \u00b5s for the raw decode: the envelope Structs were tracked by the collector, and a replay keeps a page or
  two alive, so with the default generation-0 threshold (700) whole pages were promoted and rescanned. Now the
  envelope and event Structs are `gc=False`, and `replay` also raises the generation-0 threshold to 100,000 while
  it runs and restores it afterwards (`projections/replay.py`, `_bulk_allocation`): without it a replay still
  runs slower than a bare `read_all` loop (the table's `read_all` row runs with the default setting).
- `EventRegistry.decode` spent ~2 \u00b5s where a direct msgspec decode of the payload takes ~1 \u00b5s (the tag
  splice and a str -> bytes copy); it now decodes the stored body directly.

What is left: the `RecordedEvent` construction, the `(tx_id, global_position)` horizon query and the runner's
per-event `await apply(...)` with one checkpoint transaction per page."""
