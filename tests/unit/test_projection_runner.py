"""The projection runner against fakes (no I/O): skipping, rollback, rewinds, read-your-writes, the feed handshake,
the projector registry and replay's table checks. The same behaviours run against PostgreSQL in
``tests/integration/test_projections.py`` and ``tests/contract/test_projection_replay_property.py``.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest

from contracts.base import Event
from contracts.envelope import ORIGIN, SYSTEM_ACTOR, Metadata, Position, RecordedEvent
from projections.registry import ProjectorRegistry, UnknownProjectionError, known_projectors
from projections.replay import BULK_GEN0_THRESHOLD, _bulk_allocation, _table_list, replay
from projections.runner import ProjectionFailedError, ProjectionRunner, check_projector_name
from projections.runtime import Connection
from services.shared.bus.port import Handler
from services.shared.errors import ContractViolationError


class Added(Event, frozen=True, kw_only=True, tag="runnerunit.added.v1"):
    amount: int


def recorded(n: int, *, amount: int | None = None, tx: int | None = None) -> RecordedEvent:
    return RecordedEvent(
        event_id=uuid.UUID(int=n),
        type="runnerunit.added.v1",
        schema_version=1,
        stream_id=f"acct-{n % 3}",
        version=n,
        position=Position(tx if tx is not None else n, n),
        tenant_id="t1",
        metadata=Metadata(actor=SYSTEM_ACTOR, correlation_id=uuid.UUID(int=0)),
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
        payload=Added(amount=n if amount is None else amount),
    )


# -- fakes -------------------------------------------------------------------------------------------


class FakeDatabase:
    """Committed state: checkpoints and read models; a transaction works on a copy and swaps it in on commit."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"checkpoints": {}, "model": {}}
        self.commits = 0


class FakeConnection:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.state: dict[str, Any] = db.state

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.state = copy.deepcopy(self._db.state)
        try:
            yield
        except BaseException:
            self.state = self._db.state  # rollback: drop the copy
            raise
        self._db.state = self.state
        self._db.commits += 1

    async def execute(self, sql: str, *args: Any) -> str:
        statement = " ".join(sql.split())
        if statement.startswith("SELECT pg_advisory_xact_lock("):
            return "SELECT 1"
        if statement.startswith("INSERT INTO checkpoints "):
            name, tx_id, pos = args
            self.state["checkpoints"][name] = Position(int(tx_id), pos)
            return "INSERT 0 1"
        assert statement.startswith("CREATE TABLE IF NOT EXISTS"), statement  # the projector's DDL
        return "CREATE TABLE"

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, int] | None:
        assert " FROM checkpoints WHERE name = $1" in sql, sql
        position = self.state["checkpoints"].get(args[0])
        return None if position is None else {"tx_id": position.tx_id, "global_position": position.global_position}


class FakePool:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConnection]:
        yield FakeConnection(self.db)


class FakeStore:
    """The global feed over a list; only the first ``visible`` events are below the horizon."""

    def __init__(self, events: Sequence[RecordedEvent]) -> None:
        self.events = list(events)
        self.visible = len(self.events)
        self.reads = 0
        self.on_read: Any = None

    async def read_all(self, after: Position, *, limit: int = 1000) -> list[RecordedEvent]:
        self.reads += 1
        if self.on_read is not None:
            self.on_read(self)
        return [e for e in self.events[: self.visible] if e.position > after][:limit]

    async def head(self) -> Position:
        return self.events[self.visible - 1].position if self.visible else ORIGIN

    async def newest(self) -> Position:
        return await self.head()  # this fake models no open transactions: what is visible is all there is


class SumProjector:
    """Sums amounts per stream into the transaction's state; raises on a poisoned amount."""

    schema = "CREATE TABLE IF NOT EXISTS sums (stream_id text PRIMARY KEY, total bigint)"
    tables = ("sums",)

    def __init__(self, name: str = "sums", poison: int | None = None) -> None:
        self.name = name
        self.poison = poison

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        payload = event.payload
        assert isinstance(payload, Added)
        if payload.amount == self.poison:
            raise ValueError("poisoned amount")
        model = cast("FakeConnection", conn).state["model"]
        model[event.stream_id] = model.get(event.stream_id, 0) + payload.amount
        model.setdefault("order", []).append(event.global_position)


def make_runner(
    db: FakeDatabase, store: FakeStore, projector: SumProjector | None = None, page_size: int = 1000
) -> ProjectionRunner:
    return ProjectionRunner(
        projector or SumProjector(),
        cast("asyncpg.Pool", FakePool(db)),
        store,
        page_size=page_size,
    )


