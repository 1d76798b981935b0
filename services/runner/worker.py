"""The runner worker: takes approved runs, holds their leases, executes them, and reaps lost runners.

One loop takes tickets (``services.runner.tickets``) and starts at most ``concurrency`` executions at a time
in this process; the environment's quota (``max_concurrent_runs`` in its target, default 1) bounds them
across every runner. Another loop renews this runner's leases, and a third reaps the leases of runners
that stopped heartbeating: their runs end ``failed`` with reason ``runner_lost``, or get another attempt
when the environment allows retries (``run_retries``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from nats.aio.client import Client as NatsClient

from contracts.envelope import Actor, NewEvent, Scope
from contracts.events.runs import PlanApproved, RunFinished, RunQueued, RunRequeued, RunStarted
from services.ingestion.service import Ingestion
from services.runner import metrics
from services.runner.execution import RunContext, execute_run
from services.runner.journal import Journal, RunLostError
from services.runner.leases import Claim, Leases
from services.runner.logs import LiveLog, ensure_log_schema
from services.runner.ports import Limits, SecretResolver, WorkerRuntime
from services.runner.prepare import PreparationError, Prepared, RunSubject, prepare, target_number
from services.runner.tickets import Ticket, Tickets
from services.runs.domain import RUNNABLE, RunState, evolve_run, run_stream
from services.shared.bus.inprocess import sleep_or_stop
from services.shared.commands import CommandContext
from services.shared.errors import ConcurrencyConflictError
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.objectstore.port import ObjectStore
from services.tenancy.domain import EnvironmentState, ProjectState
from services.tenancy.handlers import load_environment, load_project

log = logging.getLogger(__name__)

QUEUE_RETRY_SECONDS = 2.0
ERROR_RETRY_SECONDS = 10.0
DEFAULT_QUOTA = 1
MiB = 1024 * 1024


def _runner_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RunnerOptions(msgspec.Struct, frozen=True, kw_only=True):
    runner_id: str = msgspec.field(default_factory=_runner_id)
    concurrency: int = 1
    """Runs this process executes at once."""
    heartbeat: float = 5.0
    lease_ttl: float = 20.0
    """A lease not renewed for this long lapses; the runner then stops dbt itself."""
    reap_grace: float = 10.0
    """How long after a lease lapsed the reaper acts (the lost runner has stopped dbt by then)."""
    timeout: float = 3600.0
    """Wall-clock limit of a run, unless its environment sets ``timeout_seconds``."""
    grace: float = 10.0
    """After SIGINT (cancel, timeout), how long dbt gets to stop before it is killed."""
    limits: Limits = Limits()
    """Default limits; an environment's ``memory_limit_mb``, ``cpu_limit`` and ``pids_limit`` override them."""
    workspace_dir: Path | None = None
    """Where temporary workspaces are made (None: the system's temporary directory)."""
    cancel_poll: float = 0.5
    nats_subject_prefix: str = "lockgate"


def limits_for(env: EnvironmentState, default: Limits) -> Limits:
    memory = target_number(env.target, "memory_limit_mb")
    cpus = target_number(env.target, "cpu_limit")
    pids = target_number(env.target, "pids_limit")
    return Limits(
        memory_bytes=int(memory * MiB) if memory is not None else default.memory_bytes,
        cpus=cpus if cpus is not None else default.cpus,
        pids=int(pids) if pids is not None else default.pids,
    )


def writable_paths(env: EnvironmentState) -> tuple[Path, ...]:
    """Besides the workspace, what dbt must write: an embedded database file's directory (dbt-duckdb ``path``)."""
    paths: list[Path] = []
    for key, value in env.target.items():
        if (key == "path" or key.endswith("_path")) and isinstance(value, str) and Path(value).is_absolute():
            paths.append(Path(value).parent)
    return tuple(paths)


@dataclass
class _Loaded:
    state: RunState
    version: int
    waiting_since: datetime | None


async def _load(store: PostgresEventStore, tenant_id: str, run_id: uuid.UUID) -> _Loaded | None:
    state: RunState | None = None
    version, since = 0, None
    for recorded in await store.for_tenant(tenant_id).read_stream(run_stream(run_id)):
        state = evolve_run(state, recorded.payload, recorded.metadata.actor.subject)
        version = recorded.version
        if isinstance(recorded.payload, PlanApproved | RunRequeued):
            since = recorded.occurred_at
    return None if state is None else _Loaded(state=state, version=version, waiting_since=since)


