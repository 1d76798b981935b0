"""The runner in distributed mode, on the real servers: PostgreSQL, the shared NATS JetStream (a stream and
subject prefix of each test's own, deleted afterwards) and real dbt-duckdb.

Approved runs travel store -> relay -> JetStream -> the runners' shared durable pull consumers. Proved here:
each run is executed exactly once across two runner processes (one of them ``lockgate worker runner`` in a
process of its own, started before the relay had even created the stream), a canceled run's approval is
acknowledged and never executed, the environment's quota makes a second run wait ``queued`` until the first
has finished, and the runners' Prometheus metrics, in process and over HTTP, count what they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from prometheus_client.parser import text_string_to_metric_families

from contracts.envelope import Actor, Metadata, Position, RecordedEvent
from contracts.events.runs import PlanApproved, RunFinished, RunQueued, RunStarted
from contracts.wire import encode_wire
from projections.runs.queries import FINAL_STATUSES
from services.demo.build import DEMO_PROJECT
from services.runner import metrics
from services.runner.factory import build_runner
from services.runner.leases import Leases
from services.runner.tickets import JetStreamTickets
from services.runner.worker import RunnerOptions
from services.shared.bus.nats import connect_nats, ensure_stream
from tests.integration.runner_support import (
    ALICE,
    EXTRA,
    TENANT,
    Shop,
    add_environment,
    make_repository,
    parse_manifest,
    shop,
)
from tests.services import free_port, port_open

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SEED = "raw_plans"
"""A seed with no parents and no tests: a short run that needs nothing in a fresh warehouse."""
SLOW = f"path:models/{EXTRA}/slow_short.sql"
APPROVALS = "lockgate-runners-plan-approved"
"""The durable consumer every runner shares for approvals (JetStreamTickets' default durable name)."""
OK = ("success", "warning")


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The user's repository and its manifest (one real ``dbt parse`` for the whole module)."""
    root = tmp_path_factory.mktemp("user")
    repo = make_repository(root)
    return repo, parse_manifest(repo, root / "artifacts")


@dataclass
class Workers:
    """Long-running workers (relay, runners) of a test, each stopped by the shared event and awaited on exit."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, name: str, worker: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.tasks.append(asyncio.create_task(worker(self.stop), name=name))  # type: ignore[arg-type]

    async def close(self) -> None:
        self.stop.set()
        async with asyncio.timeout(30):
            results = await asyncio.gather(*self.tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors  # a worker that crashed (e.g. on a missing stream) fails the test


@asynccontextmanager
async def distributed(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path], nats_url: str, nats_names: tuple[str, str]
) -> AsyncIterator[tuple[Shop, Workers]]:
    """A Runtime in distributed mode (NATS URL, this test's own stream and prefix, no in-process runner);
    the stream is deleted on the way out."""
    repo, manifest = user_repo
    stream, prefix = nats_names
    async with shop(
        pg_url,
        tmp_path,
        repo,
        manifest,
        nats_url=nats_url,
        nats_stream=stream,
        nats_subject_prefix=prefix,
        runner_in_process=False,
    ) as s:
        workers = Workers()
        try:
            yield s, workers
            await workers.close()
        finally:
            workers.stop.set()
            nc = await s.runtime.connect_nats()
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(stream)  # created by this test only (nats_names)


def runner_options(tmp_path: Path, prefix: str, runner_id: str) -> RunnerOptions:
    return RunnerOptions(
        runner_id=runner_id,
        heartbeat=0.5,
        lease_ttl=3.0,
        reap_grace=1.5,
        timeout=120.0,
        workspace_dir=tmp_path / "workspaces",
        nats_subject_prefix=prefix,
    )


async def start_runner(s: Shop, workers: Workers, tmp_path: Path, prefix: str, runner_id: str) -> None:
    """A runner of this process with its own JetStreamTickets (its own pull subscriptions on the shared
    durable consumers)."""
    await s.runtime.connect_nats()
    runner = build_runner(s.runtime, options=runner_options(tmp_path, prefix, runner_id))
    assert isinstance(runner.tickets, JetStreamTickets)
    workers.start(runner_id, runner.run)


def starts_of(events: Sequence[RecordedEvent]) -> list[RunStarted]:
    return [e.payload for e in events if isinstance(e.payload, RunStarted)]


def first(events: Sequence[RecordedEvent], kind: type) -> RecordedEvent:
    return next(e for e in events if isinstance(e.payload, kind))


@dataclass(frozen=True)
class Settled:
    delivered: int
    """Deliveries (consumer sequence), redeliveries included."""
    acked_stream_seq: int
    """Every message of the stream up to here is acknowledged."""
    redelivered: int


async def settled_consumer(nc: NatsClient, stream: str, durable: str, delivered: int) -> Settled:
    """The consumer once it made ``delivered`` deliveries and has nothing pending or unacknowledged."""
    js = nc.jetstream()
    async with asyncio.timeout(30):
        while True:
            info = await js.consumer_info(stream, durable)
            done, floor = info.delivered, info.ack_floor
            idle = info.num_pending == 0 and info.num_ack_pending == 0
            if idle and done is not None and floor is not None and floor.consumer_seq == done.consumer_seq >= delivered:
                return Settled(done.consumer_seq, floor.stream_seq, info.num_redelivered or 0)
            await asyncio.sleep(0.2)


# -- the lockgate worker runner process ---------------------------------------------------------------------


@dataclass
class RunnerProcess:
    process: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """``/metrics`` over HTTP: every sample by name and labels."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@contextlib.contextmanager
def runner_process(s: Shop, tmp_path: Path, nats_url: str, nats_names: tuple[str, str]) -> Iterator[RunnerProcess]:
    """``lockgate worker runner`` on the test's database, home, stream and prefix, metrics on a free port;
    stopped with SIGINT (its clean shutdown), killed if it does not stop."""
    stream, prefix = nats_names
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOCKGATE_")}
    env.update(
        {
            "LOCKGATE_DATABASE_URL": str(s.runtime.settings.database_url),
            "LOCKGATE_HOME": str(tmp_path / "home"),
            "LOCKGATE_NATS_URL": nats_url,
            "LOCKGATE_NATS_STREAM": stream,
            "LOCKGATE_NATS_SUBJECT_PREFIX": prefix,
            "LOCKGATE_RUNNER_METRICS_PORT": str(port),
            "LOCKGATE_RUNNER_HEARTBEAT_SECONDS": "0.5",
            "LOCKGATE_RUNNER_LEASE_SECONDS": "3",
            "LOCKGATE_RUNNER_WORKSPACE_DIR": str(tmp_path / "workspaces"),
            "LOCKGATE_LOG_JSON": "false",
        }
    )
    log = tmp_path / "runner-process.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("lockgate")), "worker", "runner"],
            env=env,
            cwd=tmp_path,
            start_new_session=True,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield RunnerProcess(process=process, metrics_port=port, log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


async def wait_listening(proc: RunnerProcess, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not port_open("127.0.0.1", proc.metrics_port):
            assert proc.process.poll() is None, proc.output()
            await asyncio.sleep(0.1)


def local_sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def finished_ok(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return sum(
        samples.get(("lockgate_runs_finished_total", (("reason", ""), ("status", status))), 0.0) for status in OK
    )


# -- the tests ------------------------------------------------------------------------------------------------


async def test_two_runner_processes_execute_each_approved_run_exactly_once_and_skip_a_canceled_one(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path], nats_url: str, nats_names: tuple[str, str]
) -> None:
    stream, prefix = nats_names
    async with distributed(pg_url, tmp_path, user_repo, nats_url, nats_names) as (s, workers):
        for env in ("e1", "e2", "e3"):  # one DuckDB file each: the three runs may really run at once
            await add_environment(s.runtime, env, {"path": str(tmp_path / f"{env}.duckdb"), "threads": 1})
        runs = [await s.request(SEED, env=env) for env in ("e1", "e2", "e3")]
        canceled = await s.request(SEED, env="e1")
        await s.service.cancel(s.store.for_tenant(TENANT), canceled, ALICE, reason="changed my mind")
        before_ok = sum(local_sample("lockgate_runs_finished_total", status=st, reason="") for st in OK)
        before_waits = local_sample("lockgate_run_queue_wait_seconds_count")
        before_seeds = local_sample("lockgate_node_duration_seconds_count", resource_type="seed", status="success")

        with runner_process(s, tmp_path, nats_url, nats_names) as other:
            # The other runner is up before any stream exists (the relay has not started): it must wait for it.
            await wait_listening(other)
            await asyncio.sleep(1.0)
            workers.start("relay", s.runtime.run_relay)
            await start_runner(s, workers, tmp_path, prefix, "runner-here")

            views = [await s.wait_final(run_id, timeout=120) for run_id in runs]
            assert all(v.status in OK for v in views), [
                (v.environment_id, v.status, v.reason, v.message) for v in views
            ]
            executed_by: dict[uuid.UUID, str] = {}
            for run_id in runs:
                starts = starts_of(await s.events(run_id))
                assert [p.attempt for p in starts] == [1], starts  # exactly once, first attempt
                executed_by[run_id] = starts[0].runner_id
            # Both runners took part: the process started first, and this one while the other was busy.
            assert "runner-here" in executed_by.values()
            assert len(set(executed_by.values())) == 2, executed_by
            assert other.process.poll() is None, other.output()

            # The canceled run's approval was delivered and acknowledged like the others; nothing executed it.
            nc = await s.runtime.connect_nats()
            settled = await settled_consumer(nc, stream, APPROVALS, delivered=4)
            assert settled == Settled(delivered=4, acked_stream_seq=settled.acked_stream_seq, redelivered=0)
            assert (await s.view(canceled)).status == "canceled"
            assert starts_of(await s.events(canceled)) == []
            assert await Leases(s.store.pool).active(TENANT, "shop", "e1") == 0

            # Metrics: each runner counts what it executed, and has no active run left.
            there = sum(1 for runner in executed_by.values() if runner != "runner-here")
            scraped = other.scrape()
            assert finished_ok(scraped) == there
            assert scraped[("lockgate_runs_active", ())] == 0
            assert scraped[("lockgate_run_queue_wait_seconds_count", ())] == there
            seeds = (("resource_type", "seed"), ("status", "success"))
            assert scraped[("lockgate_node_duration_seconds_count", seeds)] == there
        assert other.process.returncode == 0, other.output()  # SIGINT: a clean stop

        here = len(runs) - there
        after_ok = sum(local_sample("lockgate_runs_finished_total", status=st, reason="") for st in OK)
        assert after_ok - before_ok == here
        assert local_sample("lockgate_run_queue_wait_seconds_count") - before_waits == here
        seeds_here = local_sample("lockgate_node_duration_seconds_count", resource_type="seed", status="success")
        assert seeds_here - before_seeds == here
        assert local_sample("lockgate_runs_active") == 0
        # Each run really loaded its seed, once, into its own environment's warehouse.
        plans = (DEMO_PROJECT / "seeds" / f"{SEED}.csv").read_text().strip().count("\n")
        for env in ("e1", "e2", "e3"):
            with duckdb.connect(str(tmp_path / f"{env}.duckdb"), read_only=True) as conn:
                assert conn.sql(f"select count(*) from {SEED}").fetchall() == [(plans,)]


async def test_a_full_environment_makes_the_next_run_wait_queued_until_the_first_has_finished(
    pg_url: str, tmp_path: Path, user_repo: tuple[Path, Path], nats_url: str, nats_names: tuple[str, str]
) -> None:
    _, prefix = nats_names
    async with distributed(pg_url, tmp_path, user_repo, nats_url, nats_names) as (s, workers):
        await add_environment(s.runtime, "solo", {"path": str(tmp_path / "solo.duckdb"), "max_concurrent_runs": 1})
        workers.start("relay", s.runtime.run_relay)
        await start_runner(s, workers, tmp_path, prefix, "runner-a")
        await start_runner(s, workers, tmp_path, prefix, "runner-b")
        runs = [await s.request(SLOW, env="solo"), await s.request(SLOW, env="solo")]

        # One of them is seen `queued` in the read model while the other runs; never two leases at once.
        leases = Leases(s.store.pool)
        seen: set[str] = set()
        async with asyncio.timeout(150):
            while "queued" not in seen:
                seen.update(v.status for v in [await s.view(r) for r in runs])
                assert await leases.active(TENANT, "shop", "solo") <= 1
                await asyncio.sleep(0.05)
            while not all(v.status in FINAL_STATUSES for v in [await s.view(r) for r in runs]):
                assert await leases.active(TENANT, "shop", "solo") <= 1
                await asyncio.sleep(0.1)

        views = [await s.wait_final(r, timeout=120) for r in runs]
        assert [v.status for v in views] == ["success", "success"], views
        events = {r: await s.events(r) for r in runs}
        waited = [r for r in runs if any(isinstance(e.payload, RunQueued) for e in events[r])]
        assert len(waited) == 1
        ran_first = next(r for r in runs if r not in waited)
        queued = first(events[waited[0]], RunQueued)
        assert isinstance(queued.payload, RunQueued)
        assert "max_concurrent_runs" in queued.payload.reason
        for r in runs:
            assert [p.attempt for p in starts_of(events[r])] == [1]
        # Store order: the second run started only after the first had finished.
        assert first(events[waited[0]], RunStarted).position > first(events[ran_first], RunFinished).position


def approval(run_id: uuid.UUID, position: int) -> RecordedEvent:
    now = datetime.now(UTC)
    payload = PlanApproved(run_id=run_id, plan_id=uuid.uuid4(), plan_hash="h", automatic=True, approved_at=now)
    return RecordedEvent(
        event_id=uuid.uuid4(),
        type="runs.plan_approved.v1",
        schema_version=1,
        stream_id=f"run-{run_id}",
        version=position,
        position=Position(position, position),
        tenant_id=TENANT,
        metadata=Metadata(actor=Actor(subject="alice"), correlation_id=run_id),
        occurred_at=now,
        recorded_at=now,
        payload=payload,
    )


async def test_tickets_wait_for_a_missing_stream_terminate_garbage_and_redeliver_what_they_put_back(
    nats_url: str, nats_names: tuple[str, str]
) -> None:
    """JetStreamTickets alone: a runner started before the relay created the stream waits for it (it used to
    raise, stopping ``lockgate worker runner``); an unreadable message is terminated, not redelivered; ``later``
    hands the run back after its delay; ``done`` settles it."""
    stream, prefix = nats_names
    nc = await connect_nats(nats_url, name="test-tickets", max_reconnect_attempts=3)
    tickets = JetStreamTickets(nc, stream=stream, prefix=prefix)
    stop = asyncio.Event()
    try:
        waiting = asyncio.create_task(tickets.next(stop))
        await asyncio.sleep(1.0)
        assert not waiting.done()  # no stream yet: waiting, not failed
        await ensure_stream(nc, stream, prefix)
        js = nc.jetstream()
        subject = f"{prefix}.{TENANT}.runs.plan_approved"
        await js.publish(subject, b"not an event")
        run_id = uuid.uuid4()
        await js.publish(subject, encode_wire(approval(run_id, 2)))
        async with asyncio.timeout(15):
            ticket = await waiting
        assert ticket is not None
        assert (ticket.tenant_id, ticket.run_id) == (TENANT, run_id)

        await ticket.later(0.5)
        async with asyncio.timeout(15):
            again = await tickets.next(stop)
        assert again is not None
        assert again.run_id == run_id
        await again.done()
        settled = await settled_consumer(nc, stream, APPROVALS, delivered=3)
        # The garbage once (terminated), the approval twice (put back, then settled): both acknowledged.
        assert (settled.delivered, settled.acked_stream_seq) == (3, 2)

        stop.set()
        assert await tickets.next(stop) is None
    finally:
        stop.set()
        await tickets.close()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)  # created by this test only (nats_names)
        await nc.close()
