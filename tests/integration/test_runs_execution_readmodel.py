"""The runs read model from hand-appended execution events on the real store: a run that starts, runs its nodes
and finishes; a lost runner and a second attempt; a cancel request that ends ``canceled``; redelivery and a
replay from position 0 rebuild the same rows; the list's filters and keyset pages.

``RunScript`` (a run's stream written by hand, as the runner would) is shared with the API and CLI tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from contracts.api.runs import RunCursor, format_run_cursor, parse_run_cursor
from contracts.base import Event
from contracts.envelope import ORIGIN, Actor, Metadata, NewEvent
from contracts.events.runs import (
    NodeFinished,
    NodeStarted,
    PlanApproved,
    PlanDeviation,
    RunArtifact,
    RunCancelRequested,
    RunFinished,
    RunQueued,
    RunRequested,
    RunRequeued,
    RunStarted,
)
from projections.replay import replay
from projections.runs import queries
from projections.runs.projector import RunsProjector
from services.runs.domain import run_stream
from services.runs.readmodel import RunsReadModel
from services.shared.errors import ContractViolationError
from services.shared.eventstore.postgres import PostgresEventStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RUNNER = "system:runner"
PLAN_ID = uuid.UUID(int=7)
ORDERS, STG, TEST = "model.shop.orders", "model.shop.stg_orders", "test.shop.not_null_orders_id"


class RunScript:
    """One run's stream, appended by hand in the order a runner would (each append expects the last version)."""

    def __init__(self, store: PostgresEventStore, tenant: str = "acme", run_id: uuid.UUID | None = None) -> None:
        self.store = store
        self.tenant = tenant
        self.run_id = run_id or uuid.uuid4()
        self.version = 0

    async def append(self, *payloads: Event, actor: str = RUNNER, at: datetime = T0) -> int:
        result = await self.store.for_tenant(self.tenant).append(
            run_stream(self.run_id),
            [NewEvent(event_id=uuid.uuid4(), payload=p, occurred_at=at) for p in payloads],
            expected_version=self.version,
            metadata=Metadata(actor=Actor(subject=actor), correlation_id=uuid.uuid4(), project_id="shop"),
        )
        self.version = result.last_version
        return self.version

    async def requested(
        self, *, env: str = "dev", by: str = "alice", at: datetime = T0, project: str = "shop", approve: bool = True
    ) -> None:
        await self.append(
            RunRequested(run_id=self.run_id, project_id=project, environment_id=env, select="+orders", requested_at=at),
            actor=by,
            at=at,
        )
        if approve:
            await self.append(
                PlanApproved(run_id=self.run_id, plan_id=PLAN_ID, plan_hash="h" * 64, automatic=True, approved_at=at),
                actor=by,
                at=at,
            )

    async def started(self, attempt: int = 1, *, at: datetime = T0) -> None:
        await self.append(
            RunStarted(
                run_id=self.run_id,
                plan_id=PLAN_ID,
                plan_hash="h" * 64,
                attempt=attempt,
                runner_id=f"runner-{attempt}",
                dbt_version="1.11.0",
                adapter="duckdb",
                commands=(("build", "--select", "orders"),),
                started_at=at,
            ),
            at=at,
        )

    async def node(self, unique_id: str, status: str, *, attempt: int = 1, at: datetime = T0, **result: Any) -> None:
        await self.append(NodeStarted(run_id=self.run_id, attempt=attempt, unique_id=unique_id, started_at=at), at=at)
        if status != "running":
            await self.append(
                NodeFinished(
                    run_id=self.run_id,
                    attempt=attempt,
                    unique_id=unique_id,
                    status=status,
                    finished_at=at + timedelta(seconds=1),
                    execution_time=1.0,
                    **result,
                ),
                at=at,
            )

    async def finished(self, status: Any, *, attempt: int = 1, log_lines: int = 0, **more: Any) -> None:
        at = more.pop("at", T0 + timedelta(minutes=1))
        await self.append(
            RunFinished(
                run_id=self.run_id, attempt=attempt, status=status, log_lines=log_lines, finished_at=at, **more
            ),
            at=at,
        )


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "runs": [tuple(r) for r in await pool.fetch("SELECT * FROM runs ORDER BY tenant_id, run_id")],
        "run_nodes": [
            tuple(r) for r in await pool.fetch("SELECT * FROM run_nodes ORDER BY tenant_id, run_id, attempt, unique_id")
        ],
    }


