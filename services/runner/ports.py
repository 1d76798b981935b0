"""The runner's ports: what executes dbt (``WorkerRuntime``), where secrets come from (``SecretResolver``).

The worker (``services.runner.worker``) composes them; each port has adapters in its own module:
``isolation.local`` (cgroups v1/v2 + bubblewrap), ``isolation.docker`` (the Docker Engine API) and
``secrets`` (environment variables and files under ``LOCKGATE_HOME``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import msgspec


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """What one dbt process may use. None: no limit of that kind."""

    memory_bytes: int | None = None
    cpus: float | None = None
    """Cores (0.5 = half of one core)."""
    pids: int | None = None


class Exit(msgspec.Struct, frozen=True, kw_only=True):
    """How a dbt process ended."""

    returncode: int
    """The process's exit status; negative: killed by that signal."""
    oom_killed: bool = False
    """The memory limit killed it (from the cgroup's own counters, or exit 137 under a container engine)."""
    peak_memory_bytes: int | None = None


class Execution(Protocol):
    """One running dbt process."""

    def lines(self) -> AsyncIterator[bytes]:
        """Its standard output, line by line (without the newline), until it closes; standard error is merged in."""
        ...

    async def interrupt(self) -> None:
        """SIGINT: dbt cancels its warehouse queries and stops."""
        ...

    async def kill(self) -> None:
        """SIGKILL (the whole process group / container)."""
        ...

    async def wait(self) -> Exit:
        """Wait for the end, release what the process held (cgroups, container) and say how it ended."""
        ...


class WorkerRuntime(Protocol):
    """Starts dbt processes under resource limits and filesystem isolation."""

    @property
    def name(self) -> str: ...

    async def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        limits: Limits,
        writable: Sequence[Path] = (),
    ) -> Execution:
        """Start ``argv`` in ``cwd`` with exactly ``env`` (nothing inherited). Only ``writable`` paths (the
        workspace) and a private /tmp may be written where the adapter can isolate the filesystem."""
        ...


class SecretResolver(Protocol):
    def resolve(self, secret_id: str, fingerprint: str) -> str:
        """The secret's value; raises ``SecretError`` when it is unknown or its sha256 is not ``fingerprint``."""
        ...