def expected_model(events: Sequence[RecordedEvent]) -> dict[str, Any]:
    model: dict[str, Any] = {}
    for event in events:
        assert isinstance(event.payload, Added)
        model[event.stream_id] = model.get(event.stream_id, 0) + event.payload.amount
        model.setdefault("order", []).append(event.global_position)
    return model


# -- the runner --------------------------------------------------------------------------------------


async def test_a_redelivered_batch_is_skipped_and_an_overlapping_one_applies_only_the_new_events() -> None:
    events = [recorded(n) for n in range(1, 11)]
    db, store = FakeDatabase(), FakeStore(events)
    runner = make_runner(db, store)

    assert await runner.handle(events[:5]) == events[4].position
    assert await runner.handle(events[:5]) == events[4].position  # redelivery: nothing applied
    assert await runner.handle(events[3:8]) == events[7].position  # overlap: 6..8 applied once
    assert await runner.handle([*events[8:], events[2], events[9]]) == events[9].position  # stray repeats

    assert db.state["model"] == expected_model(events)
    assert db.state["checkpoints"]["sums"] == events[9].position
    assert runner.applied == 10


async def test_a_failing_projector_rolls_back_its_batch_keeps_its_checkpoint_and_names_the_event() -> None:
    events = [recorded(n) for n in range(1, 9)]
    db, store = FakeDatabase(), FakeStore(events)
    runner = make_runner(db, store, SumProjector(poison=6))
    await runner.handle(events[:4])
    before = copy.deepcopy(db.state)

    with pytest.raises(ProjectionFailedError) as raised:
        await runner.handle(events[4:])  # 5 applies, 6 raises: 5 must be rolled back too

    error = raised.value
    assert (error.projector, error.event_id, error.event_type) == ("sums", events[5].event_id, "runnerunit.added.v1")
    assert error.position == events[5].position
    assert str(events[5].event_id) in str(error)
    assert "'sums'" in str(error)
    assert "runnerunit.added.v1" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert db.state == before
    assert runner.position == events[3].position


async def test_a_checkpoint_that_went_back_makes_the_runner_fill_the_gap_from_the_store_before_the_batch() -> None:
    events = [recorded(n) for n in range(1, 13)]
    db, store = FakeDatabase(), FakeStore(events)
    runner = make_runner(db, store, page_size=3)
    await runner.handle(events[:8])
    # A replay elsewhere empties the read model and resets the checkpoint, then gets as far as event 2.
    db.state = {"checkpoints": {}, "model": {}}
    await make_runner(db, store).handle(events[:2])

    await runner.handle(events[8:10])  # the feed carries on where it was: 9, 10

    # It caught up from event 2 to the head (12) in pages, then found 9 and 10 already applied.
    assert db.state["model"] == expected_model(events)
    assert runner.position == events[-1].position


async def test_catch_up_rebuilds_a_read_model_that_was_reset_even_with_nothing_new_in_the_store() -> None:
    events = [recorded(n) for n in range(1, 6)]
    db, store = FakeDatabase(), FakeStore(events)
    runner = make_runner(db, store)
    await runner.catch_up()
    db.state = {"checkpoints": {}, "model": {}}  # a replay elsewhere reset it and stopped

    assert await runner.catch_up(until=events[-1].position) == events[-1].position

    assert db.state["model"] == expected_model(events)


async def test_catch_up_pages_through_the_store_to_the_head() -> None:
    events = [recorded(n) for n in range(1, 26)]
    db, store = FakeDatabase(), FakeStore(events)
    runner = make_runner(db, store, page_size=10)
    await runner.start()
    db.commits = 0

    assert await runner.catch_up() == events[-1].position

    assert db.state["model"] == expected_model(events)
    assert db.commits == 3  # 10 + 10 + 5, one transaction per page
    assert store.reads == 3  # stops at the head without reading an empty page


async def test_catch_up_until_a_position_waits_for_it_to_become_visible() -> None:
    events = [recorded(n) for n in range(1, 6)]
    db, store = FakeDatabase(), FakeStore(events)
    store.visible = 3

    def older_transaction_ends_after_two_more_reads(s: FakeStore) -> None:
        if s.reads == 3:
            s.visible = 5

    store.on_read = older_transaction_ends_after_two_more_reads
    runner = make_runner(db, store)

    async with asyncio.timeout(5):
        assert await runner.catch_up(until=events[4].position) == events[4].position
    assert db.state["model"] == expected_model(events)


async def test_a_restarted_runner_resumes_from_the_stored_checkpoint() -> None:
    events = [recorded(n) for n in range(1, 11)]
    db, store = FakeDatabase(), FakeStore(events)
    await make_runner(db, store).handle(events[:6])

    again = make_runner(db, store)
    assert await again.start() == events[5].position
    await again.catch_up()

    assert again.applied == 4
    assert db.state["model"] == expected_model(events)