async def test_a_run_with_nodes_shows_its_timeline_and_its_end(store: PostgresEventStore) -> None:
    run = RunScript(store)
    await run.requested()
    await run.append(RunQueued(run_id=run.run_id, reason="dev runs 2 runs already", queued_at=T0))
    model = RunsReadModel(store)
    queued = await model.run("acme", run.run_id)
    assert (queued.status, queued.queued_at, queued.message) == ("queued", T0, "dev runs 2 runs already")

    await run.started(at=T0 + timedelta(seconds=5))
    await run.node(STG, "success", at=T0 + timedelta(seconds=6), rows_affected=10, query_ids=("q1",))
    await run.node(ORDERS, "running", at=T0 + timedelta(seconds=8))
    running = await model.run("acme", run.run_id)
    assert (running.status, running.attempt, running.runner_id, running.message) == ("running", 1, "runner-1", None)
    timeline = await model.nodes("acme", run.run_id)
    assert [(n.unique_id, n.status) for n in timeline] == [(STG, "success"), (ORDERS, "running")]
    assert (timeline[0].rows_affected, timeline[0].query_ids) == (10, ["q1"])
    assert await model.final_log_lines("acme", run.run_id) is None

    await run.append(
        NodeFinished(
            run_id=run.run_id,
            attempt=1,
            unique_id=ORDERS,
            status="error",
            finished_at=T0 + timedelta(seconds=9),
            adapter_response={"code": "ERROR", "rows_affected": 0},
            message="Division by zero",
        )
    )
    await run.append(NodeFinished(run_id=run.run_id, attempt=1, unique_id=TEST, status="skipped"))
    artifact = RunArtifact(name="dbt.log.gz", key="acme/logs/ab/" + "ab" * 32, size=10, sha256="ab" * 32)
    await run.finished(
        "failed",
        reason="node_failed",
        message="model.shop.orders failed: Division by zero",
        node_counts={"success": 1, "error": 1, "skipped": 1},
        artifacts=(artifact,),
        log_lines=42,
    )
    done = await model.run("acme", run.run_id)
    assert (done.status, done.reason, done.log_lines) == ("failed", "node_failed", 42)
    assert done.started_at == T0 + timedelta(seconds=5)
    assert done.finished_at == T0 + timedelta(minutes=1)
    assert done.node_counts == {"success": 1, "error": 1, "skipped": 1}
    assert done.artifacts == [artifact]
    assert done.deviation is None
    nodes = await model.nodes("acme", run.run_id)
    assert [(n.unique_id, n.status) for n in nodes] == [(STG, "success"), (ORDERS, "error"), (TEST, "skipped")]
    orders = nodes[1]
    assert orders.started_at == T0 + timedelta(seconds=8)  # NodeFinished without a start keeps NodeStarted's
    assert (orders.message, orders.adapter_response) == ("Division by zero", {"code": "ERROR", "rows_affected": 0})
    assert await model.final_log_lines("acme", run.run_id) == 42


async def test_a_lost_runner_and_a_second_attempt(store: PostgresEventStore) -> None:
    run = RunScript(store)
    await run.requested()
    await run.started(1)
    await run.node(STG, "success")
    await run.node(ORDERS, "running")
    await run.append(RunRequeued(run_id=run.run_id, attempt=1, reason="runner_lost", requeued_at=T0))
    model = RunsReadModel(store)
    requeued = await model.run("acme", run.run_id)
    assert (requeued.status, requeued.reason, requeued.attempt) == ("approved", "runner_lost", 1)

    await run.started(2, at=T0 + timedelta(minutes=2))
    await run.node(STG, "success", attempt=2, at=T0 + timedelta(minutes=2))
    await run.node(ORDERS, "success", attempt=2, at=T0 + timedelta(minutes=3))
    deviation = PlanDeviation(missing=(TEST,))
    await run.finished("failed", attempt=2, reason="plan_mismatch", deviation=deviation, log_lines=7)
    done = await model.run("acme", run.run_id)
    assert (done.status, done.attempt, done.runner_id, done.reason) == ("failed", 2, "runner-2", "plan_mismatch")
    assert done.deviation == deviation
    second = await model.nodes("acme", run.run_id)
    assert [(n.attempt, n.unique_id, n.status) for n in second] == [(2, STG, "success"), (2, ORDERS, "success")]
    first = await model.nodes("acme", run.run_id, attempt=1)
    assert [(n.unique_id, n.status) for n in first] == [(STG, "success"), (ORDERS, "running")]


