"""``DockerRuntime``: dbt in a container, through the Docker Engine API (Docker, or podman's compatible service).

Each execution is one container of ``image`` with the run's limits (``mem_limit`` with no swap on top,
``nano_cpus``, ``pids_limit``), the host's network (loopback warehouses must stay reachable), the ``writable``
paths bind-mounted read-write at the same paths (so ``cwd`` and every path dbt is given mean the same inside),
exactly ``env``, and a ``lockgate.run`` label. An init process (``init=True``: docker-init or catatonit) is
PID 1, so SIGINT reaches dbt and zombies are reaped.

The SDK is blocking: every call goes through ``asyncio.to_thread``. The output is read from the container's
log stream (stdout and stderr merged; the engine keeps the log, so nothing written before the stream opens is
lost) by a background task that ``lines`` splits. ``wait`` waits for the exit, lets the log stream end, and
removes the container.

Out of memory: ``State.OOMKilled``, or exit status 137 (SIGKILL) under a memory limit, because podman reports
``OOMKilled: false`` for a container the kernel's OOM killer ended (FEASIBILITY.md §4); a 137 after our own
``kill`` is not counted as one.
The engine does not report a finished container's peak memory: ``peak_memory_bytes`` is None.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
from docker.models.containers import Container

from services.runner.isolation.local import split_lines
from services.runner.ports import Exit, Limits

log = logging.getLogger(__name__)

RUN_LABEL: Final = "lockgate.run"
SIGKILL_STATUS: Final = 137
LOG_DRAIN_S: Final = 10.0
"""How long the log stream may take to end after the container exited, before the container is removed."""


class DockerRuntime:
    """Starts each process as a container of ``image`` on the engine at ``base_url`` (default: ``DOCKER_HOST``
    or the local socket). ``labels`` are added to every container (e.g. the worker's id, to find orphans)."""

    def __init__(self, image: str, base_url: str | None = None, *, labels: Mapping[str, str] | None = None) -> None:
        self.image = image
        self._client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        self._labels = dict(labels or {})

    @property
    def name(self) -> str:
        return "docker"

    def close(self) -> None:
        self._client.close()

    async def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        limits: Limits,
        writable: Sequence[Path] = (),
    ) -> DockerExecution:
        if not argv:
            raise ValueError("argv must name a program")
        execution_id = uuid.uuid4().hex
        options = container_options(argv, cwd=cwd, env=env, limits=limits, writable=writable)
        options["labels"] = {**self._labels, RUN_LABEL: execution_id}
        container = await asyncio.to_thread(self._client.containers.create, self.image, **options)
        try:
            await asyncio.to_thread(container.start)
        except BaseException:
            await asyncio.to_thread(_remove, container)
            raise
        return DockerExecution(container, execution_id=execution_id, memory_limited=limits.memory_bytes is not None)


def container_options(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits, writable: Sequence[Path]
) -> dict[str, Any]:
    """The keyword arguments of ``containers.create`` for one execution (without labels)."""
    options: dict[str, Any] = {
        "command": list(argv),
        "working_dir": str(cwd),
        "environment": dict(env),
        "network_mode": "host",
        "init": True,
        "detach": True,
        "volumes": {str(path): {"bind": str(path), "mode": "rw"} for path in writable},
    }
    if limits.memory_bytes is not None:
        options["mem_limit"] = limits.memory_bytes
        options["memswap_limit"] = limits.memory_bytes  # memory + swap = memory: no swap
    if limits.cpus is not None:
        options["nano_cpus"] = round(limits.cpus * 1e9)
    if limits.pids is not None:
        options["pids_limit"] = limits.pids
    return options


class DockerExecution:
    """One container started by ``DockerRuntime``. ``lines`` may be iterated once; ``wait`` awaited by many."""

    def __init__(self, container: Container, *, execution_id: str, memory_limited: bool) -> None:
        self._container = container
        self.execution_id = execution_id
        self._memory_limited = memory_limited
        self._killed = False
        self._output = asyncio.StreamReader()
        self._reading = asyncio.create_task(self._read_logs())
        self._ending: asyncio.Task[Exit] | None = None

    @property
    def container_id(self) -> str:
        return str(self._container.id)

    async def lines(self) -> AsyncIterator[bytes]:
        async for line in split_lines(self._output):
            yield line

    async def interrupt(self) -> None:
        await self._signal("SIGINT")

    async def kill(self) -> None:
        self._killed = True
        await self._signal("SIGKILL")

    async def wait(self) -> Exit:
        if self._ending is None:
            self._ending = asyncio.create_task(self._end())
        return await asyncio.shield(self._ending)

    async def _signal(self, name: str) -> None:
        try:
            await asyncio.to_thread(self._container.kill, signal=name)
        except docker.errors.APIError as exc:  # not running any more (409 on Docker, 500 on podman)
            log.debug("%s to container %s not delivered: %s", name, self.container_id, exc)

    async def _read_logs(self) -> None:
        try:
            stream = await asyncio.to_thread(self._container.logs, stream=True, follow=True, stdout=True, stderr=True)
            while (chunk := await asyncio.to_thread(_next_chunk, stream)) is not None:
                self._output.feed_data(chunk)
        except docker.errors.APIError as exc:
            log.warning("log stream of container %s broke off: %s", self.container_id, exc)
        finally:
            self._output.feed_eof()

    async def _end(self) -> Exit:
        try:
            result = await asyncio.to_thread(self._container.wait)
            await asyncio.to_thread(self._container.reload)
            status = int(result["StatusCode"])
            reported_oom = bool(self._container.attrs.get("State", {}).get("OOMKilled", False))
            done, _ = await asyncio.wait({self._reading}, timeout=LOG_DRAIN_S)
            if not done:
                log.warning("log stream of container %s still open after its exit", self.container_id)
        finally:
            await asyncio.to_thread(_remove, self._container)
        oom_killed = reported_oom or (self._memory_limited and status == SIGKILL_STATUS and not self._killed)
        return Exit(returncode=status, oom_killed=oom_killed)


def _next_chunk(stream: Iterator[bytes]) -> bytes | None:
    return next(stream, None)


def _remove(container: Container) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)