async def test_run_catches_up_then_follows_the_feed_from_the_checkpoint_and_acks_after_commit() -> None:
    events = [recorded(n) for n in range(1, 11)]
    db, store = FakeDatabase(), FakeStore(events)
    store.visible = 4
    seen: list[Position] = []

    class Feed:
        async def run(self, name: str, after: Position, handler: Handler, stop: asyncio.Event) -> None:
            assert name == "sums"
            seen.append(after)
            store.visible = 10
            for batch in (events[2:6], events[6:10]):  # starts before `after`: a redelivery
                await handler(list(batch))
                # the handler returned: the batch must be committed before the feed acks it
                assert db.state["checkpoints"]["sums"] == batch[-1].position
            stop.set()

    await make_runner(db, store).run(Feed(), asyncio.Event())

    assert seen == [events[3].position]
    assert db.state["model"] == expected_model(events)


async def test_events_of_one_transaction_are_ordered_by_position_within_it() -> None:
    events = [recorded(n, tx=100) for n in range(1, 5)]
    db, store = FakeDatabase(), FakeStore(events)
    await make_runner(db, store).catch_up()
    assert db.state["model"]["order"] == [1, 2, 3, 4]
    assert db.state["checkpoints"]["sums"] == Position(100, 4)


# -- names, registry, replay's table checks ----------------------------------------------------------


@pytest.mark.parametrize("name", ["", "Sums", "1sums", "sums-x", "sums.x", "a" * 64, "relay", "x'; DROP TABLE y"])
def test_bad_projector_names_are_refused(name: str) -> None:
    with pytest.raises(ContractViolationError):
        check_projector_name(name)


def test_the_registry_refuses_two_projectors_with_one_name_and_explains_an_unknown_name() -> None:
    registry = ProjectorRegistry([SumProjector("a"), SumProjector("b")])
    with pytest.raises(ContractViolationError, match="already taken"):
        registry.register(SumProjector("a"))
    with pytest.raises(UnknownProjectionError, match=r"'c'.*known: a, b"):
        registry.select(["c"])
    assert [p.name for p in registry.select(["b", "a", "b"])] == ["b", "a"]
    assert [p.name for p in registry.select(None)] == ["a", "b"]
    assert "a" in registry
    assert len(registry) == 2


def test_every_known_projector_has_a_valid_unique_name() -> None:
    registry = known_projectors()
    assert len(set(registry.names)) == len(registry)


@pytest.mark.parametrize("table", ["events", "public.events", "EVENTS", "checkpoints", "command_log"])
def test_replay_refuses_to_empty_the_stores_tables(table: str) -> None:
    projector = SumProjector()
    projector.tables = (table,)
    with pytest.raises(ContractViolationError, match="store's table"):
        _table_list(projector)


@pytest.mark.parametrize("table", ["sums; DROP TABLE events", 'x"y', "a.b.c", "", "sums --"])
def test_replay_refuses_table_names_that_are_not_identifiers(table: str) -> None:
    projector = SumProjector()
    projector.tables = (table,)
    with pytest.raises(ContractViolationError, match="not an identifier"):
        _table_list(projector)


async def test_replay_of_an_unknown_projection_touches_nothing() -> None:
    class NoStore:
        @property
        def pool(self) -> asyncpg.Pool:
            raise AssertionError("replay touched the database")

        async def read_all(self, after: Position, *, limit: int = 1000) -> list[RecordedEvent]:
            raise AssertionError("replay read the store")

        async def head(self) -> Position:
            raise AssertionError("replay read the store")

        async def newest(self) -> Position:
            raise AssertionError("replay read the store")

    with pytest.raises(UnknownProjectionError):
        await replay(NoStore(), [SumProjector("a")], names=["nope"])


def test_a_replay_relaxes_the_garbage_collector_only_while_it_runs_even_when_nested_or_failing() -> None:
    before = gc.get_threshold()
    seen: list[int] = []

    def nested_then_fail() -> None:
        with _bulk_allocation():
            seen.append(gc.get_threshold()[0])
            with _bulk_allocation():
                seen.append(gc.get_threshold()[0])
            seen.append(gc.get_threshold()[0])  # the inner one did not restore early
            raise RuntimeError

    with pytest.raises(RuntimeError):
        nested_then_fail()

    assert all(threshold >= BULK_GEN0_THRESHOLD for threshold in seen)
    assert len(seen) == 3
    assert gc.get_threshold() == before