async def test_a_cancel_request_then_the_end_as_canceled(store: PostgresEventStore) -> None:
    run = RunScript(store)
    await run.requested()
    await run.started()
    await run.append(RunCancelRequested(run_id=run.run_id, reason="wrong branch", requested_at=T0), actor="bob")
    model = RunsReadModel(store)
    asked = await model.run("acme", run.run_id)
    assert (asked.status, asked.cancel_requested_by, asked.cancel_reason) == ("running", "bob", "wrong branch")
    assert asked.cancel_requested_at == T0
    await run.finished("canceled", reason="canceled", message="canceled by bob: wrong branch", log_lines=3)
    done = await model.run("acme", run.run_id)
    assert (done.status, done.reason, done.cancel_requested_by) == ("canceled", "canceled", "bob")


async def test_redelivery_changes_nothing_and_a_replay_rebuilds_the_same_rows(store: PostgresEventStore) -> None:
    first, second = RunScript(store), RunScript(store, tenant="globex")
    for run in (first, second):
        await run.requested()
        await run.started()
        await run.node(STG, "success", rows_affected=3)
    await first.append(RunRequeued(run_id=first.run_id, attempt=1, reason="runner_lost", requeued_at=T0))
    await first.started(2)
    await first.node(STG, "success", attempt=2)
    await first.finished("warning", attempt=2, node_counts={"warn": 1}, log_lines=5)
    await second.append(RunCancelRequested(run_id=second.run_id, requested_at=T0), actor="gina")
    await RunsReadModel(store).catch_up()
    before = await snapshot(store.pool)
    assert len(before["runs"]) == 2
    assert len(before["run_nodes"]) == 3

    projector = RunsProjector()
    events = await store.read_all(ORIGIN, limit=1000)
    async with store.pool.acquire() as conn, conn.transaction():
        for event in events:  # everything delivered again (a feed that resumed from the origin)
            await projector.apply(conn, event)
    assert await snapshot(store.pool) == before

    report = await replay(store, [RunsProjector()])
    assert report.projections[0].applied == len(events)
    assert await snapshot(store.pool) == before


