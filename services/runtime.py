"""The composition root: builds the store and the workers that one process runs, from Settings.

Embedded default (no NATS URL): projectors are fed in process straight from the store (the in-process
feed, ADR 0003); with no database URL the store is an embedded PostgreSQL under LOCKGATE_HOME.
Distributed (NATS URL set): the API process only serves (its reads catch up from the store themselves);
``lockgate worker relay`` publishes to JetStream and ``lockgate worker projector`` consumes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client as NatsClient  # a runtime import: litestar resolves Runtime's annotations

import contracts.events  # noqa: F401 - registers every context's event types for decoding
from contracts.api.graph import IngestionOutcome
from services.ingestion.service import ArtifactKind, Ingestion
from services.shared.bus.inprocess import sleep_or_stop
from services.shared.commands import CommandContext
from services.shared.errors import InfrastructureError
from services.shared.eventstore.postgres import PostgresEventStore
from services.shared.objectstore.port import ObjectStore
from services.shared.settings import Settings

if TYPE_CHECKING:
    from services.shared.bus.port import EventFeed

log = logging.getLogger(__name__)

Worker = Callable[[asyncio.Event], Awaitable[None]]
"""A long-running follower: runs until the event is set."""
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0


@dataclass
class Runtime:
    settings: Settings
    store: PostgresEventStore
    nats: NatsClient | None = None
    extra_probes: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)
    _embedded_handle: Any = None
    _objects: ObjectStore | None = None
    _ingestion: Ingestion | None = None
    _runner_started: bool = False
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        """Open the store (starting the embedded PostgreSQL if no URL is configured). Starts no workers and
        does not touch NATS: a command must succeed whether NATS is up or not."""
        handle: Any = None
        if settings.database_url is not None:
            dsn = settings.database_url
        else:
            from services.shared.embedded import start_embedded_postgres  # noqa: PLC0415

            dsn, handle = await asyncio.to_thread(start_embedded_postgres, settings.home)
        store = await PostgresEventStore.connect(dsn)
        return cls(settings=settings, store=store, _embedded_handle=handle)

    @classmethod
    async def open_with_workers(cls, settings: Settings) -> Runtime:
        """Open the runtime, create the default tenant and org if absent, and start what this process
        runs in its mode: without NATS, every projector follows the store in process; with NATS, a
        background connection whose state /readyz reports (the API starts, and takes commands, while NATS
        is down)."""
        from services.bootstrap import bootstrap  # noqa: PLC0415 - the composition root may import contexts

        runtime = await cls.open(settings)
        try:
            await bootstrap(runtime.store, settings)
            if settings.nats_url is None:
                runtime.start_worker("projectors", runtime.run_projectors)
            in_process = settings.runner_in_process
            if in_process or (in_process is None and settings.embedded and settings.nats_url is None):
                await runtime.ensure_local_runner()
            elif settings.nats_url is not None:
                runtime.extra_probes["nats"] = runtime._nats_probe
                runtime.start_worker("nats-connect", runtime._connect_in_background)
        except BaseException:
            await runtime.close()
            raise
        return runtime

    @property
    def objects(self) -> ObjectStore:
        """The artifact object store (local files under LOCKGATE_HOME by default, or S3), opened on first use."""
        if self._objects is None:
            from services.shared.objectstore import open_object_store  # noqa: PLC0415

            self._objects = open_object_store(self.settings)
        return self._objects

    @property
    def ingestion(self) -> Ingestion:
        """The ingestion command service; it keeps the latest graph snapshots of this process in memory."""
        if self._ingestion is None:
            self._ingestion = Ingestion()
        return self._ingestion

    async def ingest(
        self, tenant: str, project: str, files: Mapping[ArtifactKind, Path], context: CommandContext
    ) -> IngestionOutcome:
        """Ingest artifacts into a project and wait until the graph read model shows them (read-your-writes):
        what the API, the CLI and the demo all do."""
        from services.ingestion.readmodel import graph_read_model  # noqa: PLC0415

        outcome = await self.ingestion.ingest(
            self.store.for_tenant(tenant), self.objects.for_tenant(tenant), project, files, context
        )
        await graph_read_model(self.store).wait_for_ingestion(tenant, project, outcome.stream_version)
        return outcome

    async def ensure_local_runner(self) -> None:
        """Make sure this process executes approved runs itself when nothing else will: in the embedded default
        a ``lockgate run --wait`` must finish its run even when no ``lockgate serve`` is up (the runs' leases
        keep two processes from executing one run). No-op in distributed mode (runner workers do it)."""
        if self.settings.nats_url is None and self.settings.runner_in_process is not False and not self._runner_started:
            self._runner_started = True
            self.start_worker("runner", self.run_runner)

    async def run_runner(self, stop: asyncio.Event) -> None:
        """Execute approved runs until ``stop`` (``lockgate worker runner``, or in process in the embedded default)."""
        from services.runner.factory import build_runner  # noqa: PLC0415

        await build_runner(self).run(stop)

    async def connect_nats(self) -> NatsClient:
        from services.shared.bus.nats import connect_nats  # noqa: PLC0415

        url = self.settings.nats_url
        if url is None:
            msg = "no NATS URL is configured (LOCKGATE_NATS_URL)"
            raise InfrastructureError(msg)
        if self.nats is None:
            # Waits until a server answers, then reconnects forever (see connect_nats).
            self.nats = await connect_nats(url)
            self.extra_probes["nats"] = self._nats_probe
        return self.nats

    async def _connect_in_background(self, _stop: asyncio.Event) -> None:
        await self.connect_nats()

    async def _nats_probe(self) -> None:
        if self.nats is None or not self.nats.is_connected:
            msg = "NATS is not connected"
            raise InfrastructureError(msg)

    def feed(self) -> EventFeed:
        """The feed projectors follow: JetStream when NATS is configured, else the store in process."""
        if self.nats is not None:
            from services.shared.bus.nats import JetStreamFeed  # noqa: PLC0415

            return JetStreamFeed(self.nats, stream=self.settings.nats_stream, prefix=self.settings.nats_subject_prefix)
        from services.shared.bus.inprocess import StoreFeed  # noqa: PLC0415

        return StoreFeed(self.store)

    async def run_projectors(self, stop: asyncio.Event, names: list[str] | None = None) -> None:
        from projections.registry import known_projectors  # noqa: PLC0415
        from projections.runner import run_projectors  # noqa: PLC0415

        projectors = known_projectors().select(names)
        await run_projectors(projectors, self.store.pool, self.store, self.feed(), stop)

    async def run_relay(self, stop: asyncio.Event) -> None:
        from services.shared.bus.relay import Relay  # noqa: PLC0415

        nc = await self.connect_nats()
        relay = Relay(self.store, nc, stream=self.settings.nats_stream, prefix=self.settings.nats_subject_prefix)
        await relay.run(stop)

    def readiness_probes(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """What /readyz checks: the store always, NATS when the process is connected to it."""
        probes: dict[str, Callable[[], Awaitable[None]]] = {"store": self.store.ping}
        probes.update(self.extra_probes)
        return probes

    def start_worker(self, name: str, worker: Worker) -> None:
        """Run ``worker`` until the runtime closes. A worker that fails is started again after a pause that grows
        to ``RESTART_MAX_S`` (a transient failure, such as a read model slow to catch up under load, must not
        leave the process serving without its projectors or its runner)."""

        async def supervised() -> None:
            pause = RESTART_FIRST_S
            while not self._stop.is_set():
                try:
                    await worker(self._stop)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("worker %s stopped with an error; starting it again in %.1f s", name, pause)
                    if await sleep_or_stop(self._stop, pause):
                        return
                    pause = min(pause * 2, RESTART_MAX_S)
                else:
                    return

        self._tasks.append(asyncio.create_task(supervised(), name=name))

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.nats is not None:
            with contextlib.suppress(Exception):
                await self.nats.close()
            self.nats = None
        await self.store.close()