@dataclass
class RunnerWorker:
    store: PostgresEventStore
    objects: ObjectStore
    ingestion: Ingestion
    tickets: Tickets
    runtime: WorkerRuntime
    secrets: SecretResolver
    ingest: Callable[[str, str, Mapping[str, Path]], Awaitable[None]]
    """Ingest a run's artifacts into (tenant, project) as run history, waiting for the read model."""
    options: RunnerOptions = field(default_factory=RunnerOptions)
    nats: NatsClient | None = None
    _leases: Leases = field(init=False)
    _held: dict[tuple[str, uuid.UUID], asyncio.Event] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._leases = Leases(self.store.pool)

    @property
    def actor(self) -> Actor:
        return Actor(subject=f"runner:{self.options.runner_id}", display_name="Lockgate runner", roles=("runner",))

    async def run(self, stop: asyncio.Event) -> None:
        await self._leases.ensure_schema()
        await ensure_log_schema(self.store.pool)
        slots = asyncio.Semaphore(self.options.concurrency)
        running: set[asyncio.Task[None]] = set()
        helpers = [
            asyncio.create_task(self._heartbeats(stop), name="runner-heartbeats"),
            asyncio.create_task(self._reaper(stop), name="runner-reaper"),
        ]
        log.info("runner %s started (runtime %s)", self.options.runner_id, self.runtime.name)
        try:
            while not stop.is_set():
                if not await _acquire_or_stop(slots, stop):
                    break
                ticket = await self.tickets.next(stop)
                if ticket is None:
                    slots.release()
                    break
                task = asyncio.create_task(self._take_guarded(ticket, slots), name=f"run-{ticket.run_id}")
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in helpers:
                task.cancel()
            # Runs in progress end with their dbt processes interrupted: lease lost from their point of view.
            for key in list(self._held):
                self._held[key].set()
            for task in [*helpers, *running]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.tickets.close()

    async def _take_guarded(self, ticket: Ticket, slots: asyncio.Semaphore) -> None:
        try:
            await self.take(ticket)
        except Exception:
            log.exception("runner: run %s of tenant %s failed to execute", ticket.run_id, ticket.tenant_id)
            with contextlib.suppress(Exception):  # offered again later, not in a tight loop
                await ticket.later(ERROR_RETRY_SECONDS)
        finally:
            slots.release()

    async def take(self, ticket: Ticket) -> None:
        """Try to execute the ticket's run: claim its lease within the environment's quota, then run it."""
        loaded = await _load(self.store, ticket.tenant_id, ticket.run_id)
        if loaded is None or loaded.state.status not in RUNNABLE or loaded.state.plan is None:
            await ticket.done()
            return
        state = loaded.state
        tenant = self.store.for_tenant(ticket.tenant_id)
        env = await load_environment(tenant, state.project_id, state.environment_id)
        project = await load_project(tenant, state.project_id)
        if env is None or project is None:
            await ticket.done()
            return
        quota = int(target_number(env.target, "max_concurrent_runs") or DEFAULT_QUOTA)
        attempt = state.attempt + 1
        claim = await self._leases.claim(
            tenant_id=ticket.tenant_id,
            run_id=ticket.run_id,
            project_id=state.project_id,
            environment_id=state.environment_id,
            runner_id=self.options.runner_id,
            attempt=attempt,
            quota=quota,
            ttl=self.options.lease_ttl,
        )
        if claim is Claim.TAKEN:
            await ticket.done()
            return
        if claim is Claim.BUSY:
            if state.status == "approved":
                await self._queued(ticket.tenant_id, loaded, project, quota)
            await ticket.later(QUEUE_RETRY_SECONDS)
            return
        key = (ticket.tenant_id, ticket.run_id)
        self._held[key] = asyncio.Event()
        ended = False
        try:
            ended = await self._execute(ticket, loaded, env, project, attempt)
        finally:
            self._held.pop(key, None)
            # A run this runner did not end (it was stopped, or lost its lease) keeps the lease until it lapses:
            # the reaper then re-queues or fails it. Released now, nothing would ever end it.
            if ended:
                await self._leases.release(ticket.tenant_id, ticket.run_id, self.options.runner_id)

    async def _queued(self, tenant_id: str, loaded: _Loaded, project: ProjectState, quota: int) -> None:
        state = loaded.state
        event = RunQueued(
            run_id=state.run_id,
            reason=f"environment {state.environment_id} runs {quota} run(s) at a time (max_concurrent_runs)",
            queued_at=datetime.now(UTC),
        )
        with contextlib.suppress(ConcurrencyConflictError):  # someone else moved the run on: the next try sees it
            await self.store.for_tenant(tenant_id).append(
                run_stream(state.run_id),
                [NewEvent(event_id=uuid.uuid4(), payload=event, occurred_at=event.queued_at)],
                expected_version=loaded.version,
                metadata=CommandContext(actor=self.actor, correlation_id=state.run_id).metadata(
                    _scope(tenant_id, project, state)
                ),
            )

    async def _execute(
        self, ticket: Ticket, loaded: _Loaded, env: EnvironmentState, project: ProjectState, attempt: int
    ) -> bool:
        """Execute a claimed run; True when it ended here (recorded as finished, or never started)."""
        state, tenant_id = loaded.state, ticket.tenant_id
        assert state.plan is not None  # noqa: S101 - take() checked it
        started = datetime.now(UTC)
        journal = Journal(
            self.store.for_tenant(tenant_id),
            state.run_id,
            version=loaded.version,
            attempt=attempt,
            actor=self.actor,
            scope=_scope(tenant_id, project, state),
        )
        objects = self.objects.for_tenant(tenant_id)
        subject = RunSubject(
            tenant_id=tenant_id,
            run_id=state.run_id,
            plan=state.plan,
            full_refresh=state.full_refresh,
            environment=env,
            project=project,
        )
        try:
            prepared = await prepare(
                subject,
                store=self.store,
                ingestion=self.ingestion,
                objects=objects,
                secrets=self.secrets,
                workspace_dir=self.options.workspace_dir,
            )
        except PreparationError as exc:
            await self._failed_to_start(journal, state, attempt, str(exc))
            await ticket.done()
            return True
        ws = prepared.workspace
        try:
            await journal.append([self._started(state, attempt, env, prepared, started)])
        except RunLostError:  # canceled (or taken) before it started: nothing of ours to end
            ws.close()
            await ticket.done()
            return True
        await ticket.done()
        waited = (started - loaded.waiting_since).total_seconds() if loaded.waiting_since else 0.0
        metrics.run_started(max(0.0, waited))
        live_log = await LiveLog.resume(
            self.store.pool,
            tenant_id,
            state.run_id,
            nats=self.nats,
            subject_prefix=self.options.nats_subject_prefix,
        )

        async def ingest(files: Mapping[str, Path]) -> None:
            await self.ingest(tenant_id, state.project_id, files)

        run = RunContext(
            tenant_id=tenant_id,
            run_id=state.run_id,
            attempt=attempt,
            plan=state.plan,
            graph=prepared.snapshot.graph,
            node_uuids=prepared.snapshot.identities,
            journal=journal,
            live_log=live_log,
            objects=objects,
            runtime=self.runtime,
            workspace=ws,
            invocations=prepared.invocations,
            redactor=prepared.redactor,
            limits=limits_for(env, self.options.limits),
            writable=(ws.root, *writable_paths(env)),
            timeout=target_number(env.target, "timeout_seconds") or self.options.timeout,
            grace=self.options.grace,
            ingest=ingest,
            lease_lost=self._held[(tenant_id, state.run_id)],
            session=self.runtime.name == "local",
        )
        try:
            finished = await execute_run(run, cancel_poll=self.options.cancel_poll)
        except Exception as exc:
            # The run started and its lease is about to be released: it must not stay `running` forever.
            log.exception("runner: run %s failed in the runner", state.run_id)
            finished = await self._runner_failed(journal, state, attempt, prepared.redactor.redact(repr(exc)))
        finally:
            ws.close()
            metrics.run_ended()
        if finished is None:
            log.warning("runner: run %s was stopped before it ended (lease lost or runner stopping)", state.run_id)
            return False
        return True

    def _started(
        self, state: RunState, attempt: int, env: EnvironmentState, prepared: Prepared, at: datetime
    ) -> RunStarted:
        root = str(prepared.workspace.root)
        return RunStarted(
            run_id=state.run_id,
            plan_id=state.plan_id or uuid.UUID(int=0),
            plan_hash=state.plan.plan_hash if state.plan else "",
            attempt=attempt,
            runner_id=self.options.runner_id,
            dbt_version=_dbt_version(),
            adapter=env.adapter_type,
            # Workspace paths differ per run and say nothing: record them relative to the workspace.
            commands=tuple(tuple(arg.replace(root, "$WORKSPACE") for arg in inv.argv) for inv in prepared.invocations),
            started_at=at,
            commit=prepared.workspace.commit,
        )

    async def _runner_failed(self, journal: Journal, state: RunState, attempt: int, message: str) -> RunFinished | None:
        finished = RunFinished(
            run_id=state.run_id,
            attempt=attempt,
            status="failed",
            reason="runner_error",
            message=f"the runner failed: {message}"[:2000],
            finished_at=datetime.now(UTC),
        )
        try:
            await journal.stop_flushing()
            await journal.append([finished])
        except RunLostError:
            return None
        metrics.run_finished("failed", "runner_error", oom=False)
        return finished

    async def _failed_to_start(self, journal: Journal, state: RunState, attempt: int, message: str) -> None:
        now = datetime.now(UTC)
        log.warning("runner: run %s could not start: %s", state.run_id, message)
        started = RunStarted(
            run_id=state.run_id,
            plan_id=state.plan_id or uuid.UUID(int=0),
            plan_hash=state.plan.plan_hash if state.plan else "",
            attempt=attempt,
            runner_id=self.options.runner_id,
            dbt_version=_dbt_version(),
            adapter="",
            commands=(),
            started_at=now,
        )
        finished = RunFinished(
            run_id=state.run_id,
            attempt=attempt,
            status="failed",
            reason="workspace_error",
            message=message[:2000],
            finished_at=now,
        )
        with contextlib.suppress(RunLostError):
            await journal.append([started, finished])
            metrics.run_finished("failed", "workspace_error", oom=False)

    # -- liveness ---------------------------------------------------------------------------------------------

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        """Renew every lease this runner holds; a lease that cannot be renewed in time stops its run's dbt."""
        renewed: dict[tuple[str, uuid.UUID], float] = {}
        while not await sleep_or_stop(stop, self.options.heartbeat):
            for key, lost in list(self._held.items()):
                last = renewed.setdefault(key, time.monotonic())
                try:
                    ok = await self._leases.renew(key[0], key[1], self.options.runner_id, self.options.lease_ttl)
                except Exception:
                    log.exception("runner: renewing the lease of run %s failed", key[1])
                    ok = time.monotonic() - last < self.options.lease_ttl  # self-fencing once it could have lapsed
                else:
                    renewed[key] = time.monotonic() if ok else last
                if not ok:
                    log.error("runner: lost the lease of run %s; stopping dbt", key[1])
                    lost.set()
            for key in list(renewed):
                if key not in self._held:
                    del renewed[key]

    async def _reaper(self, stop: asyncio.Event) -> None:
        while not await sleep_or_stop(stop, max(0.2, self.options.lease_ttl / 2)):
            try:
                await self.reap()
            except Exception:
                log.exception("runner: reaping lapsed leases failed")

    async def reap(self) -> int:
        """End (or re-queue) the runs of runners whose leases lapsed; returns how many were handled."""
        handled = 0
        for lease in await self._leases.expired(self.options.reap_grace):
            loaded = await _load(self.store, lease.tenant_id, lease.run_id)
            tenant = self.store.for_tenant(lease.tenant_id)
            if loaded is not None and loaded.state.status == "running" and loaded.state.attempt == lease.attempt:
                env = await load_environment(tenant, lease.project_id, lease.environment_id)
                project = await load_project(tenant, lease.project_id)
                retries = int(target_number(env.target, "run_retries") or 0) if env is not None else 0
                now = datetime.now(UTC)
                expired = lease.expires_at.isoformat()
                message = f"runner {lease.runner_id} stopped renewing its lease (expired {expired})"
                event: RunRequeued | RunFinished
                if lease.attempt <= retries:
                    event = RunRequeued(
                        run_id=lease.run_id,
                        attempt=lease.attempt,
                        reason="runner_lost",
                        message=message,
                        requeued_at=now,
                    )
                else:
                    event = RunFinished(
                        run_id=lease.run_id,
                        attempt=lease.attempt,
                        status="failed",
                        reason="runner_lost",
                        message=message,
                        finished_at=now,
                    )
                scope = (
                    _scope(lease.tenant_id, project, loaded.state)
                    if project
                    else Scope(tenant_id=lease.tenant_id, project_id=lease.project_id)
                )
                try:
                    await tenant.append(
                        run_stream(lease.run_id),
                        [NewEvent(event_id=uuid.uuid4(), payload=event, occurred_at=now)],
                        expected_version=loaded.version,
                        metadata=CommandContext(actor=self.actor, correlation_id=lease.run_id).metadata(scope),
                    )
                except ConcurrencyConflictError:
                    continue  # the runner is alive after all, or another reaper was first: look again next round
                if isinstance(event, RunFinished):
                    metrics.run_finished("failed", "runner_lost", oom=False)
            await self._leases.release(lease.tenant_id, lease.run_id, lease.runner_id)
            handled += 1
        return handled


async def _acquire_or_stop(slots: asyncio.Semaphore, stop: asyncio.Event) -> bool:
    """Take a slot, or give up as soon as ``stop`` is set (False)."""
    acquire = asyncio.ensure_future(slots.acquire())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if acquire.done() and not acquire.cancelled():
        if stop.is_set():
            slots.release()
            return False
        return True
    acquire.cancel()
    return False


def _scope(tenant_id: str, project: ProjectState | None, state: RunState) -> Scope:
    return Scope(
        tenant_id=tenant_id,
        org_id=project.org_id if project is not None else None,
        project_id=state.project_id,
        environment_id=state.environment_id,
    )


def _dbt_version() -> str:
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version("dbt-core")
    except metadata.PackageNotFoundError:
        return ""
