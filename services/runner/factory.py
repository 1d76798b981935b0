"""Builds a runner worker from Settings: its worker runtime, its ticket source, its secrets and its options."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.envelope import Actor
from services.runner.ports import Limits, WorkerRuntime
from services.runner.secrets import LocalSecrets
from services.runner.tickets import JetStreamTickets, PollingTickets, Tickets
from services.runner.worker import RunnerOptions, RunnerWorker
from services.runs.readmodel import runs_read_model
from services.shared.commands import CommandContext
from services.shared.errors import ContractViolationError
from services.shared.settings import Settings

if TYPE_CHECKING:
    from services.runtime import Runtime

RUNNER_ACTOR = Actor(subject="system:runner", display_name="Lockgate runner", roles=("system",))


def worker_runtime(settings: Settings) -> WorkerRuntime:
    if settings.runner_runtime == "local":
        from services.runner.isolation.local import LocalRuntime  # noqa: PLC0415

        return LocalRuntime()
    if settings.runner_runtime == "docker":
        from services.runner.isolation.docker import DockerRuntime  # noqa: PLC0415

        return DockerRuntime(settings.runner_image, base_url=settings.docker_host)
    raise ContractViolationError(
        f"runner_runtime must be 'local' or 'docker', not {settings.runner_runtime!r}", field="runner_runtime"
    )


def options_of(settings: Settings) -> RunnerOptions:
    return RunnerOptions(
        concurrency=max(1, settings.runner_concurrency),
        heartbeat=settings.runner_heartbeat_seconds,
        lease_ttl=settings.runner_lease_seconds,
        reap_grace=settings.runner_lease_seconds / 2,
        timeout=settings.runner_timeout_seconds,
        limits=Limits(
            memory_bytes=settings.runner_memory_mb * 1024 * 1024 if settings.runner_memory_mb else None,
            cpus=settings.runner_cpus,
        ),
        workspace_dir=settings.runner_workspace_dir,
        nats_subject_prefix=settings.nats_subject_prefix,
    )


def build_runner(
    runtime: Runtime, *, options: RunnerOptions | None = None, tickets: Tickets | None = None
) -> RunnerWorker:
    settings = runtime.settings
    if tickets is None:
        if runtime.nats is not None:
            tickets = JetStreamTickets(runtime.nats, stream=settings.nats_stream, prefix=settings.nats_subject_prefix)
        else:
            tickets = PollingTickets(runtime.store.pool, runs_read_model(runtime.store).catch_up)

    async def ingest(tenant_id: str, project_id: str, files: Mapping[str, Path]) -> None:
        context = CommandContext(actor=RUNNER_ACTOR, correlation_id=uuid.uuid4())
        await runtime.ingest(tenant_id, project_id, files, context)  # type: ignore[arg-type]

    return RunnerWorker(
        store=runtime.store,
        objects=runtime.objects,
        ingestion=runtime.ingestion,
        tickets=tickets,
        runtime=worker_runtime(settings),
        secrets=LocalSecrets(settings.home.absolute(), os.environ),
        ingest=ingest,
        options=options or options_of(settings),
        nats=runtime.nats,
    )