async def test_the_list_filters_and_pages_newest_first(store: PostgresEventStore) -> None:
    runs: list[RunScript] = []
    for i, (env, by) in enumerate([("dev", "alice"), ("prod", "bob"), ("dev", "bob"), ("dev", "alice")] * 3):
        run = RunScript(store)
        await run.requested(env=env, by=by, at=T0 + timedelta(minutes=i // 2))  # pairs share a requested_at
        runs.append(run)
    await runs[0].started()
    await runs[0].finished("success")
    model = RunsReadModel(store)
    await model.catch_up()

    newest_first = sorted(runs, key=lambda r: (T0 + timedelta(minutes=runs.index(r) // 2), r.run_id), reverse=True)
    pages = await all_pages(model, "requested_at", descending=True, page_size=5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [run_id for page in pages for run_id in page] == [r.run_id for r in newest_first]

    async def ids(**filters: Any) -> list[uuid.UUID]:
        return [r.run_id for r in (await queries.list_runs(model.db, "acme", **filters)).items]

    dev_alice = await ids(environment="dev", actor="alice")
    assert set(dev_alice) == {r.run_id for i, r in enumerate(runs) if i % 4 in (0, 3)}
    window = await ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert set(window) == {r.run_id for r in runs[2:6]}
    assert await ids(status="success") == [runs[0].run_id]
    assert await ids(project="other") == []
    assert (await queries.list_runs(model.db, "globex")).items == []


async def all_pages(model: RunsReadModel, sort: Any, *, descending: bool, page_size: int) -> list[list[uuid.UUID]]:
    """Every page of the runs list in one order, each cursor passed through its wire form as a client would."""
    pages, cursor = [], None
    while True:
        page = await queries.list_runs(
            model.db, "acme", sort=sort, descending=descending, after=cursor, limit=page_size
        )
        pages.append([r.run_id for r in page.items])
        if page.next_cursor is None:
            return pages
        cursor = parse_run_cursor(format_run_cursor(page.next_cursor))


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("started_at", lambda r: r.started_at or EPOCH),
        ("finished_at", lambda r: r.finished_at or EPOCH),
        (
            "duration",
            lambda r: (r.finished_at - r.started_at).total_seconds() if r.finished_at and r.started_at else -1,
        ),
        ("status", lambda r: r.status),
        ("environment", lambda r: r.environment_id),
        ("actor", lambda r: r.requested_by),
    ],
)
@pytest.mark.parametrize("descending", [True, False])
async def test_every_order_pages_through_every_run_once_in_order(
    store: PostgresEventStore, sort: str, key: Any, descending: bool
) -> None:
    for i in range(11):
        run = RunScript(store)
        await run.requested(env=("dev", "prod", "qa")[i % 3], by=("alice", "bob")[i % 2], at=T0 + timedelta(seconds=i))
        if i % 4 != 3:  # some runs never start: they still have a place in every order
            await run.started(at=T0 + timedelta(minutes=i % 5))
            if i % 2 == 0:
                await run.finished(("success", "failed")[i % 3 == 0], at=T0 + timedelta(minutes=i % 5, seconds=7 * i))
    model = RunsReadModel(store)
    await model.catch_up()
    everything = (await queries.list_runs(model.db, "acme", limit=100)).items

    pages = await all_pages(model, sort, descending=descending, page_size=3)

    expected = sorted(everything, key=lambda r: (key(r), r.run_id), reverse=descending)
    assert [run_id for page in pages for run_id in page] == [r.run_id for r in expected]
    assert all(len(page) == 3 for page in pages[:-1])


async def test_a_cursor_of_another_order_is_refused(store: PostgresEventStore) -> None:
    for i in range(3):
        await RunScript(store).requested(env="dev", by="alice", at=T0 + timedelta(seconds=i))
    model = RunsReadModel(store)
    await model.catch_up()
    page = await queries.list_runs(model.db, "acme", sort="status", limit=1)
    assert page.next_cursor is not None
    with pytest.raises(ContractViolationError, match="another order"):
        await queries.list_runs(model.db, "acme", sort="actor", after=page.next_cursor, limit=1)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "12",
        "x_" + "0" * 32,
        "1_" + "g" * 32,
        "9" * 20 + "_" + "0" * 32,
        "status.asc.!!~" + "0" * 32,
        "nosuch.asc.1~" + "0" * 32,
        "duration.asc.abc~" + "0" * 32,
        "finished_at.desc.9999999999999999999~" + "0" * 32,
        "status.up.YQ~" + "0" * 32,
    ],
)
def test_a_malformed_cursor_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        parse_run_cursor(bad)


@pytest.mark.parametrize(
    "cursor",
    [
        RunCursor(datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), uuid.uuid4()),
        RunCursor(
            datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), uuid.uuid4(), sort="finished_at", descending=False
        ),
        RunCursor(12.345678, uuid.uuid4(), sort="duration"),
        RunCursor(-1.0, uuid.uuid4(), sort="duration", descending=False),
        RunCursor("r\u00e9viewer~<script>", uuid.uuid4(), sort="actor"),
        RunCursor("", uuid.uuid4(), sort="status"),
    ],
)
def test_a_cursor_round_trips_exactly(cursor: RunCursor) -> None:
    assert parse_run_cursor(format_run_cursor(cursor)) == cursor
